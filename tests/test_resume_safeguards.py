"""The resume and provenance safeguards of the model stages, each by its effect: change exactly one input
(conf, checkpoint bytes, audio, chunking) after a finished or an interrupted run, re-run, and the outputs
must equal a clean run's on the new inputs. Removing any one safeguard fails a test here:

* the completion check's fingerprint (a finished stage re-run with another model must be recomputed),
* the chunk plan's key (chunks of an interrupted run made from other inputs must be discarded),
* the checkpoint's sha256 in both (same conf, other weights),
* the scoring stage's input check (embeddings of a changed checkpoint are refused),
* the atomic chunk index (every index and output is renamed into place, never written in place).

The stages run in-process through the tools' runner on a mini corpus with a tiny SE-ResNet whose checkpoint
is a real file (the "plain" format), so its bytes can change under the same conf.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from sasv.__main__ import main as sasv_main
from sasv.exp_layout import ExpLayout
from sasv.extraction.outputs import read_embeddings
from sasv.models.conf import build_from_conf, load_conf
from sasv.runtime.compiled import compile_problem
from tests.tiny_confs import TINY_AASIST, TINY_RESNET, write_tiny_conf

CHUNK = 4  # utterances per chunk: the mini corpus's dev set is several chunks


def sasv(*argv: str | Path) -> int:
    return sasv_main([str(a) for a in argv])


def save_checkpoint(conf: Path, path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(build_from_conf(load_conf(conf)).state_dict(), path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A mini corpus's prepared data dirs (dev has several chunks of CHUNK utterances)."""
    work = tmp_path_factory.mktemp("safeguards")
    assert sasv("make_mini_corpus", "--out", work / "corpus", "--speakers", "2", "--bonafide_per_spk", "3",
                "--enroll_per_spk", "1", "--attacks", "1", "--train_utts_per_spk", "1") == 0  # fmt: skip
    assert sasv("prepare_la", "--la_root", work / "corpus" / "LA", "--out", work / "data") == 0
    return work / "data"


