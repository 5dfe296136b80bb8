"""Paths with spaces end to end: corpus, data, exp dirs and confs (one alone, several one per line) whose
paths hold spaces, through the shell stages on the mini corpus (tiny models; numbers mean nothing).

The conf options take lists (`--asv_conf "a.yaml b.yaml"`); a path with spaces is given alone as it is, or
in a list of one path per line (utils/parse_options.sh: split_list). A trained model's exported conf in a
folder with spaces (here: a conf beside its checkpoint, both under such a folder) must be usable as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import pytest

from tests.conftest import REPO_ROOT, tool
from tests.tiny_confs import TINY_AASIST, TINY_ECAPA, TINY_RESNET, write_tiny_conf

pytestmark = pytest.mark.slow


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def spaced(tmp_path_factory) -> dict[str, Path]:
    """A mini corpus, confs and a trained-like conf with its checkpoint, every path holding spaces."""
    import torch

    from sasv.models.conf import build_from_conf, load_conf

    work = tmp_path_factory.mktemp("spaces") / "my work"
    models = work / "exp train" / "tiny ecapa trained"
    models.mkdir(parents=True)
    checkpoint = models / "model weights.pt"
    trained = write_tiny_conf(models, TINY_ECAPA, checkpoint={"path": str(checkpoint), "format": "plain"})
    torch.manual_seed(0)
    torch.save(build_from_conf(load_conf(trained)).state_dict(), checkpoint)
    (work / "other confs").mkdir()
    resnet = write_tiny_conf(work / "other confs", TINY_RESNET)
    (work / "cm confs").mkdir()
    cm = write_tiny_conf(work / "cm confs", TINY_AASIST)
    corpus = _run([*tool("make_mini_corpus"), "--out", str(work / "the corpus"), "--seed", "3", "--speakers",
                   "2", "--bonafide_per_spk", "2", "--enroll_per_spk", "1", "--attacks", "1"])  # fmt: skip
    assert corpus.returncode == 0, corpus.stderr
    return {"work": work, "trained": trained, "resnet": resnet, "cm": cm}


def _dirs(spaced: dict[str, Path]) -> list[str]:
    return ["--data_dir", str(spaced["work"] / "my data"), "--exp_dir", str(spaced["work"] / "my exp")]


def test_extraction_takes_paths_and_confs_with_spaces(spaced) -> None:
    """One conf with spaces in its path, alone (--cm_conf) and two in a list of one per line (--asv_conf):
    every stage finds its files, and the log's first line stays one line."""
    confs = f"{spaced['trained']}\n{spaced['resnet']}"
    la_root = str(spaced["work"] / "the corpus" / "LA")
    out = _run(["bash", "run_spk_ebd_extract.sh", *_dirs(spaced), "--la_root", la_root, "--asv_conf", confs,
                "--cm_conf", str(spaced["cm"]), "--device", "cpu", "--allow_random_init", "true",
                "--audio_check", "false"])  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exp = spaced["work"] / "my exp"
    for name in ("tiny_ecapa", "tiny_resnet"):
        for set_name in ("dev", "eval"):
            scp = exp / name / "embeddings" / set_name / "xvector.scp"
            wavs = (spaced["work"] / "my data" / set_name / "wav.scp").read_text().splitlines()
            assert len(dict(kaldiio.load_scp(str(scp)))) == len(wavs)
    assert (exp / "tiny_aasist" / "scores" / "eval" / "cm_scores.txt").is_file()
    record = json.loads((exp / "tiny_ecapa" / "embeddings" / "model.json").read_text())
    assert record["pretrained"] is True and record["checkpoint"] == str(
        spaced["work"] / "exp train" / "tiny ecapa trained" / "model weights.pt"
    )
    log = next((exp / "logs").glob("run_spk_ebd_extract.*.log")).read_text().splitlines()
    assert f"--asv_conf $'{spaced['trained']}\\n{spaced['resnet']}'" in log[0], log[0]
    assert f"--cm_conf '{spaced['cm']}'" in log[0]


def test_scoring_takes_paths_and_confs_with_spaces(spaced) -> None:
    """The test stages with the same lists: every system scored, the summary written."""
    extracted = spaced["work"] / "my exp" / "tiny_aasist" / "scores" / "eval" / "cm_scores.txt"
    if not extracted.is_file():
        pytest.skip("needs test_extraction_takes_paths_and_confs_with_spaces first")
    confs = f"{spaced['trained']}\n{spaced['resnet']}"
    out = _run(["bash", "run_test_nonorm.sh", *_dirs(spaced), "--asv_conf", confs,
                "--cm_conf", str(spaced["cm"]), "--bootstrap", "0", "--plots", "false"])  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exp = spaced["work"] / "my exp"
    for name in ("tiny_ecapa", "tiny_resnet"):
        assert (exp / name / "tiny_aasist" / "nonorm" / "results.json").is_file()
    summary = (exp / "summary.md").read_text()
    assert "| tiny_ecapa | nonorm |" in summary and "| tiny_resnet | nonorm |" in summary
