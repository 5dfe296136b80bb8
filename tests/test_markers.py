"""Completion markers (sasv.markers): each check refuses what it exists to refuse, names what changed, and
accepts what did not change (several of these were found by mutation testing)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from sasv.corpora.registry import DEFAULT_CORPUS, prepared_benchmark
from sasv.errors import StaleOutputError
from sasv.fileio import sha256_file
from sasv.markers import (
    PREPARED_MARKER,
    check_prepared_marker,
    check_stage_inputs,
    is_complete,
    recorded_benchmark,
    stage_inputs,
    write_done_marker,
    write_prepared_marker,
)
from sasv.models.conf import load_conf
from tests.tiny_confs import TINY_ECAPA, write_tiny_conf


def _data_dir(tmp_path):
    data = tmp_path / "dev"
    data.mkdir()
    (data / "trials").write_text("LA_0001 LA_E_1 bonafide target\n")
    (data / "wav.scp").write_text("LA_E_1 /x/LA_E_1.flac\n")
    protocol = tmp_path / "protocol.txt"
    protocol.write_text("LA_0001 LA_E_1 - bonafide\n")
    return data, protocol


def test_prepared_marker_refuses_changed_sources_and_edited_files(tmp_path):
    data, protocol = _data_dir(tmp_path)
    write_prepared_marker(data, [protocol])
    assert check_prepared_marker(data) is True
    (data / "trials").write_text("LA_0001 LA_E_1 bonafide nontarget\n")
    with pytest.raises(StaleOutputError, match=rf"^{re.escape(str(data))}: trials changed since stage 1"):
        check_prepared_marker(data)
    write_prepared_marker(data, [protocol])
    protocol.write_text("LA_0001 LA_E_1 - spoof\n")
    with pytest.raises(StaleOutputError, match="prepared from protocol files that have changed or gone"):
        check_prepared_marker(data)
    (data / PREPARED_MARKER).unlink()
    assert check_prepared_marker(data) is False  # a data dir made by hand


def test_prepared_benchmark_is_recorded_and_defaults_to_la(tmp_path):
    data, protocol = _data_dir(tmp_path)
    assert DEFAULT_CORPUS == "la"
    assert recorded_benchmark(data) is None and prepared_benchmark(data) == "la"  # no marker
    write_prepared_marker(data, [protocol], benchmark="asvspoof5")
    assert recorded_benchmark(data) == prepared_benchmark(data) == "asvspoof5"
    write_prepared_marker(data, [protocol])
    assert "benchmark" not in json.loads((data / PREPARED_MARKER).read_text())
    assert recorded_benchmark(data) is None  # a marker written before the field existed
    assert prepared_benchmark(data) == "la"


def test_done_marker_completes_only_its_fingerprint(tmp_path):
    output, marker = tmp_path / "xvector.scp", tmp_path / "xvector.done"
    output.write_text("u ark:1\n")
    write_done_marker(marker, "model A + utts", 1, None)
    assert is_complete(output, marker, "model A + utts")
    assert not is_complete(output, marker, "model B + utts")
    output.unlink()
    assert not is_complete(output, marker, "model A + utts")


def _conf_with_checkpoint(tmp_path, relative: bool = False):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"weights v1")
    path = "ckpt.pt" if relative else str(ckpt)
    conf_path = write_tiny_conf(tmp_path, TINY_ECAPA, checkpoint={"path": path, "format": "plain"})
    return load_conf(conf_path), ckpt


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative to the working dir"])
def test_stage_inputs_accept_a_touched_but_identical_checkpoint(tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    conf, ckpt = _conf_with_checkpoint(tmp_path, relative)
    lists = {"wav.scp": _data_dir(tmp_path)[0] / "wav.scp"}
    marker = tmp_path / "out.done"
    inputs = stage_inputs(conf, "sha-of-v1-as-recorded", lists)
    assert inputs["checkpoint_stat"] == [ckpt.stat().st_size, ckpt.stat().st_mtime_ns]
    assert inputs["conf"] == conf.source
    inputs["checkpoint_sha256"] = sha256_file(ckpt)
    write_done_marker(marker, "fp", 1, inputs)
    check_stage_inputs(marker, conf, lists)  # nothing changed
    os.utime(ckpt, ns=(1, 1))  # copied or touched: other mtime, same bytes
    check_stage_inputs(marker, conf, lists)
    ckpt.write_bytes(b"weights v2")
    with pytest.raises(StaleOutputError, match=rf"^{re.escape(str(tmp_path))} was made from other inputs .*"
                                               rf"\(changed: checkpoint "):  # fmt: skip
        check_stage_inputs(marker, conf, lists)


def test_stage_inputs_name_a_checkpoint_that_appeared_or_went(tmp_path):
    conf, ckpt = _conf_with_checkpoint(tmp_path)
    lists = {"wav.scp": _data_dir(tmp_path)[0] / "wav.scp"}
    marker = tmp_path / "out.done"
    write_done_marker(marker, "fp", 1, stage_inputs(conf, None, lists))  # made without it (random init)
    with pytest.raises(StaleOutputError, match=r"\(changed: checkpoint .*ckpt.pt \(appeared since\)\)"):
        check_stage_inputs(marker, conf, lists)
    write_done_marker(marker, "fp", 1, stage_inputs(conf, "some sha", lists))
    ckpt.unlink()
    with pytest.raises(StaleOutputError, match=r"\(changed: checkpoint .*ckpt.pt \(missing since\)\)"):
        check_stage_inputs(marker, conf, lists)


def test_stage_inputs_list_every_change(tmp_path):
    conf, ckpt = _conf_with_checkpoint(tmp_path)
    data = _data_dir(tmp_path)[0]
    lists = {"wav.scp": data / "wav.scp", "trials": data / "trials"}
    marker = tmp_path / "out.done"
    write_done_marker(marker, "fp", 1, stage_inputs(conf, None, lists))
    ckpt.unlink()
    (data / "wav.scp").write_text("LA_E_2 /x/LA_E_2.flac\n")
    raw = yaml.safe_load(Path(conf.source).read_text())
    raw["args"]["C"] = 8
    Path(conf.source).write_text(yaml.safe_dump(raw))
    with pytest.raises(
        StaleOutputError, match=rf"\(changed: conf {re.escape(conf.source)}, wav.scp .*wav.scp\)"
    ):
        check_stage_inputs(marker, conf, lists)


def test_done_marker_vouches_for_its_output_and_data_files(tmp_path):
    """The marker records the index's size, lines and sha256 and its arks' sizes; any change is named."""
    from sasv.markers import output_damage, output_record

    output, marker, ark = tmp_path / "xvector.scp", tmp_path / "xvector.done", tmp_path / "00000.ab.ark"
    ark.write_bytes(b"\0" * 64)
    output.write_text(f"u1 {ark}:10\nu2 {ark}:40\n")
    write_done_marker(marker, "fp", 2, None, output_record(output, [ark, ark]))
    assert json.loads(marker.read_text())["output"]["data"] == {str(ark): 64}
    assert output_damage(output, marker) is None
    ark.write_bytes(b"\0" * 63)
    assert output_damage(output, marker) == (
        f"1 file(s) that {output} points into changed or went since it was marked complete: {ark}",
        [ark],
    )
    ark.write_bytes(b"\0" * 64)
    output.write_text(f"u1 {ark}:10\nu2 {ark}:41\n")  # same size and lines, other bytes
    assert output_damage(output, marker) == (
        f"{output} changed since it was marked complete (2 lines, 2 then)",
        [],
    )
    write_done_marker(marker, "fp", 2, None)
    assert "records no checksum" in output_damage(output, marker)[0]
