#!/usr/bin/env bash
# SASV recipe, part 1: data -> ASV speaker embeddings -> CM scores, on ASVspoof 2019 LA (--corpus la) or
# ASVspoof 5 Track 2 (--corpus asvspoof5 --root <release folder>); CM scores and their metrics on the
# ASVspoof 2021 LA / DF evaluation sets (--corpus asvspoof2021_la|asvspoof2021_df --root <folder with
# ASVspoof2021_{LA,DF}_eval/ and keys/>).
#   stage 0  download LA.zip and the SASV trial lists (opt-in: --download true; LA only)
#   stage 1  Kaldi-style data dirs data/{dev,eval}/{wav.scp,utt2spk,enroll,trials}, validated (ASVspoof 2021:
#            CM data dirs data/{la,df}2021_eval/{wav.scp,utt2spf,utt2codec,...})
#   stage 2  ASV embeddings (full utterance + five 3 s segments) -> exp/<asv>/embeddings/<set>/xvector.scp
#            (skipped for a countermeasure benchmark: ASVspoof 2021)
#   stage 3  CM scores (AASIST P(bona fide)) -> exp/<cm>/scores/<set>/cm_scores.txt, per --cm_conf
#   stage 4  ASVspoof 2021 only: EER and (LA) min t-DCF, pooled and per condition, beside the published
#            SSL-AASIST numbers -> exp/<cm>/<benchmark>_eval/results.{json,md} (sasv evaluate_asvspoof2021)
# Then run run_test_nonorm.sh / run_test_l2norm.sh (LA, ASVspoof 5).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=4
corpus=la                    # a corpus of sasv/corpora/registry.py: la (ASVspoof 2019 LA), asvspoof5, ...
root=""                      # the corpus folder (default: --la_root for la; required for the others)
la_root=LA                   # the corpus's LA/ folder (holds ASVspoof2019_LA_{dev,eval}/ ...)
trials_dir=""                # where ASVspoof2019.LA.asv.{dev,eval}.gi.trl.txt are (default: LA asv protocols)
asv_conf="conf/asv/ecapa_tdnn.yaml"   # one or several ASV confs, space separated (or one per line, split_list)
cm_conf="conf/cm/aasist.yaml"         # one or several CM confs, likewise
data_dir=data
exp_dir=exp
sets=""                      # the data dirs to prepare and process ('': the corpus's, e.g. dev eval)
device=auto                  # auto | cpu | cuda | cuda:N
num_workers=auto             # audio decoding workers per job (auto: 0 on CPU, a few per GPU job)
nj=1                         # parallel jobs for stages 2 and 3 (processes; one per GPU when there are several)
cmd="${extract_cmd}"         # job command of stages 2-3 (cmd.sh: '' = processes of this one, utils/slurm.sh ...)
chunk_size=200               # utterances per resumable chunk: the unit of work a job takes
threads=0                    # intra-op threads per job (0: OMP_NUM_THREADS or all cores, divided by nj)
autocast=none                # none | bf16 | fp16: mixed precision for ASV models (GPU; changes the numbers)
embedding_dtype=float32      # float32 | float16: how embedding rows are stored (float16: half the disk, rounded)
compile=false                # true: torch.compile the fixed-shape forwards (2-D models over a corpus, see docs)
download=false               # stage 0 only runs with --download true
download_dir=downloads
cohort=false                 # true: also prepare and embed data/train_cohort (LA train bona fide) for AS-norm
audio_check=true             # stage 1 decodes every file: unreadable audio fails early, odd audio is listed
suspect_audio=warn           # warn | error: silent, near-silent or heavily clipped files at stage 1
allow_random_init=false      # true: run models without pretrained weights (demo only: numbers mean nothing)

