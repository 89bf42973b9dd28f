//! Image file names as qemu's block layer reads them: a protocol prefix
//! (`path_has_protocol`), a name taken relative to another
//! (`path_combine`), and the name a backing file is opened by
//! (`bdrv_get_full_backing_filename_from_filename`). Names are bytes (a
//! Linux file name need not be UTF-8); the `&str` forms take and give
//! [`rawtext`], which carries any bytes.

use crate::rawtext;
use crate::Error;

/// Where the protocol prefix of `name` ends: the index of a `:` that comes
/// before any `/` (qemu's `path_has_protocol`).
pub fn protocol_end(name: &[u8]) -> Option<usize> {
    let i = name.iter().position(|&b| b == b':' || b == b'/')?;
    (name[i] == b':').then_some(i)
}

/// Whether `name` starts with a protocol (`nbd:...`, `file:...`).
pub fn has_protocol(name: &[u8]) -> bool {
    protocol_end(name).is_some()
}

/// qemu's `path_combine`: `name` as it is when absolute, else joined to
/// the directory of `base` (everything up to its last `/`, and never less
/// than its protocol prefix).
pub fn combine(base: &[u8], name: &[u8]) -> Vec<u8> {
    if name.first() == Some(&b'/') {
        return name.to_vec();
    }
    let after_protocol = protocol_end(base).map_or(0, |i| i + 1);
    let dir_end = base.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1).max(after_protocol);
    let mut out = base[..dir_end].to_vec();
    out.extend_from_slice(name);
    out
}

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

/// The name qemu opens (and `info` shows) the backing file `backing` of
/// the image `image` by: `None` for an empty name; a name with a protocol
/// or an absolute one as it is; any other relative to the image's
/// directory.
pub fn full_backing_filename(image: &str, backing: &str) -> Option<String> {
    if backing.is_empty() {
        return None;
    }
    if has_protocol(backing.as_bytes()) {
        return Some(backing.to_string());
    }
    let full = combine(&rawtext::to_bytes(image), &rawtext::to_bytes(backing));
    Some(rawtext::from_bytes(&full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_come_before_any_slash() {
        assert_eq!(protocol_end(b"nbd:host:1"), Some(3));
        assert_eq!(protocol_end(b"./a:b"), None);
        assert_eq!(protocol_end(b"plain"), None);
    }

    #[test]
    fn names_combine_like_qemu() {
        assert_eq!(combine(b"sub/t.q", b"base"), b"sub/base");
        assert_eq!(combine(b"t.q", b"base"), b"base");
        assert_eq!(combine(b"sub/t.q", b"/abs"), b"/abs");
        assert_eq!(combine(b"/a/b.qcow2", b"../x"), b"/a/../x");
        assert_eq!(combine(b"file:x.q", b"b"), b"file:b");
    }

    #[test]
    fn backing_names_resolve_like_qemu() {
        let full = |image, backing| full_backing_filename(image, backing);
        assert_eq!(full("b.qcow2", "base.raw").as_deref(), Some("base.raw"));
        assert_eq!(full("/tmp/q/b.qcow2", "base.raw").as_deref(), Some("/tmp/q/base.raw"));
        assert_eq!(full("sub/x.qcow2", "../base.raw").as_deref(), Some("sub/../base.raw"));
        assert_eq!(full("sub/x.qcow2", "/abs").as_deref(), Some("/abs"));
        assert_eq!(full("sub/x.qcow2", "nbd:host:10809").as_deref(), Some("nbd:host:10809"));
        assert_eq!(full("x", "").as_deref(), None);
    }
}
