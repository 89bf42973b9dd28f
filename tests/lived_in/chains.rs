//! Lived-in backing chains (issue 12, item 5): chains of mixed formats,
//! relative and absolute backing names, a backing format to probe, missing
//! and broken backing files, loops, a long chain; `info --backing-chain`,
//! `--image-opts` and `-U` on them, for info, check and snapshot.
//!
//! `check` and `snapshot` of an image whose chain loops never return in
//! qemu-img (docs/compat.md §8.4a), so a kind that loops keeps a clean
//! image as its main one and asks only `info --backing-chain` of the loop.

use super::Made;
use crate::util::edit::write_at;
use crate::util::Sandbox;

/// The top of every chain.
const TOP: &str = "top.qcow2";

/// qcow2's header extension that records the backing file's format.
const BACKING_FORMAT_EXT: [u8; 4] = [0xE2, 0x79, 0x2A, 0xCA];

/// `create -f fmt name 1M`, with `backing` (and its format) if given.
fn create(s: &Sandbox, fmt: &str, name: &str, backing: Option<(&str, &str)>) {
    match backing {
        Some((b, bf)) => {
            s.qemu_ok(&["create", "-q", "-f", fmt, "-u", "-b", b, "-F", bf, name, "1M"])
        }
        None => s.qemu_ok(&["create", "-q", "-f", fmt, name, "1M"]),
    };
}

/// The chain commands every kind asks of `image`: `info --backing-chain`
/// in both outputs, and the same image named by `--image-opts`.
fn chain_lines(made: Made, image: &str) -> Made {
    let opts = format!("driver=qcow2,file.filename={image}");
    made.with(&["info", "--backing-chain", image])
        .with(&["info", "--backing-chain", "--output=json", image])
        .with(&["info", "--backing-chain", "--image-opts", &opts])
        .with(&["info", "--image-opts", "--output=json", &opts])
        .with(&["check", "--image-opts", &opts])
        .with(&["snapshot", "-l", "--image-opts", &opts])
}

/// Turns the backing format extension of the qcow2 `name` into the end
/// of the extensions: the image names its backing file without a format,
/// as images of old qemu-img versions do, and the format is probed.
fn drop_backing_format(s: &Sandbox, name: &str) {
    let path = s.file(name);
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(4).position(|w| w == BACKING_FORMAT_EXT).expect("no format extension");
    write_at(&path, at as u64, &[0; 4]);
}

