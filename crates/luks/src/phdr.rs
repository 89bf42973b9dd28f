//! The LUKS partition header (LUKS1 spec §2.4, "phdr"; qemu's
//! `QCryptoBlockLUKSHeader`): 592 bytes at the start of the volume (or of
//! qcow2's crypto header area), big-endian, naming the cipher, where the
//! payload starts, the master key's digest, salt and iterations, the
//! volume's UUID, and eight key slots ([`crate::keyslot`]).

use crate::keyslot::{KeySlot, KEY_SLOT_SIZE, SECTOR_SIZE};
use instar_core::bytes::{be16, be32};

/// The magic, `LUKS\xba\xbe`.
pub const MAGIC: &[u8; MAGIC_LEN] = b"LUKS\xba\xbe";
/// Bytes of the magic.
pub const MAGIC_LEN: usize = 6;
/// The only version qemu reads.
pub const VERSION: u16 = 1;
/// Bytes of the cipher name field (`LUKS_CIPHERNAME_L`).
pub const CIPHER_NAME_LEN: usize = 32;
/// Bytes of the cipher mode field (`LUKS_CIPHERMODE_L`).
pub const CIPHER_MODE_LEN: usize = 32;
/// Bytes of the hash spec field (`LUKS_HASHSPEC_L`).
pub const HASH_SPEC_LEN: usize = 32;
/// Bytes of the master key digest (`LUKS_DIGESTSIZE`).
pub const DIGEST_LEN: usize = 20;
/// Bytes of the master key salt (`LUKS_SALTSIZE`).
pub const SALT_LEN: usize = 32;
/// Bytes of the UUID text field (`UUID_STRING_L`).
pub const UUID_LEN: usize = 40;
/// Key slots in a header (`LUKS_NUMKEYS`).
pub const NUM_KEY_SLOTS: usize = 8;
/// Bytes of the whole header.
pub const HEADER_SIZE: usize = 592;
/// Where the key material of the first slot may start at the earliest:
/// cryptsetup leaves the rest of the first 4 KiB to the header
/// (qemu's `QCRYPTO_BLOCK_LUKS_KEY_SLOT_OFFSET`).
pub const KEY_SLOT_OFFSET: u64 = 4096;
/// [`KEY_SLOT_OFFSET`] in sectors: the header's own length in sectors.
pub const HEADER_SECTORS: u32 = 8;
const _: () = assert!(HEADER_SECTORS as u64 * SECTOR_SIZE == KEY_SLOT_OFFSET);

/// Offset of the version field.
const VERSION_AT: usize = 6;
/// Offset of the cipher name.
pub const CIPHER_NAME_AT: usize = 8;
/// Offset of the cipher mode.
pub const CIPHER_MODE_AT: usize = CIPHER_NAME_AT + CIPHER_NAME_LEN;
/// Offset of the hash spec.
pub const HASH_SPEC_AT: usize = CIPHER_MODE_AT + CIPHER_MODE_LEN;
/// Offset of the payload offset.
const PAYLOAD_OFFSET_AT: usize = HASH_SPEC_AT + HASH_SPEC_LEN;
/// Offset of the master key length.
const KEY_BYTES_AT: usize = PAYLOAD_OFFSET_AT + 4;
/// Offset of the master key digest.
const DIGEST_AT: usize = KEY_BYTES_AT + 4;
/// Offset of the master key salt.
const SALT_AT: usize = DIGEST_AT + DIGEST_LEN;
/// Offset of the master key iterations.
const ITERATIONS_AT: usize = SALT_AT + SALT_LEN;
/// Offset of the UUID.
const UUID_AT: usize = ITERATIONS_AT + 4;
/// Offset of the first key slot.
const KEY_SLOTS_AT: usize = UUID_AT + UUID_LEN;

