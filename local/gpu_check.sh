#!/usr/bin/env bash
# The GPU path end to end in one command (under 8 minutes on one GPU), on a small generated corpus; one
# summary table, a row per check, in <out>/gpu_check.md (printed at the end). Exit status 0 only when no row
# FAILED; a failing check is a row, and the checks after it still run. Rows (device D: --device / $DEV):
#   corpus                     sasv make_mini_corpus (small) + prepare_la (dev, cohort, CM train/dev), tiny confs
#   pytest_gpu                 pytest -m gpu -q tests/test_gpu.py (on the CPU: every test skips -> skipped)
#   extract_<family>_<prec>    stage 2 (sasv extract_embeddings) with a tiny model of each family (ECAPA,
#                              SE-ResNet-34, SE-Res2Net-50, Res2NeXt-50, WavLM+ECAPA) on D, fp32 and
#                              --autocast bf16, against the same stage in fp32 on the CPU: max relative
#                              difference (max|d| / max|ref|) and min cosine; FAILED above the precision's bound
#   cm_nj1, cm_nj2, cm_compile stage 3 (sasv score_cm, tiny AASIST) on D with --nj 1, --nj 2, --compile true;
#                              the latter two against --nj 1 (compile: skipped without a compiler)
#   train_{asv,cm}_<prec>      run_train_asv.sh / run_train_cm.sh with the demo confs, 2 epochs, precision
#                              fp32, bf16, fp16, one process per GPU (torchrun when there are several; on the
#                              CPU one process, fp32 only): last epoch's losses, finite
#   probe_<model>              one synthetic utterance of growing length (--probe_seconds) through the engine
#                              of WavLM tiny and ECAPA-TDNN (C=1024): peak torch.cuda.max_memory_allocated
#   bench                      bench/benchmark.py at small sizes: utt/s and speed-up of the recipe's path
# Logs: <out>/logs/<row>.log, this script's own log <out>/logs/gpu_check.*.log.
# Test hook: GPU_CHECK_FAIL='ROW ...' (row names, globs allowed) makes those rows fail without running them
# (tests/test_gpu_check.py checks that a FAILED row gives a nonzero exit and that later rows still run).
set -uo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export TQDM_DISABLE=1

device="${DEV:-auto}"           # auto: cuda when torch.cuda.is_available(), else cpu
out="${out:-exp/gpu_check}"
steps="pytest extract cm train probe bench"
fp32_bound=1e-4                 # max relative difference to the CPU, fp32 on the GPU (TF32 off: rounding only)
bf16_bound=1e-1                 # the same with --autocast bf16 (docs: ~3e-2 on real models)
cm_bound=1e-4                   # score_cm --nj 2 / --compile true against --nj 1 (logits)
probe_seconds="30 60 120"
cpu_compile=false               # --compile true on the CPU too (about a minute of compiling)
seed=0

# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [options]
Checks the GPU path end to end (pytest -m gpu, extraction in fp32/bf16 against the CPU, the CM stage with
--nj 2 and --compile, 2-epoch trainings in bf16/fp16 under torchrun, a long-utterance memory probe, the
benchmark) on a generated corpus and writes one table, <out>/gpu_check.md. Exit 0 only if no row FAILED.
Options (default):
  --device D             auto | cpu | cuda | cuda:N; also \$DEV (${device})
  --out DIR              output folder; also \$out (${out})
  --steps 'S ...'        which checks run: pytest extract cm train probe bench (${steps})
  --fp32_bound X         extraction fp32 on the device vs CPU: max relative difference (${fp32_bound})
  --bf16_bound X         extraction --autocast bf16 vs CPU fp32: max relative difference (${bf16_bound})
  --cm_bound X           CM --nj 2 / --compile true vs --nj 1: max relative difference (${cm_bound})
  --probe_seconds 'S ...' utterance lengths of the memory probe (${probe_seconds})
  --cpu_compile BOOL     also run --compile true when the device is the CPU (${cpu_compile})
  --seed N               corpus seed (${seed})
Test hook: GPU_CHECK_FAIL='ROW ...' makes the named rows (globs allowed) fail without running them."

