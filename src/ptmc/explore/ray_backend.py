"""The Ray backend of a distributed exploration: one Ray actor per partition (cluster.py).

Why Ray (bench/exchange.py measures both): a level is an all-to-all exchange of large byte
batches, and Ray hands an object reference made by one actor straight to another actor's
method, which fetches the bytes from the maker's object store (shared memory on one machine)
without the coordinator touching them. The coordinator only gets the small summaries.

``--workers N`` starts a private local Ray instance of N CPUs for the run and shuts it down at
the end; ``--cluster ADDRESS`` joins a running cluster (``ray start --head`` on one machine,
``ray start --address HEAD:6379`` on the others; ADDRESS is ``HEAD:6379`` or ``auto``) and
uses one actor per CPU it offers, or ``--workers N``. Every machine needs the same ptmc and the
same model and property files at the same paths: workers check both (partition.Job).
"""
from __future__ import annotations

import logging
import os
import signal
import socket

from ..errors import PtmcError
from .cluster import WorkerLost
from .partition import Partition


def _ray():
    try:
        import ray
    except ImportError:
        raise PtmcError("distributed runs need Ray: pip install 'ray>=2.9' (or pip install 'ptmc[cluster]')") from None
    return ray


class RayCluster:
    def __init__(self, workers: int | None = None, address: str | None = None):
        self.address, self.requested = address, workers
        self.workers = workers or 0
        self.actors: list = []
        self.exchanged = 0
        self.owned = False  # this run started the Ray instance, and stops it

    def start(self, job) -> None:
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        if self.address and self.address != "auto":
            _reachable(self.address)
            # A cluster started with Ray's token authentication (the default since 2.5x) is
            # reached by address only in token mode ("auto" finds the mode by itself).
            if "RAY_AUTH_MODE" not in os.environ and (
                    "RAY_AUTH_TOKEN" in os.environ or os.path.exists(os.path.expanduser("~/.ray/auth_token"))):
                os.environ["RAY_AUTH_MODE"] = "token"
        ray = _ray()  # (after the environment: Ray reads it when imported)
        # Ray installs its own SIGTERM handler; ptmc's (a kill ends the run as inconclusive,
        # with its counts) is put back.
        sigterm = signal.getsignal(signal.SIGTERM)
        try:
            if self.address:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, logging_level=logging.ERROR,
                         log_to_driver=False, configure_logging=True)
                self.owned = True
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise PtmcError(f"cannot start or reach the Ray cluster{' at ' + self.address if self.address else ''}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        cpus = ray.cluster_resources().get("CPU", 1)
        self.workers = self.requested or max(1, int(cpus))
        # More workers than CPUs share them (an actor asking for a whole CPU would wait forever).
        actor = ray.remote(num_cpus=min(1.0, cpus / self.workers))(Partition)
        self.actors = [actor.remote(job, i, self.workers) for i in range(self.workers)]
        try:
            self._get([a.memory.remote() for a in self.actors])  # every worker built its system
        except WorkerLost:
            raise PtmcError("a Ray worker could not start (see `ray status`)") from None

    def _get(self, refs):
        ray = _ray()
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
            if isinstance(cause, (PtmcError, MemoryError)):
                raise cause from None
            raise PtmcError(f"a worker failed: {str(e).splitlines()[-1]}") from None
        except ray.exceptions.RayActorError:
            raise WorkerLost("a worker died (out of memory, or killed)") from None

    def call(self, method: str, args: list) -> list:
        assert len(args) == self.workers, "one argument tuple (or None) per worker"
        refs = [None if a is None else getattr(actor, method).remote(*a) for actor, a in zip(self.actors, args)]
        got = iter(self._get([r for r in refs if r is not None]))
        return [None if r is None else next(got) for r in refs]

    def level(self, depth: int) -> tuple[list, list]:
        w = self.workers
        # Each actor's expand returns one object per destination (and its summary last); the
        # destination's receive gets them as arguments, fetched from the maker's object store.
        outs = [a.expand.options(num_returns=w + 1).remote(depth) for a in self.actors]
        received = [a.receive.remote(depth, *(out[i] for out in outs)) for i, a in enumerate(self.actors)]
        summaries = self._get([out[w] for out in outs])
        got = self._get(received)
        self.exchanged += sum(s["sent"] for s in summaries)
        return summaries, got

    def stop(self) -> None:
        if not self.actors and not self.owned:
            return
        ray = _ray()
        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self.owned:
            ray.shutdown()
            self.owned = False


def _reachable(address: str) -> None:
    """Fail fast, in one line, on an address nothing listens at (Ray itself retries for
    minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise PtmcError(f"--cluster takes HOST:PORT (the head's GCS port, 6379 by default) or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise PtmcError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None
