//! Lived-in LUKS (issue 12, item 4): LUKS volumes of every cipher setup
//! qemu-img makes, with several key slots, with data written, with a
//! detached header; qcow2 encrypted with LUKS and with legacy AES; and
//! headers damaged in each way qemu refuses (its message must be
//! matched, per version: 7.2 checks more, 5.2 lets a name without its NUL
//! run on into the next field). Everything is read without the key:
//! `info` shows the header, `check` and `snapshot -l` ask for the key.

use super::{qemu_io, Made};
use crate::util::edit::ImageFile;
use crate::util::{env, Sandbox};

const IMAGE: &str = "l.luks";
const QCOW2: &str = "l.qcow2";
/// The secret every image is made with (and qemu-io writes with).
const SECRET: &str = "secret,id=sec0,data=instar";
/// A second passphrase, for another key slot.
const SECRET1: &str = "secret,id=sec1,data=lived-in";
/// Fields of the LUKS header (`crates/luks/src/phdr.rs`).
const CIPHER_MODE_AT: u64 = 40;
const PAYLOAD_OFFSET_AT: u64 = 104;
/// The first key slot; each is 48 bytes: active, iterations, salt, key
/// offset (+40), stripes (+44).
const SLOTS_AT: u64 = 208;
const SLOT_SIZE: u64 = 48;

/// `qemu-img create -f luks` of `IMAGE` (1 MiB for the guest) with the
/// fast key derivation and `opts`.
fn create_luks(s: &Sandbox, opts: &str) {
    let o = format!("key-secret=sec0,iter-time=10{opts}");
    s.qemu_ok(&["create", "-q", "--object", SECRET, "-f", "luks", "-o", &o, IMAGE, "1M"]);
}

/// A luks volume compared with `snapshot -l` besides the standard lines
/// (it needs the key too).
fn luks_made() -> Made {
    Made::new(IMAGE, "luks").with(&["snapshot", "-l", IMAGE])
}

/// `qemu-img amend -o OPTS` of the image `opened` names (`--image-opts`),
/// with both secrets: how key slots are added and erased.
fn amend(s: &Sandbox, opened: &str, opts: &str) {
    s.qemu_ok(&[
        "amend",
        "--object",
        SECRET,
        "--object",
        SECRET1,
        "-o",
        opts,
        "--image-opts",
        opened,
    ]);
}

