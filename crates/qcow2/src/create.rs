//! `create` for qcow2: qemu's option list, the checks qemu makes on it in
//! qemu's order and with qemu's messages, then the image written from the
//! computed [`Layout`] with a handful of large writes.
//!
//! qemu validates in three rounds: the option list is turned into QAPI
//! `BlockdevCreateOptionsQcow2` (enum values such as `compat`,
//! `preallocation` and `compression_type` are refused there, in the
//! schema's field order), then `qcow2_co_create` checks the combination,
//! then the resize to the virtual size can fail. Everything here happens
//! before the file is created.

use crate::error::Qcow2Error;
use crate::header::{
    qemu_feature_table, Extensions, Header, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS,
    COMPRESSION_ZLIB, COMPRESSION_ZSTD, CRYPT_NONE, INCOMPAT_COMPRESSION, INCOMPAT_DATA_FILE,
    INCOMPAT_EXTL2, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS, QCOW_MAGIC, V3_HEADER_LENGTH,
};
use crate::layout::{
    plan, plan_with_data_file, DataFileLayout, FillMode, Geometry, Layout, LayoutError, Prealloc,
};
use crate::tables::SUBCLUSTERS_PER_CLUSTER;
use instar_core::dialect::{
    DATA_FILE_RAW_PREALLOCATES, KEEP_DATA_FILE, QCOW2_CREATE_FAILURE_DELETES, ZSTD_BUILT,
};
use instar_core::file::{FileOptions, NewFile, MAX_LENGTH};
use instar_core::{CreateRequest, Error, OptDesc, OptType, Options};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The default cluster size, 64 KiB.
pub const DEFAULT_CLUSTER_SIZE: u64 = 65536;
/// The default refcount width in bits.
pub const DEFAULT_REFCOUNT_BITS: u64 = 16;
/// The longest backing file name qemu records.
pub const MAX_BACKING_FILE_NAME: usize = 1023;

/// The values qemu's `BlockdevDriver` enum accepts for `backing_fmt` in
/// the Debian build of qemu 10.0.
pub const BLOCKDEV_DRIVERS: &[&str] = &[
    "blkdebug",
    "blklogwrites",
    "blkreplay",
    "blkverify",
    "bochs",
    "cloop",
    "compress",
    "copy-before-write",
    "copy-on-read",
    "dmg",
    "file",
    "snapshot-access",
    "ftp",
    "ftps",
    "gluster",
    "host_cdrom",
    "host_device",
    "http",
    "https",
    "iscsi",
    "luks",
    "nbd",
    "nfs",
    "null-aio",
    "null-co",
    "nvme",
    "parallels",
    "preallocate",
    "qcow",
    "qcow2",
    "qed",
    "quorum",
    "raw",
    "rbd",
    "replication",
    "ssh",
    "throttle",
    "vdi",
    "vhdx",
    "vmdk",
    "vpc",
    "vvfat",
];

/// The encryption options, which instar does not implement.
const ENCRYPT_OPTS: &[&str] = &[
    "encrypt.format",
    "encrypt.key-secret",
    "encrypt.cipher-alg",
    "encrypt.cipher-mode",
    "encrypt.ivgen-alg",
    "encrypt.ivgen-hash-alg",
    "encrypt.hash-alg",
    "encrypt.iter-time",
];

