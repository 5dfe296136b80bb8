"""VoxCeleb data dirs: data/voxceleb2_dev (training) and data/voxceleb1 (Vox1-O validation trials).

Reads (layouts: sasv/corpora/voxceleb.py, where to get them: docs/VOXCELEB.md):
  --vox1_root  <vox1>/wav/idXXXXX/<youtube id>/<nnnnn>.wav                 16 kHz WAV, used as it is
  --vox2_root  <vox2>/dev/aac/idXXXXX/<youtube id>/<nnnnn>.m4a             AAC, converted once (below)
  --trials     veri_test2.txt: '1|0 <enrol>.wav <test>.wav'                the cleaned Vox1-O list

Writes:
  <out>/voxceleb2_dev/{wav.scp,utt2spk,spk2utt,prepared.json}   every VoxCeleb2 dev utterance
  <out>/voxceleb1/{wav.scp,utt2spk,spk2utt,trials,prepared.json}  every VoxCeleb1 utterance found, and
      trials: 'ENROL_UTT TEST_UTT target|nontarget' per line, sorted (wespeaker's Kaldi trial format)
Utterance ids are idXXXXX/<youtube id>/<nnnnn>, the speaker is their first part; lists are C-sorted.

AAC is converted once to 16 kHz mono 16-bit FLAC under --convert_dir (default <vox2_root>/dev/flac),
decoded in-process by PyAV (pip install av), not on the fly: every later stage reads FLAC with soundfile
(sasv.audio.read_audio) as it reads ASVspoof, a training epoch decodes FLAC about 4x faster than AAC and can
read a random chunk without decoding the whole file, and PyAV converts about 9x faster than one ffmpeg
process per file, without an ffmpeg binary (docs/VOXCELEB.md has the measurements). The conversion runs in
--nj processes, skips files already converted (newer than their .m4a) and writes each atomically, so an
interrupted run resumes where it stopped.

Everything is checked (folders, trial list against the files on disk, speakers of the trials not in the
training set) before anything is converted or written; a re-run with the same inputs converts nothing
and rewrites identical data dirs.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from sasv.audio import SAMPLE_RATE, AudioError
from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.datadir import (
    DataDirError,
    spk2utt_from_utt2spk,
    write_spk2utt,
    write_utt2spk,
    write_wav_scp,
)
from sasv.corpora.protocols import offenders
from sasv.corpora.voxceleb import (
    KEYS,
    VERI_TEST2,
    VOX1_TEST,
    VOX2_DEV,
    VoxCeleb1Layout,
    VoxCeleb2Layout,
    read_veri_trials,
    speaker_of,
)
from sasv.errors import SasvError
from sasv.fileio import atomic_output, atomic_write_text
from sasv.markers import write_prepared_marker
from sasv.progress import progress_bar

log = logging.getLogger("prepare_voxceleb")
TRAIN, VALID = "voxceleb2_dev", "voxceleb1"


class DecoderMissingError(SasvError, RuntimeError):
    """PyAV, the AAC decoder, is not installed."""


# --------------------------------------------------------------------------------------- data dirs


def format_trials(trials: Sequence[tuple[str, str, str]]) -> str:
    """The ``trials`` file: ``ENROL_UTT TEST_UTT target|nontarget`` per line, C-sorted."""
    return "".join(sorted(f"{e} {t} {k}\n" for e, t, k in trials))


# --------------------------------------------------------------------------------------- AAC conversion


def require_decoder() -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        raise DecoderMissingError(
            "PyAV: not installed; VoxCeleb2 is AAC and is converted with it: pip install av "
            "(or pip install -e '.[voxceleb]')"
        ) from None


def decode_aac(path: Path) -> np.ndarray:
    """int16 16 kHz mono samples of an .m4a (any rate or channel count, resampled by libswresample)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            chunks = [
                f.to_ndarray().reshape(-1)
                for frame in container.decode(container.streams.audio[0])
                for f in resampler.resample(frame)
            ]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as e:
        raise AudioError(f"{path}: cannot decode AAC (corrupt or truncated?): {e}") from None
    if not chunks or sum(c.size for c in chunks) == 0:
        raise AudioError(f"{path}: no audio samples")
    return np.concatenate(chunks)


_stop: Any = None  # in a worker: set by the parent when another file failed


