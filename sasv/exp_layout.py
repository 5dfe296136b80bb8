"""The one owner of the ``exp/`` layout: where every stage writes, and how systems are named.

::

    exp/<asv>/embeddings/model.json                 the ASV model's record (conf, checkpoint sha256)
    exp/<asv>/embeddings/<set>/xvector.{scp,done}    stage 2 (chunks/ holds the arks the scp points into)
    exp/<cm>/scores/model.json                      the CM model's record
    exp/<cm>/scores/<set>/cm_scores.txt{,.done}      stage 3
    exp/<cm>/<benchmark>_<subset>/results.{json,md}  stage 4: a CM benchmark's metrics (ASVspoof 2021 LA/DF,
                                                    sasv evaluate_asvspoof2021)
    exp/<asv>/<cm>/<variant>/                       run_test stage 1: one scored system (scores, tables;
                                                    ASVspoof 5: the Track 1 and 2 files, system_file),
                                                    results.{json,md}; analysis.{json,md} (analyse_system)
    exp/fusion/logreg_<variant>/                    run_test stage 2: learned fusion of several systems
    exp/summary.md, exp/RESULTS.md, exp/logs/        run_test stage 3, stage script logs
    exp/train/<name>/                               run_train_asv.sh: checkpoints, log, exported model

A system is named ``<asv>/<cm>/<variant>``, its path under ``exp/``: model names cannot contain ``/`` and
cannot be the folder names above (:func:`check_model_name`, enforced when a conf is read), so a name can
neither collide nor be mis-split. ``<variant>`` is the embedding norm, plus ``_<score_norm>`` when the ASV
score is normalised and ``_<score_rule>`` when the SASV score is not the default product rule
(:func:`variant`).

The shell stages ask this module instead of recomputing paths (``sasv exp_path --help``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sasv.errors import SasvError

EMBEDDINGS_DIR = "embeddings"
CM_SCORES_DIR = "scores"
FUSION_DIR = "fusion"
LOGS_DIR = "logs"
TRAIN_DIR = "train"
TRAINED_SUFFIX = "_trained"  # a trained model's default name: <conf name>_trained
MODEL_RECORD = "model.json"
RESULTS_RECORD = "results.json"  # a scored system's, a fusion's and a training run's record
RESULTS_TABLE = "results.md"  # ... and its tables
ANALYSIS_RECORD = "analysis.json"  # a system's diagnostics (sasv analyse_system)
ANALYSIS_TABLE = "analysis.md"
FUSION_NAME = "logreg"
# the reference's score rule (sasv.scoring.cosine.SCORE_RULES): its systems' names carry no rule
DEFAULT_SCORE_RULE = "product"
FUSED_VARIANT = "fused"
RESERVED_NAMES = frozenset({EMBEDDINGS_DIR, CM_SCORES_DIR, FUSION_DIR, LOGS_DIR, TRAIN_DIR})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_STAGE_DIRS = {"asv": EMBEDDINGS_DIR, "cm": CM_SCORES_DIR}


class LayoutError(SasvError, ValueError):
    """A model name that cannot be a folder of the exp layout."""


def check_model_name(name: str, source: str = "conf") -> None:
    if not _NAME.fullmatch(name):
        raise LayoutError(
            f"{source}: name {name!r} must be letters, digits and _ . + - (it names folders under exp/)"
        )
    if name in RESERVED_NAMES:
        raise LayoutError(f"{source}: name {name!r} is reserved for exp/{name}/; choose another")


# The files of a scored system (or fusion), per set: its score list (``spk utt attack key asv cm fused``) and
# the SASV 2022 submission; on ASVspoof 5 also the official-format files: Track 2's submission and keys (P_CM,
# cosine, fused score), Track 1's CM log-odds per test utterance and their keys.
SYSTEM_FILES = {
    "scores": "scores_{set}.txt",
    "submission": "scores_{set}.sasv.txt",
    "track2_scores": "scores_{set}.track2.tsv",
    "track2_keys": "keys_{set}.track2.tsv",
    "track1_scores": "cm_scores_{set}.track1.tsv",
    "track1_keys": "cm_keys_{set}.track1.tsv",
}


def system_file(system_dir: str | Path, kind: str, set_name: str) -> Path:
    """Where a scored system keeps its ``kind`` file (:data:`SYSTEM_FILES`) of ``set_name``."""
    return Path(system_dir) / SYSTEM_FILES[kind].format(set=set_name)


def score_file(system_dir: str | Path, set_name: str) -> Path:
    """A scored system's score list of ``set_name``: ``scores_<set>.txt``."""
    return system_file(system_dir, "scores", set_name)


