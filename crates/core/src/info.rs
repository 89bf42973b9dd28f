//! What `info` reports about an image, and the exact text qemu-img prints
//! for it, in JSON and in human form, for a given qemu-img version.
//!
//! The model follows qemu's QAPI types (`BlockNodeInfo`, `BlockGraphInfo`,
//! `BlockChildInfo`); JSON fields are inserted in schema order and printed
//! in `QDict` order by [`Json::to_qemu_pretty`].

use crate::dialect::{QemuDialect, SNAPSHOT_TABLE_WIDTHS, SNAPSHOT_VM_SIZE_COLUMN};
use crate::file::ImageFile;
use crate::human::size_to_str;
use crate::json::Json;

/// One node of an image graph: the image itself or one of its children.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageInfo {
    /// The file name as the user gave it.
    pub filename: String,
    /// The format (`qcow2`, `raw`, `file` for the protocol node).
    pub format: String,
    /// Whether the image was not cleanly closed.
    pub dirty_flag: Option<bool>,
    /// Bytes allocated on the host file system (`st_blocks * 512`).
    pub actual_size: Option<u64>,
    /// The guest-visible size (for the file node: the file length).
    pub virtual_size: u64,
    /// The cluster size, for formats that have one.
    pub cluster_size: Option<u64>,
    /// Whether the image is encrypted (printed only when known).
    pub encrypted: Option<bool>,
    /// Whether the image is compressed (printed only when known).
    pub compressed: Option<bool>,
    /// The backing file name as recorded in the image.
    pub backing_filename: Option<String>,
    /// The backing file name resolved against the image's directory.
    pub full_backing_filename: Option<String>,
    /// The backing file format recorded in the image.
    pub backing_filename_format: Option<String>,
    /// The internal snapshots (`snapshots`), when the image has any.
    pub snapshots: Option<Vec<SnapshotInfo>>,
    /// Format-specific information: the union tag (`type`) and its data,
    /// fields in QAPI schema order.
    pub format_specific: Option<(String, Json)>,
    /// The child nodes (for formats over a file: `file`, vmdk extents...).
    pub children: Vec<ChildInfo>,
}

/// One internal snapshot (`QEMUSnapshotInfo`, `SnapshotInfo` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotInfo {
    /// The snapshot's ID string.
    pub id: String,
    /// Its name (the TAG column).
    pub name: String,
    /// Bytes of VM state saved with it.
    pub vm_state_size: u64,
    /// When it was taken: seconds since the epoch...
    pub date_sec: u32,
    /// ... and nanoseconds.
    pub date_nsec: u32,
    /// The guest clock then, in nanoseconds.
    pub vm_clock_nsec: u64,
    /// The instruction count then, when recorded.
    pub icount: Option<u64>,
}

impl SnapshotInfo {
    /// The snapshot as `info --output=json` prints it (QAPI `SnapshotInfo`:
    /// every number an `int`, so a count past `i64::MAX` prints negative as
    /// in qemu).
    pub fn to_json(&self) -> Json {
        let mut o = Json::object()
            .with("id", Json::from(self.id.as_str()))
            .with("name", Json::from(self.name.as_str()))
            .with("vm-state-size", Json::Int(self.vm_state_size.cast_signed()))
            .with("date-sec", Json::Int(i64::from(self.date_sec)))
            .with("date-nsec", Json::Int(i64::from(self.date_nsec)))
            .with("vm-clock-sec", Json::Int((self.vm_clock_nsec / 1_000_000_000).cast_signed()))
            .with("vm-clock-nsec", Json::Int((self.vm_clock_nsec % 1_000_000_000).cast_signed()));
        if let Some(n) = self.icount {
            o.push("icount", Json::Int(n.cast_signed()));
        }
        o
    }

    /// The snapshot's row of qemu's table (`bdrv_snapshot_dump`), without
    /// the newline: the date in the local time zone (`TZ`), the columns of
    /// `dialect` (C's `printf` widths count bytes).
    pub fn table_row(&self, dialect: QemuDialect) -> String {
        self.row_with_date(&local_date(self.date_sec), dialect)
    }