/// Makes the chain of `kind` with the oracle.
fn make(s: &Sandbox, kind: &str) -> Made {
    match kind {
        "qcow2_qcow2_raw" => {
            create(s, "raw", "base.raw", None);
            create(s, "qcow2", "mid.qcow2", Some(("base.raw", "raw")));
            create(s, "qcow2", TOP, Some(("mid.qcow2", "qcow2")));
            let made = Made::new(TOP, "qcow2")
                .with(&["info", "-U", TOP])
                .with(&["check", "-U", TOP])
                .with(&["snapshot", "-U", "-l", TOP])
                .with(&["info", "--backing-chain", "-f", "qcow2", TOP])
                .with(&["info", "--backing-chain", "-U", "--output=json", TOP]);
            chain_lines(made, TOP)
        }
        "over_vmdk" | "over_vpc" | "over_vhdx" => {
            let fmt = kind.trim_start_matches("over_");
            let base = format!("base.{fmt}");
            create(s, fmt, &base, None);
            create(s, "qcow2", TOP, Some((&base, fmt)));
            chain_lines(Made::new(TOP, "qcow2"), TOP)
        }
        "vmdk_parent" => {
            create(s, "vmdk", "parent.vmdk", None);
            create(s, "vmdk", "child.vmdk", Some(("parent.vmdk", "vmdk")));
            let opts = "driver=vmdk,file.filename=child.vmdk";
            Made::new("child.vmdk", "vmdk")
                .with(&["info", "--backing-chain", "child.vmdk"])
                .with(&["info", "--backing-chain", "--output=json", "child.vmdk"])
                .with(&["info", "--image-opts", opts])
                .with(&["check", "--image-opts", opts])
        }
        "subfolders" => {
            std::fs::create_dir_all(s.file("d/sub")).unwrap();
            create(s, "raw", "d/base.raw", None);
            create(s, "qcow2", "d/sub/mid.qcow2", Some(("../base.raw", "raw")));
            create(s, "qcow2", "d/top.qcow2", Some(("sub/mid.qcow2", "qcow2")));
            chain_lines(Made::new("d/top.qcow2", "qcow2"), "d/top.qcow2")
        }
        "absolute_names" => {
            create(s, "raw", "base.raw", None);
            let base = s.file("base.raw").to_string_lossy().into_owned();
            create(s, "qcow2", TOP, Some((&base, "raw")));
            let top = s.file(TOP).to_string_lossy().into_owned();
            let made = Made::new(TOP, "qcow2").with(&["info", "--backing-chain", &top]);
            chain_lines(made, TOP)
        }
        "probed_formats" => {
            create(s, "raw", "base.raw", None);
            create(s, "qcow2", "mid.qcow2", Some(("base.raw", "raw")));
            create(s, "qcow2", TOP, Some(("mid.qcow2", "qcow2")));
            drop_backing_format(s, "mid.qcow2");
            drop_backing_format(s, TOP);
            chain_lines(Made::new(TOP, "qcow2"), TOP)
        }
        "missing_backing" => {
            create(s, "qcow2", TOP, Some(("gone.qcow2", "qcow2")));
            chain_lines(Made::new(TOP, "qcow2"), TOP)
        }
        "missing_deeper" => {
            create(s, "qcow2", "mid.qcow2", Some(("gone.raw", "raw")));
            create(s, "qcow2", TOP, Some(("mid.qcow2", "qcow2")));
            chain_lines(Made::new(TOP, "qcow2"), TOP)
        }
        "backing_is_a_folder" => {
            std::fs::create_dir(s.file("folder")).unwrap();
            create(s, "qcow2", TOP, Some(("folder", "raw")));
            chain_lines(Made::new(TOP, "qcow2"), TOP)
        }
        "backing_bad_vmdk" => {
            std::fs::write(s.file("bad.vmdk"), "# Disk DescriptorFile\nversion=1\ngarbage")
                .unwrap();
            create(s, "qcow2", TOP, Some(("bad.vmdk", "vmdk")));
            chain_lines(Made::new(TOP, "qcow2"), TOP)
        }
        "loops" => {
            create(s, "qcow2", TOP, None);
            create(s, "qcow2", "self.qcow2", None);
            s.qemu_ok(&["rebase", "-u", "-b", "self.qcow2", "-F", "qcow2", "self.qcow2"]);
            create(s, "qcow2", "a.qcow2", Some(("b.qcow2", "qcow2")));
            create(s, "qcow2", "b.qcow2", Some(("a.qcow2", "qcow2")));
            Made::new(TOP, "qcow2")
                .with(&["info", "--backing-chain", "self.qcow2"])
                .with(&["info", "--backing-chain", "--output=json", "self.qcow2"])
                .with(&["info", "--backing-chain", "a.qcow2"])
                .with(&["info", "--backing-chain", "b.qcow2"])
                .with(&["info", "self.qcow2"])
                .with(&["info", "--backing-chain", "--image-opts", "file.filename=a.qcow2"])
        }
        "loop_of_growing_names" => {
            // `./a` backed by `./b` backed by `./a`: every name differs
            // from the last (`././a`, ...) until it is too long to open.
            create(s, "qcow2", TOP, None);
            create(s, "qcow2", "ga.qcow2", Some(("./gb.qcow2", "qcow2")));
            create(s, "qcow2", "gb.qcow2", Some(("./ga.qcow2", "qcow2")));
            Made::new(TOP, "qcow2").with(&["info", "--backing-chain", "ga.qcow2"]).with(&[
                "info",
                "--backing-chain",
                "--output=json",
                "gb.qcow2",
            ])
        }
        "long_chain" => {
            create(s, "raw", "c0.raw", None);
            let mut below = ("c0.raw".to_string(), "raw");
            for i in 1..20 {
                let name = format!("c{i}.qcow2");
                create(s, "qcow2", &name, Some((&below.0, below.1)));
                below = (name, "qcow2");
            }
            chain_lines(Made::new("c19.qcow2", "qcow2"), "c19.qcow2")
        }
        "json_backing" => {
            create(s, "raw", "base.raw", None);
            std::fs::create_dir(s.file("d")).unwrap();
            create(s, "qcow2", "d/mid.qcow2", Some(("../base.raw", "raw")));
            let json =
                r#"json:{"driver":"qcow2","file":{"driver":"file","filename":"d/mid.qcow2"}}"#;
            create(s, "qcow2", TOP, Some((json, "qcow2")));
            let gone = r#"json:{"driver":"raw","file":{"filename":"gone.raw"}}"#;
            create(s, "qcow2", "gone.qcow2", Some((gone, "raw")));
            create(s, "qcow2", "array.qcow2", Some(("json:[1]", "raw")));
            let made = Made::new(TOP, "qcow2")
                .with(&["check", "gone.qcow2"])
                .with(&["snapshot", "-l", "gone.qcow2"])
                .with(&["info", "--backing-chain", "gone.qcow2"])
                .with(&["check", "array.qcow2"])
                .with(&["info", "--backing-chain", "array.qcow2"])
                .with(&["info", r#"json:{"file":{"filename":"top.qcow2"}}"#])
                .with(&[
                    "info",
                    "-f",
                    "raw",
                    r#"json:{"driver":"qcow2","file.filename":"top.qcow2"}"#,
                ])
                .with(&["check", "--output=json", r#"json:{"file.filename":"top.qcow2"}"#])
                .with(&["info", r#"json:{"a":[1,2],"file.filename":"top.qcow2"}"#])
                .with(&["info", "json:[1]"])
                .with(&["info", "-f", "raw", r#"json:{"file":{"filename":5}}"#])
                .with(&["info", r#"json:{"driver":5,"file":{"filename":"top.qcow2"}}"#]);
            chain_lines(made, TOP)
        }
        "image_opts_refused" => {
            create(s, "raw", "base.raw", None);
            create(s, "qcow2", TOP, Some(("base.raw", "raw")));
            let mut made = Made::new(TOP, "qcow2");
            for opts in [
                "driver=qcow2,file.filename=top.qcow2,foo=bar,zzz=1,abc=2",
                "driver=qcow2,file.filename=top.qcow2,file.foo=1",
                "driver=qcow2",
                "foo=bar",
                "",
                "top.qcow2",
                "driver=nope,file.filename=top.qcow2",
                "driver=qcow2,file.filename=base.raw",
                "driver=qcow2,file.filename=gone",
                "driver=qcow2,file.driver=file",
                "driver=qcow2,file=x,file.filename=top.qcow2",
                "file.filename=top.qcow2,id=9x",
                "file.filename=top.qcow2,force-share",
                "driver=qcow2,file.filename=top.qcow2,force-share=maybe",
                "id=x,driver=qcow2,file.filename=top.qcow2",
                "driver=raw,file.filename=top.qcow2",
                "driver=qcow2,file.locking=off",
            ] {
                made = made.with(&["info", "--image-opts", opts]);
            }
            let opts = "driver=qcow2,file.filename=top.qcow2,force-share=off";
            made.with(&["info", "-U", "--image-opts", opts])
                .with(&["check", "-U", "--image-opts", opts])
                .with(&["snapshot", "-l", "-U", "--image-opts", opts])
                .with(&["info", "-f", "qcow2", "--image-opts", opts])
                .with(&["check", "-f", "qcow2", "--image-opts", opts])
                .with(&["check", "--output=json", "--image-opts", "file.filename=top.qcow2"])
        }
        other => panic!("no chain kind {other}"),
    }
}

kinds!(make;
    qcow2_qcow2_raw, over_vmdk, over_vpc, over_vhdx, vmdk_parent, subfolders,
    absolute_names, probed_formats, missing_backing, missing_deeper,
    backing_is_a_folder, backing_bad_vmdk, loops, loop_of_growing_names, long_chain,
    image_opts_refused, json_backing,
);
