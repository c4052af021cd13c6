"""Ray vs Dask distributed for ptmc's level-synchronous BFS exchange.

Pattern per level: the coordinator asks each of W=2 worker processes to
produce one `bytes` batch per destination (R records of B=64 bytes, sliced from
an os.urandom pool); every batch goes to its destination worker, which
consumes it ("set": insert each record's 8-byte key into a set, as ptmc would;
"len": only len(), i.e. transport alone) and returns a small summary dict.
W*W batches per level: R=50,000 -> 12.8 MB/level, R=500 -> 0.128 MB/level.
Each framework runs in a fresh interpreter (python bench/exchange.py --child).

Variants:
  ray        2 actors; produce.options(num_returns=W) -> one ObjectRef per
             destination; refs passed as args to the destination actor's
             consume(): the payload goes through the object store, not through
             the driver (driver RSS/CPU do not grow with R). Objects < 100 KB
             are inlined through the owner (the driver) - the small case.
  dask-tasks plain tasks pinned with workers=[addr]; worker state on
             get_worker(); produce -> getitem on the source -> consume on the
             destination (worker->worker transfer, scheduler in the client
             process: its CPU counts as coordinator CPU).
  dask-actor actors; results come back to the client and are sent out again
             (payload passes the coordinator twice: coordinator RSS 160-180 MB).
  dask-push  actors given handles of their peers; an async `step` awaits
             peer.consume(batch) for each destination: worker->worker, the
             coordinator only calls step() and collects summaries.
  local      same produce/consume in one process, no framework (a floor; the
             two workers' consumes run serially here, in parallel elsewhere).

Machine: 2 cores, 24 GiB, Python 3.11.7, ray 2.60.0, distributed 2026.8.0.
Another helper was running its own Ray cluster at the same time (load average
3-3.5 on 2 cores), so the numbers are noisy: ranges are over 3-4 runs of 20
levels each, each cell the median level excluding level 0.

                          | ray            | dask-push     | dask-actor   | dask-tasks  | local
--------------------------+----------------+---------------+--------------+-------------+--------
import (s)                | 0.42-0.68      | 0.36-0.73 (same `import distributed` for all dask)  |
cluster start (s)         | 5.1-6.1 (ray.init; 8.4 under load) | 0.73-2.5 (LocalCluster+Client)   |
2 actors ready (s)        | 0.4-2.1        | 0.05-0.25     | 0.04-0.3     | 0.02-0.17   |
shutdown (s)              | 1.2-1.7        | 0.3-0.95 (client.close + cluster.close)             |
level ms, R=500, len      | 3.0-5.5        | 5.3-7.8       | 7.2-9.8      | 49-51       | 0.05
level ms, R=500, set      | 4.3-7.0        | 6.4-16        | 7.6-23       | 47-88       | 0.5
level ms, R=50k, len      | 41-51          | 48-70         | 64-114       | 62-125      | 8-9
level ms, R=50k, set      | 109-133        | 179-256       | 172-292      | 136-346     | 71-110
MB/s, R=50k, len          | 250-312        | 180-264       | 110-200      | 100-208     | 1400
MB/s, R=50k, set          | 96-117         | 50-72         | 44-75        | 37-94       | 117-180
coord CPU ms/level, 50k   | 4-7            | 5-15          | 31-48        | 24-48       |
coord peak RSS (MB)       | 97-100         | 62            | 160-181      | 66-67       |
worker peak RSS MB, 50k   | 200-280 (shm pages) | 171-195  | 83-93        | 88-103      |
stray output, defaults    | 2 stderr lines | none (LocalCluster silence_logs defaults to WARN)   |
stray output, quiet opts  | none           | none                                                |
leftovers after shutdown  | none           | none                                                |
driver SIGKILLed          | most gone <8 s; DashboardAgent + RuntimeEnvAgent orphaned, gone by ~25 s | all gone <8 s |
fresh venv `pip install`  | 11.7 s, 285 MB, 21 pkgs (ray/ alone 240 MB) | 5.8 s, 70 MB, 24 pkgs (dask 17 + distributed 8 MB) |

Stray output and how to silence it:
  ray:  "WARNING authentication_token_setup.py:85 -- Token authentication is
        enabled ..." and "INFO worker.py:2038 -- Started a local Ray instance."
        on stderr (plus a first-run INFO that it saved /root/.ray/auth_token).
        ray.init(logging_level=logging.ERROR, log_to_driver=False) removes
        both; log_to_driver=False also stops workers' print()s being copied to
        the driver with a "(Node pid=...)" prefix. Ray leaves
        /tmp/ray/session_* directories (~250 KB each) behind.
  dask: LocalCluster is silent by default; silence_logs=logging.ERROR to be
        sure; dashboard_address=None avoids the dashboard and its "Port 8787 is
        already in use" warning. processes=True needs the
        `if __name__ == "__main__":` guard (workers are spawned), else every
        worker dies with a traceback. `dask scheduler`/`dask worker` CLIs log
        INFO lines to stderr (24 + 34 lines here).

Existing clusters and shipping code (tried here on 127.0.0.1):
  ray:  `ray start --head --port=6390 --num-cpus=2 --include-dashboard=false`
        (5.3 s); ray.init(address="auto") connects in 1.6 s;
        runtime_env={"py_modules": ["/path/mod.py"]} (or "working_dir") ships
        code: first task 1.5 s; `ray stop` leaves nothing. address="ray://h:10001"
        (Ray Client) needs `pip install "ray[client]"`: the bare install has no grpc.
  dask: `dask scheduler --host 127.0.0.1 --port 8786` and
        `dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1`;
        Client("tcp://127.0.0.1:8786") connects in 0.02 s;
        client.upload_file("mod.py") ships a module (or .zip/.egg) to the workers.

Verdict: Ray. It moves the large batches fastest (41-51 ms vs 48-70 ms per
12.8 MB level transport-only; 109-133 vs 172-346 ms with the set consume), with
the least coordinator CPU (4-7 ms/level), and its plain pattern (per-destination
ObjectRefs from num_returns=W, passed to the destination actor) is
worker->worker with no custom code. Its costs: 5-6 s to start vs ~1-2 s,
285 MB vs 70 MB installed, two log lines to silence, agents that linger ~20 s
after a SIGKILLed driver. Dask's best pattern is dask-push (async actors
awaiting their peers), close on small batches and within ~20-40% on transport.

Usage:
  python bench/exchange.py [--levels 20] [--records 500,50000] [--rbytes 64]
      [--fw local,ray,dask-tasks,dask-actor,dask-push] [--quiet 0,1]
      [--consume set|len] [--json out.json]
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

W = 2
CONSUME = os.environ.get("XBENCH_CONSUME", "set")  # "set": insert 8-byte keys; "len"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


class Node:
    """The per-worker state: a random pool sliced into batches, and a key set."""

    def __init__(self, idx: int, nworkers: int, records: int, rbytes: int):
        self.idx, self.w, self.r, self.b = idx, nworkers, records, rbytes
        self.pool = os.urandom(records * rbytes * (nworkers + 1))
        self.seen: set = set()
        self.received = 0

    def produce(self, level: int) -> list:
        n = self.r * self.b
        off = (level * 4096 + self.idx * 64) % (len(self.pool) - n * self.w)
        return [self.pool[off + d * n: off + (d + 1) * n] for d in range(self.w)]

    def consume(self, *batches) -> dict:
        b = self.b
        self.seen.clear()
        tot = 0
        for batch in batches:
            tot += len(batch)
            if CONSUME == "len":
                continue
            mv = memoryview(batch)
            self.seen.update(mv[i:i + 8].tobytes() for i in range(0, len(batch), b))
        self.received += tot
        return {"w": self.idx, "bytes": tot, "new": len(self.seen)}

    def stats(self) -> dict:
        return {"pid": os.getpid(), "peak_rss_mb": _peak_rss_mb(),
                "received": self.received}


# ---------------------------------------------------------------- baseline
def run_local(records: list, levels: int, rbytes: int, quiet: bool) -> dict:
    """Same produce/consume in one process, no framework: the floor."""
    out = {"framework": "local", "version": "-", "import_s": 0.0, "init_s": 0.0,
           "cases": [], "shutdown_s": 0.0}
    for R in records:
        nodes = [Node(i, W, R, rbytes) for i in range(W)]
        case = {"R": R, "actors_s": 0.0, "level_ms": []}
        c0 = time.process_time()
        for lv in range(levels):
            t0 = time.perf_counter()
            b = [n.produce(lv) for n in nodes]
            sums = [nodes[d].consume(*[b[s][d] for s in range(W)]) for d in range(W)]
            case["level_ms"].append((time.perf_counter() - t0) * 1e3)
            assert sum(x["bytes"] for x in sums) == W * W * R * rbytes
        case["coord_cpu_s"] = time.process_time() - c0
        case["workers"] = [n.stats() for n in nodes]
        out["cases"].append(case)
    return out


class PushNode(Node):
    """Dask actor that pushes its batches straight to the peer actors.

    `step` is async, so it runs on the worker's event loop and awaits the
    peers' (sync) `consume`, which runs in their actor threads: no deadlock,
    and the payload goes worker->worker without passing the client.
    """

    def set_peers(self, peers) -> int:
        self.peers = peers
        return len(peers)

    async def step(self, level: int) -> list:
        import asyncio
        batches = self.produce(level)
        return list(await asyncio.gather(
            *[self.peers[d].consume(batches[d]) for d in range(self.w)]))


# ---------------------------------------------------------------- Ray
def run_ray(records: list, levels: int, rbytes: int, quiet: bool) -> dict:
    t0 = time.perf_counter()
    import ray
    t_import = time.perf_counter() - t0
    import logging
    kw = dict(num_cpus=W, include_dashboard=False)
    if quiet:
        kw.update(logging_level=logging.ERROR, log_to_driver=False)
    t0 = time.perf_counter()
    ray.init(**kw)
    t_init = time.perf_counter() - t0
    RNode = ray.remote(num_cpus=1)(Node)
    out = {"framework": "ray", "version": ray.__version__, "import_s": t_import,
           "init_s": t_init, "cases": []}
    for R in records:
        t0 = time.perf_counter()
        actors = [RNode.remote(i, W, R, rbytes) for i in range(W)]
        ray.get([a.stats.remote() for a in actors])
        t_actors = time.perf_counter() - t0
        case = {"R": R, "actors_s": t_actors, "level_ms": []}
        c0 = time.process_time()
        for lv in range(levels):
            t0 = time.perf_counter()
            # refs[s][d]: batch from s to d, stored in s's object store
            refs = [a.produce.options(num_returns=W).remote(lv) for a in actors]
            sums = ray.get([actors[d].consume.remote(*[refs[s][d] for s in range(W)])
                            for d in range(W)])
            case["level_ms"].append((time.perf_counter() - t0) * 1e3)
            assert sum(x["bytes"] for x in sums) == W * W * R * rbytes
            del refs
        case["coord_cpu_s"] = time.process_time() - c0
        case["workers"] = ray.get([a.stats.remote() for a in actors])
        for a in actors:
            ray.kill(a)
        out["cases"].append(case)
    try:
        from ray._private.worker import _global_node
        out["ray_session"] = os.path.basename(_global_node.get_session_dir_path())
    except Exception:
        out["ray_session"] = ""
    t0 = time.perf_counter()
    ray.shutdown()
    out["shutdown_s"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- Dask
def _dask_state(idx, R, rbytes):
    from distributed import get_worker
    wk = get_worker()
    st = getattr(wk, "_xnode", None)
    if st is None or st.r != R:
        st = Node(idx, W, R, rbytes)
        wk._xnode = st
    return st


def _d_init(idx, R, rbytes):
    return _dask_state(idx, R, rbytes).stats()


def _d_produce(idx, R, rbytes, level):
    return _dask_state(idx, R, rbytes).produce(level)


def _d_consume(idx, R, rbytes, *batches):
    return _dask_state(idx, R, rbytes).consume(*batches)


def _d_stats(idx, R, rbytes):
    return _dask_state(idx, R, rbytes).stats()


def run_dask(records: list, levels: int, rbytes: int, quiet: bool, mode: str) -> dict:
    t0 = time.perf_counter()
    import distributed
    t_import = time.perf_counter() - t0
    import logging
    import operator
    kw = dict(n_workers=W, threads_per_worker=1, processes=True,
              dashboard_address=None)
    if quiet:
        kw.update(silence_logs=logging.ERROR)
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(**kw)
    client = distributed.Client(cluster)
    t_init = time.perf_counter() - t0
    addrs = sorted(client.scheduler_info()["workers"])
    out = {"framework": "dask-" + mode, "version": distributed.__version__,
           "import_s": t_import, "init_s": t_init, "cases": []}
    for R in records:
        case = {"R": R, "level_ms": []}
        t0 = time.perf_counter()
        if mode == "push":
            actors = [client.submit(PushNode, i, W, R, rbytes, actor=True,
                                    workers=[addrs[i]]).result() for i in range(W)]
            [a.set_peers(actors).result() for a in actors]
        elif mode == "actor":
            actors = [client.submit(Node, i, W, R, rbytes, actor=True,
                                    workers=[addrs[i]]).result() for i in range(W)]
            [a.stats().result() for a in actors]
        else:
            client.gather([client.submit(_d_init, i, R, rbytes, workers=[addrs[i]],
                                         pure=False) for i in range(W)])
        case["actors_s"] = time.perf_counter() - t0
        c0 = time.process_time()
        for lv in range(levels):
            t0 = time.perf_counter()
            if mode == "push":
                sums = [x for f in [a.step(lv) for a in actors] for x in f.result()]
            elif mode == "actor":
                # actor results come back to the client, then go out again
                batches = [f.result() for f in [a.produce(lv) for a in actors]]
                futs = [actors[d].consume(*[batches[s][d] for s in range(W)])
                        for d in range(W)]
                sums = [f.result() for f in futs]
                del batches
            else:
                prod = [client.submit(_d_produce, s, R, rbytes, lv, workers=[addrs[s]],
                                      pure=False) for s in range(W)]
                parts = [[client.submit(operator.getitem, prod[s], d,
                                        workers=[addrs[s]], pure=False)
                          for d in range(W)] for s in range(W)]
                cons = [client.submit(_d_consume, d, R, rbytes,
                                      *[parts[s][d] for s in range(W)],
                                      workers=[addrs[d]], pure=False)
                        for d in range(W)]
                sums = client.gather(cons)
                del prod, parts, cons
            case["level_ms"].append((time.perf_counter() - t0) * 1e3)
            assert sum(x["bytes"] for x in sums) == W * W * R * rbytes, sums
        case["coord_cpu_s"] = time.process_time() - c0
        if mode in ("actor", "push"):
            case["workers"] = [a.stats().result() for a in actors]
            del actors
        else:
            case["workers"] = client.gather([client.submit(
                _d_stats, i, R, rbytes, workers=[addrs[i]], pure=False)
                for i in range(W)])
        out["cases"].append(case)
    t0 = time.perf_counter()
    client.close()
    cluster.close()
    out["shutdown_s"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- driver
def leftovers(res: dict) -> list:
    """Processes of *this* run still alive: its worker pids, and for Ray any
    process whose command line names this run's session (other Ray clusters
    on the machine are not counted)."""
    pids = {w["pid"] for c in res["cases"] for w in c["workers"]}
    tag = res.get("ray_session", "") or "\0"
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    out = []
    for ln in ps.splitlines()[1:]:
        pid, _, args = ln.strip().partition(" ")
        if (pid.isdigit() and int(pid) in pids and int(pid) != os.getpid()) or tag in args:
            out.append(ln.strip()[:120])
    return out


def one(fw: str, quiet: bool, levels: int, records: list, rbytes: int) -> dict:
    """Run one framework in a fresh interpreter; capture its stray output."""
    cmd = [sys.executable, __file__, "--child", fw, str(int(quiet)), str(levels),
           ",".join(map(str, records)), str(rbytes)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = p.stdout.splitlines()
    res = None
    for ln in lines:
        if ln.startswith("@@RESULT "):
            res = json.loads(ln[9:])
    if res is None:
        raise SystemExit(f"{fw} failed rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    stray_out = [ln for ln in lines if not ln.startswith("@@RESULT ")]
    stray_err = p.stderr.splitlines()
    time.sleep(2.0)
    res.update(quiet=quiet, process_wall_s=wall, stray_stdout=stray_out,
               stray_stderr=stray_err)
    res["leftover_procs"] = leftovers(res)
    return res


def child(argv):
    fw, quiet, levels, records, rbytes = argv
    quiet, levels, rbytes = bool(int(quiet)), int(levels), int(rbytes)
    records = [int(x) for x in records.split(",")]
    if fw == "local":
        res = run_local(records, levels, rbytes, quiet)
    elif fw == "ray":
        res = run_ray(records, levels, rbytes, quiet)
    else:
        res = run_dask(records, levels, rbytes, quiet, fw.split("-", 1)[1])
    res["coord_peak_rss_mb"] = _peak_rss_mb()
    res["children_peak_rss_mb"] = _children_peak_mb()
    print("@@RESULT " + json.dumps(res), flush=True)


def summarize(res: dict, rbytes: int) -> list:
    import statistics
    rows = []
    for c in res["cases"]:
        lm = c["level_ms"][1:] or c["level_ms"]
        med = statistics.median(lm)
        mb = W * W * c["R"] * rbytes / 1e6
        rows.append({
            "fw": res["framework"], "quiet": res["quiet"], "R": c["R"],
            "batch_kB": c["R"] * rbytes / 1e3,
            "import_s": round(res["import_s"], 2), "init_s": round(res["init_s"], 2),
            "actors_s": round(c["actors_s"], 2),
            "level_ms_med": round(med, 1), "level_ms_max": round(max(lm), 1),
            "MB_per_level": round(mb, 2), "MB_s": round(mb / (med / 1e3), 1),
            "coord_cpu_ms_per_level": round(c["coord_cpu_s"] * 1e3 / len(c["level_ms"]), 1),
            "coord_peak_rss_mb": round(res["coord_peak_rss_mb"]),
            "worker_peak_rss_mb": [round(w["peak_rss_mb"]) for w in c["workers"]],
            "shutdown_s": round(res["shutdown_s"], 2),
            "stray_lines": (len(res["stray_stdout"]), len(res["stray_stderr"])),
            "leftover": len(res["leftover_procs"]),
        })
    return rows


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--records", default="500,50000")
    ap.add_argument("--rbytes", type=int, default=64)
    ap.add_argument("--fw", default="local,ray,dask-tasks,dask-actor,dask-push")
    ap.add_argument("--quiet", default="0,1")
    ap.add_argument("--json", default="")
    ap.add_argument("--consume", default="set", choices=["set", "len"])
    a = ap.parse_args()
    os.environ["XBENCH_CONSUME"] = a.consume
    records = [int(x) for x in a.records.split(",")]
    allres = []
    for q in [bool(int(x)) for x in a.quiet.split(",")]:
        for fw in a.fw.split(","):
            res = one(fw, q, a.levels, records, a.rbytes)
            allres.append(res)
            for row in summarize(res, a.rbytes):
                print(json.dumps(row), flush=True)
            if res["stray_stdout"] or res["stray_stderr"]:
                print(f"  stray output ({fw}, quiet={q}):")
                for ln in (res["stray_stdout"] + res["stray_stderr"])[:12]:
                    print("   |", ln[:160])
            if res["leftover_procs"]:
                print("  LEFTOVER:", res["leftover_procs"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(allres, f, indent=1)


if __name__ == "__main__":
    main()
