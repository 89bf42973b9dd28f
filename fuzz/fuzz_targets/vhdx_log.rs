//! vhdx's log (`vhdx_parse_log` up to the replay a read-only open
//! refuses: `vhdx_log_search`, entry headers, descriptors, CRC-32C). The
//! input is the log's GUID (16 bytes, what the header's `LogGuid` holds)
//! and then the log, placed at 1 MiB in an in-memory file; the header
//! gives the log the input's length rounded up to whole MiB.
#![no_main]

use instar_vhdx::guid::Guid;
use instar_vhdx::header::{Header, HEADER_SECTION_END};
use instar_vhdx::log::needs_replay;
use libfuzzer_sys::fuzz_target;

/// The longest log the target builds (qemu allows up to 4 GiB).
const MAX_LOG: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((guid, log)) = data.split_first_chunk::<16>() else { return };
    let length = (log.len() as u64).div_ceil(HEADER_SECTION_END).max(1) * HEADER_SECTION_END;
    let Ok(log_length) = u32::try_from(length.min(MAX_LOG)) else { return };
    let mut header = Header::new(1, Guid::ZERO, Guid::ZERO, log_length);
    header.log_guid = Guid(*guid);
    let mut bytes = vec![0u8; HEADER_SECTION_END as usize];
    bytes.extend_from_slice(log);
    let file = instar_core::ImageFile::from_bytes("fuzz.vhdx", bytes);
    if let Err(e) = needs_replay(&file, &header) {
        let _ = instar_fuzz::render_error(&e.into_error("fuzz.vhdx"));
    }
});
