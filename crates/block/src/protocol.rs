//! Protocol prefixes in file names (`file:disk.img`, `nbd:host:port`), as
//! qemu's `bdrv_find_protocol` reads them: a name has a prefix when a `:`
//! comes before any `/`. instar reads and writes local files only, so the
//! `file` protocol is the one it serves; qemu's other protocols are refused
//! by name, and anything else is qemu's `Unknown protocol`.

use instar_core::path::protocol_end;
use instar_core::Error;

/// The protocols qemu knows besides `file`, which instar does not serve.
const OTHER_QEMU_PROTOCOLS: &[&str] = &[
    "blkdebug",
    "blklogwrites",
    "blkreplay",
    "blkverify",
    "ftp",
    "ftps",
    "gluster",
    "gluster+rdma",
    "gluster+tcp",
    "gluster+unix",
    "host_cdrom",
    "host_device",
    "http",
    "https",
    "iscsi",
    "json",
    "nbd",
    "nbd+tcp",
    "nbd+unix",
    "nfs",
    "null-aio",
    "null-co",
    "nvme",
    "rbd",
    "ssh",
    "throttle",
    "vvfat",
];

/// The local path a file name stands for: the name itself, or the name
/// without a `file:` prefix.
pub fn local_path(filename: &str) -> Result<&str, Error> {
    let Some(i) = protocol_end(filename.as_bytes()) else {
        return Ok(filename);
    };
    let protocol = &filename[..i];
    if protocol == "file" {
        return Ok(&filename[i + 1..]);
    }
    if OTHER_QEMU_PROTOCOLS.contains(&protocol) {
        return Err(Error::not_supported(format!(
            "Protocol '{protocol}' is not supported by instar (only local files are)"
        )));
    }
    Err(Error::invalid(format!("Unknown protocol '{protocol}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_read_like_qemu() {
        assert_eq!(local_path("a.img").unwrap(), "a.img");
        assert_eq!(local_path("./a:b.img").unwrap(), "./a:b.img");
        assert_eq!(local_path("file:a.img").unwrap(), "a.img");
        assert_eq!(local_path("a:b.img").unwrap_err().to_string(), "Unknown protocol 'a'");
        assert!(local_path("nbd:host:1").unwrap_err().to_string().contains("not supported"));
    }
}
