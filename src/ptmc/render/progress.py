"""Progress of a long exploration on stderr, as people expect it.

On a terminal one live line, overwritten in place (states, states/s, frontier, depth, memory,
elapsed), then a final summary in its place; in a log (stderr not a terminal) a plain line after
the first second and then one every ten, and the summary. Runs shorter than a second print
nothing: the explorer's first report comes after a second.
"""
from __future__ import annotations

import shutil
import sys

from ..limits import peak_resident, resident, show_size

LOG_INTERVAL = 10.0  # seconds between two lines when stderr is not a terminal


class ProgressLine:
    """The explorer's ``progress`` callback, and ``finish`` for the summary."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.shown = False
        self._last = float("-inf")

    def __call__(self, states, transitions, depth, frontier, seconds):
        if not self.tty and seconds - self._last < LOG_INTERVAL:
            return
        self._last = seconds
        memory = resident()
        text = (f"  {states:,} states  {states / max(seconds, 1e-9):,.0f} states/s  frontier {frontier:,}"
                f"  depth {depth}" + (f"  mem {show_size(memory)}" if memory else "") + f"  {elapsed(seconds)}")
        if self.tty:
            self._write("\r" + text[:shutil.get_terminal_size().columns - 1] + "\x1b[K")
        else:
            self._write(text + "\n")
        self.shown = True

    def finish(self, states=None, transitions=0, depth=0, seconds=0.0) -> None:
        """The summary, after a run that showed progress (in place of the live line); without
        counts, only the live line is cleared."""
        if not self.shown:
            return
        self.shown = False
        if states is None:
            if self.tty:
                self._write("\r\x1b[K")
            return
        peak = peak_resident()
        text = (f"  explored {states:,} states, {transitions:,} transitions, depth {depth} in {elapsed(seconds)}"
                f" ({states / max(seconds, 1e-9):,.0f} states/s"
                + (f", peak memory {show_size(peak)}" if peak else "") + ")")
        self._write(("\r\x1b[K" if self.tty else "") + text + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def elapsed(seconds: float) -> str:
    """``7s``, ``3m05s``, ``2h04m``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
