//! `instar compare`'s walk over a hostile image: the probe picks the
//! driver, the image opens as `compare` opens it (`OpenFlags::READ`), and
//! the block layer compares it (`instar_block::compare_opened`) with
//! itself, plainly and in strict mode, and with a raw disk of zeros of its
//! size. The input is the image, with any files beside it as
//! `instar_fuzz::split_files` reads them.
//!
//! Invariants asserted: the walk ends; a disk is identical to itself
//! (exit 0 and `Images are identical.`) unless a block status or a read
//! fails (exit 3 or 4, with a message on stderr); strict mode exits 0, 1,
//! 3 or 4; against zeros, a mismatch names an offset inside the disk.
#![no_main]

use instar_block::{compare_opened, Chain};
use instar_core::diag::render_all;
use instar_core::{Format, ImageFile, OpenFlags};
use libfuzzer_sys::fuzz_target;

/// The largest disk compared: a header may claim any size, and reading
/// exabytes of data would only be slow.
const MAX_DISK: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Some(chain) = instar_fuzz::read_chain(data) else { return };
    let len = chain.len();
    if len > MAX_DISK {
        return;
    }
    let result = compare_opened(&chain, &chain, ("a", "a"), false);
    let stderr = render_all(&result.stderr, instar_fuzz::PROG);
    match result.code {
        0 => assert_eq!(result.stdout, "Images are identical.\n"),
        3 | 4 => assert!(!stderr.is_empty(), "a failure says why"),
        code => panic!("a disk compared with itself exited {code}: {}", result.stdout),
    }
    // Strict mode compares block status too, which a driver may answer
    // differently once a read found corruption: only the walk's end and
    // its exit codes are certain.
    let strict = compare_opened(&chain, &chain, ("a", "a"), true);
    assert!(matches!(strict.code, 0 | 1 | 3 | 4), "exit {}", strict.code);
    #[allow(clippy::cast_possible_truncation, reason = "at most MAX_DISK")]
    let zeros = ImageFile::from_bytes("zeros.raw", vec![0; len as usize]);
    let Ok(raw) = instar_raw::Raw.open(zeros, OpenFlags::READ) else { return };
    let zeros = Chain::new(vec![raw]);
    let result = compare_opened(&chain, &zeros, ("a", "zeros"), false);
    if result.code == 1 {
        let offset: u64 = result
            .stdout
            .strip_prefix("Content mismatch at offset ")
            .and_then(|rest| rest.strip_suffix("!\n"))
            .and_then(|n| n.parse().ok())
            .expect("a mismatch names its offset");
        assert!(offset < len.max(1), "the mismatch lies inside the disk");
    }
});
