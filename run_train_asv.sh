#!/usr/bin/env bash
# Train a speaker embedding model of the zoo on VoxCeleb (or any Kaldi data dir) and export it as a conf the
# SASV stages take.
#   stage 0  download VoxCeleb, MUSAN and RIRS_NOISES (opt-in: --download true; local/download_train_corpora.sh)
#   stage 1  VoxCeleb: data/voxceleb2_dev (AAC converted once to FLAC) and data/voxceleb1 (Vox1-O trials)
#   stage 2  augmentation lists: data/musan/{noise,music,speech}/wav.scp, data/rirs/wav.scp
#   stage 3  train --asv_conf's architecture with AAM-softmax on --train_set (resumable per epoch), average
#            the last --average_last epochs, export in the conf's public checkpoint format, validate on
#            --valid_set -> exp/train/<name>/{checkpoints/,train_log.csv,model.<ext>,model.yaml,validation.md}
# Then: ./run_spk_ebd_extract.sh --asv_conf exp/train/<name>/model.yaml (and the run_test scripts).
# Your own corpus: skip stage 1 and pass --train_set (wav.scp + utt2spk) and --valid_set (wav.scp + trials);
# their defaults are the sets stage 1 writes into --data_dir.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=3
vox1_root=VoxCeleb1                            # holds wav/
vox2_root=VoxCeleb2                            # holds dev/aac/
vox1_trials=VoxCeleb1/veri_test2.txt           # the cleaned Vox1-O trial list
musan_root=musan
rirs_root=RIRS_NOISES
data_dir=data
asv_conf="conf/asv/se_res2net50.yaml"          # the architecture to train (its checkpoint is not loaded)
train_conf="conf/train/asv/voxceleb_aam.yaml"  # epochs, batch, crops, optimizer, schedules, AAM, augmentation
train_set="<data_dir>/voxceleb2_dev"           # Kaldi data dir: wav.scp + utt2spk (in --data_dir)
valid_set="<data_dir>/voxceleb1"               # Kaldi data dir: wav.scp + trials ("" to skip validation)
average_last=10                                # the exported model averages the last N epochs
name=""                                        # trained model's name (default: <conf name>_trained)
exp_dir=exp
device=auto
nj=4                                           # stage 1 conversion processes
nproc_per_node=1                               # stage 3 training processes per node (GPUs); > 1: torchrun
nnodes=1                                       # nodes; > 1: run this script on every node with its --node_rank
node_rank=0
rdzv_endpoint=""                               # HOST:PORT of the c10d rendezvous (several nodes)
cmd="${train_cmd}"                             # job command of the training (cmd.sh; '' = here)
download=false                                 # stage 0 only runs with --download true
download_dir=downloads                         # where stage 0 keeps the archives

help_message="Usage: $0 [options]
Train a speaker embedding model with AAM-softmax and export it with a conf for run_spk_ebd_extract.sh.
Options (default):
  --stage N              first stage to run (${stage})
  --stop_stage N         last stage to run (${stop_stage})
  --vox1_root DIR        VoxCeleb1 folder (${vox1_root})
  --vox2_root DIR        VoxCeleb2 folder (${vox2_root})
  --vox1_trials F        cleaned Vox1-O trial list veri_test2.txt (${vox1_trials})
  --musan_root DIR       MUSAN folder (${musan_root})
  --rirs_root DIR        RIRS_NOISES folder (${rirs_root})
  --data_dir DIR         where stages 1-2 write data dirs and lists (${data_dir})
  --asv_conf F           ASV model conf whose architecture is trained (${asv_conf})
  --train_conf F         training conf (${train_conf})
  --train_set DIR        Kaldi data dir with wav.scp and utt2spk (${train_set})
  --valid_set DIR        data dir with wav.scp and trials, or '' (${valid_set})
  --average_last N       average the last N epochs for the exported model (${average_last})
  --name NAME            name of the trained model (<conf name>_trained)
  --exp_dir DIR          experiment root; outputs go to <exp_dir>/train/<name> (${exp_dir})
  --device D             auto | cpu | cuda | cuda:N (${device})
  --nj N                 stage 1 AAC -> FLAC conversion processes (${nj})
  --nproc_per_node N     stage 3 processes per node, one per GPU; more than one runs torchrun (${nproc_per_node})
  --nnodes N             nodes training together (${nnodes})
  --node_rank R          this node's rank, 0 .. nnodes-1 (${node_rank})
  --rdzv_endpoint H:P    rendezvous endpoint of a multi-node run (a host all nodes reach), e.g. node1:29400
  --cmd 'CMD'            job command stages 1-3 run through ('${cmd}'; from cmd.sh): stage 1 one task of --nj
                         cores; stage 3 with 'utils/slurm.sh --config conf/slurm.conf' one Slurm job of
                         --nnodes nodes x --nproc_per_node GPUs, torchrun on every node (no --node_rank or
                         --rdzv_endpoint)
  --download BOOL        run stage 0: download, check and unpack VoxCeleb, MUSAN and RIRS_NOISES into the
                         folder of --vox2_root; the roots must be <that folder>/{VoxCeleb1,VoxCeleb2,musan,
                         RIRS_NOISES} and --vox1_trials VoxCeleb1/veri_test2.txt in it (${download})
  --download_dir DIR     where stage 0 keeps the archives (${download_dir})"