/// The partition header, fields in on-disk order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phdr {
    /// `LUKS\xba\xbe` in a LUKS volume.
    pub magic: [u8; MAGIC_LEN],
    /// The LUKS version.
    pub version: u16,
    /// The cipher name (`aes`), NUL-padded.
    pub cipher_name: [u8; CIPHER_NAME_LEN],
    /// The cipher mode and IV generator (`xts-plain64`,
    /// `cbc-essiv:sha256`), NUL-padded.
    pub cipher_mode: [u8; CIPHER_MODE_LEN],
    /// The PBKDF2 hash (`sha256`), NUL-padded.
    pub hash_spec: [u8; HASH_SPEC_LEN],
    /// First sector of the encrypted payload.
    pub payload_offset_sector: u32,
    /// Bytes of the master key (`key-bytes`).
    pub master_key_len: u32,
    /// PBKDF2 digest of the master key.
    pub master_key_digest: [u8; DIGEST_LEN],
    /// Salt of that digest.
    pub master_key_salt: [u8; SALT_LEN],
    /// PBKDF2 iterations of that digest.
    pub master_key_iterations: u32,
    /// The volume's UUID as text, NUL-padded.
    pub uuid: [u8; UUID_LEN],
    /// The key slots.
    pub key_slots: [KeySlot; NUM_KEY_SLOTS],
}

/// `N` bytes of `b` from `at`, zeros where `b` is short.
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(tail) = b.get(at..) {
        let n = tail.len().min(N);
        out[..n].copy_from_slice(&tail[..n]);
    }
    out
}

impl Phdr {
    /// The header in `b`, its first [`HEADER_SIZE`] bytes (shorter input
    /// reads as zeros, as qemu reads past the end of a file).
    pub fn from_bytes(b: &[u8]) -> Phdr {
        let key_slots = std::array::from_fn(|i| {
            let at = KEY_SLOTS_AT + i * KEY_SLOT_SIZE;
            KeySlot::from_bytes(&array::<KEY_SLOT_SIZE>(b, at))
        });
        Phdr {
            magic: array(b, 0),
            version: be16(b, VERSION_AT),
            cipher_name: array(b, CIPHER_NAME_AT),
            cipher_mode: array(b, CIPHER_MODE_AT),
            hash_spec: array(b, HASH_SPEC_AT),
            payload_offset_sector: be32(b, PAYLOAD_OFFSET_AT),
            master_key_len: be32(b, KEY_BYTES_AT),
            master_key_digest: array(b, DIGEST_AT),
            master_key_salt: array(b, SALT_AT),
            master_key_iterations: be32(b, ITERATIONS_AT),
            uuid: array(b, UUID_AT),
            key_slots,
        }
    }

    /// The header as qemu holds it in memory after reading it: the same
    /// bytes with every number in the host's (little-endian) order,
    /// followed by the NUL that the zeroed fields after it in qemu's
    /// `QCryptoBlockLUKS` provide. Before 7.2 qemu read the three names as
    /// C strings here, so a name without its NUL ran on into the fields
    /// after it ([`Phdr::run_on_name`]).
    fn in_memory(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(HEADER_SIZE + 1);
        m.extend_from_slice(&self.magic);
        m.extend_from_slice(&self.version.to_le_bytes());
        m.extend_from_slice(&self.cipher_name);
        m.extend_from_slice(&self.cipher_mode);
        m.extend_from_slice(&self.hash_spec);
        m.extend_from_slice(&self.payload_offset_sector.to_le_bytes());
        m.extend_from_slice(&self.master_key_len.to_le_bytes());
        m.extend_from_slice(&self.master_key_digest);
        m.extend_from_slice(&self.master_key_salt);
        m.extend_from_slice(&self.master_key_iterations.to_le_bytes());
        m.extend_from_slice(&self.uuid);
        for s in &self.key_slots {
            m.extend_from_slice(&s.active.to_le_bytes());
            m.extend_from_slice(&s.iterations.to_le_bytes());
            m.extend_from_slice(&s.salt);
            m.extend_from_slice(&s.key_offset_sector.to_le_bytes());
            m.extend_from_slice(&s.stripes.to_le_bytes());
        }
        m.push(0);
        m
    }

    /// The C string at `at` of the in-memory header: up to its first NUL,
    /// which may lie beyond the field (see [`Phdr::in_memory`]).
    pub fn run_on_name(&self, at: usize) -> Vec<u8> {
        let m = self.in_memory();
        let tail = m.get(at..).unwrap_or_default();
        let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
        tail[..end].to_vec()
    }

    /// The payload offset in bytes.
    pub fn payload_offset(&self) -> u64 {
        u64::from(self.payload_offset_sector) * SECTOR_SIZE
    }

    /// The UUID as qemu reports it: the field up to its first NUL, at
    /// most [`UUID_LEN`] bytes (`g_strndup`).
    pub fn uuid_bytes(&self) -> &[u8] {
        field_str(&self.uuid).unwrap_or(&self.uuid)
    }
}

