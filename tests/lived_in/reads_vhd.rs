//! VHDs and VHDX files with guest data in them (issue 13): what a guest
//! leaves behind, written by qemu-io at unaligned offsets, across block
//! boundaries, as zeroed and discarded ranges, in dynamic and fixed disks
//! with small and large blocks; and the shapes only other writers (or a
//! crash) leave: a VHD whose footer says differencing or fixed, a VHDX
//! with a log to replay, BAT entries in every state qemu reads and in the
//! one it refuses. Each kind is compared as every lived-in kind is
//! ([`super::compare`]): `info`, `check`, and the read layer's `map` and
//! `compare` against qemu-img's `convert -O raw` of the image.

use super::Made;
use crate::util::edit::{be64, file_len, read_at, write_at};
use crate::util::Sandbox;
use instar_matrix::masks::vhdx_checksum;

const MIB: u64 = 1 << 20;

/// The VHD footer's fields this module rewrites (big-endian).
mod vhd {
    /// Bytes in a footer.
    pub const FOOTER: usize = 512;
    /// `Disk Type`.
    pub const DISK_TYPE: usize = 60;
    /// `Checksum`.
    pub const CHECKSUM: usize = 64;
    /// `Disk Type` of a fixed disk.
    pub const FIXED: u32 = 2;
    /// `Disk Type` of a differencing disk.
    pub const DIFFERENCING: u32 = 4;
    /// Where a dynamic disk's header starts (after the footer copy).
    pub const DYNAMIC_HEADER: u64 = 512;
    /// The dynamic header's `Table Offset` (of the BAT).
    pub const TABLE_OFFSET: u64 = 16;
}

/// Where qemu-img puts a new VHDX's structures (default log size), and
/// the fields this module rewrites (little-endian).
mod vhdx {
    use super::MIB;
    /// The two headers.
    pub const HEADERS: [u64; 2] = [0x10000, 0x20000];
    /// A header's length, as its checksum covers it.
    pub const HEADER_LEN: usize = 4096;
    /// A header's checksum field.
    pub const CHECKSUM: usize = 4;
    /// A header's `LogGuid`.
    pub const LOG_GUID: usize = 48;
    /// The log region.
    pub const LOG: u64 = MIB;
    /// A log entry's `LogGuid`.
    pub const ENTRY_LOG_GUID: u64 = 32;
    /// The BAT region.
    pub const BAT: u64 = 2 * MIB;
    /// BAT entry state: the block is at the entry's file offset.
    pub const PRESENT: u64 = 6;
}

/// `create -q -f fmt -o opts name size` with the oracle.
fn create(s: &Sandbox, fmt: &str, opts: &str, name: &str, size: &str) {
    if opts.is_empty() {
        s.qemu_ok(&["create", "-q", "-f", fmt, name, size]);
    } else {
        s.qemu_ok(&["create", "-q", "-f", fmt, "-o", opts, name, size]);
    }
}

/// qemu-io `commands` (each one `-c`) on `name` of `fmt`.
fn io(s: &Sandbox, fmt: &str, image: &str, cmds: &[&str]) {
    super::qemu_io_cmds(s, fmt, image, cmds);
}

/// Writes that start and end off every sector and block boundary, in the
/// first block, across the boundary at 4 MiB, and at the end of a 64 MiB
/// disk.
const UNALIGNED: &[&str] = &[
    "write -P 0x11 1000 5000",
    "write -P 0x22 3M 700k",
    "write -P 0x33 4193000 10000",
    "write -P 0x44 60M 4M",
];

/// Zeroed ranges over data and over nothing (neither driver has a zero
/// write of its own: qemu writes zeros).
const ZEROED: &[&str] =
    &["write -P 0x55 0 4M", "write -z 1M 1500k", "write -z 10M 2M", "write -z 3999k 3k"];

/// Discarded ranges over data (neither driver discards: the data stays).
const DISCARDED: &[&str] =
    &["write -P 0x66 0 6M", "discard 2M 2M", "discard 100k 3000", "discard 5M 1M"];

/// Sets the disk type of every footer of the VHD `name` (the copy at the
/// start of a dynamic disk too) to `disk_type`, checksums again.
fn set_disk_type(s: &Sandbox, name: &str, disk_type: u32) {
    let path = s.file(name);
    let end = file_len(&path) - vhd::FOOTER as u64;
    for at in [0, end] {
        let mut f = read_at(&path, at, vhd::FOOTER);
        if &f[..8] != b"conectix" {
            continue;
        }
        f[vhd::DISK_TYPE..vhd::DISK_TYPE + 4].copy_from_slice(&disk_type.to_be_bytes());
        f[vhd::CHECKSUM..vhd::CHECKSUM + 4].fill(0);
        let sum = !f.iter().fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
        f[vhd::CHECKSUM..vhd::CHECKSUM + 4].copy_from_slice(&sum.to_be_bytes());
        write_at(&path, at, &f);
    }
}

