#!/usr/bin/env bash
# Shared body of run_test_nonorm.sh and run_test_l2norm.sh (they only fix --norm).
#   stage 1  per ASV model: speaker models, cosine scores, CM fusion, SASV/SV/SPF EERs
#            -> exp/<asv>_<cm>/<norm>/{scores_<set>.txt,results.json,results.md}
#   stage 2  summary over every model and variant present -> exp/summary.md
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh

stage=1
stop_stage=2
norm=""                      # nonorm | l2norm (set by the wrapper script)
asv_conf="conf/asv/ecapa_tdnn.yaml"   # one or several ASV confs, space separated
cm_conf="conf/cm/aasist.yaml"
data_dir=data
exp_dir=exp
sets="dev eval"
fusion=product               # product: P_CM * (cos + 1) / 2 (reference) | sum: cos + P_CM

help_message="Usage: $0 [options]
Scoring, fusion and metrics of the SASV recipe (after run_spk_ebd_extract.sh).
Options (default):
  --stage N              first stage to run (${stage})
  --stop_stage N         last stage to run (${stop_stage})
  --asv_conf 'F ...'     ASV model conf(s) to score (${asv_conf})
  --cm_conf F            CM model conf (${cm_conf})
  --data_dir DIR         data dirs root (${data_dir})
  --exp_dir DIR          experiment root (${exp_dir})
  --sets 'S ...'         sets to score (${sets})
  --fusion RULE          product | sum (${fusion})"

. utils/parse_options.sh
case "${norm}" in nonorm|l2norm) ;; *) echo "$0: --norm must be nonorm or l2norm" >&2; exit 1 ;; esac

mkdir -p "${exp_dir}/logs"
log_file="${exp_dir}/logs/run_test_${norm}.$(date +%Y%m%d-%H%M%S).log"
exec > >(tee -a "${log_file}") 2>&1
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_test_${norm}:${BASH_LINENO[0]}) $*"; }
log "norm=${norm} $*  (log: ${log_file})"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  for conf in ${asv_conf}; do
    log "Stage 1: scoring ${conf} + ${cm_conf} (${norm}, fusion ${fusion})"
    python local/score_trials.py --asv_conf "${conf}" --cm_conf "${cm_conf}" --norm "${norm}" \
      --fusion "${fusion}" --data_dir "${data_dir}" --exp_dir "${exp_dir}" --sets ${sets}
  done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  log "Stage 2: summary table over every system in ${exp_dir}"
  python local/make_summary.py --exp_dir "${exp_dir}" --asv_confs ${asv_conf}
  cat "${exp_dir}/summary.md"
fi
log "Done."
