//! vhdx against qemu-img: the same bytes outside the fields that are
//! random or name the writer (docs/compat.md §3.6), real headers in those
//! fields, the same allocation, the same `info` from qemu-img on both
//! images, `instar info` printing what qemu-img prints on either, a clean
//! check from both programs, refusals in qemu-img's words that leave no
//! file, and data qemu-img can write into instar's image and read back.

use super::Pair;
use crate::util::create_args;
use crate::util::edit::read_at;
use instar_matrix::masks::{vhdx_checksum, VHDX_HEADER_OFFSETS};
use instar_matrix::Target;
use rstest::rstest;
use std::path::Path;

/// Both headers of instar's image are headers qemu accepts (signature,
/// version 1, CRC-32C), with consecutive sequence numbers and non-zero
/// write GUIDs; the file identifier names instar as the creator.
fn headers_are_real(pair: &Pair, path: &Path) {
    let t = &pair.s.t;
    let [h1, h2] = VHDX_HEADER_OFFSETS.map(|at| read_at(path, at, 4096));
    for h in [&h1, &h2] {
        let stored = u32::from_le_bytes(h[4..8].try_into().unwrap());
        t.check(&h[..4] == b"head", || "a header's signature is not `head`".into());
        t.check(h[66..68] == [1, 0], || "a header's version is not 1".into());
        t.check(stored == vhdx_checksum(h, 4), || "a header's checksum is wrong".into());
    }
    let seq = |h: &[u8]| u64::from_le_bytes(h[8..16].try_into().unwrap());
    t.check(seq(&h1) + 1 == seq(&h2), || "the sequence numbers do not follow".into());
    t.check(h1[16..32] != [0; 16] && h1[32..48] != [0; 16], || "a write GUID is zero".into());
    let creator = format!("instar {}", env!("CARGO_PKG_VERSION"));
    let want: Vec<u8> = creator.encode_utf16().flat_map(u16::to_le_bytes).collect();
    t.check(read_at(path, 8, want.len()) == want, || format!("the creator is not {creator:?}"));
}

/// One create case: both programs create, and every comparison holds.
fn create(options: &str, size: &str) {
    let Some(pair) = Pair::new(Target::Vhdx) else { return };
    let created = pair.create(&[], options, size);
    pair.s.t.check(created, || "qemu-img refused the case".into());
    pair.same_bytes();
    headers_are_real(&pair, &pair.mine().join(&pair.image));
    pair.same_blocks();
    pair.same_qemu_info();
    for dir in [pair.theirs(), pair.mine()] {
        pair.info_parity(&dir);
    }
    pair.qemu_finds_mine_clean();
    let code = pair.check_parity(&pair.mine());
    pair.s.t.check(code == Some(0), || format!("check exited {code:?}"));
}

/// Block and log sizes of small images, dynamic and fixed.
#[rstest]
fn small_sweep(
    #[values("1M", "64M")] size: &str,
    #[values("subformat=dynamic", "subformat=fixed")] subformat: &str,
    #[values("1M", "2M", "4M", "8M", "16M", "32M", "64M", "128M", "256M")] block_size: &str,
    #[values("1M", "1536K", "4M")] log_size: &str,
) {
    create(&format!("{subformat},block_size={block_size},log_size={log_size}"), size);
}

#[rstest]
fn small_default(
    #[values("1M", "64M")] size: &str,
    #[values("subformat=dynamic", "subformat=fixed")] subformat: &str,
) {
    create(subformat, size);
}

/// Block and log sizes of large images, dynamic only.
#[rstest]
fn large_sweep(
    #[values("1G", "100G", "2T")] size: &str,
    #[values("1M", "2M", "4M", "8M", "16M", "32M", "64M", "128M", "256M")] block_size: &str,
    #[values("1M", "1536K", "4M")] log_size: &str,
) {
    create(&format!("subformat=dynamic,block_size={block_size},log_size={log_size}"), size);
}

#[rstest]
fn large_default(#[values("1G", "100G", "2T")] size: &str) {
    create("subformat=dynamic", size);
}