help_message="Usage: $0 [options]
Stages 0-3 of the SASV recipe: download (opt-in), data preparation, ASV embeddings, CM scores.
Options (default):
  --stage N              first stage to run (${stage})
  --stop_stage N         last stage to run (${stop_stage})
  --corpus C             $(python -m sasv corpus names) (${corpus})
  --root DIR             the corpus folder stage 1 reads (for la: --la_root's; the others need it)
  --la_root DIR          ASVspoof 2019 LA folder with ASVspoof2019_LA_{dev,eval}/flac (${la_root})
  --trials_dir DIR       folder with the SASV trial lists (<la_root>/ASVspoof2019_LA_asv_protocols)
  --asv_conf 'F ...'     ASV model conf(s) (${asv_conf}); several: space separated, or one per line
                         when a path holds spaces (one such path alone needs nothing)
  --cm_conf 'F ...'      CM model conf(s), likewise (${cm_conf})
  --data_dir DIR         data dirs root (${data_dir})
  --exp_dir DIR          experiment root (${exp_dir})
  --sets 'S ...'         sets to prepare and process (default: the corpus's, dev eval for la and
                         asvspoof5, la2021_eval / df2021_eval for ASVspoof 2021)
  --device D             auto | cpu | cuda | cuda:N (${device})
  --num_workers N        audio decoding workers per job, or auto (${num_workers})
  --nj N                 parallel jobs in stages 2 and 3, see docs/PERFORMANCE.md (${nj})
  --cmd 'CMD'            job command the --nj jobs run through, e.g. 'utils/slurm.sh --config conf/slurm.conf'
                         ('${cmd}'; default from cmd.sh, '' = processes of this one)
  --chunk_size N         utterances per resumable chunk, the unit a job takes (${chunk_size})
  --threads N            intra-op threads per job, 0 = cores / nj (${threads})
  --autocast P           none | bf16 | fp16 mixed precision for the ASV models (${autocast})
  --embedding_dtype T    float32 | float16 storage of embedding rows (${embedding_dtype})
  --compile BOOL         torch.compile segments and CM inputs: 2-D models (not ECAPA) on CPU (${compile})
  --download BOOL        run stage 0 (${download})
  --download_dir DIR     where stage 0 puts archives (${download_dir})
  --cohort BOOL          also prepare/embed the AS-norm cohort data/train_cohort (${cohort})
  --audio_check BOOL     stage 1 decodes every audio file and lists suspicious ones (${audio_check})
  --suspect_audio P      warn | error on silent, near-silent or heavily clipped files (${suspect_audio})
  --allow_random_init BOOL  tolerate missing checkpoints: random weights, meaningless numbers (${allow_random_init})"

. utils/parse_options.sh
. utils/corpus.sh
check_corpus
[ -n "${sets}" ] || sets=$(corpus_query sets)

. utils/log.sh
check_stage_range
start_log "${exp_dir}" run_spk_ebd_extract

split_list asv_confs "${asv_conf}"
split_list cm_confs "${cm_conf}"
split_list set_names "${sets}"
data_dirs=()
for s in "${set_names[@]}"; do data_dirs+=("${data_dir}/${s}"); done
emb_dirs=("${data_dirs[@]}")
[ "${cohort}" = true ] && emb_dirs+=("${data_dir}/train_cohort")

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  download_script=$(corpus_query download)
  if [ "${download}" = true ]; then
    log "Stage 0: download $(corpus_query title) into $(dirname "${corpus_root}") (archives in ${download_dir})"
    "${download_script}" "${download_dir}" "$(dirname "${corpus_root}")"
  elif [ -n "${download_script}" ]; then
    log "Stage 0: skipped (pass --download true to fetch $(corpus_query title))"
  else
    log "Stage 0: skipped ($(corpus_query title) has no download: get it by hand)"
  fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  prepare_tool=$(corpus_query prepare_tool)
  log "Stage 1: data preparation (sasv ${prepare_tool}) from ${corpus_root} into ${data_dir}/{${sets// /,}}"
  python -m sasv "${prepare_tool}" --root "${corpus_root}" ${trials_dir:+--trials_dir "${trials_dir}"} \
    --out "${data_dir}" --sets "${set_names[@]}" --cohort "${cohort}" --audio_check "${audio_check}" \
    --suspect_audio "${suspect_audio}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ] && [ "$(corpus_query cm_only)" = true ]; then
  log "Stage 2: skipped ($(corpus_query title) judges countermeasures: no ASV embeddings)"
elif [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  for conf in "${asv_confs[@]}"; do
    log "Stage 2: ASV embeddings with ${conf}"
    python -m sasv extract_embeddings --conf "${conf}" --data_dirs "${emb_dirs[@]}" --exp_dir "${exp_dir}" \
      --device "${device}" --num_workers "${num_workers}" --nj "${nj}" --cmd "${cmd}" --threads "${threads}" \
      --chunk_size "${chunk_size}" --autocast "${autocast}" --embedding_dtype "${embedding_dtype}" \
      --compile "${compile}" --allow_random_init "${allow_random_init}"
  done
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  for conf in "${cm_confs[@]}"; do
    log "Stage 3: CM scores with ${conf}"
    python -m sasv score_cm --conf "${conf}" --data_dirs "${data_dirs[@]}" --exp_dir "${exp_dir}" \
      --device "${device}" --num_workers "${num_workers}" --nj "${nj}" --cmd "${cmd}" --threads "${threads}" \
      --chunk_size "${chunk_size}" --compile "${compile}" --allow_random_init "${allow_random_init}"
  done
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ -z "$(corpus_query cm_evaluation)" ]; then
  log "Stage 4: skipped ($(corpus_query title) systems are scored by run_test_nonorm.sh / run_test_l2norm.sh)"
elif [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  cm_evaluation=$(corpus_query cm_evaluation)
  for conf in "${cm_confs[@]}"; do
    for data in "${data_dirs[@]}"; do
      log "Stage 4: $(corpus_query title) metrics of ${conf} on ${data} (sasv ${cm_evaluation})"
      python -m sasv "${cm_evaluation}" --cm_conf "${conf}" --exp_dir "${exp_dir}" --data "${data}"
    done
  done
fi

log "Done."
