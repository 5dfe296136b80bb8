"""The ASVspoof 2021 LA and DF evaluation sets: where things are in the release, the strict readers of the
public keys, and the tables' conditions as the organisers' evaluation package forms them.

One folder (``--root``) holds the eval audio and the unpacked key archives (``LA-keys-full.tar.gz``,
``DF-keys-full.tar.gz``, asvspoof.org), in the layout of the package (asvspoof-challenge/2021
``eval-package/config.py``)::

  ASVspoof2021_LA_eval/flac/LA_E_*.flac     ASVspoof2021_DF_eval/flac/DF_E_*.flac (the DF parts unpack here)
  keys/LA/CM/trial_metadata.txt             SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET
  keys/LA/ASV/trial_metadata.txt            the same 8 columns for the ASV trials (KEY target|nontarget|spoof)
  keys/LA/ASV/ASVTorch_Kaldi/score.txt      SPEAKER TRIAL SCORE: the organisers' ASV system (README spelling
                                            ASVtorch_kaldi/ accepted too)
  keys/DF/CM/trial_metadata.txt             SPEAKER TRIAL COMPRESSION SOURCE ATTACK KEY TRIM SUBSET VOCODER
                                            TASK TEAM GENDER_PAIR LANGUAGE

A bona fide line's attack is ``-`` or ``bonafide`` (both occur in the real files); LA spoofs name ``A07`` ...
``A19``, DF spoofs also VCC entries (``Task1-team20``). The ASV key's ids are not the CM key's
(``LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx``, ``LA2021-LA_E_5658320``): an ASV trial is a (speaker,
trial) pair, and its score is the score file's line of the same pair (the package pairs the two files line
by line, which gives the same numbers when their lines are in the same order, as the released ones are).
Trim and subset values are taken as they are (``notrim``/``trim``; ``eval``, ``progress``, ``hidden``).

Stage 1 (``sasv prepare_asvspoof2021``) writes each set as a CM data dir (:mod:`sasv.corpora.datadir`):
``wav.scp``, ``utt2spk``, ``utt2spf`` and the conditions per utterance (:attr:`Track.condition_files`);
for LA also ``asv_scores``, the organisers' ASV trials with their scores (:func:`write_asv_scores`).

Kept free of torch and numpy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sasv.corpora.la import check_split
from sasv.corpora.protocols import (
    BONAFIDE,
    CM_LABELS,
    KEYS,
    SPOOF,
    ProtocolError,
    UniqueKeys,
    line_fields,
    offenders,
    read_lines,
)
from sasv.fileio import atomic_write_text

TRACKS: tuple[str, ...] = ("LA", "DF")
SUBSETS: tuple[str, ...] = ("eval", "progress", "hidden")  # the keys' subsets (the package's names)
DEFAULT_SUBSET = "eval"  # the subset the published numbers are on
ASV_SCORES = "asv_scores"  # the data-dir file of the organisers' ASV trials (LA)
_LA_ATTACK = re.compile(r"A\d\d")
_BONAFIDE_ATTACKS = ("-", BONAFIDE)

# the published sizes of the CM keys (every subset): LA's is ASVspoof2021.LA.cm.eval.trl.txt's line count
RELEASE_TRIALS = {"LA": 181_566, "DF": 611_829}


@dataclass(frozen=True)
class Factor:
    """One axis of the package's tables: the data-dir file that gives each utterance its value (and the key
    column it comes from), the values the package shows in its order, and their printed tags."""

    file: str
    values: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Track:
    """What the recipe knows about one track's evaluation set."""

    name: str  # LA | DF
    benchmark: str  # the corpus of sasv/corpora/registry.py, recorded in prepared.json
    set_name: str  # the data dir stage 1 writes: <out>/<set_name>
    layout: str  # the CM key's columns
    rows: Factor  # the package's first factor: spoofed trials only (attack, vocoder type)
    columns: Factor  # its second: the condition of bona fide and spoofed trials alike (codec, compression)
    condition_files: tuple[str, ...]  # the utt2<x> files of the data dir
    tandem: bool  # min t-DCF with the keys' ASV scores (LA); DF has EERs only


LA_LAYOUT = "SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET"
DF_LAYOUT = "SPEAKER TRIAL COMPRESSION SOURCE ATTACK KEY TRIM SUBSET VOCODER TASK TEAM GENDER_PAIR LANGUAGE"
ASV_LAYOUT = "SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET"

# config.py's ConfigLA / ConfigDF factor lists and tags, in its order (the package adds 'Pooled' last)
LA_ATTACKS = tuple(f"A{i:02d}" for i in range(7, 20))
LA_CODECS = ("none", "alaw", "pstn", "g722", "ulaw", "gsm", "opus")
DF_VOCODERS = (
    "traditional_vocoder",
    "waveform_concatenation",
    "neural_vocoder_autoregressive",
    "neural_vocoder_nonautoregressive",
    "unknown",
)
DF_VOCODER_TAGS = ("Traditional", "Wav.Concat.", "Neural AR", "Neural non-AR", "Unknown")
DF_COMPRESSIONS = (
    "nocodec", "low_mp3", "high_mp3", "low_m4a", "high_m4a", "low_ogg", "high_ogg", "mp3m4a", "oggm4a",
)  # fmt: skip

