"""Download the pretrained checkpoints the model confs name, into the path each conf gives.

Every source of a conf (``checkpoint.url`` or the mirrors of ``checkpoint.urls``) is tried in order; a partial
``<path>.part`` is resumed; the file is verified against the conf's sha256 or, where the conf has none,
against the sha256 recorded by the first download in the lock file (``--lock``; recorded there when
missing) before it is renamed into place. When no source serves a checkpoint, the error lists every
source's failure and says what to do instead (the training recipe for models without a public host).

Only a download of the size its server announced is recorded in the lock (a dropped connection leaves a
``.part`` that the next run resumes). ``--forget NAME ...`` removes those names' entries from the lock and
does nothing else: for a file replaced upstream on purpose, or an entry recorded from a truncated download
by an older version (it refused the right file, moving a copy put in place by hand to ``<path>.bad``); the
next download, or the file in place, is then recorded anew.

Training confs' pre-trained starting points (``init_checkpoint``, e.g. XLS-R 300M's ``xlsr2_300m.pt`` for
SSL-AASIST) are downloaded the same way, named by their file (``xlsr2_300m``); ``--init_of TRAIN_CONF``
selects those of the training confs given (stage 0 of run_train_cm.sh).

``--check`` asks each source whether the file is there (a one-byte range request; Google Drive's confirm
step first) and prints a table: name, source, reachable, size, whether a sha256 is known. Nothing is
downloaded. Offline it says so in one line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from sasv.cli import ArgumentParser, run_cli
from sasv.errors import SasvError
from sasv.models.checksum_lock import DEFAULT_LOCK, ChecksumLock, DownloadError
from sasv.models.conf import ConfError, ModelConf, init_checkpoint_spec, load_conf
from sasv.models.pretrained import check_table, install

log = logging.getLogger("download_pretrained")


def select(confs: Sequence[ModelConf], names: Sequence[str]) -> list[ModelConf]:
    known = {c.name for c in confs}
    unknown = sorted(set(names) - known)
    if unknown:
        raise SasvError(
            f"conf/: unknown model name(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return [c for c in confs if c.checkpoint is not None and (not names or c.name in names)]


def forget(confs: Sequence[ModelConf], names: Sequence[str], lock: ChecksumLock) -> None:
    """Remove the lock entries of ``names`` (logging what each held); a conf with its own sha256 has none."""
    for conf in confs:
        assert conf.checkpoint is not None
        entry = lock.forget(conf.checkpoint.path)
        if entry is not None:
            log.info(
                "%s: forgot the sha256 %s of %s (recorded %s from %s) in %s; the next download or the file "
                "in place is recorded anew",
                conf.name, entry.get("sha256"), conf.checkpoint.path, entry.get("recorded"), entry.get("url"),
                lock.path,
            )  # fmt: skip
        else:
            where = "its conf holds its sha256" if conf.checkpoint.sha256 else "nothing recorded"
            log.info("%s: no entry in %s (%s)", conf.name, lock.path, where)


def init_checkpoint_confs(paths: Sequence[Path]) -> list[ModelConf]:
    """The ``init_checkpoint`` of each training conf that has one, as a download entry named by its file's
    stem (several training confs may start from the same file: listed once)."""
    entries: dict[str, ModelConf] = {}
    for path in paths:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict) or raw.get("init_checkpoint") is None:
            continue
        try:
            init = init_checkpoint_spec(raw["init_checkpoint"], f"{path}: init_checkpoint")
        except ValueError as e:
            raise ConfError(str(e)) from None
        name = Path(init.checkpoint.path).stem
        kind = Path(path).parent.name
        entries.setdefault(name, ModelConf(name, kind, "", checkpoint=init.checkpoint, source=str(path)))
    return list(entries.values())


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv download_pretrained", description=__doc__)
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="conf names (default: every conf with a checkpoint)"
    )
    p.add_argument(
        "--check", action="store_true", help="ask every source whether it serves its file; no download"
    )
    p.add_argument(
        "--forget",
        action="store_true",
        help="remove the lock entries of the NAMEs given (and do nothing else); the next download, or the "
        "file in place, is recorded anew",
    )
    p.add_argument(
        "--confs", nargs="+", default=None, help="conf files (default: conf/asv/*.yaml and conf/cm/*.yaml)"
    )
    p.add_argument(
        "--init_of", nargs="+", default=None, metavar="TRAIN_CONF",
        help="only the pre-trained starting points (init_checkpoint) of these training confs",
    )  # fmt: skip
    p.add_argument("--lock", default=str(DEFAULT_LOCK), help=f"checksum lock file (default: {DEFAULT_LOCK})")
    p.add_argument("--root", default=".", help="where relative checkpoint paths start (default: .)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a source (default: 30)")
    args = p.parse_args(argv)
    if args.forget and (args.check or not args.names):
        p.error("--forget takes the NAMEs whose entries to remove, and no --check")

    if args.init_of is not None:
        confs = select(init_checkpoint_confs([Path(p) for p in args.init_of]), args.names)
    else:
        paths = args.confs or sorted([*Path("conf/asv").glob("*.yaml"), *Path("conf/cm").glob("*.yaml")])
        train_confs = [] if args.confs else sorted(Path("conf/train").glob("*/*.yaml"))
        confs = select([load_conf(path) for path in paths] + init_checkpoint_confs(train_confs), args.names)
    lock = ChecksumLock(args.lock)
    if args.forget:
        forget(confs, args.names, lock)
        return 0
    if args.check:
        print("\n".join(check_table(confs, lock, args.timeout)))
        return 0
    failed = []
    for conf in confs:
        try:
            install(conf, Path(args.root), lock, args.timeout)
        except DownloadError as err:
            if len(confs) == 1:
                raise
            log.error("%s", err)
            failed.append(conf.name)
    if failed:
        where = Path(args.root) / "pretrained"
        raise DownloadError(f"{where}: not installed: {', '.join(failed)} (the messages above say why)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
