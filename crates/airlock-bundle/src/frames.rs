//! The frame index: a zstd skippable frame at the end of every volume listing each data frame.
//!
//! Layout of the skippable frame (all integers little-endian):
//! `magic u32 = 0x184D2A5E`, `length u32`, then `count` records
//! (`compressed_offset u64, compressed_size u32, tar_offset u64, tar_size u32, entry u32`, and
//! in version 2 `flags u32`), then a footer `count u32` + `"AIRLKIX1"` (28-byte records) or
//! `"AIRLKIX2"` (32-byte records).
//!
//! Version 2 exists for one flag: [`FLAG_STORED`], set on each frame the writer stored as raw
//! zstd blocks because a probe found its data incompressible. A writer emits
//! version 2 only when some frame carries the flag, so a volume whose frames are all compressed
//! keeps the version 1 index that every airlock reader reads. Stored frames are ordinary zstd
//! frames ([`write_stored_frame`]): `zstd -d` and every reader decode them like the others.
//!
//! The index is *untrusted*: it only tells a reader where frames start. [`FrameIndex::check`]
//! insists that frames tile the file from byte 0 to the index with no gap or overlap and tile the
//! tar stream likewise, so that `zstd -d` and airlock see the same bytes; every frame's content
//! is then decompressed and hashed against the signed manifest.

use std::fs::File;
use std::os::unix::fs::FileExt;

pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Footer magic of a version 1 index (28-byte records, no flags).
pub const FOOTER_MAGIC: &[u8; 8] = b"AIRLKIX1";
/// Footer magic of a version 2 index (32-byte records ending in `flags u32`).
pub const FOOTER_MAGIC_V2: &[u8; 8] = b"AIRLKIX2";
/// Bytes per record in a version 1 index.
pub const RECORD: usize = 28;
/// Bytes per record in a version 2 index (the most any record takes).
pub const RECORD_V2: usize = 32;
/// Record flag: the frame holds its data in raw (uncompressed) zstd blocks, laid out exactly as
/// [`write_stored_frame`] writes them.
pub const FLAG_STORED: u32 = 1;
const FOOTER: usize = 12;

/// Raw zstd blocks hold at most this many bytes (the format's block size limit).
const RAW_BLOCK: usize = 128 << 10;
/// Magic, frame header descriptor and a 4-byte frame content size.
const STORED_HEADER: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    pub coff: u64,
    pub csize: u32,
    pub uoff: u64,
    pub usize: u32,
    pub entry: u32,
    /// The frame was written by [`write_stored_frame`] (flag [`FLAG_STORED`]).
    pub stored: bool,
}

/// Size of the frame [`write_stored_frame`] writes for `n` bytes.
pub fn stored_frame_len(n: u64) -> u64 {
    STORED_HEADER as u64 + 3 * n.div_ceil(RAW_BLOCK as u64).max(1) + n
}

/// Appends `data` to `out` as one zstd frame of raw blocks: no compression work, a copy.
///
/// The frame header is the magic `0xFD2FB528`, the descriptor `0xA0` (single segment, 4-byte
/// frame content size, no checksum, no dictionary) and the content size; then raw blocks of
/// 128 KiB (the last one shorter and flagged last), each behind its 3-byte block header. As a
/// single-segment frame its window is its content size, so a reader's window limit covers it
/// whenever its frame size limit does. `data` must be under 4 GiB.
pub fn write_stored_frame(data: &[u8], out: &mut Vec<u8>) {
    let n = u32::try_from(data.len()).expect("frames are far smaller than 4 GiB");
    out.reserve(stored_frame_len(n as u64) as usize);
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    out.push(0xA0); // FCS_flag = 2 (4 bytes), Single_Segment_flag = 1
    out.extend_from_slice(&n.to_le_bytes());
    let mut chunks = data.chunks(RAW_BLOCK).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&1u32.to_le_bytes()[..3]); // an empty last raw block
        return;
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none() as u32;
        // Block header: bit 0 last block, bits 1-2 block type (0 = raw), bits 3-23 size.
        let header = last | (c.len() as u32) << 3;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(c);
    }
}

#[derive(Debug, Clone, Default)]
pub struct FrameIndex {
    pub frames: Vec<FrameRecord>,
    /// Offset of the skippable index frame (= end of the data frames).
    pub index_offset: u64,
}

