"""Second, independent checks of four semantics, each through the tools (the first checks are unit tests):

* wrap padding of utterances shorter than a segment (unit: tests/test_audio.py) -> the stage's six rows;
* the speaker model as the mean over all rows, not over utterance means (unit: tests/scoring/test_cosine.py)
  -> a trial score of :func:`sasv.scoring.evaluate.compute_trial_scores` computed by hand;
* ``weights_only`` loading (unit: tests/models/test_checkpoints.py) -> a checkpoint whose pickle would run
code,
  through the extraction stage: refused, and the code never runs;
* the protocol hashes of ``prepared.json`` (unit: tests/test_robustness.py) -> a protocol file edited after
  stage 1 stops the extraction stage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sasv.__main__ import main as sasv_main
from sasv.audio import SEGMENT_SAMPLES
from sasv.corpora.datadir import DataDir
from sasv.corpora.protocols import Trial
from sasv.exp_layout import ExpLayout
from sasv.extraction.outputs import read_embeddings
from sasv.models.conf import build_from_conf, load_conf
from sasv.scoring.evaluate import compute_trial_scores
from tests.tiny_confs import TINY_ECAPA, write_tiny_conf


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("semantics")
    assert sasv("make_mini_corpus", "--out", work / "corpus", "--speakers", "2", "--bonafide_per_spk", "2",
                "--enroll_per_spk", "1", "--attacks", "1", "--train_utts_per_spk", "1") == 0  # fmt: skip
    return work / "corpus"


@pytest.fixture
def work(corpus: Path, tmp_path: Path) -> Path:
    """A private copy of the corpus (a test may change its files) and its data dirs."""
    shutil.copytree(corpus, tmp_path / "corpus")
    assert sasv("prepare_la", "--la_root", tmp_path / "corpus" / "LA", "--out", tmp_path / "data",
                "--audio_check", "false") == 0  # fmt: skip
    return tmp_path


def tiny_ecapa_with_checkpoint(folder: Path) -> tuple[Path, torch.nn.Module]:
    checkpoint = folder / "tiny_ecapa.pt"
    conf = write_tiny_conf(folder, TINY_ECAPA, checkpoint={"path": str(checkpoint), "format": "plain"})
    torch.manual_seed(3)
    model = build_from_conf(load_conf(conf)).eval()
    torch.save(model.state_dict(), checkpoint)
    return conf, model


def extract(conf: Path, data_dir: Path, exp: Path) -> int:
    return sasv(
        "extract_embeddings", "--conf", conf, "--data_dirs", data_dir, "--exp_dir", exp, "--device", "cpu"
    )


def test_a_short_utterance_is_wrap_extended_in_the_stage(work: Path) -> None:
    """Rows 1-5 of an utterance shorter than a segment are the model on the utterance repeated to 48,240
    samples (not zero-padded), all five the same; row 0 is the model on the utterance as it is."""
    conf, model = tiny_ecapa_with_checkpoint(work)
    utt, path = sorted((work / "data" / "dev" / "wav.scp").read_text().splitlines())[0].split()
    rng = np.random.default_rng(4)
    short = (rng.integers(-8000, 8000, 20_000) / 32768).astype(np.float32)
    sf.write(path, short, 16000, subtype="PCM_16")
    assert extract(conf, work / "data" / "dev", work / "exp") == 0
    rows = read_embeddings(ExpLayout(work / "exp").stage_output("tiny_ecapa", "asv", "dev").file)[utt]
    with torch.no_grad():
        full = model(torch.from_numpy(short)[None])[0].numpy()
        wrapped = model(torch.from_numpy(np.resize(short, SEGMENT_SAMPLES))[None])[0].numpy()
        zero_padded = np.pad(short, (0, SEGMENT_SAMPLES - short.size))
        padded = model(torch.from_numpy(zero_padded)[None])[0].numpy()
    np.testing.assert_allclose(rows[0], full, rtol=1e-4, atol=1e-5)
    for row in rows[1:]:
        np.testing.assert_array_equal(row, rows[1])
        np.testing.assert_allclose(row, wrapped, rtol=1e-4, atol=1e-5)
    assert np.abs(rows[1] - padded).max() > 100 * np.abs(rows[1] - wrapped).max()


def test_trial_score_uses_the_row_weighted_speaker_model() -> None:
    """An enrolment utterance with three rows weighs three times one with a single row: the speaker model is
    [0.25, 0.75], not the utterance-mean [0.5, 0.5]; the cosine with [0, 1] is 0.75 / sqrt(0.625)."""
    embeddings = {
        "e1": np.array([[1.0, 0.0]], dtype=np.float32),
        "e2": np.array([[0.0, 1.0]] * 3, dtype=np.float32),
        "t1": np.array([[0.0, 1.0]], dtype=np.float32),
    }
    data = DataDir(wav_scp={}, utt2spk={}, enroll={"S1": ["e1", "e2"]},
                   trials=[Trial("S1", "t1", "bonafide", "target")])  # fmt: skip
    for norm in ("nonorm", "l2norm"):
        scores = compute_trial_scores(data, embeddings, {"t1": 1.0}, norm, "product")
        assert scores.asv[0] == pytest.approx(0.75 / np.sqrt(0.625), abs=1e-6), norm
        assert scores.fused[0] == pytest.approx((0.75 / np.sqrt(0.625) + 1) / 2, abs=1e-6), norm


class RunsCode:
    """Pickled as a call that creates a file: what a malicious checkpoint can do on an unsafe load."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_that_would_run_code_is_refused_by_the_stage(work: Path, capsys) -> None:
    conf, model = tiny_ecapa_with_checkpoint(work)
    evidence = work / "code_ran"
    state = {**model.state_dict(), "payload": RunsCode(evidence)}
    torch.save(state, work / "tiny_ecapa.pt")
    assert extract(conf, work / "data" / "dev", work / "exp") == 1
    err = capsys.readouterr().err
    assert not evidence.exists(), "the checkpoint's pickle ran: it was not loaded with weights_only"
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and str(work / "tiny_ecapa.pt") in errors[0] and "Traceback" not in err


def test_a_protocol_edited_after_stage_1_stops_extraction(work: Path, capsys) -> None:
    conf, _ = tiny_ecapa_with_checkpoint(work)
    marker = json.loads((work / "data" / "dev" / "prepared.json").read_text())
    trial_list = Path(next(p for p in marker["sources"] if p.endswith(".trl.txt")))
    trial_list.write_bytes(trial_list.read_bytes() + b"\n")
    assert extract(conf, work / "data" / "dev", work / "exp") == 1
    err = capsys.readouterr().err
    assert "was prepared from protocol files that have changed" in err and str(trial_list) in err
    assert not (work / "exp" / "tiny_ecapa" / "embeddings" / "dev").exists() or not any(
        (work / "exp" / "tiny_ecapa" / "embeddings" / "dev").glob("xvector.scp")
    )
