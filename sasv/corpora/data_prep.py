"""What the corpus preparation tools (stage 1: ``sasv prepare_la``, ``sasv prepare_asvspoof5``) share:
audio paths checked against the disk in one directory scan, the decode-everything audio check and its
report, who speaks each utterance (:func:`utterance_speakers`: the trial, enrolment and CM lists must agree
wherever two of them say it), and the CM data dirs (``wav.scp``, ``utt2spk``, ``spk2utt``, ``utt2spf``)
``sasv train_cm`` trains on.
A corpus is described to them by a layout with ``audio_dir(split)`` and ``audio``-file names ``<utt>.flac``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from sasv.audio import find_suspect_audio
from sasv.corpora.datadir import (
    DataDir,
    DataDirError,
    spk2utt_from_utt2spk,
    validate_datadir,
    write_spk2utt,
    write_utt2spf,
    write_utt2spk,
    write_wav_scp,
)
from sasv.corpora.protocols import (
    CmEntry,
    Trial,
    check_enrollment_against_cm,
    check_nontarget_claims,
    offenders,
    true_speakers,
)
from sasv.fileio import atomic_write_text
from sasv.markers import write_prepared_marker

log = logging.getLogger("prepare")


class AudioLayout(Protocol):
    def audio_dir(self, split: str) -> Path: ...


def audio_paths(layout: AudioLayout, split: str, utts: Iterable[str], what: str) -> dict[str, str]:
    """utt -> absolute flac path, after checking that every file exists (one directory scan, not one stat
    per utterance: LA eval has 71k files)."""
    audio_dir = layout.audio_dir(split)
    if not audio_dir.is_dir():
        raise DataDirError(f"{audio_dir}: audio folder does not exist (is the corpus root right?)")
    present = {e.name for e in os.scandir(audio_dir)}
    utts = list(utts)
    missing = sorted(f"{u}.flac" for u in utts if f"{u}.flac" not in present)
    if missing:
        raise DataDirError(
            f"{len(missing)} of {len(utts)} audio files referenced by {what} are missing from {audio_dir}: "
            f"{offenders(missing)}"
        )
    root = audio_dir.resolve()
    return {u: str(root / f"{u}.flac") for u in utts}


def utterance_speakers(
    trials: Sequence[Trial],
    enroll: Mapping[str, Sequence[str]],
    cm: Sequence[CmEntry] | None,
    sources: Mapping[str, str],
    unit: str = "utterance",
) -> dict[str, str]:
    """utt2spk of a trial data dir: the true speaker of every test utterance
    (:func:`sasv.corpora.protocols.true_speakers`) and the enrolled speaker of every enrolment utterance,
    after checking that the lists agree wherever two of them determine the same label: trials against the CM
    protocol (speaker, bona fide or spoofed, attack), enrolment utterances against it (bona fide, the
    enrolled speaker), an enrolment utterance that is also a test utterance (one speaker), a nontarget
    trial against its utterance's speaker (not the claimed one). ``cm``: the CM protocol's entries, None
    without one (then a test utterance seen only in nontarget trials is its enrolled speaker's, if it is
    an enrolment utterance, else its own speaker). ``sources``: the files' names for errors, keys
    ``trials``, ``enroll`` and ``cm``; ``unit``: what the corpus calls an utterance in errors.
    """
    speakers = true_speakers(trials, cm, sources.get("cm", "the CM protocol"), sources["trials"])
    if cm is not None:
        check_enrollment_against_cm(enroll, cm, sources.get("cm", "the CM protocol"))
    unknown = {u for u, s in speakers.items() if u == s} if cm is None else set()
    utt2spk = dict(speakers)
    for spk, utts in enroll.items():
        for u in utts:
            if u in unknown:  # a test utterance of no known speaker: the enrolment list names it
                utt2spk[u] = spk
                unknown.discard(u)
            elif utt2spk.setdefault(u, spk) != spk:
                raise DataDirError(f"{u} is an enrolment {unit} of {spk} and a test {unit} of {utt2spk[u]}")
    check_nontarget_claims(trials, utt2spk, f"{sources['trials']} (with {sources['enroll']})")
    return utt2spk


AUDIO_REPORT = "audio_report.txt"


def check_audio(split: str, wav_scp: dict[str, str], policy: str) -> dict[str, str]:
    """Decode every file of a split; suspicious ones (silence, clipping) are a warning or, with
    ``policy='error'``, an error naming them."""
    suspects = find_suspect_audio(wav_scp, f"{split}: checking audio")
    if suspects:
        listing = offenders([f"{u} ({why})" for u, why in sorted(suspects.items())])
        if policy == "error":
            raise DataDirError(
                f"{split}: {len(suspects)} suspicious audio file(s): {listing}; fix or drop them, or pass "
                f"--suspect_audio warn to score them anyway"
            )
        log.warning("%s: %d suspicious audio file(s), scored anyway: %s", split, len(suspects), listing)
    return suspects


def write_audio_report(out: Path, wav_scp: dict[str, str], suspects: dict[str, str]) -> None:
    """``<data dir>/audio_report.txt``: ``UTT PATH PROBLEM`` per suspicious file (none: no report)."""
    report = out / AUDIO_REPORT
    if not suspects:
        report.unlink(missing_ok=True)
        return
    atomic_write_text(report, "".join(f"{u} {wav_scp[u]} {why}\n" for u, why in sorted(suspects.items())))


CM_PREFIX = "cm_"


CmLists = tuple[dict[str, str], dict[str, str], dict[str, str]]


def write_cm_dir(out: Path, lists: CmLists, source: Path) -> None:
    wav_scp, utt2spk, utt2spf = lists
    write_wav_scp(out / "wav.scp", wav_scp)
    write_utt2spk(out / "utt2spk", utt2spk)
    write_spk2utt(out / "spk2utt", spk2utt_from_utt2spk(utt2spk))
    write_utt2spf(out / "utt2spf", utt2spf)
    write_prepared_marker(out, [source])
    bonafide = sum(label == "bonafide" for label in utt2spf.values())
    print(f"{out.name}: {bonafide} bona fide + {len(utt2spf) - bonafide} spoofed utterances -> {out}")


COHORT = "train_cohort"


def write_trial_dir(
    out: Path, data: DataDir, sources: Sequence[Path], suspects: dict[str, str], benchmark: str
) -> None:
    """Write a checked SASV data dir, its audio report and its ``prepared.json`` (last, naming the
    benchmark, which decides the metrics scoring reports)."""
    data.write(out)
    validate_datadir(out)
    write_audio_report(out, data.wav_scp, suspects)
    write_prepared_marker(out, list(sources), benchmark)


def write_cohort_dir(out: Path, wav_scp: dict[str, str], utt2spk: dict[str, str], source: Path) -> None:
    write_wav_scp(out / "wav.scp", wav_scp)
    write_utt2spk(out / "utt2spk", utt2spk)
    write_spk2utt(out / "spk2utt", spk2utt_from_utt2spk(utt2spk))
    write_prepared_marker(out, [source])
    print(f"{COHORT}: {len(wav_scp)} bona fide utterances of {len(set(utt2spk.values()))} speakers -> {out}")
