//! `measure -O qcow2` (qemu's `qcow2_measure`): the file a new qcow2
//! image needs, from the same geometry and refcount arithmetic that lays
//! out the images `create` writes ([`crate::layout`]).
//!
//! The options are read as qemu's measure reads them, which is not how
//! create reads them: `compat` knows only `0.10` and `1.1`, the refcount
//! message names `compat=1.1`, and options measure has no use for
//! (`lazy_refcounts`, `data_file`, ...) are accepted and ignored.

use crate::bitmap::dir_entry_size;
use crate::create::{DEFAULT_CLUSTER_SIZE, DEFAULT_REFCOUNT_BITS};
use crate::header::{MAX_CLUSTER_BITS, MIN_CLUSTER_BITS};
use crate::layout::{refcount_metadata_size, Geometry};
use crate::tables::{L1E_SIZE, QCOW_MAX_L1_SIZE, SUBCLUSTERS_PER_CLUSTER};
use instar_core::file::Prealloc;
use instar_core::{Error, MeasureSource, Measurement, Options, Secrets, SourceBitmap};

/// Bytes per entry of a bitmap's table.
const BITMAP_TABLE_ENTRY_SIZE: u64 = 8;

/// The prefix of the encryption options inside qcow2's.
const ENCRYPT_PREFIX: &str = "encrypt.";

/// The image's shape as measure reads it from the options.
struct Shape {
    geometry: Geometry,
    version: u32,
    prealloc: Prealloc,
    has_backing_file: bool,
    luks_payload: u64,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid(message.into())
}

/// Reads the options in qemu's order, each failure with its message.
fn shape(opts: &Options, secrets: &dyn Secrets) -> Result<Shape, Error> {
    let extended_l2 = opts.get_bool("extended_l2").unwrap_or(false);
    let cluster_size = opts.get_number("cluster_size").unwrap_or(DEFAULT_CLUSTER_SIZE);
    let cluster_bits = cluster_size.trailing_zeros();
    if !cluster_size.is_power_of_two()
        || !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits)
    {
        return Err(invalid(format!(
            "Cluster size must be a power of two between {} and {}k",
            1u64 << MIN_CLUSTER_BITS,
            1u64 << (MAX_CLUSTER_BITS - 10)
        )));
    }
    let min_extended = (1u64 << MIN_CLUSTER_BITS) * SUBCLUSTERS_PER_CLUSTER;
    if extended_l2 && cluster_size < min_extended {
        return Err(invalid(format!(
            "Extended L2 entries are only supported with cluster sizes of at least {min_extended} \
             bytes"
        )));
    }
    let version = match opts.get_str("compat") {
        None | Some("1.1") => 3,
        Some("0.10") => 2,
        Some(other) => return Err(invalid(format!("Invalid compatibility level: '{other}'"))),
    };
    let refcount_bits = opts.get_number("refcount_bits").unwrap_or(DEFAULT_REFCOUNT_BITS);
    if refcount_bits > 64 || !refcount_bits.is_power_of_two() {
        return Err(invalid("Refcount width must be a power of two and may not exceed 64 bits"));
    }
    if version < 3 && refcount_bits != DEFAULT_REFCOUNT_BITS {
        return Err(invalid(
            "Different refcount widths than 16 bits require compatibility level 1.1 or above \
             (use compat=1.1 or greater)",
        ));
    }
    let prealloc = Prealloc::parse(opts.get_str("preallocation"))?;
    let has_backing_file = opts.is_set("backing_file");
    let luks = opts.get_str(&format!("{ENCRYPT_PREFIX}format")) == Some("luks");
    let luks_payload = if luks {
        instar_luks::measure::header_length(opts, ENCRYPT_PREFIX, secrets)?
            .next_multiple_of(cluster_size)
    } else {
        0
    };
    Ok(Shape {
        geometry: Geometry {
            cluster_bits,
            refcount_order: refcount_bits.trailing_zeros(),
            extended_l2,
        },
        version,
        prealloc,
        has_backing_file,
        luks_payload,
    })
}

/// The file length of an image of `size` bytes (a multiple of the
/// cluster size) with every cluster allocated (qemu's
/// `qcow2_calc_prealloc_size`): header, whole L2 tables, the L1 table in
/// whole clusters, the refcount structures for all of it, and the data.
pub fn fully_allocated_size(g: Geometry, size: u64) -> u64 {
    let cs = g.cluster_size();
    let l2e = g.l2_entry_size();
    let mut meta = cs;
    let l2_entries = (size / cs).next_multiple_of(cs / l2e);
    meta += l2_entries * l2e;
    let l1_entries = (l2_entries * l2e / cs).next_multiple_of(cs / L1E_SIZE);
    meta += l1_entries * L1E_SIZE;
    let (refcounts, _) = refcount_metadata_size((meta + size) / cs, cs, g.refcount_order, false);
    meta + refcounts + size
}

