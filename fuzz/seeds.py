#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds are made, never committed: images of every format and variant are
created with qemu-img (QEMU_IMG, default /usr/bin/qemu-img) in a temporary
directory, some filled with data by `qemu-img convert`, some given internal
snapshots (`qemu-img snapshot -c`) and persistent bitmaps (`qemu-img bitmap
--add`); the structure targets get the slices of them they parse (a qcow2
header cluster, a snapshot table, a bitmap directory with its tables, a
vmdk descriptor, a vhdx region table, metadata region and log, a vpc
footer, dynamic header and BAT). Text targets (sizes, option lists, the
command line) get lists written here.

Images keep to a few MiB: trailing zeros are cut (the file layer reads
zeros past the end anyway). A multi-file image (a vmdk descriptor and its
extents, a qcow2 image and its data file) is one input: for each other
file FILE_MARKER, its name, a newline, its length and its bytes, then the
image, as the targets split it (fuzz/src/lib.rs).

Usage: fuzz/seeds.py [--out DIR]   (default: fuzz/corpus beside this file)
"""

import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

FILE_MARKER = b"\xfe\xfdinstar-fuzz-file:"
QEMU_IMG = os.environ.get("QEMU_IMG", "/usr/bin/qemu-img")
MIB = 1 << 20


class Corpus:
    """The corpus directories, one per target."""

    def __init__(self, root):
        self.root = root
        self.count = {}

    def add(self, target, data, label):
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()[:12]
        with open(os.path.join(d, f"{label}-{digest}"), "wb") as f:
            f.write(data)
        self.count[target] = self.count.get(target, 0) + 1


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def qemu_img(*args, cwd):
    run(QEMU_IMG, *args, cwd=cwd)


def trimmed(data, keep=512):
    """`data` without trailing zeros, kept to whole sectors (at least `keep`
    bytes when it had them)."""
    end = len(data.rstrip(b"\0"))
    end = max(end, min(keep, len(data)))
    end = min(len(data), (end + 511) // 512 * 512)
    return data[:end]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def bundle(top, others):
    """One input from an image and the files it names, (name, bytes): each
    file as FILE_MARKER, its name, a newline, its length (big-endian u32)
    and its bytes, then the image."""
    out = bytearray()
    for name, data in others:
        out += FILE_MARKER + name.encode() + b"\n" + struct.pack(">I", len(data)) + data
    return bytes(out + top)


def data_source(tmp):
    """A raw file with data in some places, for `qemu-img convert`."""
    path = os.path.join(tmp, "data.raw")
    with open(path, "wb") as f:
        f.truncate(4 * MIB)
        for at, pattern in [(0, b"\xa5"), (65536 + 512, b"instar"), (3 * MIB, b"\x01\x02")]:
            f.seek(at)
            f.write(pattern * 700)
    return path


# --- qcow2 -------------------------------------------------------------

def qcow2_images(tmp):
    """(label, path, extra files) of qcow2 images of every variant."""
    out = []
    variants = [
        ("v2", ["-o", "compat=0.10"]),
        ("v3", []),
        ("c512", ["-o", "cluster_size=512"]),
        ("c4k-rc1", ["-o", "cluster_size=4k,refcount_bits=1"]),
        ("rc64", ["-o", "refcount_bits=64,cluster_size=4k"]),
        ("extl2", ["-o", "extended_l2=on,cluster_size=16k"]),
        ("lazy", ["-o", "lazy_refcounts=on,cluster_size=4k"]),
        ("zstd", ["-o", "compression_type=zstd,cluster_size=4k"]),
        ("prealloc", ["-o", "preallocation=metadata,cluster_size=4k"]),
    ]
    base = os.path.join(tmp, "base.qcow2")
    qemu_img("create", "-f", "qcow2", "-o", "cluster_size=4k", base, "1M", cwd=tmp)
    for label, opts in variants:
        p = os.path.join(tmp, f"q-{label}.qcow2")
        qemu_img("create", "-q", "-f", "qcow2", *opts, p, "1M", cwd=tmp)
        out.append((label, p, []))
    p = os.path.join(tmp, "q-backing.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
             "-o", "cluster_size=4k", p, cwd=tmp)
    out.append(("backing", p, []))
    p = os.path.join(tmp, "q-datafile.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o",
             "data_file=q-data.raw,data_file_raw=on,cluster_size=4k", p, "1M", cwd=tmp)
    out.append(("datafile", p, ["q-data.raw"]))
    src = data_source(tmp)
    for label, opts in [("data", ["-o", "cluster_size=4k"]), ("compressed", ["-c", "-o", "cluster_size=4k"]),
                        ("data-v2", ["-o", "compat=0.10,cluster_size=4k"]),
                        ("compressed-zstd", ["-c", "-o", "cluster_size=4k,compression_type=zstd"]),
                        ("data-extl2", ["-o", "cluster_size=16k,extended_l2=on"])]:
        p = os.path.join(tmp, f"q-{label}.qcow2")
        qemu_img("convert", "-O", "qcow2", *opts, src, p, cwd=tmp)
        out.append((label, p, []))
    # Snapshots and bitmaps, on small clusters to keep the images small.
    p = os.path.join(tmp, "q-snap.qcow2")
    qemu_img("convert", "-O", "qcow2", "-o", "cluster_size=4k", src, p, cwd=tmp)
    qemu_img("snapshot", "-c", "first", p, cwd=tmp)
    qemu_img("snapshot", "-c", "second snapshot", p, cwd=tmp)
    out.append(("snapshots", p, []))
    p = os.path.join(tmp, "q-bitmaps.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", p, "4M", cwd=tmp)
    try:
        qemu_img("bitmap", "--add", p, "b1", cwd=tmp)
        qemu_img("bitmap", "--add", "-g", "64k", p, "b2", cwd=tmp)
        qemu_img("bitmap", "--add", "--disable", p, "b3", cwd=tmp)
        out.append(("bitmaps", p, []))
    except subprocess.CalledProcessError:
        print("seeds: qemu-img has no `bitmap --add`; no bitmap seeds", file=sys.stderr)
    # Bitmaps that have lived: qemu-io (beside qemu-img) writes with the
    # bitmaps loaded, so their tables point at data clusters; one bitmap
    # is disabled, and a second qemu-io run crashes (`abort`) with the
    # enabled one loaded, leaving it in use.
    qemu_io = os.path.join(os.path.dirname(QEMU_IMG), "qemu-io")
    p = os.path.join(tmp, "q-lived-bitmaps.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", p, "4M", cwd=tmp)
    try:
        qemu_img("bitmap", "--add", "-g", "512", p, "fine", cwd=tmp)
        qemu_img("bitmap", "--add", "--disable", p, "off", cwd=tmp)
        run(qemu_io, "-c", "write -P 1 0 1M", "-c", "write -c 2M 64k", p, cwd=tmp)
        qemu_img("bitmap", "--merge", "fine", p, "off", cwd=tmp)
        subprocess.run([qemu_io, "-c", "write 3M 4k", "-c", "abort", p], cwd=tmp,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(("lived-bitmaps", p, []))
    except (subprocess.CalledProcessError, OSError):
        print("seeds: no qemu-io or `bitmap --merge`; no lived-in bitmap seed", file=sys.stderr)
    # Encrypted: the LUKS header inside the image, and legacy AES.
    for label, opts in [("luks", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"),
                        ("aes", "encrypt.format=aes,encrypt.key-secret=sec0")]:
        p = os.path.join(tmp, f"q-{label}.qcow2")
        qemu_img("create", "-q", *SECRET, "-f", "qcow2", "-o", f"cluster_size=4k,{opts}",
                 p, "1M", cwd=tmp)
        out.append((label, p, []))
    p = os.path.join(tmp, "q-snap-bitmaps.qcow2")
    shutil.copy(os.path.join(tmp, "q-snap.qcow2"), p)
    try:
        qemu_img("bitmap", "--add", p, "b1", cwd=tmp)
        out.append(("snap-bitmaps", p, []))
    except subprocess.CalledProcessError:
        pass
    return out


SECRET = ["--object", "secret,id=sec0,data=instar"]

# LUKS volumes of every cipher, mode, IV generator and hash qemu-img makes.
LUKS_VARIANTS = [
    ("default", ""),
    ("aes128-cbc-essiv", "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha1"),
    ("twofish-plain", "cipher-alg=twofish-256,cipher-mode=xts,ivgen-alg=plain,hash-alg=sha512"),
    ("serpent-ctr", "cipher-alg=serpent-128,cipher-mode=ctr,ivgen-alg=plain64,hash-alg=sha224"),
    ("cast5-cbc", "cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=md5"),
]


def luks_images(tmp):
    """(label, path) of LUKS volumes of 64 KiB."""
    out = []
    for label, opts in LUKS_VARIANTS:
        p = os.path.join(tmp, f"l-{label}.luks")
        o = "key-secret=sec0,iter-time=10" + ("," + opts if opts else "")
        try:
            qemu_img("create", "-q", *SECRET, "-f", "luks", "-o", o, p, "64k", cwd=tmp)
        except subprocess.CalledProcessError:
            print(f"seeds: qemu-img cannot make a {label} LUKS volume; skipped", file=sys.stderr)
            continue
        out.append((label, p))
    return out


def qcow2_extensions(data):
    """The header extensions of a qcow2 image: (magic, offset of data, len)."""
    version = struct.unpack_from(">I", data, 4)[0]
    cluster = 1 << struct.unpack_from(">I", data, 20)[0]
    hlen = struct.unpack_from(">I", data, 100)[0] if version >= 3 else 72
    backing_off = struct.unpack_from(">Q", data, 8)[0]
    end = backing_off if backing_off else cluster
    at, out = hlen, []
    while at + 8 <= end:
        magic, length = struct.unpack_from(">II", data, at)
        if magic == 0:
            break
        out.append((magic, at + 8, length))
        at += 8 + (length + 7) // 8 * 8
    return out


def qcow2_slices(corpus, label, data):
    cluster_bits = struct.unpack_from(">I", data, 20)[0]
    cluster = 1 << cluster_bits
    corpus.add("qcow2_header", trimmed(data[:cluster]), label)
    # The snapshot table, moved to offset 512 (cluster size 512).
    nb, off = struct.unpack_from(">IQ", data, 60)
    if nb:
        at = off
        for _ in range(nb):
            at = (at + 7) // 8 * 8
            extra, = struct.unpack_from(">I", data, at + 36)
            id_size, name_size = struct.unpack_from(">HH", data, at + 12)
            at += 40 + extra + id_size + name_size
        head = bytearray(data[:512])
        struct.pack_into(">I", head, 20, 9)
        struct.pack_into(">Q", head, 64, 512)
        corpus.add("qcow2_snapshots", bytes(head) + data[off:at], label)
    # The bitmap directory, at 0, and the tables after it, cluster-aligned.
    for magic, at, length in qcow2_extensions(data):
        if magic != 0x23852875 or length != 24:
            continue
        nb_bitmaps, _, dir_size, dir_off = struct.unpack_from(">IIQQ", data, at)
        directory = bytearray(data[dir_off:dir_off + dir_size])
        payload = bytearray()
        payload += b"\0" * ((dir_size + cluster - 1) // cluster * cluster)
        e = 0
        while e + 24 <= len(directory):
            table_off, table_size = struct.unpack_from(">QI", directory, e)
            name_size, extra = struct.unpack_from(">HI", directory, e + 18)
            new_off = len(payload)
            table = data[table_off:table_off + 8 * table_size]
            payload += table + b"\0" * ((-len(table)) % cluster)
            struct.pack_into(">Q", directory, e, new_off)
            e += (24 + name_size + extra + 7) // 8 * 8
        payload[:len(directory)] = directory
        size = struct.unpack_from(">Q", data, 24)[0]
        prefix = struct.pack(">IBQI", nb_bitmaps, cluster_bits, size, dir_size)
        corpus.add("qcow2_bitmaps", prefix + bytes(payload), label)


# --- vmdk --------------------------------------------------------------

def vmdk_images(tmp):
    out = []
    src = data_source(tmp)
    for sub in ["monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
                "twoGbMaxExtentFlat", "streamOptimized"]:
        p = os.path.join(tmp, f"v-{sub}.vmdk")
        qemu_img("create", "-q", "-f", "vmdk", "-o", f"subformat={sub}", p, "1M", cwd=tmp)
        out.append((sub, p))
        p = os.path.join(tmp, f"vd-{sub}.vmdk")
        qemu_img("convert", "-O", "vmdk", "-o", f"subformat={sub}", src, p, cwd=tmp)
        out.append((f"{sub}-data", p))
    for label, opts in [("compat6", "compat6=on"), ("zeroed", "zeroed_grain=on"),
                        ("lsilogic", "adapter_type=lsilogic,hwversion=6")]:
        p = os.path.join(tmp, f"v-{label}.vmdk")
        qemu_img("create", "-q", "-f", "vmdk", "-o", opts, p, "1M", cwd=tmp)
        out.append((label, p))
    base = os.path.join(tmp, "v-monolithicSparse.vmdk")
    p = os.path.join(tmp, "v-child.vmdk")
    qemu_img("create", "-q", "-f", "vmdk", "-b", base, "-F", "vmdk", p, cwd=tmp)
    out.append(("child", p))
    # Written by qemu-io: data at unaligned offsets, and zeroed grains.
    qemu_io = os.path.join(os.path.dirname(QEMU_IMG), "qemu-io")
    p = os.path.join(tmp, "v-written.vmdk")
    qemu_img("create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", p, "1M", cwd=tmp)
    try:
        run(qemu_io, "-f", "vmdk", "-c", "write -P 0x5a 1000 70000", "-c", "write -z 512k 128k",
            p, cwd=tmp)
        out.append(("written", p))
    except (subprocess.CalledProcessError, OSError):
        print("seeds: no qemu-io; no written vmdk seed", file=sys.stderr)
    return out


def vmdk_input(path):
    """The image as one input: a descriptor file brings its extents."""
    data = read(path)
    if data[:4] in (b"KDMV", b"COWD"):
        return trimmed(data), None
    others = []
    for line in data.decode("latin-1").splitlines():
        if line.startswith(("RW ", "RDONLY ")) and '"' in line:
            name = line.split('"')[1]
            ext = os.path.join(os.path.dirname(path), name)
            if os.path.exists(ext):
                others.append((name, trimmed(read(ext))))
    return bundle(data, others), data


# --- vpc, vhdx -----------------------------------------------------------

def vpc_images(tmp):
    out = []
    src = data_source(tmp)
    for label, opts in [("dynamic", []), ("fixed", ["-o", "subformat=fixed"]),
                        ("force", ["-o", "force_size=on"]),
                        ("fixed-force", ["-o", "subformat=fixed,force_size=on"])]:
        p = os.path.join(tmp, f"p-{label}.vpc")
        qemu_img("create", "-q", "-f", "vpc", *opts, p, "1M", cwd=tmp)
        out.append((label, p))
    p = os.path.join(tmp, "p-data.vpc")
    qemu_img("convert", "-O", "vpc", src, p, cwd=tmp)
    out.append(("data", p))
    p = os.path.join(tmp, "p-data-fixed.vpc")
    qemu_img("convert", "-O", "vpc", "-o", "subformat=fixed", src, p, cwd=tmp)
    out.append(("data-fixed", p))
    return out


def vhdx_images(tmp):
    out = []
    src = data_source(tmp)
    for label, opts in [("dynamic", []), ("block1m", ["-o", "block_size=1M"]),
                        ("fixed", ["-o", "subformat=fixed"])]:
        p = os.path.join(tmp, f"x-{label}.vhdx")
        qemu_img("create", "-q", "-f", "vhdx", *opts, p, "1M", cwd=tmp)
        out.append((label, p))
    p = os.path.join(tmp, "x-data.vhdx")
    qemu_img("convert", "-O", "vhdx", "-o", "block_size=1M", src, p, cwd=tmp)
    out.append(("data", p))
    for label, opts in [("data-nozero", "block_size=1M,block_state_zero=off"),
                        ("data-fixed", "block_size=1M,subformat=fixed")]:
        p = os.path.join(tmp, f"x-{label}.vhdx")
        qemu_img("convert", "-O", "vhdx", "-o", opts, src, p, cwd=tmp)
        out.append((label, p))
    return out


def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit: only a few headers are summed."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def vhdx_log_to_replay(data):
    """A written vhdx whose headers name its first log entry's GUID: the
    log then needs replaying, which a writer's open does."""
    out = bytearray(data)
    guid = out[0x100000 + 32:0x100000 + 48]
    for h in (0x10000, 0x20000):
        out[h + 48:h + 64] = guid
        out[h + 4:h + 8] = b"\0\0\0\0"
        struct.pack_into("<I", out, h + 4, crc32c(bytes(out[h:h + 4096])))
    return bytes(out)


