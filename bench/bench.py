#!/usr/bin/env python3
"""Times instar against qemu-img on the same commands, and their peak memory.

Runs alternate (instar, qemu-img, instar, ...) so that drifts of the
machine (page cache, CPU frequency) hit both alike. A `create` case makes a
new file in an empty temporary folder each run, removed between runs
outside the timed span; an `info` or `check` case reads one image that
qemu-img made once, untimed, before the runs. Prints, per case, the median
wall time of each program, their ratio (instar / qemu-img: below 1 means
instar is faster), each program's peak resident memory (one more run each
under GNU time, /usr/bin/time, when installed), and the goal of the project for that kind of case:

- create, metadata only: instar at most 0.5x qemu-img's time;
- create, preallocated: instar no slower (at most 1.0x);
- info and check (reading an image): instar no slower (at most 1.0x);
- map of a large fragmented-metadata image: at most 0.5x qemu-img's time,
  and a peak resident memory below 64 MiB.
- compare of two 2 GiB images with 1 GiB of data each: at most 0.7x.
- measure, of a size and of a 20 GiB metadata-preallocated qcow2: at most
  0.5x, peak resident memory below 64 MiB.
- convert of a cloud image (a minimal Debian root file system in a 2 GiB
  ext4 raw image, made once with debootstrap and mkfs.ext4 -d and cached,
  see cloud_image): compressed qcow2 to raw at most 0.5x; raw to qcow2,
  raw to compressed qcow2, streamOptimized vmdk to raw and vhdx to qcow2
  at most 0.7x; peak resident memory below 64 MiB, also for a 20 GiB
  source, which must be no slower than qemu-img (1.0x): its 1.25 GiB of
  data make it a measure of the kernel's writes into one file, which
  neither program can spread over cores (docs/compat.md §11.4).

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

# The benchmark table: (name, command, format, -o options, size, kind, runs).
# command "create" times the create itself; "info", "check" and
# "info-json" time that command on an image `qemu-img create -f format -o
# options` made beforehand (size: its virtual size). kind names the goal;
# runs is the default number of runs per program (fewer for long cases).
CASES = [
    ("qcow2 1G default", "create", "qcow2", "", "1G", "metadata", 21),
    ("qcow2 1G cluster_size=512", "create", "qcow2", "cluster_size=512", "1G", "metadata", 21),
    ("qcow2 64M preallocation=full", "create", "qcow2", "preallocation=full", "64M", "prealloc", 11),
    ("raw 1G preallocation=full", "create", "raw", "preallocation=full", "1G", "prealloc", 5),
    ("vmdk 1G default", "create", "vmdk", "", "1G", "metadata", 21),
    ("vpc 1G default", "create", "vpc", "", "1G", "metadata", 21),
    ("vhdx 1G default", "create", "vhdx", "", "1G", "metadata", 21),
    # Reading: the metadata a check walks grows with the table sizes, so
    # the large cases are preallocated metadata (every L2 table, every
    # refcount block present) and the format limits.
    ("info qcow2 1G", "info", "qcow2", "", "1G", "read", 21),
    ("info --output=json vhdx 1G", "info-json", "vhdx", "", "1G", "read", 21),
    ("check qcow2 1G", "check", "qcow2", "", "1G", "read", 21),
    ("check qcow2 64G prealloc=metadata", "check", "qcow2", "preallocation=metadata", "64G", "read", 5),
    ("check qcow2 1P cluster_size=2M", "check", "qcow2", "cluster_size=2M", "1P", "read", 5),
    ("check vmdk 2T", "check", "vmdk", "", "2T", "read", 11),
    ("check vhdx 64T", "check", "vhdx", "", "64T", "read", 11),
    ("info vpc 2040G", "info", "vpc", "", "2040G", "read", 21),
    # An image with SNAPSHOTS internal snapshots (made by qemu-img).
    ("info qcow2 1G 200 snapshots", "info", "qcow2", "", "1G", "read", 11),
    ("snapshot -l qcow2 1G 200 snapshots", "snapshot", "qcow2", "", "1G", "read", 11),
    # A lived-in image (see make_lived_in): persistent dirty bitmaps with
    # set bits, compressed, zero and discarded clusters.
    ("info qcow2 1G lived-in", "info", "qcow2", "", "1G", "read", 21),
    ("check qcow2 1G lived-in", "check", "qcow2", "", "1G", "read", 21),
    # A LUKS volume, read without its key (the secret makes it only).
    ("info luks 1G", "info", "luks", "key-secret=sec0,iter-time=10", "1G", "read", 21),
    # Every cluster of 20 GiB allocated in metadata (5 Mi L2 entries of 4
    # KiB clusters, all at consecutive host offsets, none written): the
    # walk asks about every L2 table and the host file's holes.
    ("map json qcow2 20G 4k prealloc", "map-json", "qcow2",
     "cluster_size=4k,preallocation=metadata", "20G", "map", 5),
    # compare: two 2 GiB images with 1 GiB of data each (see make_pair),
    # the same data, or different data in the last cluster.
    ("compare raw 2G identical", "compare", "raw", "identical", "2G", "compare", 5),
    ("compare raw 2G last cluster differs", "compare", "raw", "last-cluster", "2G", "compare", 5),
    ("compare qcow2 2G identical", "compare", "qcow2", "identical", "2G", "compare", 5),
    ("compare qcow2 2G last cluster differs", "compare", "qcow2", "last-cluster", "2G", "compare", 5),
    # measure: a size only (arithmetic), and an image whose every cluster
    # is allocated in metadata (the walk asks about every L2 table and
    # the host file's holes), for a qcow2 target.
    ("measure --size qcow2 1T", "measure-size", "qcow2", "", "1T", "measure", 21),
    ("measure qcow2 20G prealloc=metadata", "measure", "qcow2",
     "preallocation=metadata", "20G", "measure", 11),
    ("measure qcow2 20G 4k prealloc=metadata", "measure", "qcow2",
     "cluster_size=4k,preallocation=metadata", "20G", "measure", 5),
    # convert: (name, "convert", target format, extra arguments, source
    # kind, kind, runs); the sources are made from the cached cloud image
    # (see convert_source).
    # The fast cases take more runs: their medians are tens of
    # milliseconds, where the page cache's moods show.
    ("convert cloud qcow2 -c to raw", "convert", "raw", "", "qcow2-c", "convert-inflate", 7),
    ("convert cloud raw to qcow2", "convert", "qcow2", "", "raw", "convert", 11),
    ("convert cloud raw to qcow2 -c", "convert", "qcow2", "-c", "raw", "convert", 3),
    ("convert cloud vmdk stream to raw", "convert", "raw", "", "vmdk-stream", "convert", 5),
    ("convert cloud vhdx to qcow2", "convert", "qcow2", "", "vhdx", "convert", 7),
    ("convert 20G qcow2 to qcow2", "convert", "qcow2", "", "qcow2-20G", "convert-large", 5),
]

GOALS = {
    "metadata": 0.5, "prealloc": 1.0, "read": 1.0, "map": 0.5, "compare": 0.7, "measure": 0.5,
    "convert-inflate": 0.5, "convert": 0.7, "convert-large": 1.0,
}

# Peak resident memory goals (KiB) of instar, by kind.
MEMORY_GOALS = {
    "map": 64 * 1024, "compare": 64 * 1024, "measure": 64 * 1024,
    "convert-inflate": 64 * 1024, "convert": 64 * 1024, "convert-large": 64 * 1024,
}

# Where the cloud image is kept between runs (making it takes minutes).
CLOUD_CACHE = os.environ.get(
    "INSTAR_BENCH_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "instar-bench"))
# The Debian release and mirror debootstrap installs from.
CLOUD_SUITE = "bookworm"
CLOUD_MIRROR = "http://deb.debian.org/debian"
CLOUD_SIZE = "2G"


# The secret an encrypted image is made with (`key-secret=sec0`).
SECRET = ["--object", "secret,id=sec0,data=bench"]


def create_argv(program, fmt, options, path, size):
    argv = [program, "create", "-q"]
    if "key-secret=" in options:
        argv += SECRET
    argv += ["-f", fmt]
    if options:
        argv += ["-o", options]
    return argv + [path, size]


# How many internal snapshots the snapshot cases' image holds.
SNAPSHOTS = 200


def make_lived_in(qemu, path):
    """Makes the image at `path` live: three bitmaps (4 KiB and 64 KiB
    granularity, one disabled), then qemu-io (beside qemu-img) writes 32
    MiB of plain data, 16 MiB of compressed clusters, zero and discarded
    ranges, and one bitmap is merged into the disabled one."""
    qemu_io = os.path.join(os.path.dirname(qemu), "qemu-io")
    run_one([qemu, "bitmap", "--add", "-g", "4k", path, "fine"])
    run_one([qemu, "bitmap", "--add", path, "coarse"])
    run_one([qemu, "bitmap", "--add", "--disable", path, "merged"])
    writes = ["write -P 1 0 32M", "write -c -P 2 64M 16M", "write -z 100M 8M", "discard 8M 4M"]
    run_one([qemu_io] + [arg for w in writes for arg in ("-c", w)] + [path])
    run_one([qemu, "bitmap", "--merge", "fine", path, "merged"])


def make_pair(qemu, fmt, variant, a, b, size):
    """The two images of a compare case, made by qemu-img and qemu-io
    (beside it): `size` bytes each, 1 GiB of data from offset 0 and one
    64 KiB cluster of data at the end; with `last-cluster` the second
    image's last cluster holds other bytes."""
    qemu_io = os.path.join(os.path.dirname(qemu), "qemu-io")
    for path, last in ((a, 2), (b, 3 if variant == "last-cluster" else 2)):
        run_one(create_argv(qemu, fmt, "", path, size))
        end = int(size[:-1]) << {"M": 20, "G": 30}[size[-1]]
        writes = ["write -P 1 0 1G", f"write -P {last} {end - 65536} 64k"]
        run_one([qemu_io, "-f", fmt] + [arg for w in writes for arg in ("-c", w)] + [path])