. utils/parse_options.sh
for step in ${steps}; do
  case "${step}" in pytest|extract|cm|train|probe|bench) ;;
    *) echo "$0: --steps: unknown step '${step}' (pytest extract cm train probe bench)" >&2; exit 1 ;;
  esac
done
. utils/log.sh
start_log "${out}" gpu_check
mkdir -p "${out}/logs" "${out}/keys"
rows="${out}/rows.tsv"
: > "${rows}"
helper="${out}/gpu_check_helper.py"
start=$(date +%s)

# ---------------------------------------------------------------------------------------------------------
# The Python side: one file of subcommands (written here, so that the check is one script).
cat > "${helper}" <<'PYTHON'
"""Subcommands of local/gpu_check.sh; every row it writes is `check, device, status, seconds, key, log`."""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import glob
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

ROWS = Path(os.environ["GPU_CHECK_ROWS"])
OUT = Path(os.environ["GPU_CHECK_OUT"])


def forced(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in os.environ.get("GPU_CHECK_FAIL", "").split())


def add_row(name: str, where: str, status: str, seconds: float, key: str, log: Path) -> None:
    key = " ".join(key.replace("|", "/").split())
    with ROWS.open("a") as f:
        f.write(f"{name}\t{where}\t{status}\t{seconds:.1f}\t{key}\t{log}\n")


class Skip(Exception):
    """A check that has no meaning here: its message is the reason."""


@contextlib.contextmanager
def logged(path: Path):
    """stdout and stderr (file descriptors, so the tools' logging too) into ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def check(name: str, where: str, body) -> None:
    """Run ``body()`` (returns the key figure; raises :class:`Skip` or fails) as the row ``name``."""
    log = OUT / "logs" / f"{name}.log"
    t0 = time.monotonic()
    if forced(name):
        log.write_text("GPU_CHECK_FAIL: made to fail (test hook)\n")
        add_row(name, where, "FAILED", 0.0, "made to fail by GPU_CHECK_FAIL", log)
        return
    try:
        with logged(log):
            key = body()
        status = "ok"
    except Skip as e:
        status, key = "skipped", str(e)
    except BaseException as e:  # noqa: BLE001 - any failure is the row's, the next rows still run
        with log.open("a") as f:
            traceback.print_exc(file=f)
        status, key = "FAILED", f"{type(e).__name__}: {e}"[:200]
    add_row(name, where, status, time.monotonic() - t0, key, log)


def sasv(*argv: str) -> None:
    from sasv.__main__ import main

    rc = main(list(argv))
    if rc != 0:
        raise RuntimeError(f"sasv {argv[0]} exited with {rc}")


def rel_diff(got, ref) -> float:
    import numpy as np

    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"shape {got.shape} != {ref.shape}")
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def cmd_confs(confs_dir: str) -> None:
    """Tiny confs of every family (random weights: no checkpoint), from the tests' one definition."""
    import yaml

    from sasv.models.conf import load_conf
    from tests.tiny_confs import TINY_RESNET_ARGS, TINY_WAVLM_CFG
    from tests.tiny_confs import TINY_AASIST, TINY_ECAPA

    folder = Path(confs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    confs = {"ecapa_tdnn": TINY_ECAPA, "cm": TINY_AASIST}
    for arch, args in TINY_RESNET_ARGS.items():
        real = load_conf(Path("conf/asv") / f"{arch}.yaml")
        confs[arch] = {"name": f"tiny_{arch}", "kind": "asv", "arch": arch, "args": args,
                       "frontend": dict(real.frontend), "embedding_dim": args["embedding_dim"]}  # fmt: skip
    confs["wavlm_ecapa"] = {"name": "tiny_wavlm_ecapa", "kind": "asv", "arch": "wavlm_ecapa",
                            "args": {"wavlm": TINY_WAVLM_CFG, "channels": 16, "embedding_dim": 16}}  # fmt: skip
    for family, conf in confs.items():
        (folder / f"{family}.yaml").write_text(yaml.safe_dump({**conf, "batch_size": 8}, sort_keys=False))


def cmd_extract(dev: str, data: str, confs_dir: str, fp32_bound: str, bf16_bound: str) -> None:
    import numpy as np

    from sasv.extraction.outputs import read_embeddings

    bounds = {"fp32": float(fp32_bound), "bf16": float(bf16_bound)}
    work = OUT / "extract"
    shutil.rmtree(work, ignore_errors=True)  # a re-run computes again: the stages would reuse its outputs

    def run(family: str, where: str, precision: str) -> dict:
        exp = work / f"{where.replace(':', '')}_{precision}" / family
        sasv("extract_embeddings", "--conf", f"{confs_dir}/{family}.yaml", "--data_dirs", data,
             "--exp_dir", str(exp), "--device", where, "--autocast", "none" if precision == "fp32" else precision,
             "--allow_random_init", "true", "--chunk_size", "8")  # fmt: skip
        (scp,) = glob.glob(str(exp / "*" / "embeddings" / Path(data).name / "xvector.scp"))
        return read_embeddings(scp)

    references: dict[str, dict] = {}
    for family in ("ecapa_tdnn", "se_resnet34", "se_res2net50", "res2next50", "wavlm_ecapa"):
        for precision in ("fp32", "bf16"):

            def body(family=family, precision=precision) -> str:
                if dev == "cpu" and precision == "fp32":
                    raise Skip("the device is the CPU: fp32 there is the reference itself")
                if family not in references:
                    references[family] = run(family, "cpu", "fp32")
                ref = references[family]
                got = run(family, dev, precision)
                if sorted(got) != sorted(ref):
                    raise AssertionError("not the same utterances as the CPU run")
                g = np.concatenate([got[u] for u in sorted(ref)]).astype(np.float64)
                r = np.concatenate([ref[u] for u in sorted(ref)]).astype(np.float64)
                rel = rel_diff(g, r)
                cosine = float(((g * r).sum(1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1))).min())
                figure = f"max rel diff {rel:.2e} (bound {bounds[precision]:.0e}), min cosine {cosine:.6f}"
                if not rel <= bounds[precision]:
                    raise AssertionError(figure)
                return f"{figure}, {len(ref)} utts x {r.shape[1]}-d"

            check(f"extract_{family}_{precision}", f"{dev} vs cpu", body)


