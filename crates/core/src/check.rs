//! What `check` reports about an image, and the text and exit code
//! qemu-img gives for it (`qemu-img.c`: `collect_image_check`,
//! `dump_human_image_check`, and the exit-code rules of `img_check`).

use crate::json::Json;

/// The result of a consistency check, with qemu's `ImageCheck` fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// The file name as the user gave it.
    pub filename: String,
    /// The format checked.
    pub format: String,
    /// Problems that may corrupt data.
    pub corruptions: u64,
    /// Allocated but unreferenced space.
    pub leaks: u64,
    /// Failures of the check itself (e.g. a read error).
    pub check_errors: u64,
    /// The offset after the last allocated byte of the image, when the
    /// format reports one.
    pub image_end_offset: u64,
    /// Clusters the virtual disk spans.
    pub total_clusters: u64,
    /// Guest clusters that are allocated.
    pub allocated_clusters: u64,
    /// Allocated clusters not contiguous with their predecessor.
    pub fragmented_clusters: u64,
    /// Allocated clusters that are compressed.
    pub compressed_clusters: u64,
    /// Lines the format's check prints on stderr as it goes (`ERROR ...`,
    /// `Leaked cluster ...`), each without its newline.
    pub messages: Vec<String>,
}

impl CheckReport {
    /// A clean report for `filename` in `format`.
    pub fn new(filename: &str, format: &str) -> Self {
        CheckReport { filename: filename.to_string(), format: format.to_string(), ..Default::default() }
    }

    /// qemu-img's exit code for this report: 1 when the check itself
    /// failed, 2 on corruption, 3 on leaks only, 0 when clean.
    pub fn exit_code(&self) -> i32 {
        if self.check_errors > 0 {
            1
        } else if self.corruptions > 0 {
            2
        } else if self.leaks > 0 {
            3
        } else {
            0
        }
    }

    /// The report as `qemu-img check --output=json` prints it: optional
    /// counters appear only when non-zero.
    pub fn to_json(&self) -> Json {
        let mut o = Json::object();
        o.push("filename", Json::from(self.filename.as_str()));
        o.push("format", Json::from(self.format.as_str()));
        o.push("check-errors", Json::UInt(self.check_errors));
        let optional = [
            ("image-end-offset", self.image_end_offset),
            ("corruptions", self.corruptions),
            ("leaks", self.leaks),
            ("total-clusters", self.total_clusters),
            ("allocated-clusters", self.allocated_clusters),
            ("fragmented-clusters", self.fragmented_clusters),
            ("compressed-clusters", self.compressed_clusters),
        ];
        for (key, value) in optional {
            if value != 0 {
                o.push(key, Json::UInt(value));
            }
        }
        o
    }

    /// The report as human `qemu-img check` prints it on stdout.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        if self.corruptions == 0 && self.leaks == 0 && self.check_errors == 0 {
            out.push_str("No errors were found on the image.\n");
        } else {
            if self.corruptions > 0 {
                out.push_str(&format!(
                    "\n{} errors were found on the image.\n\
                     Data may be corrupted, or further writes to the image may corrupt it.\n",
                    self.corruptions
                ));
            }
            if self.leaks > 0 {
                out.push_str(&format!(
                    "\n{} leaked clusters were found on the image.\n\
                     This means waste of disk space, but no harm to data.\n",
                    self.leaks
                ));
            }
            if self.check_errors > 0 {
                out.push_str(&format!(
                    "\n{} internal errors have occurred during the check.\n",
                    self.check_errors
                ));
            }
        }
        if self.total_clusters != 0 && self.allocated_clusters != 0 {
            let alloc = self.allocated_clusters as f64;
            out.push_str(&format!(
                "{}/{} = {:.2}% allocated, {:.2}% fragmented, {:.2}% compressed clusters\n",
                self.allocated_clusters,
                self.total_clusters,
                alloc * 100.0 / self.total_clusters as f64,
                self.fragmented_clusters as f64 * 100.0 / alloc,
                self.compressed_clusters as f64 * 100.0 / alloc,
            ));
        }
        if self.image_end_offset != 0 {
            out.push_str(&format!("Image end offset: {}\n", self.image_end_offset));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_qcow2_report_matches_qemu() {
        let mut r = CheckReport::new("a.qcow2", "qcow2");
        r.image_end_offset = 262_144;
        r.total_clusters = 16_384;
        assert_eq!(r.to_human(), "No errors were found on the image.\nImage end offset: 262144\n");
        assert_eq!(
            r.to_json().to_qemu_pretty(),
            "{\n    \"image-end-offset\": 262144,\n    \"total-clusters\": 16384,\n    \
             \"check-errors\": 0,\n    \"filename\": \"a.qcow2\",\n    \"format\": \"qcow2\"\n}\n"
        );
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn leaks_and_corruptions_set_exit_codes() {
        let mut r = CheckReport::new("a", "qcow2");
        r.leaks = 1;
        assert_eq!(r.exit_code(), 3);
        assert!(r.to_human().contains("\n1 leaked clusters were found on the image.\n"));
        r.corruptions = 2;
        assert_eq!(r.exit_code(), 2);
    }
}
