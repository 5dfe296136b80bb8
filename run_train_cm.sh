#!/usr/bin/env bash
# Train a spoofing countermeasure of the zoo (AASIST, AASIST-L, SSL-AASIST from XLS-R) on ASVspoof 2019 LA
# train (or any data dir labelled bona fide / spoof), select it on LA dev, and export it as a conf the SASV
# stages take.
#   stage 0  download LA.zip and the training conf's pre-trained starting point, if it names one (XLS-R 300M
#            for SSL-AASIST: init_checkpoint) (opt-in: --download true; local/download_la.sh,
#            sasv download_pretrained --init_of)
#   stage 1  CM data dirs data/cm_{train,dev,eval}: wav.scp, utt2spk, utt2spf (bonafide|spoof) from the CM
#            protocols ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
#   stage 2  train --cm_conf's architecture with --train_conf (clovaai/aasist's recipe by default; resumable
#            per epoch, dev CM-EER after every epoch), export the average of the best dev epochs in the
#            clovaai AASIST.pth format -> exp/train/<name>/{checkpoints/,train_log.csv,train_curves.png,
#            model.pth,model.yaml,results.md}; results.md shows dev and eval CM-EER beside the published
#            AASIST / AASIST-L eval CM-EER (0.83 % / 0.99 %) and what retrained models reach (1.5-2.2 %)
# Then: ./run_spk_ebd_extract.sh --cm_conf exp/train/<name>/model.yaml (and the run_test scripts).
# ASVspoof 5: --corpus asvspoof5 --root <release folder> (stage 1 from ASVspoof5.{train,dev,eval}.tsv).
# Another corpus: skip stage 1 and pass --train_set / --dev_set / --eval_set (wav.scp + utt2spf each); their
# defaults are the sets stage 1 writes into --data_dir.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=2
corpus=la                                   # a corpus of sasv/corpora/registry.py: which protocols stage 1 reads
root=""                                     # the corpus folder (default: --la_root for la; required for others)
la_root=LA                                  # the LA/ folder of LA.zip
data_dir=data
cm_conf="conf/cm/aasist.yaml"               # the architecture to train (its checkpoint is not loaded)
train_conf="conf/train/cm/aasist.yaml"      # epochs, batch, crops, optimizer, schedule, averaging, RawBoost
train_set="<data_dir>/cm_train"             # data dir: wav.scp + utt2spf (default: in --data_dir)
dev_set="<data_dir>/cm_dev"                 # scored after every epoch; selects the exported epochs
eval_set="<data_dir>/cm_eval"               # the exported model is scored on it ("" to skip)
name=""                                     # trained model's name (default: <conf name>_trained)
exp_dir=exp
device=auto
audio_check=true                            # stage 1 decodes every file once
nproc_per_node=1                            # stage 2 training processes per node (GPUs); > 1: torchrun
nnodes=1                                    # nodes; > 1: run this script on every node with its --node_rank
node_rank=0
rdzv_endpoint=""                            # HOST:PORT of the c10d rendezvous (several nodes)
cmd="${train_cmd}"                          # job command of the training (cmd.sh; '' = here)
download=false                              # stage 0 only runs with --download true
download_dir=downloads                      # where stage 0 keeps LA.zip

