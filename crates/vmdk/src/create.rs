//! Creating a vmdk image as qemu-img does (`vmdk_co_create_opts`,
//! `vmdk_co_do_create`, `vmdk_init_extent`).
//!
//! Three steps: [`Settings::from_options`] checks every option in qemu's
//! order (and opens the backing file, for its CID) without changing the
//! file system; [`plan`] computes every file's name and content by pure
//! arithmetic; [`write`] writes them with a few large writes, leaving the
//! grain tables as holes, and removes whatever it wrote if a write fails.
//! qemu-img leaves half-made files behind on some failures; instar never
//! does.

use crate::descriptor::{ExtentLine, NewDescriptor, NO_PARENT_CID};
use crate::error::VmdkError;
use crate::grain::{SparseLayout, SECTOR_SIZE};
use crate::image::Image;
use crate::sparse_header::SPARSE_HEADER_SIZE;
use instar_core::dialect::VMDK_TOOLS_VERSION;
use instar_core::file::{FileOptions, NewFile, Prealloc};
use instar_core::format::Probe;
use instar_core::{ImageFile, Options, QemuDialect};

/// Bytes per extent of the split subformats (qemu's `split_size`).
pub const SPLIT_SIZE: u64 = 0x8000_0000;
/// `ddb.virtualHWVersion` when neither `hwversion` nor `compat6` is given.
pub const DEFAULT_HW_VERSION: &str = "4";
/// `ddb.virtualHWVersion` with `compat6=on`.
pub const COMPAT6_HW_VERSION: &str = "6";
/// The `hwversion` default qemu prints, which means "not set".
pub const HW_VERSION_UNDEFINED: &str = "undefined";
/// `ddb.toolsVersion` when `toolsversion` is not given.
pub const DEFAULT_TOOLS_VERSION: &str = "2147483647";
/// Heads of the geometry for IDE adapters.
pub const IDE_HEADS: u32 = 16;
/// Heads VMware uses for every other adapter.
pub const OTHER_HEADS: u32 = 255;
/// Sectors per track of the geometry.
pub const SECTORS_PER_TRACK: u64 = 63;

/// The layouts qemu-img creates (`BlockdevVmdkSubformat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subformat {
    /// One sparse file holding its descriptor.
    MonolithicSparse,
    /// A descriptor file and one flat extent.
    MonolithicFlat,
    /// A descriptor file and sparse extents of at most 2 GiB.
    TwoGbMaxExtentSparse,
    /// A descriptor file and flat extents of at most 2 GiB.
    TwoGbMaxExtentFlat,
    /// One sparse file for compressed grains.
    StreamOptimized,
}

impl Subformat {
    /// Every subformat, in qemu's enum order.
    pub const ALL: [Subformat; 5] = [
        Subformat::MonolithicSparse,
        Subformat::MonolithicFlat,
        Subformat::TwoGbMaxExtentSparse,
        Subformat::TwoGbMaxExtentFlat,
        Subformat::StreamOptimized,
    ];

    /// The name used in `subformat=` and `createType=`.
    pub fn name(self) -> &'static str {
        match self {
            Subformat::MonolithicSparse => "monolithicSparse",
            Subformat::MonolithicFlat => "monolithicFlat",
            Subformat::TwoGbMaxExtentSparse => "twoGbMaxExtentSparse",
            Subformat::TwoGbMaxExtentFlat => "twoGbMaxExtentFlat",
            Subformat::StreamOptimized => "streamOptimized",
        }
    }

    /// The subformat named `name` (case matters, as in qemu).
    pub fn parse(name: &str) -> Option<Subformat> {
        Subformat::ALL.into_iter().find(|s| s.name() == name)
    }

    fn flat(self) -> bool {
        matches!(self, Subformat::MonolithicFlat | Subformat::TwoGbMaxExtentFlat)
    }

    fn split(self) -> bool {
        matches!(self, Subformat::TwoGbMaxExtentSparse | Subformat::TwoGbMaxExtentFlat)
    }

    fn compress(self) -> bool {
        self == Subformat::StreamOptimized
    }
}

