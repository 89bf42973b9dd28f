#!/usr/bin/env python3
"""Fetches qemu's own sample images (tests/qemu-iotests/sample_images/) from
Debian's qemu source package, for the tests of images other writers made
(`tests/lived_in/writers.rs`, docs/compat.md §5.12). `make qemu-matrix`
runs it after .ci/qemu-matrix.py.

The images are qemu's test data (VHDs from Hyper-V, Virtual PC and
disk2vhd, VHDX files from Hyper-V and disk2vhd, a VMware version-3 sparse
VMDK, fuzzer-made images, images of formats instar does not read), kept
bz2-compressed as qemu keeps them. They are never committed: each machine
fetches them once.

Where things go (under `.qemu-matrix/sample-images/`, ignored by git):

- `apt/`: apt's whole configuration, as .ci/qemu-matrix.py writes its own
  (the system's apt is never written; its acquisition settings are copied),
  with deb-src lines for the suites of SUITES.
- `images/`: the files of `tests/qemu-iotests/sample_images/`, as they are
  in the source (`*.bz2`, README, scripts).
- `SOURCE`: which source package they came from, and each file's SHA-256.
- `unavailable`: why there are none (`<reason>` on one line), when no suite
  read offers a qemu source holding them; the tests then skip with that
  reason, even under INSTAR_MATRIX_STRICT.

Only the upstream tarball (`apt-get source --download-only --tar-only`,
checked against the signed Sources index by apt) is downloaded, and only
the sample_images folder is extracted from it; the tarball is removed
afterwards. Idempotent: with `images/` matching SOURCE (or `unavailable`
recorded), no network is used. `--refresh` (or QEMU_MATRIX_REFRESH=1) asks
Debian again. A suite that cannot be read (the network, a bad signature)
while nothing is here fails the run (exit 1): nothing can be concluded.
SAMPLE_IMAGES_SUITES="trixie ..." replaces the suites asked (and implies
--refresh): a test hook to play an archive that moved on.

Usage: sample-images.py [--refresh] | --self-test
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

_spec = importlib.util.spec_from_file_location("qemu_matrix", Path(__file__).resolve().parent / "qemu-matrix.py")
assert _spec and _spec.loader
qm = importlib.util.module_from_spec(_spec)
sys.modules["qemu_matrix"] = qm  # dataclasses look their module up there
_spec.loader.exec_module(qm)

ROOT = Path(__file__).resolve().parent.parent
TOP = ROOT / ".qemu-matrix" / "sample-images"
# Where the images are inside qemu's source tree.
SAMPLES = "tests/qemu-iotests/sample_images/"
# The suites asked for the qemu source package, the first one offering it
# wins: stable first (its source changes least), then oldstable.
SUITES = ["trixie", "bookworm"]


def log(message: str) -> None:
    print(f"sample-images: {message}", flush=True)


# --- what apt prints, and the tarball (pure; --self-test covers them) ------


def parse_source_offers(text: str) -> list[tuple[str, str]]:
    """(version, suite) of each source line of `apt-cache madison qemu`:
    `      qemu | 1:10.0.7+ds-0+deb13u1 | http://deb.debian.org/debian trixie/main Sources`."""
    offers = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 3 and cols[0] == "qemu" and cols[2].endswith(" Sources") and len(cols[2].split()) >= 2:
            offers.append((cols[1], cols[2].split()[1].split("/")[0]))
    return offers


def pick(offers: list[tuple[str, str]], fate: dict[str, str], suites: list[str]) -> tuple[str, str] | None:
    """The (version, suite) to fetch: the newest version of the first
    suite of `suites` that was read and offers qemu."""
    for suite in suites:
        if fate.get(suite) != "ok":
            continue
        versions = [v for v, s in offers if s == suite]
        if versions:
            return qm.newest(versions), suite
    return None


def sample_member(name: str) -> str | None:
    """The file name under `images/` of a tarball member, when the member
    is one of qemu's sample images (`qemu-10.0.2/tests/qemu-iotests/
    sample_images/afl5.img.bz2` -> `afl5.img.bz2`); None otherwise (nested
    folders and odd names too)."""
    top, sep, rest = name.lstrip("./").partition("/")
    if not sep or not top or not rest.startswith(SAMPLES):
        return None
    leaf = rest[len(SAMPLES) :]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", leaf):
        return None
    return leaf


def parse_source_file(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(fields, {file: sha256}) of a SOURCE file."""
    fields, files = {}, {}
    for line in text.splitlines():
        if line.startswith("file: "):
            digest, _, name = line[len("file: ") :].partition(" ")
            files[name] = digest
        elif ": " in line:
            key, value = line.split(": ", 1)
            fields[key] = value
    return fields, files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the run ---------------------------------------------------------------


def fast_path(top: Path) -> bool:
    """Reports and returns True when the images here match SOURCE, or
    their unavailability is recorded. Uses no network."""
    unavailable = top / "unavailable"
    if unavailable.is_file():
        log(f"UNAVAILABLE (recorded): {unavailable.read_text().strip()}; their tests skip")
        return True
    try:
        fields, files = parse_source_file((top / "SOURCE").read_text())
    except OSError:
        return False
    images = top / "images"
    if not files or any(not (images / n).is_file() or sha256(images / n) != d for n, d in files.items()):
        return False
    log(
        f"{len(files)} files from {fields.get('package', '?')} ({fields.get('suite', '?')}),"
        f" as fetched on {fields.get('fetched', '?')}; no network used (--refresh asks Debian again)"
    )
    return True


def extract(tarball: Path, dest: Path) -> list[str]:
    """Extracts qemu's sample images from `tarball` into `dest` (flat,
    regular files only); returns their names."""
    names = []
    with tarfile.open(tarball, mode="r|*") as tar:
        for member in tar:
            leaf = sample_member(member.name)
            if leaf is None or not member.isfile():
                continue
            data = tar.extractfile(member)
            assert data is not None
            (dest / leaf).write_bytes(data.read())
            names.append(leaf)
    return sorted(names)


def full_run(top: Path, suites: list[str]) -> int:
    for tool in ["apt-get", "apt-cache", "apt-config"]:
        if not shutil.which(tool):
            log(f"{tool} is needed (a Debian machine)")
            return 1
    apt = qm.Apt(top / "apt", suites, sources=True)
    log("asking Debian's archive for qemu's source: apt-get update with .qemu-matrix/sample-images/apt/apt.conf")
    fate = apt.update()
    for suite, f in fate.items():
        if f != "ok":
            qm.warn(f"suite {suite}: {f}")
    offers = parse_source_offers(apt.call("apt-cache", "madison", "qemu", check=False).stdout)
    chosen = pick(offers, fate, suites)
    unread = [s for s, f in fate.items() if f.startswith("failed")]
    if chosen is None:
        if unread:
            log(f"FAILED: no qemu source found, and the suites {', '.join(unread)} could not be read")
            return 1
        return record_unavailable(top, f"no suite of {', '.join(suites)} offers a qemu source package")
    version, suite = chosen
    log(f"qemu {version} ({suite}): downloading its upstream tarball")
    stage = top / ".stage"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "images").mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="work-", dir=top) as tmp:
        work = Path(tmp)
        if os.geteuid() == 0:
            try:  # as root apt downloads as _apt: let it write here
                os.chown(work, pwd.getpwnam("_apt").pw_uid, -1)
            except KeyError:
                pass
        apt.call("apt-get", "source", "--download-only", "--tar-only", f"qemu={version}", cwd=work)
        tarballs = sorted(p for p in work.iterdir() if ".orig.tar." in p.name)
        if len(tarballs) != 1:
            log(f"FAILED: expected one upstream tarball, found {[p.name for p in work.iterdir()]}")
            return 1
        names = extract(tarballs[0], stage / "images")
        tarball = tarballs[0].name
    if not any(n.endswith(".bz2") for n in names):
        shutil.rmtree(stage, ignore_errors=True)
        return record_unavailable(top, f"Debian's qemu {version} ({suite}, {tarball}) holds no {SAMPLES}")
    (stage / "SOURCE").write_text(
        f"package: qemu {version}\n"
        f"suite: {suite}\n"
        f"tarball: {tarball}\n"
        f"from: {SAMPLES}\n"
        f"fetched: {qm.now()}\n"
        + "".join(f"file: {sha256(stage / 'images' / n)} {n}\n" for n in names)
    )
    for old in ["images", "SOURCE", "unavailable"]:
        path = top / old
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (stage / "images").rename(top / "images")
    (stage / "SOURCE").rename(top / "SOURCE")
    shutil.rmtree(stage, ignore_errors=True)
    log(f"{len(names)} files from qemu {version} ({suite}) into .qemu-matrix/sample-images/images/")
    return 0


def record_unavailable(top: Path, reason: str) -> int:
    """Records that the images cannot be had; their tests skip. Exit 0: a
    change in Debian's archive does not fail CI."""
    (top / "unavailable").write_text(f"{reason} (`make qemu-matrix` checked on {qm.now()[:10]})\n")
    log(f"UNAVAILABLE: {reason}; their tests skip")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refresh", action="store_true", help="ask Debian's archive again")
    ap.add_argument("--self-test", action="store_true", help="run this script's own tests (.ci/sample_images_tests.py)")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    suites = os.environ.get("SAMPLE_IMAGES_SUITES", "").split() or SUITES
    refresh = args.refresh or os.environ.get("QEMU_MATRIX_REFRESH", "") not in ("", "0") or suites != SUITES
    TOP.mkdir(parents=True, exist_ok=True)
    with open(TOP / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in [*TOP.glob(".stage"), *TOP.glob("work-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        if not refresh and fast_path(TOP):
            return 0
        try:
            return full_run(TOP, suites)
        except (qm.Failure, OSError, subprocess.SubprocessError, tarfile.TarError) as e:
            log(f"FAILED: {e}")
            return 1


def self_test() -> int:
    """Runs the tests in sample_images_tests.py beside this file, quietly."""
    return qm.run_tests_beside("sample_images_tests", "sample-images.py", "checks of its parsers")

if __name__ == "__main__":
    sys.exit(main())