/// qcow2's create options in qemu's declared order (`qcow2_create_opts`),
/// which is the order of the `Formatting` line.
pub const CREATE_OPTS: &[OptDesc] = &[
    OptDesc::new(
        "encryption",
        OptType::Bool,
        "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)",
    ),
    OptDesc::new(
        "encrypt.format",
        OptType::Str,
        "Encrypt the image, format choices: 'aes', 'luks'",
    ),
    OptDesc::new(
        "encrypt.key-secret",
        OptType::Str,
        "ID of secret providing qcow AES key or LUKS passphrase",
    ),
    OptDesc::new("encrypt.cipher-alg", OptType::Str, "Name of encryption cipher algorithm"),
    OptDesc::new("encrypt.cipher-mode", OptType::Str, "Name of encryption cipher mode"),
    OptDesc::new("encrypt.ivgen-alg", OptType::Str, "Name of IV generator algorithm"),
    OptDesc::new("encrypt.ivgen-hash-alg", OptType::Str, "Name of IV generator hash algorithm"),
    OptDesc::new("encrypt.hash-alg", OptType::Str, "Name of encryption hash algorithm"),
    OptDesc::new("encrypt.iter-time", OptType::Number, "Time to spend in PBKDF in milliseconds"),
    OptDesc::with_default("cluster_size", OptType::Size, "qcow2 cluster size", "65536"),
    OptDesc::with_default("extended_l2", OptType::Bool, "Extended L2 tables", "off"),
    OptDesc::new(
        "preallocation",
        OptType::Str,
        "Preallocation mode (allowed values: off, metadata, falloc, full)",
    ),
    OptDesc::with_default(
        "compression_type",
        OptType::Str,
        "Compression method used for image cluster compression",
        "zlib",
    ),
    OptDesc::new(
        "keep_data_file",
        OptType::Bool,
        "Assume the external data file already exists and do not overwrite it",
    )
    .since(KEEP_DATA_FILE),
    OptDesc::new("size", OptType::Size, "Virtual disk size"),
    OptDesc::new("compat", OptType::Str, "Compatibility level (v2 [0.10] or v3 [1.1])"),
    OptDesc::new("backing_file", OptType::Str, "File name of a base image"),
    OptDesc::new("backing_fmt", OptType::Str, "Image format of the base image"),
    OptDesc::new("data_file", OptType::Str, "File name of an external data file"),
    OptDesc::new(
        "data_file_raw",
        OptType::Bool,
        "The external data file must stay valid as a raw image",
    ),
    OptDesc::with_default("lazy_refcounts", OptType::Bool, "Postpone refcount updates", "off"),
    OptDesc::with_default(
        "refcount_bits",
        OptType::Number,
        "Width of a reference count entry in bits",
        "16",
    ),
];

/// A checked create request: everything needed to write the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSpec {
    /// 2 or 3.
    pub version: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// log2 of the refcount width.
    pub refcount_order: u32,
    /// Extended L2 entries.
    pub extended_l2: bool,
    /// Lazy refcounts.
    pub lazy_refcounts: bool,
    /// Compression type byte.
    pub compression_type: u8,
    /// Preallocation mode.
    pub prealloc: Prealloc,
    /// Virtual size, a multiple of 512.
    pub size: u64,
    /// Backing file name.
    pub backing_file: Option<String>,
    /// Backing file format.
    pub backing_fmt: Option<String>,
    /// The external data file's name as given (a `file:` prefix and all;
    /// the image records the local path it stands for).
    pub data_file: Option<String>,
    /// Whether the data file must stay a valid raw image.
    pub data_file_raw: bool,
}

fn invalid(msg: impl Into<String>) -> Qcow2Error {
    Qcow2Error::InvalidOption(msg.into())
}

fn refuse_value(opts: &Options, param: &str, value: &str) -> Qcow2Error {
    invalid(opts.dialect().refused_enum_value(param, value))
}

