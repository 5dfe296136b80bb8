"""Stage 0 of run_train_asv.sh offline: tiny archives in the real layouts, served as file:// URLs."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from sasv.corpora.musan_rirs import augmentation_lists as build_augmentation_lists
from sasv.corpora.train_downloads import CORPORA, DEFAULT_CORPORA, MUSAN, RIRS, manifest, manifest_row
from sasv.corpora.voxceleb import VOX2_DEV, Download, VoxCeleb1Layout, VoxCeleb2Layout

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "local" / "download_train_corpora.sh"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("curl", "unzip", "tar", "gzip", "md5sum", "sha256sum")),
    reason="download_train_corpora.sh needs curl, unzip, tar, gzip, md5sum and sha256sum",
)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def tarred(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


WAV = b"RIFF....WAVEfmt "  # contents do not matter: nothing is decoded
FAKE = {  # archive name -> its bytes, each in the layout of the real one
    "vox1_test_wav.zip": zipped(
        {"wav/id10270/x6uYqmx31kE/00001.wav": WAV, "wav/id10271/1gtz-CUIygI/00001.wav": WAV}
    ),
    "veri_test2.txt": b"0 id10270/x6uYqmx31kE/00001.wav id10271/1gtz-CUIygI/00001.wav\n",
    "vox2_aac.zip": zipped({f"dev/aac/id0001{i}/abcdefghijk/0000{i}.m4a": bytes(300 + i) for i in range(4)}),
    "musan.tar.gz": tarred({f"musan/{d}/src/{d}-0001.wav": WAV for d in ("music", "noise", "speech")}),
    "rirs_noises.zip": zipped(
        {
            f"RIRS_NOISES/simulated_rirs/{r}/Room001/Room001-00001.wav": WAV
            for r in ("smallroom", "mediumroom", "largeroom")
        }
        | {"RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_rir_largeroom1_near_angla.wav": WAV}
    ),
}


def serve(src: Path) -> dict[str, Download]:
    """Write the fake files into ``src`` (the two-part VoxCeleb2 archive as two parts) and return records like
    the real ones with file:// URLs and the fakes' md5."""
    src.mkdir(parents=True, exist_ok=True)
    records = {}
    for placed in (p for ps in CORPORA.values() for p in ps):
        real = placed.download
        if real.name not in FAKE:
            continue
        data = FAKE[real.name]
        if real is VOX2_DEV:  # split in two, named as the real parts
            chunks = [data[: len(data) // 2], data[len(data) // 2 :]]
            names = [Path(url).name for url, _ in real.parts[:2]]
        else:
            chunks, names = [data], [Path(real.parts[0][0]).name]
        for name, chunk in zip(names, chunks, strict=True):
            (src / name).write_bytes(chunk)
        parts = tuple((f"file://{src / n}", md5(c)) for n, c in zip(names, chunks, strict=True))
        records[real.name] = dataclasses.replace(real, parts=parts, md5=md5(data))
    return records


def write_manifest(path: Path, records: dict[str, Download], corpora=DEFAULT_CORPORA) -> Path:
    rows = [
        manifest_row(corpus, dataclasses.replace(placed, download=records[placed.download.name]))
        for corpus in corpora
        for placed in CORPORA[corpus]
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def _env(extra: dict[str, str]) -> dict[str, str]:
    """This venv, one thread, a short connect timeout (unreachable URLs fail fast), then ``extra``."""
    venv = str(Path(sys.executable).parents[1])
    return {**os.environ, "OMP_NUM_THREADS": "1", "SASV_VENV": venv, "CONNECT_TIMEOUT": "3", **extra}


def run(download_dir: Path, corpora_dir: Path, *corpora: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(download_dir), str(corpora_dir), *corpora],
        capture_output=True,
        text=True,
        env=_env(env),
        timeout=120,
    )


def errors(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("ERROR")]


def test_manifest_is_the_recorded_urls_and_checksums():
    rows = [r.split("\t") for r in manifest(env={})]
    assert [r[1] for r in rows] == ["vox1_test_wav.zip", "veri_test2.txt", "vox2_aac.zip", "musan.tar.gz",
                                    "rirs_noises.zip"]  # fmt: skip
    musan = next(r for r in rows if r[0] == "musan")
    assert musan[2:5] == ["tar.gz", "0c472d4fc0c5141eca47ad1ffeb2a7df", "."] and MUSAN.md5 == musan[3]
    assert musan[7:] == ["musan.tar.gz", "https://www.openslr.org/resources/17/musan.tar.gz", MUSAN.md5]
    rirs = next(r for r in rows if r[0] == "rirs")
    assert rirs[3] == RIRS.md5 == "e6f48e257286e05de56413b4779d8ffb"
    vox2 = next(r for r in rows if r[1] == "vox2_aac.zip")
    assert len(vox2) == 7 + 3 * 8 and vox2[7:10] == ["vox2_dev_aac_partaa", *VOX2_DEV.parts[0]]
    # a mirror: every file by its name under the corpus's (or the common) base URL
    env = {"SASV_DOWNLOAD_BASE_URL": "file:///m/", "MUSAN_BASE_URL": "https://openslr.elda.org/resources/17"}
    mirrored = {r.split("\t")[1]: r.split("\t") for r in manifest(["musan", "rirs"], env=env)}
    assert mirrored["musan.tar.gz"][8] == "https://openslr.elda.org/resources/17/musan.tar.gz"
    assert mirrored["rirs_noises.zip"][8] == "file:///m/rirs_noises.zip"
    with pytest.raises(ValueError, match="unknown corpus 'vox3'"):
        manifest(["vox3"], env={})


def test_download_verify_unpack_and_rerun_skips(tmp_path):
    records = serve(tmp_path / "src")
    mf = write_manifest(tmp_path / "manifest.tsv", records)
    dl, corpora = tmp_path / "dl", tmp_path / "corpora"
    # an interrupted earlier download: half of musan.tar.gz is there, and the run completes it
    dl.mkdir()
    (dl / "musan.tar.gz.part").write_bytes(FAKE["musan.tar.gz"][:100])
    out = run(dl, corpora, SASV_DOWNLOAD_MANIFEST=str(mf))
    assert out.returncode == 0, out.stderr
    # what stages 1 and 2 read, with run_train_asv.sh's default roots under <corpora_dir>
    assert sorted(VoxCeleb1Layout(corpora / "VoxCeleb1").scan()) == ["id10270/x6uYqmx31kE/00001",
                                                                     "id10271/1gtz-CUIygI/00001"]  # fmt: skip
    assert len(VoxCeleb2Layout(corpora / "VoxCeleb2").scan()) == 4
    assert (corpora / "VoxCeleb1" / "veri_test2.txt").read_bytes() == FAKE["veri_test2.txt"]
    lists = build_augmentation_lists(corpora / "musan", corpora / "RIRS_NOISES")
    assert {k: len(v) for k, v in lists.items()} == {"musan/noise": 1, "musan/music": 1, "musan/speech": 1,
                                                     "rirs": 3}  # fmt: skip
    # the two parts were checked, concatenated, checked as a whole and deleted
    assert (dl / "vox2_aac.zip").read_bytes() == FAKE["vox2_aac.zip"]
    assert not list(dl.glob("vox2_dev_aac_part*"))
    stamp = (dl / "vox2_aac.zip.md5").read_text().splitlines()
    assert stamp[0].split() == [md5(FAKE["vox2_aac.zip"]), "vox2_aac.zip"] and stamp[1].startswith("# ")
    assert (dl / "musan.tar.gz").read_bytes() == FAKE["musan.tar.gz"]
    # a re-run finds everything in place: nothing downloaded (the URLs are dead now), nothing re-read
    dead = tmp_path / "dead.tsv"
    dead.write_text(mf.read_text().replace(f"file://{tmp_path / 'src'}", "http://127.0.0.1:9"))
    again = run(dl, corpora, SASV_DOWNLOAD_MANIFEST=str(dead))
    assert again.returncode == 0, again.stderr
    assert (
        again.stdout.count("already unpacked") == 4 and "veri_test2.txt present and verified" in again.stdout
    )
    assert "downloading" not in again.stdout and "checking the md5" not in again.stdout
    # one corpus only: the others are not looked at
    musan_only = run(dl, corpora, "musan", SASV_DOWNLOAD_MANIFEST=str(dead))
    assert musan_only.returncode == 0 and musan_only.stdout.count("already unpacked") == 1


def test_interrupted_unpack_is_done_again_from_the_verified_archive(tmp_path):
    records = serve(tmp_path / "src")
    mf = write_manifest(tmp_path / "manifest.tsv", records, corpora=("rirs",))
    dl, corpora = tmp_path / "dl", tmp_path / "corpora"
    assert run(dl, corpora, SASV_DOWNLOAD_MANIFEST=str(mf)).returncode == 0
    (corpora / ".rirs_noises.zip.unpacked").unlink()  # as if killed while unzipping
    shutil.rmtree(corpora / "RIRS_NOISES" / "simulated_rirs" / "largeroom")
    out = run(dl, corpora, SASV_DOWNLOAD_MANIFEST=str(mf))
    assert out.returncode == 0, out.stderr
    assert "rirs_noises.zip present, not downloading" in out.stdout and "checking the md5" not in out.stdout
    assert (corpora / "RIRS_NOISES" / "simulated_rirs" / "largeroom").is_dir()


def test_wrong_md5_is_one_error_naming_the_file_and_nothing_is_unpacked(tmp_path):
    """The recorded (real) md5 against the small fake archive: the real manifest, through a mirror URL."""
    serve(tmp_path / "src")
    dl, corpora = tmp_path / "dl", tmp_path / "corpora"
    out = run(dl, corpora, "rirs", SASV_DOWNLOAD_BASE_URL=f"file://{tmp_path / 'src'}")
    assert out.returncode == 1
    assert errors(out) == [
        f"ERROR: {dl / 'rirs_noises.zip'} has md5 {md5(FAKE['rirs_noises.zip'])}, expected "
        f"{RIRS.md5} (an incomplete or different file); delete it and re-run"
    ]
    assert not (corpora / "RIRS_NOISES").exists() and not (dl / "rirs_noises.zip.md5").exists()
    # a bad part of a multi-part archive: named, and nothing is concatenated or unpacked
    records = serve(tmp_path / "src")
    bad = dataclasses.replace(
        records["vox2_aac.zip"],
        parts=(records["vox2_aac.zip"].parts[0], (records["vox2_aac.zip"].parts[1][0], "0" * 32)),
    )
    mf = write_manifest(tmp_path / "manifest.tsv", {**records, "vox2_aac.zip": bad}, corpora=("voxceleb",))
    out = run(dl, corpora, SASV_DOWNLOAD_MANIFEST=str(mf))
    assert out.returncode == 1
    [line] = errors(out)
    assert line.startswith(f"ERROR: {dl / 'vox2_dev_aac_partab'} has md5 ") and f"expected {'0' * 32}" in line
    assert not (dl / "vox2_aac.zip").exists() and not (corpora / "VoxCeleb2").exists()
    assert (corpora / "VoxCeleb1" / "wav" / "id10270").is_dir()  # what came before it is in place


def test_html_page_instead_of_the_archive_is_said_plainly(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "musan.tar.gz").write_text("<!DOCTYPE html><html>please log in</html>")
    out = run(tmp_path / "dl", tmp_path / "corpora", "musan", MUSAN_BASE_URL=f"file://{tmp_path / 'src'}")
    assert out.returncode == 1
    [line] = errors(out)
    assert "musan.tar.gz has md5" in line and "an HTML page, not the archive" in line


def test_unreachable_source_fails_fast_with_manual_instructions(tmp_path):
    dl, corpora = tmp_path / "dl", tmp_path / "corpora"
    start = time.monotonic()
    out = run(dl, corpora, SASV_DOWNLOAD_BASE_URL="http://127.0.0.1:9")
    assert out.returncode == 1
    assert time.monotonic() - start < 30
    assert errors(out) == ["ERROR: could not download http://127.0.0.1:9/vox1_test_wav.zip "
                           "(offline, or the host wants a login?)"]  # fmt: skip
    assert f"-> {dl / 'vox1_test_wav.zip'}" in out.stderr
    assert f"so that these exist: {corpora / 'VoxCeleb1' / 'wav' / 'id10270'}" in out.stderr
    assert "request access on https://www.robots.ox.ac.uk/~vgg/data/voxceleb/" in out.stderr
    # and what the run would have fetched next, each with its md5
    for name, record in (("musan.tar.gz", MUSAN), ("rirs_noises.zip", RIRS)):
        assert f"(md5 {record.md5}) -> {dl / name}" in out.stderr
    assert "vox2_dev_aac_partah (8 parts, cat into vox2_aac.zip" in out.stderr
    assert not list(dl.glob("*.part"))


def test_unreachable_part_names_the_missing_parts_only(tmp_path):
    records = serve(tmp_path / "src")
    (tmp_path / "src" / "vox2_dev_aac_partab").unlink()
    mf = write_manifest(tmp_path / "manifest.tsv", records, corpora=("voxceleb",))
    dl = tmp_path / "dl"
    out = run(dl, tmp_path / "corpora", SASV_DOWNLOAD_MANIFEST=str(mf))
    assert out.returncode == 1 and "ERROR: could not download file://" in out.stderr
    assert (
        f"-> {dl / 'vox2_dev_aac_partab'}" in out.stderr
        and f"-> {dl / 'vox2_dev_aac_partaa'}" not in out.stderr
    )
    assert f"-> {dl / 'vox2_aac.zip'}" in out.stderr  # or the whole, concatenated by hand


def test_no_published_checksum_tests_the_archive_and_records_its_sha256(tmp_path):
    records = serve(tmp_path / "src")
    unpublished = dataclasses.replace(records["rirs_noises.zip"], md5="", parts=(
        (records["rirs_noises.zip"].parts[0][0], ""),))  # fmt: skip
    placed = dataclasses.replace(CORPORA["rirs"][0], download=unpublished)
    row = manifest_row("rirs", placed)
    assert row.split("\t")[3] == "-" and row.endswith("\t-")
    (tmp_path / "manifest.tsv").write_text(row + "\n")
    dl = tmp_path / "dl"
    out = run(dl, tmp_path / "corpora", SASV_DOWNLOAD_MANIFEST=str(tmp_path / "manifest.tsv"))
    assert out.returncode == 0, out.stderr
    assert (dl / "rirs_noises.zip.sha256").read_text().splitlines()[0] == hashlib.sha256(
        FAKE["rirs_noises.zip"]
    ).hexdigest()
    # a damaged archive fails the test
    (tmp_path / "src" / "rirs_noises.zip").write_bytes(FAKE["rirs_noises.zip"][:-40])
    out = run(tmp_path / "dl2", tmp_path / "corpora2", SASV_DOWNLOAD_MANIFEST=str(tmp_path / "manifest.tsv"))
    assert out.returncode == 1 and "is corrupt or incomplete (unzip -t)" in errors(out)[0]
    assert not (tmp_path / "corpora2" / "RIRS_NOISES").exists()


def test_hand_unpacked_corpus_is_used_as_it_is(tmp_path):
    corpora = tmp_path / "corpora"
    for d in ("music", "noise", "speech"):
        (corpora / "musan" / d).mkdir(parents=True)
    out = run(tmp_path / "dl", corpora, "musan", SASV_DOWNLOAD_BASE_URL="http://127.0.0.1:9")
    assert out.returncode == 0, out.stderr
    assert "unpacked by hand" in out.stdout and "downloading" not in out.stdout


def test_usage(tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "Usage: local/download_train_corpora.sh <download_dir> <corpora_dir>" in out.stdout
    assert "set -euo" not in out.stdout
    out = subprocess.run(["bash", str(SCRIPT), "only-one"], capture_output=True, text=True)
    assert out.returncode == 1 and "expected at least 2 arguments" in out.stderr
    out = run(tmp_path / "dl", tmp_path / "corpora", "vox3")
    assert out.returncode == 1 and "unknown corpus 'vox3'" in out.stderr
    assert not (tmp_path / "dl").exists()


# ----------------------------------------------------------------------------- run_train_asv.sh stage 0


def train_asv(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "run_train_asv.sh"), "--exp_dir", str(tmp_path / "exp"), *args],
        capture_output=True,
        text=True,
        env=_env(env),
        timeout=120,
    )


def roots(corpora: Path) -> list[str]:
    places = {"vox1_root": "VoxCeleb1", "vox2_root": "VoxCeleb2", "vox1_trials": "VoxCeleb1/veri_test2.txt",
              "musan_root": "musan", "rirs_root": "RIRS_NOISES"}  # fmt: skip
    return [arg for option, place in places.items() for arg in (f"--{option}", str(corpora / place))]


def test_stage0_is_opt_in_and_only_in_stage0(tmp_path):
    out = train_asv(tmp_path, "--download", "true")
    assert out.returncode == 1 and "--download true runs in stage 0, which --stage 1" in out.stderr
    assert not (tmp_path / "exp").exists(), "nothing is started, not even a log"
    out = train_asv(tmp_path, "--stage", "0", "--stop_stage", "0")
    assert out.returncode == 0, out.stderr
    assert "Stage 0: skipped (pass --download true" in out.stdout


def test_stage0_roots_must_be_where_the_download_puts_them(tmp_path):
    corpora = tmp_path / "corpora"
    args = roots(corpora)
    args[args.index("--musan_root") + 1] = str(tmp_path / "elsewhere" / "musan")
    out = train_asv(tmp_path, "--stage", "0", "--stop_stage", "0", "--download", "true", *args)
    assert out.returncode == 1
    assert f"stage 0 puts musan at {corpora / 'musan'}" in out.stderr and "pass --musan_root" in out.stderr
    assert not (tmp_path / "exp").exists()


def test_stage0_downloads_what_stages_1_and_2_read(tmp_path):
    mf = write_manifest(tmp_path / "manifest.tsv", serve(tmp_path / "src"))
    corpora, dl = tmp_path / "corpora", tmp_path / "dl"
    common = [*roots(corpora), "--download_dir", str(dl), "--data_dir", str(tmp_path / "data")]
    out = train_asv(tmp_path, "--stage", "0", "--stop_stage", "0", "--download", "true", *common,
                    SASV_DOWNLOAD_MANIFEST=str(mf))  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout
    assert (dl / "vox2_aac.zip").is_file() and (corpora / "VoxCeleb2" / "dev" / "aac" / "id00010").is_dir()
    out = train_asv(tmp_path, "--stage", "2", "--stop_stage", "2", *common)
    assert out.returncode == 0, out.stderr + out.stdout
    assert len((tmp_path / "data" / "rirs" / "wav.scp").read_text().splitlines()) == 3
