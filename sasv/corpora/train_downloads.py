"""Where the training corpora come from and where they go: VoxCeleb, MUSAN and RIRS_NOISES.

One place for the URLs and published checksums that ``local/download_train_corpora.sh`` (stage 0 of
``run_train_asv.sh``) downloads, verifies and unpacks. The VoxCeleb records are those of
:mod:`sasv.corpora.voxceleb` (``Download``); MUSAN and RIRS_NOISES are recorded here with the same type.
Torch-free: the shell script asks ``sasv training_downloads [corpus ...]`` for them.

Checksums (md5 is what the hosts publish, so md5 is what is checked):
  musan.tar.gz     OpenSLR SLR17 (https://www.openslr.org/17/), 11,086,114,085 bytes, md5
                   0c472d4fc0c5141eca47ad1ffeb2a7df, as pinned by wespeaker
                   examples/voxceleb/v2/local/download_data.sh, 3D-Speaker, PaddleSpeech and others (OpenSLR
                   lists its md5 in resources/17/checksum.md5).
  rirs_noises.zip  OpenSLR SLR28 (https://www.openslr.org/28/), 1,311,166,223 bytes, md5
                   e6f48e257286e05de56413b4779d8ffb, OpenSLR's resources/28/checksum.md5, pinned by the same
                   recipes.
The mirrors (openslr.elda.org, us.openslr.org, openslr.trmal.net) serve the same files under the same
``resources/<n>/`` paths: point MUSAN_BASE_URL / RIRS_BASE_URL at one of them.

Where each archive goes, under the script's ``<corpora_dir>`` (what ``sasv prepare_voxceleb`` and
``sasv prepare_augmentation`` read with run_train_asv.sh's default roots):
  VoxCeleb1/wav/idXXXXX/...        vox1_test_wav.zip (and the optional vox1_dev_wav.zip)
  VoxCeleb1/veri_test2.txt         the Vox1-O trial list (copied, not unpacked)
  VoxCeleb2/dev/aac/idXXXXX/...    vox2_aac.zip (the concatenation of vox2_dev_aac_parta{a..h})
  musan/{music,noise,speech}/      musan.tar.gz
  RIRS_NOISES/simulated_rirs/      rirs_noises.zip
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from sasv.corpora.musan_rirs import MUSAN_LISTS, ROOMS
from sasv.corpora.voxceleb import VERI_TEST2, VOX1_DEV, VOX1_TEST, VOX2_DEV, Download, VoxCeleb2Layout
from sasv.errors import SasvError

OPENSLR = "https://www.openslr.org/resources/"


class ManifestError(SasvError, ValueError):
    """A manifest that cannot be written: an unknown corpus, or a URL the script could not use."""


MUSAN = Download(
    "musan.tar.gz",
    ((OPENSLR + "17/musan.tar.gz", "0c472d4fc0c5141eca47ad1ffeb2a7df"),),
    "0c472d4fc0c5141eca47ad1ffeb2a7df",
    "tar xzf it in the folder above --musan_root (it unpacks to musan/{music,noise,speech})",
    "training augmentation: noise, music and babble (about 11 GB)",
)
RIRS = Download(
    "rirs_noises.zip",
    ((OPENSLR + "28/rirs_noises.zip", "e6f48e257286e05de56413b4779d8ffb"),),
    "e6f48e257286e05de56413b4779d8ffb",
    "unzip it in the folder above --rirs_root (it unpacks to RIRS_NOISES/simulated_rirs/...)",
    "training augmentation: simulated room impulse responses (about 1.3 GB)",
)

VOXCELEB_NOTE = (
    "the VoxCeleb host has at times asked for registration: request access on "
    "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/ (or use a mirror: VOXCELEB_BASE_URL)"
)


@dataclass(frozen=True)
class Placed:
    """A download and where it ends up under ``<corpora_dir>``."""

    download: Download
    into: str  # the folder under <corpora_dir> it is unpacked (or, for a plain file, copied) into
    probes: tuple[str, ...]  # paths under <corpora_dir> that all exist once it is in place

    @property
    def kind(self) -> str:
        """``zip``, ``tar.gz`` or ``file`` (copied as it is): from the archive's name."""
        name = self.download.name
        if name.endswith(".zip"):
            return "zip"
        if name.endswith((".tar.gz", ".tgz")):
            return "tar.gz"
        return "file"


