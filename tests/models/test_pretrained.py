"""Checkpoint sources (sasv.models.pretrained, sasv download_pretrained): the confs' mirrors, falling through
to the next source, Google Drive's confirm step, resumed downloads, the checksum lock, --check and offline.

Real HTTP against a local server on 127.0.0.1 (no network needed): one path serves the file (with range
requests), others fail, one plays Google Drive's confirm page.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sasv.__main__ import main as sasv_main
from sasv.models.conf import ConfError, load_conf, parse_conf
from sasv.models.pretrained import drive_file_id
from tests.conftest import REPO_ROOT

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
CONFIRM_PAGE = (
    '<html><body>Google Drive can\'t scan this file for viruses.<form id="download-form" '
    'action="{base}/drive/confirmed" method="get"><input type="hidden" name="id" value="{id}">'
    '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1">'
    "</form></body></html>"
)


class Server(http.server.ThreadingHTTPServer):
    payload = PAYLOAD
    requests: list[str]
    truncate_at: int | None = None  # /file: announce the whole payload, close the connection after this many


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: Server = self.server  # type: ignore[assignment]
        server.requests.append(self.path)
        if self.path.startswith("/missing"):
            self.send_error(404)
        elif self.path.startswith("/broken"):
            self.send_error(503)
        elif self.path.startswith("/drive/download"):
            base = f"http://127.0.0.1:{server.server_port}"
            page = CONFIRM_PAGE.format(base=base, id="FILE-ID").encode()
            self._send(200, page, "text/html; charset=utf-8")
        elif self.path.startswith("/drive/confirmed"):
            ok = "confirm=t" in self.path and "uuid=u-1" in self.path and "id=FILE-ID" in self.path
            self._file(server.payload) if ok else self.send_error(400)
        elif self.path.startswith("/file"):
            self._file(server.payload)
        else:
            self.send_error(404)

    def _send(self, code: int, body: bytes, kind: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        cut = self.server.truncate_at  # type: ignore[attr-defined]
        self.wfile.write(body if cut is None or kind != "application/octet-stream" else body[:cut])

    def _file(self, payload: bytes) -> None:
        wanted = self.headers.get("Range")
        if not wanted:
            self._send(200, payload, "application/octet-stream")
            return
        start, _, end = wanted.removeprefix("bytes=").partition("-")
        first, last = int(start), int(end) if end else len(payload) - 1
        if first >= len(payload):
            self.send_error(416)
            return
        span = f"bytes {first}-{last}/{len(payload)}"
        self._send(206, payload[first : last + 1], "application/octet-stream", {"Content-Range": span})


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


def closed_port_url() -> str:
    """A URL nothing listens on (the port of a server that was just closed)."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_port
    httpd.server_close()
    return f"http://127.0.0.1:{port}/file"


def write_conf(folder: Path, urls: list[str], sha256: str | None = None, **extra: str) -> Path:
    raw = {
        "name": "tiny_ecapa",
        "kind": "asv",
        "arch": "ecapa_tdnn",
        "args": {"C": 16},
        "checkpoint": {"path": str(folder / "pretrained" / "tiny.model"), "format": "plain",
                       "urls": [{"url": u, "read_from": "a test"} for u in urls], "sha256": sha256, **extra},
    }  # fmt: skip
    path = folder / "tiny_ecapa.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def download(conf: Path, lock: Path, *extra: str) -> int:
    return sasv_main(
        ["download_pretrained", "--confs", str(conf), "--lock", str(lock), "--timeout", "5", *extra]
    )


# ------------------------------------------------------------------------------------------------ the confs


def test_shipped_confs_name_their_sources_in_order() -> None:
    confs = {
        p.stem: load_conf(p)
        for kind in ("asv", "cm")
        for p in sorted((REPO_ROOT / "conf" / kind).glob("*.yaml"))
    }
    for name, conf in confs.items():
        # a download source, or (the SSL-AASIST weights: a Drive folder, no file link) the training recipe
        assert conf.checkpoint is not None and (conf.checkpoint.sources or conf.checkpoint.train_with), name
        assert all(s.read_from for s in conf.checkpoint.sources), f"{name}: where was each link read?"
        if conf.checkpoint.train_with:
            assert (REPO_ROOT / conf.checkpoint.train_with).is_file(), name
    assert [s.url for s in confs["se_resnet34"].checkpoint.sources] == [
        "http://www.robots.ox.ac.uk/~joon/data/baseline_v2_ap.model",
        "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/models/baseline_v2_ap.model",
    ]
    wavlm = confs["wavlm_ecapa"].checkpoint
    assert [drive_file_id(s.url) for s in wavlm.sources] == ["1-aE1NfzpRCLxA4GUxX9ITI3F9LlbtEGP"]
    assert "5b4b93b" in wavlm.sources[0].read_from
    for name in ("se_res2net50", "res2next50"):
        train_with = confs[name].checkpoint.train_with
        assert train_with and (REPO_ROOT / train_with).is_file(), name
    assert confs["aasist"].checkpoint.url.endswith("/models/weights/AASIST.pth")


