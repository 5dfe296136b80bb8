"""Record SSL-AASIST's own outputs (TakHemlata/SSL_Anti-spoofing ``model.py`` on its bundled fairseq).

Run once, outside the project's environment, in a scratch virtual environment holding the reference's own
fairseq (the copy it bundles, ``fairseq-a54021305d6b3c4c5959ac9395135f63202db8f1/``). That fairseq wants
hydra-core 1.0, omegaconf 2.0 (whose metadata pip >= 24.1 refuses) and numpy < 1.24 (``np.float``):

    git clone https://github.com/TakHemlata/SSL_Anti-spoofing ssl && cd ssl
    python3.11 -m venv /tmp/ssl_oracle/venv && V=/tmp/ssl_oracle/venv/bin
    $V/pip install 'pip<24.1' && $V/pip install torch==2.13.0     # the CPU build
    $V/pip install numpy==1.23.5 hydra-core==1.0.7 omegaconf==2.0.6 soundfile \\
        cffi cython regex sacrebleu tqdm bitarray
    $V/pip install --no-deps --no-build-isolation -e fairseq-a54021305d6b3c4c5959ac9395135f63202db8f1
    cd - && $V/python tests/oracles/record_ssl_aasist.py --reference ssl \\
        --commit $(git -C ssl rev-parse HEAD) --out tests/fixtures/ssl_aasist
    # the full-size model (nothing committed): add --full /tmp/ssl_oracle/full --full-only; to time it
    # again on a quiet machine (the model rebuilt from its saved state dict): --full ... --time-only

Python 3.11 refuses fairseq a54021305's dataclass configs (a default that is a dataclass instance, hence
unhashable: "mutable default ... use default_factory"); before importing fairseq this script restores
Python 3.10's rule for those fields only (the class is marked hashable while ``dataclasses`` checks the
field, the default stays the same shared instance, as on 3.10). fairseq's code is otherwise run unchanged.

What it does:

1. Pretrains a tiny wav2vec 2.0 with fairseq's own ``fairseq-hydra-train`` (task ``audio_pretraining``,
   model ``wav2vec2`` shaped like XLS-R 300M: ``layer_norm`` extractor, ``layer_norm_first``, conv bias,
   gelu, quantized targets; :data:`TINY_MODEL`) for :data:`UPDATES` updates on seeded 16-bit WAVs through
   a manifest, on the CPU, and copies fairseq's ``checkpoint_last.pt`` byte for byte to ``tiny_xlsr.pt``:
   the on-disk format of ``xlsr2_300m.pt`` (``cfg``, ``model``, ``optimizer_history``, ...). It lists the
   globals the file's pickle references (``pickletools``, and torch's
   ``get_unsafe_globals_in_checkpoint``).
2. Builds the reference's ``Model(args, device)`` from its ``model.py`` (imported from ``--reference``,
   never copied), whose ``SSLModel`` loads ``xlsr2_300m.pt`` from the working directory: the script runs
   it in a folder where that name links to the checkpoint. The one patch: ``SSLModel.out_dim`` is a
   hard-coded 1024 (the back end's ``LL = nn.Linear(out_dim, 128)``), so for the tiny encoder it is set to
   the checkpoint's ``encoder_embed_dim`` right after the reference's ``SSLModel.__init__`` returns (the
   full-size run keeps 1024 unpatched). Seeded (``torch``, ``numpy``, ``random``), then every BatchNorm's
   running statistics and affine parameters and every LayerNorm's affine parameters (fairseq's included)
   are moved away from their defaults from a second seed, so a missing or misplaced normalisation shows.
   ``model.state_dict()`` is saved with ``torch.save`` as ``main_SSL_LA.py`` saves its checkpoints
   (``tiny_ssl_aasist.pth``: ``ssl_model.model.*``, ``LL.*``, ``first_bn.*``, ...), and a second model
   loaded from that file must give the same logits.
3. In eval mode, on ``x_padded`` of the AASIST golden ``io.npz`` (4 x 64600 float32; only its sha256 is
   stored) as a batch and one row at a time: ``ssl_model.extract_feat`` (B, T, dim) and ``Model.forward``'s
   logits (B, 2); the logits of the first 48000 samples too (another frame count); and the encoder output
   of ``tiny_xlsr.pt`` itself as fairseq loads it (``load_model_ensemble_and_task``,
   ``model(x, mask=False, features_only=True)["x"]``), before the back end's perturbation. Arrays go to
   ``io.npz`` (float32), the rest (configs, the patch, seeds, versions, commits, sha256 of every file and of
   the input) to ``config.json``.
4. With ``--full DIR``: XLS-R 300M's architecture (:data:`XLSR_300M`) with random weights, built by fairseq
   and saved by ``checkpoint_utils.torch_persistent_save`` in the same format, the reference ``Model`` on it
   unpatched (the same perturbation), its state dict (about 1.3 GB), its batch-of-4 logits, and the
   forward's CPU speed (utterances/s, median of :data:`REPEATS`, batch 1 and 4 at 1 and 2 threads) and peak
   RSS, into ``DIR``. Nothing of it is committed.

Recording again gives the same tensors, ``tiny_ssl_aasist.pth`` and ``io.npz`` byte for byte, but another
``tiny_xlsr.pt`` (and its sha256): fairseq stores wall-clock meters in ``extra_state``. Only numbers (and
fairseq's own checkpoint of a tiny model) are committed; the reference's code stays outside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import pickletools
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GOLDEN_IO = REPO.parent / "shared" / "golden" / "aasist" / "io.npz"
FAIRSEQ_DIR = "fairseq-a54021305d6b3c4c5959ac9395135f63202db8f1"  # what the reference bundles
SEED = 1234
PERTURB_SEED = 4321
SHORT = 48000  # the second input length (samples)
SAMPLE_RATE = 16000
UPDATES = 3
N_WAVS = 8
REPEATS = 5

# the tiny model: XLS-R 300M's choices (examples/wav2vec/config/pretraining/wav2vec2_large_librivox.yaml),
# small sizes; the extractor's 24 channels differ from the encoder's 32 dimensions, so post_extract_proj
# exists as in XLS-R (512 -> 1024); dropouts and layer drop are on (as in pretraining) and must be off in eval
TINY_MODEL = {
    "_name": "wav2vec2",
    "quantize_targets": True,
    "extractor_mode": "layer_norm",
    "layer_norm_first": True,
    "final_dim": 16,
    "latent_vars": 8,
    "latent_groups": 2,
    "latent_temp": [2.0, 0.1, 0.999995],
    "num_negatives": 10,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.1,
    "dropout_features": 0.1,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "conv_bias": True,
    "activation_fn": "gelu",
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 4,
    "conv_feature_layers": "[(24,10,5)] + [(24,3,2)] * 4 + [(24,2,2)] * 2",
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "feature_grad_mult": 1.0,
}
XLSR_300M = {
    "encoder_layers": 24,
    "encoder_embed_dim": 1024,
    "encoder_ffn_embed_dim": 4096,
    "encoder_attention_heads": 16,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "final_dim": 768,
    "latent_vars": 320,
    "latent_groups": 2,
    "num_negatives": 100,
}


def _train_config(data: Path, save_dir: Path) -> dict:
    return {
        "common": {"cpu": True, "fp16": False, "seed": 1, "log_format": "simple", "log_interval": 1},
        "checkpoint": {"save_dir": str(save_dir), "no_epoch_checkpoints": True},
        "task": {
            "_name": "audio_pretraining",
            "data": str(data),
            "max_sample_size": 16000,
            "min_sample_size": 4000,
            "normalize": True,
        },
        "dataset": {"batch_size": 4, "num_workers": 0, "max_tokens": 64000, "disable_validation": True},
        "distributed_training": {"distributed_world_size": 1, "ddp_backend": "legacy_ddp"},
        "criterion": {
            "_name": "wav2vec",
            "infonce": True,
            "log_keys": ["prob_perplexity", "code_perplexity", "temp"],
            "loss_weights": [0.1, 10],
        },
        # a large fixed rate, so that a few Adam steps move every parameter (norms, biases) off its init
        "optimization": {"max_update": UPDATES, "lr": [0.05]},
        "optimizer": {"_name": "adam", "adam_betas": "(0.9,0.98)", "adam_eps": 1e-06, "weight_decay": 0.01},
        "lr_scheduler": {"_name": "fixed"},
        "model": TINY_MODEL,
    }


def _allow_unhashable_dataclass_defaults() -> None:
    """Python 3.10's dataclass rule (only list, dict and set defaults refused), for fairseq a54021305."""
    original = dataclasses._get_field
    if getattr(original, "_py310_rule", False):
        return

    def get_field(cls, a_name, a_type, *rest):
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if isinstance(default, dataclasses.Field):
            default = default.default
        klass = type(default)
        if default is dataclasses.MISSING or isinstance(default, list | dict | set) or klass.__hash__:
            return original(cls, a_name, a_type, *rest)
        klass.__hash__ = object.__hash__
        try:
            return original(cls, a_name, a_type, *rest)
        finally:
            klass.__hash__ = None

    get_field._py310_rule = True
    dataclasses._get_field = get_field


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def sha256_array(a: np.ndarray) -> str:
    """sha256 of the array's C-order bytes (float32, little-endian)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def write_corpus(data: Path) -> None:
    """Seeded speech-like 16-bit WAVs (0.75-1.19 s) and fairseq's manifest (train.tsv; valid.tsv the same)."""
    import soundfile as sf  # noqa: PLC0415

    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    lines = [str(data)]
    for i in range(N_WAVS):
        n = 12000 + 1000 * i
        t = np.arange(n) / SAMPLE_RATE
        tone = np.sin(2 * np.pi * (150 + 40 * i) * t) * (0.3 + 0.2 * np.sin(2 * np.pi * 3 * t))
        x = 0.3 * tone + 0.05 * rng.standard_normal(n) * np.abs(np.sin(np.linspace(0, 9, n)))
        sf.write(data / f"utt{i}.wav", x.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        lines.append(f"utt{i}.wav\t{n}")
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
    shutil.copy(data / "train.tsv", data / "valid.tsv")


def pretrain_tiny(work: Path) -> Path:
    """fairseq-hydra-train in a child process (hydra takes over logging and the working directory)."""
    import yaml  # noqa: PLC0415 (omegaconf's dependency)

    data, conf, save = work / "data", work / "config", work / "checkpoints"
    write_corpus(data)
    conf.mkdir(parents=True, exist_ok=True)
    text = "# @package _group_\n" + yaml.safe_dump(_train_config(data, save), sort_keys=False)
    (conf / "tiny_xlsr.yaml").write_text(text)
    argv = ["--config-dir", str(conf), "--config-name", "tiny_xlsr", f"hydra.run.dir={work / 'hydra'}"]
    log = work / "train.log"
    with log.open("w") as f:
        rc = subprocess.call([sys.executable, __file__, "--hydra-train", *argv], stdout=f, stderr=f)
    if rc != 0 or not (save / "checkpoint_last.pt").exists():
        sys.exit(f"fairseq-hydra-train failed ({rc}); see {log}")
    return save / "checkpoint_last.pt"


def pickle_globals(path: Path) -> list[str]:
    """Every module.qualname the checkpoint's pickle (``data.pkl`` in torch's zip) references."""
    with zipfile.ZipFile(path) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(pkl):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        elif op.name in ("INST", "OBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"):
            found.add(f"<opcode {op.name}>")
    return sorted(found)


def inspect_checkpoint(path: Path) -> dict:
    import torch  # noqa: PLC0415

    ck = torch.load(path, map_location="cpu", weights_only=True)  # fails if the pickle needs more
    opt = ck.get("last_optimizer_state")
    return {
        "pickle_globals": pickle_globals(path),
        "torch_unsafe_globals": sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))),
        "loads_with_weights_only": True,
        "top_level_keys": list(ck),
        "types": {k: type(v).__name__ for k, v in ck.items()},
        "cfg_is_plain_dict": type(ck["cfg"]) is dict,
        "cfg_sections": list(ck["cfg"]),
        "extra_state_keys": list(ck["extra_state"]),
        "optimizer_history": ck["optimizer_history"],
        "last_optimizer_state_keys": None if opt is None else list(opt),
        "model_keys": list(ck["model"]),
        "model_cfg": ck["cfg"]["model"],
        "task_cfg": ck["cfg"]["task"],
    }


