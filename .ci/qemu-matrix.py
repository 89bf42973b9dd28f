#!/usr/bin/env python3
"""Makes Debian's qemu-img builds runnable beside the system's, without
installing them: `make qemu-matrix` (docs/compat.md §7.1).

Where things go (all under `.qemu-matrix/`, ignored by git):

- `<version>/usr/bin/qemu-img`: a small sh wrapper per qemu-img version,
  `<version>` being what that qemu-img prints (`5.2.0`, `10.0.13`). This is
  where `instar_matrix::qemu::discover` finds it. The system's own qemu-img
  gets one too (it only execs `/usr/bin/qemu-img`).
- `<version>/root/`: the unpacked packages (`apt-get download`, `dpkg-deb
  -x`; never installed). `<version>/SOURCE`: which packages, and how it runs.
- `apt/`: apt's whole configuration (sources, lists, cache, an empty dpkg
  status). The system's apt sources, lists, status, preferences and hooks
  are never written, and only read where said: its acquisition settings
  (proxies, Check-Valid-Until) are copied, and its dpkg status is the base
  of one simulated install (see "How each runs").
- `versions.json`: the record of the last full run; `unavailable`: the
  versions the baselines hold that Debian no longer offers
  (`<version><TAB><reason>` lines, read by tests/util).

Which versions (the selection rule): every suite of SUITES offers at most
one newest `qemu-utils` build; each build is the qemu-img version its
binary prints; per version, the system's qemu-img when it prints that
version, else the newest build printing it. On Debian's archive of 2026-12
that is six versions: 5.2.0 (bullseye-security), 7.2.18 (bookworm-security),
7.2.22 (bookworm), 10.0.2 (the system's, bookworm-backports), 10.0.13
(trixie) and 11.1.3 (sid).

How each runs on the host: apt first simulates installing the build on the
host's own packages (read from /var/lib/dpkg/status, the build's suites
preferred). If that only adds packages the host lacks (bullseye's liburing1
for 5.2.0), those are unpacked beside it and the wrapper sets
LD_LIBRARY_PATH. If it would upgrade the host's packages (trixie's and sid's
builds need a newer glibc), the build's whole Depends closure, libc6
included, is resolved against an empty system, unpacked, and the wrapper
runs qemu-img through that tree's own loader (the one the binary names,
`root/usr/lib64/ld-linux-x86-64.so.2`) with `--library-path`; every library
it loads is checked to come from the tree. Each new copy must print its
version and create, `info` and `check` a qcow2 image before it is kept.

When Debian moves on:
- A copy that works is left alone, even when the archive now has a newer
  build of the same version (a rebuild, `+b4`) or no longer has it at all.
- A version the committed baselines hold (version-map.json) that is neither
  here nor offered is reported, written to `unavailable`, and the run exits
  0: its live tests skip with that reason, even under INSTAR_MATRIX_STRICT,
  and its baselines stay. A change in Debian's archive does not fail CI.
- A version without baselines (a new series, 11.2.0 in sid, say) is unpacked
  and reported as such until `make baselines` records it.
- Failing to install an offered version the baselines hold fails the run
  (exit 1), and so does a missing baseline version while some suite could
  not be read (the network, a bad signature: nothing can be concluded).

Idempotent: when the record of the last full run still holds (every copy it
made works, every baseline version is here or recorded unavailable), no
network is used and nothing changes. `--refresh` (or QEMU_MATRIX_REFRESH=1)
asks Debian again. QEMU_MATRIX_SUITES="bookworm trixie ..." replaces the
list of suites asked: a test hook to play an archive that moved on (a suite
left out, or one that does not exist, as a suite that left the archive).

Usage: qemu-matrix.py [--refresh] | --self-test
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import functools
import json
import os
import pwd
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ROOT / ".qemu-matrix"
VERSION_MAP = ROOT / "testdata/expected-outputs/create-info-json/version-map.json"
SYSTEM_QEMU = Path("/usr/bin/qemu-img")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# The suites asked, in the order they are reported (and preferred, between
# suites offering the very same build). `*-security` suites live in
# debian-security, the others in debian.
SUITES = [
    "bullseye", "bullseye-updates", "bullseye-security",
    "bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports",
    "trixie", "trixie-updates", "trixie-security",
    "sid",
]  # fmt: skip


def suite_uri(suite: str) -> str:
    base = "http://deb.debian.org/debian"
    return base + "-security" if suite.endswith("-security") else base


# The system's apt settings copied into the private configuration: how to
# reach the archive, nothing about what to fetch or what to run.
COPIED_ACQUIRE = re.compile(
    r"^Acquire::(Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6|"
    r"(http|https|ftp)::(Proxy|Timeout|Pipeline-Depth)\S*) "
)

# Folders of an unpacked tree nothing runs from.
UNUSED = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale"]


def log(message: str) -> None:
    print(f"qemu-matrix: {message}", flush=True)


def warn(message: str) -> None:
    print(f"qemu-matrix: warning: {message}", file=sys.stderr, flush=True)


class Failure(Exception):
    """A step that failed, with what to tell."""


def run(cmd, env=None, cwd=None, check=True, timeout=600) -> subprocess.CompletedProcess:
    """Runs `cmd`, stdout and stderr together in `.stdout`; raises Failure
    when `check` and it exits non-zero."""
    out = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
    )
    if check and out.returncode != 0:
        raise Failure(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stdout}")
    return out


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- versions and what apt prints (pure; --self-test covers them) ---------


def version_key(word: str) -> str | None:
    """`5.2` -> `5.2.0`, `10.0.13` -> `10.0.13`, anything else -> None (as
    `instar_matrix::qemu::version_key` spells versions)."""
    parts = word.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    return ".".join(str(int(p)) for p in (parts + ["0"])[:3])


def by_version(versions) -> list[str]:
    """`versions` oldest first."""
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def parse_version_line(text: str) -> str | None:
    """The version in the first line of `qemu-img --version`."""
    m = re.match(r"\s*qemu-img version (\S+)", text)
    return version_key(m.group(1)) if m else None


@functools.cache
def dpkg_newer(a: str, b: str) -> bool:
    """Whether Debian package version `a` sorts after `b`."""
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


def newest(packages: list[str]) -> str:
    best = packages[0]
    for p in packages[1:]:
        if dpkg_newer(p, best):
            best = p
    return best


def parse_madison(text: str) -> list[tuple[str, str]]:
    """(package version, suite) of each binary line of `apt-cache madison`:
    `qemu-utils | 1:11.1.3+ds-1 | http://deb.debian.org/debian sid/main amd64 Packages`."""
    offers = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) == 3 and cols[2].endswith(" Packages") and len(cols[2].split()) >= 2:
            offers.append((cols[1], cols[2].split()[1].split("/")[0]))
    return offers


def parse_update(text: str, suites: list[str]) -> dict[str, str]:
    """Each suite's fate in `apt-get update`'s output (LC_ALL=C): `ok`,
    `gone: <why>` (apt says the archive has no such suite: it left) or
    `failed: <why>` (unreachable, a bad signature, anything else: nothing
    can be concluded about what it offers)."""
    fate = {s: "ok" for s in suites}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        # `E: The repository 'URI SUITE Release' does not have a Release file.`
        # `Err:4 URI SUITE[/main amd64 Packages|InRelease|Release]` + indented why
        # `W: GPG error: URI SUITE InRelease: ...`
        m = re.match(r"(?:E: The repository '|Err:\d+ |W: GPG error: )(\S+) (\S+?)(?:/\S+)?[ ':]", line)
        if not m:
            continue
        suite = m.group(2)
        if suite not in fate or fate[suite].startswith("gone"):
            continue
        if "does not have a Release file" in line:
            fate[suite] = f"gone: {line[3:].strip()}"
            continue
        why = line.split(" ", 1)[1].strip()
        if line.startswith("Err:") and i + 1 < len(lines) and lines[i + 1].startswith(" "):
            why = f"{why}: {lines[i + 1].strip()}"
        if fate[suite] == "ok":
            fate[suite] = f"failed: {why}"
    return fate


INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]+)\] )?\((?P<new>\S+) ")


def parse_sim(text: str) -> list[tuple[str, str | None, str]]:
    """(package, version installed now or None, version to install) of each
    `Inst` line of a simulated `apt-get install`."""
    return [(m["name"], m["old"], m["new"]) for m in map(INST.match, text.splitlines()) if m]


@dataclass
class Build:
    """One qemu-utils build the archive offers."""

    package: str  # its Debian version, 1:10.0.13+ds-0+deb13u1
    suites: list[str] = field(default_factory=list)  # the suites offering it
    version: str | None = None  # what its qemu-img prints, 10.0.13
    deb: Path | None = None


def newest_per_suite(offers: list[tuple[str, str]], suites: list[str]) -> list[Build]:
    """The newest build of each suite, in the order of `suites`; a build
    several suites offer is one Build."""
    per_suite: dict[str, list[str]] = {}
    for package, suite in offers:
        per_suite.setdefault(suite, []).append(package)
    builds: dict[str, Build] = {}
    for suite in suites:
        if suite in per_suite:
            package = newest(per_suite[suite])
            builds.setdefault(package, Build(package)).suites.append(suite)
    return list(builds.values())


def select(builds: list[Build], system: str | None) -> dict[str, Build]:
    """The selection rule: per printed version, the newest build printing it;
    none for the system's version (its qemu-img is used)."""
    groups: dict[str, list[Build]] = {}
    for b in builds:
        if b.version and b.version != system:
            groups.setdefault(b.version, []).append(b)
    chosen = {}
    for version in by_version(groups):
        best = newest([b.package for b in groups[version]])
        chosen[version] = next(b for b in groups[version] if b.package == best)
    return chosen


