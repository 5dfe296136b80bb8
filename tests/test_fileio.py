from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import soundfile as sf

from sasv.fileio import atomic_output, atomic_write_text


def test_atomic_write_text_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "list.txt"
    atomic_write_text(target, "one\n")
    assert target.read_text() == "one\n"
    atomic_write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["list.txt"]


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "scores.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.txt"]


def test_failure_without_old_file_leaves_nothing(tmp_path):
    target = tmp_path / "new.txt"
    with pytest.raises(KeyboardInterrupt), atomic_output(target):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_temp_is_beside_target_and_keeps_suffix(tmp_path):
    """soundfile picks the container from the extension, so the temporary name must keep it."""
    target = tmp_path / "x.flac"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.suffix == ".flac"
        assert tmp != target
        sf.write(tmp, np.zeros(160, dtype=np.int16), 16000, subtype="PCM_16")
        assert not target.exists()
    info = sf.info(str(target))
    assert (info.format, info.samplerate, info.frames) == ("FLAC", 16000, 160)


def test_final_mode_follows_umask_not_mkstemp(tmp_path):
    target = tmp_path / "m.txt"
    atomic_write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