/// The virtual adapters qemu-img knows (`BlockdevVmdkAdapterType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterType {
    /// IDE (the default).
    Ide,
    /// BusLogic SCSI.
    Buslogic,
    /// LSI Logic SCSI.
    Lsilogic,
    /// Legacy ESX.
    LegacyEsx,
}

impl AdapterType {
    /// The name used in `adapter_type=` and `ddb.adapterType`.
    pub fn name(self) -> &'static str {
        match self {
            AdapterType::Ide => "ide",
            AdapterType::Buslogic => "buslogic",
            AdapterType::Lsilogic => "lsilogic",
            AdapterType::LegacyEsx => "legacyESX",
        }
    }

    /// The adapter named `name` (case matters, as in qemu).
    pub fn parse(name: &str) -> Option<AdapterType> {
        [AdapterType::Ide, AdapterType::Buslogic, AdapterType::Lsilogic, AdapterType::LegacyEsx]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// Heads of the geometry written for this adapter.
    pub fn heads(self) -> u32 {
        if self == AdapterType::Ide {
            IDE_HEADS
        } else {
            OTHER_HEADS
        }
    }
}

/// The parent of a new image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The backing file name as the user gave it (`parentFileNameHint`).
    pub name: String,
    /// The parent's CID (`parentCID`).
    pub cid: u32,
}

/// Checked create options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The virtual size in bytes, rounded up to whole sectors (qemu keeps
    /// this in a signed 64-bit value: 2^63 reads as negative).
    pub size: u64,
    /// The layout.
    pub subformat: Subformat,
    /// The virtual adapter.
    pub adapter: AdapterType,
    /// `ddb.virtualHWVersion`.
    pub hw_version: String,
    /// `ddb.toolsVersion` (`None` for qemu before the line existed).
    pub tools_version: Option<String>,
    /// Whether sparse extents use the zeroed-grain feature.
    pub zeroed_grain: bool,
    /// The backing file.
    pub parent: Option<Parent>,
}

impl Settings {
    /// Checks `opts` for an image named `filename`, in the order qemu-img
    /// of `dialect` does, so that the first complaint is qemu-img's first
    /// complaint. Reads the backing file (for its CID) but writes nothing.
    pub fn from_options(
        filename: &str,
        opts: &Options,
        probe: Probe,
        dialect: QemuDialect,
    ) -> Result<Settings, VmdkError> {
        if opts.get_str("backing_fmt").is_some_and(|f| f != "vmdk") {
            return Err(VmdkError::BackingFmtNotVmdk);
        }
        if filename.is_empty() {
            return Err(VmdkError::NoFilename);
        }
        let size = opts.get_number("size").unwrap_or(0).div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
        let adapter = match opts.get_str("adapter_type") {
            None => AdapterType::Ide,
            Some(a) => {
                AdapterType::parse(a).ok_or_else(|| VmdkError::InvalidValue(a.to_string()))?
            }
        };
        let backing = opts.get_str("backing_file");
        let hw_version = opts.get_str("hwversion").filter(|h| *h != HW_VERSION_UNDEFINED);
        let compat6 = opts.get_bool("compat6").unwrap_or(false);
        let tools_version = dialect
            .since(VMDK_TOOLS_VERSION)
            .then(|| opts.get_str("toolsversion").unwrap_or(DEFAULT_TOOLS_VERSION));
        let zeroed_grain = opts.get_bool("zeroed_grain").unwrap_or(false);
        let subformat = match opts.get_str("subformat") {
            None => Subformat::MonolithicSparse,
            Some(s) => Subformat::parse(s).ok_or_else(|| VmdkError::InvalidValue(s.to_string()))?,
        };
        let hw_version = match (compat6, hw_version) {
            (true, Some(_)) => return Err(VmdkError::Compat6WithHwversion),
            (true, None) => COMPAT6_HW_VERSION,
            (false, h) => h.unwrap_or(DEFAULT_HW_VERSION),
        };
        if subformat.flat() && backing.is_some() {
            return Err(VmdkError::FlatWithBacking);
        }
        if subformat.flat() && zeroed_grain {
            return Err(VmdkError::FlatWithZeroedGrain);
        }
        // qemu creates the first file here (the file protocol's
        // refusals come before anything about the backing file).
        let file_options = file_options(opts)?;
        let parent = match backing {
            None => None,
            Some(name) => {
                let cid = file_options
                    .after_creating(filename, || parent_cid(filename, name, probe))
                    .map_err(VmdkError::File)?;
                Some(Parent { name: name.to_string(), cid })
            }
        };
        Ok(Settings {
            size,
            subformat,
            adapter,
            hw_version: hw_version.to_string(),
            tools_version: tools_version.map(str::to_string),
            zeroed_grain,
            parent,
        })
    }
}

