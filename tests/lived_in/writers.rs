//! Images other writers made (issue 12, item 7): qemu's own sample images
//! (VHDs from Hyper-V, Virtual PC and disk2vhd, VHDX files from Hyper-V and
//! disk2vhd, a version-3 sparse VMDK, fuzzer-made images, and images of
//! formats instar does not read), and images made here in the shapes
//! VMware Workstation, ESXi, OVF exports, Virtual PC, Hyper-V, disk2vhd,
//! Visual Studio, Azure and Xen write.
//!
//! The sample images come from Debian's qemu source package, fetched by
//! `make qemu-matrix` into `.qemu-matrix/sample-images/images/`
//! (`.ci/sample-images.py`, docs/compat.md §5.12); they are qemu's test
//! data and are never committed. Each is unpacked (bzip2, sparse) into the
//! test's sandbox. An image of a format instar reads is compared with
//! qemu-img V as every lived-in kind is ([`super::compare`]); an image of a
//! format qemu-img V reads and instar does not is refused by name
//! (docs/compat.md §8.2), and the refusal is asserted word for word.

use super::{qemu_io, Made};
use crate::util::edit::{file_len, read_at, vmdk_move_header_to_footer, write_at};
use crate::util::{instar, qemu_or_skip, skip, skip_build_lacks, Sandbox, Transcript};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// --- qemu's sample images --------------------------------------------------

/// Every sample image of qemu's `tests/qemu-iotests/sample_images/`: the
/// test's name, the file (without `.bz2`), and the format qemu-img reads it
/// as (when its build has that driver).
const SAMPLES: &[(&str, &str, &str)] = &[
    ("afl5_img", "afl5.img", "vpc"),
    ("afl9_vmdk", "afl9.vmdk", "vmdk"),
    ("d2v_zerofilled_vhd", "d2v-zerofilled.vhd", "vpc"),
    ("empty_bochs", "empty.bochs", "bochs"),
    ("grub_mbr_raw", "grub_mbr.raw", "raw"),
    ("hyperv2012r2_dynamic_vhd", "hyperv2012r2-dynamic.vhd", "vpc"),
    ("iotest_dirtylog_10g_4m_vhdx", "iotest-dirtylog-10G-4M.vhdx", "vhdx"),
    ("iotest_dynamic_1g_vhdx", "iotest-dynamic-1G.vhdx", "vhdx"),
    ("iotest_version3_vmdk", "iotest-version3.vmdk", "vmdk"),
    ("parallels_v1", "parallels-v1", "parallels"),
    ("parallels_v2", "parallels-v2", "parallels"),
    ("parallels_with_bitmap", "parallels-with-bitmap", "parallels"),
    ("simple_dmg_dmg", "simple-dmg.dmg", "dmg"),
    ("simple_pattern_cloop", "simple-pattern.cloop", "cloop"),
    ("test_disk2vhd_vhdx", "test-disk2vhd.vhdx", "vhdx"),
    ("virtualpc_dynamic_vhd", "virtualpc-dynamic.vhd", "vpc"),
];

/// The formats instar reads.
const INSTAR_FORMATS: &[&str] = &["raw", "qcow2", "vmdk", "vpc", "vhdx"];

/// Where `make qemu-matrix` puts qemu's sample images.
fn samples_dir() -> PathBuf {
    instar_matrix::qemu::repo_root().join(".qemu-matrix/sample-images")
}

/// The folder of the sample images, or `None` after skipping the running
/// test: always when `make qemu-matrix` recorded that Debian no longer
/// offers them, else as [`skip`] does (strict mode fails).
fn samples_or_skip() -> Option<PathBuf> {
    let top = samples_dir();
    if let Ok(reason) = std::fs::read_to_string(top.join("unavailable")) {
        skip_build_lacks(&format!("qemu's sample images are unavailable: {}", reason.trim()));
        return None;
    }
    let images = top.join("images");
    if !top.join("SOURCE").is_file() || !images.is_dir() {
        skip("qemu's sample images are not fetched (`make qemu-matrix` fetches them)");
        return None;
    }
    Some(images)
}

