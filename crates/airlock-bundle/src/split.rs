//! Split blobs: a blob larger than a volume travels as parts in consecutive volumes.
//!
//! [`plan`] assigns blobs to volumes next-fit. A blob whose entry fits in an empty volume is
//! never split (it starts a new volume when the current one is too full), so a bundle that fits
//! without splitting stays format 1.0. Only a blob larger than a volume is split: its first part
//! fills what is left of the current volume (when that is at least a minimum part size), the
//! next parts fill whole volumes, and the last part leaves the rest of its volume to the blobs
//! after it. Each part is its own tar entry, [`part_entry_name`], with its own digest, offset and
//! size in the signed manifest, so every volume still verifies alone and `tar -x` of a volume
//! writes only bytes a signed digest covers.
//!
//! On the reading side [`VerifyWhole`] chains the parts of each blob, verified in volume order,
//! into one SHA-256 so that `airlock verify` checks the whole blob's digest without reading it a
//! second time, and [`assemble`] streams staged parts into a writer in bounded memory (unpack and
//! import).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;

use airlock_core::bundle::{BlobRecord, PartRecord};
use airlock_core::{Digest, Sha256};

use crate::reader::BlobSink;

/// Smallest first part worth starting in a partly filled volume (smaller rooms are left empty
/// and the blob starts in a new volume).
pub const MIN_PART: u64 = 1 << 20;

/// Most volumes a bundle may have (`BundleManifest::validate`).
const MAX_VOLUMES: u32 = 10_000;

/// Tar entry name of part `index` (0-based) of `count` of blob `d`:
/// `blobs/sha256/<hex>.part-0001-of-0003`. Numbers are 1-based, zero-padded to at least four
/// digits, so the parts of a blob sort in order and `cat <hex>.part-*` rebuilds it. At most 97
/// bytes: it fits the tar name field.
pub fn part_entry_name(d: &Digest, index: usize, count: usize) -> String {
    format!(
        "blobs/sha256/{}.part-{:04}-of-{:04}",
        d.hex(),
        index + 1,
        count
    )
}

/// Where one blob goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Whole, in this volume.
    Whole(u32),
    /// As these parts, in consecutive volumes.
    Split(Vec<PartPlan>),
}

/// One planned part: bytes `offset .. offset + size` of the blob, in `volume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub offset: u64,
    pub size: u64,
    pub volume: u32,
}

/// Largest data size `s` with `bound(s) <= room`, or `None` when not even an empty entry fits.
/// `bound` must be monotonic.
pub fn max_data(room: u64, bound: &impl Fn(u64) -> u64) -> Option<u64> {
    if bound(0) > room {
        return None;
    }
    let (mut lo, mut hi) = (0u64, room);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if bound(mid) <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Assigns blobs of `sizes` to volumes of `capacity` bytes each, where an entry of `s` data
/// bytes takes at most `bound(s)`. Returns one placement per blob and the number of volumes.
pub fn plan(
    sizes: &[u64],
    capacity: u64,
    bound: impl Fn(u64) -> u64,
) -> Result<(Vec<Placement>, u32), String> {
    let full = max_data(capacity, &bound)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("a volume of {capacity} usable bytes cannot hold any blob data"))?;
    let min_part = (full / 16).clamp(1, MIN_PART);
    let (mut volume, mut used) = (1u32, 0u64);
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let cost = bound(size);
        if cost <= capacity - used {
            used += cost;
            out.push(Placement::Whole(volume));
        } else if cost <= capacity {
            volume += 1;
            used = cost;
            out.push(Placement::Whole(volume));
        } else {
            let room = max_data(capacity - used, &bound).unwrap_or(0);
            if room < min_part {
                volume += 1;
                used = 0;
            }
            out.push(Placement::Split(split_one(
                size,
                capacity,
                &bound,
                &mut volume,
                &mut used,
            )));
        }
        if volume > MAX_VOLUMES {
            return Err(format!(
                "the bundle needs more than {MAX_VOLUMES} volumes; use a larger --volume-size"
            ));
        }
    }
    Ok((out, volume))
}

/// Cuts one blob into parts starting at (`volume`, `used`), leaving both at the last part.
fn split_one(
    size: u64,
    capacity: u64,
    bound: &impl Fn(u64) -> u64,
    volume: &mut u32,
    used: &mut u64,
) -> Vec<PartPlan> {
    let mut parts = Vec::new();
    let mut offset = 0u64;
    loop {
        let left = size - offset;
        let room = capacity - *used;
        if bound(left) <= room {
            parts.push(PartPlan {
                offset,
                size: left,
                volume: *volume,
            });
            *used += bound(left);
            return parts;
        }
        let n = max_data(room, bound).unwrap_or(0).min(left);
        if n > 0 {
            parts.push(PartPlan {
                offset,
                size: n,
                volume: *volume,
            });
            offset += n;
        }
        *volume += 1;
        *used = 0;
    }
}

/// The part records of a planned split (digests filled in by the caller).
pub fn part_records(plan: &[PartPlan], digests: &[Digest]) -> Vec<PartRecord> {
    plan.iter()
        .zip(digests)
        .map(|(p, d)| PartRecord {
            digest: *d,
            offset: p.offset,
            size: p.size,
            volume: p.volume,
        })
        .collect()
}

