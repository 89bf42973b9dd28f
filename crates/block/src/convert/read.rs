//! The sources as one disk, as `img_convert` reads them: each source's
//! sectors after the previous one's (`convert_select_part`), read with
//! `convert_co_read`'s rules (a read that would cross into the next
//! source is split; under `--salvage` a failed read is retried sector by
//! sector and a failing sector reads as zeros, with a warning).

use super::{errno_text, ConvertFailure, SECTOR};
use crate::chain::Chain;
use instar_core::{Diagnostic, GuestRead};

/// One opened source with the sizes convert works with.
pub(super) struct Source<'a> {
    pub(super) chain: &'a Chain,
    /// The disk's length (`blk_getlength`).
    pub(super) bytes: u64,
    /// Its length in whole sectors (qemu's `src_sectors`).
    pub(super) sectors: u64,
    /// qemu's `src_alignment`: block status answers are trimmed to end on
    /// these boundaries (sectors).
    pub(super) alignment: u64,
}

/// The sources, one after the other.
pub(super) struct Disk<'a> {
    pub(super) sources: Vec<Source<'a>>,
}

/// How reads treat errors: `--salvage` and `-q`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadMode {
    pub(super) salvage: bool,
    pub(super) quiet: bool,
}

impl<'a> Disk<'a> {
    /// The opened `chains` with their sizes, or the error qemu-img reports
    /// when it cannot size one.
    pub(super) fn of(chains: &'a [Chain]) -> Result<Disk<'a>, ConvertFailure> {
        let sources = chains
            .iter()
            .map(|chain| {
                let bytes = chain.byte_length().map_err(|e| ConvertFailure::from_error(&e))?;
                let top = chain.layer(0);
                let request = top.map_or(1, |t| t.request_alignment()).div_ceil(SECTOR);
                let info = top.map(|t| t.info_cluster_size()).transpose();
                let info = info.map_err(|e| ConvertFailure::from_error(&e))?;
                let cluster = info.flatten().unwrap_or(0) / SECTOR;
                Ok(Source {
                    chain,
                    bytes,
                    sectors: bytes.div_ceil(SECTOR),
                    alignment: request.max(cluster).max(1),
                })
            })
            .collect::<Result<_, ConvertFailure>>()?;
        Ok(Disk { sources })
    }

    /// The disk's length in sectors.
    pub(super) fn sectors(&self) -> u64 {
        self.sources.iter().map(|s| s.sectors).sum()
    }

    /// `convert_select_part`: the source holding `sector` and the sector
    /// its disk starts at.
    pub(super) fn select_part(&self, sector: u64) -> (usize, u64) {
        let mut start = 0;
        for (i, s) in self.sources.iter().enumerate() {
            if sector - start < s.sectors {
                return (i, start);
            }
            start += s.sectors;
        }
        (self.sources.len().saturating_sub(1), start)
    }

    /// `convert_co_read`: fills `buf` (whole sectors) with the disk's
    /// sectors from `sector_num`, adding the warnings `--salvage` prints
    /// to `warnings`. With `unread`, the sectors a source knows read as
    /// zeros ([`Chain::zero_run`]) are left unfilled and listed there
    /// instead (`(first, count)` relative to `buf`, in order).
    pub(super) fn read(
        &self,
        mut sector_num: u64,
        buf: &mut [u8],
        mode: ReadMode,
        warnings: &mut Vec<Diagnostic>,
        mut unread: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<(), ConvertFailure> {
        let start_sector = sector_num;
        let mut single_read_until = 0u64;
        let mut done = 0usize;
        while done < buf.len() {
            let (src_cur, src_start) = self.select_part(sector_num);
            let Some(source) = self.sources.get(src_cur) else {
                return Err(ConvertFailure::reported("no source"));
            };
            let offset = (sector_num - src_start) * SECTOR;
            let left = ((buf.len() - done) as u64) / SECTOR;
            let mut n = left.min(source.sectors - (sector_num - src_start)).max(1);
            if single_read_until > offset {
                n = 1;
            }
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            let part = &mut buf[done..done + (n * SECTOR) as usize];
            let first = (done as u64) / SECTOR;
            let read = match unread.as_deref_mut() {
                Some(unread) => read_sparse(source.chain, offset, part, first, unread),
                None => source.chain.read_guest(offset, part),
            };
            warnings.extend(source.chain.take_printed());
            if let Err(e) = read {
                warnings.extend(e.notes().iter().cloned());
                if !mode.salvage {
                    return Err(ConvertFailure::reported(format!(
                        "error while reading at byte {}: {}",
                        start_sector * SECTOR,
                        errno_text(&e)
                    )));
                }
                if n > 1 {
                    single_read_until = offset + n * SECTOR;
                    continue;
                }
                if !mode.quiet {
                    warnings.push(Diagnostic::Reported(format!(
                        "warning: error while reading offset {offset}: {}",
                        errno_text(&e)
                    )));
                }
                part.fill(0);
            }
            sector_num += n;
            #[allow(clippy::cast_possible_truncation, reason = "at most the buffer's length")]
            {
                done += (n * SECTOR) as usize;
            }
        }
        Ok(())
    }
}

/// Reads `part` at `offset` of `chain`, leaving unread the whole sectors
/// the chain knows read as zeros and listing them in `unread` (relative
/// to the chunk, whose sector `first` `part` starts at). A failed read
/// lists nothing.
fn read_sparse(
    chain: &Chain,
    offset: u64,
    part: &mut [u8],
    first: u64,
    unread: &mut Vec<(u64, u64)>,
) -> Result<(), instar_core::Error> {
    let mut known = Vec::new();
    let mut at = 0usize;
    while at < part.len() {
        let rest = (part.len() - at) as u64;
        let (zero, run) = chain.zero_run(offset + at as u64, rest);
        let sectors = run / SECTOR;
        if zero && sectors > 0 {
            known.push((first + at as u64 / SECTOR, sectors));
            #[allow(clippy::cast_possible_truncation, reason = "at most the part's length")]
            {
                at += (sectors * SECTOR) as usize;
            }
            continue;
        }
        // What is read: the run, or the sector a short zero run is in,
        // in whole sectors.
        let len = if zero { SECTOR } else { run.div_ceil(SECTOR) * SECTOR }.min(rest);
        #[allow(clippy::cast_possible_truncation, reason = "at most the part's length")]
        let len = len as usize;
        chain.read_guest(offset + at as u64, &mut part[at..at + len])?;
        at += len;
    }
    for (s, n) in known {
        match unread.last_mut() {
            Some((f, c)) if *f + *c == s => *c += n,
            _ => unread.push((s, n)),
        }
    }
    Ok(())
}
