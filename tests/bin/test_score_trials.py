"""``sasv score_trials`` (run_test stage 1) on a mini corpus with tiny random models: where a system's
outputs go, and what its results.json records about how it was made (read back by ``sasv make_summary``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sasv.__main__ import main as sasv_main
from sasv.fileio import sha256_file
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, write_tiny_conf

ASV, CM = f"{TINY_ECAPA['name']}.yaml", f"{TINY_AASIST['name']}.yaml"
SYSTEM = Path(TINY_ECAPA["name"]) / TINY_AASIST["name"]


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


def models_args(w: Path, data: Path, exp: Path, *extra: str) -> list[list[str | Path]]:
    common = ["--device", "cpu", "--allow_random_init", "true", "--exp_dir", exp]
    return [
        ["extract_embeddings", "--conf", w / ASV, "--data_dirs", data / "dev", *common, *extra],
        ["score_cm", "--conf", w / CM, "--data_dirs", data / "dev", *common],
    ]


def score_args(w: Path, data: Path, exp: Path, norm: str = "nonorm", *extra: str) -> list[str | Path]:
    return ["score_trials", "--asv_conf", w / ASV, "--cm_conf", w / CM, "--norm", norm, "--data_dir", data,
            "--exp_dir", exp, "--sets", "dev", "--bootstrap", "0", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A mini corpus, its dev data dir, both model stages and the nonorm system (product rule)."""
    w = tmp_path_factory.mktemp("score_trials")
    write_tiny_conf(w, TINY_ECAPA)
    write_tiny_conf(w, TINY_AASIST)
    assert sasv("make_mini_corpus", "--out", w / "corpus", "--speakers", "2", "--bonafide_per_spk", "2",
                "--enroll_per_spk", "1", "--attacks", "1", "--train_utts_per_spk", "1") == 0  # fmt: skip
    assert sasv("prepare_la", "--la_root", w / "corpus" / "LA", "--out", w / "data", "--sets", "dev") == 0
    for step in [*models_args(w, w / "data", w / "exp"), score_args(w, w / "data", w / "exp")]:
        assert sasv(*step) == 0, step
    return w


def copy_exp(work: Path, tmp_path: Path) -> Path:
    shutil.copytree(work / "exp", tmp_path / "exp", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "exp"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_fusion_sum_has_its_own_system_dir(work, tmp_path) -> None:
    """--fusion sum after the default product wrote into the product system's dir (scores, results.json,
    results.md: the product numbers were gone); it has its own dir now, and the product dir keeps its
    path."""
    exp = copy_exp(work, tmp_path)
    product = exp / SYSTEM / "nonorm"
    before = _snapshot(product)
    assert sasv(*score_args(work, work / "data", exp, "nonorm", "--fusion", "sum")) == 0
    assert _snapshot(product) == before
    record = json.loads((exp / SYSTEM / "nonorm_sum" / "results.json").read_text())
    assert record["fusion"] == "sum" and record["variant"] == "nonorm_sum"
    assert record["system"] == f"{SYSTEM}/nonorm_sum"
    assert json.loads(before["results.json"])["fusion"] == "product"


def test_results_record_the_embedding_storage_and_the_data(work, tmp_path) -> None:
    """float16 storage (stage 2 --embedding_dtype float16) rounds the embeddings: results.json records how
    they were stored (read off the archive) in the ASV model's entry, RESULTS.md shows it; and each set's
    data (dir, sha256 of trials, enroll, wav.scp)."""
    record = json.loads((work / "exp" / SYSTEM / "nonorm" / "results.json").read_text())
    asv, cm = record["models"]
    assert asv["name"] == TINY_ECAPA["name"] and asv["embedding_dtype"] == "float32"
    assert "embedding_dtype" not in cm
    dev = work / "data" / "dev"
    assert record["data"] == {
        "dev": {
            "dir": str(dev.resolve()),
            "sha256": {n: sha256_file(dev / n) for n in ("trials", "enroll", "wav.scp")},
        }
    }
    exp = tmp_path / "exp16"
    for step in [*models_args(work, work / "data", exp, "--embedding_dtype", "float16"),
                 score_args(work, work / "data", exp)]:  # fmt: skip
        assert sasv(*step) == 0, step
    record = json.loads((exp / SYSTEM / "nonorm" / "results.json").read_text())
    assert record["models"][0]["embedding_dtype"] == "float16"
    assert sasv("make_summary", "--exp_dir", exp) == 0
    results = (exp / "RESULTS.md").read_text()
    header = next(line for line in results.splitlines() if line.startswith("| model | kind |"))
    assert header.endswith("| sha256 | embeddings |")
    row = next(line for line in results.splitlines() if line.startswith(f"| {TINY_ECAPA['name']} | asv |"))
    assert row.endswith("| float16 |")
    assert (
        f"- {TINY_ECAPA['name']}: RANDOMLY INITIALISED (no checkpoint); embeddings stored as float16"
        in results
    )


def test_summary_says_when_its_rows_were_scored_on_different_data(work, tmp_path) -> None:
    """The data re-prepared from another copy of the corpus, the models re-run and only l2norm re-scored:
    the table puts nonorm (old data) beside l2norm (new data), and now says so, naming the systems and
    data dirs; RESULTS.md lists both versions of the data."""
    exp = copy_exp(work, tmp_path)
    shutil.copytree(work / "corpus", tmp_path / "corpus")
    assert (
        sasv(
            "prepare_la", "--la_root", tmp_path / "corpus" / "LA", "--out", tmp_path / "data", "--sets", "dev"
        )
        == 0
    )
    for step in [
        *models_args(work, tmp_path / "data", exp),
        score_args(work, tmp_path / "data", exp, "l2norm"),
    ]:
        assert sasv(*step) == 0, step
    assert sasv("make_summary", "--exp_dir", exp) == 0
    summary = (exp / "summary.md").read_text()
    assert "> **Not made from the same inputs, compare with care (re-score the stale systems):**" in summary
    note = next(line for line in summary.splitlines() if line.startswith("> **- dev data: "))
    assert note.startswith("> **- dev data: wav.scp ")  # only what differs: the audio paths, not the trials
    assert f"in {SYSTEM}/nonorm ({(work / 'data' / 'dev').resolve()})" in note
    assert f"in {SYSTEM}/l2norm ({(tmp_path / 'data' / 'dev').resolve()})" in note
    results = (exp / "RESULTS.md").read_text()
    assert results.count("- la dev: ") == 2
    # re-scoring the stale system on the current data makes the table whole again
    assert sasv(*score_args(work, tmp_path / "data", exp, "nonorm")) == 0
    assert sasv("make_summary", "--exp_dir", exp) == 0
    assert "Not made from the same inputs" not in (exp / "summary.md").read_text()