def test_url_and_urls_forms_and_their_errors() -> None:
    base = {"name": "m", "kind": "cm", "arch": "aasist"}
    one = parse_conf({**base, "checkpoint": {"path": "p", "format": "plain", "url": "http://a/x"}})
    assert [s.url for s in one.checkpoint.sources] == ["http://a/x"] and one.checkpoint.url == "http://a/x"
    two = parse_conf(
        {
            **base,
            "checkpoint": {"path": "p", "format": "plain", "urls": ["http://a/x", {"url": "http://b/x"}]},
        }
    )
    assert [s.url for s in two.checkpoint.sources] == ["http://a/x", "http://b/x"]
    assert parse_conf({**base, "checkpoint": {"path": "p", "format": "plain"}}).checkpoint.url is None
    for bad, message in (
        ({"url": "http://a", "urls": ["http://b"]}, "not both"),
        ({"urls": []}, "non-empty list"),
        ({"urls": [{"url": "http://a", "mirror": 2}]}, r"urls\[0\]"),
        ({"urls": [3]}, r"urls\[0\]"),
    ):
        with pytest.raises(ConfError, match=message):
            parse_conf({**base, "checkpoint": {"path": "p", "format": "plain", **bad}})


def test_drive_file_ids() -> None:
    assert drive_file_id("https://drive.google.com/file/d/1-aE1Nf_zp/view?usp=sharing") == "1-aE1Nf_zp"
    assert drive_file_id("https://drive.google.com/uc?export=download&id=ABC-9") == "ABC-9"
    assert drive_file_id("https://example.org/file/d/x") is None


# ------------------------------------------------------------------------------------------------ downloads


def test_falls_through_to_the_next_mirror_and_records_the_sha256_once(server, tmp_path, caplog) -> None:
    lock = tmp_path / "checksums.lock"
    conf = write_conf(tmp_path, [url(server, "/missing"), url(server, "/broken"), url(server, "/file")])
    assert download(conf, lock) == 0
    installed = tmp_path / "pretrained" / "tiny.model"
    assert installed.read_bytes() == PAYLOAD and not installed.with_name("tiny.model.part").exists()
    assert server.requests[:3] == ["/missing", "/broken", "/file"]
    entry = json.loads(lock.read_text())[str(tmp_path / "pretrained" / "tiny.model")]
    assert entry["sha256"] == hashlib.sha256(PAYLOAD).hexdigest() and entry["url"] == url(server, "/file")
    # a re-run verifies the file in place against the lock: no request, the entry unchanged
    before, recorded = len(server.requests), lock.read_text()
    assert download(conf, lock) == 0
    assert len(server.requests) == before and lock.read_text() == recorded


def test_the_lock_is_enforced_when_the_upstream_file_changes(server, tmp_path, capsys) -> None:
    lock = tmp_path / "checksums.lock"
    conf = write_conf(tmp_path, [url(server, "/file")])
    assert download(conf, lock) == 0
    recorded = lock.read_text()
    (tmp_path / "pretrained" / "tiny.model").unlink()
    server.payload = PAYLOAD[::-1]  # the host now serves other bytes under the same name
    capsys.readouterr()
    assert download(conf, lock) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "not " + hashlib.sha256(PAYLOAD).hexdigest() in errors[0], err
    assert not (tmp_path / "pretrained" / "tiny.model").exists() and lock.read_text() == recorded


def test_a_wrong_file_in_place_is_replaced_by_a_verified_download(server, tmp_path) -> None:
    conf = write_conf(tmp_path, [url(server, "/file")], sha256=hashlib.sha256(PAYLOAD).hexdigest())
    target = tmp_path / "pretrained" / "tiny.model"
    target.parent.mkdir()
    target.write_bytes(b"not the checkpoint")
    assert download(conf, tmp_path / "lock") == 0
    assert (
        target.read_bytes() == PAYLOAD
        and target.with_name("tiny.model.bad").read_bytes() == b"not the checkpoint"
    )
    assert not (tmp_path / "lock").exists(), "a conf with a sha256 needs no lock entry"


