//! The LUKS format (version 1), as qemu's `block/crypto.c` and
//! `crypto/block-luks.c` read it without the key: what `qemu-img info`
//! shows of a LUKS volume, and every error qemu gives for a header it
//! refuses.
//!
//! A volume starts with the partition header ([`phdr`]) holding eight key
//! slots ([`keyslot`]); the encrypted payload follows at the header's
//! payload offset, and the guest sees the rest of the file. [`open`] checks
//! and parses a header as the qemu-img version asked for does; [`info`]
//! reports it. qcow2 keeps the same header inside its image (its crypto
//! header extension) and uses [`open`] and [`info`] for it.
//!
//! instar never decrypts: opening a volume to read data (`check`,
//! `snapshot`) needs the key, and qemu asks for it before it reads
//! anything, so instar gives qemu's error. Creating a LUKS volume is
//! refused by name.

pub mod algorithms;
pub mod error;
pub mod info;
pub mod keyslot;
pub mod measure;
pub mod open;
pub mod phdr;

pub use error::LuksError;
pub use open::Luks;

use instar_core::{CreateRequest, Error, Format, Image, ImageFile, ImageInfo, OpenFlags};

/// The luks format driver (read-only).
#[derive(Debug, Clone, Copy, Default)]
pub struct LuksFormat;

/// qemu's probe score for a LUKS header (`block_crypto_probe_generic`).
const PROBE_SCORE: u32 = 100;

/// What qemu's crypto layer says when a volume is opened to read data
/// without its key, `prefix` naming where the option lives (`encrypt.`
/// inside qcow2, nothing for a luks volume).
pub fn key_secret_required(prefix: &str) -> String {
    format!("Parameter '{prefix}key-secret' is required for cipher")
}

/// qemu's error when the payload offset lies past the end of the file
/// (`block_crypto_co_getlength` returns `EIO`, and the block layer cannot
/// size the node).
pub const PAYLOAD_PAST_END: &str = "Could not refresh total sector count: Input/output error";

/// Whether `head` starts with a LUKS header qemu's probe claims: the magic
/// and version 1 (`qcrypto_block_luks_has_format`).
pub fn is_luks(head: &[u8]) -> bool {
    head.get(..phdr::MAGIC_LEN) == Some(&phdr::MAGIC[..])
        && instar_core::bytes::be16(head, phdr::MAGIC_LEN) == phdr::VERSION
}

impl Format for LuksFormat {
    fn name(&self) -> &'static str {
        "luks"
    }

    fn create_opts(&self) -> &'static [instar_core::OptDesc] {
        measure::CREATE_OPTS
    }

    fn measures(&self) -> bool {
        true
    }

    fn measure(
        &self,
        opts: &instar_core::Options,
        source: Option<&dyn instar_core::MeasureSource>,
        secrets: &dyn instar_core::Secrets,
    ) -> Result<instar_core::Measurement, Error> {
        measure::measure(opts, source, secrets)
    }

    fn creates(&self) -> bool {
        false
    }

    /// Never reached through the block layer, which refuses `create -f
    /// luks` by name first ([`Format::creates`]); a guard all the same.
    fn create(&self, _req: &CreateRequest<'_>) -> Result<(), Error> {
        Err(Error::not_supported("instar does not create LUKS volumes"))
    }

    fn probe(&self, head: &[u8], _filename: &str) -> u32 {
        if is_luks(head) {
            PROBE_SCORE
        } else {
            0
        }
    }

    fn open(&self, file: ImageFile, flags: OpenFlags) -> Result<Box<dyn Image>, Error> {
        Ok(Box::new(LuksImage::open(file, flags)?))
    }
}

/// A LUKS volume opened as `qemu-img info` opens it.
#[derive(Debug)]
pub struct LuksImage {
    /// The volume's file.
    pub file: ImageFile,
    /// The header, checked and parsed.
    pub luks: Luks,
    /// The size the guest sees: the file (in whole sectors) after the
    /// payload offset.
    pub size: u64,
    /// Whose `info` to print.
    dialect: instar_core::QemuDialect,
}

impl LuksImage {
    /// Opens the volume in `file` as qemu's luks driver does under
    /// `flags`: without `no_io` the key is asked for first; then the
    /// header is read, checked and parsed, and the volume sized.
    pub fn open(file: ImageFile, flags: OpenFlags) -> Result<LuksImage, Error> {
        if !flags.no_io {
            return Err(Error::open(key_secret_required("")));
        }
        let bytes = file
            .read_vec(0, phdr::HEADER_SIZE as u64)
            .map_err(|e| Error::io("Could not read encryption header", e))?;
        let luks = open::open(&bytes, flags.dialect, false)?;
        let payload = luks.header.payload_offset();
        let length = file.sector_len();
        if payload > length {
            return Err(Error::open(PAYLOAD_PAST_END));
        }
        Ok(LuksImage { size: length - payload, file, luks, dialect: flags.dialect })
    }
}

impl Image for LuksImage {
    fn info(&self) -> Result<ImageInfo, Error> {
        Ok(ImageInfo {
            encrypted: Some(true),
            format_specific: Some(("luks".to_string(), self.luks.info(self.dialect))),
            ..ImageInfo::format_node("luks", &self.file, self.size)
        })
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_magic_and_version() {
        assert!(is_luks(b"LUKS\xba\xbe\0\x01"));
        assert!(!is_luks(b"LUKS\xba\xbe\0\x02"));
        assert!(!is_luks(b"LUKS"));
        assert_eq!(LuksFormat.probe(b"LUKS\xba\xbe\0\x01", "x"), 100);
    }

    #[test]
    fn opens_sizes_and_refuses_io() {
        let mut b = phdr::tests::sample();
        b.resize(2_068_480 + 4096, 0);
        let f = ImageFile::from_bytes("x", b.clone());
        let img = LuksImage::open(f, OpenFlags::INFO).unwrap();
        assert_eq!(img.virtual_size(), 4096);
        let e = LuksImage::open(ImageFile::from_bytes("x", b.clone()), OpenFlags::CHECK);
        assert_eq!(e.unwrap_err().message(), "Parameter 'key-secret' is required for cipher");
        b.truncate(2_068_480 - 512);
        let e = LuksImage::open(ImageFile::from_bytes("x", b), OpenFlags::INFO);
        assert_eq!(e.unwrap_err().message(), PAYLOAD_PAST_END);
    }
}