def submission_file(system_dir: str | Path, set_name: str) -> Path:
    """A scored system's SASV 2022 submission of ``set_name``: ``scores_<set>.sasv.txt``."""
    return system_file(system_dir, "submission", set_name)


def variant(norm: str, score_norm: str = "none", score_rule: str = DEFAULT_SCORE_RULE) -> str:
    """The scoring variant: ``nonorm``/``l2norm``, with ``_asnorm`` when the ASV score is AS-normed and
    ``_<score_rule>`` (``_sum``) when the SASV score is not the default product rule (``--fusion``).

    Everything a system dir holds (scores, tables, figures) depends on the score rule, so two rules must
    not share a dir: a ``--fusion sum`` run used to overwrite the product run's results. The default rule
    adds nothing, so the reference layout (and every existing output's path) stays as it was.
    """
    name = norm if score_norm == "none" else f"{norm}_{score_norm}"
    return name if score_rule == DEFAULT_SCORE_RULE else f"{name}_{score_rule}"


@dataclass(frozen=True)
class StageOutput:
    """The final file of a model stage on one set, its resumable chunks and its completion marker."""

    file: Path
    chunk_dir: Path
    marker: Path

    @property
    def dir(self) -> Path:
        return self.file.parent


def embeddings_output(set_dir: str | Path) -> StageOutput:
    set_dir = Path(set_dir)
    return StageOutput(set_dir / "xvector.scp", set_dir / "chunks", set_dir / "xvector.done")


def cm_scores_output(file: str | Path) -> StageOutput:
    file = Path(file)
    return StageOutput(file, file.parent / f".{file.name}.chunks", file.with_name(file.name + ".done"))


@dataclass(frozen=True)
class ExpLayout:
    """Paths under one experiment root."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    def model_dir(self, name: str, kind: str) -> Path:
        """``exp/<name>/embeddings`` for an ASV model, ``exp/<name>/scores`` for a CM."""
        return self.root / name / _STAGE_DIRS[kind]

    def model_record(self, name: str, kind: str) -> Path:
        return self.model_dir(name, kind) / MODEL_RECORD

    def cm_benchmark_dir(self, name: str, benchmark: str, subset: str) -> Path:
        """Where a CM's metrics on a countermeasure benchmark go: ``exp/<cm>/<benchmark>_<subset>``."""
        return self.root / name / f"{benchmark}_{subset}"

    def stage_output(self, name: str, kind: str, set_name: str) -> StageOutput:
        set_dir = self.model_dir(name, kind) / set_name
        return embeddings_output(set_dir) if kind == "asv" else cm_scores_output(set_dir / "cm_scores.txt")

    @staticmethod
    def system_name(asv: str, cm: str, variant_name: str) -> str:
        return f"{asv}/{cm}/{variant_name}"

    def system_dir(self, asv: str, cm: str, variant_name: str) -> Path:
        return self.root / self.system_name(asv, cm, variant_name)

    def fusion_dir(self, variant_name: str) -> Path:
        return self.root / FUSION_DIR / f"{FUSION_NAME}_{variant_name}"

    @staticmethod
    def trained_name(conf_name: str) -> str:
        """The default name of a model trained from the conf named ``conf_name``."""
        return f"{conf_name}{TRAINED_SUFFIX}"

    def train_dir(self, name: str) -> Path:
        """Where a trained model's checkpoints, log, exported weights and conf go."""
        return self.root / TRAIN_DIR / name

    def results_records(self) -> list[Path]:
        """Every scored system's and fusion's ``results.json``, sorted."""
        systems = [
            p
            for p in self.root.glob(f"*/*/*/{RESULTS_RECORD}")
            if p.parts[-4] not in RESERVED_NAMES and p.parts[-3] not in RESERVED_NAMES
        ]
        fusions = (self.root / FUSION_DIR).glob(f"*/{RESULTS_RECORD}")
        return sorted({*systems, *fusions})

    @property
    def summary(self) -> Path:
        return self.root / "summary.md"

    @property
    def results_md(self) -> Path:
        return self.root / "RESULTS.md"

    @property
    def logs_dir(self) -> Path:
        return self.root / LOGS_DIR
