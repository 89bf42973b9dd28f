//! Lived-in qcow2 (issue 12, items 2 and 6): guest data written by
//! qemu-io, zero and compressed clusters, persistent dirty bitmaps.

use super::{qemu_io, Made};
use crate::util::Sandbox;

const IMAGE: &str = "l.qcow2";

/// Makes the image of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    s.qemu_ok(&["create", "-q", "-f", "qcow2", IMAGE, "64M"]);
    match kind {
        "written" => {
            qemu_io(s, &["-c", "write -P 0x5a 0 1M", "-c", "write 3M 64k", IMAGE]);
            return Made::new(IMAGE, "qcow2").with(&["info", "-U", IMAGE]);
        }
        "zero_clusters" => {
            qemu_io(s, &["-c", "write -P 1 0 2M", "-c", "write -z 512k 1M", IMAGE]);
        }
        "compressed" => {
            qemu_io(s, &["-c", "write -P 7 0 4M", IMAGE]);
            s.qemu_ok(&["convert", "-c", "-O", "qcow2", IMAGE, "c.qcow2"]);
            return Made::new("c.qcow2", "qcow2");
        }
        "bitmap" => {
            s.qemu_ok(&["bitmap", "--add", IMAGE, "b0"]);
        }
        other => panic!("no image kind {other}"),
    }
    Made::new(IMAGE, "qcow2")
}

kinds!(make; written, zero_clusters, compressed, bitmap);
