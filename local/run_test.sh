#!/usr/bin/env bash
# Shared body of run_test_nonorm.sh and run_test_l2norm.sh (they only fix --norm).
#   stage 1  per ASV model: speaker models, cosine scores, CM fusion, SASV/SV/SPF EERs
#            -> exp/<asv>_<cm>/<norm>/{scores_<set>.txt,results.json,results.md}
#            + DET curves, score histograms, per-attack SPF-EERs -> analysis.{md,json}, det_*.png, hist_*.png
#   stage 2  logistic-regression fusion of all scored systems of this norm (needs >= 2 ASV confs)
#            -> exp/fusion/<cm>_<norm>/{weights.json,scores_<set>.txt,results.md}
#   stage 3  summary over every model and variant present -> exp/summary.md and exp/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh

stage=1
stop_stage=3
norm=""                      # nonorm | l2norm (set by the wrapper script)
asv_conf="conf/asv/ecapa_tdnn.yaml"   # one or several ASV confs, space separated
cm_conf="conf/cm/aasist.yaml"
data_dir=data
exp_dir=exp
sets="dev eval"
fusion=product               # product: P_CM * (cos + 1) / 2 (reference) | sum: cos + P_CM
score_norm=none              # none | asnorm (AS-norm of the ASV score; needs --cohort true at extraction)
top_k=300                    # AS-norm: top-K cohort scores
plots=true                   # DET curves and score histograms (matplotlib) next to each results table
fusion_train_set=dev         # stage 2 trains the logistic-regression fusion here and applies it to all sets

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
  --fusion RULE          product | sum (${fusion})
  --score_norm N         none | asnorm (${score_norm})
  --top_k K              AS-norm top-K cohort scores (${top_k})
  --plots BOOL           DET curves and score histograms (${plots})
  --fusion_train_set S   set on which stage 2 trains the multi-system fusion (${fusion_train_set})"

. utils/parse_options.sh
case "${norm}" in nonorm|l2norm) ;; *) echo "$0: --norm must be nonorm or l2norm" >&2; exit 1 ;; esac

mkdir -p "${exp_dir}/logs"
log_file="${exp_dir}/logs/run_test_${norm}.$(date +%Y%m%d-%H%M%S).log"
exec > >(tee -a "${log_file}") 2>&1
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_test_${norm}:${BASH_LINENO[0]}) $*"; }
log "norm=${norm} $*  (log: ${log_file})"

conf_name() { python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' "$1"; }
variant="${norm}"
[ "${score_norm}" = none ] || variant="${norm}_${score_norm}"
system_dir() { echo "${exp_dir}/$(conf_name "$1")_$(conf_name "${cm_conf}")/${variant}"; }

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  for conf in ${asv_conf}; do
    log "Stage 1: scoring ${conf} + ${cm_conf} (${norm}, fusion ${fusion})"
    python local/score_trials.py --asv_conf "${conf}" --cm_conf "${cm_conf}" --norm "${norm}" \
      --fusion "${fusion}" --data_dir "${data_dir}" --exp_dir "${exp_dir}" --sets ${sets} \
      --score_norm "${score_norm}" --top_k "${top_k}"
    python local/analyse_system.py --system_dir "$(system_dir "${conf}")" --sets ${sets} --plots "${plots}"
  done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  systems=()
  for conf in ${asv_conf}; do systems+=("$(system_dir "${conf}" | sed "s|^${exp_dir}/||")"); done
  if [ "${#systems[@]}" -ge 2 ]; then
    out="${exp_dir}/fusion/logreg_${variant}"
    log "Stage 2: logistic-regression fusion of ${systems[*]} (trained on ${fusion_train_set}) -> ${out}"
    python local/fuse_systems.py --exp_dir "${exp_dir}" --systems "${systems[@]}" --out "${out}" \
      --train_set "${fusion_train_set}" --sets ${sets}
    python local/analyse_system.py --system_dir "${out}" --sets ${sets} --plots "${plots}"
  else
    log "Stage 2: skipped (multi-system fusion needs at least two ASV confs)"
  fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  log "Stage 3: summary table over every system in ${exp_dir}"
  python local/make_summary.py --exp_dir "${exp_dir}" --asv_confs ${asv_conf}
  cat "${exp_dir}/summary.md"
fi
log "Done."