/// Unpacks `from` (bzip2) into `to`, leaving holes where the image has
/// zeros (the largest sample image is 260 MiB of mostly nothing).
fn bunzip2_sparse(t: &Transcript, from: &Path, to: &Path) {
    const BLOCK: usize = 4096;
    let mut child =
        Command::new("bzip2").arg("-dc").arg(from).stdout(Stdio::piped()).spawn().unwrap_or_else(
            |e| t.fail(&format!("bzip2 -dc {}: {e} (is bzip2 installed?)", from.display())),
        );
    let mut out = child.stdout.take().unwrap();
    let file = std::fs::File::create(to).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        // Fill the buffer so that blocks stay aligned.
        let mut n = 0;
        while n < buf.len() {
            match out.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        for (i, block) in buf[..n].chunks(BLOCK).enumerate() {
            if block.iter().any(|&b| b != 0) {
                file.write_all_at(block, at + (i * BLOCK) as u64).unwrap();
            }
        }
        at += n as u64;
        if n < buf.len() {
            break;
        }
    }
    file.set_len(at).unwrap();
    // Settled on disk before anything measures it: the file system may
    // still change the blocks it counts for a freshly written file, and
    // `disk size` would then differ between two runs.
    file.sync_all().unwrap();
    let status = child.wait().unwrap();
    t.check(status.success(), || format!("bzip2 -dc {} failed: {status}", from.display()));
}

/// The sample image `kind` unpacked into the sandbox.
fn make_sample(s: &Sandbox, kind: &str) -> Made {
    let (_, file, format) = SAMPLES.iter().find(|(k, _, _)| *k == kind).unwrap();
    let images = samples_dir().join("images");
    bunzip2_sparse(&s.t, &images.join(format!("{file}.bz2")), &s.file(file));
    // A format instar does not read is compared only where qemu-img reads
    // the image as raw (parallels on 5.2).
    let format = INSTAR_FORMATS.iter().find(|f| *f == format).copied().unwrap_or("raw");
    Made::new(file, format)
}

/// What proves a file unchanged without reading it: its inode, length and
/// change time (any write, truncation or metadata change moves the change
/// time), for every file in `dir`.
fn stamps(dir: &Path) -> Vec<(PathBuf, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.ino(), m.len(), m.ctime(), m.ctime_nsec()))
        })
        .collect();
    all.sort();
    all
}

/// [`compare`] for a sample image, which may be hundreds of MiB: the same
/// command lines against qemu-img `version`, each instar run proven
/// read-only by the files' inodes, lengths and change times rather than by
/// reading them all again.
fn compare_sample(kind: &str, version: &str) {
    let Some(s) = Sandbox::new() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    let made = make_sample(&s, kind);
    let (image, format) = (made.image.as_str(), made.format);
    let (_guard, guest) = super::reference(&s, &made);
    let reads = super::reading(&made, guest.as_deref());
    let reads = reads.iter().map(|l| l.iter().map(String::as_str).collect::<Vec<_>>());
    for args in [
        vec!["info", image],
        vec!["info", "--output=json", image],
        vec!["info", "-f", format, image],
        vec!["info", "-f", format, "--output=json", image],
        vec!["check", image],
        vec!["check", "--output=json", image],
        vec!["check", "-f", format, image],
    ]
    .into_iter()
    .chain(reads)
    {
        let theirs = s.t.run(&qemu.path, &args, s.path());
        let before = stamps(s.path());
        let mine = s.t.run_env(instar(), &args, s.path(), &[("INSTAR_QEMU_VERSION", version)]);
        let what = format!("{} as {version}", args.join(" "));
        s.t.check(stamps(s.path()) == before, || format!("instar {what} changed a file"));
        s.t.assert_same_run(&what, &theirs, &mine);
    }
}

/// instar's refusal of an image of a format it does not read.
fn refusal(file: &str, format: &str) -> String {
    format!(
        "instar: Could not open '{file}': Format '{format}' is not supported by instar (it \
         supports raw, qcow2, vmdk, vpc and vhdx)\n"
    )
}

