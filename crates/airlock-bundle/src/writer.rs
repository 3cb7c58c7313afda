//! Writing bundles: assign blobs to volumes, sign the manifest, write each volume.
//!
//! Each volume is written by a small pipeline: this thread reads source bytes into recycled
//! buffers (hashing those whose digest has not been checked yet), `threads` workers compress
//! frames with reused zstd contexts, and one writer thread puts the frames back in order and
//! appends them to the file. An input buffer goes back to the pool only after the writer has
//! appended its frame, so at most `threads × 4 + 4` frames are in flight (being filled, queued,
//! compressed or waiting in the writer's reorder map) and memory is `O(threads × FRAME_DATA)`
//! whatever the size of the bundle and however unevenly the workers progress.
//!
//! With [`Compression::Auto`] a worker first probes each frame of at least [`PROBE_BYTES`]: it
//! compresses [`PROBE_BYTES`] sampled from four places of the frame at zstd level 1, and when
//! that does not save at least 1/[`PROBE_MIN_SAVING`] (2 %) of the sample the frame is stored
//! as raw zstd blocks ([`write_stored_frame`]) instead of compressed. Random-looking data (model
//! weights, already compressed layers) then costs a copy rather than a compressor pass that
//! would only end in raw blocks anyway. The probe is per frame, not per blob, so that a blob
//! whose start happens to be incompressible (a layer whose first file is an archive) is still
//! compressed where it can be.
//!
//! While the volume grows, a helper syncs what is written so far every few tens of MiB
//! ([`airlock_store::writeback`]), so the disk works while the CPUs compress and the closing
//! fsync waits only for the tail.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_core::bundle::{
    BlobRecord, BundleManifest, EntryRef, PartRecord, Statement, PAYLOAD_TYPE,
};
use airlock_core::{Digest, Sha256};
use airlock_trust::{Envelope, Signer};
use crossbeam_channel::bounded;

use crate::format::*;
use crate::frames::{write_stored_frame, FrameIndex, FrameRecord};
use crate::split::{self, Placement};
use crate::{tarfmt, BundleError, Progress};

/// Identity of a source file at the moment it was hashed. If it still matches when the file is
/// packed, the file was not rewritten in between and need not be hashed a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileStamp {
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        }
    }
}

/// Where the bytes of a blob come from.
#[derive(Debug, Clone)]
pub enum BlobData {
    /// Small generated JSON (manifests, configs).
    Bytes(Arc<[u8]>),
    /// A byte range of a file. `stamp` is `Some` when the range was already hashed and found to
    /// match the digest; otherwise it is hashed while packing and a mismatch fails the pack.
    File {
        path: PathBuf,
        offset: u64,
        stamp: Option<FileStamp>,
    },
}

#[derive(Debug, Clone)]
pub struct PlannedBlob {
    pub digest: Digest,
    pub size: u64,
    pub data: BlobData,
}

/// Everything a bundle will hold. `manifest.blobs`, `volumes` and `index` are filled by [`pack`].
pub struct PackInput {
    pub manifest: BundleManifest,
    pub index_json: Vec<u8>,
    pub blobs: Vec<PlannedBlob>,
}

/// Whether the writer may store incompressible data without compressing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Probe each frame; store as raw zstd blocks the ones a probe finds incompressible.
    #[default]
    Auto,
    /// Compress every frame at the configured level.
    Always,
}

/// Bytes of a frame the probe compresses; shorter frames are always compressed (that is quick,
/// and a short blob's frame is largely tar header and padding, which compress).
pub const PROBE_BYTES: usize = 64 << 10;
/// zstd level of the probe.
pub const PROBE_LEVEL: i32 = 1;
/// A probe must save at least `1 / PROBE_MIN_SAVING` of its sample (2 %) for the frame to be
/// compressed.
pub const PROBE_MIN_SAVING: usize = 50;
/// The probe's sample: this many slices of `PROBE_BYTES / PROBE_SLICES` bytes, at the start
/// and at 1/4, 1/2 and 3/4 of the frame.
const PROBE_SLICES: usize = 4;