def vhdx_slices(corpus, label, data):
    table = data[192 * 1024:256 * 1024]
    corpus.add("vhdx_region_table", trimmed(table, 64), label)
    count, = struct.unpack_from("<I", table, 8)
    for i in range(min(count, 8)):
        guid = table[16 + 32 * i:32 + 32 * i]
        off, length = struct.unpack_from("<QI", table, 32 + 32 * i)
        if guid.hex().upper().startswith("06A27C8B"):  # 8B7CA206-...: metadata
            corpus.add("vhdx_metadata", trimmed(data[off:off + length]), label)
    # The current header's log.
    best = None
    for at in (64 * 1024, 128 * 1024):
        h = data[at:at + 80]
        if h[:4] == b"head":
            seq, = struct.unpack_from("<Q", h, 8)
            if best is None or seq > best[0]:
                best = (seq, h)
    if best:
        h = best[1]
        guid = h[48:64]
        length, offset = struct.unpack_from("<IQ", h, 68)
        log = data[offset:offset + length]
        if guid == b"\0" * 16 and log[:4] == b"loge":
            guid = log[32:48]
        corpus.add("vhdx_log", guid + trimmed(log, 4096), label)


def deflate_seeds(corpus):
    """The compressor's inputs: four parameter bytes (level, window bits,
    memory level, wrapper; fuzz_targets/deflate.rs), then data: qemu's
    cluster parameters and vmdk's over text, a binary, zeros, repeats."""
    try:
        binary = read(QEMU_IMG)[100000:100000 + 70000]
    except OSError:
        binary = bytes(range(256)) * 200
    text = b"".join(b"line %d of a text that compresses well\n" % i for i in range(1500))
    datas = {"text": text, "bin": binary, "zeros": bytes(65536), "abc": b"abc" * 9000, "empty": b""}
    params = {"qcow2": bytes([0, 3, 8, 0]), "vmdk": bytes([6, 6, 7, 1]), "l1w9m1": bytes([1, 0, 0, 0]),
              "l9": bytes([9, 6, 8, 1]), "l4w13": bytes([4, 4, 4, 0])}
    for pname, p in params.items():
        for dname, d in datas.items():
            corpus.add("deflate", p + d, f"{pname}-{dname}")


