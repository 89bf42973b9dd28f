"""Tests of sample-images.py's parsers and choices, on what apt printed
here (2026-12, LC_ALL=C, apt 2.6 on Debian 12).

Run by `python3 .ci/sample-images.py --self-test` (which `make
qemu-matrix` does first). No network.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

_spec = importlib.util.spec_from_file_location("sample_images", Path(__file__).resolve().parent / "sample-images.py")
assert _spec and _spec.loader
si = importlib.util.module_from_spec(_spec)
sys.modules["sample_images"] = si
_spec.loader.exec_module(si)

MADISON = """\
      qemu | 1:10.0.7+ds-0+deb13u1 | http://deb.debian.org/debian trixie/main Sources
      qemu | 1:7.2+dfsg-7+deb12u18 | http://deb.debian.org/debian bookworm/main Sources
      qemu | 1:7.2+dfsg-7+deb12u16 | http://deb.debian.org/debian bookworm/main Sources
qemu-utils | 1:7.2+dfsg-7+deb12u18+b3 | http://deb.debian.org/debian bookworm/main amd64 Packages
"""


class Offers(unittest.TestCase):
    def test_source_lines_only(self):
        self.assertEqual(
            si.parse_source_offers(MADISON),
            [
                ("1:10.0.7+ds-0+deb13u1", "trixie"),
                ("1:7.2+dfsg-7+deb12u18", "bookworm"),
                ("1:7.2+dfsg-7+deb12u16", "bookworm"),
            ],
        )

    def test_first_suite_read_wins(self):
        offers = si.parse_source_offers(MADISON)
        ok = {"trixie": "ok", "bookworm": "ok"}
        self.assertEqual(si.pick(offers, ok, ["trixie", "bookworm"]), ("1:10.0.7+ds-0+deb13u1", "trixie"))
        trixie_failed = {"trixie": "failed: unreachable", "bookworm": "ok"}
        self.assertEqual(si.pick(offers, trixie_failed, ["trixie", "bookworm"]), ("1:7.2+dfsg-7+deb12u18", "bookworm"))
        self.assertIsNone(si.pick([], ok, ["trixie", "bookworm"]))


class Members(unittest.TestCase):
    def test_only_the_sample_images_folder(self):
        m = si.sample_member
        self.assertEqual(m("qemu-10.0.2/tests/qemu-iotests/sample_images/afl5.img.bz2"), "afl5.img.bz2")
        self.assertEqual(m("./qemu-10.0.2/tests/qemu-iotests/sample_images/README"), "README")
        self.assertIsNone(m("qemu-10.0.2/tests/qemu-iotests/sample_images/"))
        self.assertIsNone(m("qemu-10.0.2/tests/qemu-iotests/sample_images/sub/x.bz2"))
        self.assertIsNone(m("qemu-10.0.2/tests/qemu-iotests/sample_images/../../../x"))
        self.assertIsNone(m("qemu-10.0.2/tests/qemu-iotests/046"))
        self.assertIsNone(m("tests/qemu-iotests/sample_images/afl5.img.bz2"))

    def test_extract_writes_the_folder_flat(self):
        with tempfile.TemporaryDirectory() as tmp:
            tarball = Path(tmp) / "q.orig.tar.xz"
            with tarfile.open(tarball, "w:xz") as tar:
                for name, data in [
                    ("qemu-1/tests/qemu-iotests/sample_images/a.vhd.bz2", b"BZh"),
                    ("qemu-1/tests/qemu-iotests/sample_images/README", b"r"),
                    ("qemu-1/block/vpc.c", b"c"),
                ]:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            dest = Path(tmp) / "images"
            dest.mkdir()
            self.assertEqual(si.extract(tarball, dest), ["README", "a.vhd.bz2"])
            self.assertEqual((dest / "a.vhd.bz2").read_bytes(), b"BZh")
            self.assertEqual(sorted(p.name for p in dest.iterdir()), ["README", "a.vhd.bz2"])


class Source(unittest.TestCase):
    def test_fields_and_files(self):
        fields, files = si.parse_source_file("package: qemu 1:10.0.7\nsuite: trixie\nfile: ab12 x.bz2\nfile: cd34 README\n")
        self.assertEqual(fields, {"package": "qemu 1:10.0.7", "suite": "trixie"})
        self.assertEqual(files, {"x.bz2": "ab12", "README": "cd34"})

    def test_fast_path_needs_every_file_intact(self):
        with tempfile.TemporaryDirectory() as tmp:
            top = Path(tmp)
            self.assertFalse(si.fast_path(top))
            (top / "images").mkdir()
            (top / "images" / "x.bz2").write_bytes(b"x")
            (top / "SOURCE").write_text(f"package: qemu 1\nfile: {si.sha256(top / 'images' / 'x.bz2')} x.bz2\n")
            self.assertTrue(si.fast_path(top))
            (top / "images" / "x.bz2").write_bytes(b"changed")
            self.assertFalse(si.fast_path(top))
            (top / "unavailable").write_text("gone\n")
            self.assertTrue(si.fast_path(top))


if __name__ == "__main__":
    unittest.main()