/// The file protocol's options for every file of a new image (the options
/// vmdk does not consume). The preallocation modes it accepts change
/// nothing: qemu creates every file empty and grows it without
/// preallocation.
fn file_options(opts: &Options) -> Result<FileOptions, VmdkError> {
    FileOptions::from_options(opts, crate::CREATE_OPTS).map_err(VmdkError::File)
}

/// The CID of the backing file `name` of the image `filename`: the file
/// (found relative to the image's directory) must exist, probe as vmdk
/// (`probe` is the block layer's probe, naming the format it finds), and
/// open as one.
fn parent_cid(filename: &str, name: &str, probe: Probe) -> Result<u32, VmdkError> {
    if name.is_empty() {
        return Err(VmdkError::EmptyBackingName);
    }
    let full = instar_core::rawtext::from_bytes(&instar_core::path::combine(
        &instar_core::rawtext::to_bytes(filename),
        &instar_core::rawtext::to_bytes(name),
    ));
    let file = ImageFile::open(&full).map_err(|e| VmdkError::OpenFile(full.clone(), e))?;
    let format = probe(&file);
    if format != "vmdk" {
        return Err(VmdkError::BackingNotVmdk(format.to_string()));
    }
    Ok(Image::open(file)?.cid)
}

/// What one new file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The descriptor of a multi-file image: exactly these bytes.
    Descriptor(Vec<u8>),
    /// A sparse extent; the monolithic subformats embed the descriptor.
    Sparse {
        /// Where its metadata goes.
        layout: SparseLayout,
        /// Stream-optimized (compressed grains).
        compress: bool,
        /// Zeroed-grain feature.
        zeroed_grain: bool,
        /// The embedded descriptor.
        descriptor: Option<Vec<u8>>,
    },
    /// A flat extent of this many bytes.
    Flat(u64),
}

/// One new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Its name, as qemu derives it from the image name.
    pub name: String,
    /// Its content.
    pub content: Content,
}

/// qemu's `filename_decompose`: the directory part (through the last `/`,
/// else the last `\`, else the last `:`), and the base name split at its
/// last `.` into prefix and postfix (the postfix keeps the dot).
pub fn decompose(filename: &str) -> (&str, &str, &str) {
    let cut = filename.rfind('/').or_else(|| filename.rfind('\\')).or_else(|| filename.rfind(':'));
    let (path, base) = match cut {
        Some(i) => filename.split_at(i + 1),
        None => ("", filename),
    };
    match base.rfind('.') {
        Some(q) => (path, &base[..q], &base[q..]),
        None => (path, base, ""),
    }
}