/// Checks the options as qemu does, in qemu's order, with qemu's
/// messages; options instar does not implement are refused by name.
pub fn validate(opts: &Options) -> Result<CreateSpec, Qcow2Error> {
    let data_file = opts.get_str("data_file").map(str::to_string);

    // The QAPI visitor, in the order of BlockdevCreateOptionsQcow2's fields.
    let data_file_raw = opts.get_bool("data_file_raw").unwrap_or(false);
    let extended_l2 = opts.get_bool("extended_l2").unwrap_or(false);
    let version = match opts.get_str("compat") {
        None => 3,
        Some("0.10" | "v2") => 2,
        Some("1.1" | "v3") => 3,
        Some(other) => return Err(refuse_value(opts, "version", other)),
    };
    let backing_file = opts.get_str("backing_file").map(str::to_string);
    let backing_fmt = opts.get_str("backing_fmt").map(str::to_string);
    if let Some(fmt) = &backing_fmt {
        if !BLOCKDEV_DRIVERS.contains(&fmt.as_str()) {
            return Err(refuse_value(opts, "backing-fmt", fmt));
        }
    }
    if opts.get_bool("encryption") == Some(true) {
        return Err(Qcow2Error::Unsupported("encryption"));
    }
    if let Some(name) = ENCRYPT_OPTS.iter().find(|n| opts.is_set(n)) {
        return Err(Qcow2Error::Unsupported(name));
    }
    let cluster_size = opts.get_number("cluster_size").unwrap_or(DEFAULT_CLUSTER_SIZE);
    let mut prealloc = match opts.get_str("preallocation") {
        None => Prealloc::Off,
        Some(p) => Prealloc::from_name(p).ok_or_else(|| refuse_value(opts, "preallocation", p))?,
    };
    let lazy_refcounts = opts.get_bool("lazy_refcounts").unwrap_or(false);
    let refcount_bits = opts.get_number("refcount_bits").unwrap_or(DEFAULT_REFCOUNT_BITS);
    let compression_type = match opts.get_str("compression_type") {
        None | Some("zlib") => COMPRESSION_ZLIB,
        Some("zstd") if opts.dialect().since(ZSTD_BUILT) => COMPRESSION_ZSTD,
        Some(other) => return Err(refuse_value(opts, "compression-type", other)),
    };

    // qcow2_co_create_opts, on an existing data file.
    if opts.get_bool("keep_data_file") == Some(true) {
        if !matches!(prealloc, Prealloc::Off | Prealloc::Metadata) {
            return Err(invalid(
                "Preallocating more than only metadata would overwrite the external data \
                 file's content and is therefore incompatible with 'keep_data_file=on'",
            ));
        }
        if prealloc == Prealloc::Off && !data_file_raw {
            return Err(invalid(
                "'keep_data_file=on' requires 'preallocation=metadata' or 'data_file_raw=on', \
                 or the file contents will not be visible",
            ));
        }
    }

    // qcow2_co_create.
    if extended_l2 && version < 3 {
        return Err(invalid(
            "Extended L2 entries are only supported with compatibility level 1.1 and above \
             (use version=v3 or greater)",
        ));
    }
    let cluster_bits = cluster_size.trailing_zeros();
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits)
        || cluster_size != 1 << cluster_bits
    {
        return Err(invalid("Cluster size must be a power of two between 512 and 2048k"));
    }
    let min_extended = (1u64 << MIN_CLUSTER_BITS) * SUBCLUSTERS_PER_CLUSTER;
    if extended_l2 && cluster_size < min_extended {
        return Err(invalid(format!(
            "Extended L2 entries are only supported with cluster sizes of at least \
             {min_extended} bytes"
        )));
    }
    if backing_file.is_some() && prealloc != Prealloc::Off && !extended_l2 {
        return Err(invalid(
            "Backing file and preallocation can only be used at the same time if extended_l2 \
             is on",
        ));
    }
    if backing_fmt.is_some() && backing_file.is_none() {
        return Err(invalid("Backing format cannot be used without backing file"));
    }
    if version < 3 && lazy_refcounts {
        return Err(invalid(
            "Lazy refcounts only supported with compatibility level 1.1 and above (use \
             version=v3 or greater)",
        ));
    }
    if refcount_bits > 64 || !refcount_bits.is_power_of_two() {
        return Err(invalid("Refcount width must be a power of two and may not exceed 64 bits"));
    }
    if version < 3 && refcount_bits != 16 {
        return Err(invalid(
            "Different refcount widths than 16 bits require compatibility level 1.1 or above \
             (use version=v3 or greater)",
        ));
    }
    if data_file_raw && data_file.is_none() {
        return Err(invalid("data-file-raw requires data-file"));
    }
    if data_file_raw && backing_file.is_some() {
        return Err(invalid("Backing file and data-file-raw cannot be used at the same time"));
    }
    if data_file_raw
        && prealloc == Prealloc::Off
        && opts.dialect().since(DATA_FILE_RAW_PREALLOCATES)
    {
        // A raw data file must read as the disk whether or not the
        // metadata is looked at, so every cluster is mapped (to itself).
        prealloc = Prealloc::Metadata;
    }
    if data_file.is_some() && version < 3 {
        return Err(invalid(
            "External data files are only supported with compatibility level 1.1 and above \
             (use version=v3 or greater)",
        ));
    }
    if compression_type != COMPRESSION_ZLIB && version < 3 {
        return Err(invalid(
            "Non-zlib compression type is only supported with compatibility level 1.1 and \
             above (use version=v3 or greater)",
        ));
    }

    // The resize to the virtual size (bdrv_co_truncate's own checks).
    let requested = u128::from(opts.get_number("size").unwrap_or(0));
    let size = requested.div_ceil(512) * 512;
    if size > i64::MAX as u128 {
        return Err(Qcow2Error::Resize("Image size cannot be negative".into()));
    }
    #[allow(clippy::cast_possible_truncation, reason = "at most i64::MAX, checked above")]
    let size = size as u64;
    if size > MAX_LENGTH {
        return Err(Qcow2Error::Resize(format!("offset({size}) exceeds maximum({MAX_LENGTH})")));
    }

    Ok(CreateSpec {
        version,
        cluster_bits,
        refcount_order: refcount_bits.trailing_zeros(),
        extended_l2,
        lazy_refcounts,
        compression_type,
        prealloc,
        size,
        backing_file,
        backing_fmt,
        data_file,
        data_file_raw,
    })
}

