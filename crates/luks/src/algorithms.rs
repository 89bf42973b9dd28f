//! The names a LUKS header may use and what qemu makes of them: the QAPI
//! enums qemu parses the names into (`QCryptoCipherMode`,
//! `QCryptoIVGenAlgorithm`, `QCryptoHashAlgorithm`), the cipher name map
//! of `crypto/block-luks.c` (a LUKS cipher name and key size give a QAPI
//! `QCryptoCipherAlgorithm`), and the ESSIV cipher choice. `info` prints
//! the QAPI names.

use instar_core::dialect::{QemuDialect, HASH_SM3};

/// A block cipher qemu can name (`QCryptoCipherAlgorithm`, the ones a
/// LUKS header can reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cipher {
    /// The QAPI name (`aes-256`).
    pub name: &'static str,
    /// Its family as LUKS names it (`aes`).
    pub family: &'static str,
    /// Its key length in bytes.
    pub key_len: u32,
}

const fn c(name: &'static str, family: &'static str, key_len: u32) -> Cipher {
    Cipher { name, family, key_len }
}

/// The ciphers of qemu's LUKS name map, family by family in its order.
pub const CIPHERS: &[Cipher] = &[
    c("aes-128", "aes", 16),
    c("aes-192", "aes", 24),
    c("aes-256", "aes", 32),
    c("cast5-128", "cast5", 16),
    c("serpent-128", "serpent", 16),
    c("serpent-192", "serpent", 24),
    c("serpent-256", "serpent", 32),
    c("twofish-128", "twofish", 16),
    c("twofish-192", "twofish", 24),
    c("twofish-256", "twofish", 32),
];

/// The cipher modes (`QCryptoCipherMode`).
pub const CIPHER_MODES: &[&str] = &["ecb", "cbc", "xts", "ctr"];

/// The XTS mode, whose master key is two keys of the cipher.
pub const MODE_XTS: &str = "xts";

/// The IV generators (`QCryptoIVGenAlgorithm`).
pub const IVGENS: &[&str] = &["plain", "plain64", "essiv"];

/// The IV generator that encrypts the sector number with a hash of the
/// key, and so needs a hash and a cipher of its own.
pub const IVGEN_ESSIV: &str = "essiv";

/// A hash (`QCryptoHashAlgorithm`): its name and digest length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash {
    /// The QAPI name.
    pub name: &'static str,
    /// Bytes of its digest.
    pub digest_len: u32,
}

/// The hashes, in QAPI order.
const HASHES: &[Hash] = &[
    Hash { name: "md5", digest_len: 16 },
    Hash { name: "sha1", digest_len: 20 },
    Hash { name: "sha224", digest_len: 28 },
    Hash { name: "sha256", digest_len: 32 },
    Hash { name: "sha384", digest_len: 48 },
    Hash { name: "sha512", digest_len: 64 },
    Hash { name: "ripemd160", digest_len: 20 },
    Hash { name: "sm3", digest_len: 32 },
];

/// The hash called `name` in qemu-img of `dialect` (`qapi_enum_parse`:
/// the exact name).
pub fn hash(name: &[u8], dialect: QemuDialect) -> Option<Hash> {
    HASHES
        .iter()
        .filter(|h| h.name != "sm3" || dialect.since(HASH_SM3))
        .find(|h| h.name.as_bytes() == name)
        .copied()
}

/// The cipher mode called `name`.
pub fn cipher_mode(name: &[u8]) -> Option<&'static str> {
    CIPHER_MODES.iter().copied().find(|m| m.as_bytes() == name)
}

/// The IV generator called `name`.
pub fn ivgen(name: &[u8]) -> Option<&'static str> {
    IVGENS.iter().copied().find(|m| m.as_bytes() == name)
}

/// The cipher a LUKS header names by `family` and a master key of
/// `key_bytes` (per key: half of an XTS key, truncated as qemu halves it),
/// as `qcrypto_block_luks_cipher_name_lookup` finds it.
pub fn cipher(family: &[u8], key_bytes: u32) -> Option<Cipher> {
    CIPHERS.iter().copied().find(|c| c.family.as_bytes() == family && c.key_len == key_bytes)
}

/// Why [`essiv_cipher`] found no cipher: qemu's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EssivError {
    /// No cipher of the family has a key as long as the digest.
    NoKeySize {
        /// The family as qemu's message names it (`AES`).
        family: &'static str,
        /// The digest length.
        digest_len: u32,
    },
    /// The family has one key size only and the digest does not fit it.
    Unsupported(&'static str),
}

/// The cipher ESSIV uses with `cipher` and `hash`
/// (`qcrypto_block_luks_essiv_cipher`): `cipher` itself when its key is as
/// long as the hash's digest, else the family's cipher with a key that
/// long (dm-crypt's rule).
pub fn essiv_cipher(cipher: Cipher, hash: Hash) -> Result<Cipher, EssivError> {
    if cipher.key_len == hash.digest_len {
        return Ok(cipher);
    }
    let shown = match cipher.family {
        "aes" => "AES",
        "serpent" => "Serpent",
        "twofish" => "Twofish",
        _ => return Err(EssivError::Unsupported(cipher.name)),
    };
    CIPHERS
        .iter()
        .copied()
        .find(|c| c.family == cipher.family && c.key_len == hash.digest_len)
        .ok_or(EssivError::NoKeySize { family: shown, digest_len: hash.digest_len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::QemuVersion;

    fn v(major: u32, minor: u32) -> QemuDialect {
        QemuDialect::new(QemuVersion::new(major, minor, 0))
    }

    #[test]
    fn names_match_exactly() {
        assert_eq!(hash(b"sha256", v(10, 0)).map(|h| h.digest_len), Some(32));
        assert_eq!(hash(b"SHA256", v(10, 0)), None);
        assert_eq!(hash(b"", v(10, 0)), None);
        assert_eq!(hash(b"sm3", v(9, 1)), None);
        assert!(hash(b"sm3", v(9, 2)).is_some());
        assert_eq!(cipher_mode(b"xts"), Some("xts"));
        assert_eq!(cipher_mode(b"xts "), None);
        assert_eq!(ivgen(b"essiv"), Some("essiv"));
    }

    #[test]
    fn ciphers_go_by_family_and_key_size() {
        assert_eq!(cipher(b"aes", 32).map(|c| c.name), Some("aes-256"));
        assert_eq!(cipher(b"cast5", 16).map(|c| c.name), Some("cast5-128"));
        assert_eq!(cipher(b"cast5", 32), None);
        assert_eq!(cipher(b"aes", 0), None);
        assert_eq!(cipher(b"des", 8), None);
    }

    #[test]
    fn essiv_takes_a_key_as_long_as_the_digest() {
        let aes128 = CIPHERS[0];
        let sha256 = Hash { name: "sha256", digest_len: 32 };
        let sha1 = Hash { name: "sha1", digest_len: 20 };
        let md5 = Hash { name: "md5", digest_len: 16 };
        assert_eq!(essiv_cipher(aes128, sha256).map(|c| c.name), Ok("aes-256"));
        assert_eq!(essiv_cipher(aes128, md5).map(|c| c.name), Ok("aes-128"));
        assert_eq!(
            essiv_cipher(aes128, sha1),
            Err(EssivError::NoKeySize { family: "AES", digest_len: 20 })
        );
        assert_eq!(essiv_cipher(CIPHERS[3], sha256), Err(EssivError::Unsupported("cast5-128")));
        assert_eq!(essiv_cipher(CIPHERS[3], md5).map(|c| c.name), Ok("cast5-128"));
    }
}
