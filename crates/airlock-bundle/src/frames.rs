//! The frame index: a zstd skippable frame at the end of every volume listing each data frame.
//!
//! Layout of the skippable frame (all integers little-endian):
//! `magic u32 = 0x184D2A5E`, `length u32`, then `count` records of 28 bytes
//! (`compressed_offset u64, compressed_size u32, tar_offset u64, tar_size u32, entry u32`),
//! then a footer `count u32` + `"AIRLKIX1"`.
//!
//! The index is *untrusted*: it only tells a reader where frames start. [`FrameIndex::check`]
//! insists that frames tile the file from byte 0 to the index with no gap or overlap and tile the
//! tar stream likewise, so that `zstd -d` and airlock see the same bytes; every frame's content
//! is then decompressed and hashed against the signed manifest.

use std::fs::File;
use std::os::unix::fs::FileExt;

pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
pub const FOOTER_MAGIC: &[u8; 8] = b"AIRLKIX1";
pub const RECORD: usize = 28;
const FOOTER: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    pub coff: u64,
    pub csize: u32,
    pub uoff: u64,
    pub usize: u32,
    pub entry: u32,
}

#[derive(Debug, Clone, Default)]
pub struct FrameIndex {
    pub frames: Vec<FrameRecord>,
    /// Offset of the skippable index frame (= end of the data frames).
    pub index_offset: u64,
}

impl FrameIndex {
    /// Serializes as a skippable frame.
    pub fn encode(frames: &[FrameRecord]) -> Vec<u8> {
        let payload = frames.len() * RECORD + FOOTER;
        let mut out = Vec::with_capacity(payload + 8);
        out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        out.extend_from_slice(&(payload as u32).to_le_bytes());
        for f in frames {
            out.extend_from_slice(&f.coff.to_le_bytes());
            out.extend_from_slice(&f.csize.to_le_bytes());
            out.extend_from_slice(&f.uoff.to_le_bytes());
            out.extend_from_slice(&f.usize.to_le_bytes());
            out.extend_from_slice(&f.entry.to_le_bytes());
        }
        out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        out.extend_from_slice(FOOTER_MAGIC);
        out
    }

    /// Reads the index from the end of `file` (of length `len`). `Ok(None)` when there is none.
    pub fn read(file: &File, len: u64) -> Result<Option<Self>, String> {
        Self::read_with(len, |buf, off| file.read_exact_at(buf, off))
    }