/// The header a new image gets once its layout is known.
pub fn new_header(spec: &CreateSpec, layout: &Layout) -> Header {
    let mut incompatible = 0;
    if spec.compression_type != COMPRESSION_ZLIB {
        incompatible |= INCOMPAT_COMPRESSION;
    }
    if spec.extended_l2 {
        incompatible |= INCOMPAT_EXTL2;
    }
    if spec.data_file.is_some() {
        incompatible |= INCOMPAT_DATA_FILE;
    }
    // The feature name table would leave too little room for a backing
    // file name in small clusters, so qemu leaves it out up to 4 KiB.
    let feature_table = (spec.version >= 3 && spec.cluster_bits > 12).then(qemu_feature_table);
    Header {
        magic: QCOW_MAGIC,
        version: spec.version,
        backing_file_offset: 0,
        backing_file_size: 0,
        cluster_bits: spec.cluster_bits,
        size: spec.size,
        crypt_method: CRYPT_NONE,
        l1_size: layout.l1_size,
        l1_table_offset: layout.l1_table_offset,
        refcount_table_offset: layout.refcount_table_offset,
        refcount_table_clusters: layout.refcount_table_clusters,
        nb_snapshots: 0,
        snapshots_offset: 0,
        incompatible_features: incompatible,
        compatible_features: if spec.lazy_refcounts { COMPAT_LAZY_REFCOUNTS } else { 0 },
        autoclear_features: if spec.data_file_raw { AUTOCLEAR_DATA_FILE_RAW } else { 0 },
        refcount_order: spec.refcount_order,
        header_length: V3_HEADER_LENGTH,
        compression_type: spec.compression_type,
        extensions: Extensions {
            backing_format: spec.backing_fmt.clone(),
            data_file: spec.data_file.as_deref().map(recorded_data_file_name),
            feature_table,
            ..Extensions::default()
        },
        backing_file: spec.backing_file.clone(),
    }
}

