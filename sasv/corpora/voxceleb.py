"""Where things are in the released VoxCeleb trees, what an utterance is called, and where to get them.

One place for the folder names, id formats, the trial-list reader and the download records, shared by data
preparation (:mod:`sasv.bin.prepare_voxceleb`), the synthetic trees of the tests
(:mod:`sasv.corpora.voxceleb_mini`, which must look exactly like the real ones) and the messages that tell a
user what is missing.

  VoxCeleb1      ``<vox1>/wav/idXXXXX/<youtube id>/<nnnnn>.wav``         16 kHz mono 16-bit WAV
                 (vox1_test_wav.zip and vox1_dev_wav.zip both unpack to ``wav/``; wespeaker's
                 ``<vox1>/{dev,test}/wav/`` is accepted as well)
  VoxCeleb2 dev  ``<vox2>/dev/aac/idXXXXX/<youtube id>/<nnnnn>.m4a``     AAC in MP4 (vox2_dev_aac_parta*)
  Vox1-O         ``veri_test2.txt``, the cleaned list: ``1|0 <enrol>.wav <test>.wav`` with paths relative to
                 ``wav/`` (``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav``)

An utterance id is ``idXXXXX/<youtube id>/<nnnnn>``: the path below ``wav/`` or ``aac/`` without its
extension (wespeaker keeps ``.wav``; dropping it lets one id name the AAC original and its FLAC conversion).
The speaker is the id's first part. Kaldi lists hold these ids unchanged: they contain no whitespace, and
sorting them in C order sorts by speaker first, which keeps ``utt2spk`` and ``spk2utt`` in agreement.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sasv.corpora.datadir import DataDirError
from sasv.corpora.protocols import ProtocolError, offenders, read_lines

SPEAKER = re.compile(r"id\d{5}")
VIDEO = re.compile(r"[A-Za-z0-9_-]+")  # YouTube ids: 11 of these characters
NUMBER = re.compile(r"\d{5}")
UTT = re.compile(r"id\d{5}/[A-Za-z0-9_-]+/\d{5}")
VOX2_SUBSET = "dev"  # the training part; VoxCeleb2 test is not used


def speaker_of(utt: str) -> str:
    """The speaker of an utterance id (its first part)."""
    return utt.split("/", 1)[0]


def scan_tree(top: Path, ext: str) -> dict[str, Path]:
    """utt -> file for every ``<top>/idXXXXX/<video>/<nnnnn><ext>``.

    Three levels of ``os.scandir`` and no ``stat`` per file: VoxCeleb2 dev has 1,092,009 files. Names that
    do not fit the layout (``.DS_Store``, a half-written ``.tmp``) are not utterances and are passed over.
    """
    out: dict[str, Path] = {}
    top = top.resolve()  # absolute paths for wav.scp without one resolve() per file
    with os.scandir(top) as speakers:
        spk_dirs = [e for e in speakers if SPEAKER.fullmatch(e.name) and e.is_dir()]
    for spk in spk_dirs:
        with os.scandir(spk.path) as videos:
            video_dirs = [e for e in videos if VIDEO.fullmatch(e.name) and e.is_dir()]
        for video in video_dirs:
            with os.scandir(video.path) as files:
                for f in files:
                    stem, dot, suffix = f.name.rpartition(".")
                    if dot and f".{suffix}" == ext and NUMBER.fullmatch(stem):
                        out[f"{spk.name}/{video.name}/{stem}"] = Path(f.path)
    return out


@dataclass(frozen=True)
class VoxCeleb1Layout:
    """The VoxCeleb1 folder (the one holding ``wav/``)."""

    root: Path

    def wav_dirs(self) -> list[Path]:
        """``wav/``, or wespeaker's ``dev/wav`` and ``test/wav``: the ones that exist."""
        candidates = [self.root / "wav", self.root / "dev" / "wav", self.root / "test" / "wav"]
        return [d for d in candidates if d.is_dir()]

    def scan(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for d in self.wav_dirs():
            out.update(scan_tree(d, ".wav"))
        return out

    def wav_path(self, utt: str) -> Path:
        """Where an utterance goes in a tree made here (the single ``wav/`` of the released zips)."""
        return self.root / "wav" / f"{utt}.wav"


@dataclass(frozen=True)
class VoxCeleb2Layout:
    """The VoxCeleb2 folder (the one holding ``dev/aac/``)."""

    root: Path

    @property
    def aac_dir(self) -> Path:
        return self.root / VOX2_SUBSET / "aac"

    @property
    def default_convert_dir(self) -> Path:
        """Where the 16 kHz FLAC conversions go unless told otherwise: beside ``aac/``, on the corpus disk."""
        return self.root / VOX2_SUBSET / "flac"

    def scan(self) -> dict[str, Path]:
        return scan_tree(self.aac_dir, ".m4a")

    def m4a_path(self, utt: str) -> Path:
        return self.aac_dir / f"{utt}.m4a"


def trial_utt(field: str) -> str | None:
    """The utterance id of a trial-list path (``id10270/x6uYqmx31kE/00001.wav``), None if it is not one."""
    if not field.endswith(".wav"):
        return None
    utt = field[: -len(".wav")]
    return utt if UTT.fullmatch(utt) else None


# ----------------------------------------------------------------------------------------- trial list

KEYS = {"1": "target", "0": "nontarget"}  # veri_test2.txt's labels


def read_veri_trials(path: Path, on_disk: Mapping[str, Path]) -> list[tuple[str, str, str]]:
    """(enrol utt, test utt, target|nontarget) of a Vox1-O style list, each line checked: three fields, a
    label 1|0 that agrees with the speakers, paths in the VoxCeleb layout, both utterances on disk."""
    try:
        lines = read_lines(path)
    except ProtocolError as e:
        raise DataDirError(str(e)) from None
    trials: list[tuple[str, str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    absent: list[tuple[int, str]] = []
    for n, line in lines:
        fields = line.split()
        if len(fields) != 3 or fields[0] not in KEYS:
            raise DataDirError(f"{path}:{n}: expected '1|0 idXXXXX/<video>/<nnnnn>.wav ...', got {line!r}")
        enrol, test = trial_utt(fields[1]), trial_utt(fields[2])
        if enrol is None or test is None:
            bad = fields[1] if enrol is None else fields[2]
            raise DataDirError(f"{path}:{n}: {bad!r} is not a VoxCeleb1 path 'idXXXXX/<video>/<nnnnn>.wav'")
        key = KEYS[fields[0]]
        if (key == "target") != (speaker_of(enrol) == speaker_of(test)):
            raise DataDirError(f"{path}:{n}: label {fields[0]} ({key}) contradicts the speakers of {line!r}")
        if (enrol, test) in seen:
            raise DataDirError(f"{path}:{n}: the trial of line {seen[enrol, test]} again")
        seen[enrol, test] = n
        absent += [(n, f) for u, f in ((enrol, fields[1]), (test, fields[2])) if u not in on_disk]
        trials.append((enrol, test, key))
    if absent:
        n, name = absent[0]
        raise DataDirError(
            f"{path}:{n}: {name} is not on disk under the VoxCeleb1 wav/ folder ({len(absent)} missing in "
            f"all: {offenders([f'line {k}: {f}' for k, f in absent])}); {VOX1_TEST.sentence()}"
        )
    if not trials:
        raise DataDirError(f"{path}: no trials")
    return trials


# ----------------------------------------------------------------------------------------- downloads
# As published by VGG (https://www.robots.ox.ac.uk/~vgg/data/voxceleb/) and used unchanged by wespeaker's
# examples/voxceleb/v2/local/download_data.sh and clovaai/voxceleb_trainer's lists/fileparts.txt. VGG
# publishes md5 only, so md5 is what can be checked. The archive host has at times required registration
# (the VoxCeleb page's request form); the names and checksums identify the files whatever the mirror.

VOX_BASE = "https://thor.robots.ox.ac.uk/~vgg/data/voxceleb/vox1a/"
META_BASE = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/"


@dataclass(frozen=True)
class Download:
    """One archive: its parts (``cat`` them in order), the md5 of each and of the whole, where it goes."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (url, published md5)
    md5: str  # of the whole file (the concatenation, for multi-part archives)
    unpack: str  # what to do with it
    needed_for: str

    def sentence(self) -> str:
        """One line telling a user how to get it."""
        if len(self.parts) == 1:
            how = f"get {self.parts[0][0]} (md5 {self.md5})"
        else:
            first, last = self.parts[0][0], self.parts[-1][0].rsplit("/", 1)[1]
            how = f"get {first} ... {last}, cat them into {self.name} (md5 {self.md5})"
        return f"{how} and {self.unpack}"


VOX1_TEST = Download(
    "vox1_test_wav.zip",
    ((VOX_BASE + "vox1_test_wav.zip", "185fdc63c3c739954633d50379a3d102"),),
    "185fdc63c3c739954633d50379a3d102",
    "unzip it in --vox1_root (it unpacks to wav/id10270/...)",
    "the Vox1-O trial utterances (all that validation needs)",
)
VOX1_DEV = Download(
    "vox1_dev_wav.zip",
    tuple(
        (VOX_BASE + f"vox1_dev_wav_parta{p}", md5)
        for p, md5 in zip(
            "abcd",
            (
                "e395d020928bc15670b570a21695ed96",
                "bbfaaccefab65d82b21903e81a8a8020",
                "017d579a2a96a077f40042ec33e51512",
                "7bb1e9f70fddc7a678fa998ea8b3ba19",
            ),
            strict=True,
        )
    ),
    "ae63e55b951748cc486645f532ba230b",
    "unzip it in --vox1_root (it unpacks to wav/, beside the test speakers)",
    "optional: the other 1,211 VoxCeleb1 speakers (Vox1-E/H trials, cohorts)",
)
VOX2_DEV = Download(
    "vox2_aac.zip",
    tuple(
        (VOX_BASE + f"vox2_dev_aac_parta{p}", md5)
        for p, md5 in zip(
            "abcdefgh",
            (
                "da070494c573e5c0564b1d11c3b20577",
                "17fe6dab2b32b48abaf1676429cdd06f",
                "1de58e086c5edf63625af1cb6d831528",
                "5a043eb03e15c5a918ee6a52aad477f9",
                "cea401b624983e2d0b2a87fb5d59aa60",
                "fc886d9ba90ab88e7880ee98effd6ae9",
                "d160ecc3f6ee3eed54d55349531cb42e",
                "6b84a81b9af72a9d9eecbb3b1f602e65",
            ),
            strict=True,
        )
    ),
    "bbc063c46078a602ca71605645c2a402",
    "unzip it in --vox2_root (it unpacks to dev/aac/id00012/...)",
    "training: 5,994 speakers, 1,092,009 utterances",
)
VERI_TEST2 = Download(
    "veri_test2.txt",
    ((META_BASE + "veri_test2.txt", "b73110731c9223c1461fe49cb48dddfc"),),
    "b73110731c9223c1461fe49cb48dddfc",
    "pass it as --trials",
    "validation: Vox1-O (cleaned), 37,611 trials",
)
DOWNLOADS = (VOX1_TEST, VOX1_DEV, VOX2_DEV, VERI_TEST2)
