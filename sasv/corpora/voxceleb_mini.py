"""A tiny synthetic VoxCeleb1 + VoxCeleb2-dev tree in exactly the released layouts, for tests.

VoxCeleb1 is 16 kHz 16-bit WAV under ``voxceleb1/wav/``; VoxCeleb2 dev is real AAC in MP4 (``.m4a``) under
``voxceleb2/dev/aac/``, encoded with PyAV's bundled FFmpeg, the same library the preparation decodes it
with: the whole preparation, conversion included, runs in tests with pip-installable tools and no
ffmpeg binary. ``veri_test2.txt`` pairs VoxCeleb1 utterances the way Vox1-O does (label, enrolment path,
test path; about half of them targets, a target's two utterances taken from different videos where there
are several).

Speaker ids come from the real ranges (VoxCeleb1 test id10270-id10309, VoxCeleb2 id00012-id09272), so the
two sets are disjoint as in the real corpora; each speaker is a :mod:`sasv.corpora.synthvoice` voice and each
video adds its own channel (a gain and a one-pole colouring), so that videos of one speaker differ. Everything
is drawn from one seed: the same arguments give byte-identical files with the same PyAV version.
"""

from __future__ import annotations

import json
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from sasv.audio import SAMPLE_RATE
from sasv.corpora.synthvoice import draw_voice, synthesize
from sasv.corpora.voxceleb import VoxCeleb1Layout, VoxCeleb2Layout
from sasv.errors import SasvError
from sasv.fileio import atomic_output, atomic_write_text

MARKER = ".mini_voxceleb.json"
PEAK = 0.5
AAC_BIT_RATE = 64000
_VIDEO_CHARS = string.ascii_letters + string.digits + "-_"


class MiniVoxCelebError(SasvError, ValueError):
    """Bad arguments, or an output folder that is not ours to overwrite."""


@dataclass(frozen=True)
class MiniVoxCeleb:
    """What :func:`make_mini_voxceleb` wrote: the two roots and the trial list, and the ids per corpus."""

    vox1_root: Path
    vox2_root: Path
    trials: Path
    vox1_utts: tuple[str, ...]
    vox2_utts: tuple[str, ...]


def write_m4a(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Encode int16 mono samples as AAC in an MP4 container (what VoxCeleb2 ships), atomically."""
    import av  # optional dependency: only VoxCeleb needs it

    # "ipod" is FFmpeg's .m4a muxer
    with atomic_output(path) as tmp, av.open(str(tmp), "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        stream.bit_rate = AAC_BIT_RATE
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _ids(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[str]:
    return [f"id{x:05d}" for x in sorted(rng.choice(np.arange(lo, hi + 1), size=n, replace=False))]


def _plan(
    rng: np.random.Generator, speakers: list[str], videos: int, utts: int
) -> dict[str, list[tuple[str, int]]]:
    """speaker -> (video id, number of utterances) per video; YouTube ids are 11 characters."""
    plan: dict[str, list[tuple[str, int]]] = {}
    for spk in speakers:
        plan[spk] = [("".join(rng.choice(list(_VIDEO_CHARS), size=11)), utts) for _ in range(videos)]
    return plan


def _render(
    rng: np.random.Generator, plan: dict[str, list[tuple[str, int]]], seconds: tuple[float, float]
) -> dict[str, np.ndarray]:
    """utt -> int16 samples: the speaker's voice through the video's channel."""
    out: dict[str, np.ndarray] = {}
    for i, (spk, videos) in enumerate(plan.items()):
        voice = draw_voice(rng, ("female", "male")[i % 2])
        for video, count in videos:
            gain, pole = rng.uniform(0.5, 1.0), rng.uniform(-0.5, 0.5)
            for k in range(1, count + 1):
                n = int(round(rng.uniform(*seconds) * SAMPLE_RATE))
                wav = lfilter([1.0 - abs(pole)], [1.0, -pole], synthesize(voice, n, rng))
                wav = wav * gain * PEAK * 32767 / np.max(np.abs(wav))
                out[f"{spk}/{video}/{k:05d}"] = np.round(wav).astype(np.int16)
    return out


def _trials(rng: np.random.Generator, utts: list[str]) -> list[tuple[int, str, str]]:
    """Per utterance as enrolment: one target (another video of the speaker if there is one) and one
    nontarget (another speaker), in the order drawn, as veri_test2.txt lists them unsorted."""
    out: list[tuple[int, str, str]] = []
    for enrol in utts:
        spk, video = enrol.split("/")[:2]
        same = [u for u in utts if u.startswith(f"{spk}/") and u != enrol]
        other_video = [u for u in same if u.split("/")[1] != video]
        targets = other_video or same
        others = [u for u in utts if not u.startswith(f"{spk}/")]
        if targets:
            out.append((1, enrol, str(targets[rng.integers(len(targets))])))
        out.append((0, enrol, str(others[rng.integers(len(others))])))
    return out


def make_mini_voxceleb(
    root: str | Path,
    seed: int = 0,
    speakers: int = 3,
    videos: int = 2,
    utts: int = 2,
    seconds: tuple[float, float] = (1.0, 2.5),
) -> MiniVoxCeleb:
    """Write ``root/voxceleb1/wav/...``, ``root/voxceleb2/dev/aac/...`` and ``root/veri_test2.txt``.

    ``speakers`` per corpus, ``videos`` per speaker, ``utts`` per video, each lasting ``seconds`` (real
    VoxCeleb utterances last 4 s or more; short ones keep tests fast). A ``root`` made earlier by this
    function is replaced; any other existing ``voxceleb1``/``voxceleb2`` folder there is refused.
    """
    if speakers < 2 or videos < 1 or utts < 1:
        raise MiniVoxCelebError("need speakers >= 2 (for nontarget trials), videos >= 1 and utts >= 1")
    if not 0.1 <= seconds[0] <= seconds[1]:
        raise MiniVoxCelebError(f"seconds must be (shortest, longest) with 0.1 <= shortest, got {seconds}")
    root = Path(root)
    vox1, vox2 = VoxCeleb1Layout(root / "voxceleb1"), VoxCeleb2Layout(root / "voxceleb2")
    trials_path = root / "veri_test2.txt"
    ours = (root / MARKER).is_file()
    for folder in (vox1.root, vox2.root):
        if folder.exists():
            if not ours:
                raise MiniVoxCelebError(f"{folder} exists and is not a mini VoxCeleb (no {root / MARKER})")
            shutil.rmtree(folder)

    rng = np.random.default_rng(seed)
    plan1 = _plan(rng, _ids(rng, speakers, 10270, 10309), videos, utts)
    plan2 = _plan(rng, _ids(rng, speakers, 12, 9272), videos, utts)
    audio1, audio2 = _render(rng, plan1, seconds), _render(rng, plan2, seconds)
    for utt, pcm in audio1.items():
        with atomic_output(vox1.wav_path(utt)) as tmp:
            sf.write(tmp, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    for utt, pcm in audio2.items():
        write_m4a(vox2.m4a_path(utt), pcm)
    rows = [f"{label} {e}.wav {t}.wav" for label, e, t in _trials(rng, list(audio1))]
    atomic_write_text(trials_path, "".join(r + "\n" for r in rows))
    record = {"generator": "sasv.corpora.voxceleb_mini (synthetic: not VoxCeleb data)", "seed": seed,
              "speakers": speakers, "videos": videos, "utts": utts, "seconds": list(seconds)}  # fmt: skip
    atomic_write_text(root / MARKER, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return MiniVoxCeleb(vox1.root, vox2.root, trials_path, tuple(audio1), tuple(audio2))
