"""Progress of long runs: one live line on a terminal, overwritten in place, then a summary;
plain periodic lines in a log; nothing for a run shorter than the first report."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from ptmc.render.progress import ProgressLine, elapsed


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_line_is_overwritten_in_place_then_summarised():
    tty = Terminal()
    p = ProgressLine(tty)
    p(10_000, 25_000, 12, 800, 1.0)
    p(30_000, 90_000, 20, 1_500, 2.0)
    p.finish(31_355, 98_452, 41, 3.2)
    text = tty.getvalue()
    live, summary = text.rsplit("\r\x1b[K", 1)
    assert "\n" not in live  # every update rewrites the same line
    updates = live.split("\r")[1:]
    assert len(updates) == 2 and all(u.endswith("\x1b[K") for u in updates)
    assert updates[1].startswith("  30,000 states  15,000 states/s  frontier 1,500  depth 20  mem ")
    assert updates[1].endswith("  2s\x1b[K")
    assert summary.startswith("  explored 31,355 states, 98,452 transitions, depth 41 in 3s (9,798 states/s")
    assert "peak memory" in summary and summary.endswith(")\n")


def test_log_gets_a_line_every_ten_seconds_and_the_summary():
    log = io.StringIO()
    p = ProgressLine(log)
    for second in (1, 2, 5, 11, 12, 21.5):
        p(int(second * 1000), int(second * 3000), 3, 10, second)
    p.finish(22_000, 66_000, 9, 22.0)
    lines = log.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["1,000", "11,000", "21,500"]
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert lines[-1].startswith("  explored 22,000 states, 66,000 transitions, depth 9 in 22s")


def test_a_short_run_prints_nothing_and_graph_only_clears_the_line():
    quiet = ProgressLine(Terminal())
    quiet.finish(10, 20, 3, 0.1)
    assert quiet.stream.getvalue() == ""
    tty = Terminal()
    p = ProgressLine(tty)
    p(5, 5, 1, 1, 1.0)
    p.finish()
    assert tty.getvalue().endswith("\r\x1b[K") and "explored" not in tty.getvalue()


@pytest.mark.parametrize("seconds, shown", [(0.4, "0s"), (59.9, "59s"), (185, "3m05s"), (7440, "2h04m")])
def test_elapsed(seconds, shown):
    assert elapsed(seconds) == shown


def test_progress_goes_to_stderr_of_a_real_run():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run([sys.executable, "-m", "ptmc", "check", "properties/no_uaf.py", "--set", "vma=anon",
                        "--set", "retracts=0", "--out", "/dev/null/x"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("no_uaf: HOLDS")
    lines = p.stderr.splitlines()
    if lines:  # a run longer than a second (~1.5 s here): a first line, then the summary
        assert "states/s" in lines[0] and lines[-1].startswith("  explored 47,815 states")
    else:  # a machine fast enough that it never reported
        assert p.stderr == ""
