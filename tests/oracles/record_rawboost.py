"""Record RawBoost's own outputs (TakHemlata's ``RawBoost.py``, the fixture's oracle) on seeded inputs.

Run once, outside the project's environment, beside a checkout of TakHemlata/SSL_Anti-spoofing (and,
optionally, TakHemlata/RawBoost-antispoofing, whose ``RawBoost.py`` must give the same numbers). The
reference calls ``int()`` on one-element arrays, which numpy 2 refuses, so it needs numpy < 2:

    git clone https://github.com/TakHemlata/SSL_Anti-spoofing
    git clone https://github.com/TakHemlata/RawBoost-antispoofing
    python -m venv /tmp/oracle && /tmp/oracle/bin/pip install numpy==1.26.4 scipy==1.11.4
    /tmp/oracle/bin/python tests/oracles/record_rawboost.py \\
        --reference TakHemlata/SSL_Anti-spoofing SSL_Anti-spoofing \\
            $(git -C SSL_Anti-spoofing rev-parse HEAD) \\
        --reference TakHemlata/RawBoost-antispoofing RawBoost-antispoofing \\
            $(git -C RawBoost-antispoofing rev-parse HEAD) \\
        --out tests/fixtures/rawboost.npz

Each case makes a speech-like float32 waveform from ``input_seed`` (as ``librosa.load`` hands the reference
float32 audio), seeds numpy's global stream with ``np.random.seed(draw_seed)`` and calls the reference's
own ``process_Rawboost_feature`` (``data_utils_SSL.py``: the algorithm numbers 1-8 and how they chain;
``librosa`` and ``torch``, which that file imports to read audio and build datasets, are replaced by empty
modules where they are not installed) with an argparse-like
namespace of the case's parameters (the defaults are ``main.py``'s). It stores the input, the output
(float32), the first ``np.random.random()`` after the call (which tells how many numbers the call drew) and
the count of every kind of draw; the metadata (cases, parameters, seeds, commits, versions) is the JSON
string ``meta`` of the same ``.npz``. Only numbers are committed; the reference's code stays outside the
repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import types
from pathlib import Path

import numpy as np

N_SAMPLES = 1000  # 62.5 ms at 16 kHz: longer than a whole filter cascade (at most ~490 taps)
SAMPLE_RATE = 16000
DEFAULTS = dict(nBands=5, minF=20, maxF=8000, minBW=100, maxBW=1000, minCoeff=10, maxCoeff=100, minG=0,
                maxG=0, minBiasLinNonLin=5, maxBiasLinNonLin=20, N_f=5, P=10, g_sd=2, SNRmin=10,
                SNRmax=40)  # fmt: skip
OTHER = dict(DEFAULTS, nBands=3, minF=100, maxF=6000, minCoeff=20, maxCoeff=60, minG=-3, maxG=6,
             minBiasLinNonLin=2, maxBiasLinNonLin=10, N_f=3, P=30, g_sd=1, SNRmin=0, SNRmax=5)  # fmt: skip

# name: (algo, input_seed, draw_seed, params, n_samples)
CASES = {
    **{f"algo{a}": (a, 0, 100 + a, DEFAULTS, N_SAMPLES) for a in range(1, 9)},
    "algo4_other_params": (4, 1, 7, OTHER, N_SAMPLES),
    "algo1_shorter_than_the_filters": (1, 2, 3, DEFAULTS, 150),
}


def speechlike(seed: int, n: int) -> np.ndarray:
    """Noise under a slow envelope, peak 0.3, rounded to 16-bit PCM values (what decoded audio holds)."""
    rng = np.random.default_rng(seed)
    envelope = 0.2 + np.abs(np.sin(np.linspace(0, 6 * np.pi, n)))
    x = rng.standard_normal(n) * envelope
    x = 0.3 * x / np.max(np.abs(x))
    return (np.round(x * 32768) / 32768).astype(np.float32)


def _stub_readers() -> None:
    """Empty stand-ins for what the reference's data_utils file imports to read audio and build datasets
    (librosa, torch: unused by ``process_Rawboost_feature``), where they are not installed."""
    for name in ("librosa", "librosa.effects", "torch", "torch.nn", "torch.utils", "torch.utils.data"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    sys.modules["librosa"].effects = sys.modules["librosa.effects"]
    torch = sys.modules["torch"]
    if not hasattr(torch, "Tensor"):
        torch.Tensor = type("Tensor", (), {})
        torch.nn = sys.modules["torch.nn"]
        torch.utils = sys.modules["torch.utils"]
        torch.utils.data = sys.modules["torch.utils.data"]
        torch.utils.data.Dataset = type("Dataset", (), {})


def _load(folder: Path, name: str):
    """The reference's RawBoost.py and its data_utils file's ``process_Rawboost_feature``, from ``folder``."""
    _stub_readers()
    spec = importlib.util.spec_from_file_location("RawBoost", folder / "RawBoost.py")
    rawboost = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rawboost)
    sys.modules["RawBoost"] = rawboost  # what data_utils_SSL.py imports
    utils = folder / "data_utils_SSL.py"
    if not utils.is_file():
        utils = folder / "data_utils_rawboost.py"
    spec = importlib.util.spec_from_file_location(f"{name}_data_utils", utils)
    data_utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data_utils)
    return data_utils.process_Rawboost_feature


class _Counting:
    """Counts calls of np.random's functions the reference uses (they stay numpy's own)."""

    NAMES = ("uniform", "permutation", "rand", "normal")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(self.NAMES, 0)
        self.originals = {n: getattr(np.random, n) for n in self.NAMES}

    def __enter__(self) -> _Counting:
        for name, original in self.originals.items():

            def counted(*args, _name=name, _original=original, **kwargs):
                self.counts[_name] += 1
                return _original(*args, **kwargs)

            setattr(np.random, name, counted)
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self.originals.items():
            setattr(np.random, name, original)


def _run(process, algo: int, x: np.ndarray, draw_seed: int, params: dict) -> tuple[np.ndarray, float, dict]:
    np.random.seed(draw_seed)
    with _Counting() as counting:
        y = process(x.copy(), SAMPLE_RATE, argparse.Namespace(**params), algo)
    return np.asarray(y, dtype=np.float64), float(np.random.random()), counting.counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", nargs=3, action="append", required=True,
                        metavar=("OWNER/NAME", "DIR", "COMMIT"),
                        help="a repository, its checkout holding RawBoost.py and the commit; the first is "
                        "recorded, the others must agree with it to the last bit")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    processes = [(_load(Path(d), f"ref{i}"), d, c) for i, (_, d, c) in enumerate(args.reference)]

    arrays: dict[str, np.ndarray] = {}
    meta_cases = {}
    for name, (algo, input_seed, draw_seed, params, n) in CASES.items():
        x = speechlike(input_seed, n)
        runs = [_run(process, algo, x, draw_seed, params) for process, _, _ in processes]
        y, next_uniform, counts = runs[0]
        for (other, _, _), (repo, _, _) in zip(runs[1:], args.reference[1:], strict=True):
            if not np.array_equal(other, y):
                raise SystemExit(
                    f"{repo}: RawBoost.py gives other numbers than {args.reference[0][0]} ({name})"
                )
        arrays[f"{name}/input"] = x
        arrays[f"{name}/output"] = y.astype(np.float32)
        meta_cases[name] = {
            "algo": algo,
            "input_seed": input_seed,
            "draw_seed": draw_seed,
            "n_samples": n,
            "params": params,
            "next_uniform": next_uniform,
            "draw_counts": counts,
            "output_peak": float(np.max(np.abs(y))),
        }
    import scipy

    meta = {
        "oracle": "TakHemlata RawBoost.py via data_utils_SSL.process_Rawboost_feature",
        "references": [{"repository": r, "commit": c} for r, _, c in args.reference],
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "recorder": "tests/oracles/record_rawboost.py",
        "sample_rate": SAMPLE_RATE,
        "inputs": "speechlike(input_seed, n_samples) of the recorder, stored as <case>/input (float32)",
        "draws": "np.random.seed(draw_seed) before the call; next_uniform: np.random.random() after it",
        "cases": meta_cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta, indent=1)), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