    /// The row with the DATE column's text given.
    fn row_with_date(&self, date: &str, dialect: QemuDialect) -> String {
        // qemu keeps the seconds in an int64_t and prints each part as an
        // int.
        let secs = (self.vm_clock_nsec / 1_000_000_000).cast_signed();
        let (h, m, s) = (c_int(secs / 3600), (secs / 60) % 60, secs % 60);
        let ms = (self.vm_clock_nsec / 1_000_000) % 1000;
        let size = size_to_str(self.vm_state_size);
        let icount = self.icount.map(|n| n.cast_signed().to_string());
        if dialect.since(SNAPSHOT_TABLE_WIDTHS) {
            let clock = format!("{h:04}:{m:02}:{s:02}.{ms:03}");
            let icount = icount.unwrap_or_else(|| "--".to_string());
            return format!(
                "{} {} {} {} {} {}",
                left(&self.id, 7),
                left(&self.name, 16),
                right(&size, 8),
                right(date, 19),
                right(&clock, 15),
                right(&icount, 10)
            );
        }
        let clock = format!("{h:02}:{m:02}:{s:02}.{ms:03}");
        let icount = icount.unwrap_or_default();
        let (tag, vm) = if dialect.since(SNAPSHOT_VM_SIZE_COLUMN) { (16, 8) } else { (17, 7) };
        format!(
            "{} {} {}{}{}{}",
            left(&self.id, 9),
            left(&self.name, tag),
            right(&size, vm),
            right(date, 20),
            right(&clock, 13),
            right(&icount, 11)
        )
    }
}

/// The heading of qemu's snapshot table (`bdrv_snapshot_dump(NULL)`),
/// without the newline.
pub fn snapshot_table_header(dialect: QemuDialect) -> String {
    if dialect.since(SNAPSHOT_TABLE_WIDTHS) {
        return format!(
            "{} {} {} {} {} {}",
            left("ID", 7),
            left("TAG", 16),
            right("VM_SIZE", 8),
            right("DATE", 19),
            right("VM_CLOCK", 15),
            right("ICOUNT", 10)
        );
    }
    let (tag, vm) = if dialect.since(SNAPSHOT_VM_SIZE_COLUMN) { (17, 8) } else { (18, 7) };
    format!(
        "{}{}{}{}{}{}",
        left("ID", 10),
        left("TAG", tag),
        right("VM SIZE", vm),
        right("DATE", 20),
        right("VM CLOCK", 13),
        right("ICOUNT", 11)
    )
}

/// qemu's whole snapshot table (`dump_snapshots`, and `info`'s list
/// after its `Snapshot list:` line): nothing when there is no snapshot.
pub fn snapshot_table(snapshots: &[SnapshotInfo], dialect: QemuDialect) -> String {
    if snapshots.is_empty() {
        return String::new();
    }
    let mut out = format!("Snapshot list:\n{}\n", snapshot_table_header(dialect));
    for sn in snapshots {
        out.push_str(&sn.table_row(dialect));
        out.push('\n');
    }
    out
}

