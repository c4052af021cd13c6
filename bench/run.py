"""Benchmark: every engine figure of issue 10 in one run, side by side on this machine.

1. Engines on one model, the lost update (bench/models/lost_update.py: N threads each doing K
   non-atomic increments as a read step and a write step): ptmc, SPIN 6.5 (BFS, no partial-order
   reduction, one ``d_step`` per ptmc step; Debian's ``spin`` is installed when missing) and a
   plain-Python BFS over flat tuples (bench/plain_bfs.py). All three must agree on the states.
2. ptmc's own rows (the reclaim model and the others): states, transitions, states/s, bytes per
   state (peak resident memory over start-up, i.e. above a ``--max-states 1`` run of the same
   configuration), with the exact and the fingerprint store; and the symmetry reduction on and
   off (2b).
3. Rate against state count, 10^4 to 10^7 states (lost update).
4. Each actor of the reclaim model with zap and fault, and every actor at once under a time limit.
5. One process against one and two Ray workers (``--workers``, explore/cluster.py): wall seconds
   of exploration (Ray's start-up apart), the speed-up, and the bytes of states exchanged per state.

Each figure is one process, timed by the operating system (CPU seconds of the finished
process less a start-up run's, its peak RSS). ptmc's rates are states over the seconds its
explorer reports (the exploration alone: a start-up subtracted from a half-second run was
noise of +-40%); SPIN's and the plain BFS's are over their processes' CPU seconds. The runs a
ratio target rests on are timed REPEAT times and the best kept, as timeit does. Targets live
here, never in the unit tests.

    python3 bench/run.py              # everything (about ten minutes)
    python3 bench/run.py --quick      # no 10^7-state row, no large reclaim rows
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PTMC = [sys.executable, "-m", "ptmc", "check"]

PROMELA = """\
byte x;
active [N] proctype inc() {
  byte tmp, k;
end:
  do
  :: d_step { k < K -> tmp = x }
     d_step { x = tmp + 1; k++; if :: k == K -> tmp = 0 :: else -> skip fi }
  od
}
"""

# no_uaf's default run includes khugepaged's retract on a shmem VMA; these rows measure the
# handshake without it (the state space every earlier measurement of these rows had).
ZAP = ["--set", "vma=anon", "--set", "retracts=0"]
# (property, model, settings) rows of ptmc alone.
ROWS = [
    ("no_uaf", "reclaim", ZAP),
    ("no_uaf", "reclaim", [*ZAP, "--set", "split_ptlocks=false"]),
    ("no_uaf", "reclaim", [*ZAP, "--set", "walkers=2"]),
    ("no_uaf", "reclaim", [*ZAP, "--set", "entries=3"]),
    ("no_uaf", "reclaim", [*ZAP, "--set", "gup_fast=1"]),
    ("no_uaf", "reclaim", []),  # the default: with retract
    ("no_uaf", "refcount2021", []),
    ("refcount2022_exact", "refcount2022", []),
]
LARGE = [
    ("no_uaf", "reclaim", [*ZAP, "--set", "faults=2"]),
    ("no_uaf", "reclaim", [*ZAP, "--set", "zaps=2"]),
]
# Section 2b: the symmetry reduction on and off (interchangeable threads of one kind).
SYMMETRY = [([*ZAP, "--set", "walkers=2"], "exact")]
SYMMETRY_LARGE = [([*ZAP, "--set", "faults=2"], "fingerprint"), ([*ZAP, "--set", "zaps=2"], "fingerprint")]

# Section 4: each actor of the reclaim model with zap and fault (walker and reader off), then
# everything at once under a time limit (inconclusive, with its counts, if it does not finish).
ACTOR_BASE = [*ZAP, "--set", "walkers=0", "--set", "readers=0"]
ACTORS = [
    ("walker", ["--set", "walkers=1"]),
    ("reader", ["--set", "readers=1"]),
    ("gup_fast", ["--set", "gup_fast=1"]),
    ("hw_walkers", ["--set", "hw_walkers=1"]),
    ("retract (shmem)", ["--set", "retracts=1", "--set", "vma=shmem"]),
    ("collapse_pte_mapped_thp (shmem)", ["--set", "collapses=1", "--set", "vma=shmem"]),
    ("rmap walker", ["--set", "rmap_walkers=1"]),
    ("anon collapse_huge_page", ["--set", "anon_collapses=1"]),
    ("UFFDIO_MOVE (uffd=wp)", ["--set", "uffd_moves=1", "--set", "uffd=wp"]),
    ("UFFDIO_COPY (uffd=missing)", ["--set", "uffd_copies=1", "--set", "uffd=missing"]),
    ("mremap", ["--set", "mremaps=1"]),
    ("munmap", ["--set", "munmaps=1"]),
    ("pagemap walker + munmap", ["--set", "munmaps=1", "--set", "pagemap_walkers=1"]),
]
# Every actor one anonymous VMA allows at once (UFFDIO_MOVE/COPY need a uffd VMA, which anon
# collapse refuses; mremap excludes munmap and the movers).
EVERYTHING = [*ZAP, "--set", "walkers=1", "--set", "readers=1", "--set", "gup_fast=1", "--set", "rmap_walkers=1",
              "--set", "anon_collapses=1", "--set", "munmaps=1", "--set", "hw_walkers=1"]
EVERYTHING_SECONDS = 600
SCALE = [(3, 3), (3, 4), (4, 3), (4, 4)]  # lost update (N, K): 10^4 ... 10^7 states
# 5: one process against two Ray workers (--workers 2): (label, property file, options)
DISTRIBUTED = [("no_uaf, reclaim, zap fault walker reader", "properties/no_uaf.py", ZAP),
               ("no_uaf, reclaim, default (+ khugepaged retract)", "properties/no_uaf.py", []),
               ("lost update N=4 K=3", "bench/lost_update.py", ["--set", "incrementers=4", "--set", "increments=3"])]
DISTRIBUTED_LARGE = [("lost update N=4 K=4", "bench/lost_update.py",
                      ["--set", "incrementers=4", "--set", "increments=4"])]

# Targets on the reference machine (2 cores, 24 GiB).
TARGETS = {
    "ptmc / SPIN states/s (lost update N=4 K=3)": (">=", 0.25),
    "ptmc / plain-Python states/s (lost update N=4 K=3)": (">=", 0.9),  # aimed at
    "reclaim states/s, over the engine of ede64d9": (">=", 3.0),
    "reclaim bytes/state, fingerprint store": ("<=", 40),
    "speed-up on 2 Ray workers (reclaim + retract, exploration)": (">=", 1.0),  # aimed at
}
REPEAT = 3  # the runs a ratio target rests on are timed this many times, the best kept
BEFORE = "ede64d9"  # the engine the reclaim target compares with, measured side by side
BEFORE_RECLAIM_RATE = 38_500  # its states/s as measured then (36-41 k), when git cannot give it


def before_rate() -> tuple[float, str, str]:
    """The reclaim rate of the engine at BEFORE on its own default run, run now from ``git
    archive`` (or the figure measured then, without git), how it was had, and its states."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(f"git archive {BEFORE} | tar -x -C {tmp}", shell=True, cwd=ROOT,
                                 stderr=subprocess.DEVNULL)
        if archive.returncode != 0 or not Path(tmp, "src", "ptmc").is_dir():
            return BEFORE_RECLAIM_RATE, "as measured then", "31,355"
        cmd = [sys.executable, "-m", "ptmc", "check", str(Path(tmp, "properties", "no_uaf.py")), "--json",
               "--out", tmp + "/out"]
        env = {**os.environ, "PYTHONPATH": str(Path(tmp, "src"))}
        rates = []
        for _ in range(REPEAT):
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp).stdout
            r = json.loads(out)
            rates.append(r["states"] / max(r["seconds"], 1e-3))
        return max(rates), "measured now", f"{r['states']:,}"


