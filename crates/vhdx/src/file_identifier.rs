//! The file identifier: the first 64 KiB of every VHDX file, holding the
//! signature `vhdxfile` and an informational UTF-16 creator string.

/// Where the file identifier starts.
pub const FILE_ID_OFFSET: u64 = 0;

/// The signature that opens every VHDX file.
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";

/// The creator field holds at most 256 UTF-16 code units (bytes 8..520).
pub const CREATOR_MAX_UNITS: usize = 256;

/// qemu's probe score for a file that starts with the signature.
pub const PROBE_SCORE: u32 = 100;

/// The creator instar writes: its own name and version (qemu writes
/// `QEMU v<version>`; the field is diagnostic only).
pub fn instar_creator() -> String {
    format!("instar {}", env!("CARGO_PKG_VERSION"))
}

/// The file identifier as written: the signature, then the creator in
/// UTF-16LE without a terminator. qemu writes exactly these bytes and
/// leaves the rest of the 64 KiB block sparse.
pub fn to_bytes(creator: &str) -> Vec<u8> {
    let mut out = FILE_SIGNATURE.to_vec();
    for unit in creator.encode_utf16().take(CREATOR_MAX_UNITS) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// Whether `head` starts with the VHDX signature.
pub fn has_signature(head: &[u8]) -> bool {
    head.len() >= FILE_SIGNATURE.len() && &head[..FILE_SIGNATURE.len()] == FILE_SIGNATURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_is_signature_then_utf16le() {
        assert_eq!(to_bytes("Ab"), b"vhdxfileA\0b\0".to_vec());
        assert!(has_signature(&to_bytes(&instar_creator())));
        assert!(!has_signature(b"vhdxfil"));
        assert!(instar_creator().starts_with("instar "));
    }
}
