"""One record per corpus the recipe evaluates on, and the registry of them: what the stage scripts, the mini
corpus and scoring ask about a corpus instead of branching on its name.

A corpus is a benchmark: stage 1 records its name in every trial dir's ``prepared.json``
(:func:`sasv.markers.write_prepared_marker`) and everything after stage 1 reads it there (which metrics
scoring reports, whether it writes the official submission files, the tables' titles). Adding a corpus is its
own modules (a layout, protocol readers, a ``prepare_*`` tool, a mini-corpus writer), one entry of
:data:`CORPORA` and its tests: the shell scripts ask ``sasv corpus`` (:mod:`sasv.bin.corpus`) and hold no
case per corpus, ``sasv make_mini_corpus --corpus`` and the reports read the records.

Kept light (no torch, numpy or audio library): the shell scripts ask it before every run, so a corpus's
mini-corpus writer is named here and imported only when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sasv.errors import SasvError
from sasv.markers import recorded_benchmark


class CorpusError(SasvError, ValueError):
    """An unknown corpus, or options the corpus cannot honour."""


@dataclass(frozen=True)
class Corpus:
    """What the recipe knows about one corpus (and the benchmark of its trials)."""

    name: str  # --corpus, and the benchmark stage 1 records in prepared.json
    title: str  # the benchmark in tables and logs
    folder: str  # what --root names (error messages, help)
    prepare_tool: str  # stage 1: ``sasv <tool> --root <folder> --out ...`` (+ sasv/bin/options.py's)
    mini_corpus: str  # "module:function": (la_mini.CorpusPlan, out_dir) -> the written tree's layout (.root)
    a_dcf_models: tuple[str, ...]  # the benchmark's default metrics: a-DCF cost models (sasv.metrics)...
    tandem: bool = False  # ... with min t-DCF and t-EER (reports.records.MetricChoice)
    track1: bool = False  # ... with the CM's Track 1 metrics
    official_files: bool = False  # score_trials writes the official Track 2 / Track 1 files (SYSTEM_FILES)
    download: str = ""  # stage 0: ``<script> <download_dir> <parent of the folder>``; "": fetched by hand
    needs_root: bool = True  # False: without --root, stage 1 reads the scripts' --la_root (LA's folder)
    stage1_options: tuple[str, ...] = ()  # prepare_tool's own options, which the scripts pass only when set
    sets: tuple[str, ...] = ("dev", "eval")  # the data dirs stage 1 writes (the scripts' default --sets)
    # a countermeasure benchmark: CM data dirs (utt2spf, no SASV trials), no ASV embeddings (stage 2 skips
    # it), no SASV scoring (a-DCF and its kin: no a_dcf_models); its metrics are stage 4's tool's:
    # ``sasv <cm_evaluation> --cm_conf <conf> --exp_dir <exp> --data <data dir>``
    cm_only: bool = False
    cm_evaluation: str = ""

    def mini_corpus_writer(self) -> Callable[..., Any]:
        """The function writing this corpus's synthetic mini corpus (imported now: it needs numpy)."""
        module, _, function = self.mini_corpus.partition(":")
        return getattr(importlib.import_module(module), function)


DEFAULT_CORPUS = "la"  # the recipe's first benchmark: the default corpus, and that of an unmarked data dir

CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            name="la", title="ASVspoof 2019 LA", prepare_tool="prepare_la",
            folder="the LA/ folder of LA.zip: ASVspoof2019_LA_{dev,eval}/, ...",
            mini_corpus="sasv.corpora.la_mini:write_corpus", a_dcf_models=("paper",),
            download="local/download_la.sh", needs_root=False, stage1_options=("trials_dir",),
        ),
        Corpus(
            name="asvspoof5", title="ASVspoof 5 Track 2", prepare_tool="prepare_asvspoof5",
            folder="the ASVspoof 5 folder: flac_D/, flac_E_eval/, ...",
            mini_corpus="sasv.corpora.asvspoof5_mini:write_asvspoof5_corpus", a_dcf_models=("sasv2024",),
            tandem=True, track1=True, official_files=True,
        ),
        Corpus(
            name="asvspoof2021_la", title="ASVspoof 2021 LA", prepare_tool="prepare_asvspoof2021",
            folder="the folder holding ASVspoof2021_LA_eval/ and keys/LA/ (LA-keys-full.tar.gz)",
            mini_corpus="sasv.corpora.asvspoof2021_mini:write_la_corpus", a_dcf_models=(),
            sets=("la2021_eval",), cm_only=True, cm_evaluation="evaluate_asvspoof2021",
        ),
        Corpus(
            name="asvspoof2021_df", title="ASVspoof 2021 DF", prepare_tool="prepare_asvspoof2021",
            folder="the folder holding ASVspoof2021_DF_eval/ and keys/DF/ (DF-keys-full.tar.gz)",
            mini_corpus="sasv.corpora.asvspoof2021_mini:write_df_corpus", a_dcf_models=(),
            sets=("df2021_eval",), cm_only=True, cm_evaluation="evaluate_asvspoof2021",
        ),
    )
}  # fmt: skip


def get_corpus(name: str) -> Corpus:
    """The registered corpus ``name``; an error naming the choices otherwise."""
    if name not in CORPORA:
        names = list(CORPORA)
        choices = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        raise CorpusError(f"--corpus must be {choices}, got {name!r}")
    return CORPORA[name]


def prepared_benchmark(data_dir: str | Path) -> str:
    """The benchmark stage 1 recorded for a trial dir; :data:`DEFAULT_CORPUS` for a data dir made by hand or
    before the record existed."""
    return recorded_benchmark(data_dir) or DEFAULT_CORPUS


def check_options(
    corpus: Corpus, root: str, stage1: bool, download: bool, set_options: tuple[str, ...] = ()
) -> None:
    """Refuse what a run of the stage scripts cannot do with ``corpus``: stage 1 without a folder, a download
    stage 0 has not got, a stage-1 option its tool does not take (it would be ignored)."""
    if stage1 and not root and corpus.needs_root:
        raise CorpusError(f"--corpus {corpus.name} needs --root ({corpus.folder}) for stage 1")
    if download and not corpus.download:
        raise CorpusError(f"--download true: stage 0 cannot download {corpus.title}; get it by hand")
    other = [o for o in set_options if o not in corpus.stage1_options]
    if other:
        raise CorpusError(f"--{other[0]} is not an option of --corpus {corpus.name}: it would be ignored")