/// What the source's persistent bitmaps would take in an image with
/// `cluster_size` clusters (qemu's `qcow2_get_persistent_dirty_bitmap_size`):
/// each bitmap whole, its table, and the directory.
pub fn bitmaps_size(bitmaps: &[SourceBitmap], cluster_size: u64) -> u64 {
    let mut total = 0u64;
    let mut directory = 0u64;
    for b in bitmaps {
        let bits = b.length.div_ceil(b.granularity.max(1));
        let clusters = bits.div_ceil(8).div_ceil(cluster_size);
        total = total.saturating_add(clusters.saturating_mul(cluster_size)).saturating_add(
            clusters.saturating_mul(BITMAP_TABLE_ENTRY_SIZE).next_multiple_of(cluster_size),
        );
        directory = directory.saturating_add(dir_entry_size(b.name_len, 0));
    }
    total.saturating_add(directory.next_multiple_of(cluster_size))
}

/// qemu's `qcow2_measure`.
pub fn measure(
    opts: &Options,
    source: Option<&dyn MeasureSource>,
    secrets: &dyn Secrets,
) -> Result<Measurement, Error> {
    let s = shape(opts, secrets)?;
    let g = s.geometry;
    let cs = g.cluster_size();
    let asked = opts.get_number("size").unwrap_or(0);
    // The size limit looks at the size asked for only: an image source
    // is measured whatever its size.
    let l2_tables = asked.div_ceil(cs).div_ceil(g.l2_entries());
    if l2_tables.saturating_mul(L1E_SIZE) > QCOW_MAX_L1_SIZE {
        return Err(invalid("The image size is too large (try using a larger cluster size)"));
    }
    let mut virtual_size = asked.div_ceil(cs) * cs;
    let mut data = 0;
    if let Some(src) = source {
        virtual_size = src.length().div_ceil(cs) * cs;
        data = if s.has_backing_file {
            // The new image's backing file may share nothing with the
            // source: every cluster may need writing.
            virtual_size
        } else {
            src.allocated_bytes(cs)?
        };
    }
    if matches!(s.prealloc, Prealloc::Full | Prealloc::Falloc) {
        data = virtual_size;
    }
    let fully_allocated = s.luks_payload + fully_allocated_size(g, virtual_size);
    let required = fully_allocated - virtual_size + data;
    let bitmaps = match source {
        Some(src) if s.version >= 3 => src.persistent_bitmaps().map(|b| bitmaps_size(&b, cs)),
        _ => None,
    };
    Ok(Measurement { required, fully_allocated, bitmaps })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSecrets;
    impl Secrets for NoSecrets {
        fn has_secret(&self, _: &str) -> bool {
            false
        }
    }

    fn measured(list: &str, size: u64) -> Result<(u64, u64), String> {
        let mut opts = Options::new(&[crate::create::CREATE_OPTS]);
        opts.parse(list).map_err(|e| e.to_string())?;
        opts.set_number("size", size);
        measure(&opts, None, &NoSecrets)
            .map(|m| (m.required, m.fully_allocated))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_match_qemu() {
        // qemu-img 10.0.2 (and every version from 5.2 on).
        assert_eq!(measured("", 0), Ok((196_608, 196_608)));
        assert_eq!(measured("", 1), Ok((327_680, 393_216)));
        assert_eq!(measured("", 65_537), Ok((327_680, 458_752)));
        assert_eq!(measured("", 1 << 30), Ok((393_216, 1_074_135_040)));
        assert_eq!(measured("", 1 << 40), Ok((168_034_304, 1_099_679_662_080)));
        assert_eq!(measured("", 1 << 51), Ok((343_650_009_088, 2_252_143_463_694_336)));
        assert_eq!(measured("cluster_size=512", 1 << 30), Ok((21_385_216, 1_095_127_040)));
        assert_eq!(measured("extended_l2=on", 1 << 30), Ok((524_288, 1_074_266_112)));
        assert_eq!(measured("preallocation=full", 1 << 30), Ok((1_074_135_040, 1_074_135_040)));
    }

    #[test]
    fn limits_and_bad_options_fail_as_in_qemu() {
        let too_large = Err("The image size is too large (try using a larger cluster size)".into());
        assert_eq!(measured("", (1 << 51) + 1), too_large);
        assert_eq!(measured("cluster_size=512", (128 << 30) + 65536), too_large);
        assert_eq!(measured("compat=v3", 1), Err("Invalid compatibility level: 'v3'".to_string()));
        assert_eq!(
            measured("cluster_size=1000", 1),
            Err("Cluster size must be a power of two between 512 and 2048k".to_string())
        );
        assert_eq!(measured("preallocation=xx", 1), Err("invalid parameter value: xx".into()));
    }

    #[test]
    fn bitmaps_match_qemu() {
        // A 10 MiB image with bitmaps of granularity 64 KiB (name "bm1")
        // and 512 (a 57-byte name): 327680 with 64 KiB clusters.
        let b = [
            SourceBitmap {
                name_len: 3,
                granularity: 65536,
                length: 10 << 20,
                name: "abc".into(),
                in_use: false,
            },
            SourceBitmap {
                name_len: 57,
                granularity: 512,
                length: 10 << 20,
                name: "x".repeat(57),
                in_use: false,
            },
        ];
        assert_eq!(bitmaps_size(&b, 65536), 327_680);
        assert_eq!(bitmaps_size(&b, 512), 4608);
        assert_eq!(bitmaps_size(&b, 2 << 20), 10_485_760);
        assert_eq!(bitmaps_size(&[], 65536), 0);
    }
}
