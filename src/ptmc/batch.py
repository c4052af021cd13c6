"""A batch of independent checks (``ptmc ablate``, ``ptmc matrix``, ``ptmc list --verdicts``),
run in parallel, one per core, with the results in the batch's own order.

Each run is a whole ``ptmc check`` in a worker process: a fresh model and exploration, nothing
shared with the other runs, so running them at once cannot change what any of them finds.
Ctrl-C (or SIGTERM, which the CLI turns into it) stops the batch with what finished.
"""
from __future__ import annotations

import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from . import limits, workflow
from .errors import PtmcError
from .properties import load_property
from .result import INCONCLUSIVE, Result


def properties_of_one_model(property_files, model_path, command: str, noun: str) -> tuple[list, type]:
    """The loaded properties of a batch command (``ablate``: an ablation, ``matrix``: a matrix)
    and the one model class they all check."""
    if not property_files:
        raise PtmcError(f"{command} needs at least one property file")
    props = [load_property(p) for p in property_files]
    models = {model_path or p.model_path for p in props}
    if len(models) != 1 or None in models or "" in models:
        raise PtmcError(f"the properties of one {noun} must check one model (give --model)")
    return props, workflow.load_model_class(models.pop())


@dataclass(frozen=True)
class Run:
    """One check: a property on a model, with ``--set`` values, variants and guards off."""
    property_file: str
    model_path: str | None = None
    settings: tuple = ()  # ((name, value), ...), in the order given
    variants: tuple = ()
    without: tuple = ()

    def label(self) -> str:
        parts = [*self.variants, *(f"without {g}" for g in self.without),
                 *(f"{k}={v}" for k, v in self.settings)]
        return " ".join(parts) or "defaults"


def run_all(runs: list[Run], *, jobs: int | None = None, progress=None, on_result=None,
            stop_on_inconclusive: bool = False) -> tuple[list[Result | None], str]:
    """The result of each run, in ``runs`` order (None for a run that did not finish), and why
    the batch is incomplete ("" when it is not). ``progress(done, total, run, result)`` is
    called as each finishes; ``on_result(run, result)`` too, in the parent (e.g. to write files).
    ``stop_on_inconclusive``: a run that hits a limit stops the batch (a table with a hole is
    not presented as complete)."""
    results: list[Result | None] = [None] * len(runs)
    if not runs:
        return results, ""
    workers = min(jobs or os.cpu_count() or 1, len(runs))
    total = limits.available()
    share = int(total * limits.SHARE / workers) if total else None  # the workers share the memory
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
    pending = {pool.submit(_check, r, share): n for n, r in enumerate(runs)}
    done, reason = 0, ""
    try:
        while pending and not reason:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=pending.get):
                n = pending.pop(future)
                result = results[n] = future.result()
                done += 1
                if on_result:
                    on_result(runs[n], result)
                if progress:
                    progress(done, len(runs), runs[n], result)
                if stop_on_inconclusive and result.verdict == INCONCLUSIVE and not reason:
                    reason = (f"the batch stops after {done} of {len(runs)} runs, at {result.property} "
                              f"{runs[n].label()}: {result.reason}")
    except KeyboardInterrupt:
        reason = f"interrupted after {done} of {len(runs)} runs"
    finally:
        # Stopping takes a moment: a second Ctrl-C (or SIGTERM) must not break it off half-way.
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for future in pending:
                future.cancel()
            if reason and pending:  # runs still going: nobody will read them
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)
    return results, reason


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool on Ctrl-C


def _check(r: Run, max_memory: int | None) -> Result:
    return workflow.check(r.property_file, model_path=r.model_path, settings=dict(r.settings),
                          variants=r.variants, without=r.without, max_memory=max_memory)