TRACK_INFO: dict[str, Track] = {
    "LA": Track(
        name="LA",
        benchmark="asvspoof2021_la",
        set_name="la2021_eval",
        layout=LA_LAYOUT,
        rows=Factor("utt2attack", LA_ATTACKS, LA_ATTACKS),
        columns=Factor("utt2codec", LA_CODECS, tuple(f"C{i}" for i in range(1, 8))),
        condition_files=("utt2codec", "utt2transmission", "utt2attack", "utt2subset"),
        tandem=True,
    ),
    "DF": Track(
        name="DF",
        benchmark="asvspoof2021_df",
        set_name="df2021_eval",
        layout=DF_LAYOUT,
        rows=Factor("utt2vocoder", DF_VOCODERS, DF_VOCODER_TAGS),
        columns=Factor("utt2codec", DF_COMPRESSIONS, tuple(f"C{i}" for i in range(1, 10))),
        condition_files=("utt2codec", "utt2attack", "utt2vocoder", "utt2subset"),
        tandem=False,
    ),
}
SET_TRACKS = {t.set_name: t.name for t in TRACK_INFO.values()}
BENCHMARK_TRACKS = {t.benchmark: t.name for t in TRACK_INFO.values()}


def track_info(track: str) -> Track:
    return TRACK_INFO[check_split(track, TRACKS, "ASVspoof 2021 track")]


@dataclass(frozen=True)
class ASVspoof2021Layout:
    """Paths in a folder holding ``ASVspoof2021_{LA,DF}_eval/`` and ``keys/`` (module doc)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    def audio_dir(self, track: str) -> Path:
        return self.root / f"ASVspoof2021_{track_info(track).name}_eval" / "flac"

    def audio(self, track: str, trial: str) -> Path:
        return self.audio_dir(track) / f"{trial}.flac"

    def keys_dir(self, track: str) -> Path:
        return self.root / "keys" / track_info(track).name

    def cm_key(self, track: str) -> Path:
        return self.keys_dir(track) / "CM" / "trial_metadata.txt"

    def asv_key(self) -> Path:
        return self.keys_dir("LA") / "ASV" / "trial_metadata.txt"

    def asv_score_candidates(self) -> list[Path]:
        """config.py's path first, then the README's spelling of the folder."""
        asv = self.keys_dir("LA") / "ASV"
        return [asv / "ASVTorch_Kaldi" / "score.txt", asv / "ASVtorch_kaldi" / "score.txt"]

    def asv_scores(self) -> Path:
        """The organisers' ASV score file: the first candidate that exists (the first when none does, for
        the reader's error)."""
        found = [p for p in self.asv_score_candidates() if p.is_file()]
        return (found or self.asv_score_candidates())[0]


# ----------------------------------------------------------------------------------------------- the keys


class CmTrial(NamedTuple):
    """One line of a CM key: who speaks, the conditions, bona fide or which attack, which subset."""

    spk: str
    utt: str
    codec: str  # LA codec (none, alaw, ...) | DF compression (nocodec, low_mp3, ...)
    attack: str  # "bonafide" or the attack (LA A07 ... A19; DF also VCC entries)
    label: str  # bonafide | spoof
    subset: str  # eval | progress | hidden
    transmission: str = "-"  # LA only
    vocoder: str = "-"  # DF only ("bonafide" for bona fide trials)


class AsvTrial(NamedTuple):
    """One trial of the ASV key with the organisers' ASV score."""

    spk: str
    trial: str
    codec: str
    attack: str  # "bonafide" or A07 ... A19
    key: str  # target | nontarget | spoof
    subset: str
    score: float


def _attack(path: Path, n: int, attack: str, bonafide: bool, la: bool) -> str:
    """A line's attack as the recipe writes it: ``bonafide`` for bona fide speech, else the key's."""
    if bonafide:
        if attack not in _BONAFIDE_ATTACKS:
            raise ProtocolError(f"{path}:{n}: bona fide line with attack {attack!r}; expected - or bonafide")
        return BONAFIDE
    if la and not _LA_ATTACK.fullmatch(attack):
        raise ProtocolError(f"{path}:{n}: spoof line with attack {attack!r}; expected A07 ... A19")
    if attack in _BONAFIDE_ATTACKS:
        raise ProtocolError(f"{path}:{n}: spoof line without an attack ({attack!r})")
    return attack


def read_cm_key(path: str | Path, track: str) -> list[CmTrial]:
    """A track's CM key (``keys/<track>/CM/trial_metadata.txt``), in file order."""
    path, info = Path(path), track_info(track)
    count = len(info.layout.split())
    trials: list[CmTrial] = []
    unique = UniqueKeys(path, "trials")
    for n, line in read_lines(path):
        f = line_fields(path, n, line, count, info.layout)
        label = f[5]
        if label not in CM_LABELS:
            raise ProtocolError(f"{path}:{n}: unknown key {label!r}; expected one of {', '.join(CM_LABELS)}")
        attack = _attack(path, n, f[4], label == BONAFIDE, la=info.name == "LA")
        unique.add(f[1], n)
        if info.name == "LA":
            trials.append(CmTrial(f[0], f[1], f[2], attack, label, f[7], transmission=f[3]))
        else:
            trials.append(CmTrial(f[0], f[1], f[2], attack, label, f[7], vocoder=f[8]))
    unique.check()
    return trials