/// glib's `g_path_get_basename` on POSIX: the last `/`-separated
/// component, trailing slashes ignored.
pub fn basename(name: &str) -> &str {
    if name.is_empty() {
        return ".";
    }
    let trimmed = name.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// The name of the `idx`-th extent file of a multi-file image (qemu's
/// `vmdk_co_create_opts_cb`): `x-s001.vmdk`, `x-f002.vmdk`, `x-flat.vmdk`.
fn extent_name(filename: &str, idx: u64, flat: bool, split: bool) -> String {
    let (path, prefix, postfix) = decompose(filename);
    if split {
        let kind = if flat { 'f' } else { 's' };
        format!("{path}{prefix}-{kind}{idx:03}{postfix}")
    } else {
        format!("{path}{prefix}-flat{postfix}")
    }
}

/// Every file of the new image `filename`, with its content; `cid` is the
/// image's content ID.
pub fn plan(filename: &str, s: &Settings, cid: u32) -> Vec<PlannedFile> {
    let (flat, split, compress) = (s.subformat.flat(), s.subformat.split(), s.subformat.compress());
    // qemu holds sizes in int64_t here.
    #[allow(clippy::cast_possible_wrap, reason = "qemu's `int64_t total_size`")]
    let size = s.size as i64;
    #[allow(clippy::cast_possible_wrap, reason = "the constant 2 GiB")]
    let extent_size = if split { SPLIT_SIZE as i64 } else { size };
    let mut created = if !split && !flat { extent_size } else { 0 };
    let mut lines = Vec::new();
    if !split && !flat {
        #[allow(
            clippy::cast_sign_loss,
            reason = "qemu divides the int64_t by the unsigned BDRV_SECTOR_SIZE"
        )]
        let bytes = created as u64;
        lines.push(ExtentLine {
            sectors: bytes.div_ceil(SECTOR_SIZE),
            flat: false,
            file_name: instar_core::rawtext::to_bytes(basename(filename)).into_owned(),
        });
    }
    let mut extents = Vec::new();
    let mut idx = 1;
    while created < size {
        #[allow(clippy::cast_sign_loss, reason = "positive: `created < size`")]
        let cur = (size - created).min(extent_size) as u64;
        let name = extent_name(filename, idx, flat, split);
        lines.push(ExtentLine {
            sectors: cur.div_ceil(SECTOR_SIZE),
            flat,
            file_name: instar_core::rawtext::to_bytes(basename(&name)).into_owned(),
        });
        let content = if flat {
            Content::Flat(cur)
        } else {
            Content::Sparse {
                layout: SparseLayout::new(cur),
                compress,
                zeroed_grain: s.zeroed_grain,
                descriptor: None,
            }
        };
        extents.push(PlannedFile { name, content });
        #[allow(clippy::cast_possible_wrap, reason = "at most `size - created`, an i64")]
        let cur = cur as i64;
        created += cur;
        idx += 1;
    }
    let heads = s.adapter.heads();
    #[allow(clippy::cast_possible_wrap, reason = "63 * heads (at most 255) * 512")]
    let cylinder_bytes = (SECTORS_PER_TRACK * u64::from(heads) * SECTOR_SIZE) as i64;
    let desc = NewDescriptor {
        cid,
        parent_cid: s.parent.as_ref().map_or(NO_PARENT_CID, |p| p.cid),
        create_type: s.subformat.name(),
        parent_hint: s
            .parent
            .as_ref()
            .map(|p| instar_core::rawtext::to_bytes(&p.name).into_owned()),
        extents: lines,
        hw_version: s.hw_version.clone(),
        cylinders: size / cylinder_bytes,
        heads,
        adapter_type: s.adapter.name(),
        tools_version: s.tools_version.clone(),
    }
    .to_bytes();
    let first = if !split && !flat {
        Content::Sparse {
            layout: SparseLayout::new(s.size),
            compress,
            zeroed_grain: s.zeroed_grain,
            descriptor: Some(desc),
        }
    } else {
        Content::Descriptor(desc)
    };
    let mut files = vec![PlannedFile { name: filename.to_string(), content: first }];
    files.extend(extents);
    files
}

/// A new random CID, as qemu draws one (`g_random_int`).
pub fn random_cid() -> Result<u32, VmdkError> {
    instar_core::random::u32().map_err(VmdkError::Random)
}

