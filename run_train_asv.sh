#!/usr/bin/env bash
# Train a speaker embedding model of the zoo and export it as a conf the SASV stages take.
#   stage 1  train --asv_conf's architecture with AAM-softmax on --train_set (any Kaldi data dir with
#            wav.scp and utt2spk), resumable per epoch, and export the weights in the conf's public
#            checkpoint format -> exp/train/<name>/{checkpoints/,train_log.csv,model.<ext>,model.yaml}
# Then: ./run_spk_ebd_extract.sh --asv_conf exp/train/<name>/model.yaml (and the run_test scripts).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

stage=1
stop_stage=1
asv_conf="conf/asv/se_res2net50.yaml"          # the architecture to train (its checkpoint is not loaded)
train_conf="conf/train/asv/voxceleb_aam.yaml"  # epochs, batch, crops, optimizer, schedules, AAM-softmax
train_set=data/voxceleb2_dev                   # Kaldi data dir: wav.scp + utt2spk
name=""                                        # trained model's name (default: <conf name>_trained)
exp_dir=exp
device=auto

help_message="Usage: $0 [options]
Train a speaker embedding model with AAM-softmax and export it with a conf for run_spk_ebd_extract.sh.
Options (default):
  --stage N              first stage to run (${stage})
  --stop_stage N         last stage to run (${stop_stage})
  --asv_conf F           ASV model conf whose architecture is trained (${asv_conf})
  --train_conf F         training conf (${train_conf})
  --train_set DIR        Kaldi data dir with wav.scp and utt2spk (${train_set})
  --name NAME            name of the trained model (<conf name>_trained)
  --exp_dir DIR          experiment root; outputs go to <exp_dir>/train/<name> (${exp_dir})
  --device D             auto | cpu | cuda | cuda:N (${device})"

. utils/parse_options.sh
. utils/log.sh
check_stage_range
start_log "${exp_dir}" run_train_asv

name_opt=()
[ -z "${name}" ] || name_opt=(--name "${name}")

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: training ${asv_conf} on ${train_set} (${train_conf}) under ${exp_dir}/train/"
  python -m sasv train_asv --model_conf "${asv_conf}" --train_conf "${train_conf}" --train_set "${train_set}" \
    --exp_dir "${exp_dir}" --device "${device}" ${name_opt[@]+"${name_opt[@]}"}
fi
log "Done."