/// Computes the complete image for `spec`: the layout with the header
/// written over its first cluster.
pub fn build(spec: &CreateSpec) -> Result<Layout, Qcow2Error> {
    let geometry = Geometry {
        cluster_bits: spec.cluster_bits,
        refcount_order: spec.refcount_order,
        extended_l2: spec.extended_l2,
    };
    let planner = if spec.data_file.is_some() { plan_with_data_file } else { plan };
    let mut layout = planner(geometry, spec.size, spec.prealloc).map_err(|e| match e {
        LayoutError::TooLarge => Qcow2Error::TooLarge,
        LayoutError::Internal(m) => Qcow2Error::Corrupt(format!("Could not resize image: {m}")),
    })?;
    let header = new_header(spec, &layout);
    if let Some(name) = &spec.backing_file {
        let assign_error = |why: &str| {
            invalid(format!(
                "Could not assign backing file '{name}' with format '{}': {why}",
                spec.backing_fmt.as_deref().unwrap_or("(null)")
            ))
        };
        if instar_core::rawtext::to_bytes(name).len() > MAX_BACKING_FILE_NAME {
            return Err(assign_error("Invalid argument"));
        }
        if header.to_cluster().is_none() {
            return Err(assign_error("No space left on device"));
        }
    }
    let cluster = header
        .to_cluster()
        .ok_or_else(|| invalid("Could not update qcow2 header: No space left on device"))?;
    layout.file.write(0, &cluster);
    Ok(layout)
}

/// The name an image records for its data file: the local path the name
/// given stands for (qemu records the data file node's file name, which
/// has lost a `file:` prefix). Only called on names
/// [`instar_core::path::local_path`] accepted.
fn recorded_data_file_name(given: &str) -> String {
    instar_core::path::local_path(given).unwrap_or(given).to_string()
}

/// Creates the qcow2 image `req` asks for.
///
/// Options instar does not implement are refused before anything is
/// touched. For every other failure the order is qemu's: qemu-img creates
/// the image file, then the external data file, before it checks the
/// qcow2 options, so a file that cannot be created is the error it
/// reports first. instar finds that out without changing anything: a
/// refused create leaves existing files as they were (qemu-img deletes
/// both) and creates none.
pub fn create(req: &CreateRequest<'_>) -> Result<(), Error> {
    // The file protocol gets the options qcow2 does not consume (`nocow`,
    // `extent_size_hint`), for the image file and the data file alike:
    // both are created empty, without preallocation of their own.
    let file_options = FileOptions::from_options(req.options, CREATE_OPTS)?;
    if let Err(e @ Qcow2Error::Unsupported(_)) = validate(req.options) {
        return Err(e.into());
    }
    let keep = req.options.get_bool("keep_data_file") == Some(true);
    let (layout, data_path) = file_options.after_creating(req.filename, || {
        let data_path = match req.options.get_str("data_file") {
            Some(name) => Some(instar_core::path::local_path(name)?.to_string()),
            None if keep => {
                return Err(invalid("Must not use 'keep_data_file=on' without 'data_file'").into())
            }
            None => None,
        };
        let same_file = data_path
            .as_deref()
            .is_some_and(|data| instar_core::file::same_file(req.filename, data));
        if let (Some(path), true, false) = (&data_path, keep, same_file) {
            // qemu opens the data file it keeps before it checks the
            // options; opening changes nothing. (The image itself is there
            // by then: qemu made it first.)
            NewFile::open_existing(path)?;
        }
        let planned = validate(req.options).and_then(|spec| {
            // One file as image and data file: qemu's node for the image
            // cannot share the resize permission its data file child
            // holds, so opening the new image fails (before its resize).
            match &data_path {
                Some(data) if same_file => Err(invalid(format!(
                    "Failed to get shared \"resize\" lock\nIs another process using the image \
                     [{data}]?"
                ))),
                _ => build(&spec),
            }
        });
        // qemu then deletes the image, and the data file again (unless it
        // keeps it): the second deletion finds nothing and says so.
        let planned = match (planned, &data_path) {
            (Err(e), Some(data))
                if same_file
                    && !keep
                    && req.options.dialect().since(QCOW2_CREATE_FAILURE_DELETES) =>
            {
                let line = format!("{data} is not a regular file: No such file or directory");
                Err(Error::from(e).after(vec![instar_core::Diagnostic::Reported(line)]))
            }
            (planned, _) => planned.map_err(Error::from),
        };
        match (planned, &data_path) {
            (Ok(layout), _) => Ok((layout, data_path)),
            (Err(e), Some(path)) if !keep => Err(file_options.check(path).err().unwrap_or(e)),
            (Err(e), _) => Err(e),
        }
    })?;
    let file = NewFile::create(req.filename, &file_options)?;
    let data = match &data_path {
        Some(path) if keep => Some(NewFile::open_existing(path)?),
        Some(path) => Some(NewFile::create(path, &file_options)?),
        None => None,
    };
    write_layout(file.file(), &layout).map_err(too_large_if_efbig)?;
    if let (Some(data), Some(plan)) = (&data, &layout.data_file) {
        write_data_file(data, plan).map_err(too_large_if_efbig)?;
    }
    file.keep();
    if let Some(data) = data {
        data.keep();
    }
    Ok(())
}