/// An `int64_t` converted to `int` as C does on every machine qemu runs
/// on: the low 32 bits.
fn c_int(n: i64) -> i32 {
    let b = n.to_le_bytes();
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// `%-<width>s`: C pads by bytes, so a name's width is its length as the
/// bytes printed ([`crate::rawtext`]).
fn left(text: &str, width: usize) -> String {
    let len = crate::rawtext::to_bytes(text).len();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// `%<width>s`.
fn right(text: &str, width: usize) -> String {
    let len = crate::rawtext::to_bytes(text).len();
    format!("{}{text}", " ".repeat(width.saturating_sub(len)))
}

/// `date_sec` as `%Y-%m-%d %H:%M:%S` in the local time zone, as glib's
/// `g_date_time_new_from_unix_local` (and before it `localtime_r`) reads
/// it: the zone `TZ` names, else the system's.
pub fn local_date(date_sec: u32) -> String {
    let zone = jiff::tz::TimeZone::system();
    match jiff::Timestamp::from_second(i64::from(date_sec)) {
        Ok(t) => t.to_zoned(zone).strftime("%Y-%m-%d %H:%M:%S").to_string(),
        // Every u32 is a valid timestamp; nothing to print otherwise.
        Err(_) => String::new(),
    }
}

/// A named child of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildInfo {
    /// The child's role (`file`, `extents.0`, ...).
    pub name: String,
    /// The child node.
    pub info: ImageInfo,
}

impl ImageInfo {
    /// The protocol node qemu puts under every image: the host file (named
    /// as given), with its length and allocation.
    pub fn file_node(file: &ImageFile) -> ImageInfo {
        ImageInfo {
            filename: file.name().to_string(),
            format: "file".to_string(),
            dirty_flag: Some(false),
            actual_size: Some(file.allocated_bytes()),
            // qemu measures the file in whole sectors, so a 196624-byte
            // file reports 197120.
            virtual_size: file.sector_len(),
            format_specific: Some(("file".to_string(), Json::object())),
            ..ImageInfo::default()
        }
    }

    /// The node of a format over `file` (named as the file is), with its
    /// `file` child, as every format reports it before adding its own
    /// fields.
    pub fn format_node(format: &str, file: &ImageFile, virtual_size: u64) -> ImageInfo {
        ImageInfo {
            filename: file.name().to_string(),
            format: format.to_string(),
            dirty_flag: Some(false),
            actual_size: Some(file.allocated_bytes()),
            virtual_size,
            children: vec![ChildInfo {
                name: "file".to_string(),
                info: ImageInfo::file_node(file),
            }],
            ..ImageInfo::default()
        }
    }

    /// The node as qemu-img's `info --output=json` prints it.
    pub fn to_json(&self, dialect: QemuDialect) -> Json {
        let mut o = Json::object();
        o.push("filename", Json::from(self.filename.as_str()));
        o.push("format", Json::from(self.format.as_str()));
        if let Some(d) = self.dirty_flag {
            o.push("dirty-flag", Json::Bool(d));
        }
        if let Some(a) = self.actual_size {
            o.push("actual-size", Json::UInt(a));
        }
        o.push("virtual-size", Json::UInt(self.virtual_size));
        if let Some(c) = self.cluster_size {
            o.push("cluster-size", Json::UInt(c));
        }
        if let Some(e) = self.encrypted {
            o.push("encrypted", Json::Bool(e));
        }
        if let Some(c) = self.compressed {
            o.push("compressed", Json::Bool(c));
        }
        if let Some(b) = &self.backing_filename {
            o.push("backing-filename", Json::from(b.as_str()));
        }
        if let Some(b) = &self.full_backing_filename {
            o.push("full-backing-filename", Json::from(b.as_str()));
        }
        if let Some(b) = &self.backing_filename_format {
            o.push("backing-filename-format", Json::from(b.as_str()));
        }
        if let Some(list) = &self.snapshots {
            o.push("snapshots", Json::Array(list.iter().map(SnapshotInfo::to_json).collect()));
        }
        if let Some((ty, data)) = &self.format_specific {
            o.push(
                "format-specific",
                Json::object().with("type", Json::from(ty.as_str())).with("data", data.clone()),
            );
        }
        if dialect.info_children() {
            let children = self
                .children
                .iter()
                .map(|c| {
                    Json::object()
                        .with("name", Json::from(c.name.as_str()))
                        .with("info", c.info.to_json(dialect))
                })
                .collect();
            o.push("children", Json::Array(children));
        }
        o
    }

    /// The node as qemu-img's human `info` prints it.
    pub fn to_human(&self, dialect: QemuDialect) -> String {
        let mut out = String::new();
        self.dump_human(&mut out, 0, "/", dialect);
        out
    }

    fn dump_human(&self, out: &mut String, level: usize, path: &str, dialect: QemuDialect) {
        let protocol = dialect.info_children() && self.children.is_empty();
        self.dump_node(out, level * 4, protocol, dialect);
        if !dialect.info_children() {
            return;
        }
        for child in &self.children {
            out.push_str(&format!("{:w$}Child node '{path}{}':\n", "", child.name, w = level * 4));
            let child_path = format!("{path}{}/", child.name);
            child.info.dump_human(out, level + 1, &child_path, dialect);
        }
    }

    /// qemu's `bdrv_node_info_dump`.
    fn dump_node(&self, out: &mut String, indent: usize, protocol: bool, dialect: QemuDialect) {
        let ind = " ".repeat(indent);
        let disk = match self.actual_size {
            Some(a) => size_to_str(a),
            None => "unavailable".to_string(),
        };
        let (l1, l2, l3) = if protocol {
            ("filename", "protocol type", "file length")
        } else {
            ("image", "file format", "virtual size")
        };
        out.push_str(&format!("{ind}{l1}: {}\n", self.filename));
        out.push_str(&format!("{ind}{l2}: {}\n", self.format));
        out.push_str(&format!(
            "{ind}{l3}: {} ({} bytes)\n",
            size_to_str(self.virtual_size),
            self.virtual_size
        ));
        out.push_str(&format!("{ind}disk size: {disk}\n"));
        if self.encrypted == Some(true) {
            out.push_str(&format!("{ind}encrypted: yes\n"));
        }
        if let Some(c) = self.cluster_size {
            out.push_str(&format!("{ind}cluster_size: {c}\n"));
        }
        if self.dirty_flag == Some(true) {
            out.push_str(&format!("{ind}cleanly shut down: no\n"));
        }
        if let Some(b) = &self.backing_filename {
            out.push_str(&format!("{ind}backing file: {b}"));
            match &self.full_backing_filename {
                None => out.push_str(" (cannot determine actual path)"),
                Some(full) if full != b => out.push_str(&format!(" (actual path: {full})")),
                Some(_) => {}
            }
            out.push('\n');
            if let Some(f) = &self.backing_filename_format {
                out.push_str(&format!("{ind}backing file format: {f}\n"));
            }
        }
        if let Some(list) = &self.snapshots {
            // qemu prints the table unindented, whatever the node's level.
            out.push_str(&snapshot_table(list, dialect));
        }
        if let Some((_, data)) = &self.format_specific {
            if let Json::Object(fields) = data {
                if !fields.is_empty() {
                    out.push_str(&format!("{ind}Format specific information:\n"));
                    dump_qobject(out, indent / 4 + 1, data);
                }
            }
        }
    }
}

/// qemu's `dump_qobject`: the human form of format-specific data, keys in
/// `QDict` order with dashes shown as spaces.
fn dump_qobject(out: &mut String, level: usize, v: &Json) {
    match v {
        Json::Object(_) => {
            for (k, item) in crate::json::qdict_entries(v) {
                let composite = matches!(item, Json::Object(_) | Json::Array(_));
                out.push_str(&format!("{:w$}{}:", "", k.replace('-', " "), w = level * 4));
                out.push_str(if composite { "\n" } else { " " });
                dump_qobject(out, level + 1, item);
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let composite = matches!(item, Json::Object(_) | Json::Array(_));
                let sep = if composite { '\n' } else { ' ' };
                out.push_str(&format!("{:w$}[{i}]:{sep}", "", w = level * 4));
                dump_qobject(out, level + 1, item);
            }
        }
        Json::Str(s) => out.push_str(&format!("{s}\n")),
        Json::Int(n) => out.push_str(&format!("{n}\n")),
        Json::UInt(n) => out.push_str(&format!("{n}\n")),
        Json::Bool(b) => out.push_str(if *b { "true\n" } else { "false\n" }),
        Json::Null => out.push_str("null\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::QemuVersion;

    fn v(major: u32, minor: u32) -> QemuDialect {
        QemuDialect::new(QemuVersion::new(major, minor, 0))
    }

    fn snapshot(name: &str, vm_state_size: u64, icount: Option<u64>) -> SnapshotInfo {
        SnapshotInfo {
            id: "1".into(),
            name: name.into(),
            vm_state_size,
            date_sec: 0,
            date_nsec: 0,
            vm_clock_nsec: 3_723_456_789_012,
            icount,
        }
    }

    const DATE: &str = "2023-11-14 22:13:20";

    #[test]
    fn the_table_has_three_eras() {
        let sn = snapshot("s", 0, Some(7));
        assert_eq!(
            snapshot_table_header(v(5, 2)),
            "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT"
        );
        assert_eq!(snapshot_table_header(v(5, 2)), snapshot_table_header(v(7, 2)));
        assert_eq!(
            snapshot_table_header(v(9, 0)),
            "ID      TAG               VM_SIZE                DATE        VM_CLOCK     ICOUNT"
        );
        assert_eq!(
            sn.row_with_date(DATE, v(7, 2)),
            "1         s                     0 B 2023-11-14 22:13:20 01:02:03.456          7"
        );
        assert_eq!(
            sn.row_with_date(DATE, v(10, 0)),
            "1       s                     0 B 2023-11-14 22:13:20  0001:02:03.456          7"
        );
    }

    #[test]
    fn a_long_name_or_wide_size_moves_the_row_before_6_0() {
        let sn = snapshot("a-name-longer-than-16", 4_445_962, None);
        assert_eq!(
            sn.row_with_date(DATE, v(5, 2)),
            "1         a-name-longer-than-16 4.24 MiB 2023-11-14 22:13:20 01:02:03.456           "
        );
        assert_eq!(
            sn.row_with_date(DATE, v(6, 0)),
            "1         a-name-longer-than-16 4.24 MiB 2023-11-14 22:13:20 01:02:03.456           "
        );
        assert_eq!(
            sn.row_with_date(DATE, v(9, 0)),
            "1       a-name-longer-than-16 4.24 MiB 2023-11-14 22:13:20  0001:02:03.456         --"
        );
    }

    #[test]
    fn json_numbers_are_signed_as_in_qemu() {
        let sn = snapshot("s", u64::MAX, Some(u64::MAX - 1));
        let j = sn.to_json();
        assert_eq!(j.get("vm-state-size"), Some(&Json::Int(-1)));
        assert_eq!(j.get("icount"), Some(&Json::Int(-2)));
        assert_eq!(j.get("vm-clock-sec"), Some(&Json::Int(3723)));
        assert_eq!(j.get("vm-clock-nsec"), Some(&Json::Int(456_789_012)));
        assert_eq!(snapshot("s", 0, None).to_json().get("icount"), None);
    }
}