def measure(cmd, cwd=ROOT) -> tuple[str, float, float]:
    """Run ``cmd``: its output, CPU seconds (user + sys) and peak RSS in bytes."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    return out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def limited(cmd, seconds: float) -> tuple[dict, float, float]:
    """Run a ptmc ``--json`` command, interrupted (SIGINT: a clean inconclusive end with its
    counts) after ``seconds``: its result, CPU seconds and peak RSS (the largest child's so far,
    which this run is: it runs last)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        out, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(out), cpu, after.ru_maxrss * 1024


def ptmc(prop_file, extra, repeat: int = 1) -> dict:
    """A ptmc check, and the same configuration stopped after one state (start-up); with
    ``repeat``, the least CPU of that many pairs (as timeit: what a shared machine adds is noise)."""
    cmd = [*PTMC, str(prop_file), "--json", "--out", tempfile.gettempdir() + "/ptmc-bench", *extra]
    pairs = []
    for _ in range(repeat):
        out, cpu, rss = measure(cmd)
        _, cpu0, rss0 = measure([*cmd, "--max-states", "1"])
        pairs.append((json.loads(out)["seconds"], max(cpu - cpu0, 1e-3), out, rss, rss0))
    seconds, work, out, rss, rss0 = min(pairs, key=lambda p: p[0])
    r = json.loads(out)
    return {"verdict": r["verdict"], "states": r["states"], "transitions": r["transitions"], "cpu": work,
            "rate": r["states"] / max(seconds, 1e-3), "bytes": max(rss - rss0, 0) / max(r["states"], 1), "rss": rss}