/// Gives the data file what qemu's create gives it: zeros over the
/// copy-on-write tail of the last preallocated cluster, then, when the
/// file is shorter (in whole sectors, as the block layer measures it),
/// the resize to the virtual size with the preallocation mode, flushed.
/// A new file is empty until then; a kept one (`keep_data_file`) keeps
/// its bytes but for that tail, and only grows.
fn write_data_file(data: &NewFile, plan: &DataFileLayout) -> Result<(), Error> {
    for &(at, len) in &plan.zeros {
        instar_core::file::write_zeros(data.file(), at, at + len)
            .map_err(|e| Error::io("Could not write qcow2 data", e))?;
    }
    let current = data.file().metadata().map_err(|e| Error::io("Could not get file size", e))?;
    let current = current.len().div_ceil(512) * 512;
    if let Some((length, mode)) = plan.grow.filter(|&(length, _)| length > current) {
        // qcow2's resize prefixes the file protocol's failure; EFBIG is
        // worded by the block layer as a whole (`too_large_if_efbig`).
        data.grow(length, mode).map_err(|e| {
            if e.kind() == instar_core::error::ErrorKind::TooLarge {
                e
            } else {
                let message = format!("Could not resize image: {}", e.message());
                e.with_message(message)
            }
        })?;
    }
    data.file().sync_data().map_err(|e| Error::io("Could not flush image", e))
}

/// qemu's qcow2 create returns the errno of a failed write or resize, and
/// its block layer words `EFBIG` (a file larger than the file system or
/// `RLIMIT_FSIZE` allows) as `The image size is too large ...` whatever
/// step met it.
fn too_large_if_efbig(e: Error) -> Error {
    let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
    match source.and_then(std::io::Error::raw_os_error) {
        Some(n) if n == crate::error::EFBIG => {
            Error::too_large(std::io::Error::from_raw_os_error(n))
        }
        _ => e,
    }
}