@pytest.fixture
def setup(corpus: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of the data (its audio may be changed), the tiny SE-ResNet conf and its checkpoint."""
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    for set_dir in data.iterdir():  # point wav.scp at copies of the audio, which a test may rewrite
        if (set_dir / "wav.scp").is_file():
            lines = []
            for line in (set_dir / "wav.scp").read_text().splitlines():
                utt, path = line.split(maxsplit=1)
                copy = tmp_path / "audio" / Path(path).name
                copy.parent.mkdir(exist_ok=True)
                if not copy.exists():
                    shutil.copy2(path, copy)
                lines.append(f"{utt} {copy}")
            (set_dir / "wav.scp").write_text("\n".join(lines) + "\n")
            (set_dir / "prepared.json").unlink()  # the data dir was edited on purpose
    checkpoint = tmp_path / "tiny_resnet.pt"
    conf = write_tiny_conf(tmp_path, TINY_RESNET, checkpoint={"path": str(checkpoint), "format": "plain"})
    save_checkpoint(conf, checkpoint, seed=1)
    return {"data": data, "conf": conf, "checkpoint": checkpoint, "root": tmp_path}


def extract(
    s: dict[str, Path], exp: Path, chunk_size: int = CHUNK, dtype: str = "float32", compile: bool = False
) -> dict[str, np.ndarray]:
    code = sasv("extract_embeddings", "--conf", s["conf"], "--data_dirs", s["data"] / "dev", "--exp_dir", exp,
                "--device", "cpu", "--chunk_size", str(chunk_size), "--embedding_dtype", dtype,
                "--compile", str(compile).lower())  # fmt: skip
    assert code == 0
    return read_embeddings(ExpLayout(exp).stage_output("tiny_resnet", "asv", "dev").file)


def interrupt(exp: Path) -> None:
    """What a run killed in its last chunks leaves: no output, no marker, the last chunk index gone."""
    out = ExpLayout(exp).stage_output("tiny_resnet", "asv", "dev")
    out.file.unlink()
    out.marker.unlink()
    sorted(out.chunk_dir.glob("[0-9]*.scp"))[-1].unlink()


def change_conf(s: dict[str, Path]) -> None:
    raw = yaml.safe_load(s["conf"].read_text())
    raw["frontend"] = {**(raw.get("frontend") or {}), "log_offset": 1.0e-5}
    s["conf"].write_text(yaml.safe_dump(raw, sort_keys=False))


def change_checkpoint(s: dict[str, Path]) -> None:
    save_checkpoint(s["conf"], s["checkpoint"], seed=2)


def change_audio(s: dict[str, Path]) -> None:
    first = sorted((s["data"] / "dev" / "wav.scp").read_text().splitlines())[0].split()[1]
    wav, rate = sf.read(first, dtype="float32")
    sf.write(first, np.roll(wav, 1234), rate)


CHANGES = {"conf": change_conf, "checkpoint": change_checkpoint, "audio": change_audio}


def assert_equal_embeddings(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for utt in want:
        np.testing.assert_array_equal(got[utt], want[utt], err_msg=utt)


@pytest.mark.parametrize("interrupted", [False, True], ids=["finished", "interrupted"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_one_changed_input_gives_a_clean_runs_outputs(setup, change: str, interrupted: bool) -> None:
    exp = setup["root"] / "exp"
    before = extract(setup, exp)
    if interrupted:
        interrupt(exp)
    CHANGES[change](setup)
    after = extract(setup, exp)
    clean = extract(setup, setup["root"] / "clean_exp")
    assert_equal_embeddings(after, clean)
    changed = [u for u in before if not np.array_equal(before[u], after[u])]
    assert changed, f"the {change} change must change some embedding, or this test proves nothing"


def test_changed_chunking_gives_a_clean_runs_outputs(setup) -> None:
    """Another chunk size regroups the utterances; an interrupted run's chunks are discarded, and the
    result equals a clean run with the new size (the same numbers: batches never cross chunks)."""
    exp = setup["root"] / "exp"
    extract(setup, exp, chunk_size=CHUNK)
    interrupt(exp)
    chunk_dir = ExpLayout(exp).stage_output("tiny_resnet", "asv", "dev").chunk_dir
    stale = {p.name for p in chunk_dir.glob("[0-9]*.scp")}
    after = extract(setup, exp, chunk_size=CHUNK + 1)
    assert not stale & {p.name for p in chunk_dir.glob("[0-9]*.scp")}
    assert_equal_embeddings(after, extract(setup, setup["root"] / "clean_exp", chunk_size=CHUNK + 1))


def test_scoring_refuses_embeddings_of_a_changed_checkpoint(setup, capsys) -> None:
    exp = setup["root"] / "exp"
    extract(setup, exp)
    cm = write_tiny_conf(setup["root"], TINY_AASIST)
    assert sasv("score_cm", "--conf", cm, "--data_dirs", setup["data"] / "dev", "--exp_dir", exp,
                "--device", "cpu", "--allow_random_init", "true") == 0  # fmt: skip
    score = ["score_trials", "--asv_conf", setup["conf"], "--cm_conf", cm, "--norm", "l2norm",
             "--data_dir", setup["data"], "--exp_dir", exp, "--sets", "dev"]  # fmt: skip
    assert sasv(*score) == 0
    capsys.readouterr()
    change_checkpoint(setup)
    assert sasv(*score) == 1
    err = capsys.readouterr().err
    assert "made from other inputs than the current ones (changed: checkpoint" in err, err


def test_every_chunk_index_and_output_is_renamed_into_place(setup, monkeypatch) -> None:
    """A chunk index written in place could be read half-written by a resumed run (or another job): every
    index, the merged scp and its marker must arrive by a rename of a complete temporary file."""
    renamed: list[str] = []
    real_replace = os.replace

    def replace(src, dst):
        renamed.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    exp = setup["root"] / "exp"
    extract(setup, exp)
    out = ExpLayout(exp).stage_output("tiny_resnet", "asv", "dev")
    indexes = [p.name for p in out.chunk_dir.glob("[0-9]*.scp")]
    assert len(indexes) >= 2
    assert set(indexes) <= set(renamed)
    assert {out.file.name, out.marker.name} <= set(renamed)


def ark_bytes(exp: Path) -> int:
    chunk_dir = ExpLayout(exp).stage_output("tiny_resnet", "asv", "dev").chunk_dir
    return sum(p.stat().st_size for p in chunk_dir.glob("*.ark"))


def test_float16_storage_is_float32_rounded_and_recomputed_when_switched(setup) -> None:
    """--embedding_dtype float16: the rows are the float32 rows rounded to float16 (read back as float32),
    the arks take 2 bytes a value instead of 4, and switching the option either way recomputes (no reuse)."""
    exp = setup["root"] / "exp"
    full = extract(setup, exp)
    full_bytes = ark_bytes(exp)
    half = extract(setup, exp, dtype="float16")
    assert sorted(half) == sorted(full)
    for utt, rows in full.items():
        assert half[utt].dtype == np.float32
        np.testing.assert_array_equal(half[utt], rows.astype(np.float16).astype(np.float32), err_msg=utt)
    assert any(not np.array_equal(half[u], full[u]) for u in full), "float16 must round something"
    values = sum(rows.size for rows in full.values())
    assert ark_bytes(exp) <= full_bytes - 2 * values + 128 * len(full)  # 2 bytes a value (+ a .npy header)
    assert_equal_embeddings(extract(setup, exp), full)


@pytest.mark.skipif(compile_problem(torch.device("cpu")) is not None, reason="torch.compile cannot run here")
def test_compiled_stage_matches_eager_and_is_kept_apart(setup) -> None:
    """--compile true through the stage: the rows are the eager rows within the engines' tolerance, the
    compiled run does not take the eager output for its own (another fingerprint), and a re-run of it
    reuses its own output."""
    from tests.extraction.test_engines import assert_rows_match

    exp = setup["root"] / "exp"
    out = ExpLayout(exp).stage_output("tiny_resnet", "asv", "dev")
    eager = extract(setup, exp)
    eager_fingerprint = json.loads(out.marker.read_text())["fingerprint"]
    compiled = extract(setup, exp, compile=True)
    assert json.loads(out.marker.read_text())["fingerprint"] != eager_fingerprint
    assert sorted(compiled) == sorted(eager)
    for utt, rows in eager.items():
        assert_rows_match(compiled[utt], rows, f"compiled stage, {utt}")
    mtime = out.file.stat().st_mtime_ns
    extract(setup, exp, compile=True)
    assert out.file.stat().st_mtime_ns == mtime


def test_float16_overflow_is_an_error_not_inf() -> None:
    from sasv.extraction.engines import EmbeddingEngine, EmbeddingRangeError, EngineOptions

    class Huge(torch.nn.Module):
        def forward(self, x):
            return x[:, :4] * 0 + 1e5

    engine = EmbeddingEngine(Huge(), torch.device("cpu"), 2, cpu_kernels="torch", storage_dtype=np.float16)
    with pytest.raises(EmbeddingRangeError, match="does not fit float16"):
        engine.compute([np.zeros(50_000, np.float32)])
    assert EngineOptions().fingerprint_suffix("asv") == " autocast=none"  # outputs made before stay valid
    half = EngineOptions(embedding_dtype="float16")
    assert half.fingerprint_suffix("asv").endswith("embedding_dtype=float16")
    with pytest.raises(ValueError, match="embedding_dtype must be one of"):
        EngineOptions(embedding_dtype="int8")
