#!/usr/bin/env bash
# The whole recipe on a generated mini corpus in the ASVspoof 2019 LA layout: set-up, data, embeddings,
# CM scores, both test variants, summary table. Without checkpoints in pretrained/ the models run with
# randomly initialised weights and every table says that its numbers mean nothing.
set -euo pipefail
cd "$(dirname "$0")"
local/setup_env.sh
. ./path.sh

seed=0
corpus_dir=data/mini_corpus         # the generated LA/ tree goes here
data_dir=data/mini                  # Kaldi data dirs
exp_dir=exp/mini
asv_conf="conf/asv/ecapa_tdnn.yaml conf/asv/se_resnet34.yaml"
cm_conf="conf/cm/aasist.yaml"
device=cpu
help_message="Usage: $0 [options]
Runs every stage of the recipe on a synthetic mini corpus.
Options (default):
  --seed N            corpus seed (${seed})
  --corpus_dir DIR    where the mini corpus is written (${corpus_dir})
  --data_dir DIR      data dirs root (${data_dir})
  --exp_dir DIR       experiment root (${exp_dir})
  --asv_conf 'F ...'  ASV model conf(s) (${asv_conf})
  --cm_conf F         CM model conf (${cm_conf})
  --device D          auto | cpu | cuda (${device})"
. utils/parse_options.sh

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
start=$(date +%s)
# 4 speakers per split, 5 bona fide test utterances each, 1 utterance per attack and speaker: small enough
# for the real-size models to run on a laptop CPU in a few minutes
python -m sasv make_mini_corpus --out "${corpus_dir}" --seed "${seed}" --bonafide_per_spk 5 --spoof_per_attack 1
common=(--data_dir "${data_dir}" --exp_dir "${exp_dir}" --asv_conf "${asv_conf}" --cm_conf "${cm_conf}")
./run_spk_ebd_extract.sh "${common[@]}" --la_root "${corpus_dir}/LA" --device "${device}" --allow_random_init true
./run_test_nonorm.sh "${common[@]}"
./run_test_l2norm.sh "${common[@]}"
echo "run_demo: finished in $(( $(date +%s) - start )) s; summary: ${exp_dir}/summary.md"
