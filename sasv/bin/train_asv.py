"""Train a speaker embedding model (any conf/asv/*.yaml architecture) with AAM-softmax on a Kaldi data dir.

Writes under --out (default <exp_dir>/train/<name>):
  checkpoints/epoch_<n>.pt   model, loss head and optimizer after every epoch (a re-run resumes from the last)
  train_log.csv              loss, accuracy, learning rate, margin and samples/s per epoch; train_curves.png
  model.<ext>                the trained weights (the average of the last --average_last epochs) in the
                             public format the model conf loads (its checkpoint.format, e.g. TaoRuijie's
                             for ECAPA-TDNN)
  model.yaml                 a conf for them: `run_spk_ebd_extract.sh --asv_conf <out>/model.yaml` and the
                             test stages take it as they take a downloaded model
  validation.md, .json       with --valid_set: SV-EER of the last epochs and of the exported model
  export.json                what the export was made from, written last: a re-run with the same inputs
                             skips the export

The train set is any Kaldi data dir with wav.scp and utt2spk (16 kHz mono audio). The training conf
(conf/train/asv/*.yaml) says how long and how fast; every key is checked by name and type.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from sasv.bin.training import (
    check_export,
    export_trained,
    model_conf_and_output,
    train_and_export,
    training_parser,
)
from sasv.cli import run_cli
from sasv.fileio import atomic_write_text
from sasv.models.conf import ConfError, ModelConf, build_from_conf
from sasv.runtime.devices import resolve_device
from sasv.train.asv import train
from sasv.train.confs import AsvTrainConf, load_train_conf
from sasv.train.epoch_checkpoints import average_checkpoints, epoch_checkpoints
from sasv.train.validate import AudioCache, validation_eer, validation_trials

log = logging.getLogger("train_asv")


def main(argv: Sequence[str] | None = None) -> int:
    p = training_parser(
        "train_asv", __doc__, "asv", "conf/asv/se_res2net50.yaml", "conf/train/asv/voxceleb_aam.yaml",
        "wav.scp + utt2spk",
    )  # fmt: skip
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

    model_conf, name, out = model_conf_and_output(args, "asv")
    train_conf = load_train_conf(args.train_conf, AsvTrainConf)
    device = resolve_device(args.device)
    # everything the export and the validation after the last epoch need, checked before the first one
    if args.average_last > train_conf.epochs:
        raise ConfError(
            f"--average_last {args.average_last}: {args.train_conf} trains {train_conf.epochs} epoch(s), "
            f"fewer than that to average"
        )
    check_export(model_conf, name, out)
    if args.valid_set:
        validation_trials(args.valid_set)

    def export() -> None:
        epochs = epoch_checkpoints(out)[-args.average_last :]
        model = build_from_conf(model_conf)
        model.load_state_dict(average_checkpoints(epochs))
        how = f"{train_conf.epochs} epochs of {args.train_conf}; average of the last {len(epochs)}"
        export_trained(model_conf, model, out, name, f"{args.train_set} ({how})")
        log.info(
            "%s: the average of %d epochs (%s .. %s)", name, len(epochs), epochs[0].name, epochs[-1].name
        )
        if args.valid_set:
            validate(model_conf, model, epochs, Path(args.valid_set), out, device)

    train_and_export(
        args,
        out,
        name,
        lambda: train(model_conf, train_conf, args.train_set, out, device, augmentation_dirs=aug_dirs),
        {"train": args.train_set, "valid": args.valid_set},
        export,
    )
    return 0


def validate(
    model_conf: ModelConf, exported: nn.Module, epochs: list[Path], valid_set: Path, out: Path, device
) -> None:
    """SV-EER of every averaged epoch and of the exported model, as validation.{md,json}; the set is
    decoded once for all of them (:class:`~sasv.train.validate.AudioCache`)."""
    audio = AudioCache(validation_trials(valid_set)[1])
    rows = []
    for path in epochs:
        model = build_from_conf(model_conf)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
        rows.append((path.stem, validation_eer(model, valid_set, device, audio=audio)))
    rows.append(
        (f"exported (average of {len(epochs)})", validation_eer(exported, valid_set, device, audio=audio))
    )
    log.info("validation set %s: %d utterances decoded for %d models", valid_set, audio.decoded, len(rows))
    table = ["| model | SV-EER (%) |", "| --- | ---: |", *(f"| {n} | {100 * e:.2f} |" for n, e in rows)]
    atomic_write_text(out / "validation.md", f"### Validation on {valid_set}\n\n" + "\n".join(table) + "\n")
    atomic_write_text(out / "validation.json", json.dumps({n: e for n, e in rows}, indent=2) + "\n")
    for name, eer in rows:
        log.info("validation %s: SV-EER %.2f %%", name, 100 * eer)


if __name__ == "__main__":
    sys.exit(run_cli(main))
