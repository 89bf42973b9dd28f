#!/usr/bin/env python3
"""One closing line for a whole `cargo test` run.

`cargo test --workspace` prints a `test result:` line per test binary (and
per crate's doc-tests), two dozen of them; this script adds them up and
ends the output with

    total: 812 passed, 0 failed, 3 skipped

Usage:

    test-summary.py [--summary-file PATH] -- cargo test --workspace ...
    cargo test ... 2>&1 | test-summary.py [--summary-file PATH]
    test-summary.py --self-test

With a command, it runs it with stdout and stderr merged into one pipe
(so the order of cargo's and the test binaries' lines is kept), passes
every line through as it comes, then prints the summary. Its exit status
is the command's, or 1 when the command exited 0 yet a test failed. With
no command it reads such output from stdin and exits 1 when anything
failed. `--summary-file` also writes the closing line to PATH, for a
caller whose own last words come after it (`make` on failure).

What is counted:

- passed: the tests libtest reports as passed, less those that skipped;
- failed: the tests reported failed, plus one per test binary that died
  without a `test result:` line (a crash, an abort), plus one per target
  that could not compile, plus one when the command failed and nothing
  else explains it, so a failing run never closes on `0 failed`;
- skipped: libtest's `ignored` tests, plus every test that printed a line
  `SKIPPED <test path>: <reason>` (the project's skip policy: a qemu-img
  version it needs is not installed), counted once per distinct path in
  each test binary. Such a test returns early and libtest calls it `ok`;
  it is moved from passed to skipped, unless libtest reports it failed.

The lines above the closing line name what failed (as a command that
reruns that one test, when cargo printed how to rerun its binary) and
what skipped, with the reason.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Cargo colours its own labels when CARGO_TERM_COLOR=always (as in the
# GitHub workflow); the parser reads the text without them.
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RUNNING = re.compile(r"^\s*Running (?P<what>.+?)(?: \((?P<binary>[^()]*)\))?$")
DOC_TESTS = re.compile(r"^\s*Doc-tests (?P<crate>\S+)$")
RESULT = re.compile(
    r"^test result: (?:ok|FAILED)\. (?P<passed>\d+) passed; (?P<failed>\d+) failed; "
    r"(?P<ignored>\d+) ignored;"
)
TEST_LINE = re.compile(r"^test (?P<name>.+?) \.\.\. (?P<status>ok|FAILED|ignored)(?:, .*)?$")
# Anywhere in a line, to its end: stdout and stderr share the pipe, and
# libtest writes `test x ... `, its status and the newline separately, so
# another test's SKIPPED line (stderr, one write) can land between them.
SKIPPED = re.compile(r"SKIPPED (?P<path>[\w:]+): (?P<reason>.*)$")
TARGET_FAILED = re.compile(r"^error: test failed, to rerun pass `?(?P<rerun>[^`]+)`?$")
NOT_SUCCESSFUL = re.compile(r"process didn't exit successfully: `[^`]*` \((?P<why>.+)\)$")
NOT_COMPILED = re.compile(r"^error: could not compile `(?P<crate>[^`]+)`(?: \((?P<kind>[^)]+)\))?")
# How many names of failed and of skipped tests are listed above the total.
LIST_AT_MOST = 20


@dataclass
class Target:
    """One test binary's run (or one crate's doc-tests)."""

    label: str
    passed: int = 0
    failed: int = 0
    ignored: int = 0
    has_result: bool = False
    crashed: str | None = None
    # What cargo says to pass to rerun this binary (`-p alpha --lib`), once
    # it has failed.
    rerun: str | None = None
    # Test name -> "ok", "FAILED" or "ignored", from the `test X ... ok` lines.
    status: dict[str, str] = field(default_factory=dict)
    # Distinct SKIPPED test paths -> reason, in order of appearance.
    skips: dict[str, str] = field(default_factory=dict)

    def where(self) -> str:
        """The rerun command when cargo gave one, else the label."""
        return f"cargo test {self.rerun}" if self.rerun else self.label

    def skip_failed(self, path: str) -> bool:
        """Whether the test that printed SKIPPED `path` was reported failed."""
        return any(
            status == "FAILED" and (name == path or name.endswith("::" + path) or path.endswith("::" + name))
            for name, status in self.status.items()
        )


@dataclass
class Summary:
    """The whole run, added up."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    targets: int = 0
    failures: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)

    def closing_line(self) -> str:
        return f"total: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"

    def report(self) -> list[str]:
        """The lines printed at the end, the closing line last."""
        lines = [f"---- summary of {self.targets} test binaries and doc-test runs ----"]
        for word, items in (("FAILED ", self.failures), ("SKIPPED", self.skips)):
            for item in items[:LIST_AT_MOST]:
                lines.append(f"{word} {item}")
            if len(items) > LIST_AT_MOST:
                lines.append(f"{word} ... and {len(items) - LIST_AT_MOST} more")
        lines.append(self.closing_line())
        return lines


