"""Stage 0 without the network: file:// URLs stand in for DataShare and GitHub."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from sasv.corpora.la_mini import MiniCorpusConfig, make_mini_corpus

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "local" / "download_la.sh"

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("unzip")), reason="download_la.sh needs curl and unzip"
)


def run(download_dir: Path, la_parent: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(download_dir), str(la_parent)],
        capture_output=True,
        text=True,
        env={**os.environ, "CONNECT_TIMEOUT": "3", **env},
        timeout=120,
    )


def test_unreachable_source_fails_fast_with_manual_instructions(tmp_path):
    start = time.monotonic()
    out = run(tmp_path / "dl", tmp_path / "corpus", LA_ZIP_URL="http://127.0.0.1:9/LA.zip")
    assert out.returncode == 1
    assert time.monotonic() - start < 30
    assert "ERROR: could not download LA.zip" in out.stderr
    asv = tmp_path / "corpus" / "LA" / "ASVspoof2019_LA_asv_protocols"
    assert f"-> {tmp_path / 'dl' / 'LA.zip'}" in out.stderr
    for split in ("dev", "eval"):
        assert f"-> {asv}/ASVspoof2019.LA.asv.{split}.gi.trl.txt" in out.stderr
    assert not (tmp_path / "dl" / "LA.zip.part").exists()


def test_usage(tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), "only-one"], capture_output=True, text=True)
    assert out.returncode == 1 and "Usage: local/download_la.sh <download_dir> <la_parent>" in out.stderr
    assert subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True).returncode == 0


def test_not_a_zip_is_refused(tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "LA.zip").write_text("<html>please log in</html>")
    out = run(tmp_path / "dl", tmp_path / "corpus")
    assert out.returncode == 1 and "is not a zip archive" in out.stderr


def test_download_verify_unpack_and_trial_lists(tmp_path, real_protocols):
    """The whole flow on a zipped mini corpus; the trial lists are the real ones, checked by sha256."""
    make_mini_corpus(tmp_path / "src", MiniCorpusConfig(seed=0, speakers=2, bonafide_per_spk=1))
    with zipfile.ZipFile(tmp_path / "LA.zip", "w") as z:
        for p in sorted((tmp_path / "src" / "LA").rglob("*")):
            z.write(p, p.relative_to(tmp_path / "src"))
    # an interrupted earlier download: the first half is there already, and the run completes it
    source = (tmp_path / "LA.zip").read_bytes()
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "LA.zip.part").write_bytes(source[: len(source) // 2])
    env = {"LA_ZIP_URL": f"file://{tmp_path / 'LA.zip'}", "SASV_TRIALS_BASE_URL": f"file://{real_protocols}"}
    out = run(tmp_path / "dl", tmp_path / "corpus", **env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "dl" / "LA.zip").read_bytes() == source
    la = tmp_path / "corpus" / "LA"
    assert (la / "ASVspoof2019_LA_eval" / "flac").is_dir()
    assert (tmp_path / "dl" / "LA.zip.sha256").read_text().strip() != ""
    for split in ("dev", "eval"):
        name = f"ASVspoof2019.LA.asv.{split}.gi.trl.txt"
        got = la / "ASVspoof2019_LA_asv_protocols" / name
        assert got.read_bytes() == (real_protocols / name).read_bytes()
        assert (got.parent / f"{name}.orig").is_file()  # the zip's own list is kept aside
    # a re-run finds everything in place and downloads nothing
    again = run(
        tmp_path / "dl", tmp_path / "corpus", LA_ZIP_URL="http://127.0.0.1:9/x", SASV_TRIALS_BASE_URL="x"
    )
    assert again.returncode == 0, again.stderr
    assert "already unpacked" in again.stdout and again.stdout.count("present and verified") == 2


def test_hand_unpacked_tree_is_used_as_it_is(tmp_path, real_protocols):
    make_mini_corpus(tmp_path / "corpus", MiniCorpusConfig(seed=0, speakers=2, bonafide_per_spk=1))
    env = {"LA_ZIP_URL": "http://127.0.0.1:9/LA.zip", "SASV_TRIALS_BASE_URL": f"file://{real_protocols}"}
    out = run(tmp_path / "dl", tmp_path / "corpus", **env)
    assert out.returncode == 0, out.stderr
    assert "unpacked by hand" in out.stdout