def judge_missing(
    baselines: list[str], here: set[str], failed: set[str], unread: list[str]
) -> tuple[dict[str, str], list[str]]:
    """(unavailable, errors) for the baseline versions not `here`: a version
    that `failed` to install is already an error; with suites `unread`,
    a missing version is an error (it may be offered there); otherwise
    Debian no longer offers it."""
    unavailable, errors = {}, []
    for version in baselines:
        if version in here or version in failed:
            continue
        if unread:
            errors.append(
                f"qemu-img {version} (baselines) is missing,"
                f" and the suites {', '.join(unread)} could not be read"
            )
        else:
            unavailable[version] = (
                f"Debian no longer offers qemu-img {version} (`make qemu-matrix` checked on {now()[:10]})"
            )
    return unavailable, errors


def elf_interpreter(data: bytes) -> str | None:
    """The loader a 64-bit little-endian ELF executable names (PT_INTERP)."""
    if data[:6] != b"\x7fELF\x02\x01":
        return None
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
    return None


def library_dirs(tree: Path) -> list[str]:
    """The folders of `tree` holding shared libraries (`lib*.so.N`; not
    glibc's gconv modules, nor hwcaps variants), relative to it."""
    return sorted(
        {
            str(p.parent.relative_to(tree))
            for p in tree.rglob("lib*.so.*")
            if "glibc-hwcaps" not in p.parent.relative_to(tree).parts
        }
    )