/// Probes frames: a level-1 compressor and a buffer for the sample.
struct Probe {
    zstd: zstd::bulk::Compressor<'static>,
    sample: Vec<u8>,
    out: Vec<u8>,
}

impl Probe {
    fn new() -> std::io::Result<Self> {
        Ok(Probe {
            zstd: zstd::bulk::Compressor::new(PROBE_LEVEL)?,
            sample: Vec::with_capacity(PROBE_BYTES),
            out: Vec::with_capacity(zstd::zstd_safe::compress_bound(PROBE_BYTES)),
        })
    }

    /// Whether `frame` should be compressed: it is shorter than [`PROBE_BYTES`], or the
    /// sample compressed at [`PROBE_LEVEL`] saves at least 1/[`PROBE_MIN_SAVING`] of it.
    fn worth_compressing(&mut self, frame: &[u8]) -> bool {
        if frame.len() < PROBE_BYTES {
            return true;
        }
        let slice = PROBE_BYTES / PROBE_SLICES;
        self.sample.clear();
        for i in 0..PROBE_SLICES {
            let start = (frame.len() / PROBE_SLICES * i).min(frame.len() - slice);
            self.sample.extend_from_slice(&frame[start..start + slice]);
        }
        self.out.clear();
        // A probe that fails (it cannot into a buffer of the bound's size) means: compress.
        match self
            .zstd
            .compress_to_buffer(&self.sample[..], &mut self.out)
        {
            Ok(n) => n + PROBE_BYTES / PROBE_MIN_SAVING <= PROBE_BYTES,
            Err(_) => true,
        }
    }
}

pub struct PackOptions<'a> {
    pub out_dir: PathBuf,
    /// Upper bound on each volume file's size; `None` writes one volume.
    pub volume_size: Option<u64>,
    pub zstd_level: i32,
    pub compression: Compression,
    pub threads: usize,
    pub signers: Vec<&'a dyn Signer>,
    pub progress: &'a dyn Progress,
}

#[derive(Debug, Clone)]
pub struct PackedVolume {
    pub path: PathBuf,
    pub number: u32,
    /// Bytes on disk.
    pub size: u64,
    /// Uncompressed tar bytes.
    pub tar_size: u64,
    pub blobs: usize,
}

pub struct Packed {
    pub manifest: BundleManifest,
    pub bundle_id: Digest,
    pub volumes: Vec<PackedVolume>,
}

/// Worst-case bytes a tar entry of `size` data bytes takes compressed.
fn entry_bound(size: u64) -> u64 {
    let tar = tarfmt::entry_len(size);
    let frames = tar.div_ceil(FRAME_DATA as u64).max(1);
    let per_frame = zstd::zstd_safe::compress_bound(FRAME_DATA) as u64 - FRAME_DATA as u64;
    tar + frames * (per_frame + 32 + crate::frames::RECORD_V2 as u64)
}

/// Most JSON bytes one part record adds to the statement (three u64/u32 numbers, a digest).
const PART_JSON_MAX: u64 = 160;