/// The C string in a fixed field: the bytes before its first NUL, `None`
/// when the field has no NUL.
pub fn field_str(field: &[u8]) -> Option<&[u8]> {
    field.iter().position(|&c| c == 0).map(|end| &field[..end])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keyslot::{KEY_SLOT_DISABLED, KEY_SLOT_ENABLED, STRIPES};

    /// A header as qemu-img 10.0.2 writes it for `-f luks` (aes-256
    /// xts-plain64 sha256), one field per line.
    pub(crate) fn sample() -> Vec<u8> {
        fn name(s: &str) -> Vec<u8> {
            let mut v = s.as_bytes().to_vec();
            v.resize(32, 0);
            v
        }
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC); // magic
        b.extend_from_slice(&1u16.to_be_bytes()); // version
        b.extend_from_slice(&name("aes")); // cipher_name
        b.extend_from_slice(&name("xts-plain64")); // cipher_mode
        b.extend_from_slice(&name("sha256")); // hash_spec
        b.extend_from_slice(&4040u32.to_be_bytes()); // payload_offset
        b.extend_from_slice(&64u32.to_be_bytes()); // key_bytes
        b.extend_from_slice(&[1; DIGEST_LEN]); // mk_digest
        b.extend_from_slice(&[2; SALT_LEN]); // mk_digest_salt
        b.extend_from_slice(&10581u32.to_be_bytes()); // mk_digest_iter
        let mut uuid = b"a3232d2a-1512-409d-a9bb-f8651a8b8d3e".to_vec();
        uuid.resize(UUID_LEN, 0);
        b.extend_from_slice(&uuid); // uuid
        for i in 0..8u32 {
            let active = if i == 0 { KEY_SLOT_ENABLED } else { KEY_SLOT_DISABLED };
            b.extend_from_slice(&active.to_be_bytes()); // active
            b.extend_from_slice(&(if i == 0 { 42833u32 } else { 0 }).to_be_bytes()); // iterations
            b.extend_from_slice(&[3; 32]); // salt
            b.extend_from_slice(&(8 + i * 504).to_be_bytes()); // key_material_offset
            b.extend_from_slice(&STRIPES.to_be_bytes()); // stripes
        }
        assert_eq!(b.len(), HEADER_SIZE);
        b
    }

    #[test]
    fn reads_every_field() {
        let h = Phdr::from_bytes(&sample());
        assert_eq!(&h.magic, MAGIC);
        assert_eq!(h.version, 1);
        assert_eq!(field_str(&h.cipher_name), Some(&b"aes"[..]));
        assert_eq!(field_str(&h.cipher_mode), Some(&b"xts-plain64"[..]));
        assert_eq!(field_str(&h.hash_spec), Some(&b"sha256"[..]));
        assert_eq!(h.payload_offset(), 2_068_480);
        assert_eq!(h.master_key_len, 64);
        assert_eq!(h.master_key_iterations, 10581);
        assert_eq!(h.uuid_bytes(), b"a3232d2a-1512-409d-a9bb-f8651a8b8d3e");
        assert_eq!(h.key_slots[7].key_offset(), 1_810_432);
        assert_eq!(h.key_slots[0].iterations, 42833);
    }

    #[test]
    fn short_input_reads_as_zeros() {
        let h = Phdr::from_bytes(&sample()[..300]);
        assert_eq!(h.key_slots[1].stripes, 0);
        assert_eq!(h.key_slots[1].key_offset_sector, 512);
        assert_eq!(h.key_slots[7], KeySlot::from_bytes(&[]));
        assert_eq!(Phdr::from_bytes(&[]).version, 0);
    }

    #[test]
    fn unterminated_names_run_on_as_in_memory() {
        let mut b = sample();
        b[HASH_SPEC_AT..HASH_SPEC_AT + 32].fill(b's');
        let h = Phdr::from_bytes(&b);
        // The payload offset follows, in host order: 4040 = c8 0f 00 00.
        let mut want = vec![b's'; 32];
        want.extend_from_slice(&[0xc8, 0x0f]);
        assert_eq!(h.run_on_name(HASH_SPEC_AT), want);
        assert_eq!(h.run_on_name(CIPHER_NAME_AT), b"aes");
        let mut full = sample();
        full[UUID_AT..UUID_AT + UUID_LEN].fill(b'U');
        assert_eq!(Phdr::from_bytes(&full).uuid_bytes(), &[b'U'; UUID_LEN][..]);
    }
}
