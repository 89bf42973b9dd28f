//! How long the header of a new LUKS volume would be, and `measure -O
//! luks`. qemu measures a LUKS header by creating one in memory
//! (`qcrypto_block_calculate_payload_offset`); its length depends only on
//! the master key's length, so instar computes it: the partition header
//! padded to [`phdr::KEY_SLOT_OFFSET`], then eight key slots of
//! anti-forensic key material, each rounded up to whole header-alignment
//! units. The options are checked first, in the order qemu's creation
//! checks them, with its messages.

use crate::algorithms::{self, Cipher, MODE_XTS};
use crate::key_secret_required;
use crate::phdr::{HEADER_SECTORS, KEY_SLOT_OFFSET, NUM_KEY_SLOTS};
use instar_core::bytes::SECTOR_SIZE;
use instar_core::{Error, MeasureSource, Measurement, OptDesc, OptType, Options, Secrets};

/// How many stripes the anti-forensic splitter spreads a key slot's copy
/// of the master key over (`QCRYPTO_BLOCK_LUKS_STRIPES`).
pub const STRIPES: u64 = 4000;

/// The cipher of a new volume when none is named (`aes-256`).
const DEFAULT_CIPHER: &str = "aes-256";

/// Ciphers qemu names (`QCryptoCipherAlgorithm`) that LUKS has no name
/// for: accepted as values, refused by the creation.
const NO_LUKS_NAME: &[&str] = &["des", "3des", "sm4"];

/// The option names of a LUKS creation, without the prefix qcow2 adds.
const KEY_SECRET: &str = "key-secret";
const CIPHER_ALG: &str = "cipher-alg";
const CIPHER_MODE: &str = "cipher-mode";
const IVGEN_ALG: &str = "ivgen-alg";
const IVGEN_HASH_ALG: &str = "ivgen-hash-alg";
const HASH_ALG: &str = "hash-alg";
const DETACHED_HEADER: &str = "detached-header";

/// The create options of a LUKS volume (`block_crypto_create_opts_luks`),
/// which `measure -O luks` reads.
pub const CREATE_OPTS: &[OptDesc] = &[
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new(KEY_SECRET, OptType::Str, "ID of secret providing the luks passphrase"),
    OptDesc::new(CIPHER_ALG, OptType::Str, "Name of encryption cipher algorithm"),
    OptDesc::new(CIPHER_MODE, OptType::Str, "Name of encryption cipher mode"),
    OptDesc::new(IVGEN_ALG, OptType::Str, "Name of IV generator algorithm"),
    OptDesc::new(IVGEN_HASH_ALG, OptType::Str, "Name of IV generator hash algorithm"),
    OptDesc::new(HASH_ALG, OptType::Str, "Name of encryption hash algorithm"),
    OptDesc::new("iter-time", OptType::Number, "Time to spend in PBKDF in milliseconds"),
    OptDesc::new(DETACHED_HEADER, OptType::Bool, "Create a detached LUKS header")
        .since(instar_core::dialect::LUKS_DETACHED_HEADER),
];

/// The bytes before the payload of a volume whose master key is
/// `key_bytes` long.
pub fn payload_offset(key_bytes: u64) -> u64 {
    let slot_sectors =
        (key_bytes * STRIPES).div_ceil(SECTOR_SIZE).next_multiple_of(u64::from(HEADER_SECTORS));
    KEY_SLOT_OFFSET + NUM_KEY_SLOTS as u64 * slot_sectors * SECTOR_SIZE
}