. utils/parse_options.sh
# the sets stage 1 writes into --data_dir, unless given: a --data_dir of its own must not train on data/
[ "${train_set}" != "<data_dir>/voxceleb2_dev" ] || train_set=${data_dir}/voxceleb2_dev
[ "${valid_set}" != "<data_dir>/voxceleb1" ] || valid_set=${data_dir}/voxceleb1
. utils/log.sh
. utils/torchrun.sh
check_stage_range
corpora_dir=$(dirname "${vox2_root%/}")  # stage 0 unpacks everything in one folder: the roots must be there
if [ "${download}" = true ]; then
  for root_and_place in "vox1_root VoxCeleb1" "vox2_root VoxCeleb2" "musan_root musan" \
    "rirs_root RIRS_NOISES" "vox1_trials VoxCeleb1/veri_test2.txt"; do
    read -r root place <<< "${root_and_place}"
    given=${!root%/}
    want=${place}
    [ "${corpora_dir}" = . ] || want=${corpora_dir}/${place}
    if [ "${given#./}" != "${want}" ]; then
      echo "$0: stage 0 puts ${place} at ${want} (in the folder of --vox2_root), not at --${root} ${given}:" \
        "pass --${root} ${want}, or download by hand (local/download_train_corpora.sh --help)" >&2
      exit 1
    fi
  done
fi
start_log "${exp_dir}" run_train_asv

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  if [ "${download}" = true ]; then
    log "Stage 0: download VoxCeleb, MUSAN and RIRS_NOISES into ${corpora_dir} (archives in ${download_dir})"
    local/download_train_corpora.sh "${download_dir}" "${corpora_dir}"
  else
    log "Stage 0: skipped (pass --download true to fetch VoxCeleb, MUSAN and RIRS_NOISES)"
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: VoxCeleb data dirs from ${vox1_root}, ${vox2_root}, ${vox1_trials} into ${data_dir}"
  run_job --num-threads "${nj}" prepare_voxceleb \
    python -m sasv prepare_voxceleb --vox1_root "${vox1_root}" --vox2_root "${vox2_root}" --trials "${vox1_trials}" \
    --out "${data_dir}" --nj "${nj}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  log "Stage 2: augmentation lists from ${musan_root} and ${rirs_root} into ${data_dir}/{musan,rirs}"
  run_job prepare_augmentation \
    python -m sasv prepare_augmentation --musan_root "${musan_root}" --rirs_root "${rirs_root}" --out "${data_dir}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  opts=(--average_last "${average_last}")
  [ -z "${name}" ] || opts+=(--name "${name}")
  [ -z "${valid_set}" ] || opts+=(--valid_set "${valid_set}")
  [ -d "${data_dir}/musan" ] && opts+=(--musan_dir "${data_dir}/musan" --rirs_dir "${data_dir}/rirs")
  set_launcher "$(python -m sasv exp_path train_dir --exp_dir "${exp_dir}" --conf "${asv_conf}" \
    ${name:+--name "${name}"})/log/train_asv.log"
  log "Stage 3: training ${asv_conf} on ${train_set} (${train_conf}) under ${exp_dir}/train/," \
    "${nnodes} node(s) x ${nproc_per_node} process(es)"
  "${launch[@]}" -m sasv train_asv --model_conf "${asv_conf}" --train_conf "${train_conf}" \
    --train_set "${train_set}" --exp_dir "${exp_dir}" --device "${device}" "${opts[@]}"
fi
log "Done."
