#!/usr/bin/env bash
# Shared body of run_test_nonorm.sh and run_test_l2norm.sh (they only fix --norm).
#   stage 1  per ASV x CM model: speaker models, cosine scores, CM fusion, SASV/SV/SPF EERs
#            -> exp/<asv>/<cm>/<variant>/{scores_<set>.txt,results.json,results.md}
#            + DET curves, score histograms, per-attack SPF-EERs -> analysis.{md,json}, det_*.png, hist_*.png
#   stage 2  logistic-regression fusion of the ASV systems of this norm with the first --cm_conf
#            (needs >= 2 ASV confs)
#            -> exp/fusion/logreg_<variant>/{weights.json,scores_<set>.txt,results.md}
# <variant> is the norm, plus _asnorm with --score_norm asnorm and _sum with --fusion sum; paths come from
# sasv/exp_layout.py.
#   stage 3  summary over every model and variant present -> exp/summary.md and exp/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=3
norm=""                      # nonorm | l2norm (set by the wrapper script)
asv_conf="conf/asv/ecapa_tdnn.yaml"   # one or several ASV confs, space separated
cm_conf="conf/cm/aasist.yaml"         # one or several CM confs, space separated
data_dir=data
exp_dir=exp
sets="dev eval"
fusion=product               # product: P_CM * (cos + 1) / 2 (reference) | sum: cos + P_CM
score_norm=none              # none | asnorm (AS-norm of the ASV score; needs --cohort true at extraction)
top_k=300                    # AS-norm: top-K cohort scores
a_dcf_cost=""                # a-DCF cost model(s), e.g. 'paper sasv2024' ('' = the benchmark's: LA paper, ASVspoof 5 sasv2024)
bootstrap=1000               # bootstrap resamples (claimed speakers) for 95 % intervals; 0: none
plots=true                   # DET curves and score histograms (matplotlib) next to each results table
fusion_train_set=dev         # stage 2 trains the logistic-regression fusion here and applies it to all sets
cmd="${score_cmd}"           # job command of the stages (cmd.sh; '' = here, in the terminal)

script_name="${SASV_SCRIPT:-$0}"   # the wrapper the user called (run_test_{nonorm,l2norm}.sh)
help_message="Usage: ${script_name} [options]
Scoring, fusion and metrics of the SASV recipe (after run_spk_ebd_extract.sh).
Options (default):
  --stage N              first stage to run (${stage})
  --stop_stage N         last stage to run (${stop_stage})
  --norm N               nonorm | l2norm (fixed by run_test_nonorm.sh / run_test_l2norm.sh) (${norm})
  --asv_conf 'F ...'     ASV model conf(s) to score (${asv_conf}); several: space separated, or one per
                         line when a path holds spaces
  --cm_conf 'F ...'      CM model conf(s); fusion uses the first (${cm_conf})
  --data_dir DIR         data dirs root (${data_dir})
  --exp_dir DIR          experiment root (${exp_dir})
  --sets 'S ...'         sets to score (${sets})
  --fusion RULE          product | sum (${fusion})
  --score_norm N         none | asnorm (${score_norm})
  --top_k K              AS-norm top-K cohort scores (${top_k})
  --a_dcf_cost 'M ...'   a-DCF cost model(s): paper | sasv2024 ('${a_dcf_cost}': the benchmark's, LA paper,
                         ASVspoof 5 sasv2024 with t-DCF and t-EER)
  --bootstrap N          bootstrap resamples of claimed speakers for the 95 % intervals of the EERs and the
                         primary cost in results.json and analysis.md; 0: none (${bootstrap})
  --plots BOOL           DET curves and score histograms (${plots})
  --fusion_train_set S   set on which stage 2 trains the multi-system fusion (${fusion_train_set})
  --cmd 'CMD'            job command every step runs through, e.g. utils/run.sh ('${cmd}'; from cmd.sh)"

. utils/parse_options.sh
case "${norm}" in nonorm|l2norm) ;; *) echo "${script_name}: --norm must be nonorm or l2norm" >&2; exit 1 ;; esac

. utils/log.sh
check_stage_range
start_log "${exp_dir}" "run_test_${norm}"
split_list asv_confs "${asv_conf}"   # paths with spaces: utils/parse_options.sh
split_list cm_confs "${cm_conf}"

# where a system's outputs live: asked of the one owner of the exp/ layout
layout() {
  python -m sasv exp_path "$1" --exp_dir "${exp_dir}" --norm "${norm}" --score_norm "${score_norm}" \
    --fusion "${fusion}" "${@:2}"
}

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  for cm in "${cm_confs[@]}"; do
    for conf in "${asv_confs[@]}"; do
      log "Stage 1: scoring ${conf} + ${cm} (${norm}, fusion ${fusion})"
      system_name="$(layout system_name --asv_conf "${conf}" --cm_conf "${cm}")"
      run_job "score_trials.${system_name//\//.}" \
        python -m sasv score_trials --asv_conf "${conf}" --cm_conf "${cm}" --norm "${norm}" \
        --fusion "${fusion}" --data_dir "${data_dir}" --exp_dir "${exp_dir}" --sets ${sets} --score_norm "${score_norm}" --top_k "${top_k}" \
        --a_dcf_cost ${a_dcf_cost} --bootstrap "${bootstrap}"
      system_dir="$(layout system_dir --asv_conf "${conf}" --cm_conf "${cm}")"
      run_job "analyse_system.${system_name//\//.}" \
        python -m sasv analyse_system --system_dir "${system_dir}" --sets ${sets} --plots "${plots}" --bootstrap "${bootstrap}"
    done
  done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  systems=()
  first_cm=${cm_confs[0]}
  for conf in "${asv_confs[@]}"; do systems+=("$(layout system_name --asv_conf "${conf}" --cm_conf "${first_cm}")"); done
  if [ "${#systems[@]}" -ge 2 ]; then
    out="$(layout fusion_dir)"
    log "Stage 2: logistic-regression fusion of ${systems[*]} (trained on ${fusion_train_set}) -> ${out}"
    run_job fuse_systems \
      python -m sasv fuse_systems --exp_dir "${exp_dir}" --systems "${systems[@]}" --out "${out}" --train_set "${fusion_train_set}" --sets ${sets} --bootstrap "${bootstrap}"
    run_job analyse_fusion \
      python -m sasv analyse_system --system_dir "${out}" --sets ${sets} --plots "${plots}" --bootstrap "${bootstrap}"
  else
    log "Stage 2: skipped (multi-system fusion needs at least two ASV confs)"
  fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  log "Stage 3: summary table over every system in ${exp_dir}"
  run_job make_summary \
    python -m sasv make_summary --exp_dir "${exp_dir}" --data_dir "${data_dir}" --asv_confs "${asv_confs[@]}" \
    --cm_confs "${cm_confs[@]}"
  cat "${exp_dir}/summary.md"
fi
log "Done."