def _cm_logits(exp: Path, set_name: str) -> tuple[list[str], list[list[float]]]:
    (path,) = glob.glob(str(exp / "*" / "scores" / set_name / "cm_scores.txt"))
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return [f[0] for f in lines], [[float(v) for v in f[1:3]] for f in lines]


def cmd_cm(dev: str, data: str, conf: str, bound: str, cpu_compile: str) -> None:
    from sasv.runtime.compiled import compile_problem
    from sasv.runtime.devices import resolve_device

    work = OUT / "cm"
    shutil.rmtree(work, ignore_errors=True)
    set_name = Path(data).name
    ran: dict[str, tuple] = {}

    def run(label: str, *opts: str) -> tuple:
        exp = work / label
        t0 = time.monotonic()
        sasv("score_cm", "--conf", conf, "--data_dirs", data, "--exp_dir", str(exp), "--device", dev,
             "--allow_random_init", "true", "--chunk_size", "4", *opts)  # fmt: skip
        ran[label] = _cm_logits(exp, set_name)
        return time.monotonic() - t0

    def nj1() -> str:
        seconds = run("nj1", "--nj", "1")
        return f"{len(ran['nj1'][0])} utts in {seconds:.1f} s"

    def against_nj1(label: str, *opts: str):
        def body() -> str:
            if label == "compile":
                problem = compile_problem(resolve_device(dev))
                if problem:
                    raise Skip(f"no torch.compile here: {problem}")
                if dev == "cpu" and cpu_compile != "true":
                    raise Skip("on the CPU compiling takes about a minute: --cpu_compile true runs it")
            if "nj1" not in ran:
                run("nj1", "--nj", "1")
            seconds = run(label, *opts)
            if ran[label][0] != ran["nj1"][0]:
                raise AssertionError("not the same utterances, in order, as --nj 1")
            rel = rel_diff(ran[label][1], ran["nj1"][1])
            figure = f"max rel diff {rel:.2e} vs --nj 1 (bound {float(bound):.0e})"
            if not rel <= float(bound):
                raise AssertionError(figure)
            return f"{figure}, {seconds:.1f} s"

        return body

    check("cm_nj1", dev, nj1)
    check("cm_nj2", dev, against_nj1("nj2", "--nj", "2"))
    check("cm_compile", dev, against_nj1("compile", "--nj", "1", "--compile", "true"))


