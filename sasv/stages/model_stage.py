"""The model stages of run_spk_ebd_extract.sh: stage 2 (ASV embeddings) and stage 3 (CM scores).

Both are one procedure with the conf's kind as parameter: load the conf's model, resolve how it runs
(:class:`~sasv.extraction.engines.EngineOptions`, :class:`~sasv.jobs.local.JobOptions`), write the model's
record, and for every data dir run the chunked driver under the output dir's lock. They differ only in which
utterances they process (:func:`stage_items`): every utterance of ``wav.scp`` for embeddings (enrolment and
test), the test utterances of ``trials`` for CM scores, and every utterance of a CM data dir (``utt2spf``, no
trials: ASVspoof 2021's eval sets, ``cm_<set>``) for CM scores too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sasv.corpora.datadir import is_cm_datadir, read_wav_scp, validate_cm_datadir, validate_datadir
from sasv.exp_layout import ExpLayout
from sasv.extraction.chunks import DEFAULT_CHUNK_SIZE, Item
from sasv.extraction.engines import (
    EngineOptions,
    EngineSpec,
)
from sasv.jobs.local import JobOptions, default_num_workers, job_devices
from sasv.locking import exclusive_lock
from sasv.markers import check_prepared_marker, stage_inputs
from sasv.models.conf import ConfError, load_conf
from sasv.provenance import RANDOM_INIT_NOTE, check_model_name_owner, write_model_record
from sasv.runtime.devices import check_device_spelling, resolve_device
from sasv.stages.driver import run_chunked

log = logging.getLogger(__name__)

KIND_WORDS = {"asv": ("ASV", "embedding", "embeddings"), "cm": ("CM", "scoring", "CM scores")}


def stage_items(kind: str, data_dir: Path) -> tuple[list[Item], dict[str, Path]]:
    """The (utt, path) items a stage processes in ``data_dir``, and the lists they come from (for the
    completion marker): all of wav.scp for embeddings, the trials' test utterances for CM scores (all of a
    CM data dir's wav.scp, whose lists are checked first)."""
    check_prepared_marker(data_dir)
    wav_scp = data_dir / "wav.scp"
    if kind == "asv":
        return sorted(read_wav_scp(wav_scp).items()), {"wav.scp": wav_scp}
    if is_cm_datadir(data_dir):
        return sorted(validate_cm_datadir(data_dir).wav_scp.items()), {"wav.scp": wav_scp}
    data = validate_datadir(data_dir)
    test_utts = sorted({t.utt for t in data.trials})
    return [(u, data.wav_scp[u]) for u in test_utts], {"wav.scp": wav_scp, "trials": data_dir / "trials"}


def run_model_stage(
    kind: str,
    conf_path: str | Path,
    data_dirs: Sequence[str | Path],
    exp_dir: str | Path = "exp",
    options: EngineOptions | None = None,
    nj: int = 1,
    num_workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    allow_random_init: bool = False,
    cmd: str = "",
) -> None:
    """Stage 2 (``kind='asv'``) or stage 3 (``kind='cm'``) over ``data_dirs``; see the module doc.

    ``options`` say how the model runs (defaults: :class:`EngineOptions`); ``nj`` jobs share the work, each
    with ``options.threads`` intra-op threads (None: the cores divided among them); ``num_workers`` decoding
    workers per job (None: :func:`~sasv.jobs.local.default_num_workers`). ``cmd``: a Kaldi-style job command
    the jobs run through (tasks of a Slurm job array, ...; :mod:`sasv.jobs.submitted`); '' spawns them here.
    With ``cmd`` this process (often a login node without a GPU) only checks the device's spelling: each
    task resolves the device and its decoding workers on the machine it runs on.
    """
    options = options or EngineOptions()
    conf = load_conf(conf_path)
    if conf.kind != kind:
        raise ConfError(f"{conf_path}: a {conf.kind} conf, expected a {KIND_WORDS[kind][0]} model conf")
    if cmd:  # the tasks resolve the device (and their decoding workers) where they run, e.g. on GPU nodes
        check_device_spelling(options.device)
        device = None
    else:
        device = resolve_device(options.device)
    spec = EngineSpec(conf, allow_random_init, options)
    loaded = spec.load()
    if not loaded.pretrained:
        log.warning("%s: %s", conf.name, RANDOM_INIT_NOTE)
    layout = ExpLayout(exp_dir)
    check_model_name_owner(layout.model_record(conf.name, kind), conf)
    write_model_record(loaded, layout.model_record(conf.name, kind))
    key = spec.output_key(loaded)
    checkpoint_sha256 = loaded.checkpoint_sha256
    jobs = JobOptions(nj, job_devices(device, nj) if device else (), options.threads, cmd or None)
    if device is not None and num_workers is None:
        num_workers = default_num_workers(device, nj)
    where = str(device) if device else f"the device each task resolves (--device {options.device})"
    workers = "auto" if num_workers is None else str(num_workers)
    if nj > 1 or cmd:  # each job builds its own model; this process only needs the key and the record
        engine = spec
        del loaded
    else:
        engine = spec.build(device, loaded=loaded)
    _, verb, what = KIND_WORDS[kind]
    for data_dir in map(Path, data_dirs):
        items, lists = stage_items(kind, data_dir)
        inputs = stage_inputs(conf, checkpoint_sha256, lists)
        log.info(
            "%s: %s %d utterances of %s on %s (--nj %d, %s decoding worker(s) per job)",
            conf.name, verb, len(items), data_dir, where, nj, workers,
        )  # fmt: skip
        out = layout.stage_output(conf.name, kind, data_dir.name)
        with exclusive_lock(out.dir, what):
            run_chunked(
                engine,
                items,
                out,
                key,
                num_workers=num_workers,
                chunk_size=chunk_size,
                inputs=inputs,
                jobs=jobs,
            )
