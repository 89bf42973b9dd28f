"""Tests of qemu-matrix.py's parsers, selection rule and verdicts, on what
apt printed here (2026-12, LC_ALL=C, apt 2.6 on Debian 12).

Run by `python3 .ci/qemu-matrix.py --self-test` (which `make qemu-matrix`
does first). No network; `dpkg --compare-versions` orders package versions.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import unittest
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "qemu_matrix", Path(__file__).resolve().parent / "qemu-matrix.py"
)
assert _spec and _spec.loader
qm = importlib.util.module_from_spec(_spec)
sys.modules["qemu_matrix"] = qm  # dataclasses look their module up there
_spec.loader.exec_module(qm)

MADISON = """\
qemu-utils | 1:7.2+dfsg-7+deb12u18+b3 | http://deb.debian.org/debian bookworm/main amd64 Packages
qemu-utils | 1:7.2+dfsg-7+deb12u15 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
qemu-utils | 1:11.1.3+ds-1 | http://deb.debian.org/debian sid/main amd64 Packages
qemu-utils | 1:10.0.13+ds-0+deb13u1 | http://deb.debian.org/debian trixie/main amd64 Packages
qemu-utils | 1:10.0.2+ds-2+deb13u1 | http://deb.debian.org/debian-security trixie-security/main amd64 Packages
qemu-utils | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages
qemu-utils | 1:5.2+dfsg-11+deb11u5 | http://deb.debian.org/debian-security bullseye-security/main amd64 Packages
qemu-utils | 1:5.2+dfsg-11+deb11u3 | http://deb.debian.org/debian bullseye/main amd64 Packages
qemu-utils | 1:5.2+dfsg-11+deb11u2 | http://deb.debian.org/debian bullseye/main amd64 Packages
      qemu | 1:7.2+dfsg-7+deb12u18 | http://deb.debian.org/debian bookworm/main Sources
"""

# A suite that is not in the archive (buster-nonexistent), an unreachable
# host (bookworm), and a suite that answers (bookworm-updates).
UPDATE = """\
Ign:1 http://nonexistent.invalid/debian bookworm InRelease
Ign:2 http://deb.debian.org/debian buster-nonexistent InRelease
Get:3 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]
Err:4 http://deb.debian.org/debian buster-nonexistent Release
  404  Not Found [IP: 203.0.113.80 80]
Get:5 http://deb.debian.org/debian bookworm-updates/main amd64 Packages [6924 B]
Ign:1 http://nonexistent.invalid/debian bookworm InRelease
Err:1 http://nonexistent.invalid/debian bookworm InRelease
  Could not resolve 'nonexistent.invalid'