/// Writes the layout with one positioned write per metadata extent. For
/// a preallocated image the order follows qemu's: the metadata in front of
/// the data area is written and flushed first, then the file layer fills
/// the data area, then the L2 tables behind it are written. The file
/// system then places the blocks as it does for qemu-img, down to the
/// number of extent blocks it needs.
fn write_layout(file: &File, layout: &Layout) -> Result<(), Error> {
    let write = |offset: u64, data: &[u8]| {
        file.write_all_at(data, offset).map_err(|e| Error::io("Could not write qcow2 header", e))
    };
    match layout.fill {
        None => {
            for (offset, data) in layout.file.extents() {
                write(offset, data)?;
            }
        }
        Some(fill) => {
            for (offset, data) in layout.file.extents().filter(|(o, _)| *o < fill.start) {
                write(offset, data)?;
            }
            file.sync_data().map_err(|e| Error::io("Could not flush image", e))?;
            match fill.mode {
                FillMode::Allocate => allocate(file, fill.start, fill.end)?,
                FillMode::Zeros => write_zeros(file, fill.start, fill.end)?,
            }
            for (offset, data) in layout.file.extents().filter(|(o, _)| *o >= fill.start) {
                write(offset, data)?;
            }
        }
    }
    let written = file.metadata().map_err(|e| Error::io("Could not get file size", e))?.len();
    if layout.file.len() > written {
        file.set_len(layout.file.len()).map_err(|e| Error::io("Could not resize image", e))?;
    }
    // qemu flushes the image before create returns; so does instar.
    file.sync_data().map_err(|e| Error::io("Could not flush image", e))
}

/// `posix_fallocate` of `[start, end)`, worded as qemu words a failure.
fn allocate(file: &File, start: u64, end: u64) -> Result<(), Error> {
    instar_core::file::allocate(file, start, end).map_err(|e| {
        Error::io(
            "Could not resize image: Failed to resize underlying file: Could not preallocate \
             new data",
            e,
        )
    })
}

