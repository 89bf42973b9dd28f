//! What `info` reports about an image, and the exact text qemu-img prints
//! for it, in JSON and in human form, for a given qemu-img version.
//!
//! The model follows qemu's QAPI types (`BlockNodeInfo`, `BlockGraphInfo`,
//! `BlockChildInfo`); JSON fields are inserted in schema order and printed
//! in `QDict` order by [`Json::to_qemu_pretty`].

use crate::dialect::QemuDialect;
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
    /// Format-specific information: the union tag (`type`) and its data,
    /// fields in QAPI schema order.
    pub format_specific: Option<(String, Json)>,
    /// The child nodes (for formats over a file: `file`, vmdk extents...).
    pub children: Vec<ChildInfo>,
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
        self.dump_node(out, level * 4, protocol);
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
    fn dump_node(&self, out: &mut String, indent: usize, protocol: bool) {
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