/// The sample image `kind` against qemu-img `version`: compared when
/// qemu-img reads it as a format instar reads, else refused by name.
fn sample(kind: &str, version: &str) {
    if samples_or_skip().is_none() {
        return;
    }
    let (_, file, format) = *SAMPLES.iter().find(|(k, _, _)| *k == kind).unwrap();
    if INSTAR_FORMATS.contains(&format) {
        compare_sample(kind, version);
        return;
    }
    let Some(s) = Sandbox::new() else { return };
    let Some(qemu) = qemu_or_skip(version) else { return };
    make_sample(&s, kind);
    // Which driver qemu-img V reads it with: Debian's 5.2 has no parallels
    // driver and reads those as raw, and instar speaking as 5.2 must too.
    let json = s.t.run_ok(&qemu.path, &["info", "--output=json", file], s.path());
    let seen: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let seen = seen["format"].as_str().unwrap_or_default().to_string();
    if INSTAR_FORMATS.contains(&seen.as_str()) {
        drop(s);
        compare_sample(kind, version);
        return;
    }
    s.t.check(seen == format, || {
        format!("qemu-img {version} reads {file} as {seen}, not {format}")
    });
    let before = std::fs::read(s.file(file)).unwrap();
    for args in [
        vec!["info", file],
        vec!["info", "--output=json", file],
        vec!["info", "-f", format, file],
        vec!["check", file],
        vec!["check", "--output=json", file],
        vec!["check", "-f", format, file],
    ] {
        let run = s.t.run_env(instar(), &args, s.path(), &[("INSTAR_QEMU_VERSION", version)]);
        let what = format!("instar {} as {version}", args.join(" "));
        s.t.check(run.code == Some(1), || format!("{what} exited {:?}, not 1", run.code));
        s.t.assert_same(&format!("{what}: stdout"), "", &run.stdout);
        s.t.assert_same(&format!("{what}: stderr"), &refusal(file, format), &run.stderr);
        s.t.check(std::fs::read(s.file(file)).unwrap() == before, || format!("{what} changed it"));
    }
}

/// One test per sample image and version.
macro_rules! samples {
    ($($kind:ident),* $(,)?) => {
        mod sample_images {
            $(
                #[rstest::rstest]
                fn $kind(
                    #[values("5.2.0", "7.2.18", "7.2.22", "10.0.2", "10.0.13", "11.1.3")]
                    version: &str,
                ) {
                    super::sample(stringify!($kind), version);
                }
            )*
        }
    };
}

samples!(
    afl5_img,
    afl9_vmdk,
    d2v_zerofilled_vhd,
    empty_bochs,
    grub_mbr_raw,
    hyperv2012r2_dynamic_vhd,
    iotest_dirtylog_10g_4m_vhdx,
    iotest_dynamic_1g_vhdx,
    iotest_version3_vmdk,
    parallels_v1,
    parallels_v2,
    parallels_with_bitmap,
    simple_dmg_dmg,
    simple_pattern_cloop,
    test_disk2vhd_vhdx,
    virtualpc_dynamic_vhd,
);

/// Every image qemu's sample folder holds has its test above, and every
/// test its image: a new sample image in qemu's source fails here until it
/// is added to [`SAMPLES`].
#[test]
fn every_sample_image_has_a_test() {
    let Some(images) = samples_or_skip() else { return };
    let mut found: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".bz2").map(str::to_string))
        .collect();
    found.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|(_, f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "the sample images in {} and SAMPLES differ", images.display());
}

// --- images made here in other writers' shapes ------------------------------

/// The VHD footer's fields this module rewrites (big-endian, from the
/// start of the 512-byte footer).
mod vhd {
    pub const FOOTER: usize = 512;
    pub const CREATOR_APP: usize = 28;
    pub const CREATOR_VERSION: usize = 32;
    pub const CREATOR_OS: usize = 36;
    pub const ORIGINAL_SIZE: usize = 40;
    pub const CURRENT_SIZE: usize = 48;
    pub const GEOMETRY: usize = 56;
    pub const CHECKSUM: usize = 64;
}

