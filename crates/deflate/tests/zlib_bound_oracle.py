#!/usr/bin/env python3
"""The reference for instar-deflate's output bound: zlib's own one-shot
call, as qemu makes it. python3's zlib module always gives zlib enough
room, so this calls the C library (libz.so.1) through ctypes:
deflateInit2 then a single deflate(Z_FINISH) into a buffer of CAP bytes.

Usage: zlib_bound_oracle.py MANIFEST
MANIFEST has one job a line: `level window_bits mem_level cap input output`;
output gets the stream when deflate returned Z_STREAM_END, and is not
written otherwise. The first line printed is zlib's version, then one
line per job: `end LEN` or `more RET` (zlib's return code).
"""
import ctypes
import sys

Z_FINISH = 4
Z_STREAM_END = 1


class ZStream(ctypes.Structure):
    _fields_ = [
        ("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint), ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint), ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p), ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p), ("zfree", ctypes.c_void_p), ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int), ("adler", ctypes.c_ulong), ("reserved", ctypes.c_ulong),
    ]


def main():
    z = ctypes.CDLL("libz.so.1")
    z.zlibVersion.restype = ctypes.c_char_p
    version = z.zlibVersion()
    print(version.decode())
    with open(sys.argv[1]) as manifest:
        for line in manifest:
            level, wbits, mem, cap, src, dst = line.split()
            cap = int(cap)
            with open(src, "rb") as f:
                data = f.read()
            s = ZStream()
            ret = z.deflateInit2_(ctypes.byref(s), int(level), 8, int(wbits), int(mem), 0,
                                  version, ctypes.sizeof(ZStream))
            assert ret == 0, ret
            inb = ctypes.create_string_buffer(data, len(data))
            outb = ctypes.create_string_buffer(max(cap, 1))
            s.next_in = ctypes.cast(inb, ctypes.c_void_p)
            s.avail_in = len(data)
            s.next_out = ctypes.cast(outb, ctypes.c_void_p)
            s.avail_out = cap
            ret = z.deflate(ctypes.byref(s), Z_FINISH)
            n = cap - s.avail_out
            z.deflateEnd(ctypes.byref(s))
            if ret == Z_STREAM_END:
                with open(dst, "wb") as f:
                    f.write(outb.raw[:n])
                print(f"end {n}")
            else:
                print(f"more {ret}")


if __name__ == "__main__":
    main()
