"""The synthetic mini corpus in exactly the ASVspoof 5 release layout, to run the recipe on it in seconds.

The same plan as the LA mini corpus (:mod:`sasv.corpora.la_mini`: speakers, voices, utterances, trials, all
from one seed), written with ASVspoof 5's names: ``flac_T/``, ``flac_D/``, ``flac_E_eval/`` holding
``T_0000123456.flac`` style files (enrolment files ``D_A0000123456``), speakers ``D_0123``, the release's
protocol files (``ASVspoof5.{train,dev,eval}.tsv``, ``ASVspoof5.{dev,eval}.track_2.{trial,enroll}.tsv``)
and ASVspoof 5's attack ranges (train A01-A08, dev A09-A16, eval A17-A32).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import soundfile as sf

from sasv.audio import SAMPLE_RATE
from sasv.corpora.asvspoof5 import SPLITS, TRACK2_SPLITS, ASVspoof5Layout
from sasv.corpora.la_mini import MARKER, CorpusPlan, clear_corpus_root, render
from sasv.corpora.protocols import BONAFIDE
from sasv.fileio import atomic_output, atomic_write_text

ROOT_NAME = "ASVspoof5"
_LETTER = {"train": "T", "dev": "D", "eval": "E"}
# the LA plan's attack ids (A01-A06 known, A07-A19 unseen) -> ASVspoof 5's ranges per split
_ATTACK_OFFSET = {"train": 0, "dev": 8, "eval": 10}


def speaker_id(split: str, la_spk: str) -> str:
    return f"{_LETTER[split]}_{la_spk.removeprefix('LA_')}"


def file_id(split: str, la_utt: str) -> str:
    number = la_utt.rsplit("_", 1)[1]
    enrol = number.startswith("A")
    return f"{_LETTER[split]}_{'A' if enrol else ''}{int(number.removeprefix('A')):010d}"


def attack_id(split: str, la_attack: str) -> str:
    if la_attack in ("-", BONAFIDE):
        return BONAFIDE
    return f"A{int(la_attack[1:]) + _ATTACK_OFFSET[split]:02d}"


# as the release: train and dev uncoded ("-"), eval also through codecs (C01-C11 there; two here)
_EVAL_CODECS = ("-", "C01", "C02")


def codec_id(split: str, index: int) -> str:
    """The codec condition of the split's index-th metadata line."""
    return _EVAL_CODECS[index % len(_EVAL_CODECS)] if split == "eval" else "-"


def _lines(rows: list[str]) -> str:
    return "".join(r + "\n" for r in rows)


def write_asvspoof5_corpus(plan: CorpusPlan, out_dir: str | Path) -> ASVspoof5Layout:
    """Write audio and protocols under ``out_dir/ASVspoof5``, replacing an earlier mini corpus there (never
    a folder this module did not make)."""
    root = Path(out_dir) / ROOT_NAME
    clear_corpus_root(root)
    layout = ASVspoof5Layout(root)
    for u in plan.utterances:
        with atomic_output(layout.audio(u.split, file_id(u.split, u.utt))) as tmp:
            sf.write(tmp, render(plan, u), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    gender = {spk: voice.gender[0].upper() for spk, voice in plan.voices.items()}
    for split in SPLITS:
        rows = [
            f"{speaker_id(split, e.spk)} {file_id(split, e.utt)} {gender[e.spk]} {codec_id(split, i)} - - - "
            f"{attack_id(split, e.attack)} {e.label} -"
            for i, e in enumerate(plan.cm_entries(split))
        ]
        atomic_write_text(root / f"ASVspoof5.{split}.tsv", _lines(rows))
    for split in TRACK2_SPLITS:
        enrol = {**plan.enrollment(split, "female"), **plan.enrollment(split, "male")}
        rows = [
            f"{speaker_id(split, spk)} {','.join(file_id(split, u) for u in utts)}"
            for spk, utts in sorted(enrol.items())
        ]
        atomic_write_text(root / f"ASVspoof5.{split}.track_2.enroll.tsv", _lines(rows))
        rows = [
            f"{speaker_id(split, t.spk)} {file_id(split, t.utt)} {gender[t.spk]} "
            f"{attack_id(split, t.attack)} {t.key}"
            for t in plan.trials(split)
        ]
        atomic_write_text(root / f"ASVspoof5.{split}.track_2.trial.tsv", _lines(rows))
    generator = "sasv.corpora.asvspoof5_mini (synthetic: not ASVspoof data)"
    record = {"generator": generator, **dataclasses.asdict(plan.config)}
    atomic_write_text(root / MARKER, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return layout
