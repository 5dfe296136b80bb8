"""Train a speaker embedding model (any conf/asv/*.yaml architecture) with AAM-softmax on a Kaldi data dir.

Writes under --out (default <exp_dir>/train/<name>):
  checkpoints/epoch_<n>.pt   model, loss head and optimizer after every epoch (a re-run resumes from the last)
  train_log.csv              loss, accuracy, learning rate, margin and samples/s per epoch
  model.<ext>                the trained weights in the public format the model conf loads (its
                             checkpoint.format, e.g. TaoRuijie's for ECAPA-TDNN)
  model.yaml                 a conf for them: `run_spk_ebd_extract.sh --asv_conf <out>/model.yaml` and the
                             test stages take it as they take a downloaded model

The train set is any Kaldi data dir with wav.scp and utt2spk (16 kHz mono audio). The training conf
(conf/train/asv/*.yaml) says how long and how fast; every key is checked by name and type.

Several processes (GPUs, or CPU processes with gloo) train together under torchrun, e.g.
  torchrun --standalone --nproc_per_node 4 -m sasv train_asv --model_conf ... (one node)
  torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29400 \
    -m sasv train_asv ...                                                          (several nodes)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from sasv.cli import ArgumentParser, run_cli
from sasv.conf import ConfError, build_from_conf, load_conf
from sasv.engines import resolve_device
from sasv.exp_layout import ExpLayout
from sasv.export import save_checkpoint, write_conf
from sasv.locking import exclusive_lock
from sasv.train.trainer import Ranks, load_train_conf, train

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
    args = p.parse_args(argv)

    model_conf = load_conf(args.model_conf)
    if model_conf.kind != "asv":
        raise ConfError(f"{args.model_conf}: a {model_conf.kind} conf; this trains ASV models")
    train_conf = load_train_conf(args.train_conf)
    name = args.name or f"{model_conf.name}_trained"
    out = Path(args.out) if args.out else ExpLayout(args.exp_dir).train_dir(name)
    device = resolve_device(args.device)
    ranks = Ranks.from_env()  # under torchrun: every process trains, rank 0 writes
    if ranks.rank != 0:
        train(model_conf, train_conf, args.train_set, out, device, ranks)
        return 0
    with exclusive_lock(out, "training outputs"):
        last = train(model_conf, train_conf, args.train_set, out, device, ranks)
        model = build_from_conf(model_conf)
        model.load_state_dict(torch.load(last, map_location="cpu", weights_only=True)["model"])
        fmt = model_conf.checkpoint.format if model_conf.checkpoint is not None else "plain"
        weights = out / f"model{Path(model_conf.checkpoint.path).suffix if model_conf.checkpoint else '.pt'}"
        sha256 = save_checkpoint(model, weights, fmt)
        conf_path = write_conf(model_conf, weights, sha256, out / "model.yaml", name=name, format_name=fmt)
    log.info("trained %s from %s: %s (%s), conf %s", name, last, weights, fmt, conf_path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