/// The five vhdx rows of CREATE_CASES (docs/compat.md §4.1), and odd corners of qemu's
/// arithmetic and rounding.
#[rstest]
#[case::row_1m_default("", "1M")]
#[case::row_64m_default("", "64M")]
#[case::row_1g_default("", "1G")]
#[case::row_1g_block_16m("block_size=16M", "1G")]
#[case::row_1g_block_32m("block_size=32M", "1G")]
#[case::empty("", "0")]
#[case::one_byte("", "1")]
#[case::fixed_1000_bytes("subformat=fixed", "1000")]
#[case::one_sector_past_1g("", "1073742336")]
#[case::dynamic_33t("", "33T")]
#[case::dynamic_64t("", "64T")]
#[case::no_block_state_zero("block_state_zero=off", "1G")]
#[case::fixed_no_block_state_zero("subformat=fixed,block_state_zero=off", "64M")]
#[case::fixed_1m_blocks("subformat=fixed,block_state_zero=off,block_size=1M", "64M")]
#[case::block_size_1("block_size=1", "1G")]
#[case::block_size_1_5m("block_size=1.5M", "1G")]
#[case::block_size_512m("block_size=512M", "1G")]
#[case::block_size_0("block_size=0", "1G")]
#[case::log_size_100("log_size=100", "1G")]
#[case::log_size_3m("log_size=3M", "1G")]
#[case::preallocation_full("preallocation=full", "1G")]
#[case::falloc_nocow_hint("preallocation=falloc,nocow=on,extent_size_hint=1M", "1G")]
// The largest BAT qemu makes: 64 TiB in 1 MiB blocks (512 MiB of entries,
// with sector bitmap entries interleaved).
#[case::largest_bat("block_size=1M", "64T")]
fn odd_sizes_and_options(#[case] options: &str, #[case] size: &str) {
    create(options, size);
}

/// Refused creates: qemu-img's message, and no file left behind.
#[rstest]
#[case::block_size_3m("block_size=3M", "1G")]
#[case::block_size_100m("block_size=100M", "1G")]
#[case::log_size_0("log_size=0", "1G")]
#[case::log_size_4g("log_size=4G", "1G")]
#[case::log_size_5g_block_size_3m("log_size=5G,block_size=3M", "1G")]
#[case::subformat_foo("subformat=foo", "1G")]
#[case::subformat_capitalised("subformat=Fixed", "1G")]
#[case::subformat_differencing("subformat=differencing", "1G")]
#[case::too_large("", "70368744178176")]
#[case::too_large_no_log("log_size=0", "65T")]
#[case::preallocation_metadata("preallocation=metadata", "1G")]
#[case::preallocation_bogus("preallocation=bogus", "1G")]
#[case::extent_size_hint_5t("extent_size_hint=5T", "1G")]
#[case::subformat_foo_preallocation_metadata("subformat=foo,preallocation=metadata", "1G")]
fn refusals(#[case] options: &str, #[case] size: &str) {
    if let Some(pair) = Pair::new(Target::Vhdx) {
        pair.assert_refused(&[], options, size);
    }
}

/// A fixed image larger than the file system allows (16 TiB on ext4):
/// both report EFBIG in qemu-img's words (or, on a file system that takes
/// it, both create the same image).
#[test]
fn fixed_larger_than_the_file_system() {
    let Some(pair) = Pair::new(Target::Vhdx) else { return };
    if pair.create(&[], "subformat=fixed", "20T") {
        pair.same_bytes();
    }
}

/// A file that cannot be created wins over bad options, as in qemu-img.
#[test]
fn missing_folder_wins_over_bad_options() {
    let Some(pair) = Pair::new(Target::Vhdx) else { return };
    let args = ["create", "-f", "vhdx", "-o", "subformat=foo", "no/such/dir/x.vhdx", "1G"];
    let theirs = pair.s.t.run(&pair.s.qemu.path, &args, &pair.theirs());
    let mine = pair.s.t.run(crate::util::instar(), &args, &pair.mine());
    pair.s.t.assert_same_run("create", &theirs, &mine);
}

/// qemu-img writes into instar's dynamic image (a pattern with holes, so
/// that zero blocks and data blocks both occur) and reads back what it
/// wrote; both checks find the image clean and instar's info matches.
#[rstest]
#[case::default("", "64M")]
#[case::small_blocks_odd_log("block_size=1M,log_size=1536K", "64M")]
#[case::no_block_state_zero("block_state_zero=off", "64M")]
#[case::partial_last_block("block_size=2M", "3146240")]
fn qemu_writes_and_reads_back(#[case] options: &str, #[case] size: &str) {
    let Some(pair) = Pair::new(Target::Vhdx) else { return };
    pair.s.instar_ok(&create_args(&["-q"], "vhdx", options, "instar/img.vhdx", size));
    let size = pair.virtual_size(&pair.mine());
    let mut data = vec![0u8; size as usize];
    for (i, chunk) in data.chunks_mut(4096).enumerate() {
        if i % 3 != 1 {
            let v = (i as u32).wrapping_mul(2_654_435_761);
            chunk.iter_mut().enumerate().for_each(|(j, b)| *b = (v >> (j % 4 * 8)) as u8 ^ j as u8);
        }
    }
    let raw = pair.s.file("data.raw");
    std::fs::write(&raw, &data).unwrap();
    pair.qemu_writes_and_reads_back(&raw, &[]);
    pair.qemu_finds_mine_clean();
    let code = pair.check_parity(&pair.mine());
    pair.s.t.check(code == Some(0), || format!("check exited {code:?}"));
    pair.info_parity(&pair.mine());
}