def spin(n: int, k: int) -> dict | None:
    """SPIN's BFS on the same model: states stored and CPU seconds of the verifier run."""
    if shutil.which("spin") is None or shutil.which("gcc") is None:
        print("installing spin and gcc (apt-get) ...", file=sys.stderr)
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spin gcc",
                       shell=True, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if shutil.which("spin") is None:
            return None
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "lu.pml").write_text(f"#define N {n}\n#define K {k}\n" + PROMELA)
        subprocess.run(["spin", "-a", "lu.pml"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["gcc", "-O2", "-DBFS", "-DSAFETY", "-DNOREDUCE", "-DNOCLAIM", "-DMEMLIM=16000",
                        "-o", "pan", "pan.c"], cwd=tmp, check=True, stderr=subprocess.DEVNULL)
        out, cpu, rss = min((measure(["./pan", "-m10000000"], cwd=tmp) for _ in range(REPEAT)), key=lambda m: m[1])
    states = int(next(line for line in out.splitlines() if "states, stored" in line).split()[0])
    return {"states": states, "cpu": cpu, "rate": states / cpu, "bytes": rss / states}


def plain(n: int, k: int) -> dict:
    out, cpu, rss = min((measure([sys.executable, str(BENCH / "plain_bfs.py"), str(n), str(k)])
                         for _ in range(REPEAT)), key=lambda m: m[1])
    states, transitions, _ = out.split()
    return {"states": int(states), "transitions": int(transitions), "cpu": cpu, "rate": int(states) / cpu}


def lost_update(n: int, k: int, store="exact", repeat: int = 1) -> dict:
    return ptmc(BENCH / "lost_update.py", ["--set", f"incrementers={n}", "--set", f"increments={k}",
                                            "--store", store], repeat)


def explored(prop_file, extra) -> dict:
    """A ptmc check's JSON result: its ``seconds`` are the exploration's wall time (a distributed
    run's work is in other processes; starting them is ``startup_seconds``, apart)."""
    cmd = [*PTMC, str(ROOT / prop_file), "--json", "--out", tempfile.gettempdir() + "/ptmc-bench", *extra]
    return json.loads(measure(cmd)[0])


def verdict(name: str, value: float) -> str:
    op, bound = TARGETS[name]
    ok = value >= bound if op == ">=" else value <= bound
    return f"{name}: {value:.2f} (target {op} {bound}) {'ok' if ok else 'MISSED'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10^7-state row and the large rows")
    args = parser.parse_args()
    summary = []
    started = time.monotonic()

    print("## 1. One model, three engines: lost update, N=4 K=3\n")
    print(f"| engine | states | CPU s | states/s | relative to SPIN | bytes/state |")
    print("|---|---|---|---|---|---|")
    s, p, t = spin(4, 3), plain(4, 3), lost_update(4, 3, repeat=REPEAT)
    for name, row in (("SPIN 6.5 BFS, no POR", s), ("plain-Python BFS", p), ("ptmc", t)):
        if row is None:
            print(f"| {name} | (not installed) | | | | |")
            continue
        rel = f"{row['rate'] / s['rate']:.2f}" if s else "-"
        print(f"| {name} | {row['states']:,} | {row['cpu']:.2f} | {row['rate']:,.0f} | {rel} | "
              f"{row.get('bytes', 0):.0f} |", flush=True)
    assert all(r is None or r["states"] == 1_202_507 for r in (s, p, t)), "the engines disagree"
    if s:
        summary.append(verdict("ptmc / SPIN states/s (lost update N=4 K=3)", t["rate"] / s["rate"]))
    summary.append(verdict("ptmc / plain-Python states/s (lost update N=4 K=3)", t["rate"] / p["rate"]))

    print("\n## 2. ptmc rows: exact and fingerprint store\n")
    print("| property | model | settings | verdict | states | transitions | states/s exact | "
          "bytes/state exact | states/s fingerprint | bytes/state fingerprint |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for prop, model, extra in ROWS + ([] if args.quick else LARGE):
        files = [str(ROOT / "properties" / f"{prop}.py"), "--model", str(ROOT / "model" / f"{model}.py")]
        e = ptmc(files[0], [*files[1:], *extra], REPEAT if (prop, model, extra) == ROWS[0] else 1)
        f = ptmc(files[0], [*files[1:], *extra, "--store", "fingerprint"])
        assert (e["states"], e["verdict"]) == (f["states"], f["verdict"]), (prop, model, extra)
        print(f"| {prop} | {model} | {' '.join(extra[1::2]) or 'defaults'} | {e['verdict']} | "
              f"{e['states']:,} | {e['transitions']:,} | {e['rate']:,.0f} | {e['bytes']:.0f} | "
              f"{f['rate']:,.0f} | {f['bytes']:.0f} |", flush=True)
        if (prop, model, extra) == ROWS[0]:
            rate, how, states = before_rate()
            print(f"| (the engine of {BEFORE}, {how}) | reclaim | its defaults | | {states} | | "
                  f"{rate:,.0f} | | | |")
            summary.append(verdict(f"reclaim states/s, over the engine of {BEFORE}", e["rate"] / rate))
            summary.append(verdict("reclaim bytes/state, fingerprint store", f["bytes"]))

    print("\n## 2b. Symmetry reduction (no_uaf on reclaim)\n")
    print("| settings | store | states | states --symmetry | reduction | CPU s | CPU s --symmetry |")
    print("|---|---|---|---|---|---|---|")
    no_uaf = str(ROOT / "properties" / "no_uaf.py")
    for extra, store in SYMMETRY + ([] if args.quick else SYMMETRY_LARGE):
        plain_run = ptmc(no_uaf, [*extra, "--store", store])
        reduced = ptmc(no_uaf, [*extra, "--store", store, "--symmetry"])
        assert plain_run["verdict"] == reduced["verdict"], extra
        print(f"| {' '.join(extra[1::2])} | {store} | {plain_run['states']:,} | {reduced['states']:,} | "
              f"{1 - reduced['states'] / plain_run['states']:.0%} | {plain_run['cpu']:.1f} | {reduced['cpu']:.1f} |",
              flush=True)

    print("\n## 3. Rate against state count (lost update)\n")
    print("| N | K | states | states/s exact | bytes/state exact | states/s fingerprint | bytes/state fingerprint |")
    print("|---|---|---|---|---|---|---|")
    for n, k in SCALE[:-1] if args.quick else SCALE:
        e, f = lost_update(n, k), lost_update(n, k, "fingerprint")
        print(f"| {n} | {k} | {e['states']:,} | {e['rate']:,.0f} | {e['bytes']:.0f} | {f['rate']:,.0f} | "
              f"{f['bytes']:.0f} |", flush=True)

    print("\n## 4. The actors of the reclaim model, each with zap and fault (no_uaf, exact store)\n")
    print("| actor | verdict | states | transitions | CPU s | states/s | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for name, extra in ACTORS:
        r = ptmc(no_uaf, [*ACTOR_BASE, *extra])
        rate = f"{r['rate']:,.0f}" if r["cpu"] >= 0.05 else "-"  # too short a run to time
        print(f"| {name} | {r['verdict']} | {r['states']:,} | {r['transitions']:,} | {r['cpu']:.1f} | "
              f"{rate} | {r['rss'] / 2**20:,.0f} MiB |", flush=True)
    if not args.quick:
        cmd = [*PTMC, no_uaf, "--json", "--out", tempfile.gettempdir() + "/ptmc-bench", *EVERYTHING]
        r, cpu, rss = limited(cmd, EVERYTHING_SECONDS)
        what = " ".join(EVERYTHING[1::2])
        print(f"| everything ({what}), {EVERYTHING_SECONDS} s limit | {r['verdict']} | {r['states']:,} | "
              f"{r['transitions']:,} | {cpu:.1f} | {r['states'] / max(cpu, 1e-3):,.0f} | {rss / 2**20:,.0f} MiB |")

    print("\n## 5. One process against two Ray workers (wall seconds of exploration; Ray's start-up apart)\n")
    print("| run | states | verdict | 1 process s | 1 worker s | 2 workers s | speed-up over 1 process | "
          "over 1 worker | Ray start-up s | bytes exchanged / state |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, prop_file, extra in DISTRIBUTED + ([] if args.quick else DISTRIBUTED_LARGE):
        one = explored(prop_file, extra)
        seconds = [one["seconds"]]
        for n in (1, 2):
            r = explored(prop_file, [*extra, "--workers", str(n)])
            assert (one["verdict"], one["states"], one["transitions"]) == \
                   (r["verdict"], r["states"], r["transitions"]), (label, n)
            seconds.append(max(r["seconds"], 1e-3))
        speedup = seconds[0] / seconds[2]
        print(f"| {label} | {one['states']:,} | {one['verdict']} | {seconds[0]:.1f} | {seconds[1]:.1f} | "
              f"{seconds[2]:.1f} | {speedup:.2f} | {seconds[1] / seconds[2]:.2f} | {r['startup_seconds']:.1f} | "
              f"{r['exchanged_bytes'] / max(r['states'], 1):.0f} |", flush=True)
        if (label, prop_file, extra) == DISTRIBUTED[1]:
            summary.append(verdict("speed-up on 2 Ray workers (reclaim + retract, exploration)", speedup))

    print("\n## Targets\n")
    for line in summary:
        print(f"- {line}")
    print(f"\n({time.monotonic() - started:.0f} s)")
    sys.exit(1 if any(line.endswith("MISSED") for line in summary) else 0)


if __name__ == "__main__":
    main()