/// A VHD as another program writes it: qemu-img makes a 16 MiB disk
/// (`force_size=on`) and qemu-io writes guest data; then every footer copy
/// is given the other program's creator application, version and host OS,
/// the size 16 MiB in both size fields, the geometry the VHD specification
/// computes for that size (481 cylinders, 4 heads, 17 sectors: 32708
/// sectors, a little less), and its checksum again. Which of the two sizes
/// qemu-img reports depends on the creator and on the qemu version (qemu's
/// own `force_size` geometry, the largest, would make every qemu use the
/// size field).
fn vhd_by(s: &Sandbox, subformat: &str, app: &[u8; 4], version: u32, os: &[u8; 4]) -> Made {
    const IMAGE: &str = "w.vhd";
    s.qemu_ok(&[
        "create",
        "-q",
        "-f",
        "vpc",
        "-o",
        &format!("subformat={subformat},force_size=on"),
        IMAGE,
        "16M",
    ]);
    qemu_io(s, &["-f", "vpc", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 6M 64k", IMAGE]);
    let path = s.file(IMAGE);
    let len = file_len(&path);
    let mut copies = vec![len - vhd::FOOTER as u64];
    if subformat == "dynamic" {
        copies.push(0);
    }
    for at in copies {
        let mut f = read_at(&path, at, vhd::FOOTER);
        f[vhd::CREATOR_APP..vhd::CREATOR_APP + 4].copy_from_slice(app);
        f[vhd::CREATOR_VERSION..vhd::CREATOR_VERSION + 4].copy_from_slice(&version.to_be_bytes());
        f[vhd::CREATOR_OS..vhd::CREATOR_OS + 4].copy_from_slice(os);
        let size = 16u64 << 20;
        f[vhd::ORIGINAL_SIZE..vhd::ORIGINAL_SIZE + 8].copy_from_slice(&size.to_be_bytes());
        f[vhd::CURRENT_SIZE..vhd::CURRENT_SIZE + 8].copy_from_slice(&size.to_be_bytes());
        f[vhd::GEOMETRY..vhd::GEOMETRY + 4].copy_from_slice(&[0x01, 0xe1, 4, 17]);
        f[vhd::CHECKSUM..vhd::CHECKSUM + 4].fill(0);
        let sum = !f.iter().fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
        f[vhd::CHECKSUM..vhd::CHECKSUM + 4].copy_from_slice(&sum.to_be_bytes());
        write_at(&path, at, &f);
    }
    Made::new(IMAGE, "vpc")
}

/// The VMDK4 sparse header's fields this module reads or rewrites
/// (little-endian).
mod vmdk4 {
    pub const VERSION: u64 = 4;
    pub const DESC_OFFSET: u64 = 28;
    pub const DESC_SIZE: u64 = 36;
}

/// Replaces the descriptor embedded in the sparse extent `name` with
/// `text` (which must fit the space qemu-img left for it).
fn embed_descriptor(s: &Sandbox, name: &str, text: &str) {
    let path = s.file(name);
    let sector = |at| u64::from_le_bytes(read_at(&path, at, 8).try_into().unwrap());
    let (offset, size) = (sector(vmdk4::DESC_OFFSET) * 512, sector(vmdk4::DESC_SIZE) * 512);
    s.t.check(offset > 0 && text.len() as u64 <= size, || {
        format!("{name}: no room for a {}-byte descriptor ({size} at {offset})", text.len())
    });
    let mut area = vec![0u8; size as usize];
    area[..text.len()].copy_from_slice(text.as_bytes());
    write_at(&path, offset, &area);
}

/// Lines as Windows writes them.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// The Disk Data Base VMware Workstation 16 writes (adapter, geometry of
/// `cylinders`, ids, virtual hardware and tools versions).
fn workstation_ddb(cylinders: u32) -> String {
    format!(
        "# The Disk Data Base \n#DDB\n\nddb.adapterType = \"lsilogic\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\nddb.geometry.heads = \"16\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.longContentID = \"8d3c7a9a52f1e6b04e4a0e6c2b1d4f7e\"\n\
         ddb.toolsInstallType = \"4\"\nddb.toolsVersion = \"12389\"\n\
         ddb.uuid = \"60 00 C2 9b 69 2f c9 76-74 c4 07 9e 10 87 3b f9\"\n\
         ddb.virtualHWVersion = \"19\"\n"
    )
}

/// The head of a descriptor as VMware writes it.
fn vmware_head(cid: &str, parent: &str, create_type: &str, encoding: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"{encoding}\"\nCID={cid}\n\
         parentCID={parent}\nisNativeSnapshot=\"no\"\ncreateType=\"{create_type}\"\n\n\
         # Extent description\n"
    )
}

/// The Disk Data Base ESXi 7 writes for a thin disk.
fn esxi_ddb() -> &'static str {
    "\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n\
     ddb.deletable = \"true\"\nddb.encoding = \"UTF-8\"\n\
     ddb.geometry.cylinders = \"4\"\nddb.geometry.heads = \"255\"\n\
     ddb.geometry.sectors = \"63\"\n\
     ddb.longContentID = \"3f0b7f3c1d6f4c2a9e81a7b25e1c4b2a\"\n\
     ddb.thinProvisioned = \"1\"\n\
     ddb.uuid = \"60 00 C2 95 0e 6c 1f 4e-5b 2a 9d 3c 7e 41 a2 0b\"\n\
     ddb.virtualHWVersion = \"17\"\n"
}