/// Assigns blobs to volumes of `limit` bytes, where `fixed_for(extra)` bounds the metadata
/// every volume repeats when part records add `extra` bytes to the signed statement. Planning
/// is repeated until the room assumed for part records covers the parts planned (splitting
/// shrinks the room, which may add parts); a bundle without split blobs is planned once.
fn plan_volumes(
    blobs: &[PlannedBlob],
    limit: u64,
    fixed_for: impl Fn(u64) -> u64,
) -> Result<(Vec<Placement>, u32), BundleError> {
    let sizes: Vec<u64> = blobs.iter().map(|b| b.size).collect();
    let mut extra = 0u64;
    for _ in 0..8 {
        let fixed = fixed_for(extra);
        if limit <= fixed {
            return Err(BundleError::Plan(format!(
                "--volume-size {limit} is too small: the signed manifest and index alone need up to {fixed} bytes per volume"
            )));
        }
        let (placements, volumes) = split::plan(&sizes, limit - fixed, entry_bound)
            .map_err(|e| BundleError::Plan(format!("--volume-size {limit}: {e}")))?;
        let needed: u64 = placements
            .iter()
            .map(|p| match p {
                Placement::Whole(_) => 0,
                Placement::Split(parts) => 16 + parts.len() as u64 * PART_JSON_MAX,
            })
            .sum::<u64>()
            + if extra > 0 || placements.iter().any(|p| matches!(p, Placement::Split(_))) {
                32
            } else {
                0
            };
        if needed <= extra {
            return Ok((placements, volumes));
        }
        extra = needed;
    }
    Err(BundleError::Plan(format!(
        "--volume-size {limit}: planning the split blobs did not settle; use a larger --volume-size"
    )))
}

