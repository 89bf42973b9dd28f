//! qcow2 internal snapshots (issue 12, item 1): one named test per image
//! kind and qemu-img version. The image is made with the oracle (`qemu-img
//! snapshot -c`), then, for the kinds qemu-img cannot make, its snapshot
//! table is rewritten in place (see [`rewrite_table`]). instar, speaking
//! as version V (`INSTAR_QEMU_VERSION`), must print what qemu-img V prints
//! for `info` (human and JSON, probed and `-f qcow2`), `snapshot -l` and
//! `check` (human and JSON), under three time zones (the DATE column is
//! local time: UTC, America/New_York, Asia/Kolkata's half hour).
//!
//! VM state: qemu-img cannot save one without a VM, so the `vm_state`
//! kind writes a size into the entry (the 32-bit field and the 64-bit one
//! of the extra data) and a guest clock; `info`, `snapshot -l` and `check`
//! read neither the state nor its clusters, so no data needs writing.

use crate::util::{edit, instar, qemu_or_skip, Sandbox, Transcript};
use rstest::rstest;
use std::path::Path;

const IMAGE: &str = "s.qcow2";
const ZONES: &[&str] = &["UTC", "America/New_York", "Asia/Kolkata"];

/// One snapshot table entry, as bytes to rewrite.
#[derive(Clone)]
struct Entry {
    head: [u8; 40],
    extra: Vec<u8>,
    id: Vec<u8>,
    name: Vec<u8>,
}

/// Reads the table the header points at.
fn read_table(path: &Path) -> (u64, Vec<Entry>) {
    let count = edit::be32(path, 60);
    let start = edit::be64(path, 64);
    let mut at = start;
    let mut entries = Vec::new();
    for _ in 0..count {
        at = at.div_ceil(8) * 8;
        let head: [u8; 40] = edit::read_at(path, at, 40).try_into().expect("40 bytes");
        let id_size = u64::from(u16::from_be_bytes([head[12], head[13]]));
        let name_size = u64::from(u16::from_be_bytes([head[14], head[15]]));
        let extra_size = u64::from(u32::from_be_bytes([head[36], head[37], head[38], head[39]]));
        at += 40;
        let extra = edit::read_at(path, at, extra_size as usize);
        at += extra_size;
        let id = edit::read_at(path, at, id_size as usize);
        at += id_size;
        let name = edit::read_at(path, at, name_size as usize);
        at += name_size;
        entries.push(Entry { head, extra, id, name });
    }
    (start, entries)
}

/// Rewrites the snapshot table in place with `change` applied to its
/// entries (sizes recomputed, each entry 8-aligned, the header's count
/// updated). The table must stay inside the cluster qemu allocated for it
/// (64 KiB here), so refcounts stay right and `check` stays clean.
fn rewrite_table(path: &Path, change: impl FnOnce(&mut Vec<Entry>)) {
    let (start, mut entries) = read_table(path);
    change(&mut entries);
    let mut table = Vec::new();
    for e in &entries {
        while table.len() % 8 != 0 {
            table.push(0);
        }
        let mut head = e.head;
        head[12..14].copy_from_slice(&(e.id.len() as u16).to_be_bytes());
        head[14..16].copy_from_slice(&(e.name.len() as u16).to_be_bytes());
        head[36..40].copy_from_slice(&(e.extra.len() as u32).to_be_bytes());
        table.extend_from_slice(&head);
        table.extend_from_slice(&e.extra);
        table.extend_from_slice(&e.id);
        table.extend_from_slice(&e.name);
    }
    assert!(table.len() <= 65536, "the table must fit its cluster");
    edit::write_at(path, start, &table);
    edit::write_at(path, 60, &(entries.len() as u32).to_be_bytes());
}

/// Sets an entry's extra data to `size` bytes, keeping what it had first
/// (the VM state size, disk size, icount) and zeros after.
fn set_extra(e: &mut Entry, size: usize) {
    e.extra.resize(size, 0);
}

