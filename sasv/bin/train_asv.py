"""Train a speaker embedding model (any conf/asv/*.yaml architecture) with AAM-softmax on a Kaldi data dir.

Writes under --out (default <exp_dir>/train/<name>):
  checkpoints/epoch_<n>.pt   model, loss head and optimizer after every epoch (a re-run resumes from the last)
  train_log.csv              loss, accuracy, learning rate, margin and samples/s per epoch
  model.<ext>                the trained weights (the average of the last --average_last epochs) in the
                             public format the model conf loads (its checkpoint.format, e.g. TaoRuijie's
                             for ECAPA-TDNN)
  model.yaml                 a conf for them: `run_spk_ebd_extract.sh --asv_conf <out>/model.yaml` and the
                             test stages take it as they take a downloaded model
  validation.md, .json       with --valid_set: SV-EER of the last epochs and of the exported model

The train set is any Kaldi data dir with wav.scp and utt2spk (16 kHz mono audio). The training conf
(conf/train/asv/*.yaml) says how long and how fast; every key is checked by name and type.

Several processes (GPUs, or CPU processes with gloo) train together under torchrun, e.g.
  torchrun --standalone --nproc_per_node 4 -m sasv train_asv --model_conf ... (one node)
  torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29400 \
    -m sasv train_asv ...                                                          (several nodes)
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from sasv.cli import ArgumentParser, run_cli
from sasv.conf import ConfError, ModelConf, build_from_conf, load_conf
from sasv.engines import resolve_device
from sasv.exp_layout import ExpLayout
from sasv.export import save_checkpoint, write_conf
from sasv.fileio import atomic_write_text
from sasv.locking import exclusive_lock
from sasv.train.trainer import Ranks, average_checkpoints, load_train_conf, train
from sasv.train.validate import validation_eer

log = logging.getLogger("train_asv")


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv train_asv", description=__doc__)
    p.add_argument("--model_conf", required=True, help="ASV model conf, e.g. conf/asv/se_res2net50.yaml")
    p.add_argument("--train_conf", required=True, help="training conf, e.g. conf/train/asv/voxceleb_aam.yaml")
    p.add_argument("--train_set", required=True, help="Kaldi data dir with wav.scp and utt2spk")
    p.add_argument(
        "--name", default=None, help="name of the trained model (default: <model conf name>_trained)"
    )
    p.add_argument("--exp_dir", default="exp", help="experiment root (default: exp)")
    p.add_argument("--out", default=None, help="output dir (default: <exp_dir>/train/<name>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--average_last", type=int, default=1, help="average the last N epochs' weights (1)")
    p.add_argument("--musan_dir", default=None, help="MUSAN lists (by sasv prepare_augmentation): data/musan")
    p.add_argument("--rirs_dir", default=None, help="RIR list (sasv prepare_augmentation), e.g. data/rirs")
    p.add_argument(
        "--valid_set", default=None, help="data dir with wav.scp and trials (Vox1-O pairs or SASV) to score"
    )
    args = p.parse_args(argv)
    if args.average_last < 1:
        p.error(f"--average_last must be at least 1, got {args.average_last}")
    if (args.musan_dir is None) != (args.rirs_dir is None):
        p.error("--musan_dir and --rirs_dir go together")
    aug_dirs = (Path(args.musan_dir), Path(args.rirs_dir)) if args.musan_dir else None

    model_conf = load_conf(args.model_conf)
    if model_conf.kind != "asv":
        raise ConfError(f"{args.model_conf}: a {model_conf.kind} conf; this trains ASV models")
    train_conf = load_train_conf(args.train_conf)
    name = args.name or f"{model_conf.name}_trained"
    out = Path(args.out) if args.out else ExpLayout(args.exp_dir).train_dir(name)
    device = resolve_device(args.device)
    ranks = Ranks.from_env()  # under torchrun: every process trains, rank 0 writes
    if ranks.rank != 0:
        train(model_conf, train_conf, args.train_set, out, device, ranks, aug_dirs)
        return 0
    with exclusive_lock(out, "training outputs"):
        last = train(model_conf, train_conf, args.train_set, out, device, ranks, aug_dirs)
        epochs = sorted((out / "checkpoints").glob("epoch_*.pt"))[-args.average_last :]
        model = build_from_conf(model_conf)
        model.load_state_dict(average_checkpoints(epochs))
        fmt = model_conf.checkpoint.format if model_conf.checkpoint is not None else "plain"
        weights = out / f"model{Path(model_conf.checkpoint.path).suffix if model_conf.checkpoint else '.pt'}"
        sha256 = save_checkpoint(model, weights, fmt)
        conf_path = write_conf(model_conf, weights, sha256, out / "model.yaml", name=name, format_name=fmt)
        log.info(
            "trained %s (%s, average of %d epochs): %s, conf %s",
            name,
            last.name,
            len(epochs),
            weights,
            conf_path,
        )
        if args.valid_set:
            validate(model_conf, model, epochs, Path(args.valid_set), out, device)
    return 0


def validate(
    model_conf: ModelConf, exported: nn.Module, epochs: list[Path], valid_set: Path, out: Path, device
) -> None:
    """SV-EER of every averaged epoch and of the exported model, as validation.{md,json}."""
    rows = []
    for path in epochs:
        model = build_from_conf(model_conf)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
        rows.append((path.stem, validation_eer(model, valid_set, device)))
    rows.append((f"exported (average of {len(epochs)})", validation_eer(exported, valid_set, device)))
    table = ["| model | SV-EER (%) |", "| --- | ---: |", *(f"| {n} | {100 * e:.2f} |" for n, e in rows)]
    atomic_write_text(out / "validation.md", f"### Validation on {valid_set}\n\n" + "\n".join(table) + "\n")
    atomic_write_text(out / "validation.json", json.dumps({n: e for n, e in rows}, indent=2) + "\n")
    for name, eer in rows:
        log.info("validation %s: SV-EER %.2f %%", name, 100 * eer)


if __name__ == "__main__":
    sys.exit(run_cli(main))
