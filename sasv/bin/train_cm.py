"""Train a spoofing countermeasure (AASIST, AASIST-L: any conf/cm/*.yaml architecture) on a data dir labelled
bona fide / spoof, select on a dev set, and export it in the conf's public format (clovaai's AASIST.pth).

Writes under --out (default <exp_dir>/train/<name>):
  checkpoints/epoch_<n>.pt   model, optimizer and the epoch's log row after every epoch (a re-run resumes)
  train_log.csv              loss, accuracy, learning rate, dev CM-EER, samples/s per epoch; train_curves.png
  model.pth                  the exported weights: with `average: best_dev` (the default, clovaai's SWA) the
                             average of every epoch that set a new best dev CM-EER (at most
                             average_max_dev_eer), BatchNorm statistics re-estimated on the train set
  model.yaml                 a conf for them: `run_spk_ebd_extract.sh --cm_conf <out>/model.yaml` takes it
  results.md, .json          dev (and with --eval_set, eval) CM-EER of the exported model beside the
                             published AASIST / AASIST-L numbers
  export.json                what the export was made from, written last: a re-run with the same inputs
                             skips the export

A data dir here is wav.scp + utt2spf (`UTT bonafide|spoof`), e.g. data/cm_train, data/cm_dev, data/cm_eval
from `sasv prepare_la --cm_sets train dev eval`. The training conf (conf/train/cm/*.yaml) says how long and
how fast; every key is checked by name and type.
"""

from __future__ import annotations

import json
import logging
import sys
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path

import torch

from sasv.bin.training import (
    check_export,
    export_trained,
    model_conf_and_output,
    train_and_export,
    training_parser,
)
from sasv.cli import run_cli
from sasv.exp_layout import RESULTS_RECORD, RESULTS_TABLE
from sasv.fileio import atomic_write_text
from sasv.models.conf import ModelConf, build_from_conf
from sasv.runtime.devices import resolve_device
from sasv.train.cm import average_rule, cm_train_list, crop_dataset, exported_epochs, train, update_batchnorm
from sasv.train.cm_results import results_table
from sasv.train.confs import CmTrainConf, load_train_conf
from sasv.train.epoch_checkpoints import average_checkpoints, epoch_checkpoints
from sasv.train.validate import cm_validation_set, validation_cm_metrics

log = logging.getLogger("train_cm")


def main(argv: Sequence[str] | None = None) -> int:
    p = training_parser(
        "train_cm", __doc__, "cm", "conf/cm/aasist.yaml", "conf/train/cm/aasist.yaml", "wav.scp + utt2spf"
    )
    p.add_argument("--dev_set", required=True, help="data dir (wav.scp + utt2spf) scored after every epoch")
    p.add_argument(
        "--eval_set", default=None, help="data dir (wav.scp + utt2spf) the exported model is scored on"
    )
    args = p.parse_args(argv)

    model_conf, name, out = model_conf_and_output(args, "cm")
    conf = load_train_conf(args.train_conf, CmTrainConf)
    device = resolve_device(args.device)
    # every set and what the export needs, checked before the first epoch (a dev set of one class would
    # stop the run after it, an eval set after the last)
    cm_train_list(args.train_set)
    for data_set in (args.dev_set, args.eval_set):
        if data_set:
            cm_validation_set(data_set)
    check_export(model_conf, name, out)
    train_and_export(
        args,
        out,
        name,
        lambda: train(model_conf, conf, args.train_set, out, args.dev_set, device),
        {"train": args.train_set, "dev": args.dev_set, "eval": args.eval_set},
        lambda: export_and_score(args, model_conf, conf, name, out, device),
    )
    return 0


def export_and_score(
    args: Namespace, model_conf: ModelConf, conf: CmTrainConf, name: str, out: Path, device: torch.device
) -> None:
    """The exported model (best-dev average, BatchNorm re-estimated), its conf, and its dev and eval
    CM-EER with the other Track 1 metrics (minDCF, CLLR, actDCF of its log-odds) as results.{json,md}."""
    checkpoints = epoch_checkpoints(out)
    logs = [torch.load(c, map_location="cpu", weights_only=True)["log"] for c in checkpoints]
    chosen, averaged = exported_epochs(conf, [row["dev_cm_eer"] for row in logs])
    model = build_from_conf(model_conf)
    model.load_state_dict(average_checkpoints([checkpoints[e - 1] for e in chosen]))
    model.to(device)
    bn_updated = averaged and conf.bn_update
    if bn_updated:
        dataset = crop_dataset(conf, cm_train_list(args.train_set))
        dataset.set_epoch(conf.epochs)  # crops of an epoch no training step saw
        log.info("re-estimating BatchNorm statistics on %d training crops", len(dataset))
        update_batchnorm(model, dataset, conf.batch_size, device)
    model.cpu()
    rule = average_rule(conf, chosen, averaged, bn_updated)
    trained_on = f"{args.train_set} ({conf.epochs} epochs of {args.train_conf}, dev {args.dev_set}; {rule})"
    export_trained(model_conf, model, out, name, trained_on)
    model.to(device)
    dev = validation_cm_metrics(model, args.dev_set, device)
    evaluation = validation_cm_metrics(model, args.eval_set, device) if args.eval_set else None
    results = {
        "name": name,
        "model_conf": str(args.model_conf),
        "train_set": str(args.train_set),
        "epochs": len(checkpoints),
        "exported_epochs": chosen,
        "rule": rule,
        "dev_set": str(args.dev_set),
        "dev_cm_eer": dev["eer"],
        "eval_set": args.eval_set,
        "eval_cm_eer": None if evaluation is None else evaluation["eer"],
        "dev_cm_metrics": dev,
        "eval_cm_metrics": evaluation,
    }
    atomic_write_text(out / RESULTS_RECORD, json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / RESULTS_TABLE, results_table(results, model_conf.name))
    log.info("%s: %s; dev CM-EER %.2f %%", name, results["rule"], 100 * results["dev_cm_eer"])
    if results["eval_cm_eer"] is not None:
        log.info("%s: eval CM-EER %.2f %%", name, 100 * results["eval_cm_eer"])


if __name__ == "__main__":
    sys.exit(run_cli(main))
