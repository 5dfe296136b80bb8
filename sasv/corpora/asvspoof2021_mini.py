"""Synthetic mini corpora in exactly the ASVspoof 2021 LA and DF release layouts (the eval audio and the
public keys, :mod:`sasv.corpora.asvspoof2021`), to run the recipe's CM evaluation on them in seconds.

The utterances are the LA mini corpus's eval test utterances (:mod:`sasv.corpora.la_mini`: the same plan,
voices and seed), bona fide and spoofed by A07 ... A19, written as ``OUT/ASVspoof2021_LA/`` (``LA_E_*``) or
``OUT/ASVspoof2021_DF/`` (``DF_E_*``, the same numbers). Each gets a condition in turn (LA's seven codecs
with their transmissions, DF's nine compressions and three sources; DF spoofs a vocoder type by attack),
and every third falls in the ``progress`` subset, the rest in ``eval``. LA also gets the ASV key of the plan's
eval trials (target, nontarget and spoof, per claimed speaker and condition, ids as in the release:
``LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx``, spoofs ``LA2021-LA_E_...``) and a synthetic organisers' ASV
score per trial, drawn from the seed (targets high, nontargets low, spoofs between).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from sasv.audio import SAMPLE_RATE
from sasv.corpora.asvspoof2021 import DF_COMPRESSIONS, DF_VOCODERS, LA_CODECS, ASVspoof2021Layout
from sasv.corpora.la_mini import MARKER, CorpusPlan, Utterance, clear_corpus_root, render
from sasv.corpora.protocols import SPOOF, TARGET
from sasv.fileio import atomic_output, atomic_write_text

ROOT_NAMES = {"LA": "ASVspoof2021_LA", "DF": "ASVspoof2021_DF"}
LA_TRANSMISSIONS = {"none": "-", "alaw": "ita_tx", "pstn": "loc_tx", "g722": "sin_tx", "ulaw": "mad_tx",
                    "gsm": "ita_tx", "opus": "sin_tx"}  # fmt: skip
DF_SOURCES = ("asvspoof", "vcc2018", "vcc2020")
ASV_SCORE_CENTRES = {TARGET: 3.0, "nontarget": -3.0, SPOOF: 1.0}


def trial_id(track: str, la_utt: str) -> str:
    return la_utt if track == "LA" else la_utt.replace("LA_E_", "DF_E_", 1)


def subset_of(index: int) -> str:
    return "progress" if index % 3 == 2 else "eval"


def _tests(plan: CorpusPlan) -> list[tuple[int, Utterance]]:
    """The eval test utterances, each with its index among those of its class (bona fide or spoofed), which
    picks its condition: every condition gets both classes as soon as there are enough utterances."""
    tests = plan.of("eval", "test")
    counters = {True: 0, False: 0}
    out = []
    for u in tests:
        out.append((counters[u.bonafide], u))
        counters[u.bonafide] += 1
    return out


def _write(plan: CorpusPlan, out_dir: str | Path, track: str, key_lines: Callable) -> ASVspoof2021Layout:
    root = Path(out_dir) / ROOT_NAMES[track]
    clear_corpus_root(root)
    layout = ASVspoof2021Layout(root)
    tests = _tests(plan)
    for _, u in tests:
        with atomic_output(layout.audio(track, trial_id(track, u.utt))) as tmp:
            sf.write(tmp, render(plan, u), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    key_lines(plan, layout, tests)
    generator = f"sasv.corpora.asvspoof2021_mini (synthetic ASVspoof 2021 {track}: not ASVspoof data)"
    record = {"generator": generator, **dataclasses.asdict(plan.config)}
    atomic_write_text(root / MARKER, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return layout


def _text(rows: list[str]) -> str:
    return "".join(r + "\n" for r in rows)


def _la_keys(plan: CorpusPlan, layout: ASVspoof2021Layout, tests: list[tuple[int, Utterance]]) -> None:
    condition: dict[str, tuple[str, str, str]] = {}
    rows = []
    for i, u in tests:
        codec = LA_CODECS[i % len(LA_CODECS)]
        transmission, subset = LA_TRANSMISSIONS[codec], subset_of(i)
        condition[u.utt] = (codec, transmission, subset)
        attack, label = ("bonafide", "bonafide") if u.bonafide else (u.attack, SPOOF)
        rows.append(f"{u.spk} {u.utt} {codec} {transmission} {attack} {label} notrim {subset}")
    atomic_write_text(layout.cm_key("LA"), _text(rows))
    rng = np.random.default_rng(plan.config.seed)
    key_rows, score_rows = [], []
    for t in plan.trials("eval"):
        codec, transmission, subset = condition[t.utt]
        spk = f"{t.spk}-{codec}-{transmission}"
        trial = f"LA2021-{t.utt}" if t.key == SPOOF else f"{t.utt}-{codec}-{transmission}"
        key_rows.append(f"{spk} {trial} {codec} {transmission} {t.attack} {t.key} notrim {subset}")
        score_rows.append(f"{spk} {trial} {rng.normal(ASV_SCORE_CENTRES[t.key], 1.0):.6f}")
    atomic_write_text(layout.asv_key(), _text(key_rows))
    atomic_write_text(layout.asv_score_candidates()[0], _text(score_rows))


def _df_keys(plan: CorpusPlan, layout: ASVspoof2021Layout, tests: list[tuple[int, Utterance]]) -> None:
    rows = []
    for i, u in tests:
        compression, source = DF_COMPRESSIONS[i % len(DF_COMPRESSIONS)], DF_SOURCES[i % len(DF_SOURCES)]
        if u.bonafide:
            attack, label, vocoder = "-", "bonafide", "bonafide"
        else:
            attack, label = u.attack, SPOOF
            vocoder = DF_VOCODERS[int(u.attack[1:]) % len(DF_VOCODERS)]
        rows.append(
            f"{u.spk} {trial_id('DF', u.utt)} {compression} {source} {attack} {label} notrim {subset_of(i)} "
            f"{vocoder} - - - -"
        )
    atomic_write_text(layout.cm_key("DF"), _text(rows))


def write_la_corpus(plan: CorpusPlan, out_dir: str | Path) -> ASVspoof2021Layout:
    """Write the LA eval audio and keys under ``out_dir/ASVspoof2021_LA``, replacing an earlier mini corpus
    there (never a folder a mini-corpus writer did not make)."""
    return _write(plan, out_dir, "LA", _la_keys)


def write_df_corpus(plan: CorpusPlan, out_dir: str | Path) -> ASVspoof2021Layout:
    """Write the DF eval audio and key under ``out_dir/ASVspoof2021_DF`` (as :func:`write_la_corpus`)."""
    return _write(plan, out_dir, "DF", _df_keys)