def cloud_image():
    """The cloud image, made once and cached in CLOUD_CACHE: a minimal
    Debian root file system (debootstrap --variant=minbase, as root) in a
    2 GiB ext4 raw image (mkfs.ext4 -d)."""
    raw = os.path.join(CLOUD_CACHE, "cloud.raw")
    if os.path.exists(raw):
        return raw
    os.makedirs(CLOUD_CACHE, exist_ok=True)
    for tool in ("debootstrap", "mkfs.ext4"):
        if not shutil.which(tool):
            raise RuntimeError(f"the cloud image needs {tool} (apt-get install debootstrap e2fsprogs)")
    root = tempfile.mkdtemp(prefix="rootfs-", dir=CLOUD_CACHE)
    try:
        run_one(["debootstrap", "--variant=minbase", CLOUD_SUITE, root, CLOUD_MIRROR])
        partial = raw + ".part"
        run_one(["truncate", "-s", CLOUD_SIZE, partial])
        run_one(["mkfs.ext4", "-q", "-F", "-d", root, partial])
        os.rename(partial, raw)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return raw


def convert_source(qemu, kind, workdir):
    """The source of a convert case, made by qemu-img from the cloud image
    (cached beside it, except the 20 GiB one, made in `workdir`)."""
    raw = cloud_image()
    if kind == "raw":
        return raw
    if kind == "qcow2-20G":
        path = os.path.join(workdir, "src20g.qcow2")
        if not os.path.exists(path):
            # The cloud data at the start of a 20 GiB disk, and 1 GiB more
            # at its end: 2 GiB of guest data in a 20 GiB image.
            run_one([qemu, "convert", "-q", "-O", "qcow2", raw, path])
            run_one([qemu, "resize", "-q", path, "20G"])
            qemu_io = os.path.join(os.path.dirname(qemu), "qemu-io")
            run_one([qemu_io, "-c", "write -P 7 19G 1G", path])
        return path
    made = {
        "qcow2-c": ("cloud-c.qcow2", ["-c", "-O", "qcow2"]),
        "vmdk-stream": ("cloud-stream.vmdk", ["-O", "vmdk", "-o", "subformat=streamOptimized"]),
        "vhdx": ("cloud.vhdx", ["-O", "vhdx"]),
    }[kind]
    path = os.path.join(CLOUD_CACHE, made[0])
    if not os.path.exists(path):
        run_one([qemu, "convert", "-q"] + made[1] + [raw, path + ".part"])
        os.rename(path + ".part", path)
    return path