/// An ESXi base disk: `esx.vmdk`, a vmfs descriptor, over `esx-flat.vmdk`
/// (4 MiB, with data), as the snapshots below name it.
fn esxi_base(s: &Sandbox) {
    let mut flat = vec![0u8; 4 << 20];
    flat[..65536].fill(0x3c);
    std::fs::write(s.file("esx-flat.vmdk"), flat).unwrap();
    let text = vmware_head("5e1c4b2a", "ffffffff", "vmfs", "UTF-8")
        + "RW 8192 VMFS \"esx-flat.vmdk\"\n"
        + esxi_ddb();
    std::fs::write(s.file("esx.vmdk"), text).unwrap();
}

/// An ESX sparse ("COWD") delta of 8192 sectors, grains of 16 sectors, one
/// grain directory entry at sector 4, its table at 5 (4096 entries), one
/// grain of data at 37.
fn cowd_delta() -> Vec<u8> {
    let mut b = vec![0u8; 512 * 53];
    b[..4].copy_from_slice(b"COWD");
    // version, flags, sectors, granularity, directory sector, entries.
    for (i, v) in [1u32, 3, 8192, 16, 4, 1].iter().enumerate() {
        b[4 + i * 4..8 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
    b[4 * 512..4 * 512 + 4].copy_from_slice(&5u32.to_le_bytes());
    b[5 * 512 + 4..5 * 512 + 8].copy_from_slice(&37u32.to_le_bytes());
    b[37 * 512..38 * 512].fill(0xab);
    b
}

/// Makes the image of `kind` in another writer's shape; qemu-img (the
/// oracle) must read it, so that every kind tests a good image.
fn make(s: &Sandbox, kind: &str) -> Made {
    let made = make_kind(s, kind);
    s.qemu_ok(&["info", &made.image]);
    if made.format != "vpc" {
        // qemu-img has no check of VHDs (exit 63).
        s.qemu_ok(&["check", &made.image]);
    }
    made
}

/// The image of `kind`.
fn make_kind(s: &Sandbox, kind: &str) -> Made {
    match kind {
        // VHDs: Virtual PC (Windows and Mac), Hyper-V, Disk2vhd, Visual
        // Studio, Azure, XenServer and XenConverter.
        "vhd_virtual_pc_dynamic" => vhd_by(s, "dynamic", b"vpc ", 0x0005_0003, b"Wi2k"),
        "vhd_virtual_pc_fixed" => vhd_by(s, "fixed", b"vpc ", 0x0005_0003, b"Wi2k"),
        "vhd_virtual_pc_mac" => vhd_by(s, "dynamic", b"vpc ", 0x0004_0000, b"Mac "),
        "vhd_hyperv_dynamic" => vhd_by(s, "dynamic", b"win ", 0x000a_0000, b"Wi2k"),
        "vhd_hyperv_fixed" => vhd_by(s, "fixed", b"win ", 0x0006_0001, b"Wi2k"),
        "vhd_disk2vhd_dynamic" => vhd_by(s, "dynamic", b"d2v ", 0x0001_0000, b"Wi2k"),
        "vhd_visual_studio_dynamic" => vhd_by(s, "dynamic", b"vs  ", 0x0004_0000, b"Wi2k"),
        "vhd_visual_studio_fixed" => vhd_by(s, "fixed", b"vs  ", 0x0004_0000, b"Wi2k"),
        "vhd_azure_fixed" => vhd_by(s, "fixed", b"wa\0\0", 0x0007_0000, b"Wi2k"),
        "vhd_xenserver_dynamic" => vhd_by(s, "dynamic", b"tap\0", 0x0001_0003, b"\0\0\0\0"),
        "vhd_xenconverter_fixed" => vhd_by(s, "fixed", b"CTXS", 0x0001_0000, b"Wi2k"),
        // VMDKs as VMware Workstation writes them.
        "vmdk_workstation_sparse" => {
            s.qemu_ok(&["create", "-q", "-f", "vmdk", "ws.vmdk", "64M"]);
            qemu_io(s, &["-f", "vmdk", "-c", "write -P 0x61 0 128k", "ws.vmdk"]);
            let text = vmware_head("fffffffe", "ffffffff", "monolithicSparse", "windows-1252")
                + "RW 131072 SPARSE \"ws.vmdk\"\n\n"
                + &workstation_ddb(130);
            embed_descriptor(s, "ws.vmdk", &text);
            Made::new("ws.vmdk", "vmdk")
        }
        "vmdk_workstation_flat_crlf" => {
            s.qemu_ok(&[
                "create",
                "-q",
                "-f",
                "vmdk",
                "-o",
                "subformat=monolithicFlat",
                "wf.vmdk",
                "4M",
            ]);
            qemu_io(s, &["-f", "vmdk", "-c", "write -P 0x62 64k 64k", "wf.vmdk"]);
            // Windows line ends, and runs of blanks between the fields of
            // the extent line.
            let text = vmware_head("2b4d6f81", "ffffffff", "monolithicFlat", "windows-1252")
                + "RW   8192  FLAT   \"wf-flat.vmdk\"  0\n\n"
                + &workstation_ddb(8);
            std::fs::write(s.file("wf.vmdk"), crlf(&text)).unwrap();
            Made::new("wf.vmdk", "vmdk")
        }
        "vmdk_workstation_split_sparse" => {
            let options = "subformat=twoGbMaxExtentSparse";
            s.qemu_ok(&["create", "-q", "-f", "vmdk", "-o", options, "ss.vmdk", "5G"]);
            qemu_io(s, &["-f", "vmdk", "-c", "write -P 0x63 2047M 2M", "ss.vmdk"]);
            let text = vmware_head("0a1b2c3d", "ffffffff", "twoGbMaxExtentSparse", "windows-1252")
                + "RW 4192256 SPARSE \"ss-s001.vmdk\"\n\
                   RW 4192256 SPARSE \"ss-s002.vmdk\"\n\
                   RW 2101248 SPARSE \"ss-s003.vmdk\"\n\n"
                + &workstation_ddb(10402);
            std::fs::write(s.file("ss.vmdk"), crlf(&text)).unwrap();
            Made::new("ss.vmdk", "vmdk")
        }
        "vmdk_workstation_split_flat" => {
            for (i, byte) in [(1, 0x71u8), (2, 0), (3, 0x73)] {
                std::fs::write(s.file(&format!("sf-f00{i}.vmdk")), vec![byte; 1 << 20]).unwrap();
            }
            let text = vmware_head("7e7e7e7e", "ffffffff", "twoGbMaxExtentFlat", "windows-1252")
                + "RW 2048 FLAT \"sf-f001.vmdk\" 0\nRW 2048 FLAT \"sf-f002.vmdk\" 0\n\
                   RW 2048 FLAT \"sf-f003.vmdk\" 0\n\n"
                + &workstation_ddb(6);
            std::fs::write(s.file("sf.vmdk"), crlf(&text)).unwrap();
            Made::new("sf.vmdk", "vmdk")
        }
        // A sparse extent whose header says version 3 (as Workstation
        // writes for disks with a persistent changed-block journal).
        "vmdk_version3_sparse" => {
            s.qemu_ok(&["create", "-q", "-f", "vmdk", "v3.vmdk", "64M"]);
            qemu_io(s, &["-f", "vmdk", "-c", "write -P 0x64 1M 64k", "v3.vmdk"]);
            write_at(&s.file("v3.vmdk"), vmdk4::VERSION, &3u32.to_le_bytes());
            Made::new("v3.vmdk", "vmdk")
        }
        // streamOptimized as an OVF/OVA export writes it: the header at
        // the start points at a grain directory at the end, where a footer
        // repeats the header with the real one; compressed grains, and the
        // exporter's own descriptor.
        "vmdk_ova_stream" => {
            crate::util::edit::write_guest_data(
                &s.file("g.raw"),
                4 << 20,
                &[(0, 65536, 0x65), (3 << 20, (3 << 20) + 4096, 0x66)],
            );
            s.qemu_ok(&[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
                "g.raw",
                "ova-disk1.vmdk",
            ]);
            std::fs::remove_file(s.file("g.raw")).unwrap();
            let text = "# Disk DescriptorFile\nversion=1\nCID=3d4e5f60\nparentCID=ffffffff\n\
                        createType=\"streamOptimized\"\n\n# Extent description\n\
                        RDONLY 8192 SPARSE \"generated-stream.vmdk\"\n\n\
                        # The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n\
                        ddb.geometry.cylinders = \"4\"\nddb.geometry.heads = \"16\"\n\
                        ddb.geometry.sectors = \"63\"\nddb.virtualHWVersion = \"4\"\n";
            embed_descriptor(s, "ova-disk1.vmdk", text);
            vmdk_move_header_to_footer(&s.file("ova-disk1.vmdk"));
            Made::new("ova-disk1.vmdk", "vmdk")
        }
        // ESXi: a thin vmfs disk, and snapshots of it in both delta
        // formats (vmfsSparse before VMFS 6, seSparse since).
        "vmdk_esxi_vmfs" => {
            esxi_base(s);
            Made::new("esx.vmdk", "vmdk")
        }
        "vmdk_esxi_vmfs_sparse_snapshot" => {
            esxi_base(s);
            std::fs::write(s.file("esx-000001-delta.vmdk"), cowd_delta()).unwrap();
            let text = vmware_head("a1b2c3d4", "5e1c4b2a", "vmfsSparse", "UTF-8").replace(
                "createType=\"vmfsSparse\"\n",
                "createType=\"vmfsSparse\"\nparentFileNameHint=\"esx.vmdk\"\n",
            )
                + "RW 8192 VMFSSPARSE \"esx-000001-delta.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n\
                   ddb.longContentID = \"9f8e7d6c5b4a39281706f5e4a1b2c3d4\"\n";
            std::fs::write(s.file("esx-000001.vmdk"), text).unwrap();
            Made::new("esx-000001.vmdk", "vmdk")
        }
        "vmdk_esxi_sesparse_snapshot" => {
            esxi_base(s);
            std::fs::write(
                s.file("esx-000002-sesparse.vmdk"),
                crate::util::edit::sesparse_extent(8192),
            )
            .unwrap();
            let text = vmware_head("b2c3d4e5", "5e1c4b2a", "seSparse", "UTF-8").replace(
                "createType=\"seSparse\"\n",
                "createType=\"seSparse\"\nparentFileNameHint=\"esx.vmdk\"\n",
            )
                + "RW 8192 SESPARSE \"esx-000002-sesparse.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n\
                   ddb.grain = \"8\"\nddb.longContentID = \"0f1e2d3c4b5a69788796a5b4b2c3d4e5\"\n\
                   ddb.sidecars = \"\"\n";
            std::fs::write(s.file("esx-000002.vmdk"), text).unwrap();
            Made::new("esx-000002.vmdk", "vmdk")
        }
        other => panic!("no image kind {other}"),
    }
}

kinds!(make;
    vhd_virtual_pc_dynamic,
    vhd_virtual_pc_fixed,
    vhd_virtual_pc_mac,
    vhd_hyperv_dynamic,
    vhd_hyperv_fixed,
    vhd_disk2vhd_dynamic,
    vhd_visual_studio_dynamic,
    vhd_visual_studio_fixed,
    vhd_azure_fixed,
    vhd_xenserver_dynamic,
    vhd_xenconverter_fixed,
    vmdk_workstation_sparse,
    vmdk_workstation_flat_crlf,
    vmdk_workstation_split_sparse,
    vmdk_workstation_split_flat,
    vmdk_version3_sparse,
    vmdk_ova_stream,
    vmdk_esxi_vmfs,
    vmdk_esxi_vmfs_sparse_snapshot,
    vmdk_esxi_sesparse_snapshot,
);
