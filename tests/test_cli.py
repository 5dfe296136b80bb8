"""The tools' shared conventions: one boolean spelling, both option spellings, one-line errors."""

from __future__ import annotations

import argparse
import errno

import pytest

from sasv.cli import ArgumentParser, auto_int, error_line, non_negative_int, positive_int, str2bool
from sasv.corpora.datadir import DataDirError
from sasv.errors import SasvError, error_class, one_line


def test_booleans_are_true_or_false_only() -> None:
    assert str2bool("true") is True and str2bool("False") is False
    for bad in ("yes", "1", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            str2bool(bad)
    p = ArgumentParser(prog="t")
    p.add_bool("--plots", True, "figures")
    assert p.parse_args([]).plots is True
    assert p.parse_args(["--plots", "false"]).plots is False
    with pytest.raises(SystemExit):
        p.parse_args(["--plots"])


def test_options_take_underscores_and_hyphens() -> None:
    p = ArgumentParser(prog="t")
    p.add_argument("--train_speakers", type=int, default=1)
    p.add_argument("--train-utts", "--train_utts", type=int, default=1)  # both given: no duplicate
    assert p.parse_args(["--train-speakers", "3"]).train_speakers == 3
    assert p.parse_args(["--train_speakers", "4", "--train_utts", "5"]).train_utts == 5


def test_error_lines() -> None:
    assert error_line(DataDirError("data/dev: missing trials")) == "ERROR: data/dev: missing trials"
    assert error_line(SasvError("a.pt: bad\n  missing keys: x\n  unexpected: y")) == (
        "ERROR: a.pt: bad; missing keys: x; unexpected: y"
    )
    assert error_line(OSError(errno.ENOSPC, "No space left on device", "exp/x")) == (
        "ERROR: exp/x: No space left on device"
    )
    assert error_line(OSError("no file")).startswith("ERROR: (no file): ")
    assert one_line("a\n\n b ") == "a; b"


def test_job_relay_finds_error_classes_by_name() -> None:
    assert error_class("DataDirError") is DataDirError
    assert error_class("SasvError") is SasvError
    assert error_class("ZeroDivisionError") is None


def test_counts_are_checked_when_parsed() -> None:
    """Negative thread or worker counts reached torch and ended in tracebacks; they are option errors."""
    assert non_negative_int("0") == 0 and positive_int("3") == 3
    assert auto_int("auto") is None and auto_int("0") == 0
    for parse, bad in ((non_negative_int, "-1"), (positive_int, "0"), (auto_int, "-2"), (auto_int, "x")):
        with pytest.raises(argparse.ArgumentTypeError, match=f"got '{bad}'"):
            parse(bad)


def test_an_option_error_is_one_line(capsys) -> None:
    p = ArgumentParser(prog="sasv t")
    p.add_argument("--num_workers", type=auto_int, default=None)
    with pytest.raises(SystemExit) as exit_:
        p.parse_args(["--num_workers", "-2"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "ERROR: sasv t: argument --num_workers: expected auto or a whole number >= 0, got '-2' "
        "(see sasv t --help)\n"
    )


def test_a_ctrl_c_dropped_by_a_finaliser_still_ends_the_tool_interrupted(capsys) -> None:
    """Python drops a KeyboardInterrupt raised inside ``__del__`` (a sound file closing) with an "Exception
    ignored" traceback; the tool then ran on to exit 0 (seen once in CI). The interrupt is remembered: one
    ERROR line, exit 130, no traceback."""
    import gc
    import os
    import signal

    from sasv.cli import INTERRUPTED_EXIT, INTERRUPTED_LINE, run_cli

    class ClosesOnCollect:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the finaliser runs

    def tool(argv):
        ClosesOnCollect()
        gc.collect()
        return 0

    assert run_cli(tool, []) == INTERRUPTED_EXIT
    err = capsys.readouterr().err
    assert err.strip() == INTERRUPTED_LINE and "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