def vpc_slices(corpus, label, data):
    if data[:8] == b"conectix":
        corpus.add("vpc_footer", data[:512] + trimmed(data[512:]), label)
        corpus.add("vpc_dynamic_header", trimmed(data[512:]), label)
        table_off, = struct.unpack_from(">Q", data, 512 + 16)
        entries, block_size = struct.unpack_from(">II", data, 512 + 28)
        bits = max(block_size.bit_length() - 1, 0)
        corpus.add("vpc_bat", struct.pack(">IB", entries, bits) + trimmed(data[table_off:]), label)
    else:
        corpus.add("vpc_footer", data[-512:], label)


def vpc_read_input(data):
    """A VHD cut to what its open needs (the footer copy, the header, the
    BAT and every allocated block, then the footer) and no shorter: qemu's
    open refuses a file that ends inside a block."""
    if data[:8] != b"conectix":
        return data
    table_off, = struct.unpack_from(">Q", data, 512 + 16)
    entries, block_size = struct.unpack_from(">II", data, 512 + 28)
    bitmap = (block_size // 4096 + 511) // 512 * 512
    end = (table_off + 4 * entries + 511) // 512 * 512
    for i in range(entries):
        sector, = struct.unpack_from(">I", data, table_off + 4 * i)
        if sector != 0xFFFFFFFF:
            end = max(end, sector * 512 + bitmap + block_size)
    return data[:end] + data[-512:]


def vhdx_read_input(data):
    """A VHDX cut after its last non-zero byte, then padded to a whole MiB
    (the blocks of the seed images are 1 MiB): qemu's open refuses a file
    that ends inside a present block."""
    end = len(data.rstrip(b"\0"))
    return data[:min(len(data), (end + MIB - 1) // MIB * MIB)]


# --- text targets --------------------------------------------------------

SIZES = ["0", "1", "512", "1k", "1K", "1.5G", "-1", "0x10", "0x", "1e3", "16E", "15.9E",
         "18446744073709551615", "18446744073709551616", " 1 k", "1.", ".5M", "1.5",
         "foobar", "1kB", "9223372036854775807", "0.0000001T", "+2M", "1 "]

OPTIONS = ["cluster_size=64k,preallocation=metadata", "size=1M", "help", "?",
           "compat=0.10,lazy_refcounts=on", "subformat=fixed,force_size=on",
           "backing_file=a,,b,backing_fmt=qcow2", "refcount_bits=1",
           "extended_l2=on,cluster_size=16k", "data_file=x,data_file_raw=on",
           "encrypt.format=luks", "nocow=on,extent_size_hint=1M", "preallocation=full",
           "subformat=streamOptimized,adapter_type=lsilogic,hwversion=4",
           "block_size=1M,log_size=1M,block_state_zero=off", "compression_type=zstd",
           "size=1M,,size=2", "cluster_size=1.5k", "a=b=c", ",", "size=,", "compat=v3"]

ARGS = [
    ["create", "-f", "qcow2", "x.qcow2", "1G"],
    ["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", "x.vmdk", "1M"],
    ["create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-u", "x.qcow2"],
    ["create", "-f", "vpc", "-o", "help"],
    ["create", "-o", "help", "-f", "qcow2", "file:x"],
    ["create", "-fqcow2", "-ocluster_size=4k", "--", "-x.qcow2", "1M", "extra"],
    ["create", "--format=vhdx", "--options", "subformat=fixed", "nbd:x", "1M"],
    ["info", "--output=json", "x.qcow2"],
    ["info", "--qemu-version", "7.2.22", "-f", "raw", "x"],
    ["info", "--out", "human", "-U", "x"],
    ["check", "-r", "leaks", "x"],
    ["check", "--deep", "-T", "none", "-q", "--output=json", "x.vpc"],
    ["check", "--outp=json", "--image-opts", "x"],
    ["map", "--output=json", "-s", "1k", "-l", "0x10", "x.qcow2"],
    ["map", "--start-offset=1.5k", "--max=8E", "--image-opts", "driver=raw,file.filename=x"],
    ["map", "--qemu-version", "5.2.0", "-s", "0x10k", "--output=xml", "-U", "x"],
    ["compare", "-f", "qcow2", "-F", "raw", "-s", "-q", "a", "b"],
    ["measure", "--output=json", "-O", "qcow2", "-o", "cluster_size=4k", "--size", "1G"],
    ["measure", "--qemu-version", "5.2.0", "-l", "snapshot.id=1,snapshot.name=x", "-f", "qcow2", "x"],
    ["measure", "--qemu-version", "11.1.3", "-s", "1e3", "--target-format", "luks", "-x"],
    ["compare", "--qemu-version", "11.1.3", "--a-format=raw", "--b-format", "vpc", "-p", "a", "b"],
    ["compare", "--left-format", "x", "-T", "none", "--object", "secret,id=s,data=x", "a"],
    ["compare", "--image-opts", "driver=raw,file.filename=a", "-U", "--", "-b"],
    ["--version"], ["-h"], [], ["convert", "a", "b"], ["info", "--b"],
]


# --image-opts strings and --object lists (docs/compat.md §5.11).
IMAGE_OPTS = [
    "driver=qcow2,file.filename=a.qcow2",
    "driver=qcow2,file.driver=file,file.filename=a.qcow2,force-share=on",
    "file.filename=a,,b,id=x,noforce-share",
    "a.qcow2",
    "driver=qcow2,file.filename=a,foo=bar,zzz=1,abc=2,file.locking=off",
    "secret,id=s,data=eA==,format=base64\nsecret,id=t,data=x,keyid=s",
    "help",
    'json:{"driver":"qcow2","file":{"driver":"file","filename":"a.qcow2"},"x":[1,true,null]}',
]


def add_map(corpus, image, label):
    """The `map` target's seeds: the image followed by the start offset
    (little-endian u64): the start, and 64 KiB in."""
    corpus.add("map", image + struct.pack("<Q", 0), label)
    corpus.add("map", image + struct.pack("<Q", 65536), label + "-64k")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "corpus"))
    args = parser.parse_args()
    if not os.access(QEMU_IMG, os.X_OK):
        sys.exit(f"seeds: {QEMU_IMG} not found (set QEMU_IMG)")
    corpus = Corpus(args.out)
    with tempfile.TemporaryDirectory(prefix="instar-seeds-") as tmp:
        raw = os.path.join(tmp, "r.raw")
        with open(raw, "wb") as f:
            f.write(b"\0" * 512 + b"data" * 128)
        corpus.add("info_raw", read(raw), "raw")
        corpus.add("info_probe", read(raw), "raw")
        add_map(corpus, read(raw), "raw")
        corpus.add("compare", read(raw), "raw")
        corpus.add("measure", read(raw), "raw")
        corpus.add("convert", read(raw), "raw")

        for label, path, others in qcow2_images(tmp):
            data = read(path)
            files = [(n, trimmed(read(os.path.join(tmp, n)))) for n in others]
            image = bundle(trimmed(data), files)
            for t in ("info_qcow2", "check_qcow2", "info_probe", "compare", "measure", "convert", "read_qcow2"):
                corpus.add(t, image, label)
            add_map(corpus, image, label)
            qcow2_slices(corpus, label, data)

        for label, path in vmdk_images(tmp):
            image, descriptor = vmdk_input(path)
            for t in ("info_vmdk", "check_vmdk", "info_probe", "compare", "measure", "convert", "read_vmdk"):
                corpus.add(t, image, label)
            add_map(corpus, image, label)
            if descriptor is not None:
                corpus.add("vmdk_descriptor", image, label)
                corpus.add("vmdk_descriptor", descriptor, label + "-alone")
            else:
                data = read(path)
                # write_formats: byte 0 picks vmdk; a sparse file only.
                corpus.add("write_formats", b"\x00" + data, label)
                off, size = struct.unpack_from("<QQ", data, 28)
                text = data[off * 512:(off + size) * 512].rstrip(b"\0")
                if text:
                    corpus.add("vmdk_descriptor", text, label + "-embedded")

        for label, path in vpc_images(tmp):
            data = read(path)
            image = data if data[:8] != b"conectix" else trimmed(data[:-512]) + data[-512:]
            for t in ("info_vpc", "check_vpc", "info_probe", "compare", "measure", "convert"):
                corpus.add(t, image, label)
            add_map(corpus, image, label)
            corpus.add("read_vpc", vpc_read_input(data), label)
            corpus.add("write_formats", b"\x01" + data, label)
            vpc_slices(corpus, label, data)

        for label, path in luks_images(tmp):
            data = read(path)
            # The header alone (a volume whose payload lies past its end),
            # and the volume with its key material and a sector of payload.
            payload, = struct.unpack_from(">I", data, 104)
            corpus.add("luks_header", data[:4096], label + "-header")
            corpus.add("luks_header", data[:payload * 512 + 512], label)
            corpus.add("info_probe", data[:payload * 512 + 512], label)

        for label, path in vhdx_images(tmp):
            data = read(path)
            for t in ("info_vhdx", "check_vhdx", "info_probe", "compare", "measure", "convert"):
                corpus.add(t, trimmed(data), label)
            add_map(corpus, trimmed(data), label)
            corpus.add("read_vhdx", vhdx_read_input(data), label)
            corpus.add("write_formats", b"\x02" + data, label)
            if data[0x100000:0x100004] == b"loge":
                corpus.add("write_formats", b"\x02" + vhdx_log_to_replay(data), label + "-replay")
            vhdx_slices(corpus, label, data)

    deflate_seeds(corpus)
    for i, s in enumerate(SIZES):
        corpus.add("size", s.encode(), f"s{i}")
    corpus.add("size", b"1\xffk", "bytes")
    for i, o in enumerate(OPTIONS):
        corpus.add("options", o.encode(), f"o{i}")
    corpus.add("options", b"backing_file=\xff\xfe,size=1M", "bytes")
    for i, o in enumerate(IMAGE_OPTS):
        corpus.add("image_opts", o.encode(), f"i{i}")
    for i, a in enumerate(ARGS):
        corpus.add("cli", b"\0".join(x.encode() for x in a), f"a{i}")
    corpus.add("cli", b"info\0-f\0qcow2\0caf\xc3\xa9\xff.img", "bytes")
    for target in sorted(corpus.count):
        print(f"seeds: {corpus.count[target]:3d} for {target}")


if __name__ == "__main__":
    main()