/// Streams the parts of `blob` into `out` in order, `open(i)` giving part `i`'s bytes (already
/// verified by its own digest). Each part must hold exactly its recorded size. Memory is one
/// 1 MiB buffer whatever the blob's size; the caller's writer checks the whole digest.
pub fn assemble<R: Read>(
    blob: &BlobRecord,
    mut open: impl FnMut(usize) -> std::io::Result<R>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for (i, p) in blob.parts.iter().enumerate() {
        let mut r = open(i)?.take(p.size + 1);
        let mut n = 0u64;
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            out.write_all(&buf[..k])?;
            n += k as u64;
        }
        if n != p.size {
            return Err(std::io::Error::other(format!(
                "blob {} part {} of {} holds {n} bytes, the signed manifest says {}",
                blob.digest,
                i + 1,
                blob.parts.len(),
                p.size
            )));
        }
    }
    Ok(())
}

/// A verifying sink that keeps nothing but, for split blobs whose parts arrive in order, hashes
/// the parts into the whole blob's digest and checks it at the last part. Volumes must be read
/// in ascending volume order for the chain to see every part (a volume holds at most one part
/// of a blob, so parts of one blob never run concurrently).
#[derive(Default)]
pub struct VerifyWhole {
    chains: Mutex<BTreeMap<Digest, (usize, Sha256)>>,
    whole: Mutex<Vec<Digest>>,
}

/// Writer of [`VerifyWhole`]: feeds the whole-blob hash of a part that continues its chain.
pub struct ChainWriter {
    chain: Option<(usize, Sha256)>,
}

impl Write for ChainWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some((_, h)) = self.chain.as_mut() {
            h.update(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl VerifyWhole {
    /// Split blobs whose whole digest was checked.
    pub fn whole_verified(&self) -> Vec<Digest> {
        self.whole.lock().expect("lock").clone()
    }
}

impl BlobSink for VerifyWhole {
    type Writer = ChainWriter;
    fn begin(&self, _: &Digest, _: u64) -> std::io::Result<Option<ChainWriter>> {
        Ok(Some(ChainWriter { chain: None }))
    }
    fn commit(&self, _: ChainWriter, _: &crate::reader::Hashed) -> std::io::Result<()> {
        Ok(())
    }
    fn begin_part(&self, blob: &BlobRecord, index: usize) -> std::io::Result<Option<ChainWriter>> {
        let mut chains = self.chains.lock().expect("lock");
        let chain = match chains.remove(&blob.digest) {
            Some((next, h)) if next == index => Some((index, h)),
            None if index == 0 => Some((0, Sha256::new())),
            _ => None,
        };
        Ok(Some(ChainWriter { chain }))
    }
    fn commit_part(
        &self,
        w: ChainWriter,
        blob: &BlobRecord,
        _: usize,
        _: &crate::reader::Hashed,
    ) -> std::io::Result<()> {
        let Some((index, h)) = w.chain else {
            return Ok(());
        };
        if index + 1 < blob.parts.len() {
            self.chains
                .lock()
                .expect("lock")
                .insert(blob.digest, (index + 1, h));
            return Ok(());
        }
        let found = h.finish();
        if found != blob.digest {
            return Err(std::io::Error::other(format!(
                "every part of blob {} verified, but the parts together hash to {found}",
                blob.digest
            )));
        }
        self.whole.lock().expect("lock").push(blob.digest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(s: u64) -> u64 {
        s + 100
    }

    #[test]
    fn small_blobs_are_never_split() {
        let (p, n) = plan(&[500, 500, 500], 1000, bound).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            p,
            vec![
                Placement::Whole(1),
                Placement::Whole(2),
                Placement::Whole(3)
            ]
        );
    }

    #[test]
    fn a_blob_larger_than_a_volume_fills_consecutive_volumes() {
        // Volume 1: a 300-byte blob (400) then the first part of the big one fills the rest.
        let (p, n) = plan(&[300, 2500, 100], 1000, bound).unwrap();
        let Placement::Split(parts) = &p[1] else {
            panic!("not split: {p:?}")
        };
        let expect = [(0, 500, 1), (500, 900, 2), (1400, 900, 3), (2300, 200, 4)];
        let got: Vec<_> = parts.iter().map(|x| (x.offset, x.size, x.volume)).collect();
        assert_eq!(got, expect);
        // The last part leaves room for the next blob in its volume.
        assert_eq!(p[2], Placement::Whole(4));
        assert_eq!(n, 4);
        assert_eq!(parts.iter().map(|x| x.size).sum::<u64>(), 2500);
    }

    #[test]
    fn a_tiny_rest_of_a_volume_is_not_used_for_a_part() {
        let (p, _) = plan(&[895, 5000], 1000, bound).unwrap();
        let Placement::Split(parts) = &p[1] else {
            panic!()
        };
        assert_eq!(parts[0].volume, 2);
        assert_eq!(parts[0].offset, 0);
    }

    #[test]
    fn too_many_volumes_is_refused() {
        let e = plan(&[100_000_000], 1000, bound).unwrap_err();
        assert!(e.contains("more than 10000 volumes"), "{e}");
    }

    #[test]
    fn part_names_fit_a_tar_header_and_sort() {
        let d = Sha256::digest(b"x");
        let a = part_entry_name(&d, 0, 3);
        assert!(a.ends_with(".part-0001-of-0003"), "{a}");
        assert!(part_entry_name(&d, 9_999, 10_000).len() <= 100);
        assert!(part_entry_name(&d, 1, 3) > a);
    }

    #[test]
    fn max_data_is_exact() {
        assert_eq!(max_data(1000, &bound), Some(900));
        assert_eq!(max_data(50, &bound), None);
    }
}
