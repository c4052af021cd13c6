"""What ends a run early but honestly: memory, and the signals that ask ptmc to stop.

Exploration keeps every state in memory, so a large instance would otherwise end in the
kernel's OOM killer (no output at all) or a MemoryError deep inside a dict resize. Instead the
explorer calls a ``MemoryLimit`` as it goes and stops as inconclusive, with the counts reached,
while there is still room to print them. SIGTERM is made to raise KeyboardInterrupt, so a
``kill`` takes the same path as Ctrl-C: inconclusive, with what was explored.

Stdlib only: ``install()`` runs before the heavy imports (networkx, z3).
"""
from __future__ import annotations

import os
import re
import resource
import signal
import time
from pathlib import Path

SHARE = 0.8  # of what the process may use: the rest is for the report and the interpreter
INTERVAL = 0.05  # seconds between two looks at /proc/self/statm (a fast run grows ~10 MB in 0.2 s)
_PAGE = os.sysconf("SC_PAGE_SIZE")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_reserve: list = []  # given back on MemoryError, so that the report can still be printed


def install() -> None:
    """Process-wide set-up for the ``ptmc`` command (not for ptmc used as a library)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    _reserve.append(bytearray(8 << 20))


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def release_reserve() -> None:
    _reserve.clear()


def parse_size(text: str) -> int:
    """``800M``, ``2G``, ``1.5GiB``, ``123456`` (bytes); units are powers of 1024."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 800M, 2G)")
    size = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if size <= 0:
        raise ValueError(f"{text!r} is not a positive size")
    return size


def show_size(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def available() -> int | None:
    """What the process may really use: the least of physical memory, the cgroup's limit and
    RLIMIT_AS (None when nothing is known)."""
    known = [os.sysconf("SC_PHYS_PAGES") * _PAGE, *_cgroup_limits(), _rlimit_as()]
    known = [n for n in known if n]
    return min(known) if known else None


def _rlimit_as() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def _cgroup_limits() -> list[int]:
    """memory.max (v2) or memory.limit_in_bytes (v1) of this process's cgroup and its parents."""
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            root, name = Path("/sys/fs/cgroup"), "memory.max"
        elif "memory" in controllers.split(","):
            root, name = Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"
        else:
            continue
        here = Path(path)
        for folder in [here, *here.parents]:
            try:
                text = (root / folder.relative_to("/") / name).read_text().strip()
            except (OSError, ValueError):
                continue
            if text.isdigit() and int(text) < 1 << 60:  # v1 writes "no limit" as ~2^63
                out.append(int(text))
    return out


class MemoryLimit:
    """Called by the explorer every few states; says why to stop, or None. Resident memory is
    held to ``budget`` (default: SHARE of ``available()``) and, under an RLIMIT_AS, the address
    space to SHARE of it (the limit a MemoryError comes from)."""

    def __init__(self, budget: int | None = None):
        total = available()
        self.budget = budget or (int(total * SHARE) if total else None)
        rlimit = _rlimit_as()
        self.address_space = int(rlimit * SHARE) if rlimit else None
        self.rlimit = rlimit
        self._next = 0.0

    def __call__(self) -> str | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + INTERVAL
        try:
            size, resident = (int(n) * _PAGE for n in Path("/proc/self/statm").read_text().split()[:2])
        except OSError:  # not Linux: only MemoryError is left
            return None
        if self.budget and resident >= self.budget:
            return f"memory limit {show_size(self.budget)} reached (resident {show_size(resident)})"
        if self.address_space and size >= self.address_space:
            return (f"memory limit reached (address space {show_size(size)}, "
                    f"{SHARE:.0%} of RLIMIT_AS {show_size(self.rlimit)})")
        return None


def resident() -> int | None:
    """This process's resident memory in bytes (None where /proc is not there)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def peak_resident() -> int | None:
    """The most resident memory this process has used, in bytes (VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return None