def load_reference(reference: Path):
    _allow_unhashable_dataclass_defaults()
    spec = importlib.util.spec_from_file_location("ssl_aasist_reference_model", reference / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def xlsr_at_cwd(checkpoint: Path):
    """The reference's SSLModel reads ``xlsr2_300m.pt`` from the working directory: link it there."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory() as d:
        os.symlink(Path(checkpoint).resolve(), Path(d) / "xlsr2_300m.pt")
        os.chdir(d)
        try:
            yield
        finally:
            os.chdir(old)


def build_model(ref, checkpoint: Path, patch_out_dim: bool, seed: int = SEED):
    """The reference ``Model(args, device)``; with ``patch_out_dim`` its one patch (see the docstring)."""
    import torch  # noqa: PLC0415

    original_init = ref.SSLModel.__init__

    def patched_init(self, device):
        original_init(self, device)
        self.out_dim = self.model.cfg.encoder_embed_dim  # was the hard-coded 1024

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    if patch_out_dim:
        ref.SSLModel.__init__ = patched_init
    try:
        with xlsr_at_cwd(checkpoint), contextlib.redirect_stdout(io.StringIO()):
            model = ref.Model(argparse.Namespace(), torch.device("cpu"))
    finally:
        ref.SSLModel.__init__ = original_init
    return model


def perturb_norms(model, seed: int = PERTURB_SEED) -> dict:
    """Move every BatchNorm's statistics and affine and every LayerNorm's affine off their defaults."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    counts = {"batch_norm": 0, "layer_norm": 0}
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(0.5 * torch.randn(n, generator=g))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                counts["batch_norm"] += 1
            elif isinstance(module, nn.LayerNorm | nn.GroupNorm):
                counts["layer_norm"] += 1
            else:
                continue
            if module.weight is not None:
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=g))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=g))
    return counts