impl FrameIndex {
    /// Serializes as a skippable frame: version 2 when some frame is stored, else version 1.
    pub fn encode(frames: &[FrameRecord]) -> Vec<u8> {
        let v2 = frames.iter().any(|f| f.stored);
        let record = if v2 { RECORD_V2 } else { RECORD };
        let payload = frames.len() * record + FOOTER;
        let mut out = Vec::with_capacity(payload + 8);
        out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        out.extend_from_slice(&(payload as u32).to_le_bytes());
        for f in frames {
            out.extend_from_slice(&f.coff.to_le_bytes());
            out.extend_from_slice(&f.csize.to_le_bytes());
            out.extend_from_slice(&f.uoff.to_le_bytes());
            out.extend_from_slice(&f.usize.to_le_bytes());
            out.extend_from_slice(&f.entry.to_le_bytes());
            if v2 {
                let flags = if f.stored { FLAG_STORED } else { 0 };
                out.extend_from_slice(&flags.to_le_bytes());
            }
        }
        out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        out.extend_from_slice(if v2 { FOOTER_MAGIC_V2 } else { FOOTER_MAGIC });
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
        let record = match &footer[4..] {
            m if m == FOOTER_MAGIC => RECORD,
            m if m == FOOTER_MAGIC_V2 => RECORD_V2,
            _ => return Ok(None),
        };
        let count = u32::from_le_bytes(footer[..4].try_into().expect("4")) as u64;
        let payload = count * record as u64 + FOOTER as u64;
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
        let frames = buf[8..8 + (count as usize) * record]
            .chunks_exact(record)
            .enumerate()
            .map(|(i, r)| {
                let flags = match r.get(28..32) {
                    Some(f) => u32::from_le_bytes(f.try_into().expect("4")),
                    None => 0,
                };
                if flags & !FLAG_STORED != 0 {
                    return Err(format!("frame {i} has unknown flags {flags:#x}"));
                }
                Ok(FrameRecord {
                    coff: u64::from_le_bytes(r[0..8].try_into().expect("8")),
                    csize: u32::from_le_bytes(r[8..12].try_into().expect("4")),
                    uoff: u64::from_le_bytes(r[12..20].try_into().expect("8")),
                    usize: u32::from_le_bytes(r[20..24].try_into().expect("4")),
                    entry: u32::from_le_bytes(r[24..28].try_into().expect("4")),
                    stored: flags & FLAG_STORED != 0,
                })
            })
            .collect::<Result<_, String>>()?;
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
            if f.stored && f.csize as u64 != stored_frame_len(f.usize as u64) {
                return Err(format!(
                    "frame {i} is flagged stored but its {} bytes are not the {} a stored frame of {} bytes takes",
                    f.csize,
                    stored_frame_len(f.usize as u64),
                    f.usize
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
                    stored: false,
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

    fn pseudo_random(n: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn stored_frames_decode_with_libzstd_and_have_the_documented_size() {
        for n in [1, 511, 128 << 10, (128 << 10) + 1, 4 << 20] {
            let data = pseudo_random(n);
            let mut frame = Vec::new();
            write_stored_frame(&data, &mut frame);
            assert_eq!(frame.len() as u64, stored_frame_len(n as u64), "size {n}");
            let mut dctx = zstd::bulk::Decompressor::new().unwrap();
            let mut out = vec![0u8; n];
            assert_eq!(
                dctx.decompress_to_buffer(&frame[..], &mut out[..]).unwrap(),
                n
            );
            assert_eq!(out, data, "size {n}");
            // The streaming decoder under the reader's window limit accepts it too.
            let mut dec = zstd::stream::read::Decoder::new(&frame[..]).unwrap();
            dec.window_log_max(crate::format::MAX_WINDOW_LOG).unwrap();
            let mut streamed = Vec::new();
            std::io::Read::read_to_end(&mut dec, &mut streamed).unwrap();
            assert_eq!(streamed, data, "size {n}");
        }
        assert_eq!(stored_frame_len(4 << 20), (4 << 20) + 9 + 32 * 3);
    }

    #[test]
    fn index_is_version_2_only_when_a_frame_is_stored() {
        let mut ix = index(&[(10, 512, 0), (10, 1024, 1)]);
        let v1 = FrameIndex::encode(&ix.frames);
        assert_eq!(&v1[v1.len() - 8..], FOOTER_MAGIC);
        assert_eq!(v1.len(), 2 * RECORD + 20);
        let back = FrameIndex::parse(&[vec![0u8; 20], v1].concat())
            .unwrap()
            .unwrap();
        assert!(back.frames.iter().all(|f| !f.stored));

        ix.frames[1].stored = true;
        let v2 = FrameIndex::encode(&ix.frames);
        assert_eq!(&v2[v2.len() - 8..], FOOTER_MAGIC_V2);
        assert_eq!(v2.len(), 2 * RECORD_V2 + 20);
        let back = FrameIndex::parse(&[vec![0u8; 20], v2.clone()].concat())
            .unwrap()
            .unwrap();
        assert_eq!(back.frames, ix.frames);
        assert_eq!(back.index_offset, 20);

        // Flags other than "stored" are refused, not ignored.
        let mut bad = v2.clone();
        let flags_of_frame_0 = 8 + 28;
        bad[flags_of_frame_0] = 0x02;
        let err = FrameIndex::parse(&bad).unwrap_err();
        assert!(err.contains("unknown flags"), "{err}");
    }

    #[test]
    fn a_stored_flag_must_match_the_stored_frame_size() {
        let max = 16u64 << 20;
        let n = 4u32 << 20;
        let stored = stored_frame_len(n as u64) as u32;
        let mut ix = index(&[(stored, n, 0), (stored - 1, n, 0)]);
        ix.frames[0].stored = true;
        ix.check(max).unwrap();
        ix.frames[1].stored = true;
        let err = ix.check(max).unwrap_err();
        assert!(err.contains("frame 1 is flagged stored"), "{err}");
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
