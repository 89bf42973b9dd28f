//! Protocol prefixes in file names (`file:disk.img`, `nbd:host:port`), as
//! qemu's `bdrv_find_protocol` reads them: a name has a prefix when a `:`
//! comes before any `/`. instar reads and writes local files only, so the
//! `file` protocol is the one it serves; qemu's other protocols are refused
//! by name, and anything else is qemu's `Unknown protocol`. The rule lives
//! in `instar_core::path`, where the formats that name other files (a
//! qcow2 data file) find it too.

pub use instar_core::path::local_path;

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