help_message="Usage: $0 [options]
Train a countermeasure (AASIST by default) on LA train, select on LA dev, export it with a conf for
run_spk_ebd_extract.sh --cm_conf.
Options (default):
  --stage N              first stage to run (${stage})
  --stop_stage N         last stage to run (${stop_stage})
  --corpus C             $(python -m sasv corpus names) (${corpus})
  --root DIR             the corpus folder stage 1 reads (for la: --la_root's; the others need it)
  --la_root DIR          the LA/ folder (${la_root})
  --data_dir DIR         where stage 1 writes cm_{train,dev,eval} (${data_dir})
  --cm_conf F            CM model conf whose architecture is trained (${cm_conf})
  --train_conf F         training conf (${train_conf})
  --train_set DIR        data dir with wav.scp and utt2spf (${train_set})
  --dev_set DIR          data dir scored after every epoch (${dev_set})
  --eval_set DIR         data dir the exported model is scored on, or '' (${eval_set})
  --name NAME            name of the trained model (<conf name>_trained)
  --exp_dir DIR          experiment root; outputs go to <exp_dir>/train/<name> (${exp_dir})
  --device D             auto | cpu | cuda | cuda:N (${device})
  --audio_check BOOL     stage 1: decode every audio file and list suspicious ones (${audio_check})
  --nproc_per_node N     stage 2 processes per node, one per GPU; more than one runs torchrun (${nproc_per_node})
  --nnodes N             nodes training together (${nnodes})
  --node_rank R          this node's rank, 0 .. nnodes-1 (${node_rank})
  --rdzv_endpoint H:P    rendezvous endpoint of a multi-node run (a host all nodes reach), e.g. node1:29400
  --cmd 'CMD'            job command the training runs through ('${cmd}'; from cmd.sh): with
                         'utils/slurm.sh --config conf/slurm.conf' one Slurm job of --nnodes nodes x
                         --nproc_per_node GPUs, torchrun on every node (no --node_rank / --rdzv_endpoint)
  --download BOOL        run stage 0: download and unzip LA.zip into the folder of --la_root, and the
                         training conf's init_checkpoint into pretrained/ (${download})
  --download_dir DIR     where stage 0 keeps LA.zip (${download_dir})"

. utils/parse_options.sh
# the sets stage 1 writes into --data_dir, unless given: a --data_dir of its own must not train on data/
[ "${train_set}" != "<data_dir>/cm_train" ] || train_set=${data_dir}/cm_train
[ "${dev_set}" != "<data_dir>/cm_dev" ] || dev_set=${data_dir}/cm_dev
[ "${eval_set}" != "<data_dir>/cm_eval" ] || eval_set=${data_dir}/cm_eval
. utils/corpus.sh
check_corpus
. utils/log.sh
. utils/torchrun.sh
check_stage_range
start_log "${exp_dir}" run_train_cm

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  download_script=$(corpus_query download)
  if [ "${download}" = true ]; then
    log "Stage 0: download $(corpus_query title) into $(dirname "${corpus_root}") (archives in ${download_dir})"
    "${download_script}" "${download_dir}" "$(dirname "${corpus_root}")"
    # the training conf's pre-trained starting point, if it has one (SSL-AASIST: XLS-R 300M)
    python -m sasv download_pretrained --init_of "${train_conf}"
  elif [ -n "${download_script}" ]; then
    log "Stage 0: skipped (pass --download true to fetch $(corpus_query title))"
  else
    log "Stage 0: skipped ($(corpus_query title) has no download: get it by hand)"
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  prepare_tool=$(corpus_query prepare_tool)
  log "Stage 1: CM data dirs ${data_dir}/cm_{train,dev,eval} (sasv ${prepare_tool}) from ${corpus_root}"
  python -m sasv "${prepare_tool}" --root "${corpus_root}" --out "${data_dir}" --sets '' \
    --cm_sets train dev eval --audio_check "${audio_check}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  opts=()
  [ -z "${name}" ] || opts+=(--name "${name}")
  [ -z "${eval_set}" ] || opts+=(--eval_set "${eval_set}")
  set_launcher "$(python -m sasv exp_path train_dir --exp_dir "${exp_dir}" --conf "${cm_conf}" \
    ${name:+--name "${name}"})/log/train_cm.log"
  log "Stage 2: training ${cm_conf} on ${train_set} (${train_conf}), dev ${dev_set}, under ${exp_dir}/train/," \
    "${nnodes} node(s) x ${nproc_per_node} process(es)"
  "${launch[@]}" -m sasv train_cm --model_conf "${cm_conf}" --train_conf "${train_conf}" \
    --train_set "${train_set}" --dev_set "${dev_set}" --exp_dir "${exp_dir}" --device "${device}" \
    "${opts[@]}"
fi
log "Done."
