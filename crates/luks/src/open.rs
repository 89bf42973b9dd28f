//! qemu's open of a LUKS header without its key (`qcrypto_block_luks_open`
//! with `QCRYPTO_BLOCK_OPEN_NO_IO`): the header is checked
//! (`qcrypto_block_luks_check_header`), then its names are parsed into
//! algorithms (`qcrypto_block_luks_parse_header`), each step in qemu's
//! order with qemu's message, as the qemu-img version asked for does it.
//! Nothing is decrypted: the key slots are only located.

use crate::algorithms::{self, Cipher, Hash, IVGEN_ESSIV, MODE_XTS};
use crate::error::LuksError;
use crate::keyslot::{KEY_SLOT_DISABLED, KEY_SLOT_ENABLED, STRIPES};
use crate::phdr::{
    field_str, Phdr, CIPHER_MODE_AT, CIPHER_NAME_AT, HASH_SPEC_AT, HEADER_SECTORS, MAGIC,
    NUM_KEY_SLOTS, VERSION,
};
use instar_core::dialect::{
    QemuDialect, LUKS_QUOTED_NAMES, LUKS_RANGES_OVERLAP, LUKS_STRICT_HEADER,
};

/// A header qemu opened, with the algorithms its names stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Luks {
    /// The header as read.
    pub header: Phdr,
    /// The payload cipher.
    pub cipher: Cipher,
    /// Its mode.
    pub cipher_mode: &'static str,
    /// The IV generator.
    pub ivgen: &'static str,
    /// The IV generator's hash, when the mode names one.
    pub ivgen_hash: Option<Hash>,
    /// The PBKDF2 hash.
    pub hash: Hash,
}

/// Opens the header in `bytes` (its first 592 bytes; shorter input reads
/// as zeros) as qemu-img of `dialect` opens it without a key. `detached`
/// is qemu's `QCRYPTO_BLOCK_OPEN_DETACHED` (a header apart from its
/// payload, which qemu-img's `info` never asks for).
pub fn open(bytes: &[u8], dialect: QemuDialect, detached: bool) -> Result<Luks, LuksError> {
    let header = Phdr::from_bytes(bytes);
    check(&header, dialect, detached)?;
    parse(header, dialect)
}

/// `qcrypto_block_luks_check_header`.
fn check(h: &Phdr, dialect: QemuDialect, detached: bool) -> Result<(), LuksError> {
    if &h.magic != MAGIC {
        return Err(LuksError::NotLuks);
    }
    if h.version != VERSION {
        return Err(LuksError::Version(h.version));
    }
    let strict = dialect.since(LUKS_STRICT_HEADER);
    if strict {
        for (field, name) in [
            (&h.cipher_name[..], "cipher name"),
            (&h.cipher_mode[..], "cipher mode"),
            (&h.hash_spec[..], "hash spec"),
        ] {
            if field_str(field).is_none() {
                return Err(LuksError::Unterminated(name));
            }
        }
        if !detached && h.payload_offset_sector < HEADER_SECTORS {
            return Err(LuksError::PayloadOverlapsHeader);
        }
        if h.master_key_iterations == 0 {
            return Err(LuksError::MasterKeyIterationsZero);
        }
    }
    let len = |i: usize| h.key_slots[i].splitkey_sectors(h.master_key_len, HEADER_SECTORS);
    for (i, slot) in h.key_slots.iter().enumerate() {
        let (start1, len1) = (slot.key_offset_sector, len(i));
        if strict && slot.stripes != STRIPES {
            // qemu prints the count with %d.
            return Err(LuksError::Stripes(i, i32::from_ne_bytes(slot.stripes.to_ne_bytes())));
        }
        if !strict && slot.stripes == 0 {
            return Err(LuksError::StripesZero(i));
        }
        if slot.active != KEY_SLOT_DISABLED && slot.active != KEY_SLOT_ENABLED {
            return Err(LuksError::SlotState(i));
        }
        if strict {
            if slot.active == KEY_SLOT_ENABLED && slot.iterations == 0 {
                return Err(LuksError::SlotIterationsZero(i));
            }
            if start1 < HEADER_SECTORS {
                return Err(LuksError::SlotOverlapsHeader(i));
            }
        }
        // qemu adds in `unsigned int`.
        if !detached && start1.wrapping_add(len1) > h.payload_offset_sector {
            return Err(LuksError::SlotOverlapsPayload(i));
        }
        for j in i + 1..NUM_KEY_SLOTS {
            let (start2, len2) = (h.key_slots[j].key_offset_sector, len(j));
            if overlap(start1, len1, start2, len2, dialect) {
                return Err(LuksError::SlotsOverlap(i, j));
            }
        }
    }
    Ok(())
}