/// The header length a LUKS volume created with `opts` would have, the
/// options named `<prefix><name>` (`encrypt.` inside qcow2): qemu's checks
/// of the values (the QAPI enums), then of the secret, in its order.
pub fn header_length(opts: &Options, prefix: &str, secrets: &dyn Secrets) -> Result<u64, Error> {
    let dialect = opts.dialect();
    let get = |name: &str| opts.get_str(&format!("{prefix}{name}"));
    let refuse = |name: &str, value: &str| Error::invalid(dialect.refused_enum_value(name, value));
    let cipher_name = get(CIPHER_ALG).unwrap_or(DEFAULT_CIPHER);
    let cipher: Option<Cipher> =
        algorithms::CIPHERS.iter().copied().find(|c| c.name == cipher_name);
    if cipher.is_none() && !NO_LUKS_NAME.contains(&cipher_name) {
        return Err(refuse(CIPHER_ALG, cipher_name));
    }
    let mode = match get(CIPHER_MODE) {
        None => MODE_XTS,
        Some(m) => algorithms::cipher_mode(m.as_bytes()).ok_or_else(|| refuse(CIPHER_MODE, m))?,
    };
    if let Some(iv) = get(IVGEN_ALG) {
        algorithms::ivgen(iv.as_bytes()).ok_or_else(|| refuse(IVGEN_ALG, iv))?;
    }
    for name in [IVGEN_HASH_ALG, HASH_ALG] {
        if let Some(h) = get(name) {
            algorithms::hash(h.as_bytes(), dialect).ok_or_else(|| refuse(name, h))?;
        }
    }
    // measure's options reach the creation through a filter that knows
    // no detached header: the option is refused as unknown.
    if opts.is_set(&format!("{prefix}{DETACHED_HEADER}")) {
        return Err(Error::invalid(format!("Parameter '{DETACHED_HEADER}' is unexpected")));
    }
    let Some(secret) = get(KEY_SECRET) else {
        return Err(Error::invalid(key_secret_required(prefix)));
    };
    if !secrets.has_secret(secret) {
        return Err(Error::invalid(format!("No secret with id '{secret}'")));
    }
    // qemu's creation maps the cipher to a LUKS name before anything
    // else, and then makes the cipher, which refuses a mode the cipher's
    // block size cannot run.
    let Some(cipher) = cipher else {
        return Err(Error::invalid(format!("Algorithm '{cipher_name}' not supported")));
    };
    if mode == MODE_XTS && cipher.family == "cast5" {
        return Err(Error::invalid(format!("Unsupported cipher mode {mode}")));
    }
    let key = u64::from(cipher.key_len) * if mode == MODE_XTS { 2 } else { 1 };
    Ok(payload_offset(key))
}

/// `measure -O luks`: the header, then the disk (the source's length, or
/// the size asked for, not rounded); allocation makes no difference, as
/// every sector of the payload is encrypted.
pub fn measure(
    opts: &Options,
    source: Option<&dyn MeasureSource>,
    secrets: &dyn Secrets,
) -> Result<Measurement, Error> {
    let size = match source {
        Some(s) => s.length(),
        None => opts.get_number("size").unwrap_or(0),
    };
    let header = header_length(opts, "", secrets)?;
    let total = header.saturating_add(size);
    Ok(Measurement { required: total, fully_allocated: total, bitmaps: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_offsets_match_qemu() {
        // Measured with qemu-img 10.0.2: aes-256-xts, aes-128-xts (and
        // aes-256-cbc), aes-192-xts.
        assert_eq!(payload_offset(64), 2_068_480);
        assert_eq!(payload_offset(32), 1_052_672);
        assert_eq!(payload_offset(48), 1_544_192);
    }

    struct Has(&'static str);
    impl Secrets for Has {
        fn has_secret(&self, id: &str) -> bool {
            id == self.0
        }
    }

    fn header(list: &str) -> Result<u64, String> {
        let mut opts = Options::new(&[CREATE_OPTS]);
        opts.parse(list).map_err(|e| e.to_string())?;
        header_length(&opts, "", &Has("s0")).map_err(|e| e.to_string())
    }

    #[test]
    fn options_are_checked_in_qemus_order() {
        assert_eq!(header("key-secret=s0"), Ok(2_068_480));
        assert_eq!(header("key-secret=s0,cipher-alg=aes-128"), Ok(1_052_672));
        assert_eq!(header("key-secret=s0,cipher-mode=cbc"), Ok(1_052_672));
        assert_eq!(header(""), Err("Parameter 'key-secret' is required for cipher".into()));
        assert_eq!(header("key-secret=s1"), Err("No secret with id 's1'".into()));
        assert_eq!(
            header("cipher-alg=foo"),
            Err("Parameter 'cipher-alg' does not accept value 'foo'".into())
        );
    }
}
