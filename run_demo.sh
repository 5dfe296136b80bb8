#!/usr/bin/env bash
# The whole recipe on a generated mini corpus in the ASVspoof 2019 LA layout, training included: set-up,
# data, a small speaker model trained on the corpus's train speakers (run_train_asv.sh) and a small AASIST
# trained on its train set (run_train_cm.sh), both side by side on the two cores, then embeddings, CM
# scores, both test variants and the summary for the trained models and, beside them, the same
# architectures untrained, so the tables show what training bought.
set -euo pipefail
cd "$(dirname "$0")"
local/setup_env.sh
. ./path.sh

seed=0
corpus_dir=data/mini_corpus         # the generated LA/ tree goes here
data_dir=data/mini                  # Kaldi data dirs
exp_dir=exp/mini
asv_conf=conf/demo/resnet_small.yaml          # the speaker model trained and compared with its untrained self
cm_conf=conf/demo/aasist_small.yaml           # the countermeasure, likewise
asv_train_conf=conf/demo/train_asv.yaml
cm_train_conf=conf/demo/train_cm.yaml
train_speakers=24                   # mini corpus: train speakers (ASV training), 8 bona fide utterances each
speakers=6                          # mini corpus: speakers per dev/eval split
device=cpu
help_message="Usage: $0 [options]
Trains a small ASV model and a small CM on a synthetic mini corpus, then runs every stage of the recipe
with the trained and the untrained models.
Options (default):
  --seed N               corpus seed (${seed})
  --corpus_dir DIR       where the mini corpus is written (${corpus_dir})
  --data_dir DIR         data dirs root (${data_dir})
  --exp_dir DIR          experiment root (${exp_dir})
  --asv_conf F           ASV architecture to train and compare (${asv_conf})
  --cm_conf F            CM architecture to train and compare (${cm_conf})
  --asv_train_conf F     its training conf (${asv_train_conf})
  --cm_train_conf F      its training conf (${cm_train_conf})
  --train_speakers N     train speakers of the mini corpus (${train_speakers})
  --speakers N           dev and eval speakers each (${speakers})
  --device D             auto | cpu | cuda (${device})"
. utils/parse_options.sh

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
start=$(date +%s)
python -m sasv make_mini_corpus --out "${corpus_dir}" --seed "${seed}" --train_speakers "${train_speakers}" \
  --train_utts_per_spk 8 --speakers "${speakers}" --bonafide_per_spk 6 --spoof_per_attack 1 --attacks 6
dirs=(--data_dir "${data_dir}" --exp_dir "${exp_dir}")
./run_spk_ebd_extract.sh "${dirs[@]}" --la_root "${corpus_dir}/LA" --stage 1 --stop_stage 1 --cohort true

# the two trainings at once, one core each; their logs are in ${exp_dir}/logs
./run_train_asv.sh "${dirs[@]}" --stage 3 --asv_conf "${asv_conf}" --train_conf "${asv_train_conf}" \
  --train_set "${data_dir}/train_cohort" --valid_set "${data_dir}/dev" --average_last 3 --device "${device}" \
  > /dev/null &
asv_training=$!
./run_train_cm.sh "${dirs[@]}" --la_root "${corpus_dir}/LA" --cm_conf "${cm_conf}" --train_conf "${cm_train_conf}" \
  --train_set "${data_dir}/cm_train" --dev_set "${data_dir}/cm_dev" --eval_set "${data_dir}/cm_eval" \
  --device "${device}" > /dev/null &
cm_training=$!
wait "${asv_training}" || { echo "$0: ASV training failed: see ${exp_dir}/logs/run_train_asv.*.log" >&2; exit 1; }
wait "${cm_training}" || { echo "$0: CM training failed: see ${exp_dir}/logs/run_train_cm.*.log" >&2; exit 1; }
trained_asv=$(python -m sasv exp_path train_dir --exp_dir "${exp_dir}" --conf "${asv_conf}")/model.yaml
trained_cm=$(python -m sasv exp_path train_dir --exp_dir "${exp_dir}" --conf "${cm_conf}")/model.yaml
cat "$(dirname "${trained_asv}")/validation.md" "$(dirname "${trained_cm}")/results.md"

models=(--asv_conf "${trained_asv} ${asv_conf}" --cm_conf "${trained_cm} ${cm_conf}")
./run_spk_ebd_extract.sh "${dirs[@]}" "${models[@]}" --stage 2 --device "${device}" --allow_random_init true
./run_test_nonorm.sh "${dirs[@]}" "${models[@]}"
./run_test_l2norm.sh "${dirs[@]}" "${models[@]}"
echo "run_demo: finished in $(( $(date +%s) - start )) s; summary: ${exp_dir}/summary.md"
