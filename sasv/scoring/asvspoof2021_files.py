"""CM score files of the ASVspoof 2021 LA and DF evaluation sets, in either of two formats:

  ``cm_scores.txt``   the recipe's stage 3 output, ``UTT logit_spoof logit_bonafide p_bonafide``
                      (:mod:`sasv.extraction.outputs`): one column is the score, ``logit_bonafide`` by default
  ``TRIAL SCORE``     the organisers' evaluation package's format, which SSL_Anti-spoofing's ``main_SSL_*.py``
                      write (``eval_CM_scores_file_SSL_LA.txt``: the raw bona fide logit ``batch_out[:, 1]``)

The format is told by the first line's field count. Strict: a malformed line, a score that is not a finite
number or a repeated trial is an error naming file and line.
"""

from __future__ import annotations

from pathlib import Path

from sasv.corpora.protocols import ProtocolError, UniqueKeys, read_lines
from sasv.extraction.outputs import CM_FIELDS, read_cm_field
from sasv.scoring.track2_files import parse_score

DEFAULT_FIELD = "logit_bonafide"  # what SSL-AASIST's published scores are (no softmax)
TRIAL_SCORE = "score"  # the field of a ``TRIAL SCORE`` file


def read_asvspoof2021_scores(path: str | Path, field: str = DEFAULT_FIELD) -> tuple[dict[str, float], str]:
    """trial -> score, and which score it is: ``field`` of a ``cm_scores.txt``, or :data:`TRIAL_SCORE`
    (whatever ``field``) of a two-column file."""
    path = Path(path)
    lines = read_lines(path)
    width = len(lines[0][1].split())
    if width == 1 + len(CM_FIELDS):
        return read_cm_field(path, field), field
    if width != 2:
        raise ProtocolError(
            f"{path}:1: expected 'TRIAL SCORE' or 'UTT {' '.join(CM_FIELDS)}', got {lines[0][1].strip()!r}"
        )
    scores: dict[str, float] = {}
    unique = UniqueKeys(path, "trials")
    for n, line in lines:
        fields = line.split()
        if len(fields) != 2:
            raise ProtocolError(f"{path}:{n}: expected 'TRIAL SCORE', got {line.strip()!r}")
        unique.add(fields[0], n)
        scores.setdefault(fields[0], parse_score(path, n, fields[1], allow_missing=False))
    unique.check()
    return scores, TRIAL_SCORE
