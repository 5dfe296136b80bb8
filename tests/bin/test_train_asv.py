"""`sasv train_asv`: train, export in the conf's public format, and a conf the SASV stages take as it is."""

from __future__ import annotations

import torch
import yaml

from sasv.__main__ import main as sasv_main
from sasv.models.conf import load_conf, load_model
from sasv.stages.model_stage import run_model_stage
from sasv.train.epoch_checkpoints import average_checkpoints
from tests.tiny_confs import TINY_ECAPA, write_tiny_conf

TINY_TRAIN = {"epochs": 2, "batch_size": 8, "crop_seconds": 1.0, "initial_lr": 0.1, "final_lr": 0.01,
              "warmup_epochs": 1, "margin_increase_start": 0, "margin_fix_start": 1, "seed": 1}  # fmt: skip


def test_trained_model_is_exported_with_a_conf_the_stages_use(train_dir, tmp_path, capsys):
    model_conf = write_tiny_conf(
        tmp_path, TINY_ECAPA, checkpoint={"path": str(tmp_path / "absent.model"), "format": "taoruijie_ecapa"}
    )
    train_conf = tmp_path / "train.yaml"
    train_conf.write_text(yaml.safe_dump(TINY_TRAIN))
    out = tmp_path / "exp" / "train" / "mine"
    argv = ["train_asv", "--model_conf", str(model_conf), "--train_conf", str(train_conf), "--train_set",
            str(train_dir), "--name", "mine", "--out", str(out), "--device", "cpu", "--average_last", "2",
            "--valid_set", str(train_dir.parent / "dev")]  # fmt: skip
    assert sasv_main(argv) == 0, capsys.readouterr().err
    conf = load_conf(out / "model.yaml")
    assert conf.name == "mine" and conf.checkpoint.format == "taoruijie_ecapa"
    assert (
        conf.checkpoint.path == "model.model"
        and conf.checkpoint.resolved_path(tmp_path) == out / "model.model"
    )
    loaded = load_model(conf)  # strict, sha256 checked
    averaged = average_checkpoints(sorted((out / "checkpoints").glob("epoch_*.pt")))
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in averaged.items())
    table = (out / "validation.md").read_text()
    assert "| epoch_0001 |" in table and "| epoch_0002 |" in table and "| exported (average of 2) |" in table
    run_model_stage("asv", out / "model.yaml", [train_dir], tmp_path / "exp")  # stage 2 takes it unchanged
    assert (tmp_path / "exp" / "mine" / "embeddings" / train_dir.name / "xvector.scp").is_file()
    assert sasv_main(argv) == 0, "a re-run of a finished training returns at once"