/// Writes the planned files in order, each created through the file
/// protocol with `opts`. Every file is first checked as creating it
/// would check it, without changing anything: qemu creates the files one
/// by one, so a later file that cannot be created (a folder it may not
/// write, a name that is a folder) is the error it reports, after it has
/// emptied and written the first; instar reports the same error with the
/// first file as it was. On a later failure every file this create made
/// is removed, and one that was there before is left empty.
pub fn write(files: &[PlannedFile], opts: &Options) -> Result<(), VmdkError> {
    let file_options = file_options(opts)?;
    for f in files {
        file_options.check(&f.name).map_err(VmdkError::File)?;
    }
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        written.push(write_file(f, &file_options)?);
    }
    written.into_iter().for_each(NewFile::keep);
    Ok(())
}

fn write_file(f: &PlannedFile, options: &FileOptions) -> Result<NewFile, VmdkError> {
    let new = NewFile::create(&f.name, options).map_err(VmdkError::File)?;
    match &f.content {
        Content::Descriptor(text) => {
            new.write_all_at(text, 0).map_err(VmdkError::WriteDescription)?;
        }
        Content::Flat(len) => {
            new.grow(*len, Prealloc::Off).map_err(|e| VmdkError::File(unworded(e)))?;
        }
        Content::Sparse { layout, compress, zeroed_grain, descriptor } => {
            write_sparse(&new, layout, *compress, *zeroed_grain, descriptor.as_deref())?;
        }
    }
    Ok(new)
}

/// Writes a sparse extent: header, embedded descriptor, redundant grain
/// directory and grain directory, each as its own write of just its bytes
/// (as qemu writes them), then the length; everything else stays a hole.
/// Writing the gaps as zeros would give the same bytes but allocate file
/// system blocks qemu leaves unallocated.
fn write_sparse(
    file: &NewFile,
    layout: &SparseLayout,
    compress: bool,
    zeroed_grain: bool,
    descriptor: Option<&[u8]>,
) -> Result<(), VmdkError> {
    let header = layout.header(compress, zeroed_grain).to_bytes();
    // The magic, then the rest of the header: two writes, as qemu makes
    // them, so that a failure is worded for the one that failed.
    let (magic, rest) = header[..SPARSE_HEADER_SIZE].split_at(4);
    file.write_all_at(magic, 0).map_err(|e| VmdkError::Write("failed to write VMDK magic", e))?;
    file.write_all_at(rest, 4).map_err(|e| VmdkError::Write("failed to write VMDK header", e))?;
    // qemu sizes the file right after the header (`vmdk_init_extent`), so
    // a size the file system refuses fails here, in the file protocol's
    // words; the writes below stay inside that length.
    file.file()
        .set_len(layout.file_len())
        .map_err(|e| VmdkError::File(instar_core::Error::io("Could not resize file", e)))?;
    for (offset, what) in [
        (layout.rgd_offset, "failed to write VMDK grain directory"),
        (layout.gd_offset, "failed to write VMDK backup grain directory"),
    ] {
        let dir = layout.directory(offset);
        if !dir.is_empty() {
            file.write_all_at(&dir, offset * SECTOR_SIZE).map_err(|e| VmdkError::Write(what, e))?;
        }
    }
    if let Some(desc) = descriptor {
        // qemu writes the descriptor last, over anything before it.
        let at = crate::grain::DESC_OFFSET * SECTOR_SIZE;
        file.write_all_at(desc, at).map_err(VmdkError::WriteDescription)?;
    }
    Ok(())
}