def read_argv(program, command, fmt, path):
    """The argv of a reading case; the format is always named (no probe)."""
    if command == "info-json":
        return [program, "info", "--output=json", "-f", fmt, path]
    if command == "snapshot":
        return [program, "snapshot", "-l", "-f", fmt, path]
    if command == "map-json":
        return [program, "map", "--output=json", "-f", fmt, path]
    if command == "measure":
        return [program, "measure", "-O", fmt, "-f", fmt, path]
    return [program, command, "-f", fmt, path]


# GNU time reports a program's own peak RSS. Python cannot: a child it
# starts inherits its high-water mark (about 15 MB) through fork and exec.
GNU_TIME = "/usr/bin/time"


def run_one(argv, ok=(0,)):
    """Wall time of one run; fails on an exit code not in `ok`."""
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        text = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {text[-1] if text else ''}")
    return elapsed


def peak_rss(argv, ok=(0,)):
    """Peak resident memory (KiB) of one run under GNU time, or None."""
    if not os.access(GNU_TIME, os.X_OK):
        return None
    with tempfile.NamedTemporaryFile(mode="r") as report:
        run_one([GNU_TIME, "-f", "%M", "-o", report.name] + argv, ok)
        return int(report.read().split()[-1])


def time_create(argv, path, measure=run_one):
    """One create; the file is removed afterwards, untimed."""
    measured = measure(argv)
    os.remove(path)
    return measured