def _worker_init(stop: Any) -> None:
    """Ctrl-C is the parent's to handle (one line, then it terminates the pool); termination unwinds,
    so that :func:`atomic_output` removes the temporary file of the conversion in hand."""
    global _stop
    _stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _unwind)


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def convert_file(job: tuple[Path, Path]) -> None:
    """One .m4a to a 16-bit FLAC, renamed into place only when complete (a worker of :func:`convert`)."""
    if _stop is not None and _stop.is_set():
        return
    src, dst = job
    pcm = decode_aac(src)
    with atomic_output(dst) as tmp:
        sf.write(tmp, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def is_converted(src: Path, dst: Path) -> bool:
    """Finished by an earlier run: the FLAC exists (atomic: then it is complete) and is not older."""
    try:
        return dst.stat().st_mtime_ns >= src.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def convert(jobs: Sequence[tuple[Path, Path]], nj: int) -> int:
    """Convert the unfinished files of ``jobs`` in ``nj`` processes; returns how many were converted."""
    todo = [j for j in jobs if not is_converted(*j)]
    log.info(
        "%d of %d VoxCeleb2 files to convert (%d done earlier)", len(todo), len(jobs), len(jobs) - len(todo)
    )
    if not todo:
        return 0
    require_decoder()
    with progress_bar(len(todo), desc="converting AAC to FLAC", unit="file") as bar:
        if nj == 1 or len(todo) == 1:
            for job in todo:
                convert_file(job)
                bar.update(1)
        else:  # spawned, not forked: the parent may hold threads (PyAV's, tqdm's monitor)
            ctx = multiprocessing.get_context("spawn")
            stop = ctx.Event()
            with ctx.Pool(min(nj, len(todo)), _worker_init, (stop,)) as pool:
                try:
                    for _ in pool.imap_unordered(convert_file, todo, chunksize=8):
                        bar.update(1)
                except Exception:
                    # the others finish the file in hand and skip the rest: the first error is the report
                    stop.set()
                    pool.close()
                    pool.join()
                    raise
    return len(todo)


def write_datadir(out: Path, wav_scp: Mapping[str, Path], sources: Sequence[Path], trials: str = "") -> None:
    utt2spk = {u: speaker_of(u) for u in wav_scp}
    write_wav_scp(out / "wav.scp", {u: str(p) for u, p in wav_scp.items()})
    write_utt2spk(out / "utt2spk", utt2spk)
    write_spk2utt(out / "spk2utt", spk2utt_from_utt2spk(utt2spk))
    if trials:
        atomic_write_text(out / "trials", trials)
    write_prepared_marker(out, sources)


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv prepare_voxceleb", description=__doc__)
    p.add_argument("--vox1_root", required=True, help="the VoxCeleb1 folder (holds wav/)")
    p.add_argument("--vox2_root", required=True, help="the VoxCeleb2 folder (holds dev/aac/)")
    p.add_argument("--trials", required=True, help="veri_test2.txt, the cleaned Vox1-O trial list")
    p.add_argument("--out", default="data", help="root of the data dirs (default: data)")
    p.add_argument("--convert_dir", default=None, help="where the FLAC conversions go (<vox2_root>/dev/flac)")
    p.add_argument("--nj", type=int, default=4, help="conversion processes (default: 4)")
    args = p.parse_args(argv)
    if args.nj < 1:
        raise DataDirError(f"--nj {args.nj}: must be at least 1")

    vox1, vox2 = VoxCeleb1Layout(Path(args.vox1_root)), VoxCeleb2Layout(Path(args.vox2_root))
    trials_path = Path(args.trials)
    if not vox1.wav_dirs():
        raise DataDirError(f"{vox1.root / 'wav'}: VoxCeleb1 folder does not exist; {VOX1_TEST.sentence()}")
    if not vox2.aac_dir.is_dir():
        raise DataDirError(f"{vox2.aac_dir}: VoxCeleb2 dev folder does not exist; {VOX2_DEV.sentence()}")
    if not trials_path.is_file():
        raise DataDirError(f"{trials_path}: trial list does not exist; {VERI_TEST2.sentence()}")
    vox1_wav = vox1.scan()
    if not vox1_wav:
        raise DataDirError(
            f"{vox1.wav_dirs()[0]}: no idXXXXX/<video>/<nnnnn>.wav files; {VOX1_TEST.sentence()}"
        )
    trials = read_veri_trials(trials_path, vox1_wav)
    m4a = vox2.scan()
    if not m4a:
        raise DataDirError(f"{vox2.aac_dir}: no idXXXXX/<video>/<nnnnn>.m4a files; {VOX2_DEV.sentence()}")
    trial_spks = {speaker_of(u) for e, t, _ in trials for u in (e, t)}
    leaked = sorted(trial_spks & {speaker_of(u) for u in m4a})
    if leaked:
        raise DataDirError(
            f"{trials_path}: {len(leaked)} trial speakers are also VoxCeleb2 dev (training) speakers: "
            f"{offenders(leaked)}; validation would score speakers the model was trained on"
        )

    convert_dir = Path(args.convert_dir) if args.convert_dir else vox2.default_convert_dir
    flac = {u: convert_dir.resolve() / f"{u}.flac" for u in m4a}
    converted = convert([(m4a[u], flac[u]) for u in sorted(m4a)], args.nj)

    out = Path(args.out)
    write_datadir(out / TRAIN, flac, [])
    write_datadir(out / VALID, vox1_wav, [trials_path], format_trials(trials))
    spk2 = len({speaker_of(u) for u in m4a})
    print(f"{TRAIN}: {spk2} speakers, {len(m4a)} utterances ({converted} converted now) -> {out / TRAIN}")
    counts = {k: sum(1 for *_, key in trials if key == k) for k in KEYS.values()}
    print(
        f"{VALID}: {len({speaker_of(u) for u in vox1_wav})} speakers, {len(vox1_wav)} utterances; trials "
        f"target={counts['target']} nontarget={counts['nontarget']} -> {out / VALID}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
