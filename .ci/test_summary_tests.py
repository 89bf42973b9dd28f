"""Tests of test-summary.py, on real `cargo test` output.

Run by `python3 .ci/test-summary.py --self-test` (which `make test` does
first). The samples in test-summary-samples/ were recorded from cargo
1.95 on a small two-crate workspace made for them:

- mixed.txt: a passing, a failing and two ignored unit tests (one with a
  reason); an integration test binary whose tests print the project's
  `SKIPPED <test path>: <reason>` line (one of them twice, and one prints
  it on its captured stdout, which libtest swallows); a test binary that
  aborts; doc-tests.
- mixed-color.txt: the same run with CARGO_TERM_COLOR=always.
- compile-error.txt: the same workspace with a compile error in one crate.
- create-matrix-skips.txt: instar's own create matrix, a few surfaces,
  run without qemu-img 7.2.22 installed (not strict), so they skip.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "test-summary-samples"
SCRIPT = HERE / "test-summary.py"

_spec = importlib.util.spec_from_file_location("test_summary", SCRIPT)
assert _spec and _spec.loader
ts = importlib.util.module_from_spec(_spec)
sys.modules["test_summary"] = ts  # dataclasses look their module up there
_spec.loader.exec_module(ts)


def parse(text: str, exit_code: int | None = None):
    parser = ts.Parser()
    for line in text.splitlines(keepends=True):
        parser.feed(line)
    return parser.summary(exit_code)


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


class MixedRun(unittest.TestCase):
    def setUp(self) -> None:
        self.s = parse(sample("mixed.txt"), 101)

    def test_totals(self) -> None:
        # alpha lib: 1 passed, 1 failed, 2 ignored; matrix: 4 ok of which 2
        # skipped; beta lib: aborted (1 failed); doc-tests: 1 passed.
        self.assertEqual(self.s.closing_line(), "total: 4 passed, 2 failed, 4 skipped")

    def test_counts_every_binary_and_doc_test_run(self) -> None:
        self.assertEqual(self.s.targets, 5)

    def test_names_the_failed_test(self) -> None:
        self.assertIn("cargo test -p alpha --lib -- --exact tests::breaks", self.s.failures)

    def test_a_binary_that_died_counts_as_one_failure_with_its_signal(self) -> None:
        crash = [f for f in self.s.failures if "beta" in f]
        self.assertEqual(crash, ["cargo test -p beta --lib: died (signal: 6, SIGABRT: process abort signal)"])

    def test_ignored_tests_are_skipped_and_named_with_reason_kept_out(self) -> None:
        self.assertIn("unittests src/lib.rs [alpha]: tests::slow (ignored)", self.s.skips)
        self.assertIn("unittests src/lib.rs [alpha]: tests::plain_ignored (ignored)", self.s.skips)

    def test_skipped_lines_count_once_per_distinct_path(self) -> None:
        skipped = [s for s in self.s.skips if "[matrix]" in s]
        self.assertEqual(
            skipped,
            [
                "tests/matrix.rs [matrix]: baseline::qcow2_1g_default_v7_2_22: qemu-img 7.2.22 is not installed",
                "tests/matrix.rs [matrix]: info_parity::raw_v7_2_22: qemu-img 7.2.22 is not installed",
            ],
        )

    def test_report_ends_with_the_closing_line(self) -> None:
        self.assertEqual(self.s.report()[-1], self.s.closing_line())


class ColouredRun(unittest.TestCase):
    def test_same_totals_as_without_colour(self) -> None:
        self.assertIn("\x1b[", sample("mixed-color.txt"))
        plain, coloured = parse(sample("mixed.txt"), 101), parse(sample("mixed-color.txt"), 101)
        self.assertEqual(coloured.closing_line(), plain.closing_line())
        self.assertEqual(coloured.failures, plain.failures)


class CompileError(unittest.TestCase):
    def test_each_target_that_could_not_compile_is_a_failure(self) -> None:
        s = parse(sample("compile-error.txt"), 101)
        self.assertEqual(s.closing_line(), "total: 0 passed, 2 failed, 0 skipped")
        self.assertEqual(s.failures, ["could not compile beta (lib)", "could not compile beta (lib test)"])

    def test_a_failed_command_never_closes_on_zero_failed(self) -> None:
        s = parse("error: failed to parse manifest at `/x/Cargo.toml`\n", 101)
        self.assertEqual(s.closing_line(), "total: 0 passed, 1 failed, 0 skipped")


class SkipThatFailed(unittest.TestCase):
    def test_a_test_that_printed_skipped_and_failed_is_failed_only(self) -> None:
        text = (
            "     Running tests/create_matrix.rs (target/debug/deps/create_matrix-0123456789abcdef)\n"
            "\nrunning 2 tests\n"
            "SKIPPED baseline::raw_1g::v7_2_22: qemu-img 7.2.22 is not installed\n"
            "test baseline::raw_1g::v7_2_22 ... FAILED\n"
            "test baseline::raw_1g::v10_0_2 ... ok\n"
            "\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s\n"
        )
        s = parse(text, 101)
        self.assertEqual(s.closing_line(), "total: 1 passed, 1 failed, 0 skipped")


class InterleavedSkip(unittest.TestCase):
    def test_a_skipped_line_after_another_test_s_name_counts(self) -> None:
        # stdout and stderr share the pipe: libtest's `test x ... ` and its
        # status can have another test's SKIPPED line between them.
        text = (
            "     Running tests/create_matrix.rs (target/debug/deps/create_matrix-0123456789abcdef)\n"
            "\nrunning 2 tests\n"
            "test a::one ... SKIPPED a::two: qemu-img 7.2.22 is not installed\n"
            "ok\n"
            "test a::two ... okSKIPPED a::three: qemu-img 7.2.22 is not installed\n"
            "test a::three ... FAILED\n"
            "\ntest result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s\n"
        )
        s = parse(text, 101)
        # a::two skipped; a::three printed SKIPPED and then failed.
        self.assertEqual(s.closing_line(), "total: 1 passed, 1 failed, 1 skipped")


class FailedDocTest(unittest.TestCase):
    def test_names_it_by_a_command_that_reruns_it(self) -> None:
        text = (
            "   Doc-tests alpha\n\nrunning 1 test\n"
            "test alpha/src/lib.rs - one (line 3) ... FAILED\n\n"
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.36s\n\n"
            "error: test failed, to rerun pass `-p alpha --doc`\n"
        )
        s = parse(text, 101)
        self.assertEqual(s.failures, ["cargo test -p alpha --doc -- --exact 'alpha/src/lib.rs - one (line 3)'"])
        self.assertEqual(s.closing_line(), "total: 0 passed, 1 failed, 0 skipped")


class CreateMatrixSkips(unittest.TestCase):
    def test_real_skips_of_the_create_matrix(self) -> None:
        text = sample("create-matrix-skips.txt")
        s = parse(text, 0)
        skip_lines = {line.split(":")[0] for line in text.splitlines() if line.startswith("SKIPPED ")}
        self.assertGreater(len(skip_lines), 0)
        self.assertEqual(s.skipped, len(skip_lines))
        self.assertEqual(s.failed, 0)
        result = next(line for line in text.splitlines() if line.startswith("test result:"))
        ran = int(result.split(" passed;")[0].split()[-1])
        self.assertEqual(s.passed + s.skipped, ran)


class CommandLine(unittest.TestCase):
    """The script end to end: output passed through, closing line last."""

    def run_script(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=60
        )

    def test_runs_the_command_keeps_its_status_and_ends_on_the_total(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            summary = Path(d) / "sub" / "summary.txt"
            p = self.run_script(
                "--summary-file",
                str(summary),
                "--",
                "sh",
                "-c",
                f"cat '{SAMPLES / 'mixed.txt'}'; echo SKIPPED x::y: on stderr >&2; exit 101",
            )
            self.assertEqual(p.returncode, 101)
            out = p.stdout.splitlines()
            self.assertEqual(out[: len(sample("mixed.txt").splitlines())], sample("mixed.txt").splitlines())
            self.assertEqual(out[-1], "total: 4 passed, 2 failed, 5 skipped")
            self.assertEqual(summary.read_text(), out[-1] + "\n")

    def test_a_clean_run_exits_zero(self) -> None:
        p = self.run_script(
            "--", "sh", "-c", "echo 'test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out'"
        )
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "total: 3 passed, 0 failed, 1 skipped")

    def test_reads_stdin_and_fails_when_a_test_failed(self) -> None:
        p = self.run_script(stdin=sample("mixed.txt"))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout.splitlines()[-1], "total: 4 passed, 2 failed, 4 skipped")


if __name__ == "__main__":
    unittest.main()
