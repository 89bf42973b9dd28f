//! One LUKS key slot (LUKS1 spec §2.4, qemu's `QCryptoBlockLUKSKeySlot`):
//! 48 bytes, big-endian, eight of them after the partition header. A slot
//! holds the master key, split into `stripes` anti-forensic stripes and
//! encrypted with a key derived from a passphrase; without the passphrase
//! instar reads only where the material lies and whether the slot is in
//! use.

use instar_core::bytes::be32;

/// Bytes of one key slot on disk.
pub const KEY_SLOT_SIZE: usize = 48;

/// `active` of a slot in use (`LUKS_KEY_ENABLED`).
pub const KEY_SLOT_ENABLED: u32 = 0x00ac_71f3;

/// `active` of a free slot (`LUKS_KEY_DISABLED`).
pub const KEY_SLOT_DISABLED: u32 = 0x0000_dead;

/// Bytes of a slot's PBKDF2 salt (`LUKS_SALTSIZE`).
pub const SALT_LEN: usize = 32;

/// The anti-forensic stripes every slot has (`LUKS_STRIPES`), the only
/// value cryptsetup writes and qemu (since 7.2) accepts.
pub const STRIPES: u32 = 4000;

/// The sector the offsets of the header count in.
pub const SECTOR_SIZE: u64 = 512;

/// One key slot, fields in on-disk order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySlot {
    /// [`KEY_SLOT_ENABLED`], [`KEY_SLOT_DISABLED`], or a damaged value.
    pub active: u32,
    /// PBKDF2 iterations for the passphrase.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: [u8; SALT_LEN],
    /// First sector of the key material.
    pub key_offset_sector: u32,
    /// Anti-forensic stripes of the key material.
    pub stripes: u32,
}

impl KeySlot {
    /// The slot in `b` (at least [`KEY_SLOT_SIZE`] bytes; shorter input
    /// reads as zeros).
    pub fn from_bytes(b: &[u8]) -> KeySlot {
        let mut salt = [0u8; SALT_LEN];
        if let Some(s) = b.get(8..8 + SALT_LEN) {
            salt.copy_from_slice(s);
        }
        KeySlot {
            active: be32(b, 0),
            iterations: be32(b, 4),
            salt,
            key_offset_sector: be32(b, 40),
            stripes: be32(b, 44),
        }
    }

    /// Whether the slot holds a key (`qcrypto_block_luks_slot_active`).
    pub fn is_active(&self) -> bool {
        self.active == KEY_SLOT_ENABLED
    }

    /// The byte offset of the key material, as `info` reports it.
    pub fn key_offset(&self) -> u64 {
        u64::from(self.key_offset_sector) * SECTOR_SIZE
    }

    /// Sectors of key material for a master key of `master_key_len` bytes,
    /// rounded up to `header_sectors`, as qemu's
    /// `qcrypto_block_luks_splitkeylen_sectors` computes it: the product
    /// in 32 bits (qemu multiplies two 32-bit fields), the rest in 64.
    pub fn splitkey_sectors(&self, master_key_len: u32, header_sectors: u32) -> u32 {
        let splitkeylen = u64::from(master_key_len.wrapping_mul(self.stripes));
        let sectors = splitkeylen.div_ceil(SECTOR_SIZE);
        let rounded = sectors.div_ceil(u64::from(header_sectors)) * u64::from(header_sectors);
        // At most 2^23 + 8: qemu's `int` return keeps it whole.
        u32::try_from(rounded).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(active: u32, offset: u32, stripes: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&active.to_be_bytes()); // active
        b.extend_from_slice(&1000u32.to_be_bytes()); // iterations
        b.extend_from_slice(&[7; SALT_LEN]); // salt
        b.extend_from_slice(&offset.to_be_bytes()); // key_offset_sector
        b.extend_from_slice(&stripes.to_be_bytes()); // stripes
        b
    }

    #[test]
    fn reads_every_field() {
        let s = KeySlot::from_bytes(&slot(KEY_SLOT_ENABLED, 8, STRIPES));
        assert!(s.is_active());
        assert_eq!((s.iterations, s.key_offset_sector, s.stripes), (1000, 8, 4000));
        assert_eq!(s.salt, [7; SALT_LEN]);
        assert_eq!(s.key_offset(), 4096);
        assert!(!KeySlot::from_bytes(&slot(KEY_SLOT_DISABLED, 8, STRIPES)).is_active());
    }

    #[test]
    fn key_material_sectors_follow_cryptsetup() {
        let s = KeySlot::from_bytes(&slot(KEY_SLOT_ENABLED, 8, STRIPES));
        // 64 * 4000 = 256000 bytes = 500 sectors, rounded up to 504.
        assert_eq!(s.splitkey_sectors(64, 8), 504);
        assert_eq!(s.splitkey_sectors(32, 8), 256);
        assert_eq!(s.splitkey_sectors(0, 8), 0);
        // The product wraps in 32 bits as qemu's does: 0xffffffff * 4000
        // is 0xfffff060 bytes, 8388601 sectors, 8388608 rounded up.
        assert_eq!(s.splitkey_sectors(u32::MAX, 8), 8_388_608);
        assert_eq!(KeySlot::from_bytes(&[]).stripes, 0);
    }
}