    /// [`FrameIndex::read`] over a whole volume held in memory (tests and fuzzing).
    pub fn parse(data: &[u8]) -> Result<Option<Self>, String> {
        Self::read_with(data.len() as u64, |buf, off| {
            let start = off as usize;
            let src = data
                .get(start..start + buf.len())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn read_with(
        len: u64,
        read_at: impl Fn(&mut [u8], u64) -> std::io::Result<()>,
    ) -> Result<Option<Self>, String> {
        if len < (8 + FOOTER) as u64 {
            return Ok(None);
        }
        let mut footer = [0u8; FOOTER];
        read_at(&mut footer, len - FOOTER as u64)
            .map_err(|e| format!("reading index footer: {e}"))?;
        if &footer[4..] != FOOTER_MAGIC {
            return Ok(None);
        }
        let count = u32::from_le_bytes(footer[..4].try_into().expect("4")) as u64;
        let payload = count * RECORD as u64 + FOOTER as u64;
        if payload + 8 > len || count > len / 9 {
            return Err(format!(
                "frame index claims {count} frames, more than the file can hold"
            ));
        }
        let start = len - payload - 8;
        let mut buf = vec![0u8; (payload + 8) as usize];
        read_at(&mut buf, start).map_err(|e| format!("reading frame index: {e}"))?;
        let magic = u32::from_le_bytes(buf[0..4].try_into().expect("4"));
        let plen = u32::from_le_bytes(buf[4..8].try_into().expect("4")) as u64;
        if magic != SKIPPABLE_MAGIC || plen != payload {
            return Err("frame index header does not match its footer".into());
        }
        let frames = buf[8..8 + (count as usize) * RECORD]
            .chunks_exact(RECORD)
            .map(|r| FrameRecord {
                coff: u64::from_le_bytes(r[0..8].try_into().expect("8")),
                csize: u32::from_le_bytes(r[8..12].try_into().expect("4")),
                uoff: u64::from_le_bytes(r[12..20].try_into().expect("8")),
                usize: u32::from_le_bytes(r[20..24].try_into().expect("4")),
                entry: u32::from_le_bytes(r[24..28].try_into().expect("4")),
            })
            .collect();
        Ok(Some(FrameIndex {
            frames,
            index_offset: start,
        }))
    }

    /// Checks that frames tile `[0, index_offset)` and the tar stream with no gaps, entries
    /// numbered 0, 1, 2… in order, and every frame bounded by `max_frame` decoded and by
    /// [`max_compressed`]`(max_frame)` encoded (a reader allocates a frame's compressed size
    /// before decompressing it, so a hostile index must not be able to ask for gigabytes).
    pub fn check(&self, max_frame: u64) -> Result<(), String> {
        let max_csize = max_compressed(max_frame);
        let (mut coff, mut uoff, mut entry) = (0u64, 0u64, 0u32);
        for (i, f) in self.frames.iter().enumerate() {
            if f.coff != coff {
                return Err(format!(
                    "frame {i} starts at byte {} but the previous ends at {coff}",
                    f.coff
                ));
            }
            if f.uoff != uoff {
                return Err(format!(
                    "frame {i} covers tar offset {} but {uoff} was expected",
                    f.uoff
                ));
            }
            if f.usize as u64 > max_frame || f.usize == 0 || f.csize == 0 {
                return Err(format!("frame {i} has an out-of-range size"));
            }
            if f.csize as u64 > max_csize {
                return Err(format!(
                    "frame {i} claims {} compressed bytes, more than the {max_csize} any frame of at most {max_frame} bytes needs",
                    f.csize
                ));
            }
            if f.entry != entry && f.entry != entry + 1 {
                return Err(format!("frame {i} jumps from entry {entry} to {}", f.entry));
            }
            if i == 0 && f.entry != 0 {
                return Err("first frame is not entry 0".into());
            }
            entry = f.entry;
            coff += f.csize as u64;
            uoff += f.usize as u64;
        }
        if coff != self.index_offset {
            return Err(format!(
                "frames end at byte {coff} but the index starts at {}",
                self.index_offset
            ));
        }
        Ok(())
    }

    /// The frames of each entry, as index ranges into `frames`.
    pub fn entries(&self) -> Vec<std::ops::Range<usize>> {
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, f) in self.frames.iter().enumerate() {
            match out.last_mut() {
                Some(r) if self.frames[r.start].entry == f.entry => r.end = i + 1,
                _ => out.push(i..i + 1),
            }
        }
        out
    }
}

/// Largest compressed size a frame of at most `max_frame` decoded bytes may have: zstd's worst
/// case for that input plus a small margin for frame header and block overhead.
pub fn max_compressed(max_frame: u64) -> u64 {
    zstd::zstd_safe::compress_bound(max_frame as usize) as u64 + 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(frames: &[(u32, u32, u32)]) -> FrameIndex {
        let (mut coff, mut uoff) = (0u64, 0u64);
        let frames: Vec<FrameRecord> = frames
            .iter()
            .map(|&(csize, usize, entry)| {
                let f = FrameRecord {
                    coff,
                    csize,
                    uoff,
                    usize,
                    entry,
                };
                coff += csize as u64;
                uoff += usize as u64;
                f
            })
            .collect();
        FrameIndex {
            frames,
            index_offset: coff,
        }
    }

    #[test]
    fn compressed_size_is_bounded() {
        let max = 16u64 << 20;
        let bound = max_compressed(max);
        assert_eq!(bound, 16_842_816); // as documented in bundle-format.md
                                       // Incompressible frames of the largest size are fine, one byte more than the bound is not.
        index(&[(bound as u32, max as u32, 0), (9, 1024, 1)])
            .check(max)
            .unwrap();
        let err = index(&[(bound as u32 + 1, max as u32, 0)])
            .check(max)
            .unwrap_err();
        assert!(err.contains("compressed bytes"), "{err}");
        // A hostile index asking for a 4 GiB read of a one-byte frame.
        let err = index(&[(100, 512, 0), (u32::MAX, 1, 1)])
            .check(max)
            .unwrap_err();
        assert!(err.contains("frame 1"), "{err}");
    }

    #[test]
    fn tiling_and_order() {
        let max = 16u64 << 20;
        index(&[(10, 512, 0), (10, 512, 0), (10, 1024, 1)])
            .check(max)
            .unwrap();
        let mut ix = index(&[(10, 512, 0), (10, 512, 2)]);
        assert!(ix.check(max).unwrap_err().contains("jumps"));
        ix = index(&[(10, 512, 0)]);
        ix.index_offset += 1;
        assert!(ix.check(max).unwrap_err().contains("index starts"));
        ix = index(&[(10, 0, 0)]);
        assert!(ix.check(max).unwrap_err().contains("out-of-range"));
    }
}