def bench_case(instar, qemu, workdir, case, runs):
    """Median wall time and peak RSS (KiB or None) of each program on one case."""
    _name, command, fmt, options, size, _kind, _ = case
    path = os.path.join(workdir, "bench." + fmt)
    other = os.path.join(workdir, "other." + fmt)
    programs = [("instar", instar), ("qemu-img", qemu)]
    if command == "compare":
        make_pair(qemu, fmt, options, path, other, size)

        # Exit 1 is the verdict "different", not a failure.
        def once(program, measure=run_one):
            return measure([program, "compare", "-f", fmt, "-F", fmt, path, other], (0, 1))
    elif command == "convert":
        source = convert_source(qemu, size, workdir)
        extra = options.split()

        def once(program, measure=run_one):
            measured = measure([program, "convert"] + extra + ["-O", fmt, source, path])
            os.remove(path)
            return measured
    elif command == "measure-size":
        def once(program, measure=run_one):
            return measure([program, "measure", "-O", fmt, "--size", size])
    elif command == "create":
        def once(program, measure=run_one):
            return time_create(create_argv(program, fmt, options, path, size), path, measure)
    else:
        # The image both programs read, made once by qemu-img (untimed).
        run_one(create_argv(qemu, fmt, options, path, size))
        if "snapshots" in case[0]:
            for i in range(SNAPSHOTS):
                run_one([qemu, "snapshot", "-c", f"s{i}", path])
        if "lived-in" in case[0]:
            make_lived_in(qemu, path)

        def once(program, measure=run_one):
            return measure(read_argv(program, command, fmt, path))
    times = {label: [] for label, _ in programs}
    try:
        # One untimed warm-up each: binaries and image into the page cache.
        for _label, program in programs:
            once(program)
        for i in range(runs):
            order = programs if i % 2 == 0 else programs[::-1]
            for label, program in order:
                times[label].append(once(program))
        # The memory pass, apart: GNU time's own fork stays out of the timings.
        peaks = {label: once(program, peak_rss) for label, program in programs}
    finally:
        for made in (path, other):
            if os.path.exists(made):
                os.remove(made)
    return (
        (statistics.median(times["instar"]), peaks["instar"]),
        (statistics.median(times["qemu-img"]), peaks["qemu-img"]),
    )


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f}MB"


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
    header = (
        f"{'case':36} {'runs':>4} {'instar':>10} {'qemu-img':>10} {'ratio':>7}  {'goal':14}"
        f" {'instar RSS':>10} {'qemu RSS':>10}"
    )
    print(header)
    print("-" * len(header))

    missed = 0
    with tempfile.TemporaryDirectory(prefix="instar-bench-", dir=args.dir) as workdir:
        for case in CASES:
            name, _command, _fmt, _opts, _size, kind, default_runs = case
            if args.only and args.only not in name:
                continue
            runs = args.runs or default_runs
            try:
                (mine, my_rss), (theirs, their_rss) = bench_case(args.instar, args.qemu_img, workdir, case, runs)
            except RuntimeError as e:
                print(f"{name:36} {runs:>4}   not measured: {e}")
                missed += 1
                continue
            ratio = mine / theirs
            goal = GOALS[kind]
            verdict = "met" if ratio <= goal else "MISSED"
            memory_goal = MEMORY_GOALS.get(kind)
            if memory_goal is not None and (my_rss is None or my_rss >= memory_goal):
                verdict = "MISSED"
            missed += verdict != "met"
            print(
                f"{name:36} {runs:>4} {mine * 1000:>8.2f}ms {theirs * 1000:>8.2f}ms {ratio:>6.2f}x"
                f"  <= {goal:.1f}x {verdict:6} {mib(my_rss):>10} {mib(their_rss):>10}"
            )
            sys.stdout.flush()
    if missed:
        print(f"\n{missed} case(s) missed the goal or could not be measured")
    sys.exit(1 if (missed and args.strict) else 0)


if __name__ == "__main__":
    main()