def run_model(model, x: np.ndarray) -> dict:
    import torch  # noqa: PLC0415

    model.eval()
    t = torch.from_numpy(np.ascontiguousarray(x))
    short = torch.from_numpy(np.ascontiguousarray(x[:, :SHORT]))
    out = {}
    with torch.no_grad():
        out["feat"] = model.ssl_model.extract_feat(t)
        out["feat_single"] = torch.cat([model.ssl_model.extract_feat(t[i : i + 1]) for i in range(len(t))])
        out["logits"] = model(t)
        out["logits_single"] = torch.cat([model(t[i : i + 1]) for i in range(len(t))])
        out["feat_48000"] = model.ssl_model.extract_feat(short)
        out["logits_48000"] = model(short)
        out["logits_48000_single"] = torch.cat([model(short[i : i + 1]) for i in range(len(short))])
    assert not model.training and not model.ssl_model.model.training
    return {k: v.numpy().astype(np.float32) for k, v in out.items()}


def fairseq_features(checkpoint: Path, x: np.ndarray) -> np.ndarray:
    """The checkpoint's encoder output as fairseq loads it (what the reference's extract_feat calls)."""
    import fairseq  # noqa: PLC0415
    import torch  # noqa: PLC0415

    models, _, _ = fairseq.checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)])
    m = models[0].eval()
    with torch.no_grad():
        return m(torch.from_numpy(np.ascontiguousarray(x)), mask=False, features_only=True)["x"].numpy()


