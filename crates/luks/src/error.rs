//! Why qemu refuses a LUKS header, each with qemu's words
//! (`crypto/block-luks.c`, `qcrypto_block_luks_check_header` and
//! `qcrypto_block_luks_parse_header`).

use crate::algorithms::EssivError;
use instar_core::rawtext;
use std::fmt;

/// A LUKS header qemu refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LuksError {
    /// The magic is wrong.
    NotLuks,
    /// A version other than 1.
    Version(u16),
    /// A name field without a NUL (`cipher name`, `cipher mode`, `hash
    /// spec`).
    Unterminated(&'static str),
    /// The payload starts inside the first 4 KiB.
    PayloadOverlapsHeader,
    /// The master key digest has no iterations.
    MasterKeyIterationsZero,
    /// A slot with no stripes (before 7.2, the only stripe count refused).
    StripesZero(usize),
    /// A slot whose stripes are not 4000 (the count printed as a C int).
    Stripes(usize, i32),
    /// A slot neither enabled nor disabled.
    SlotState(usize),
    /// An active slot with no iterations.
    SlotIterationsZero(usize),
    /// A slot starting inside the first 4 KiB.
    SlotOverlapsHeader(usize),
    /// A slot whose key material reaches into the payload.
    SlotOverlapsPayload(usize),
    /// Two slots whose key material overlaps.
    SlotsOverlap(usize, usize),
    /// A cipher mode without the `-` before its IV generator.
    CipherModeFormat {
        /// The whole cipher mode field as qemu reads it.
        mode: Vec<u8>,
        /// Whether the name is quoted (since 7.2).
        quoted: bool,
    },
    /// A name qemu does not know (`Cipher mode`, `Hash algorithm`, `IV
    /// generator`).
    NotSupported {
        /// What the name names.
        what: &'static str,
        /// The name.
        name: Vec<u8>,
        /// Whether the name is quoted (since 7.2).
        quoted: bool,
    },
    /// A cipher family and key size qemu has no cipher for.
    CipherKeySize {
        /// The family as the header names it.
        name: Vec<u8>,
        /// The key size per key, printed as a C int.
        key_bytes: i32,
        /// Whether the name is quoted (since 7.2).
        quoted: bool,
    },
    /// ESSIV without a hash.
    MissingIvHash,
    /// ESSIV with a hash no cipher of the family fits.
    Essiv(EssivError),
}

/// `name` as qemu prints it with `%s`, in quotes when `quoted`.
fn shown(name: &[u8], quoted: bool) -> String {
    let text = rawtext::from_bytes(name);
    if quoted {
        format!("'{text}'")
    } else {
        text
    }
}

impl fmt::Display for LuksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LuksError::NotLuks => write!(f, "Volume is not in LUKS format"),
            LuksError::Version(v) => write!(f, "LUKS version {v} is not supported"),
            LuksError::Unterminated(field) => {
                write!(f, "LUKS header {field} is not NUL terminated")
            }
            LuksError::PayloadOverlapsHeader => {
                write!(f, "LUKS payload is overlapping with the header")
            }
            LuksError::MasterKeyIterationsZero => write!(f, "LUKS key iteration count is zero"),
            LuksError::StripesZero(i) => write!(f, "Keyslot {i} is corrupted (stripes == 0)"),
            LuksError::Stripes(i, s) => {
                write!(f, "Keyslot {i} is corrupted (stripes {s} != {})", crate::keyslot::STRIPES)
            }
            LuksError::SlotState(i) => {
                write!(f, "Keyslot {i} state (active/disable) is corrupted")
            }
            LuksError::SlotIterationsZero(i) => write!(f, "Keyslot {i} iteration count is zero"),
            LuksError::SlotOverlapsHeader(i) => {
                write!(f, "Keyslot {i} is overlapping with the LUKS header")
            }
            LuksError::SlotOverlapsPayload(i) => {
                write!(f, "Keyslot {i} is overlapping with the encrypted payload")
            }
            LuksError::SlotsOverlap(i, j) => {
                write!(f, "Keyslots {i} and {j} are overlapping in the header")
            }
            LuksError::CipherModeFormat { mode, quoted } => {
                write!(f, "Unexpected cipher mode string format {}", shown(mode, *quoted))
            }
            LuksError::NotSupported { what, name, quoted } => {
                write!(f, "{what} {} not supported", shown(name, *quoted))
            }
            LuksError::CipherKeySize { name, key_bytes, quoted } => write!(
                f,
                "Algorithm {} with key size {key_bytes} bytes not supported",
                shown(name, *quoted)
            ),
            LuksError::MissingIvHash => write!(f, "Missing IV generator hash specification"),
            LuksError::Essiv(EssivError::NoKeySize { family, digest_len }) => {
                write!(f, "No {family} cipher with key size {digest_len} available")
            }
            LuksError::Essiv(EssivError::Unsupported(cipher)) => {
                write!(f, "Cipher {cipher} not supported with essiv")
            }
        }
    }
}

impl std::error::Error for LuksError {}

impl From<LuksError> for instar_core::Error {
    fn from(e: LuksError) -> Self {
        instar_core::Error::open(e.to_string())
    }
}