def cmd_probe(dev: str, confs_dir: str, seconds: str) -> None:
    import numpy as np

    lengths = [float(s) for s in seconds.split()]
    for name, conf in (("wavlm_tiny", f"{confs_dir}/wavlm_ecapa.yaml"), ("ecapa_tdnn", "conf/asv/ecapa_tdnn.yaml")):

        def body(conf=conf) -> str:
            import torch

            from sasv.runtime.devices import resolve_device
            from sasv.extraction.engines import EngineOptions, load_engine

            if resolve_device(dev).type != "cuda":
                raise Skip("peak GPU memory: the device is the CPU")
            engine = load_engine(conf, EngineOptions(device=dev), allow_random_init=True)
            rng = np.random.default_rng(0)
            peaks = []
            for s in lengths:
                wav = (0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                (rows,) = engine.compute([wav])
                torch.cuda.synchronize()
                if not np.isfinite(rows).all():
                    raise AssertionError(f"{s:g} s: non-finite embedding")
                peaks.append(f"{s:g} s: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
                print(peaks[-1], flush=True)
            return "peak " + ", ".join(peaks)

        check(f"probe_{name}", dev, body)


def cmd_train_conf(src: str, dst: str, precision: str, nproc: str) -> None:
    """The demo training conf for a 2-epoch check: precision set, batch fitting the mini corpus's ranks."""
    import yaml

    conf = yaml.safe_load(Path(src).read_text())
    conf.update(epochs=2, precision=precision, warmup_epochs=0, batch_size=max(2, 8 // int(nproc)))
    if "average_max_dev_eer" in conf:  # 2 epochs of an untrained model: any dev EER is fine here
        conf["average_max_dev_eer"] = 1.0
    Path(dst).write_text(yaml.safe_dump(conf, sort_keys=False))


def cmd_train_key(train_dir: str) -> None:
    """Last epoch's losses and EERs from train_log.csv; exit 1 if any is not finite."""
    rows = list(csv.DictReader(Path(train_dir, "train_log.csv").open()))
    last = rows[-1]
    shown = {k: v for k, v in last.items() if "loss" in k or "eer" in k.lower()}
    bad = [k for k, v in shown.items() if v not in ("", None) and not math.isfinite(float(v))]
    print(f"epochs {len(rows)}, " + ", ".join(f"{k} {float(v):.4g}" for k, v in shown.items() if v))
    if bad or len(rows) != 2:
        sys.exit(1)


def cmd_bench_key(md: str) -> None:
    """utt/s of the recipe's path per model, its speed-up and max rel. diff (bench/benchmark.py's table)."""
    figures = []
    header: list[str] = []
    for line in Path(md).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:3] == ["model", "threads", "path"]:
            header = cells
        elif header and len(cells) == len(header) and cells[2] == "recipe":
            row = dict(zip(header, cells, strict=True))
            figures.append(f"{row['model']} {row['utt/s']} utt/s ({row['speed-up']}, diff {row['max rel. diff']})")
    if not figures:
        sys.exit("no recipe row in the benchmark's extraction table")
    print("; ".join(figures))


if __name__ == "__main__":
    globals()[f"cmd_{sys.argv[1]}"](*sys.argv[2:])
PYTHON
export GPU_CHECK_ROWS="${rows}" GPU_CHECK_OUT="${out}"

# ---------------------------------------------------------------------------------------------------------
# one row: check NAME DEVICE FUNCTION [ARGS]: the function runs in a subshell with `set -e`, its output in
# <out>/logs/NAME.log; it writes its key figure to ${key_file}; exit 0 ok, 77 skipped (reason in
# ${key_file}), anything else FAILED (the key: ${key_file}, else the log's last line)
forced() {
  local pattern
  for pattern in ${GPU_CHECK_FAIL:-}; do
    # shellcheck disable=SC2053  # a glob on purpose
    [[ "$1" == ${pattern} ]] && return 0
  done
  return 1
}

add_row() {  # NAME DEVICE STATUS SECONDS KEY LOG
  local key="${5//|//}"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${key//$'\n'/ }" "$6" >> "${rows}"
}

check() {
  local name=$1 where=$2 status=0 t0 key
  shift 2
  local log="${out}/logs/${name}.log"
  key_file="${out}/keys/${name}"
  : > "${key_file}"
  t0=$(date +%s%N)
  if forced "${name}"; then
    echo "GPU_CHECK_FAIL: made to fail (test hook)" > "${log}"
    echo "made to fail by GPU_CHECK_FAIL" > "${key_file}"
    status=1
  else
    ( set -e; "$@" ) > "${log}" 2>&1
    status=$?
  fi
  key=$(cat "${key_file}")
  case "${status}" in
    0) status=ok ;;
    77) status=skipped ;;
    *) [ -n "${key}" ] || key="exit ${status}: $(tail -n 1 "${log}")"; status=FAILED ;;
  esac
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  add_row "${name}" "${where}" "${status}" "$(( ms / 1000 )).$(( ms % 1000 / 100 ))" "${key}" "${log}"
  log "${name}: ${status} ${key}"
}

# a Python step that writes its own rows; rows it did not write (it died) are FAILED
python_rows() {  # LOG_NAME 'ROW ...' SUBCOMMAND [ARGS]
  local step_log="${out}/logs/$1.log" expected=$2 name
  shift 2
  python "${helper}" "$@" > "${step_log}" 2>&1
  for name in ${expected}; do
    if ! cut -f1 "${rows}" | grep -qx "${name}"; then
      add_row "${name}" "${device}" FAILED 0.0 "its step died: see ${step_log}" "${step_log}"
    fi
    log "$(awk -F'\t' -v n="${name}" '$1 == n {print n ": " $3 " " $5}' "${rows}")"
  done
}

wants() { [[ " ${steps} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------------------
read -r device ngpus torch_info < <(python - "${device}" <<'PYTHON'
import sys

import torch

from sasv.runtime.devices import resolve_device

dev = resolve_device(sys.argv[1])
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
print(str(dev), torch.cuda.device_count() if dev.type == "cuda" else 0, f"torch {torch.__version__}, {name}")
PYTHON
) || { echo "$0: cannot resolve --device ${device}" >&2; exit 1; }
log "device ${device} (${torch_info}); GPUs: ${ngpus}; rows in ${out}/gpu_check.md"

data="${out}/data"
confs="${out}/confs"
corpus() {
  rm -rf "${data}" "${confs}"
  python -m sasv make_mini_corpus --out "${out}/corpus" --seed "${seed}" --speakers 2 --train_speakers 4 \
    --train_utts_per_spk 6 --enroll_per_spk 1 --bonafide_per_spk 2 --spoof_per_attack 1 --attacks 2
  python -m sasv prepare_la --la_root "${out}/corpus/LA" --out "${data}" --sets dev --cohort true \
    --cm_sets train dev --audio_check false
  python "${helper}" confs "${confs}"
  echo "$(wc -l < "${data}/dev/wav.scp") dev utts, $(wc -l < "${data}/train_cohort/wav.scp") train utts," \
    "$(wc -l < "${data}/cm_train/wav.scp") CM train utts" > "${key_file}"
}
check corpus cpu corpus

pytest_gpu() {
  local rc=0 summary
  python -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py || rc=$?
  summary=$(grep -E '(passed|failed|skipped|error)' "${out}/logs/pytest_gpu.log" | tail -n 1 | tr -d '=')
  echo "${summary}" > "${key_file}"
  if [ "${rc}" -eq 0 ] && [[ "${device}" == cpu ]] && [[ "${summary}" != *passed* ]]; then
    echo "no CUDA device: pytest -m gpu skips every test (${summary# })" > "${key_file}"
    return 77
  fi
  return "${rc}"
}
wants pytest && check pytest_gpu "${device}" pytest_gpu

families="ecapa_tdnn se_resnet34 se_res2net50 res2next50 wavlm_ecapa"
if wants extract; then
  expected=""
  for f in ${families}; do expected+="extract_${f}_fp32 extract_${f}_bf16 "; done
  python_rows extract "${expected}" extract "${device}" "${data}/dev" "${confs}" "${fp32_bound}" "${bf16_bound}"
fi

wants cm && python_rows cm "cm_nj1 cm_nj2 cm_compile" cm "${device}" "${data}/dev" "${confs}/cm.yaml" \
  "${cm_bound}" "${cpu_compile}"

train() {  # asv|cm PRECISION
  local kind=$1 precision=$2 nproc launcher exp train_conf model_conf
  if [[ "${device}" == cpu ]]; then
    if [ "${precision}" != fp32 ]; then
      echo "${precision} autocast training is a GPU's (the CPU runs fp32 only)" > "${key_file}"
      return 77
    fi
    # one process: the CPU smoke keeps the script from rotting; the 2-rank gloo path is tests/train's
    # (torchrun tests), away from gloo's intermittent teardown abort (sasv.train.collectives.finish_distributed)
    nproc=1
    launcher="1 process (CPU smoke; 2-rank gloo: tests/train)"
  else
    nproc=$(( ngpus > 1 ? ngpus : 1 ))   # one process per GPU (one GPU: no torchrun, utils/torchrun.sh)
    launcher="${nproc} rank(s) (torchrun, nccl)"
    [ "${nproc}" -gt 1 ] || launcher="1 process (one GPU: no torchrun)"
  fi
  exp="${out}/train/${kind}_${precision}"
  rm -rf "${exp}"
  mkdir -p "${exp}"
  train_conf="${exp}/train_${kind}.yaml"
  python "${helper}" train_conf "conf/demo/train_${kind}.yaml" "${train_conf}" "${precision}" "${nproc}"
  if [ "${kind}" = asv ]; then
    model_conf=conf/demo/resnet_small.yaml
    ./run_train_asv.sh --stage 3 --exp_dir "${exp}" --asv_conf "${model_conf}" --train_conf "${train_conf}" \
      --train_set "${data}/train_cohort" --valid_set "${data}/dev" --average_last 2 --device "${device}" \
      --nproc_per_node "${nproc}" --cmd ''
  else
    model_conf=conf/demo/aasist_small.yaml
    ./run_train_cm.sh --stage 2 --exp_dir "${exp}" --cm_conf "${model_conf}" --train_conf "${train_conf}" \
      --train_set "${data}/cm_train" --dev_set "${data}/cm_dev" --eval_set '' --device "${device}" \
      --nproc_per_node "${nproc}" --cmd ''
  fi
  local key
  key=$(python "${helper}" train_key "$(python -m sasv exp_path train_dir --exp_dir "${exp}" --conf "${model_conf}")")
  echo "${launcher}; ${key}" > "${key_file}"
}
if wants train; then
  for kind in asv cm; do
    for precision in fp32 bf16 fp16; do
      check "train_${kind}_${precision}" "${device}" train "${kind}" "${precision}"
    done
  done
fi

wants probe && python_rows probe "probe_wavlm_tiny probe_ecapa_tdnn" probe "${device}" "${confs}" "${probe_seconds}"

bench() {
  local opts
  if [[ "${device}" == cpu ]]; then
    opts=(--models aasist --utts 1 --threads 1 --trials 1000 --official_metrics_trials --bootstrap_trials
      --metrics_lines --autocast_utts 0)
  else
    opts=(--models ecapa_tdnn se_resnet34 aasist --utts 8 --threads 4
      --trials 100000 --official_metrics_trials 100000 --bootstrap_trials 100000 --metrics_lines 100000
      --autocast_utts 2)
  fi
  python bench/benchmark.py --device "${device}" --repeats 1 "${opts[@]}" --out "${out}/bench.md"
  python "${helper}" bench_key "${out}/bench.md" > "${key_file}"
}
wants bench && check bench "${device}" bench

# ---------------------------------------------------------------------------------------------------------
table="${out}/gpu_check.md"
failed=$(cut -f3 "${rows}" | grep -cx FAILED)
{
  echo "# GPU check: ${device} (${torch_info}), $(date '+%Y-%m-%d %H:%M'), $(( $(date +%s) - start )) s"
  echo
  echo "| check | device | status | seconds | key figure(s) | log |"
  echo "| --- | --- | --- | ---: | --- | --- |"
  while IFS=$'\t' read -r name where status seconds key logf; do
    echo "| ${name} | ${where} | ${status} | ${seconds} | ${key} | ${logf} |"
  done < "${rows}"
  echo
  echo "${failed} check(s) FAILED."
} > "${table}"
cat "${table}"
[ "${failed}" -eq 0 ]