# --- apt with a configuration of its own ----------------------------------


class Apt:
    def __init__(self, folder: Path, suites: list[str], sources: bool = False):
        """apt configured in `folder` alone, asking `suites` for binary
        packages, or with `sources` for source packages (deb-src)."""
        self.dir = d = folder
        self.suites = suites
        self.arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        for sub in ["lists/partial", "cache/archives/partial"]:
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "status").write_text("")
        kind = f"deb-src [signed-by={KEYRING}]" if sources else f"deb [arch={self.arch} signed-by={KEYRING}]"
        (d / "sources.list").write_text(
            f"# Written by .ci/qemu-matrix.py: the suites it asks for {'qemu' if sources else 'qemu-utils'}.\n"
            + "".join(f"{kind} {suite_uri(s)} {s} main\n" for s in suites)
        )
        copied = [
            line
            for line in run(["apt-config", "dump"], check=False).stdout.splitlines()
            if COPIED_ACQUIRE.match(line)
        ]
        (d / "apt.conf").write_text(
            "// Written by .ci/qemu-matrix.py: apt's whole configuration for the\n"
            "// qemu-img matrix (APT_CONFIG). Nothing of the system's is read but\n"
            "// the acquisition settings copied at the end.\n"
            'Dir::Etc::Parts "/dev/null";\n'
            'Dir::Etc::main "/dev/null";\n'
            f'Dir::Etc::SourceList "{d}/sources.list";\n'
            'Dir::Etc::SourceParts "/dev/null";\n'
            'Dir::Etc::Preferences "/dev/null";\n'
            'Dir::Etc::PreferencesParts "/dev/null";\n'
            f'Dir::State "{d}";\n'
            f'Dir::State::Lists "{d}/lists";\n'
            f'Dir::State::status "{d}/status";\n'
            f'Dir::State::extended_states "{d}/extended_states";\n'
            f'Dir::Cache "{d}/cache";\n'
            'Dir::Cache::pkgcache "";\n'
            'Dir::Cache::srcpkgcache "";\n'
            'Dir::Log "/dev/null";\n'
            f'APT::Architecture "{self.arch}";\n'
            f'APT::Architectures {{ "{self.arch}"; }};\n'
            'APT::Install-Recommends "false";\n'
            'APT::Install-Suggests "false";\n'
            'Debug::NoLocking "true";\n'
            'Acquire::Languages "none";\n'
            'Acquire::GzipIndexes "true";\n' + "".join(line + "\n" for line in copied)
        )

    def call(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Runs an apt command with this configuration."""
        env = {**os.environ, "APT_CONFIG": str(self.dir / "apt.conf"), "LC_ALL": "C"}
        return run(args, env=env, cwd=cwd, check=check)

    def update(self) -> dict[str, str]:
        """`apt-get update`; each suite's fate (parse_update)."""
        out = self.call("apt-get", "update", check=False)
        fate = parse_update(out.stdout, self.suites)
        if out.returncode != 0 and all(f == "ok" for f in fate.values()):
            # Failed, yet no suite named: nothing can be trusted.
            fate = {s: f"failed: apt-get update exited {out.returncode}" for s in fate}
        if any(f.startswith("failed") for f in fate.values()):
            sys.stderr.write(out.stdout)
        return fate

    def offers(self, package: str) -> list[tuple[str, str]]:
        return parse_madison(self.call("apt-cache", "madison", package, check=False).stdout)

    def simulate(self, build: Build, on_host: bool) -> tuple[bool, list[tuple[str, str | None, str]], str]:
        """A simulated `apt-get install qemu-utils=<build>` on the host's
        packages (read only) or on an empty system, the build's release
        (bullseye for bullseye-security) preferred: (whether apt found a
        solution, its Inst lines, what it printed)."""
        release = {s.split("-")[0] for s in build.suites}
        prefs = self.dir / "preferences"
        prefs.write_text(
            "".join(
                f"Package: *\nPin: release n={s}\nPin-Priority: 990\n\n"
                for s in self.suites
                if s.split("-")[0] in release and (not s.endswith("-backports") or s in build.suites)
            )
        )
        status = "/var/lib/dpkg/status" if on_host else self.dir / "status"
        out = self.call(
            "apt-get", "-s", "-o", f"Dir::State::status={status}", "-o", f"Dir::Etc::Preferences={prefs}",
            "install", f"qemu-utils={build.package}", check=False,
        )  # fmt: skip
        return out.returncode == 0, parse_sim(out.stdout), out.stdout

    def download(self, specs: list[str], dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # As root apt downloads as _apt: let it write here.
            try:
                os.chown(dest, pwd.getpwnam("_apt").pw_uid, -1)
            except KeyError:
                pass
        self.call("apt-get", "download", *specs, cwd=dest)


# --- the copies under .qemu-matrix ----------------------------------------


def probe(binary: Path) -> tuple[str | None, str]:
    """(version, first line) of `binary --version`; (None, why) when it
    does not run."""
    try:
        out = run([binary, "--version"], env={**os.environ, "LC_ALL": "C"}, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    first = out.stdout.splitlines()[0] if out.stdout else ""
    return (parse_version_line(first) if out.returncode == 0 else None), first


def read_source(folder: Path) -> dict[str, str]:
    try:
        text = (folder / "SOURCE").read_text()
    except OSError:
        return {}
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def working_copies(top: Path) -> dict[str, dict[str, str]]:
    """The versions under `top` with a SOURCE and a wrapper that runs and
    prints the version its folder is named after: {version: SOURCE}."""
    found = {}
    for folder in sorted(top.iterdir()) if top.is_dir() else []:
        if folder.is_dir() and version_key(folder.name) == folder.name:
            source = read_source(folder)
            if source and probe(folder / "usr/bin/qemu-img")[0] == folder.name:
                found[folder.name] = source
    return found


def qemu_version_of_deb(deb: Path) -> str | None:
    """The version a qemu-utils .deb's qemu-img prints, read from the
    `qemu-img version %s` text in the binary (without running it)."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as p:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            for member in tar:
                if member.name.lstrip("./") == "usr/bin/qemu-img":
                    m = re.search(rb"qemu-img version (\d+\.\d+(?:\.\d+)?)", tar.extractfile(member).read())
                    return version_key(m.group(1).decode()) if m else None
    return None


def write_wrapper(folder: Path, comment: str, body: str) -> Path:
    wrapper = folder / "usr/bin/qemu-img"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        f"# {comment}\n"
        "# Written by `make qemu-matrix` (.ci/qemu-matrix.py); SOURCE beside usr/ says more.\n"
        + ('top=$(dirname "$(readlink -f "$0")")/../..\n' if "$top" in body else "")
        + body
    )
    wrapper.chmod(0o755)
    return wrapper


def write_source(folder: Path, source: dict[str, str]) -> None:
    (folder / "SOURCE").write_text("".join(f"{k}: {v}\n" for k, v in source.items()))


def smoke_test(wrapper: Path, version: str) -> str:
    """The copy prints `version` and can create, `info` and `check` a qcow2;
    returns the first line of its `--version`."""
    printed, line = probe(wrapper)
    if printed != version:
        raise Failure(f"the unpacked qemu-img does not run or is not {version}: {line}")
    with tempfile.TemporaryDirectory(prefix="qemu-matrix-") as tmp:
        image = Path(tmp) / "smoke.qcow2"
        for args in (
            ["create", "-q", "-f", "qcow2", image, "16M"],
            ["info", "--output=json", image],
            ["check", image],
        ):
            out = run([wrapper, *args], env={**os.environ, "LC_ALL": "C"}, check=False, timeout=60)
            if out.returncode != 0:
                raise Failure(f"qemu-img {args[0]} exited {out.returncode}: {out.stdout.strip()}")
    return line


def check_own_libraries(tree: Path, loader: str, path: str) -> None:
    """Every library the unpacked qemu-img loads comes from `tree`."""
    out = run([tree / loader, "--library-path", path, "--list", tree / "usr/bin/qemu-img"])
    outside = [
        line.strip()
        for line in out.stdout.splitlines()
        if (m := re.match(r"\s*\S+ => (\S+)", line))
        and (m.group(1) == "not" or not Path(m.group(1)).resolve().is_relative_to(tree.resolve()))
    ]
    if outside:
        raise Failure("libraries not found in the unpacked tree:\n  " + "\n  ".join(outside))


def install(apt: Apt, build: Build, top: Path, work: Path) -> dict[str, str]:
    """Unpacks `build` and what it needs into top/<version> (replacing what
    was there, once the new copy works); returns its SOURCE."""
    version = build.version
    assert version and build.deb
    ok, plan, text = apt.simulate(build, on_host=True)
    own_loader = not ok or any(old is not None for name, old, _ in plan if name != "qemu-utils")
    if own_loader:
        ok, plan, text = apt.simulate(build, on_host=False)
        if not ok or not any(name == "libc6" for name, _, _ in plan):
            raise Failure(
                f"apt cannot resolve qemu-utils={build.package} with its libc6 on an empty system:\n{text}"
            )
    extra = [f"{name}={new}" for name, _, new in plan if name != "qemu-utils"]
    debs = work / f"debs-{version}"
    if extra:
        apt.download(extra, debs)
    stage = top / f".stage-{version}"
    shutil.rmtree(stage, ignore_errors=True)
    tree = stage / "root"
    tree.mkdir(parents=True)
    for deb in [build.deb, *sorted(debs.glob("*.deb"))]:
        run(["dpkg-deb", "-x", deb, tree])
    for unused in UNUSED:
        shutil.rmtree(tree / unused, ignore_errors=True)
    dirs = library_dirs(tree) if extra else []
    path = ":".join(f"$top/root/{d}" for d in dirs)
    where = f"Debian qemu-utils {build.package} ({build.suites[0]})"
    if own_loader:
        interp = elf_interpreter((tree / "usr/bin/qemu-img").read_bytes()) or ""
        loader = next(
            (c for c in (f"usr{interp}", interp.lstrip("/")) if interp and (tree / c).is_file()), None
        )
        if not loader or not (tree / loader).resolve().is_relative_to(tree.resolve()):
            raise Failure(f"the loader qemu-img names ({interp or 'none'}) is not in the unpacked libc6")
        check_own_libraries(tree, loader, ":".join(str(tree / d) for d in dirs))
        runs = f"its own glibc: root/{loader} --library-path {':'.join(dirs)}"
        # --argv0: qemu-img names itself as invoked in its usage errors
        # ("Try '<argv0> info --help'"), as the system's binary does.
        body = (
            f'exec "$top/root/{loader}" --argv0 "$0" --library-path "{path}" '
            '"$top/root/usr/bin/qemu-img" "$@"\n'
        )
    elif extra:
        names = ", ".join(e.split("=")[0] for e in extra)
        runs = f"the system's libraries and, from root/, {names} (LD_LIBRARY_PATH)"
        body = (
            f'LD_LIBRARY_PATH="{path}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
            "export LD_LIBRARY_PATH\n"
            'exec "$top/root/usr/bin/qemu-img" "$@"\n'
        )
    else:
        runs = "the system's libraries"
        body = 'exec "$top/root/usr/bin/qemu-img" "$@"\n'
    line = smoke_test(
        write_wrapper(stage, f"qemu-img {version}: {where}, unpacked into root/; runs on {runs}.", body),
        version,
    )
    source = {
        "version": version,
        "version_line": line,
        "package": f"qemu-utils {build.package}",
        "suite": build.suites[0],
        "runs": runs,
        "unpacked": " ".join([f"qemu-utils={build.package}", *extra]),
        "installed": now(),
    }
    write_source(stage, source)
    dest, old = top / version, top / f".old-{version}"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    stage.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return source


def install_system(top: Path, version: str, line: str) -> dict[str, str]:
    """The wrapper of the system's qemu-img: top/<version>/usr/bin/qemu-img."""
    folder = top / version
    shutil.rmtree(folder, ignore_errors=True)
    write_wrapper(folder, f"qemu-img {version}: the system's.", f'exec {SYSTEM_QEMU} "$@"\n')
    source = {
        "version": version,
        "version_line": line,
        "package": "the system's",
        "suite": "-",
        "runs": str(SYSTEM_QEMU),
    }
    write_source(folder, source)
    return source


def baseline_versions() -> list[str]:
    """The versions the committed baselines hold (version-map.json)."""
    try:
        return by_version(json.loads(VERSION_MAP.read_text()).get("version_to_profile", {}))
    except (OSError, ValueError):
        return []


def write_unavailable(top: Path, unavailable: dict[str, str]) -> None:
    path = top / "unavailable"
    if not unavailable:
        path.unlink(missing_ok=True)
        return
    path.write_text(
        "# Written by .ci/qemu-matrix.py: qemu-img versions the baselines hold that\n"
        "# Debian no longer offers. Their live tests skip, even under INSTAR_MATRIX_STRICT.\n"
        + "".join(f"{v}\t{r}\n" for v, r in unavailable.items())
    )


def report(copies: dict[str, dict[str, str]], unavailable: dict[str, str], baselines: list[str]) -> None:
    log("the qemu-img versions (docs/compat.md §7.1):")
    for version in by_version(copies):
        s = copies[version]
        where = (
            f"{s['runs']}, the system's"
            if s["package"] == "the system's"
            else f"{s['package']} ({s['suite']}), {s['runs']}"
        )
        print(f"  {version:<8} {where}{'' if version in baselines else '  [no baselines yet]'}")
    for version, reason in unavailable.items():
        print(f"  {version:<8} UNAVAILABLE: {reason}; its baselines stay, its live tests skip")
    new = [v for v in by_version(copies) if v not in baselines]
    if new:
        log(f"versions without baselines: {', '.join(new)} (`make baselines` records them)")


# --- the run --------------------------------------------------------------


def fast_path(top: Path, baselines: list[str]) -> bool:
    """Reports and returns True when the last full run's record still holds:
    every version it set up works, every baseline version is here or
    recorded unavailable. Uses no network."""
    try:
        record = json.loads((top / "versions.json").read_text())
    except (OSError, ValueError):
        return False
    copies = working_copies(top)
    unavailable = record.get("unavailable", {})
    if any(v not in copies for v in record.get("versions", [])) or any(
        v not in copies and v not in unavailable for v in baselines
    ):
        return False
    log(f"as recorded on {record.get('checked', '?')}; no network used (--refresh asks Debian again)")
    report({v: copies[v] for v in record["versions"]}, unavailable, baselines)
    return True


def full_run(top: Path, suites: list[str], baselines: list[str]) -> int:
    for tool in ["apt-get", "apt-cache", "apt-config", "dpkg", "dpkg-deb"]:
        if not shutil.which(tool):
            log(f"{tool} is needed (a Debian machine)")
            return 1
    apt = Apt(top / "apt", suites)
    log("asking Debian's archive: apt-get update with .qemu-matrix/apt/apt.conf")
    fate = apt.update()
    for suite, f in fate.items():
        if f != "ok":
            warn(f"suite {suite}: {f}")
    builds = newest_per_suite([(p, s) for p, s in apt.offers("qemu-utils") if fate.get(s) == "ok"], suites)
    system, system_line = probe(SYSTEM_QEMU) if SYSTEM_QEMU.is_file() else (None, "")
    for source in top.glob("*/SOURCE"):
        if read_source(source.parent).get("package") == "the system's" and source.parent.name != system:
            shutil.rmtree(source.parent)  # the system's qemu-img changed
    copies = working_copies(top)
    errors: list[str] = []
    failed: set[str] = set()
    here: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="work-", dir=top) as tmp:
        work = Path(tmp)
        if builds:
            apt.download([f"qemu-utils={b.package}" for b in builds], work / "qemu-utils")
        for b in builds:
            deb = work / "qemu-utils" / f"qemu-utils_{b.package.replace(':', '%3a')}_{apt.arch}.deb"
            b.deb, b.version = deb, qemu_version_of_deb(deb) if deb.is_file() else None
            if not b.version:
                warn(f"qemu-utils {b.package}: no qemu-img version found in {deb.name}; left out")
        offered = ", ".join(f"{'/'.join(b.suites)} {b.version} ({b.package})" for b in builds) or "nothing"
        log(f"newest qemu-utils per suite: {offered}")
        if system:
            here[system] = copies[system] if system in copies else install_system(top, system, system_line)
        for version, build in select(builds, system).items():
            if version in copies:
                here[version] = copies[version]
                drift = copies[version]["package"] != f"qemu-utils {build.package}"
                log(
                    f"{version}: already here ({copies[version]['package']})"
                    + (f"; the archive now has {build.package}, left alone" if drift else "")
                )
                continue
            log(f"{version}: unpacking qemu-utils {build.package} ({build.suites[0]})")
            try:
                here[version] = install(apt, build, top, work)
            except (Failure, OSError, subprocess.SubprocessError) as e:
                message = f"qemu-img {version} (qemu-utils {build.package}, {build.suites[0]}): {e}"
                if version in baselines:
                    errors.append(message)
                    failed.add(version)
                else:
                    warn(f"{message} (no baselines hold {version}; going on)")
    for version in by_version(copies):
        if version not in here:
            log(f"{version}: not offered by the suites read; the copy here works and stays")
            here[version] = copies[version]
    unread = [s for s, f in fate.items() if f.startswith("failed")]
    unavailable, more = judge_missing(baselines, set(here), failed, unread)
    errors += more
    write_unavailable(top, unavailable)
    record = {
        "checked": now(),
        "suites": fate,
        "offered": {"/".join(b.suites): {"package": b.package, "qemu": b.version} for b in builds},
        "versions": by_version(here),
        "unavailable": unavailable,
    }
    if errors:
        (top / "versions.json").unlink(missing_ok=True)
    else:
        (top / "versions.json").write_text(json.dumps(record, indent=2) + "\n")
    report(here, unavailable, baselines)
    for e in errors:
        log(f"FAILED: {e}")
    return 1 if errors else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--refresh", action="store_true", help="ask Debian's archive again even if nothing is missing"
    )
    ap.add_argument(
        "--self-test", action="store_true", help="run this script's own tests (.ci/qemu_matrix_tests.py)"
    )
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    refresh = args.refresh or os.environ.get("QEMU_MATRIX_REFRESH", "") not in ("", "0")
    suites = os.environ.get("QEMU_MATRIX_SUITES", "").split() or SUITES
    TOP.mkdir(exist_ok=True)
    with open(TOP / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in [*TOP.glob(".stage-*"), *TOP.glob(".old-*"), *TOP.glob("work-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        baselines = baseline_versions()
        if not refresh and suites == SUITES and fast_path(TOP, baselines):
            return 0
        try:
            return full_run(TOP, suites, baselines)
        except (Failure, OSError, subprocess.SubprocessError) as e:
            log(f"FAILED: {e}")
            return 1


def self_test() -> int:
    """Runs the tests in qemu_matrix_tests.py beside this file, quietly."""
    return run_tests_beside(
        "qemu_matrix_tests", "qemu-matrix.py", "checks of its parsers and selection rule"
    )


def run_tests_beside(module_name: str, program: str, what: str) -> int:
    """Runs the unittest module `module_name`.py beside this file, printing
    its report only when a test fails; `program` and `what` word the
    closing line."""
    import importlib.util
    import io
    import unittest

    spec = importlib.util.spec_from_file_location(
        module_name, Path(__file__).resolve().parent / f"{module_name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream).run(
        unittest.defaultTestLoader.loadTestsFromModule(module)
    )
    if not result.wasSuccessful():
        print(stream.getvalue())
        print(f"{program}: its self-test FAILED")
        return 1
    print(f"{program}: self-test ok ({result.testsRun} {what})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