def _read_asv_score_file(path: Path) -> dict[tuple[str, str], tuple[float, int]]:
    scores: dict[tuple[str, str], tuple[float, int]] = {}
    unique = UniqueKeys(path, "trials")
    for n, line in read_lines(path):
        spk, trial, value = line_fields(path, n, line, 3, "SPEAKER TRIAL SCORE")
        try:
            score = float(value)
        except ValueError:
            raise ProtocolError(f"{path}:{n}: score {value!r} is not a number") from None
        if not math.isfinite(score):
            raise ProtocolError(f"{path}:{n}: score of {spk} {trial} is {value}")
        unique.add((spk, trial), n)
        scores.setdefault((spk, trial), (score, n))
    unique.check()
    return scores


def read_asv_trials(key_path: str | Path, score_path: str | Path) -> list[AsvTrial]:
    """The LA ASV key with the organisers' ASV scores, in the key's order; every trial of the key must have
    exactly one score, and the score file no trial the key lacks."""
    key_path, score_path = Path(key_path), Path(score_path)
    rows: list[tuple[str, str, str, str, str, str]] = []
    unique = UniqueKeys(key_path, "trials")
    for n, line in read_lines(key_path):
        spk, trial, codec, _, attack, key, _, subset = line_fields(key_path, n, line, 8, ASV_LAYOUT)
        if key not in KEYS:
            raise ProtocolError(f"{key_path}:{n}: unknown key {key!r}; expected one of {', '.join(KEYS)}")
        attack = _attack(key_path, n, attack, key != SPOOF, la=True)
        unique.add((spk, trial), n)
        rows.append((spk, trial, codec, attack, key, subset))
    unique.check()
    scores = _read_asv_score_file(score_path)
    missing = [f"{spk} {trial}" for spk, trial, *_ in rows if (spk, trial) not in scores]
    if missing:
        raise ProtocolError(
            f"{score_path}: no score for {len(missing)} trial(s) of {key_path}: {offenders(missing)}"
        )
    if len(scores) > len(rows):
        listed = {(spk, trial) for spk, trial, *_ in rows}
        extra = sorted((n, f"{s} {t}") for (s, t), (_, n) in scores.items() if (s, t) not in listed)
        raise ProtocolError(
            f"{score_path}: {len(extra)} scored trial(s) are not in {key_path}: "
            f"{offenders([f'{name} (line {n})' for n, name in extra])}"
        )
    return [AsvTrial(*row, scores[row[0], row[1]][0]) for row in rows]


# ------------------------------------------------------------------------------------------ the data dir


def write_asv_scores(path: str | Path, trials: Iterable[AsvTrial]) -> None:
    """``asv_scores``: ``SPEAKER TRIAL CODEC ATTACK KEY SUBSET SCORE`` per ASV trial, sorted in C order; the
    score as Python writes a float (read back to the same bits)."""
    lines = sorted(f"{t.spk} {t.trial} {t.codec} {t.attack} {t.key} {t.subset} {t.score!r}" for t in trials)
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_asv_scores(path: str | Path) -> list[AsvTrial]:
    """A data dir's ``asv_scores``, strictly (file order)."""
    path = Path(path)
    trials: list[AsvTrial] = []
    unique = UniqueKeys(path, "trials")
    for n, line in read_lines(path):
        spk, trial, codec, attack, key, subset, value = line_fields(
            path, n, line, 7, "SPEAKER TRIAL CODEC ATTACK KEY SUBSET SCORE"
        )
        if key not in KEYS:
            raise ProtocolError(f"{path}:{n}: unknown key {key!r}; expected one of {', '.join(KEYS)}")
        try:
            score = float(value)
        except ValueError:
            raise ProtocolError(f"{path}:{n}: score {value!r} is not a number") from None
        if not math.isfinite(score):
            raise ProtocolError(f"{path}:{n}: score of {spk} {trial} is {value}")
        unique.add((spk, trial), n)
        trials.append(AsvTrial(spk, trial, codec, attack, key, subset, score))
    unique.check()
    return trials


def conditions_of(trials: Sequence[CmTrial], track: str) -> dict[str, dict[str, str]]:
    """The data dir's condition files of ``track``'s CM trials: file name -> utterance -> value."""
    values = {
        "utt2codec": lambda t: t.codec,
        "utt2transmission": lambda t: t.transmission,
        "utt2attack": lambda t: t.attack,
        "utt2vocoder": lambda t: t.vocoder,
        "utt2subset": lambda t: t.subset,
    }
    return {name: {t.utt: values[name](t) for t in trials} for name in track_info(track).condition_files}