/// Sets the BAT entry at `index` of the VHDX `name`.
fn set_bat_entry(s: &Sandbox, name: &str, index: u64, entry: u64) {
    write_at(&s.file(name), vhdx::BAT + 8 * index, &entry.to_le_bytes());
}

/// Points both headers of the VHDX `name` at the log entry at `entry`
/// (an offset in the log): the log it ends must be replayed before the
/// image can be read, as after a crash between writing the log and
/// applying it.
fn make_log_current(s: &Sandbox, name: &str, entry: u64) {
    let path = s.file(name);
    let guid = read_at(&path, vhdx::LOG + entry + vhdx::ENTRY_LOG_GUID, 16);
    for at in vhdx::HEADERS {
        let mut h = read_at(&path, at, vhdx::HEADER_LEN);
        h[vhdx::LOG_GUID..vhdx::LOG_GUID + 16].copy_from_slice(&guid);
        let sum = vhdx_checksum(&h, vhdx::CHECKSUM);
        h[vhdx::CHECKSUM..vhdx::CHECKSUM + 4].copy_from_slice(&sum.to_le_bytes());
        write_at(&path, at, &h);
    }
}

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    const VHD: &str = "d.vhd";
    const VHDX: &str = "d.vhdx";
    match kind {
        "vpc_unaligned" => {
            create(s, "vpc", "", VHD, "64M");
            io(s, "vpc", VHD, UNALIGNED);
            Made::new(VHD, "vpc")
        }
        "vpc_zeroed" => {
            create(s, "vpc", "", VHD, "16M");
            io(s, "vpc", VHD, ZEROED);
            Made::new(VHD, "vpc")
        }
        "vpc_discarded" => {
            create(s, "vpc", "", VHD, "16M");
            io(s, "vpc", VHD, DISCARDED);
            Made::new(VHD, "vpc")
        }
        // One sector of a block written: qemu allocates the whole block
        // (its bitmap all ones) and reads the rest as the zeros it wrote.
        "vpc_partial_block" => {
            create(s, "vpc", "", VHD, "16M");
            io(s, "vpc", VHD, &["write -P 0x77 5M 512", "write -P 0x78 11000k 1"]);
            Made::new(VHD, "vpc")
        }
        // A fixed disk is the file: data where written, holes elsewhere.
        "vpc_fixed" => {
            create(s, "vpc", "subformat=fixed", VHD, "32M");
            io(
                s,
                "vpc",
                VHD,
                &["write -P 0x11 1000 5000", "write -P 0x22 20M 1M", "write -z 21M 64k"],
            );
            Made::new(VHD, "vpc")
        }
        "vpc_fixed_force_size" => {
            create(s, "vpc", "subformat=fixed,force_size=on", VHD, "10000k");
            io(s, "vpc", VHD, &["write -P 0x12 0 64k", "write -P 0x13 9999k 1k"]);
            Made::new(VHD, "vpc")
        }
        // Blocks far apart in a large disk: the unallocated runs between
        // them are one answer each.
        "vpc_large_sparse" => {
            create(s, "vpc", "", VHD, "4G");
            io(
                s,
                "vpc",
                VHD,
                &["write -P 0x21 0 4k", "write -P 0x22 2047M 2M", "write -P 0x23 4000M 1"],
            );
            Made::new(VHD, "vpc")
        }
        // qemu's vpc has no backing files: a differencing disk reads as a
        // dynamic one, its parent never opened.
        "vpc_differencing" => {
            create(s, "vpc", "", VHD, "16M");
            io(s, "vpc", VHD, &["write -P 0x31 3M 100k"]);
            set_disk_type(s, VHD, vhd::DIFFERENCING);
            Made::new(VHD, "vpc")
        }
        // A dynamic disk whose footers say fixed: qemu opens it through
        // its BAT (the footer copy is at the start) but reads the file
        // itself as the disk, footer copy and all.
        "vpc_footer_says_fixed" => {
            create(s, "vpc", "", VHD, "16M");
            io(s, "vpc", VHD, &["write -P 0x41 0 1M"]);
            set_disk_type(s, VHD, vhd::FIXED);
            Made::new(VHD, "vpc")
        }
        "vhdx_unaligned_1m_blocks" => {
            create(s, "vhdx", "block_size=1M", VHDX, "64M");
            io(s, "vhdx", VHDX, UNALIGNED);
            Made::new(VHDX, "vhdx")
        }
        "vhdx_unaligned_32m_blocks" => {
            // Two blocks, a write across their boundary: qemu fills each
            // block it allocates, so the file stays near the disk's size.
            create(s, "vhdx", "block_size=32M", VHDX, "64M");
            io(
                s,
                "vhdx",
                VHDX,
                &["write -P 0x51 1000 5000", "write -P 0x52 31M 2M", "write -P 0x53 63M 1"],
            );
            Made::new(VHDX, "vhdx")
        }
        "vhdx_zeroed" => {
            create(s, "vhdx", "block_size=1M", VHDX, "16M");
            io(s, "vhdx", VHDX, ZEROED);
            Made::new(VHDX, "vhdx")
        }
        "vhdx_discarded" => {
            create(s, "vhdx", "", VHDX, "16M");
            io(s, "vhdx", VHDX, DISCARDED);
            Made::new(VHDX, "vhdx")
        }
        "vhdx_fixed" => {
            create(s, "vhdx", "subformat=fixed,block_size=1M", VHDX, "16M");
            io(s, "vhdx", VHDX, &["write -P 0x61 1000 5000", "write -P 0x62 15M 1M"]);
            Made::new(VHDX, "vhdx")
        }
        // Unwritten blocks not present rather than zero.
        "vhdx_blocks_not_present" => {
            create(s, "vhdx", "block_state_zero=off,block_size=2M", VHDX, "32M");
            io(s, "vhdx", VHDX, &["write -P 0x71 3M 1M", "write -P 0x72 31M 1M"]);
            Made::new(VHDX, "vhdx")
        }
        // Undefined (1), unmapped (3) and the draft's unmapped (5), each
        // with an offset, which qemu ignores: all read as zeros.
        "vhdx_zero_states" => {
            create(s, "vhdx", "block_size=1M", VHDX, "8M");
            io(s, "vhdx", VHDX, &["write -P 0x73 0 8M"]);
            let data = 8 * MIB;
            for (index, state) in [(1, 1), (3, 3), (5, 5)] {
                set_bat_entry(s, VHDX, index, (data + index * MIB) | state);
            }
            Made::new(VHDX, "vhdx")
        }
        // A block partially present (a differencing image's state): qemu
        // cannot read it, so `compare` fails where it reaches it.
        "vhdx_partially_present" => {
            create(s, "vhdx", "block_size=1M", VHDX, "8M");
            io(s, "vhdx", VHDX, &["write -P 0x74 0 3M"]);
            set_bat_entry(s, VHDX, 2, (10 * MIB) | 7);
            Made::new(VHDX, "vhdx")
        }
        // A present block at file offset 0: qemu reads each request's part
        // of it from the start of the file.
        "vhdx_present_at_offset_0" => {
            create(s, "vhdx", "block_size=1M", VHDX, "8M");
            io(s, "vhdx", VHDX, &["write -P 0x75 1M 1M"]);
            set_bat_entry(s, VHDX, 0, vhdx::PRESENT);
            Made::new(VHDX, "vhdx")
        }
        // A crash between writing the log and applying it: read-only
        // commands refuse the image, with qemu's advice.
        "vhdx_log_to_replay" => {
            create(s, "vhdx", "block_size=1M", VHDX, "8M");
            io(s, "vhdx", VHDX, &["write -P 0x76 0 4k", "write -P 0x77 3M 4k"]);
            // The second write's log entry follows the first's (8 KiB).
            make_log_current(s, VHDX, 8192);
            Made::new(VHDX, "vhdx")
        }
        // A BAT entry far past the end of the file: qemu reads the block
        // from where it points (the file protocol's zeros past the end).
        "vhdx_block_past_eof" => {
            create(s, "vhdx", "block_size=1M", VHDX, "8M");
            io(s, "vhdx", VHDX, &["write -P 0x78 0 2M"]);
            set_bat_entry(s, VHDX, 1, (1 << 40) | vhdx::PRESENT);
            Made::new(VHDX, "vhdx")
        }
        // A block whose BAT entry points past the end of the file, and
        // one whose entry points into the BAT itself.
        "vpc_block_past_eof" => {
            create(s, "vpc", "", VHD, "16M");
            io(s, "vpc", VHD, &["write -P 0x42 0 4M"]);
            let bat = be64(&s.file(VHD), vhd::DYNAMIC_HEADER + vhd::TABLE_OFFSET);
            write_at(&s.file(VHD), bat, &0x7fff_ff00u32.to_be_bytes());
            write_at(&s.file(VHD), bat + 4, &u32::try_from(bat / 512).unwrap().to_be_bytes());
            Made::new(VHD, "vpc")
        }
        other => panic!("unknown kind {other}"),
    }
}

kinds!(make;
    vpc_unaligned, vpc_zeroed, vpc_discarded, vpc_partial_block, vpc_fixed,
    vpc_fixed_force_size, vpc_large_sparse, vpc_differencing, vpc_footer_says_fixed,
    vhdx_unaligned_1m_blocks, vhdx_unaligned_32m_blocks, vhdx_zeroed, vhdx_discarded,
    vhdx_fixed, vhdx_blocks_not_present, vhdx_zero_states, vhdx_partially_present,
    vhdx_present_at_offset_0, vhdx_log_to_replay, vhdx_block_past_eof, vpc_block_past_eof,
);