/// qemu's vmdk create does not return the failure of an extent's setup
/// (`vmdk_co_create_opts_cb` hands the extent back with the error set, and
/// the create goes on), so its block layer never rewords an `EFBIG` there
/// as `The image size is too large ...`: the file protocol's own message
/// stands.
fn unworded(e: instar_core::Error) -> instar_core::Error {
    let errno = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    match errno {
        Some(n) if e.kind() == instar_core::ErrorKind::TooLarge => {
            instar_core::Error::io("Could not resize file", std::io::Error::from_raw_os_error(n))
        }
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::opts::FILE_PROTOCOL_OPTS;

    fn settings(list: &str, size: u64) -> Result<Settings, VmdkError> {
        let mut o = Options::new(&[crate::CREATE_OPTS, FILE_PROTOCOL_OPTS]);
        o.parse(list).map_err(|e| VmdkError::InvalidValue(e.to_string()))?;
        o.set_number("size", size);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.vmdk");
        let s = Settings::from_options(path.to_str().unwrap(), &o, |_| "raw", QemuDialect::DEFAULT);
        assert!(!path.exists(), "checking options leaves no file");
        s
    }

    fn err(list: &str) -> String {
        settings(list, 1 << 20).unwrap_err().to_string()
    }

    #[test]
    fn refusals_in_qemu_order() {
        assert_eq!(err("adapter_type=scsi"), "invalid parameter value: scsi");
        assert_eq!(err("adapter_type=IDE"), "invalid parameter value: IDE");
        assert_eq!(err("subformat=monolithicsparse"), "invalid parameter value: monolithicsparse");
        assert_eq!(err("compat6=on,hwversion=6"), "compat6 cannot be enabled with hwversion set");
        assert_eq!(err("backing_fmt=qcow2,adapter_type=scsi"), "backing_file must be a vmdk image");
        assert_eq!(
            err("subformat=monolithicFlat,backing_file=b"),
            "Flat image can't have backing file"
        );
        assert_eq!(
            err("subformat=twoGbMaxExtentFlat,zeroed_grain=on"),
            "Flat image can't enable zeroed grain"
        );
        assert_eq!(err("preallocation=foo"), "invalid parameter value: foo");
        // hwversion=undefined is "not set".
        assert_eq!(settings("compat6=on,hwversion=undefined", 0).unwrap().hw_version, "6");
    }

    #[test]
    fn names_like_qemu() {
        assert_eq!(decompose("a/b.c/img.vmdk"), ("a/b.c/", "img", ".vmdk"));
        assert_eq!(decompose("img"), ("", "img", ""));
        assert_eq!(decompose("x\\y.z"), ("x\\", "y", ".z"));
        assert_eq!(extent_name("d/img.vmdk", 3, false, true), "d/img-s003.vmdk");
        assert_eq!(extent_name("img.vmdk", 1000, true, true), "img-f1000.vmdk");
        assert_eq!(extent_name("img", 1, true, false), "img-flat");
        assert_eq!(basename("a/b/"), "b");
        assert_eq!(basename("x\\y.vmdk"), "x\\y.vmdk");
    }

    #[test]
    fn split_plan_matches_qemu() {
        let s = settings("subformat=twoGbMaxExtentSparse", 5 << 30).unwrap();
        let files = plan("t.vmdk", &s, 0x8ea8ad11);
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["t.vmdk", "t-s001.vmdk", "t-s002.vmdk", "t-s003.vmdk"]);
        let Content::Descriptor(d) = &files[0].content else { panic!("descriptor") };
        let d = String::from_utf8(d.clone()).unwrap();
        assert!(d.contains(
            "RW 4194304 SPARSE \"t-s001.vmdk\"\nRW 4194304 SPARSE \"t-s002.vmdk\"\n\
             RW 2097152 SPARSE \"t-s003.vmdk\"\n"
        ));
        assert!(d.contains("ddb.geometry.cylinders = \"10402\""));
        let Content::Sparse { layout, .. } = &files[3].content else { panic!("sparse") };
        assert_eq!(layout.file_len(), 196_608);
    }

    #[test]
    fn flat_of_size_2_63_has_no_extent() {
        // ROUND_UP(INT64_MAX, 512) is negative in qemu's int64_t.
        let s = settings("subformat=monolithicFlat", i64::MAX as u64).unwrap();
        let files = plan("y.vmdk", &s, 1);
        assert_eq!(files.len(), 1);
        let Content::Descriptor(d) = &files[0].content else { panic!("descriptor") };
        let d = String::from_utf8(d.clone()).unwrap();
        assert!(d.contains("# Extent description\n\n"));
        assert!(d.contains("cylinders = \"-17871427092740\""));
    }
}