/// Whether two runs of key material overlap, as qemu-img of `dialect`
/// decides it: since 9.1 `ranges_overlap()` in 64 bits, where a run of
/// length zero ends one before its start (wrapping below zero); before,
/// two comparisons of sums in 32 bits.
fn overlap(start1: u32, len1: u32, start2: u32, len2: u32, dialect: QemuDialect) -> bool {
    if dialect.since(LUKS_RANGES_OVERLAP) {
        let last =
            |start: u32, len: u32| u64::from(start).wrapping_add(u64::from(len)).wrapping_sub(1);
        let (last1, last2) = (last(start1, len1), last(start2, len2));
        !(last2 < u64::from(start1) || last1 < u64::from(start2))
    } else {
        start1.wrapping_add(len1) > start2 && start2.wrapping_add(len2) > start1
    }
}

/// `qcrypto_block_luks_parse_header`: the cipher mode field is
/// `<mode>-<ivgen>[:<ivhash>]`; the names are looked up in qemu's order.
fn parse(header: Phdr, dialect: QemuDialect) -> Result<Luks, LuksError> {
    let quoted = dialect.since(LUKS_QUOTED_NAMES);
    let not_supported =
        |what, name: &[u8]| LuksError::NotSupported { what, name: name.to_vec(), quoted };
    // Since 7.2 every name ends within its field (checked above); before,
    // a name runs on through the header as qemu held it in memory.
    let mode_field = header.run_on_name(CIPHER_MODE_AT);
    let Some(dash) = mode_field.iter().position(|&c| c == b'-') else {
        return Err(LuksError::CipherModeFormat { mode: mode_field, quoted });
    };
    let (mode_name, ivgen_part) = (&mode_field[..dash], &mode_field[dash + 1..]);
    let (ivgen_name, ivhash_name) = match ivgen_part.iter().position(|&c| c == b':') {
        Some(colon) => (&ivgen_part[..colon], Some(&ivgen_part[colon + 1..])),
        None => (ivgen_part, None),
    };
    let ivgen_hash = match ivhash_name {
        Some(name) => Some(
            algorithms::hash(name, dialect).ok_or_else(|| not_supported("Hash algorithm", name))?,
        ),
        None => None,
    };
    let cipher_mode = algorithms::cipher_mode(mode_name)
        .ok_or_else(|| not_supported("Cipher mode", mode_name))?;
    let family = header.run_on_name(CIPHER_NAME_AT);
    // An XTS key is two keys; qemu halves the length, rounding down.
    let key_bytes =
        if cipher_mode == MODE_XTS { header.master_key_len / 2 } else { header.master_key_len };
    let cipher = algorithms::cipher(&family, key_bytes).ok_or_else(|| {
        LuksError::CipherKeySize {
            name: family.clone(),
            // qemu prints the count with %d.
            key_bytes: i32::from_ne_bytes(key_bytes.to_ne_bytes()),
            quoted,
        }
    })?;
    let hash_name = header.run_on_name(HASH_SPEC_AT);
    let hash = algorithms::hash(&hash_name, dialect)
        .ok_or_else(|| not_supported("Hash algorithm", &hash_name))?;
    let ivgen =
        algorithms::ivgen(ivgen_name).ok_or_else(|| not_supported("IV generator", ivgen_name))?;
    if ivgen == IVGEN_ESSIV {
        // qemu tells a missing hash from an unknown one: the latter failed
        // above.
        let Some(ivhash) = ivgen_hash else {
            return Err(LuksError::MissingIvHash);
        };
        algorithms::essiv_cipher(cipher, ivhash).map_err(LuksError::Essiv)?;
    }
    Ok(Luks { header, cipher, cipher_mode, ivgen, ivgen_hash, hash })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phdr::{HASH_SPEC_LEN, HEADER_SIZE};
    use instar_core::QemuVersion;

    fn v(major: u32, minor: u32) -> QemuDialect {
        QemuDialect::new(QemuVersion::new(major, minor, 0))
    }

    /// The sample header of `phdr`'s tests, changed by `edit`, opened as
    /// `dialect`; the error text or `ok`.
    fn open_with(dialect: QemuDialect, edit: impl Fn(&mut Vec<u8>)) -> String {
        let mut b = crate::phdr::tests::sample();
        edit(&mut b);
        match open(&b, dialect, false) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }

    fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
        b[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn name(b: &mut [u8], at: usize, text: &str) {
        b[at..at + 32].fill(0);
        put(b, at, text.as_bytes());
    }

    const SLOTS: usize = 208;
    const PAYLOAD: usize = 104;

    #[test]
    fn a_sound_header_opens() {
        let l = open(&crate::phdr::tests::sample(), v(10, 0), false).unwrap();
        assert_eq!(
            (l.cipher.name, l.cipher_mode, l.ivgen, l.hash.name),
            ("aes-256", "xts", "plain64", "sha256")
        );
        assert_eq!(l.ivgen_hash, None);
    }

    #[test]
    fn header_faults_in_qemu_s_order_and_words() {
        let new = v(10, 0);
        assert_eq!(open_with(new, |b| b[0] = b'X'), "Volume is not in LUKS format");
        assert_eq!(open_with(new, |b| b[7] = 2), "LUKS version 2 is not supported");
        assert_eq!(
            open_with(new, |b| b[8..40].fill(b'a')),
            "LUKS header cipher name is not NUL terminated"
        );
        assert_eq!(
            open_with(new, |b| b[40..72].fill(b'x')),
            "LUKS header cipher mode is not NUL terminated"
        );
        assert_eq!(
            open_with(new, |b| b[72..104].fill(b's')),
            "LUKS header hash spec is not NUL terminated"
        );
        assert_eq!(
            open_with(new, |b| put(b, PAYLOAD, &2u32.to_be_bytes())),
            "LUKS payload is overlapping with the header"
        );
        assert_eq!(open_with(new, |b| put(b, 164, &[0; 4])), "LUKS key iteration count is zero");
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 3 * 48 + 44, &5u32.to_be_bytes())),
            "Keyslot 3 is corrupted (stripes 5 != 4000)"
        );
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 3 * 48 + 44, &u32::MAX.to_be_bytes())),
            "Keyslot 3 is corrupted (stripes -1 != 4000)"
        );
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 2 * 48, &1u32.to_be_bytes())),
            "Keyslot 2 state (active/disable) is corrupted"
        );
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 4, &[0; 4])),
            "Keyslot 0 iteration count is zero"
        );
        // An inactive slot may have no iterations.
        assert_eq!(open_with(new, |b| put(b, SLOTS + 48 + 4, &[0; 4])), "ok");
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 40, &4u32.to_be_bytes())),
            "Keyslot 0 is overlapping with the LUKS header"
        );
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 7 * 48 + 40, &4000u32.to_be_bytes())),
            "Keyslot 7 is overlapping with the encrypted payload"
        );
        assert_eq!(
            open_with(new, |b| put(b, SLOTS + 5 * 48 + 40, &(8u32 + 4 * 504).to_be_bytes())),
            "Keyslots 4 and 5 are overlapping in the header"
        );
    }

    #[test]
    fn before_7_2_fewer_checks_and_names_run_on() {
        let old = v(5, 2);
        assert_eq!(open_with(old, |b| put(b, SLOTS + 4, &[0; 4])), "ok");
        assert_eq!(open_with(old, |b| put(b, SLOTS + 40, &4u32.to_be_bytes())), "ok");
        assert_eq!(open_with(old, |b| put(b, 164, &[0; 4])), "ok");
        assert_eq!(open_with(old, |b| put(b, SLOTS + 3 * 48 + 44, &5u32.to_be_bytes())), "ok");
        assert_eq!(
            open_with(old, |b| put(b, SLOTS + 44, &[0; 4])),
            "Keyslot 0 is corrupted (stripes == 0)"
        );
        assert_eq!(
            open_with(old, |b| put(b, PAYLOAD, &2u32.to_be_bytes())),
            "Keyslot 0 is overlapping with the encrypted payload"
        );
        assert_eq!(
            open_with(old, |b| b[8..40].fill(b'a')),
            format!("Algorithm {}xts-plain64 with key size 32 bytes not supported", "a".repeat(32))
        );
        assert_eq!(
            open_with(old, |b| b[40..72].fill(b'x')),
            format!("Unexpected cipher mode string format {}sha256", "x".repeat(32))
        );
        let mut want = "Hash algorithm ".to_string();
        want.push_str(&"s".repeat(HASH_SPEC_LEN));
        want.push_str(&instar_core::rawtext::from_bytes(&[0xc8, 0x0f]));
        want.push_str(" not supported");
        assert_eq!(open_with(old, |b| b[72..104].fill(b's')), want);
    }

    #[test]
    fn short_headers_overlap_by_each_release_s_arithmetic() {
        let cut = |b: &mut Vec<u8>| b[300..HEADER_SIZE].fill(0);
        assert_eq!(open_with(v(10, 0), cut), "Keyslots 0 and 2 are overlapping in the header");
        assert_eq!(open_with(v(7, 2), cut), "Keyslot 1 is corrupted (stripes 0 != 4000)");
        assert_eq!(open_with(v(5, 2), cut), "Keyslot 1 is corrupted (stripes == 0)");
    }

    #[test]
    fn name_faults() {
        let new = v(10, 0);
        let old = v(5, 2);
        assert_eq!(
            open_with(new, |b| name(b, 40, "xts")),
            "Unexpected cipher mode string format 'xts'"
        );
        assert_eq!(
            open_with(old, |b| name(b, 40, "xts")),
            "Unexpected cipher mode string format xts"
        );
        assert_eq!(
            open_with(new, |b| name(b, 40, "xts-plain64:sha257")),
            "Hash algorithm 'sha257' not supported"
        );
        assert_eq!(
            open_with(new, |b| name(b, 40, "xts-plain64:")),
            "Hash algorithm '' not supported"
        );
        assert_eq!(
            open_with(old, |b| name(b, 40, "xts-plain64:")),
            "Hash algorithm  not supported"
        );
        assert_eq!(
            open_with(new, |b| name(b, 40, "foo-plain64")),
            "Cipher mode 'foo' not supported"
        );
        assert_eq!(
            open_with(new, |b| name(b, 8, "foo")),
            "Algorithm 'foo' with key size 32 bytes not supported"
        );
        assert_eq!(
            open_with(new, |b| name(b, 72, "sha257")),
            "Hash algorithm 'sha257' not supported"
        );
        assert_eq!(
            open_with(new, |b| name(b, 40, "xts-bogus")),
            "IV generator 'bogus' not supported"
        );
        // The key size is checked before the IV generator.
        assert_eq!(
            open_with(new, |b| name(b, 40, "cbc-essiv")),
            "Algorithm 'aes' with key size 64 bytes not supported"
        );
        assert_eq!(
            open_with(new, |b| {
                name(b, 40, "cbc-essiv");
                put(b, 108, &32u32.to_be_bytes());
            }),
            "Missing IV generator hash specification"
        );
        assert_eq!(
            open_with(new, |b| {
                name(b, 8, "cast5");
                name(b, 40, "cbc-essiv:sha256");
                put(b, 108, &16u32.to_be_bytes());
            }),
            "Cipher cast5-128 not supported with essiv"
        );
        assert_eq!(
            open_with(new, |b| {
                name(b, 40, "cbc-essiv:sha1");
                put(b, 108, &16u32.to_be_bytes());
            }),
            "No AES cipher with key size 20 available"
        );
        assert_eq!(
            open_with(new, |b| {
                name(b, 40, "cbc-plain64");
                put(b, 108, &u32::MAX.to_be_bytes());
                // Slot lengths wrap: keep them clear of each other.
                for (i, offset) in (0..8u32).map(|i| 8 + i * 504).enumerate() {
                    put(b, SLOTS + i * 48 + 40, &offset.to_be_bytes());
                }
            }),
            "Keyslot 0 is overlapping with the encrypted payload"
        );
        assert_eq!(
            open_with(v(9, 1), |b| name(b, 72, "sm3")),
            "Hash algorithm 'sm3' not supported"
        );
        assert_eq!(open_with(new, |b| name(b, 72, "sm3")), "ok");
    }
}