/// Writes zeros over `[start, end)`, worded as qemu words a failure.
fn write_zeros(file: &File, start: u64, end: u64) -> Result<(), Error> {
    instar_core::file::write_zeros(file, start, end).map_err(|e| {
        Error::io(
            "Could not resize image: Failed to resize underlying file: Could not write zeros \
             for preallocation",
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use instar_core::opts::FILE_PROTOCOL_OPTS;

    fn opts(list: &str, size: u64) -> Options {
        let mut o = Options::new(&[CREATE_OPTS, FILE_PROTOCOL_OPTS]);
        o.parse(list).unwrap();
        o.set_number("size", size);
        o
    }

    fn err(list: &str) -> String {
        validate(&opts(list, 1 << 30)).unwrap_err().to_string()
    }

    #[test]
    fn formatting_line_matches_qemu() {
        assert_eq!(
            opts("", 1 << 30).print(),
            "cluster_size=65536 extended_l2=off compression_type=zlib size=1073741824 \
             lazy_refcounts=off refcount_bits=16"
        );
        assert_eq!(
            opts("preallocation=metadata,compat=0.10,cluster_size=4k,backing_file=b,backing_fmt=raw,nocow=on", 1 << 20).print(),
            "cluster_size=4096 extended_l2=off preallocation=metadata compression_type=zlib \
             size=1048576 compat=0.10 backing_file=b backing_fmt=raw lazy_refcounts=off \
             refcount_bits=16 nocow=on"
        );
    }

    #[test]
    fn refusals_match_qemu() {
        assert_eq!(
            err("cluster_size=256"),
            "Cluster size must be a power of two between 512 and 2048k"
        );
        assert_eq!(
            err("cluster_size=3000"),
            "Cluster size must be a power of two between 512 and 2048k"
        );
        assert_eq!(err("compat=0.42"), "Parameter 'version' does not accept value '0.42'");
        assert_eq!(
            err("compat=0.42,refcount_bits=3"),
            "Parameter 'version' does not accept value '0.42'"
        );
        assert_eq!(
            err("refcount_bits=3"),
            "Refcount width must be a power of two and may not exceed 64 bits"
        );
        assert_eq!(
            err("refcount_bits=0"),
            "Refcount width must be a power of two and may not exceed 64 bits"
        );
        assert_eq!(
            err("refcount_bits=8,compat=0.10"),
            "Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)"
        );
        assert_eq!(
            err("lazy_refcounts=on,compat=0.10,refcount_bits=8"),
            "Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)"
        );
        assert_eq!(
            err("extended_l2=on,compat=0.10,cluster_size=4k"),
            "Extended L2 entries are only supported with compatibility level 1.1 and above (use version=v3 or greater)"
        );
        assert_eq!(
            err("extended_l2=on,cluster_size=4k"),
            "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes"
        );
        assert_eq!(
            err("compression_type=zstd,compat=0.10"),
            "Non-zlib compression type is only supported with compatibility level 1.1 and above (use version=v3 or greater)"
        );
        assert_eq!(
            err("compression_type=foo,compat=0.10"),
            "Parameter 'compression-type' does not accept value 'foo'"
        );
        assert_eq!(
            err("preallocation=x,cluster_size=256"),
            "Parameter 'preallocation' does not accept value 'x'"
        );
        assert_eq!(
            err("preallocation=metadata,backing_file=b,backing_fmt=raw"),
            "Backing file and preallocation can only be used at the same time if extended_l2 is on"
        );
        assert_eq!(err("backing_fmt=raw"), "Backing format cannot be used without backing file");
        assert_eq!(
            err("backing_file=b,backing_fmt=foo"),
            "Parameter 'backing-fmt' does not accept value 'foo'"
        );
        assert_eq!(err("data_file_raw=on"), "data-file-raw requires data-file");
        assert_eq!(
            err("encrypt.format=luks"),
            "Option 'encrypt.format' is not supported by instar"
        );
        assert_eq!(err("encryption=on"), "Option 'encryption' is not supported by instar");
        assert_eq!(
            err("data_file=d.raw,compat=0.10"),
            "External data files are only supported with compatibility level 1.1 and above (use version=v3 or greater)"
        );
        assert_eq!(
            err("data_file=d.raw,data_file_raw=on,backing_file=b"),
            "Backing file and data-file-raw cannot be used at the same time"
        );
        let raw = validate(&opts("data_file=d.raw,data_file_raw=on", 1 << 30)).unwrap();
        assert_eq!(raw.prealloc, Prealloc::Metadata);
        assert!(validate(&opts("encryption=off", 1 << 30)).is_ok());
    }

    #[test]
    fn keep_data_file_follows_the_version() {
        use instar_core::{QemuDialect, QemuVersion};
        let parse = |version: QemuVersion, list: &str| {
            let mut o =
                Options::in_dialect(&[CREATE_OPTS, FILE_PROTOCOL_OPTS], QemuDialect::new(version));
            o.parse(list).map(|()| o)
        };
        let v11 = QemuVersion::new(11, 1, 3);
        let err = |list: &str| validate(&parse(v11, list).unwrap()).unwrap_err().to_string();
        assert_eq!(
            err("data_file=d.raw,keep_data_file=on,preallocation=full"),
            "Preallocating more than only metadata would overwrite the external data file's \
             content and is therefore incompatible with 'keep_data_file=on'"
        );
        assert_eq!(
            err("data_file=d.raw,keep_data_file=on"),
            "'keep_data_file=on' requires 'preallocation=metadata' or 'data_file_raw=on', or \
             the file contents will not be visible"
        );
        let raw = parse(v11, "data_file=d.raw,keep_data_file=on,data_file_raw=on").unwrap();
        assert_eq!(validate(&raw).unwrap().prealloc, Prealloc::Metadata);
        assert!(parse(QemuVersion::new(10, 0, 13), "keep_data_file=on").is_err());
    }

    #[test]
    fn size_limits_match_qemu() {
        let e = validate(&opts("", i64::MAX as u64)).unwrap_err().to_string();
        assert_eq!(e, "Could not resize image: Image size cannot be negative");
        let e = validate(&opts("", (i64::MAX as u64) - 511)).unwrap_err().to_string();
        assert_eq!(
            e,
            "Could not resize image: offset(9223372036854775296) exceeds maximum(9223372035781033984)"
        );
        let spec = validate(&opts("", 1 << 60)).unwrap();
        assert_eq!(
            build(&spec).unwrap_err().to_string(),
            "The image size is too large for file format 'qcow2' (try using a larger cluster size)"
        );
        assert_eq!(validate(&opts("", 1000)).unwrap().size, 1024);
    }
}