class Parser:
    """Reads `cargo test` output (stdout and stderr merged) line by line."""

    def __init__(self) -> None:
        self.build_failures: list[str] = []
        # What comes before the first `Running` line (a SKIPPED line there
        # has no test binary to belong to, but still counts).
        self.current = Target(label="(before any test binary)")
        self.targets: list[Target] = [self.current]

    def feed(self, raw: str) -> None:
        line = ANSI.sub("", raw).rstrip("\r\n")
        if m := SKIPPED.search(line):
            self.current.skips.setdefault(m["path"], m["reason"])
            # What stood before it on the line is parsed as it is.
            line = line[: m.start()]
        if m := RUNNING.match(line):
            self._start(m["what"] + _binary_name(m["binary"]))
        elif m := DOC_TESTS.match(line):
            self._start(f"doc-tests {m['crate']}")
        elif m := RESULT.match(line):
            t = self.current
            t.passed += int(m["passed"])
            t.failed += int(m["failed"])
            t.ignored += int(m["ignored"])
            t.has_result = True
        elif m := TEST_LINE.match(line):
            self.current.status[m["name"]] = m["status"]
        elif m := TARGET_FAILED.match(line):
            self.current.rerun = m["rerun"]
            if not self.current.has_result:
                self.current.crashed = "exited without a test result"
        elif (m := NOT_SUCCESSFUL.search(line)) and self.current.crashed:
            self.current.crashed = f"died ({m['why']})"
        elif m := NOT_COMPILED.match(line):
            what = m["crate"] + (f" ({m['kind']})" if m["kind"] else "")
            if what not in self.build_failures:
                self.build_failures.append(what)

    def _start(self, label: str) -> None:
        self.current = Target(label=label)
        self.targets.append(self.current)

    def summary(self, exit_code: int | None = None) -> Summary:
        """Adds it all up; `exit_code` is the command's, when it is known."""
        s = Summary(targets=len(self.targets) - 1)
        for t in self.targets:
            # The distinct SKIPPED paths of tests that did not fail: libtest
            # counted them as passed (when the binary got to its result).
            skips = {path: why for path, why in t.skips.items() if not t.skip_failed(path)}
            s.passed += max(0, t.passed - len(skips)) if t.has_result else 0
            s.failed += t.failed + (1 if t.crashed else 0)
            s.skipped += t.ignored + len(skips)
            named_failures = 0
            for name, status in t.status.items():
                if status == "FAILED":
                    named_failures += 1
                    # A command that reruns just this test, when cargo said how.
                    exact = f"cargo test {t.rerun} -- --exact {shlex.quote(name)}"
                    s.failures.append(exact if t.rerun else f"{t.label}: {name}")
                elif status == "ignored":
                    s.skips.append(f"{t.label}: {name} (ignored)")
            if t.failed > named_failures:
                s.failures.append(f"{t.where()}: {t.failed - named_failures} more test(s)")
            if t.crashed:
                s.failures.append(f"{t.where()}: {t.crashed}")
            s.skips.extend(f"{t.label}: {path}: {why}" for path, why in skips.items())
        for what in self.build_failures:
            s.failed += 1
            s.failures.append(f"could not compile {what}")
        if exit_code and not s.failed:
            s.failed += 1
            s.failures.append(f"the command exited with status {exit_code}, no failed test named")
        return s


def _binary_name(path: str | None) -> str:
    """` [instar_core]` for `target/debug/deps/instar_core-0123abcd`."""
    if not path:
        return ""
    name = re.sub(r"-[0-9a-f]{16}$", "", Path(path).name)
    return f" [{name}]"


def run(command: list[str], parser: Parser) -> int:
    """Runs `command`, echoing and parsing its merged output; its exit code."""
    env = dict(os.environ)
    if sys.stdout.isatty():
        # Through a pipe cargo would drop its colours; keep them for a person.
        env.setdefault("CARGO_TERM_COLOR", "always")
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except OSError as e:
        print(f"test-summary: cannot run {command[0]}: {e}", file=sys.stderr)
        return 127
    out = sys.stdout.buffer
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            out.write(raw)
            out.flush()
            parser.feed(raw.decode("utf-8", errors="replace"))
        return proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        return 130


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--summary-file", type=Path, help="also write the closing line here")
    ap.add_argument("--self-test", action="store_true", help="run this script's own tests")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    parser = Parser()
    if command:
        code = run(command, parser)
    else:
        for line in sys.stdin:
            sys.stdout.write(line)
            parser.feed(line)
        code = None
    summary = parser.summary(code)
    sys.stdout.write("\n".join(summary.report()) + "\n")
    sys.stdout.flush()
    if args.summary_file:
        args.summary_file.parent.mkdir(parents=True, exist_ok=True)
        args.summary_file.write_text(summary.closing_line() + "\n")
    if code:
        return code
    return 1 if summary.failed else 0


def self_test() -> int:
    """Runs the tests in test_summary_tests.py beside this file, quietly."""
    import importlib.util
    import io
    import unittest

    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("test_summary_tests", here / "test_summary_tests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
    if not result.wasSuccessful():
        sys.stdout.write(stream.getvalue())
        print("test-summary.py: its self-test FAILED")
        return 1
    print(f"test-summary.py: self-test ok ({result.testsRun} checks of its parser)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