def _vox(root: str, *parts: str) -> str:
    return Path(root, *parts).as_posix()


CORPORA: dict[str, tuple[Placed, ...]] = {
    "voxceleb": (
        # id10270: the first Vox1-O test speaker (its folder says the test zip is unpacked, whatever dev adds)
        Placed(VOX1_TEST, "VoxCeleb1", (_vox("VoxCeleb1", "wav", "id10270"),)),
        Placed(VERI_TEST2, "VoxCeleb1", (_vox("VoxCeleb1", VERI_TEST2.name),)),
        Placed(VOX2_DEV, "VoxCeleb2", (VoxCeleb2Layout(Path("VoxCeleb2")).aac_dir.as_posix(),)),
    ),
    # optional, not downloaded unless named: the other 1,211 VoxCeleb1 speakers (id10001 is the first)
    "vox1_dev": (Placed(VOX1_DEV, "VoxCeleb1", (_vox("VoxCeleb1", "wav", "id10001"),)),),
    "musan": (Placed(MUSAN, ".", tuple(f"musan/{d}" for d in MUSAN_LISTS)),),
    "rirs": (Placed(RIRS, ".", tuple(f"RIRS_NOISES/simulated_rirs/{r}" for r in ROOMS)),),
}
DEFAULT_CORPORA = ("voxceleb", "musan", "rirs")
NOTES = {"voxceleb": VOXCELEB_NOTE, "vox1_dev": VOXCELEB_NOTE}
# environment variables naming a folder that holds a corpus's files by name (a mirror, a file:// folder)
BASE_URL_VARS = {
    "voxceleb": "VOXCELEB_BASE_URL",
    "vox1_dev": "VOXCELEB_BASE_URL",
    "musan": "MUSAN_BASE_URL",
    "rirs": "RIRS_BASE_URL",
}
ALL_BASE_URL_VAR = "SASV_DOWNLOAD_BASE_URL"


def file_name(url: str) -> str:
    """The file name a URL downloads to (its path's last part, without the query)."""
    name = PurePosixPath(urlsplit(url).path).name
    if not name:
        raise ManifestError(f"{url}: no file name in the URL")
    return name


def base_url(corpus: str, env: Mapping[str, str]) -> str | None:
    """The mirror folder the environment names for ``corpus`` (its own variable first), or None."""
    return env.get(BASE_URL_VARS[corpus]) or env.get(ALL_BASE_URL_VAR) or None


def manifest_row(corpus: str, placed: Placed, base: str | None = None) -> str:
    """One tab-separated line for the script: corpus, archive name, kind, whole md5 ('-': none published),
    folder it goes into, probes (space separated), note ('-': none), then file, url, md5 of every part."""
    d = placed.download
    fields = [
        corpus,
        d.name,
        placed.kind,
        d.md5 or "-",
        placed.into,
        " ".join(placed.probes),
        NOTES.get(corpus, "-"),
    ]
    for url, md5 in d.parts:
        name = file_name(url)
        fields += [name, f"{base.rstrip('/')}/{name}" if base else url, md5 or "-"]
    bad = [f for f in fields if not f or "\t" in f or "\n" in f]
    if bad:
        raise ManifestError(f"{d.name}: a field is empty or holds a tab or newline: {bad!r}")
    return "\t".join(fields)


def manifest(corpora: Sequence[str] = DEFAULT_CORPORA, env: Mapping[str, str] | None = None) -> list[str]:
    """The script's lines for the named corpora, in order, with the environment's mirror URLs applied."""
    env = os.environ if env is None else env
    unknown = [c for c in corpora if c not in CORPORA]
    if unknown:
        raise ManifestError(f"unknown corpus {unknown[0]!r}; known: {' '.join(CORPORA)}")
    seen: set[str] = set()
    rows = []
    for corpus in dict.fromkeys(corpora):
        for placed in CORPORA[corpus]:
            if placed.download.name not in seen:
                seen.add(placed.download.name)
                rows.append(manifest_row(corpus, placed, base_url(corpus, env)))
    return rows
