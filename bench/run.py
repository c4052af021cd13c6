"""Benchmark: states, transitions, states per second and peak memory of each model.

Each configuration runs as its own `ptmc check --json` process, so peak memory (max RSS) is
that run's alone. Speed and memory targets live here, never in the unit tests.

    python3 bench/run.py            # the default configurations (about a minute)
    python3 bench/run.py --large    # plus multi-thread configurations (tens of minutes)
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT = [
    ("no_uaf", "refcount2021", []),
    ("no_uaf", "refcount2021", ["--set", "split_ptlocks=false"]),
    ("refcount2022_exact", "refcount2022", []),
    ("no_uaf", "reclaim", []),
    ("no_uaf", "reclaim", ["--set", "split_ptlocks=false"]),
    ("no_uaf", "reclaim", ["--set", "walkers=2"]),
    ("no_uaf", "reclaim", ["--set", "entries=3"]),
    ("no_uaf", "reclaim", ["--set", "gup_fast=1"]),
]
# Targets on the reference machine (2 cores, 24 GiB): exploration seconds and peak MiB. The
# default configuration of the main job must stay interactive; the others must fit CI.
TARGETS = {
    ("no_uaf", "reclaim", ()): (5, 200),
    ("no_uaf", "reclaim", ("--set", "walkers=2")): (20, 400),
    ("no_uaf", "reclaim", ("--set", "gup_fast=1")): (30, 600),
    ("no_uaf", "reclaim", ("--set", "zaps=2")): (600, 8192),
}
LARGE = [
    ("no_uaf", "reclaim", ["--set", "readers=0", "--set", "faults=2"]),
    ("no_uaf", "reclaim", ["--set", "readers=0", "--set", "zaps=2"]),
    ("no_uaf", "reclaim", ["--set", "faults=2"]),
    ("no_uaf", "reclaim", ["--set", "zaps=2"]),
]


def run(prop, model, extra):
    cmd = [sys.executable, "-m", "ptmc", "check", f"properties/{prop}.py",
           "--model", f"model/{model}.py", "--json", "--out", "/tmp/ptmc-bench", *extra]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    result = json.loads(out)
    return result, wall, usage.ru_maxrss / 1024  # KiB -> MiB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also the multi-thread configurations")
    args = parser.parse_args()
    rows = DEFAULT + (LARGE if args.large else [])
    missed = False
    print(f"{'property':<20} {'model':<13} {'settings':<28} {'verdict':<9} {'states':>10} "
          f"{'transitions':>12} {'explore s':>9} {'states/s':>9} {'peak MiB':>9}  target")
    for prop, model, extra in rows:
        r, wall, mib = run(prop, model, extra)
        settings = " ".join(extra[1::2]) or "defaults"
        rate = r["states"] / max(r["seconds"], 1e-9)
        target = TARGETS.get((prop, model, tuple(extra)))
        verdict = "" if target is None else (
            "ok" if r["seconds"] <= target[0] and mib <= target[1] else f"MISSED ({target[0]} s, {target[1]} MiB)")
        missed |= verdict.startswith("MISSED")
        print(f"{prop:<20} {model:<13} {settings:<28} {r['verdict']:<9} {r['states']:>10,} "
              f"{r['transitions']:>12,} {r['seconds']:>9.2f} {rate:>9,.0f} {mib:>9.0f}  {verdict}", flush=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