/// Makes the image of `kind` in `s` with the oracle and edits.
fn make(s: &Sandbox, kind: &str) {
    if let Some(format) = kind.strip_suffix("_has_none") {
        // A format without internal snapshots: nothing listed, exit 0.
        s.qemu_ok(&["create", "-q", "-f", format, IMAGE, "1M"]);
        return;
    }
    if kind.starts_with("backing") {
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "base.qcow2", "1M"]);
        s.qemu_ok(&["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", IMAGE]);
        s.qemu_ok(&["snapshot", "-c", "over-backing", IMAGE]);
        if kind == "backing_missing" {
            // snapshot opens the chain (and fails); info does not.
            std::fs::remove_file(s.file("base.qcow2")).expect("remove the backing file");
        }
        return;
    }
    let compat = if kind == "v2_entries" { "compat=0.10" } else { "compat=1.1" };
    s.qemu_ok(&["create", "-q", "-f", "qcow2", "-o", compat, IMAGE, "64M"]);
    let snap = |name: &str| {
        s.qemu_ok(&["snapshot", "-c", name, IMAGE]);
    };
    let path = s.file(IMAGE);
    match kind {
        "one" | "v2_entries" => snap("first"),
        "several" => ["first", "second", "third"].iter().for_each(|n| snap(n)),
        "long_names" => {
            snap("a-name-exactly-16");
            snap(&"a much longer snapshot name, past every column ".repeat(3));
        }
        "utf8_names" => {
            // Wider in bytes than in characters: C pads by bytes.
            snap("été");
            snap("ÄÖÜäöüß-ÄÖÜäöüß");
        }
        "not_utf8_name" => {
            // Latin-1 bytes, as an old tool might write: printed as they
            // are, replaced in JSON as qemu's writer replaces them.
            snap("cafe");
            rewrite_table(&path, |es| es[0].name = b"caf\xe9 cr\xe8me".to_vec());
        }
        "duplicate_names" => {
            snap("twin");
            snap("twin");
        }
        "many" => (0..200).for_each(|i| snap(&format!("snap-{i}"))),
        "vm_state" => {
            snap("with-state");
            snap("without");
            rewrite_table(&path, |es| {
                let e = &mut es[0];
                // 4.24 MiB: eight characters, wider than 5.2's column.
                let size: u64 = 4_445_962;
                e.head[32..36].copy_from_slice(&(size as u32).to_be_bytes());
                e.extra[0..8].copy_from_slice(&size.to_be_bytes());
                // 1 h 2 min 3.456 s of guest time, and an icount.
                e.head[24..32].copy_from_slice(&3_723_456_789_012u64.to_be_bytes());
                e.extra[16..24].copy_from_slice(&987_654_321u64.to_be_bytes());
                // A date in another season (DST differs from today's).
                e.head[16..20].copy_from_slice(&1_700_000_000u32.to_be_bytes());
            });
        }
        "no_icount" => {
            snap("no-icount");
            rewrite_table(&path, |es| set_extra(&mut es[0], 16));
        }
        "extra_odd_sizes" => {
            ["e17", "e25", "e1023", "e24"].iter().for_each(|n| snap(n));
            rewrite_table(&path, |es| {
                set_extra(&mut es[0], 17);
                set_extra(&mut es[1], 25);
                set_extra(&mut es[2], 1023);
            });
        }
        "extra_too_short_v3" => {
            snap("short");
            rewrite_table(&path, |es| set_extra(&mut es[0], 8));
        }
        "extra_too_large" => {
            snap("large");
            rewrite_table(&path, |es| set_extra(&mut es[0], 1025));
        }
        "name_past_end" => {
            // Damaged: the last entry's name runs past the end of the file.
            snap("last");
            let (start, _) = read_table(&path);
            edit::write_at(&path, start + 14, &0xffffu16.to_be_bytes());
            edit::set_file_len(&path, start + 40 + 24 + 8);
        }
        other => panic!("no image kind {other}"),
    }
}

/// `info`, `snapshot -l` and `check` of an image of `kind`: instar as
/// `version` prints what qemu-img `version` prints, in every zone.
fn compare(kind: &str, version: &str) {
    let Some(s) = Sandbox::new() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    make(&s, kind);
    let t: &Transcript = &s.t;
    let commands: &[&[&str]] = &[
        &["info", IMAGE],
        &["info", "--output=json", IMAGE],
        &["info", "-f", "qcow2", IMAGE],
        &["info", "-f", "qcow2", "--output=json", IMAGE],
        &["snapshot", "-l", IMAGE],
        &["snapshot", IMAGE],
        &["check", IMAGE],
        &["check", "--output=json", IMAGE],
    ];
    for zone in ZONES {
        for args in commands {
            let theirs = t.run_env(&qemu.path, args, s.path(), &[("TZ", zone)]);
            let mine = t.run_env(
                instar(),
                args,
                s.path(),
                &[("TZ", zone), ("INSTAR_QEMU_VERSION", version)],
            );
            let what = format!("TZ={zone} {} as {version}", args.join(" "));
            t.assert_same_run(&what, &theirs, &mine);
        }
    }
}

macro_rules! kinds {
    ($($kind:ident),* $(,)?) => {
        $(
            #[rstest]
            fn $kind(
                #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")] version: &str,
            ) {
                compare(stringify!($kind), version);
            }
        )*
    };
}

kinds!(
    one,
    several,
    long_names,
    duplicate_names,
    utf8_names,
    not_utf8_name,
    many,
    vm_state,
    v2_entries,
    no_icount,
    extra_odd_sizes,
    extra_too_short_v3,
    extra_too_large,
    name_past_end,
    backing,
    backing_missing,
    raw_has_none,
    vmdk_has_none,
    vpc_has_none,
    vhdx_has_none,
);

/// Applying, creating and deleting snapshots write the image: instar
/// refuses each, after opening the image as qemu-img does, with exit 1 and
/// the image unchanged.
#[rstest]
#[case::apply(&["snapshot", "-a", "first", IMAGE], "-a")]
#[case::create(&["snapshot", "-c", "new", IMAGE], "-c")]
#[case::delete(&["snapshot", "-d", "first", IMAGE], "-d")]
fn actions_are_refused(#[case] args: &[&str], #[case] option: &str) {
    let Some(s) = Sandbox::new() else { return };
    make(&s, "one");
    let before = std::fs::read(s.file(IMAGE)).expect("the image");
    let r = s.instar(args);
    let expected = format!(
        "instar: snapshot {option}: applying, creating and deleting snapshots is not supported \
         by instar (it only reads images); use qemu-img\n"
    );
    s.t.check(r.code == Some(1) && r.stdout.is_empty(), || format!("{args:?} exited {r:?}"));
    s.t.assert_same("stderr", &expected, &r.stderr);
    let after = std::fs::read(s.file(IMAGE)).expect("the image");
    s.t.check(before == after, || format!("{args:?} changed the image"));
}
