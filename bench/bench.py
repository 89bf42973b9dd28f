#!/usr/bin/env python3
"""Times `instar create` against `qemu-img create` for the same cases.

Runs alternate (instar, qemu-img, instar, ...) so that drifts of the
machine (page cache, CPU frequency) hit both alike; each run creates a new
file in an empty temporary folder, and the file is removed between runs,
outside the timed span. Prints the median wall time of each program per
case and their ratio (instar / qemu-img: below 1 means instar is faster),
with the goal of the project for that kind of case:

- metadata only: instar at most 0.5x qemu-img's time;
- preallocated: instar no slower (at most 1.0x).

Usage: bench.py [--instar PATH] [--qemu-img PATH] [--runs N] [--strict]
       [--dir DIR] [--only SUBSTRING]
--strict exits 1 when a goal is missed; without it the script only reports.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The benchmark table: (name, format, -o options, size, kind, runs).
# kind "metadata" (goal 0.5x) or "prealloc" (goal 1.0x); runs is the
# default number of runs per program (fewer for the 1 GiB writes).
CASES = [
    ("qcow2 1G default", "qcow2", "", "1G", "metadata", 21),
    ("qcow2 1G cluster_size=512", "qcow2", "cluster_size=512", "1G", "metadata", 21),
    ("qcow2 64M preallocation=full", "qcow2", "preallocation=full", "64M", "prealloc", 11),
    ("raw 1G preallocation=full", "raw", "preallocation=full", "1G", "prealloc", 5),
    ("vmdk 1G default", "vmdk", "", "1G", "metadata", 21),
    ("vpc 1G default", "vpc", "", "1G", "metadata", 21),
    ("vhdx 1G default", "vhdx", "", "1G", "metadata", 21),
]

GOALS = {"metadata": 0.5, "prealloc": 1.0}


def create_argv(program, fmt, options, path, size):
    argv = [program, "create", "-q", "-f", fmt]
    if options:
        argv += ["-o", options]
    return argv + [path, size]


def time_one(argv, path):
    """Wall time of one create; the file is removed afterwards, untimed."""
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        )
    os.remove(path)
    return elapsed


def bench_case(instar, qemu, workdir, case, runs):
    name, fmt, options, size, _kind, _ = case
    path = os.path.join(workdir, "bench." + fmt)
    programs = [("instar", instar), ("qemu-img", qemu)]
    times = {label: [] for label, _ in programs}
    # One untimed warm-up each: binaries into the page cache.
    for _label, program in programs:
        time_one(create_argv(program, fmt, options, path, size), path)
    for i in range(runs):
        order = programs if i % 2 == 0 else programs[::-1]
        for label, program in order:
            times[label].append(time_one(create_argv(program, fmt, options, path, size), path))
    return statistics.median(times["instar"]), statistics.median(times["qemu-img"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instar", default="target/release/instar")
    parser.add_argument("--qemu-img", default=shutil.which("qemu-img") or "/usr/bin/qemu-img")
    parser.add_argument("--runs", type=int, default=0, help="runs per program (default: per case)")
    parser.add_argument("--dir", default=None, help="where images are created (default: a temp folder)")
    parser.add_argument("--only", default="", help="only cases whose name contains this")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()

    for program in (args.instar, args.qemu_img):
        if not os.access(program, os.X_OK):
            sys.exit(f"bench: {program} is not an executable (build with `cargo build --release`)")
    version = subprocess.run([args.qemu_img, "--version"], capture_output=True, text=True).stdout
    print(f"instar: {args.instar}")
    print(f"qemu-img: {args.qemu_img} ({version.splitlines()[0] if version else 'unknown version'})")
    print(f"medians of alternating runs; ratio = instar / qemu-img\n")
    header = f"{'case':32} {'runs':>4} {'instar':>10} {'qemu-img':>10} {'ratio':>7}  goal"
    print(header)
    print("-" * len(header))

    missed = 0
    with tempfile.TemporaryDirectory(prefix="instar-bench-", dir=args.dir) as workdir:
        for case in CASES:
            name, _fmt, _opts, _size, kind, default_runs = case
            if args.only and args.only not in name:
                continue
            runs = args.runs or default_runs
            try:
                mine, theirs = bench_case(args.instar, args.qemu_img, workdir, case, runs)
            except RuntimeError as e:
                print(f"{name:32} {runs:>4}   not measured: {e}")
                missed += 1
                continue
            ratio = mine / theirs
            goal = GOALS[kind]
            verdict = "met" if ratio <= goal else "MISSED"
            missed += verdict != "met"
            print(
                f"{name:32} {runs:>4} {mine * 1000:>8.2f}ms {theirs * 1000:>8.2f}ms {ratio:>6.2f}x"
                f"  <= {goal:.1f}x {verdict}"
            )
            sys.stdout.flush()
    if missed:
        print(f"\n{missed} case(s) missed the goal or could not be measured")
    sys.exit(1 if (missed and args.strict) else 0)


if __name__ == "__main__":
    main()