/// The key slot field at `field` (+0 active, +4 iterations, +40 key
/// offset, +44 stripes) of slot `i`.
fn slot(i: u64, field: u64) -> u64 {
    SLOTS_AT + i * SLOT_SIZE + field
}

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    let luks = ImageFile { path: s.file(IMAGE) };
    match kind {
        "default" => create_luks(s, ""),
        "aes128_cbc_essiv" => create_luks(
            s,
            ",cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,\
             hash-alg=sha1",
        ),
        "twofish_xts_plain" => {
            create_luks(
                s,
                ",cipher-alg=twofish-256,cipher-mode=xts,ivgen-alg=plain,hash-alg=sha512",
            );
        }
        "serpent_ctr" => {
            create_luks(s, ",cipher-alg=serpent-128,cipher-mode=ctr,hash-alg=sha384");
        }
        "cast5_essiv_md5" => create_luks(
            s,
            ",cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=md5,\
             hash-alg=ripemd160",
        ),
        "key_slots" => {
            // Slot 1 from a second passphrase, slot 5 by number, then slot
            // 1 erased again: active, inactive and reused slots.
            create_luks(s, "");
            let opened = format!("driver=luks,key-secret=sec0,file.filename={IMAGE}");
            amend(s, &opened, "state=active,new-secret=sec1,iter-time=10");
            amend(s, &opened, "state=active,new-secret=sec1,iter-time=10,keyslot=5");
            amend(s, &opened, "state=inactive,keyslot=1");
        }
        "written" => {
            create_luks(s, "");
            let opened = format!("driver=luks,key-secret=sec0,file.filename={IMAGE}");
            let writes = ["-c", "write -P 0x5a 0 64k", "-c", "write -P 7 512k 4k"];
            let mut args = vec!["--object", SECRET, "--image-opts", &opened];
            args.extend(writes);
            qemu_io(s, &args);
        }
        "detached_header" => {
            // qemu-img makes a header alone with `detached-header=on` from
            // 9.0 (the oracle's build refuses the option); without such a
            // qemu-img the same shape is made by hand: payload offset 0,
            // the file ending with the key material.
            match env().qemu("11.1.3") {
                Some(q) => {
                    s.t.run_ok(
                        &q.path,
                        &[
                            "create",
                            "-q",
                            "--object",
                            SECRET,
                            "-f",
                            "luks",
                            "-o",
                            "key-secret=sec0,iter-time=10,detached-header=on",
                            IMAGE,
                        ],
                        s.path(),
                    );
                }
                None => {
                    create_luks(s, "");
                    luks.set_len(u64::from(luks.be32(PAYLOAD_OFFSET_AT)) * 512);
                    luks.set_be32(PAYLOAD_OFFSET_AT, 0);
                }
            }
        }
        "payload_at_end" => {
            // The payload starts where the file ends: a volume of 0 bytes.
            create_luks(s, "");
            luks.set_len(u64::from(luks.be32(PAYLOAD_OFFSET_AT)) * 512);
        }
        "payload_past_end" => {
            create_luks(s, "");
            luks.set_be32(PAYLOAD_OFFSET_AT, 0x0100_0000);
        }
        "bad_magic" => {
            create_luks(s, "");
            luks.write(0, b"LUKX");
            // No longer probed as luks: compared with -f as well.
        }
        "bad_version" => {
            create_luks(s, "");
            luks.write(6, &[0, 2]);
        }
        "stripes_zero" => {
            create_luks(s, "");
            luks.set_be32(slot(0, 44), 0);
        }
        "stripes_3999" => {
            // Refused from 7.2 only.
            create_luks(s, "");
            luks.set_be32(slot(3, 44), 3999);
        }
        "slot_state" => {
            create_luks(s, "");
            luks.set_be32(slot(2, 0), 1);
        }
        "slots_overlap" => {
            create_luks(s, "");
            let previous = luks.be32(slot(4, 40));
            luks.set_be32(slot(5, 40), previous);
        }
        "slot_in_header" => {
            // Refused from 7.2 only.
            create_luks(s, "");
            luks.set_be32(slot(0, 40), 4);
        }
        "slot_in_payload" => {
            create_luks(s, "");
            let payload = luks.be32(PAYLOAD_OFFSET_AT);
            luks.set_be32(slot(7, 40), payload - 8);
        }
        "mode_unterminated" => {
            // 7.2 refuses it; 5.2 reads on into the hash spec.
            create_luks(s, "");
            luks.write(CIPHER_MODE_AT, &[b'x'; 32]);
        }
        "unknown_hash" => {
            create_luks(s, "");
            luks.write(72, b"sha257\0");
        }
        "qcow2_luks" => {
            let o = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10";
            s.qemu_ok(&["create", "-q", "--object", SECRET, "-f", "qcow2", "-o", o, QCOW2, "1M"]);
            let opened = format!("driver=qcow2,encrypt.key-secret=sec0,file.filename={QCOW2}");
            qemu_io(s, &["--object", SECRET, "--image-opts", &opened, "-c", "write -P 1 0 128k"]);
            return Made::new(QCOW2, "qcow2").with(&["info", "-f", "luks", QCOW2]);
        }
        "qcow2_luks_slots" => {
            let o = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,\
                     encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv";
            s.qemu_ok(&["create", "-q", "--object", SECRET, "-f", "qcow2", "-o", o, QCOW2, "1M"]);
            let opened = format!("driver=qcow2,encrypt.key-secret=sec0,file.filename={QCOW2}");
            amend(s, &opened, "encrypt.state=active,encrypt.new-secret=sec1,encrypt.iter-time=10");
            return Made::new(QCOW2, "qcow2");
        }
        "qcow2_luks_damaged" => {
            // The LUKS header inside the image, with a slot of no stripes.
            let o = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10";
            s.qemu_ok(&["create", "-q", "--object", SECRET, "-f", "qcow2", "-o", o, QCOW2, "1M"]);
            let q = ImageFile { path: s.file(QCOW2) };
            let header = crypto_header_offset(&q);
            q.set_be32(header + slot(1, 44), 0);
            return Made::new(QCOW2, "qcow2");
        }
        "qcow2_aes" => {
            let o = "encrypt.format=aes,encrypt.key-secret=sec0";
            s.qemu_ok(&["create", "-q", "--object", SECRET, "-f", "qcow2", "-o", o, QCOW2, "1M"]);
            return Made::new(QCOW2, "qcow2");
        }
        other => panic!("no image kind {other}"),
    }
    luks_made()
}

/// Where the LUKS header of a qcow2 image lies: the offset in its crypto
/// header extension (magic 0x0537be77), found by walking the extensions.
fn crypto_header_offset(q: &ImageFile) -> u64 {
    let header_length = u64::from(q.be32(100));
    let mut at = header_length;
    loop {
        let (magic, len) = (q.be32(at), u64::from(q.be32(at + 4)));
        assert_ne!(magic, 0, "no crypto header extension");
        if magic == 0x0537_be77 {
            return q.be64(at + 8);
        }
        at += 8 + len.div_ceil(8) * 8;
    }
}

kinds!(cached "luks", make;
    default, aes128_cbc_essiv, twofish_xts_plain, serpent_ctr, cast5_essiv_md5, key_slots,
    written, detached_header, payload_at_end, payload_past_end, bad_magic, bad_version,
    stripes_zero, stripes_3999, slot_state, slots_overlap, slot_in_header, slot_in_payload,
    mode_unterminated, unknown_hash, qcow2_luks, qcow2_luks_slots, qcow2_luks_damaged, qcow2_aes,
);