Reading package lists...
E: The repository 'http://deb.debian.org/debian buster-nonexistent Release' does not have a Release file.
"""

SIM = """\
NOTE: This is only a simulation!
Reading package lists...
Inst liburing1 (0.7-3 Debian:11.11/oldoldstable [amd64])
Inst libc6 [2.36-9+deb12u13] (2.41-12+deb13u5 Debian:13.3/stable [amd64])
Inst qemu-utils (1:5.2+dfsg-11+deb11u5 Debian-Security:11/oldoldstable-security [amd64])
Conf liburing1 (0.7-3 Debian:11.11/oldoldstable [amd64])
"""


class Parsers(unittest.TestCase):
    def test_version_key(self):
        self.assertEqual(qm.version_key("5.2"), "5.2.0")
        self.assertEqual(qm.version_key("10.0.13"), "10.0.13")
        self.assertIsNone(qm.version_key("apt"))
        self.assertIsNone(qm.version_key("1.2.3.4"))
        self.assertEqual(
            qm.by_version(["10.0.2", "5.2.0", "7.2.22", "7.2.18"]), ["5.2.0", "7.2.18", "7.2.22", "10.0.2"]
        )

    def test_version_line(self):
        self.assertEqual(
            qm.parse_version_line("qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"), "7.2.22"
        )
        self.assertEqual(qm.parse_version_line("qemu-img version 8.2\n"), "8.2.0")
        self.assertIsNone(qm.parse_version_line("sh: 1: qemu-img: not found"))
        self.assertIsNone(qm.parse_version_line(""))

    def test_madison_keeps_binary_lines(self):
        offers = qm.parse_madison(MADISON)
        self.assertEqual(len(offers), 9)
        self.assertIn(("1:11.1.3+ds-1", "sid"), offers)
        self.assertIn(("1:7.2+dfsg-7+deb12u15", "bookworm-security"), offers)

    def test_update_tells_gone_from_failed(self):
        fate = qm.parse_update(UPDATE, ["bookworm", "bookworm-updates", "buster-nonexistent", "sid"])
        self.assertEqual(fate["bookworm-updates"], "ok")
        self.assertEqual(fate["sid"], "ok")
        self.assertTrue(fate["buster-nonexistent"].startswith("gone: The repository"), fate)
        self.assertTrue(fate["bookworm"].startswith("failed: "), fate)
        self.assertIn("Could not resolve", fate["bookworm"])

    def test_update_signature_failure_is_not_gone(self):
        text = (
            "W: GPG error: http://deb.debian.org/debian sid InRelease: The following signatures "
            "couldn't be verified because the public key is not available: NO_PUBKEY 762F67A0B2C39DE4\n"
            "E: The repository 'http://deb.debian.org/debian sid InRelease' is not signed.\n"
        )
        self.assertTrue(qm.parse_update(text, ["sid"])["sid"].startswith("failed: "))

    def test_sim(self):
        self.assertEqual(
            qm.parse_sim(SIM),
            [
                ("liburing1", None, "0.7-3"),
                ("libc6", "2.36-9+deb12u13", "2.41-12+deb13u5"),
                ("qemu-utils", None, "1:5.2+dfsg-11+deb11u5"),
            ],
        )

    def test_elf_interpreter(self):
        self.assertEqual(qm.elf_interpreter(Path("/bin/sh").read_bytes()), "/lib64/ld-linux-x86-64.so.2")
        self.assertIsNone(qm.elf_interpreter(b"#!/bin/sh\n"))

    def test_library_dirs(self):
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp)
            for f in [
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                "usr/lib/x86_64-linux-gnu/gconv/libJIS.so",
                "usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfoo.so.1",
                "usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3",
                "usr/bin/qemu-img",
            ]:
                (tree / f).parent.mkdir(parents=True, exist_ok=True)
                (tree / f).write_bytes(b"")
            self.assertEqual(qm.library_dirs(tree), ["usr/lib/x86_64-linux-gnu"])


def builds(offers):
    return qm.newest_per_suite(offers, qm.SUITES)


def with_versions(bs, versions):
    for b in bs:
        b.version = versions[b.package]
    return bs


# What each build printed, 2026-12.
PRINTS = {
    "1:5.2+dfsg-11+deb11u2": "5.2.0",
    "1:5.2+dfsg-11+deb11u3": "5.2.0",
    "1:5.2+dfsg-11+deb11u5": "5.2.0",
    "1:7.2+dfsg-7+deb12u15": "7.2.18",
    "1:7.2+dfsg-7+deb12u18+b3": "7.2.22",
    "1:7.2+dfsg-7+deb12u18+b4": "7.2.22",
    "1:10.0.2+ds-2+deb13u1~bpo12+1": "10.0.2",
    "1:10.0.2+ds-2+deb13u1": "10.0.2",
    "1:10.0.13+ds-0+deb13u1": "10.0.13",
    "1:11.1.3+ds-1": "11.1.3",
    "1:11.2.0+ds-1": "11.2.0",
}


class Selection(unittest.TestCase):
    def test_newest_build_per_suite(self):
        bs = builds(qm.parse_madison(MADISON))
        self.assertEqual(
            [(b.package, b.suites) for b in bs],
            [
                ("1:5.2+dfsg-11+deb11u3", ["bullseye"]),
                ("1:5.2+dfsg-11+deb11u5", ["bullseye-security"]),
                ("1:7.2+dfsg-7+deb12u18+b3", ["bookworm"]),
                ("1:7.2+dfsg-7+deb12u15", ["bookworm-security"]),
                ("1:10.0.2+ds-2+deb13u1~bpo12+1", ["bookworm-backports"]),
                ("1:10.0.13+ds-0+deb13u1", ["trixie"]),
                ("1:10.0.2+ds-2+deb13u1", ["trixie-security"]),
                ("1:11.1.3+ds-1", ["sid"]),
            ],
        )

    def test_the_six_versions_of_2026_12(self):
        chosen = qm.select(with_versions(builds(qm.parse_madison(MADISON)), PRINTS), "10.0.2")
        self.assertEqual(
            {v: b.package for v, b in chosen.items()},
            {
                "5.2.0": "1:5.2+dfsg-11+deb11u5",  # the newer of bullseye and bullseye-security
                "7.2.18": "1:7.2+dfsg-7+deb12u15",
                "7.2.22": "1:7.2+dfsg-7+deb12u18+b3",
                "10.0.13": "1:10.0.13+ds-0+deb13u1",
                "11.1.3": "1:11.1.3+ds-1",
            },  # 10.0.2 is the system's
        )
        self.assertEqual(list(chosen), ["5.2.0", "7.2.18", "7.2.22", "10.0.13", "11.1.3"])

    def test_without_a_system_qemu_img_the_newest_build_of_10_0_2(self):
        chosen = qm.select(with_versions(builds(qm.parse_madison(MADISON)), PRINTS), None)
        self.assertEqual(chosen["10.0.2"].package, "1:10.0.2+ds-2+deb13u1")

    def test_a_suite_moving_on(self):
        # sid moves to 11.2.0; a rebuild of bookworm's 7.2.22 is the same version.
        offers = [("1:11.2.0+ds-1", "sid"), ("1:7.2+dfsg-7+deb12u18+b4", "bookworm")]
        chosen = qm.select(with_versions(builds(offers), PRINTS), "10.0.2")
        self.assertEqual(
            {v: b.package for v, b in chosen.items()},
            {"7.2.22": "1:7.2+dfsg-7+deb12u18+b4", "11.2.0": "1:11.2.0+ds-1"},
        )


class Verdicts(unittest.TestCase):
    def test_a_version_no_longer_offered_is_unavailable(self):
        unavailable, errors = qm.judge_missing(
            ["7.2.22", "10.0.2", "11.1.3"], {"7.2.22", "10.0.2"}, set(), []
        )
        self.assertEqual(errors, [])
        self.assertEqual(list(unavailable), ["11.1.3"])
        self.assertIn("Debian no longer offers qemu-img 11.1.3", unavailable["11.1.3"])

    def test_unread_suites_decide_nothing(self):
        unavailable, errors = qm.judge_missing(["7.2.22", "11.1.3"], {"7.2.22"}, set(), ["sid"])
        self.assertEqual(unavailable, {})
        self.assertEqual(len(errors), 1)
        self.assertIn("sid", errors[0])

    def test_a_failed_install_is_not_unavailable(self):
        self.assertEqual(qm.judge_missing(["11.1.3"], set(), {"11.1.3"}, []), ({}, []))

    def test_unavailable_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            top = Path(tmp)
            qm.write_unavailable(top, {"11.1.3": "Debian no longer offers qemu-img 11.1.3"})
            lines = [x for x in (top / "unavailable").read_text().splitlines() if not x.startswith("#")]
            self.assertEqual(lines, ["11.1.3\tDebian no longer offers qemu-img 11.1.3"])
            qm.write_unavailable(top, {})
            self.assertFalse((top / "unavailable").exists())


if __name__ == "__main__":
    unittest.main()
