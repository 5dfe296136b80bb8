"""`sasv exp_path`: the shell stages' questions about the exp/ layout, answered by the library."""

from __future__ import annotations

import subprocess
import sys

from sasv.exp_layout import ExpLayout
from tests.conftest import REPO_ROOT


def test_the_shell_query_prints_what_the_library_computes(tmp_path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("name: my_asv\nkind: asv\narch: ecapa_tdnn\n")
    cm = REPO_ROOT / "conf" / "cm" / "aasist_l.yaml"
    common = ["--exp_dir", str(tmp_path / "exp"), "--norm", "l2norm", "--score_norm", "asnorm"]
    run = [sys.executable, "-m", "sasv", "exp_path"]
    out = subprocess.run(
        [*run, "system_name", "--asv_conf", str(conf), "--cm_conf", str(cm), *common],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert out == "my_asv/aasist_l/l2norm_asnorm"
    out = subprocess.run(
        [*run, "fusion_dir", *common], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == str(ExpLayout(tmp_path / "exp").fusion_dir("l2norm_asnorm"))
    out = subprocess.run(
        [*run, "system_dir", "--asv_conf", str(conf), "--cm_conf", str(cm), *common, "--fusion", "sum"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert out == str(tmp_path / "exp" / "my_asv" / "aasist_l" / "l2norm_asnorm_sum")
    layout = ExpLayout(tmp_path / "exp")
    for extra, name in (([], "my_asv_trained"), (["--name", "mine"], "mine")):
        out = subprocess.run(
            [*run, "train_dir", "--exp_dir", str(tmp_path / "exp"), "--conf", str(conf), *extra],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert out == str(layout.train_dir(name))
    assert layout.trained_name("my_asv") == "my_asv_trained"
