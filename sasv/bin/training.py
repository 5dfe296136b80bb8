"""What the two training tools (``sasv train_asv``, ``sasv train_cm``) share around the loop: their common
options, where a run writes, and the export of trained weights with a conf the SASV stages take."""

from __future__ import annotations

import json
import logging
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from sasv.cli import ArgumentParser
from sasv.exp_layout import ExpLayout, check_model_name
from sasv.fileio import atomic_write_text, sha256_file
from sasv.locking import exclusive_lock
from sasv.markers import DATA_DIR_FILES
from sasv.models.conf import ConfError, ModelConf, build_from_conf, load_conf
from sasv.train.collectives import Ranks
from sasv.train.export import exported_conf, save_checkpoint, state_dict_for_format, write_conf

log = logging.getLogger(__name__)

TORCHRUN_HELP = """
Several processes (GPUs, or CPU processes with gloo) train together under torchrun, e.g.
  torchrun --standalone --nproc_per_node 4 -m sasv {tool} ...                            (one node)
  torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29400 \\
    -m sasv {tool} ...                                                                (several nodes)
"""


def training_parser(tool: str, description: str, kind: str, model_example: str, train_example: str,
                    data_example: str) -> ArgumentParser:  # fmt: skip
    """The options every training tool has; the tool adds its own."""
    p = ArgumentParser(prog=f"sasv {tool}", description=description + TORCHRUN_HELP.format(tool=tool))
    p.add_argument("--model_conf", required=True, help=f"{kind.upper()} model conf, e.g. {model_example}")
    p.add_argument("--train_conf", required=True, help=f"training conf, e.g. {train_example}")
    p.add_argument("--train_set", required=True, help=f"training data dir, {data_example}")
    p.add_argument(
        "--name", default=None, help="name of the trained model (default: <model conf name>_trained)"
    )
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--out", default=None, help="output dir (default: <exp_dir>/train/<name>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    return p


def model_conf_and_output(args: Namespace, kind: str) -> tuple[ModelConf, str, Path]:
    """The model conf (of ``kind``), the trained model's name and the run's output dir. A ``--name`` that
    cannot name a model (``a/b``, ``fusion``: :func:`sasv.exp_layout.check_model_name`) is refused here,
    before anything is written: the export's conf would refuse it after the last epoch."""
    model_conf = load_conf(args.model_conf)
    if model_conf.kind != kind:
        article = {"asv": "an ASV", "cm": "a CM"}
        raise ConfError(
            f"{args.model_conf}: {article[model_conf.kind]} conf; this trains {kind.upper()} models"
        )
    if args.name is not None:
        check_model_name(args.name, "--name")
    name = args.name or ExpLayout.trained_name(model_conf.name)
    out = Path(args.out) if args.out else ExpLayout(args.exp_dir).train_dir(name)
    return model_conf, name, out


def _export_format(model_conf: ModelConf) -> tuple[str, str]:
    """(format, file name) of the export: the conf's checkpoint format and suffix, else plain ``model.pt``."""
    checkpoint = model_conf.checkpoint
    if checkpoint is None:
        return "plain", "model.pt"
    return checkpoint.format, f"model{Path(checkpoint.path).suffix}"


def check_export(model_conf: ModelConf, name: str, out: Path) -> None:
    """Before the first step, everything the export after the last one needs: the model's weights can be
    written in the conf's checkpoint format (the loader's key mapping inverts onto them,
    :func:`sasv.train.export.state_dict_for_format`) and the exported conf is valid (its name, format,
    arguments:
    :func:`sasv.train.export.exported_conf`). Builds the untrained model once (the training seeds its own)."""
    fmt, file_name = _export_format(model_conf)
    exported_conf(model_conf, file_name, "0" * 64, out / "model.yaml", name, format_name=fmt,
                  relative_to="conf")  # fmt: skip
    try:
        state_dict_for_format(build_from_conf(model_conf), fmt)
    except (ValueError, AssertionError) as e:
        raise ConfError(f"{model_conf.source}: the trained weights could not be exported: {e}") from e


def export_trained(
    model_conf: ModelConf, model: nn.Module, out: Path, name: str, trained_on: str
) -> tuple[Path, Path]:
    """Write ``model`` in the public format its conf loads (``model.<ext>``, plain ``model.pt`` for a conf
    without a checkpoint) and ``model.yaml`` naming it with its sha256 and what it was trained on; returns
    both paths. The conf names its weights relative to its own folder (``relative_to: conf``), so the
    output dir can be moved or copied whole."""
    fmt, file_name = _export_format(model_conf)
    weights = out / file_name
    sha256 = save_checkpoint(model, weights, fmt)
    conf_path = write_conf(
        model_conf, file_name, sha256, out / "model.yaml", name=name, format_name=fmt, trained_on=trained_on,
        relative_to="conf",
    )  # fmt: skip
    log.info("exported %s: %s (%s format), conf %s", name, weights, fmt, conf_path)
    return weights, conf_path


EXPORT_RECORD = "export.json"


def _export_inputs(
    args: Namespace, last_checkpoint: Path, data_dirs: dict[str, str | None]
) -> dict[str, Any]:
    """What an export (weights, conf, validation) was made from: the tool's options, the contents of the
    model and training confs, of the last epoch checkpoint and of the lists of ``data_dirs`` (name -> dir)."""
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())}
    lists = {
        name: {f.name: sha256_file(f) for f in sorted(Path(d).iterdir()) if f.name in DATA_DIR_FILES}
        for name, d in data_dirs.items()
        if d
    }
    return {
        "options": options,
        "model_conf_sha256": sha256_file(args.model_conf),
        "train_conf_sha256": sha256_file(args.train_conf),
        "last_checkpoint_sha256": sha256_file(last_checkpoint),
        "data_dirs": lists,
    }


def _already_exported(out: Path, inputs: dict[str, Any]) -> bool:
    """Whether ``out`` holds a finished export made from exactly ``inputs`` (then a re-run skips it)."""
    record = out / EXPORT_RECORD
    if not record.is_file() or not (out / "model.yaml").is_file():
        return False
    try:
        return json.loads(record.read_text()) == json.loads(json.dumps(inputs))
    except json.JSONDecodeError:
        return False


def _record_export(out: Path, inputs: dict[str, Any]) -> None:
    """Written last, after every output of the export: its presence means the export is complete."""
    atomic_write_text(out / EXPORT_RECORD, json.dumps(inputs, indent=2) + "\n")


def train_and_export(
    args: Namespace,
    out: Path,
    name: str,
    train: Callable[[], Path],
    data_dirs: dict[str, str | None],
    export: Callable[[], None],
) -> None:
    """What both tools do, under torchrun or not: every rank runs ``train`` (which returns the last epoch
    checkpoint); rank 0 does it holding the output dir's lock, then runs ``export`` (weights, conf,
    validation) unless an export from the same inputs is already there, and records the export last."""
    if Ranks.from_env().rank != 0:
        train()
        return
    with exclusive_lock(out, "training outputs"):
        inputs = _export_inputs(args, train(), data_dirs)
        if _already_exported(out, inputs):
            log.info("%s: already trained and exported from the same inputs (%s)", name, out / "model.yaml")
            return
        export()
        _record_export(out, inputs)
