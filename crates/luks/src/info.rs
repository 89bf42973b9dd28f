//! What `info` reports for an opened LUKS header
//! (`qcrypto_block_luks_get_info`, QAPI `QCryptoBlockInfoLUKS`): the
//! algorithms, where the payload starts, the master key's iterations, the
//! UUID and every key slot. The luks format prints it as its
//! format-specific data; qcow2 nests it under `encrypt`.

use crate::algorithms::IVGEN_ESSIV;
use crate::open::Luks;
use instar_core::dialect::{QemuDialect, LUKS_DETACHED_HEADER};
use instar_core::{rawtext, Json};

impl Luks {
    /// Adds the `QCryptoBlockInfoLUKS` fields to `o`, in schema order, as
    /// qemu-img of `dialect` reports them.
    pub fn push_info(&self, o: &mut Json, dialect: QemuDialect) {
        let h = &self.header;
        o.push("cipher-alg", Json::from(self.cipher.name));
        o.push("cipher-mode", Json::from(self.cipher_mode));
        o.push("ivgen-alg", Json::from(self.ivgen));
        if self.ivgen == IVGEN_ESSIV {
            if let Some(hash) = self.ivgen_hash {
                o.push("ivgen-hash-alg", Json::from(hash.name));
            }
        }
        o.push("hash-alg", Json::from(self.hash.name));
        if dialect.since(LUKS_DETACHED_HEADER) {
            // qemu calls a header detached when its payload starts at 0.
            o.push("detached-header", Json::Bool(h.payload_offset() == 0));
        }
        o.push("payload-offset", Json::UInt(h.payload_offset()));
        o.push("master-key-iters", Json::UInt(u64::from(h.master_key_iterations)));
        o.push("uuid", Json::from(rawtext::from_bytes(h.uuid_bytes()).as_str()));
        let slots = h
            .key_slots
            .iter()
            .map(|s| {
                let mut slot = Json::object().with("active", Json::Bool(s.is_active()));
                if s.is_active() {
                    slot.push("iters", Json::UInt(u64::from(s.iterations)));
                    slot.push("stripes", Json::UInt(u64::from(s.stripes)));
                }
                slot.with("key-offset", Json::UInt(s.key_offset()))
            })
            .collect();
        o.push("slots", Json::Array(slots));
    }

    /// The `QCryptoBlockInfoLUKS` object alone (the luks format's
    /// format-specific data).
    pub fn info(&self, dialect: QemuDialect) -> Json {
        let mut o = Json::object();
        self.push_info(&mut o, dialect);
        o
    }
}