def versions() -> dict:
    import fairseq  # noqa: PLC0415
    import hydra  # noqa: PLC0415
    import omegaconf  # noqa: PLC0415
    import torch  # noqa: PLC0415

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "fairseq": fairseq.__version__,
        "omegaconf": omegaconf.__version__,
        "hydra_core": hydra.__version__,
    }


def record_tiny(args, x: np.ndarray) -> None:
    import torch  # noqa: PLC0415

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ssl_aasist_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        shutil.copyfile(pretrain_tiny(work), out / "tiny_xlsr.pt")
    ckpt = inspect_checkpoint(out / "tiny_xlsr.pt")

    ref = load_reference(Path(args.reference))
    arrays = {"feat_pretrained": fairseq_features(out / "tiny_xlsr.pt", x)}
    model = build_model(ref, out / "tiny_xlsr.pt", patch_out_dim=True)
    counts = perturb_norms(model)
    model.eval()
    torch.save(model.state_dict(), out / "tiny_ssl_aasist.pth")
    arrays.update(run_model(model, x))

    again = build_model(ref, out / "tiny_xlsr.pt", patch_out_dim=True, seed=SEED + 1)
    again.load_state_dict(torch.load(out / "tiny_ssl_aasist.pth", weights_only=True))
    again.eval()
    with torch.no_grad():
        reloaded = again(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(reloaded, arrays["logits"])

    np.savez(out / "io.npz", **arrays)
    state = torch.load(out / "tiny_ssl_aasist.pth", weights_only=True)
    gaps = {
        "feat_batch_vs_single": float(np.abs(arrays["feat"] - arrays["feat_single"]).max()),
        "logits_batch_vs_single": float(np.abs(arrays["logits"] - arrays["logits_single"]).max()),
        "logits_48000_batch_vs_single": float(
            np.abs(arrays["logits_48000"] - arrays["logits_48000_single"]).max()
        ),
    }
    config = {
        "reference": "TakHemlata/SSL_Anti-spoofing model.py (Model, SSLModel)",
        "commit": args.commit,
        "fairseq": f"the reference's bundled {FAIRSEQ_DIR}/ (pip install -e, run unchanged)",
        "fairseq_commit": FAIRSEQ_DIR.split("-", 1)[1],
        "python_3_11_shim": "dataclass defaults that are dataclass instances allowed as on Python 3.10",
        "versions": versions(),
        "pretraining": {
            "tool": "fairseq_cli.hydra_train (fairseq-hydra-train), checkpoint_last.pt copied byte for byte",
            "updates": UPDATES,
            "wavs": f"{N_WAVS} seeded 16-bit WAVs (write_corpus, seed {SEED})",
            "config": _train_config(Path("<data>"), Path("<save_dir>")),
        },
        "tiny_xlsr.pt": {k: v for k, v in ckpt.items() if k != "model_keys"},
        "tiny_xlsr_model_keys": ckpt["model_keys"],
        "patch": (
            "SSLModel.out_dim = checkpoint cfg.model.encoder_embed_dim (32) instead of the hard-coded 1024, "
            "set right after the reference SSLModel.__init__ returns; nothing else changed"
        ),
        "cp_path": "the reference's relative 'xlsr2_300m.pt', a symlink to tiny_xlsr.pt in a temporary cwd",
        "seed": {"torch_numpy_random": SEED, "norm_perturbation": PERTURB_SEED},
        "perturbation": (
            "every BatchNorm: running_mean 0.5*N(0,1), running_var 0.5+1.5*U(0,1); every BatchNorm and "
            "LayerNorm (fairseq's too): weight 0.5+U(0,1), bias 0.2*N(0,1); one torch.Generator, "
            "model.modules() order"
        ),
        "norms_perturbed": counts,
        "tiny_ssl_aasist.pth": {
            "format": "torch.save(model.state_dict(), path) as main_SSL_LA.py saves",
            "n_keys": len(state),
            "keys": list(state),
        },
        "input": {
            "file": "../shared/golden/aasist/io.npz",
            "array": "x_padded",
            "shape": list(x.shape),
            "dtype": str(x.dtype),
            "sha256": sha256_array(x),
            "short": f"x_padded[:, :{SHORT}]",
        },
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
        "array_notes": {
            "feat_pretrained": "tiny_xlsr.pt through fairseq load_model_ensemble_and_task, eval, "
            "model(x, mask=False, features_only=True)['x'] (no perturbation)",
            "feat": "Model.ssl_model.extract_feat(x_padded), batch of 4, eval",
            "feat_single": "the same, one row at a time",
            "logits": "Model(x_padded), batch of 4, eval",
            "logits_single": "the same, one row at a time",
            "feat_48000 / logits_48000 / logits_48000_single": "the same on x_padded[:, :48000]",
        },
        "batch_vs_single_max_abs": gaps,
        "sha256": {n: sha256_file(out / n) for n in ("tiny_xlsr.pt", "tiny_ssl_aasist.pth", "io.npz")},
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")


def write_full_checkpoint(tiny: Path, path: Path) -> dict:
    """XLS-R 300M's architecture, random weights, in fairseq's checkpoint format: the tiny checkpoint's dict
    with the model's sizes in ``cfg.model``, the new ``model`` and no optimizer state."""
    import torch  # noqa: PLC0415
    from fairseq import checkpoint_utils, tasks  # noqa: PLC0415
    from omegaconf import open_dict  # noqa: PLC0415

    cfg = checkpoint_utils.load_checkpoint_to_cpu(str(tiny))["cfg"]
    with open_dict(cfg):
        for k, v in XLSR_300M.items():
            cfg.model[k] = v
    torch.manual_seed(SEED)
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    saved = torch.load(tiny, map_location="cpu", weights_only=True)
    saved.pop("last_optimizer_state", None)
    saved["cfg"]["model"].update(XLSR_300M)
    saved["model"] = model.state_dict()
    checkpoint_utils.torch_persistent_save(saved, str(path))
    return {"n_params": sum(p.numel() for p in model.parameters()), "model_cfg": saved["cfg"]["model"]}


def _rss_mb(field: str = "VmHWM") -> float:
    """The process's peak (VmHWM) or current (VmRSS) resident set, MiB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def time_forward(model, x: np.ndarray) -> dict:
    import torch  # noqa: PLC0415

    model.eval()
    t = torch.from_numpy(np.ascontiguousarray(x))
    result = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 4):
            xb = t[:batch]
            _reset_peak_rss()
            before = _rss_mb("VmRSS")
            with torch.no_grad():
                model(xb)  # warm-up
                seconds = []
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    model(xb)
                    seconds.append(time.perf_counter() - start)
            med = statistics.median(seconds)
            result[f"threads{threads}_batch{batch}"] = {
                "seconds": seconds,
                "median_s": med,
                "utterances_per_s": batch / med,
                "rss_before_mb": before,
                "peak_rss_mb": _rss_mb("VmHWM"),
            }
    return result


def record_full(args, x: np.ndarray) -> None:
    import torch  # noqa: PLC0415

    full = Path(args.full)
    full.mkdir(parents=True, exist_ok=True)
    ref = load_reference(Path(args.reference))
    info = write_full_checkpoint(Path(args.out) / "tiny_xlsr.pt", full / "xlsr_300m_random.pt")
    _reset_peak_rss()
    model = build_model(ref, full / "xlsr_300m_random.pt", patch_out_dim=False)
    assert model.ssl_model.out_dim == 1024 and model.LL.in_features == 1024
    perturb_norms(model)
    model.eval()
    torch.save(model.state_dict(), full / "full_ssl_aasist.pth")
    rss_built = _rss_mb()  # the peak of fairseq's checkpoint load and the model build
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    np.savez(full / "full_io.npz", logits=logits)
    record = {
        "commit": args.commit,
        "versions": versions(),
        "n_params_ssl": info["n_params"],
        "n_params_model": sum(p.numel() for p in model.parameters()),
        "model_cfg": info["model_cfg"],
        "input_sha256": sha256_array(x),
        "logits": logits.tolist(),
        "peak_rss_mb_build": rss_built,
        "sha256": {n: sha256_file(full / n) for n in ("full_ssl_aasist.pth", "full_io.npz")},
    }
    (full / "full.json").write_text(json.dumps(record, indent=1) + "\n")
    del model
    time_full(args, x)


def time_full(args, x: np.ndarray) -> None:
    """Rebuild the full-size model from its saved state dict (its logits must come back), then time it."""
    import torch  # noqa: PLC0415

    full = Path(args.full)
    ref = load_reference(Path(args.reference))
    _reset_peak_rss()
    model = build_model(ref, full / "xlsr_300m_random.pt", patch_out_dim=False, seed=SEED + 1)
    model.load_state_dict(torch.load(full / "full_ssl_aasist.pth", weights_only=True))
    model.eval()
    rss_loaded = _rss_mb()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(logits, np.load(full / "full_io.npz")["logits"])
    record = json.loads((full / "full.json").read_text())
    record["timing"] = time_forward(model, x)
    record["timing_meta"] = {
        "cpu_count": os.cpu_count(),
        "load_average_after": os.getloadavg(),
        "peak_rss_mb_load": rss_loaded,
        "note": "median of REPEATS after one warm-up; timing.*.peak_rss_mb: VmHWM reset before each "
        "(threads, batch), the model resident",
    }
    (full / "full.json").write_text(json.dumps(record, indent=1) + "\n")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--hydra-train":  # the child process of pretrain_tiny
        _allow_unhashable_dataclass_defaults()
        from fairseq_cli.hydra_train import cli_main  # noqa: PLC0415

        sys.argv = ["fairseq-hydra-train", *sys.argv[2:]]
        cli_main()
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True, help="a checkout of TakHemlata/SSL_Anti-spoofing")
    p.add_argument("--commit", required=True, help="its git commit")
    p.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "ssl_aasist"))
    p.add_argument("--golden", default=str(GOLDEN_IO), help="the AASIST golden io.npz (x_padded)")
    p.add_argument("--work", help="keep fairseq's pretraining run (corpus, config, log) here")
    p.add_argument("--full", help="also the full-size model (about 2.6 GB of files) into this folder")
    p.add_argument("--full-only", action="store_true", help="skip the tiny fixtures (they must exist)")
    p.add_argument("--time-only", action="store_true", help="only time the full-size model --full holds")
    args = p.parse_args()
    x = np.load(args.golden)["x_padded"]
    assert x.shape == (4, 64600) and x.dtype == np.float32
    if args.time_only:
        time_full(args, x)
        return 0
    if not args.full_only:
        record_tiny(args, x)
    if args.full:
        record_full(args, x)
    return 0


if __name__ == "__main__":
    sys.exit(main())