def test_a_partial_download_is_resumed(server, tmp_path) -> None:
    conf = write_conf(tmp_path, [url(server, "/file")], sha256=hashlib.sha256(PAYLOAD).hexdigest())
    part = tmp_path / "pretrained" / "tiny.model.part"
    part.parent.mkdir()
    part.write_bytes(PAYLOAD[:40_000])
    assert download(conf, tmp_path / "lock") == 0
    assert (tmp_path / "pretrained" / "tiny.model").read_bytes() == PAYLOAD


def test_a_truncated_download_is_neither_installed_nor_recorded(server, tmp_path, capsys) -> None:
    """The connection drops after half the announced Content-Length: the download fails naming both sizes,
    nothing is recorded in the lock (it trusted a truncated first download forever, refusing the right
    file afterwards), and the next run resumes the part to the verified whole."""
    lock = tmp_path / "checksums.lock"
    conf = write_conf(tmp_path, [url(server, "/file")])
    server.truncate_at = 40_000
    assert download(conf, lock) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1 and "truncated: 40,000 of 102,400 bytes" in errors[0], errors
    target = tmp_path / "pretrained" / "tiny.model"
    assert not target.exists() and not lock.exists()
    assert target.with_name("tiny.model.part").stat().st_size == 40_000, "kept, to be resumed"
    server.truncate_at = None
    assert download(conf, lock) == 0
    assert target.read_bytes() == PAYLOAD and server.requests[-1] == "/file"
    assert json.loads(lock.read_text())[str(target)]["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()


def test_forget_resets_one_lock_entry(server, tmp_path, caplog) -> None:
    """A lock entry that is wrong (or an upstream file replaced on purpose) is reset by --forget NAME: that
    entry alone goes, and the next download (or a file put in place) is recorded anew."""
    lock = tmp_path / "checksums.lock"
    conf = write_conf(tmp_path, [url(server, "/file")])
    assert download(conf, lock) == 0
    target = tmp_path / "pretrained" / "tiny.model"
    entries = json.loads(lock.read_text())
    entries["other/model.pt"] = {"sha256": "0" * 64, "url": None, "recorded": "2024-01-01 00:00:00"}
    lock.write_text(json.dumps(entries))
    server.payload = PAYLOAD[::-1]  # upstream replaced the file on purpose; the lock refuses it
    assert download(conf, lock) == 0
    assert target.read_bytes() == PAYLOAD, "the old file in place, verified against the lock, stays"
    target.write_bytes(PAYLOAD[::-1])  # the new file, put in place by hand, is refused by the old entry
    assert download(conf, lock) == 1 and target.with_name("tiny.model.bad").read_bytes() == PAYLOAD[::-1]
    target.with_name("tiny.model.bad").replace(target)
    caplog.set_level("INFO")
    assert download(conf, lock, "--forget", "tiny_ecapa") == 0
    after = json.loads(lock.read_text())
    assert str(target) not in after and after["other/model.pt"] == entries["other/model.pt"]
    assert "tiny_ecapa: forgot the sha256 " + hashlib.sha256(PAYLOAD).hexdigest() in caplog.text
    assert target.read_bytes() == PAYLOAD[::-1], "--forget touches the lock only"
    requests = len(server.requests)
    assert download(conf, lock) == 0 and len(server.requests) == requests, "the file in place is recorded"
    assert json.loads(lock.read_text())[str(target)]["sha256"] == hashlib.sha256(PAYLOAD[::-1]).hexdigest()
    assert not target.with_name("tiny.model.bad").exists()
    for wrong in (["--forget"], ["--forget", "tiny_ecapa", "--check"]):  # no name; another action
        with pytest.raises(SystemExit, match="2"):
            download(conf, lock, *wrong)


def test_google_drive_links_go_through_the_confirm_page(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("sasv.models.pretrained.DRIVE_DOWNLOAD", url(server, "/drive/download"))
    conf = write_conf(tmp_path, ["https://drive.google.com/file/d/FILE-ID/view?usp=sharing"])
    assert download(conf, tmp_path / "lock") == 0
    assert (tmp_path / "pretrained" / "tiny.model").read_bytes() == PAYLOAD
    assert server.requests[0].startswith("/drive/download?id=FILE-ID")
    assert server.requests[1].startswith("/drive/confirmed?")


def test_no_source_points_at_the_training_recipe(server, tmp_path, capsys) -> None:
    conf = write_conf(tmp_path, [url(server, "/missing")], train_with="conf/train/asv/voxceleb_aam.yaml")
    assert download(conf, tmp_path / "lock") == 1
    line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR:"))
    assert "/missing: HTTP 404" in line
    assert "./run_train_asv.sh --asv_conf" in line and "--train_conf conf/train/asv/voxceleb_aam.yaml" in line
    assert "exp/train/tiny_ecapa_trained/model.yaml" in line


def test_a_training_confs_init_checkpoint_downloads_by_its_file_name(server, tmp_path, caplog) -> None:
    """``--init_of TRAIN_CONF`` installs the training conf's pre-trained starting point (SSL-AASIST's
    XLS-R), named by its file, verified and recorded as the models' checkpoints are."""
    train_conf = tmp_path / "ssl.yaml"
    shipped = yaml.safe_load((REPO_ROOT / "conf/train/cm/ssl_aasist.yaml").read_text())
    target = tmp_path / "pretrained" / "xlsr2_300m.pt"
    shipped["init_checkpoint"].update(path=str(target), urls=[url(server, "/missing"), url(server, "/file")])
    train_conf.write_text(yaml.safe_dump(shipped))
    lock = tmp_path / "lock"
    argv = ["download_pretrained", "--init_of", str(train_conf), "--lock", str(lock), "--timeout", "5"]
    assert sasv_main(argv) == 0
    assert target.read_bytes() == PAYLOAD and server.requests == ["/missing", "/file"]
    assert json.loads(lock.read_text())[str(target)]["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert sasv_main([*argv, "xlsr2_300m"]) == 0 and len(server.requests) == 2, "verified in place"
    assert sasv_main(["download_pretrained", "--init_of", str(REPO_ROOT / "conf/train/cm/aasist.yaml")]) == 0


# ------------------------------------------------------------------------------------------------ --check


def test_check_prints_one_row_per_source(server, tmp_path, capsys) -> None:
    lock = tmp_path / "checksums.lock"
    conf = write_conf(tmp_path, [url(server, "/missing"), url(server, "/file")])
    assert download(conf, lock, "--check") == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| tiny_ecapa")]
    assert rows == [
        f"| tiny_ecapa | {url(server, '/missing')} | no: HTTP 404 Not Found | ? | no |",
        f"| tiny_ecapa | {url(server, '/file')} | yes | 102,400 | no |",
    ]
    assert not (tmp_path / "pretrained").exists(), "--check downloads nothing"
    assert download(conf, lock) == 0
    capsys.readouterr()
    assert download(conf, lock, "--check") == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("| 102,400 | lock |")


def test_check_offline_is_one_line(tmp_path, capsys) -> None:
    conf = write_conf(tmp_path, [closed_port_url(), closed_port_url()])
    assert download(conf, tmp_path / "lock", "--check") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("ERROR: ")
        and "cannot check the checkpoints' sources: offline" in lines[0]
    )


def test_the_recipe_refuses_a_checkpoint_that_differs_from_its_locked_sha256(server, tmp_path) -> None:
    """The lock protects the stages too: a conf without a sha256 loads only the file its first download
    recorded (here: the file replaced on disk afterwards is refused, naming the lock)."""
    import torch

    from sasv.models.checkpoints import CheckpointError
    from sasv.models.conf import build_from_conf, load_model

    conf = write_conf(tmp_path, [url(server, "/file")])
    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    torch.save(build_from_conf(load_conf(conf)).state_dict(), weights)
    server.payload = weights.read_bytes()
    assert download(conf, tmp_path / "pretrained" / "checksums.lock") == 0
    assert (
        load_model(load_conf(conf), root=tmp_path).checkpoint_sha256
        == hashlib.sha256(server.payload).hexdigest()
    )
    torch.manual_seed(1)
    torch.save(build_from_conf(load_conf(conf)).state_dict(), tmp_path / "pretrained" / "tiny.model")
    with pytest.raises(CheckpointError, match="checksums.lock recorded its sha256"):
        load_model(load_conf(conf), root=tmp_path)