/// Signs and writes the bundle. On error nothing is left in `out_dir`.
pub fn pack(input: PackInput, opts: &PackOptions<'_>) -> Result<Packed, BundleError> {
    let PackInput {
        mut manifest,
        index_json,
        blobs,
    } = input;
    if opts.signers.is_empty() {
        return Err(BundleError::Plan(
            "at least one signing key is required".into(),
        ));
    }
    manifest.index = EntryRef {
        digest: Sha256::digest(&index_json),
        size: index_json.len() as u64,
    };

    // Size of the metadata entries every volume repeats, estimated with the widest volume
    // numbers so that the estimate holds whatever the assignment turns out to be.
    manifest.volumes = u32::MAX;
    manifest.blobs = blobs
        .iter()
        .map(|b| BlobRecord {
            digest: b.digest,
            size: b.size,
            volume: u32::MAX,
            parts: vec![],
        })
        .collect();
    let stmt_len = serde_json::to_vec(&Statement::new(manifest.clone()))
        .expect("statement serializes")
        .len() as u64;
    // `extra` = JSON bytes the split blobs' part records (and `formatMinor`) add.
    let signers = opts.signers.len() as u64;
    let fixed_for = |extra: u64| {
        let envelope_bound = (stmt_len + extra) * 4 / 3 + 4 + 256 * signers + 1024;
        entry_bound(envelope_bound)
            + entry_bound(256)
            + entry_bound(OCI_LAYOUT_CONTENT.len() as u64)
            + entry_bound(index_json.len() as u64)
            + entry_bound(0) * 2
            + 64
    };
    let (placements, volumes) = match opts.volume_size {
        Some(limit) => plan_volumes(&blobs, limit, fixed_for)?,
        None => (vec![Placement::Whole(1); blobs.len()], 1),
    };
    manifest.volumes = volumes;
    for ((rec, b), p) in manifest.blobs.iter_mut().zip(&blobs).zip(&placements) {
        match p {
            Placement::Whole(v) => rec.volume = *v,
            Placement::Split(parts) => {
                rec.volume = parts[0].volume;
                rec.parts = split::part_records(parts, &hash_parts(b, parts)?);
                manifest.format_minor = manifest.format_minor.max(1);
            }
        }
    }
    manifest
        .validate()
        .map_err(|e| BundleError::Plan(format!("internal: manifest does not validate: {e}")))?;

    let statement =
        serde_json::to_vec(&Statement::new(manifest.clone())).expect("statement serializes");
    let bundle_id = Sha256::digest(&statement);
    let envelope = Envelope::sign(PAYLOAD_TYPE, &statement, &opts.signers)
        .map_err(BundleError::Sign)?
        .to_json();

    fs::create_dir_all(&opts.out_dir)
        .map_err(BundleError::io(&opts.out_dir, "create output directory"))?;
    let mut written: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut out = Vec::new();
    let result = (|| {
        for n in 1..=volumes {
            let final_path = opts.out_dir.join(volume_file_name(
                &manifest.name,
                &manifest.version,
                n,
                volumes,
            ));
            if final_path.exists() {
                return Err(BundleError::Plan(format!(
                    "{} already exists; remove it or choose another --out",
                    final_path.display()
                )));
            }
            let tmp = opts.out_dir.join(format!(
                ".{}.partial-{}",
                final_path.file_name().unwrap().to_string_lossy(),
                std::process::id()
            ));
            written.push((tmp.clone(), final_path.clone()));
            let label = serde_json::to_vec(&VolumeLabel {
                bundle: bundle_id,
                volume: n,
                volumes,
            })
            .expect("label serializes");
            let mut entries = vec![
                Entry::bytes(ENTRY_MANIFEST, &envelope),
                Entry::bytes(ENTRY_VOLUME, &label),
                Entry::bytes(ENTRY_OCI_LAYOUT, OCI_LAYOUT_CONTENT),
                Entry::bytes(ENTRY_INDEX, &index_json),
            ];
            let mut count = 0;
            for ((b, rec), p) in blobs.iter().zip(&manifest.blobs).zip(&placements) {
                match p {
                    Placement::Whole(v) if *v == n => entries.push(Entry::Blob(b)),
                    Placement::Split(_) => match rec.parts.iter().position(|x| x.volume == n) {
                        Some(i) => entries.push(Entry::Part {
                            blob: b,
                            name: split::part_entry_name(&b.digest, i, rec.parts.len()),
                            part: &rec.parts[i],
                        }),
                        None => continue,
                    },
                    Placement::Whole(_) => continue,
                }
                count += 1;
            }
            let (size, tar_size) = write_volume(&tmp, &entries, opts)?;
            if let Some(limit) = opts.volume_size {
                if size > limit {
                    return Err(BundleError::Plan(format!(
                        "internal: volume {n} came out at {size} bytes, over the --volume-size of {limit} bytes (the worst-case estimate did not hold)"
                    )));
                }
            }
            out.push(PackedVolume {
                path: final_path,
                number: n,
                size,
                tar_size,
                blobs: count,
            });
        }
        for (tmp, fin) in &written {
            fs::rename(tmp, fin).map_err(BundleError::io(fin, "rename finished volume"))?;
        }
        sync_dir(&opts.out_dir);
        Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _) in &written {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    Ok(Packed {
        manifest,
        bundle_id,
        volumes: out,
    })
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

enum Entry<'a> {
    Bytes {
        name: &'static str,
        data: &'a [u8],
    },
    Blob(&'a PlannedBlob),
    /// One part of a split blob, named and checked by its own digest.
    Part {
        blob: &'a PlannedBlob,
        name: String,
        part: &'a PartRecord,
    },
}

/// Hashes the planned parts of a split blob (their digests go into the signed manifest, which
/// is written before any volume). Reads the blob once with a bounded buffer; when the blob's
/// bytes were not checked before (no stamp), also checks the whole digest on the way.
fn hash_parts(b: &PlannedBlob, parts: &[split::PartPlan]) -> Result<Vec<Digest>, BundleError> {
    let mut whole = Sha256::new();
    let mut out = Vec::with_capacity(parts.len());
    let mut buf = vec![0u8; 1 << 20];
    let (mut reader, path, check_whole): (Box<dyn Read>, PathBuf, bool) = match &b.data {
        BlobData::Bytes(data) => (
            Box::new(std::io::Cursor::new(data.clone())),
            PathBuf::from("(generated)"),
            true,
        ),
        BlobData::File {
            path,
            offset,
            stamp,
        } => {
            let mut f = File::open(path).map_err(BundleError::io(path, "open source"))?;
            f.seek(SeekFrom::Start(*offset))
                .map_err(BundleError::io(path, "seek source"))?;
            (Box::new(f.take(b.size)), path.clone(), stamp.is_none())
        }
    };
    for p in parts {
        let mut h = Sha256::new();
        let mut left = p.size;
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            reader
                .read_exact(&mut buf[..n])
                .map_err(BundleError::io(&path, "read source"))?;
            h.update(&buf[..n]);
            if check_whole {
                whole.update(&buf[..n]);
            }
            left -= n as u64;
        }
        out.push(h.finish());
    }
    if check_whole {
        let found = whole.finish();
        if found != b.digest {
            return Err(BundleError::Source {
                path,
                detail: format!("content hashes to {found}, expected {}", b.digest),
            });
        }
    }
    Ok(out)
}

impl<'a> Entry<'a> {
    fn bytes(name: &'static str, data: &'a [u8]) -> Self {
        Entry::Bytes { name, data }
    }
}

struct Job {
    seq: u64,
    entry: u32,
    buf: Vec<u8>,
}

struct Done {
    seq: u64,
    entry: u32,
    /// The frame was stored as raw blocks.
    store: bool,
    /// The input buffer, returned to the pool by the writer once the frame is written.
    buf: Vec<u8>,
    /// The compressed frame, or why compression failed.
    out: Result<Vec<u8>, String>,
}

/// Writes one volume file; returns (bytes on disk, tar bytes).
fn write_volume(
    path: &Path,
    entries: &[Entry<'_>],
    opts: &PackOptions<'_>,
) -> Result<(u64, u64), BundleError> {
    let threads = opts.threads.max(1);
    let level = opts.zstd_level;
    let compression = opts.compression;
    let file = File::create(path).map_err(BundleError::io(path, "create volume"))?;
    // Input buffers: the only ones the producer can fill. Each travels producer -> worker ->
    // writer -> pool, so this also bounds the writer's reorder map and the output buffers.
    let nbufs = threads * 4 + 4;
    std::thread::scope(|s| {
        let (job_tx, job_rx) = bounded::<Job>(threads * 3);
        let (done_tx, done_rx) = bounded::<Done>(nbufs);
        let (pool_tx, pool_rx) = bounded::<Vec<u8>>(nbufs);
        let (outpool_tx, outpool_rx) = bounded::<Vec<u8>>(nbufs);
        for _ in 0..nbufs {
            pool_tx
                .send(Vec::with_capacity(FRAME_DATA))
                .expect("pool has room");
        }
        let mut workers = Vec::new();
        for _ in 0..threads {
            let (job_rx, done_tx, outpool_rx) =
                (job_rx.clone(), done_tx.clone(), outpool_rx.clone());
            workers.push(s.spawn(move || -> Result<(), String> {
                let mut c = zstd::bulk::Compressor::new(level).map_err(|e| e.to_string())?;
                let mut probe = match compression {
                    Compression::Auto => Some(Probe::new().map_err(|e| e.to_string())?),
                    Compression::Always => None,
                };
                let bound = zstd::zstd_safe::compress_bound(FRAME_DATA);
                for job in job_rx {
                    let mut out = outpool_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(bound));
                    out.clear();
                    // A failure travels to the writer in sequence, which stops the pipeline; a
                    // worker that just returned would leave the writer waiting for this frame
                    // while holding every later buffer.
                    let store = probe
                        .as_mut()
                        .is_some_and(|p| !p.worth_compressing(&job.buf));
                    let out = if store {
                        write_stored_frame(&job.buf, &mut out);
                        Ok(out)
                    } else {
                        out.reserve(bound);
                        c.compress_to_buffer(&job.buf[..], &mut out)
                            .map(|_| out)
                            .map_err(|e| e.to_string())
                    };
                    if done_tx
                        .send(Done {
                            seq: job.seq,
                            entry: job.entry,
                            store,
                            buf: job.buf,
                            out,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(())
            }));
        }
        drop((job_rx, done_tx, outpool_rx));

        let progress = opts.progress;
        // The writer owns the only pool sender: when it stops, the producer's next wait for a
        // buffer fails instead of blocking.
        let writer = s.spawn(
            move || -> Result<(Vec<FrameRecord>, u64, u64, File), BundleError> {
                let mut file = file;
                let mut writeback = airlock_store::writeback::Writeback::new();
                let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
                let (mut next, mut coff, mut uoff) = (0u64, 0u64, 0u64);
                let mut records = Vec::new();
                for d in done_rx {
                    pending.insert(d.seq, d);
                    while let Some(mut d) = pending.remove(&next) {
                        let out = d.out.map_err(|e| BundleError::Io {
                            path: path.to_path_buf(),
                            op: "compress",
                            source: std::io::Error::other(e),
                        })?;
                        file.write_all(&out)
                            .map_err(BundleError::io(path, "write volume"))?;
                        writeback.wrote(&file, out.len() as u64);
                        let usize = d.buf.len() as u32;
                        records.push(FrameRecord {
                            coff,
                            csize: out.len() as u32,
                            uoff,
                            usize,
                            entry: d.entry,
                            stored: d.store,
                        });
                        coff += out.len() as u64;
                        uoff += usize as u64;
                        progress.advance(usize as u64);
                        d.buf.clear();
                        let _ = pool_tx.try_send(d.buf);
                        let _ = outpool_tx.try_send(out);
                        next += 1;
                    }
                }
                Ok((records, coff, uoff, file))
            },
        );

        // Producer: cut each entry's tar bytes into frames.
        let mut seq = 0u64;
        let mut produce = || -> Result<(), BundleError> {
            let mut frames = FrameCutter {
                seq: &mut seq,
                entry: 0,
                job_tx: &job_tx,
                pool_rx: &pool_rx,
                buf: None,
            };
            for (ei, entry) in entries.iter().enumerate() {
                frames.entry = ei as u32;
                match entry {
                    Entry::Bytes { name, data } => {
                        frames.push(&tarfmt::header(name, data.len() as u64))?;
                        frames.push(data)?;
                        frames.push(
                            &[0u8; tarfmt::BLOCK][..tarfmt::padding(data.len() as u64) as usize],
                        )?;
                    }
                    Entry::Blob(b) => {
                        frames.push(&tarfmt::header(&b.digest.layout_path(), b.size))?;
                        match &b.data {
                            BlobData::Bytes(data) => frames.push(data)?,
                            BlobData::File {
                                path,
                                offset,
                                stamp,
                            } => frames.push_file(path, *offset, b.size, &b.digest, *stamp)?,
                        }
                        frames.push(&[0u8; tarfmt::BLOCK][..tarfmt::padding(b.size) as usize])?;
                    }
                    Entry::Part { blob, name, part } => {
                        frames.push(&tarfmt::header(name, part.size))?;
                        match &blob.data {
                            BlobData::Bytes(data) => frames.push(
                                &data[part.offset as usize..(part.offset + part.size) as usize],
                            )?,
                            BlobData::File {
                                path,
                                offset,
                                stamp,
                            } => frames.push_file(
                                path,
                                offset + part.offset,
                                part.size,
                                &part.digest,
                                *stamp,
                            )?,
                        }
                        frames
                            .push(&[0u8; tarfmt::BLOCK][..tarfmt::padding(part.size) as usize])?;
                    }
                }
                frames.flush()?;
            }
            // End-of-archive marker: two zero blocks, its own entry.
            frames.entry = entries.len() as u32;
            frames.push(&[0u8; 2 * tarfmt::BLOCK])?;
            frames.flush()
        };
        let produced = produce();
        drop(job_tx);
        let mut worker_err = None;
        for w in workers {
            if let Err(e) = w.join().expect("compression worker panicked") {
                worker_err = Some(e);
            }
        }
        let written = writer.join().expect("writer panicked");
        // A stopped writer or worker is the cause when the producer only saw the pipeline stop.
        let (records, coff, uoff, mut file) = written?;
        if let Some(e) = worker_err {
            return Err(BundleError::Io {
                path: path.to_path_buf(),
                op: "compress",
                source: std::io::Error::other(e),
            });
        }
        produced?;
        let index = FrameIndex::encode(&records);
        file.write_all(&index)
            .and_then(|_| file.sync_all())
            .map_err(BundleError::io(path, "write volume"))?;
        Ok((coff + index.len() as u64, uoff))
    })
}

/// Accumulates tar bytes into frame-sized buffers and hands full ones to the workers.
struct FrameCutter<'a> {
    seq: &'a mut u64,
    entry: u32,
    job_tx: &'a crossbeam_channel::Sender<Job>,
    pool_rx: &'a crossbeam_channel::Receiver<Vec<u8>>,
    buf: Option<Vec<u8>>,
}

impl FrameCutter<'_> {
    fn stopped() -> BundleError {
        BundleError::Plan("volume writer stopped (see the error above)".into())
    }

    fn buffer(&mut self) -> Result<&mut Vec<u8>, BundleError> {
        if self.buf.is_none() {
            self.buf = Some(self.pool_rx.recv().map_err(|_| Self::stopped())?);
        }
        Ok(self.buf.as_mut().expect("just set"))
    }

    fn push(&mut self, mut data: &[u8]) -> Result<(), BundleError> {
        while !data.is_empty() {
            let buf = self.buffer()?;
            let n = (FRAME_DATA - buf.len()).min(data.len());
            buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if buf.len() == FRAME_DATA {
                self.send()?;
            }
        }
        Ok(())
    }

    fn push_file(
        &mut self,
        path: &Path,
        offset: u64,
        size: u64,
        digest: &Digest,
        stamp: Option<FileStamp>,
    ) -> Result<(), BundleError> {
        let mut f = File::open(path).map_err(BundleError::io(path, "open source"))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(BundleError::io(path, "seek source"))?;
        let mut hasher = stamp.is_none().then(Sha256::new);
        let mut left = size;
        while left > 0 {
            let buf = self.buffer()?;
            let start = buf.len();
            let n = ((FRAME_DATA - start) as u64).min(left) as usize;
            // read_to_end appends into spare capacity without zero-filling it first.
            let got = (&mut f)
                .take(n as u64)
                .read_to_end(buf)
                .map_err(BundleError::io(path, "read source"))?;
            if got != n {
                return Err(BundleError::Source {
                    path: path.to_path_buf(),
                    detail: "file became shorter while packing".into(),
                });
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[start..]);
            }
            left -= n as u64;
            if buf.len() == FRAME_DATA {
                self.send()?;
            }
        }
        match (hasher, stamp) {
            (Some(h), _) => {
                let found = h.finish();
                if found != *digest {
                    return Err(BundleError::Source {
                        path: path.to_path_buf(),
                        detail: format!("content hashes to {found}, expected {digest}"),
                    });
                }
            }
            (None, Some(stamp)) => {
                let now = f.metadata().map_err(BundleError::io(path, "stat source"))?;
                if FileStamp::of(&now) != stamp {
                    return Err(BundleError::Source {
                        path: path.to_path_buf(),
                        detail: "file changed while packing; pack again".into(),
                    });
                }
            }
            (None, None) => unreachable!(),
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), BundleError> {
        if self.buf.as_ref().is_some_and(|b| !b.is_empty()) {
            let buf = self.buf.take().expect("checked");
            self.job_tx
                .send(Job {
                    seq: *self.seq,
                    entry: self.entry,
                    buf,
                })
                .map_err(|_| Self::stopped())?;
            *self.seq += 1;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BundleError> {
        self.send()
    }
}
