#!/usr/bin/env python3
"""The reference side of instar-deflate's identity tests: compresses files
with the zlib that Python links (the system's; 1.2.13 on Debian bookworm).

Usage: zlib_oracle.py MANIFEST
MANIFEST has one job a line: `level window_bits mem_level input output`,
window_bits negative for raw deflate, positive for the zlib wrapper; each
input is compressed in one stream (compressobj + flush(Z_FINISH)) into
output. The first line printed is zlib's runtime version.
"""
import sys
import zlib


def main():
    print(zlib.ZLIB_RUNTIME_VERSION)
    with open(sys.argv[1]) as manifest:
        for line in manifest:
            level, wbits, mem, src, dst = line.split()
            with open(src, "rb") as f:
                data = f.read()
            c = zlib.compressobj(int(level), zlib.DEFLATED, int(wbits), int(mem))
            out = c.compress(data) + c.flush(zlib.Z_FINISH)
            with open(dst, "wb") as f:
                f.write(out)


if __name__ == "__main__":
    main()