def test_run_train_asv_sh_from_the_corpora(tmp_path):
    """The one command of the recipe, on synthetic corpora in the real layouts: VoxCeleb (AAC converted to
    FLAC), MUSAN and RIRS_NOISES lists, augmented training, export, validation on Vox1-O-style trials; every
    stage as a logged task of cmd.sh's `run` backend (utils/run.sh, Kaldi's run.pl)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sasv.corpora.musan_rirs_mini import make_musan_and_rirs
    from sasv.corpora.voxceleb_mini import make_mini_voxceleb
    from tests.conftest import REPO_ROOT

    make_mini_voxceleb(tmp_path / "vox", seed=2, speakers=3, videos=2, utts=2)
    aug = make_musan_and_rirs(tmp_path / "aug", seed=2, files_per_source=1, seconds=2.0)
    model_conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    train_conf = tmp_path / "train.yaml"
    weights = {"clean": 1.0, "reverb": 1.0, "noise": 1.0, "music": 1.0, "babble": 1.0}
    train_conf.write_text(yaml.safe_dump({**TINY_TRAIN, "epochs": 2, "augmentation": weights}))
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        SASV_VENV=str(Path(sys.executable).parents[1]),
        SASV_CMD_BACKEND="run",
    )
    data = tmp_path / "data"
    vox = tmp_path / "vox"
    cmd = ["bash", "run_train_asv.sh", "--vox1_root", str(vox / "voxceleb1"),
           "--vox2_root", str(vox / "voxceleb2"), "--vox1_trials", str(vox / "veri_test2.txt"),
           "--musan_root", str(aug.musan_root), "--rirs_root", str(aug.rirs_root), "--data_dir", str(data),
           "--asv_conf", str(model_conf), "--train_conf", str(train_conf),
           "--train_set", str(data / "voxceleb2_dev"), "--valid_set", str(data / "voxceleb1"),
           "--average_last", "2", "--exp_dir", str(tmp_path / "exp"), "--device", "cpu",
           "--nj", "1"]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trained_dir = tmp_path / "exp" / "train" / "tiny_ecapa_trained"
    trained = load_conf(trained_dir / "model.yaml")
    assert trained.name == "tiny_ecapa_trained" and load_model(trained).pretrained
    assert "| exported (average of 2) |" in (trained_dir / "validation.md").read_text()
    first = next((tmp_path / "exp" / "logs").glob("run_train_asv.*.log")).read_text().splitlines()[0]
    assert "--name ''" in first and "--average_last '2'" in first, "the log records the options"
    assert "--cmd 'utils/run.sh'" in first
    tasks = [next((tmp_path / "exp" / "logs").glob(f"run_train_asv.*/{n}.log")) for n in ("prepare_voxceleb",
             "prepare_augmentation")] + [trained_dir / "log" / "train_asv.log"]  # fmt: skip
    assert all(t.read_text().rstrip().splitlines()[-1].startswith("# Ended (code 0)") for t in tasks)


def test_torchrun_two_processes_on_cpu(train_dir, tmp_path):
    """A real torchrun launch (gloo): ranks agree at every checkpoint, every utterance is drawn once per
    epoch (both checked by the trainer itself, which fails otherwise), and the same seed gives the same
    checkpoints."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    model_conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    train_conf = tmp_path / "train.yaml"
    train_conf.write_text(yaml.safe_dump(TINY_TRAIN))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    states = []
    for run in ("a", "b"):
        out = tmp_path / run
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "sasv", "train_asv", "--model_conf", str(model_conf), "--train_conf", str(train_conf),
               "--train_set", str(train_dir), "--out", str(out), "--device", "cpu"]  # fmt: skip
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stderr.count("parameters identical on all 2 ranks") >= 2
        state = torch.load(out / "checkpoints" / "epoch_0002.pt", weights_only=True)
        assert state["world_size"] == 2
        states.append(state)
        assert load_model(load_conf(out / "model.yaml")).pretrained
    for part in ("model", "head"):
        assert all(torch.equal(states[0][part][k], states[1][part][k]) for k in states[0][part])


def test_run_train_asv_sh_launches_torchrun(train_dir, tmp_path):
    """One command on several processes: --nproc_per_node 2 runs stage 3 under torchrun (gloo on CPU)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import REPO_ROOT

    model_conf = write_tiny_conf(tmp_path, TINY_ECAPA)
    train_conf = tmp_path / "train.yaml"
    train_conf.write_text(yaml.safe_dump(TINY_TRAIN))
    env = dict(os.environ, OMP_NUM_THREADS="1", SASV_VENV=str(Path(sys.executable).parents[1]))
    cmd = ["bash", "run_train_asv.sh", "--stage", "3", "--asv_conf", str(model_conf), "--train_conf",
           str(train_conf), "--train_set", str(train_dir), "--valid_set", "",
           "--exp_dir", str(tmp_path / "exp"), "--device", "cpu", "--nproc_per_node", "2",
           "--average_last", "1"]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "parameters identical on all 2 ranks" in out.stdout + out.stderr
    checkpoint = tmp_path / "exp" / "train" / "tiny_ecapa_trained" / "checkpoints" / "epoch_0002.pt"
    state = torch.load(checkpoint, weights_only=True)
    assert state["world_size"] == 2
    first = next((tmp_path / "exp" / "logs").glob("run_train_asv.*.log")).read_text().splitlines()[0]
    assert "--vox1_root 'VoxCeleb1'" in first, "options with digits in their names are logged too"
