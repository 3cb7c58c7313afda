//! Reading and verifying volumes.
//!
//! [`Volume::open`] reads only the metadata entries (bounded) and the frame index.
//! [`Volume::authenticate`] checks the signed manifest against a trust root.
//! [`Volume::read_blobs`] then walks every entry: it checks the tar header against the name and
//! size the signed manifest expects at that position (and that it is, byte for byte, the
//! canonical header of [`tarfmt::header`]), hashes the data, checks padding, and hands the bytes
//! to a [`BlobSink`], which commits a blob only after its digest matched.
//!
//! Entries are verified in parallel, one task per entry, frames read with `pread` at the offsets
//! of the frame index (which must tile the file exactly, see [`crate::frames`]). Anything the
//! manifest does not list is refused, so a volume can never smuggle a file past `tar -x`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use airlock_core::bundle::{BlobRecord, BundleManifest, Statement, VolumeItem, PAYLOAD_TYPE};
use airlock_core::time::{parse_rfc3339, UnixTime};
use airlock_core::{Digest, Sha256};
use airlock_trust::{Envelope, TrustRoot};
use rayon::prelude::*;

use crate::format::*;
use crate::frames::FrameIndex;
use crate::{tarfmt, BundleError, Progress};

/// Receives verified blobs. `begin` may return `None` to skip a blob the caller already holds.
pub trait BlobSink: Sync {
    type Writer: Write + Send;
    fn begin(&self, digest: &Digest, size: u64) -> std::io::Result<Option<Self::Writer>>;
    /// Called only after every byte written to `writer` hashed to the digest `begin` was given;
    /// `hashed` is the digest the reader computed over those bytes, so a sink whose store would
    /// otherwise hash them again can check it instead. Dropping a writer without commit must
    /// discard what it wrote.
    fn commit(&self, writer: Self::Writer, hashed: &Hashed) -> std::io::Result<()>;
    /// Like [`Self::begin`] for part `index` (0-based) of the split blob `blob`; its bytes are
    /// hashed against `blob.parts[index].digest`.
    fn begin_part(&self, blob: &BlobRecord, index: usize) -> std::io::Result<Option<Self::Writer>>;
    /// Called only after every byte of the part hashed to its recorded digest (`hashed`, as
    /// the reader computed it).
    fn commit_part(
        &self,
        writer: Self::Writer,
        blob: &BlobRecord,
        index: usize,
        hashed: &Hashed,
    ) -> std::io::Result<()>;
}

/// The SHA-256 the reader computed over every byte it gave a [`BlobSink`]'s writer. Only the
/// reader makes one, so a sink holding it knows the digest was computed, not copied from the
/// manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed(Digest);

impl Hashed {
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

/// A sink that keeps nothing: verification only.
pub struct VerifyOnly;
impl BlobSink for VerifyOnly {
    type Writer = std::io::Sink;
    fn begin(&self, _: &Digest, _: u64) -> std::io::Result<Option<std::io::Sink>> {
        Ok(Some(std::io::sink()))
    }
    fn commit(&self, _: std::io::Sink, _: &Hashed) -> std::io::Result<()> {
        Ok(())
    }
    fn begin_part(&self, _: &BlobRecord, _: usize) -> std::io::Result<Option<std::io::Sink>> {
        Ok(Some(std::io::sink()))
    }
    fn commit_part(
        &self,
        _: std::io::Sink,
        _: &BlobRecord,
        _: usize,
        _: &Hashed,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// A volume whose metadata entries have been read (but not yet trusted).
pub struct Volume {
    pub path: PathBuf,
    file: File,
    len: u64,
    pub envelope: Envelope,
    envelope_bytes: Vec<u8>,
    pub label: VolumeLabel,
    label_bytes: Vec<u8>,
    pub index_json: Vec<u8>,
    frames: FrameIndex,
}

/// The result of checking a volume's signed manifest.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub statement: Statement,
    /// SHA-256 of the signed statement: the identity of the bundle.
    pub bundle_id: Digest,
    /// Trusted key ids whose signatures verified.
    pub signers: Vec<String>,
}

impl Authenticated {
    pub fn manifest(&self) -> &BundleManifest {
        &self.statement.predicate
    }
}

/// What [`Volume::read_blobs`] did.
#[derive(Debug, Clone, Default)]
pub struct VolumeReport {
    /// Blobs verified and committed to the sink.
    pub verified: Vec<Digest>,
    /// Blobs the sink already held (structure checked, content not re-hashed).
    pub skipped: Vec<Digest>,
    /// Parts of split blobs verified and committed to the sink.
    pub parts_verified: Vec<PartId>,
    /// Parts the sink already held.
    pub parts_skipped: Vec<PartId>,
    /// Uncompressed tar bytes checked.
    pub bytes: u64,
}

/// Part `index` (0-based) of the split blob `blob`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartId {
    pub blob: Digest,
    pub index: usize,
}

struct Expect {
    name: String,
    size: u64,
    digest: Digest,
    kind: Kind,
}

/// What an expected entry is.
enum Kind {
    Meta,
    Blob,
    Part(BlobRecord, usize),
}

impl Volume {
    /// Opens a volume and reads its metadata entries with bounded reads.
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let file = File::open(path).map_err(BundleError::io(path, "open volume"))?;
        Self::from_file(path, file)
    }

    /// [`Volume::open`] on a file the caller already opened (and checked: the appliance opens
    /// volumes without following symbolic links); `path` names it in messages.
    pub fn from_file(path: &Path, file: File) -> Result<Self, BundleError> {
        let len = file
            .metadata()
            .map_err(BundleError::io(path, "stat volume"))?
            .len();
        let mut stream = Stream::new(path, &file)?;
        let envelope_bytes = stream.small_entry(ENTRY_MANIFEST, MAX_MANIFEST_ENTRY)?;
        let envelope = Envelope::parse(&envelope_bytes).map_err(|e| BundleError::Entry {
            volume: path.into(),
            entry: ENTRY_MANIFEST.into(),
            detail: e.to_string(),
        })?;
        let label_bytes = stream.small_entry(ENTRY_VOLUME, MAX_SMALL_ENTRY)?;
        let label: VolumeLabel =
            serde_json::from_slice(&label_bytes).map_err(|e| BundleError::Entry {
                volume: path.into(),
                entry: ENTRY_VOLUME.into(),
                detail: e.to_string(),
            })?;
        let layout = stream.small_entry(ENTRY_OCI_LAYOUT, MAX_SMALL_ENTRY)?;
        if layout != OCI_LAYOUT_CONTENT {
            return Err(BundleError::Entry {
                volume: path.into(),
                entry: ENTRY_OCI_LAYOUT.into(),
                detail: "unexpected content".into(),
            });
        }
        let index_json = stream.small_entry(ENTRY_INDEX, MAX_SMALL_ENTRY)?;
        // The frame index is part of format v1: without it the file was cut short (the index is
        // written last) or not written by a bundle writer; a damaged one means corrupt media.
        let damaged = |detail: String| BundleError::Truncated {
            volume: path.into(),
            detail: format!("frame index damaged: {detail}"),
        };
        let frames = FrameIndex::read(&file, len)
            .map_err(damaged)?
            .ok_or_else(|| BundleError::Truncated {
                volume: path.into(),
                detail:
                    "no frame index at the end of the file (cut short, or not written by airlock)"
                        .into(),
            })?;
        frames.check(MAX_FRAME).map_err(damaged)?;
        Ok(Volume {
            path: path.to_path_buf(),
            file,
            len,
            envelope,
            envelope_bytes,
            label,
            label_bytes,
            index_json,
            frames,
        })
    }

    /// Size of the volume file.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// The statement without checking any signature: for `inspect` of untrusted volumes.
    pub fn statement_unverified(&self) -> Result<(Statement, Digest), BundleError> {
        let payload = self
            .envelope
            .payload_unverified()
            .map_err(|e| BundleError::Entry {
                volume: self.path.clone(),
                entry: ENTRY_MANIFEST.into(),
                detail: e.to_string(),
            })?;
        let st = Statement::parse(&payload).map_err(|source| BundleError::Manifest {
            volume: self.path.clone(),
            source,
        })?;
        Ok((st, Sha256::digest(&payload)))
    }

    /// Verifies the signed manifest against `root` (threshold of distinct trusted signers), then
    /// the manifest's own structure, expiry (allowing `skew` seconds) and this volume's label.
    pub fn authenticate(
        &self,
        root: &TrustRoot,
        now: UnixTime,
        skew: i64,
    ) -> Result<Authenticated, BundleError> {
        let verified = root
            .verify_bundle(&self.envelope, PAYLOAD_TYPE)
            .map_err(|source| BundleError::Untrusted {
                volume: self.path.clone(),
                source,
            })?;
        let statement =
            Statement::parse(&verified.payload).map_err(|source| BundleError::Manifest {
                volume: self.path.clone(),
                source,
            })?;
        let bundle_id = Sha256::digest(&verified.payload);
        let m = &statement.predicate;
        if let Some(exp) = &m.expires {
            let t = parse_rfc3339(exp).map_err(|source| BundleError::Manifest {
                volume: self.path.clone(),
                source,
            })?;
            if t + skew <= now {
                return Err(BundleError::Expired {
                    volume: self.path.clone(),
                    expires: exp.clone(),
                });
            }
        }
        self.check_label(m, bundle_id)?;
        Ok(Authenticated {
            statement,
            bundle_id,
            signers: verified.signers,
        })
    }

    /// Checks the (unsigned) label and `index.json` against the signed manifest.
    pub fn check_label(&self, m: &BundleManifest, bundle_id: Digest) -> Result<(), BundleError> {
        let entry = |detail: String| BundleError::Entry {
            volume: self.path.clone(),
            entry: ENTRY_VOLUME.into(),
            detail,
        };
        if self.label.bundle != bundle_id {
            return Err(entry(format!(
                "label names bundle {} but the signed manifest is {bundle_id}",
                self.label.bundle
            )));
        }
        if self.label.volumes != m.volumes
            || self.label.volume == 0
            || self.label.volume > m.volumes
        {
            return Err(entry(format!(
                "label says volume {} of {}, manifest has {} volumes",
                self.label.volume, self.label.volumes, m.volumes
            )));
        }
        let found = Sha256::digest(&self.index_json);
        if found != m.index.digest || self.index_json.len() as u64 != m.index.size {
            return Err(BundleError::Entry {
                volume: self.path.clone(),
                entry: ENTRY_INDEX.into(),
                detail: format!(
                    "hashes to {found}, the signed manifest says {}",
                    m.index.digest
                ),
            });
        }
        Ok(())
    }

    fn expectations(&self, m: &BundleManifest) -> Vec<Expect> {
        let meta = |name: &str, bytes: &[u8]| Expect {
            name: name.to_string(),
            size: bytes.len() as u64,
            digest: Sha256::digest(bytes),
            kind: Kind::Meta,
        };
        let mut v = vec![
            meta(ENTRY_MANIFEST, &self.envelope_bytes),
            meta(ENTRY_VOLUME, &self.label_bytes),
            meta(ENTRY_OCI_LAYOUT, OCI_LAYOUT_CONTENT),
            meta(ENTRY_INDEX, &self.index_json),
        ];
        v.extend(m.items_of_volume(self.label.volume).map(|item| match item {
            VolumeItem::Whole(b) => Expect {
                name: b.digest.layout_path(),
                size: b.size,
                digest: b.digest,
                kind: Kind::Blob,
            },
            VolumeItem::Part(b, i) => Expect {
                name: crate::split::part_entry_name(&b.digest, i, b.parts.len()),
                size: b.parts[i].size,
                digest: b.parts[i].digest,
                kind: Kind::Part(b.clone(), i),
            },
        }));
        v
    }

    /// Verifies every entry of the volume against `m` (which the caller has authenticated) and
    /// streams blobs into `sink`.
    pub fn read_blobs<S: BlobSink>(
        &self,
        m: &BundleManifest,
        sink: &S,
        progress: &dyn Progress,
    ) -> Result<VolumeReport, BundleError> {
        let expect = self.expectations(m);
        let groups = self.frames.entries();
        self.check_headers(&groups, &expect)?;
        self.read_parallel(&self.frames, &groups, &expect, sink, progress)
    }

    /// Walks the entry headers in order (decoding only the first block of each entry) so that
    /// a foreign, unsafe, reordered, missing or extra entry is reported precisely and before
    /// any data is hashed or written. After those specific checks every header must equal, byte
    /// for byte, the canonical header the writer makes for that name and size, so no mode,
    /// owner, time, link name or device number can ride along to a later `tar -x`.
    fn check_headers(
        &self,
        groups: &[std::ops::Range<usize>],
        expect: &[Expect],
    ) -> Result<(), BundleError> {
        let last = groups.len() - 1;
        for (i, g) in groups.iter().enumerate() {
            let expected = expect.get(i).map(|e| e.name.as_str());
            let what = expected.unwrap_or("end of archive");
            let h = self.first_block(&self.frames.frames[g.start], what)?;
            if i == last {
                if let Some(name) = expected {
                    return Err(self.entry_err(
                        name,
                        &format!(
                            "volume ends after {i} entries; the signed manifest lists {} for volume {} (missing entry)",
                            expect.len(),
                            self.label.volume
                        ),
                    ));
                }
                continue;
            }
            if tarfmt::is_zero_block(&h) {
                return Err(
                    self.entry_err(what, "end-of-archive marker where this entry should start")
                );
            }
            let hd = tarfmt::parse(&h).map_err(|d| self.entry_err(what, &d))?;
            let Some(e) = expect.get(i) else {
                return Err(self.entry_err(
                    &hd.name,
                    "entry is not listed in the signed manifest for this volume (extra or duplicate entry)",
                ));
            };
            if hd.name != e.name {
                return Err(self.entry_err(
                    &e.name,
                    &format!(
                        "found entry {:?} where the signed manifest expects {:?} (foreign, reordered or duplicate entry)",
                        hd.name, e.name
                    ),
                ));
            }
            if hd.size != e.size {
                return Err(self.entry_err(
                    &e.name,
                    &format!("size {} but the signed manifest says {}", hd.size, e.size),
                ));
            }
            if h != tarfmt::header(&e.name, e.size) {
                return Err(self.entry_err(&e.name, tarfmt::NOT_CANONICAL));
            }
        }
        Ok(())
    }

    /// The first 512 bytes of the frame at `f`, decoded with a bounded window.
    fn first_block(
        &self,
        f: &crate::frames::FrameRecord,
        entry: &str,
    ) -> Result<[u8; tarfmt::BLOCK], BundleError> {
        struct At<'a>(&'a File, u64, u64);
        impl Read for At<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = (buf.len() as u64).min(self.2) as usize;
                let k = self.0.read_at(&mut buf[..n], self.1)?;
                self.1 += k as u64;
                self.2 -= k as u64;
                Ok(k)
            }
        }
        let damaged = |e: std::io::Error| BundleError::Truncated {
            volume: self.path.clone(),
            detail: format!("frame at byte {} ({entry:?}): {e}", f.coff),
        };
        let mut dec = zstd::stream::read::Decoder::new(At(&self.file, f.coff, f.csize as u64))
            .map_err(damaged)?;
        dec.window_log_max(MAX_WINDOW_LOG).map_err(damaged)?;
        let mut h = [0u8; tarfmt::BLOCK];
        dec.read_exact(&mut h).map_err(damaged)?;
        Ok(h)
    }

    fn read_parallel<S: BlobSink>(
        &self,
        ix: &FrameIndex,
        groups: &[std::ops::Range<usize>],
        expect: &[Expect],
        sink: &S,
        progress: &dyn Progress,
    ) -> Result<VolumeReport, BundleError> {
        // Largest entries first so that the last task to finish is a small one.
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(expect.get(i).map(|e| e.size).unwrap_or(0)));
        let results: Vec<(usize, Outcome)> = order
            .par_iter()
            .map(|&i| {
                let frames = &ix.frames[groups[i].clone()];
                let out = match expect.get(i) {
                    Some(e) => self.check_entry_frames(frames, e, sink, progress)?,
                    None => {
                        self.check_eof_frames(frames)?;
                        Outcome::Meta
                    }
                };
                Ok((i, out))
            })
            .collect::<Result<_, BundleError>>()?;
        let mut report = VolumeReport::default();
        let mut results = results;
        results.sort_by_key(|r| r.0);
        for (i, out) in results {
            if matches!(out, Outcome::Meta) {
                continue;
            }
            let part = match &expect[i].kind {
                Kind::Part(b, index) => Some(PartId {
                    blob: b.digest,
                    index: *index,
                }),
                _ => None,
            };
            match (out, part) {
                (Outcome::Verified, None) => report.verified.push(expect[i].digest),
                (Outcome::Skipped, None) => report.skipped.push(expect[i].digest),
                (Outcome::Verified, Some(p)) => report.parts_verified.push(p),
                (Outcome::Skipped, Some(p)) => report.parts_skipped.push(p),
                (Outcome::Meta, _) => {}
            }
        }
        report.bytes = ix.frames.iter().map(|f| f.usize as u64).sum();
        Ok(report)
    }

    fn frame_bytes(
        &self,
        f: &crate::frames::FrameRecord,
        comp: &mut Vec<u8>,
        out: &mut Vec<u8>,
        dctx: &mut zstd::bulk::Decompressor<'static>,
    ) -> Result<(), BundleError> {
        comp.resize(f.csize as usize, 0);
        self.file
            .read_exact_at(comp, f.coff)
            .map_err(|e| BundleError::Truncated {
                volume: self.path.clone(),
                detail: format!("reading frame at byte {}: {e}", f.coff),
            })?;
        out.resize(f.usize as usize, 0);
        let n = dctx
            .decompress_to_buffer(&comp[..], &mut out[..])
            .map_err(|e| BundleError::Truncated {
                volume: self.path.clone(),
                detail: format!(
                    "frame at byte {} does not decompress to its {} indexed bytes: {e}",
                    f.coff, f.usize
                ),
            })?;
        if n != f.usize as usize {
            return Err(BundleError::Truncated {
                volume: self.path.clone(),
                detail: format!(
                    "frame at byte {} holds {n} bytes, the index says {}",
                    f.coff, f.usize
                ),
            });
        }
        Ok(())
    }

    fn check_entry_frames<S: BlobSink>(
        &self,
        frames: &[crate::frames::FrameRecord],
        e: &Expect,
        sink: &S,
        progress: &dyn Progress,
    ) -> Result<Outcome, BundleError> {
        let mut dctx =
            zstd::bulk::Decompressor::new().map_err(BundleError::io(&self.path, "zstd"))?;
        let (mut comp, mut out) = (Vec::new(), Vec::new());
        let mut checker = EntryChecker::new(self, e, sink)?;
        for f in frames {
            self.frame_bytes(f, &mut comp, &mut out, &mut dctx)?;
            checker.feed(&out)?;
            progress.advance(f.usize as u64);
        }
        checker.finish()
    }

    fn check_eof_frames(&self, frames: &[crate::frames::FrameRecord]) -> Result<(), BundleError> {
        let mut dctx =
            zstd::bulk::Decompressor::new().map_err(BundleError::io(&self.path, "zstd"))?;
        let (mut comp, mut out) = (Vec::new(), Vec::new());
        let mut total = 0u64;
        for f in frames {
            self.frame_bytes(f, &mut comp, &mut out, &mut dctx)?;
            if !tarfmt::is_zero_block(&out) {
                return Err(self.entry_err("end of archive", "data after the last listed entry"));
            }
            total += out.len() as u64;
        }
        if total != 2 * tarfmt::BLOCK as u64 {
            return Err(self.entry_err(
                "end of archive",
                "end-of-archive marker is not two zero blocks",
            ));
        }
        Ok(())
    }

    fn entry_err(&self, entry: &str, detail: &str) -> BundleError {
        BundleError::Entry {
            volume: self.path.clone(),
            entry: entry.into(),
            detail: detail.into(),
        }
    }
}

enum Outcome {
    Verified,
    Skipped,
    Meta,
}

/// Checks one tar entry, fed in arbitrary slices: header (name and size as expected, then the
/// whole block equal to the canonical header), data (hashed, written to the sink), zero padding,
/// nothing more.
struct EntryChecker<'a, S: BlobSink> {
    vol: &'a Volume,
    e: &'a Expect,
    sink: &'a S,
    header: Vec<u8>,
    data_left: u64,
    pad_left: u64,
    hasher: Option<Sha256>,
    writer: Option<S::Writer>,
    skip: bool,
}

impl<'a, S: BlobSink> EntryChecker<'a, S> {
    fn new(vol: &'a Volume, e: &'a Expect, sink: &'a S) -> Result<Self, BundleError> {
        let begun = match &e.kind {
            Kind::Meta => Ok(None),
            Kind::Blob => sink.begin(&e.digest, e.size).map(Some),
            Kind::Part(b, i) => sink.begin_part(b, *i).map(Some),
        };
        let (writer, skip) = match begun {
            Ok(None) => (None, false),
            Ok(Some(Some(w))) => (Some(w), false),
            Ok(Some(None)) => (None, true),
            Err(source) => {
                return Err(BundleError::Sink {
                    digest: e.digest,
                    source,
                })
            }
        };
        Ok(EntryChecker {
            vol,
            e,
            sink,
            header: Vec::with_capacity(tarfmt::BLOCK),
            data_left: e.size,
            pad_left: tarfmt::padding(e.size),
            hasher: (!skip).then(Sha256::new),
            writer,
            skip,
        })
    }

    fn err(&self, detail: String) -> BundleError {
        BundleError::Entry {
            volume: self.vol.path.clone(),
            entry: self.e.name.clone(),
            detail,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), BundleError> {
        if self.header.len() < tarfmt::BLOCK {
            let n = (tarfmt::BLOCK - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() == tarfmt::BLOCK {
                let h: &[u8; tarfmt::BLOCK] = self.header[..].try_into().expect("one block");
                if tarfmt::is_zero_block(h) {
                    return Err(self.err("volume ends before this entry (end-of-archive marker found); truncated or cut short".into()));
                }
                let hd = tarfmt::parse(h).map_err(|d| self.err(d))?;
                if hd.name != self.e.name {
                    return Err(self.err(format!(
                        "found entry {:?} where the signed manifest expects {:?} (foreign, reordered or duplicate entry)",
                        hd.name, self.e.name
                    )));
                }
                if hd.size != self.e.size {
                    return Err(self.err(format!(
                        "size {} but the signed manifest says {}",
                        hd.size, self.e.size
                    )));
                }
                if *h != tarfmt::header(&self.e.name, self.e.size) {
                    return Err(self.err(tarfmt::NOT_CANONICAL.into()));
                }
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let n = (self.data_left.min(bytes.len() as u64)) as usize;
        if n > 0 {
            let data = &bytes[..n];
            if let Some(h) = self.hasher.as_mut() {
                h.update(data);
            }
            if let Some(w) = self.writer.as_mut() {
                w.write_all(data).map_err(|source| BundleError::Sink {
                    digest: self.e.digest,
                    source,
                })?;
            }
            self.data_left -= n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let p = (self.pad_left.min(bytes.len() as u64)) as usize;
        if !bytes[..p].iter().all(|&b| b == 0) {
            return Err(self.err("non-zero padding after the data".into()));
        }
        self.pad_left -= p as u64;
        if bytes.len() > p {
            return Err(self.err("frame holds bytes beyond the end of this entry".into()));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Outcome, BundleError> {
        if self.header.len() < tarfmt::BLOCK || self.data_left > 0 || self.pad_left > 0 {
            return Err(self.err("entry is cut short".into()));
        }
        if self.skip {
            return Ok(Outcome::Skipped);
        }
        let found = self.hasher.take().expect("hashing").finish();
        if found != self.e.digest {
            return Err(match &self.e.kind {
                Kind::Blob => BundleError::DigestMismatch {
                    volume: self.vol.path.clone(),
                    digest: self.e.digest,
                    found,
                },
                Kind::Part(b, i) => BundleError::PartDigestMismatch {
                    volume: self.vol.path.clone(),
                    digest: b.digest,
                    part: *i as u32 + 1,
                    parts: b.parts.len() as u32,
                    found,
                },
                Kind::Meta => self.err(format!(
                    "content differs from the copy read first ({found})"
                )),
            });
        }
        let Some(w) = self.writer.take() else {
            return Ok(Outcome::Meta);
        };
        let hashed = Hashed(found);
        let committed = match &self.e.kind {
            Kind::Part(b, i) => self.sink.commit_part(w, b, *i, &hashed),
            _ => self.sink.commit(w, &hashed),
        };
        committed.map_err(|source| BundleError::Sink {
            digest: self.e.digest,
            source,
        })?;
        Ok(Outcome::Verified)
    }
}

/// Sequential access through a streaming decoder with a bounded window.
struct Stream<'a> {
    path: &'a Path,
    dec: zstd::stream::read::Decoder<'static, BufReader<&'a File>>,
}

impl<'a> Stream<'a> {
    fn new(path: &'a Path, mut file: &'a File) -> Result<Self, BundleError> {
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(BundleError::io(path, "seek volume"))?;
        let mut dec =
            zstd::stream::read::Decoder::new(file).map_err(BundleError::io(path, "zstd"))?;
        dec.window_log_max(MAX_WINDOW_LOG)
            .map_err(BundleError::io(path, "zstd"))?;
        Ok(Stream { path, dec })
    }

    fn read_exact(&mut self, buf: &mut [u8], entry: &str) -> Result<(), BundleError> {
        self.dec
            .read_exact(buf)
            .map_err(|e| BundleError::Truncated {
                volume: self.path.to_path_buf(),
                detail: format!("while reading {entry:?}: {e}"),
            })
    }

    /// Reads the next entry, which must be `name` and at most `max` bytes.
    fn small_entry(&mut self, name: &str, max: u64) -> Result<Vec<u8>, BundleError> {
        let mut h = [0u8; tarfmt::BLOCK];
        self.read_exact(&mut h, name).map_err(|e| match e {
            BundleError::Truncated { detail, .. } if name == ENTRY_MANIFEST => {
                BundleError::NotAVolume {
                    volume: self.path.to_path_buf(),
                    detail,
                }
            }
            e => e,
        })?;
        let err = |detail: String| BundleError::Entry {
            volume: self.path.to_path_buf(),
            entry: name.into(),
            detail,
        };
        if tarfmt::is_zero_block(&h) {
            return Err(err("volume ends before this entry".into()));
        }
        let hd = tarfmt::parse(&h).map_err(err)?;
        if hd.name != name {
            return Err(err(format!(
                "found entry {:?} first; expected {name:?}",
                hd.name
            )));
        }
        if hd.size > max {
            return Err(err(format!(
                "{} bytes exceeds the {max}-byte limit",
                hd.size
            )));
        }
        let mut data = vec![0u8; hd.size as usize];
        self.read_exact(&mut data, name)?;
        let mut pad = vec![0u8; tarfmt::padding(hd.size) as usize];
        self.read_exact(&mut pad, name)?;
        if !pad.iter().all(|&b| b == 0) {
            return Err(err("non-zero padding".into()));
        }
        Ok(data)
    }
}

/// Blobs and parts of split blobs verified so far, over several volumes.
#[derive(Debug, Clone, Default)]
pub struct Present {
    pub blobs: BTreeSet<Digest>,
    pub parts: BTreeSet<PartId>,
}

impl Present {
    /// Adds what one volume verified or already held.
    pub fn add(&mut self, r: &VolumeReport) {
        self.blobs
            .extend(r.verified.iter().chain(&r.skipped).copied());
        self.parts
            .extend(r.parts_verified.iter().chain(&r.parts_skipped).copied());
    }
}

/// A blob, or a part of a split blob, that no given volume carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub digest: Digest,
    /// The volume that carries it.
    pub volume: u32,
    /// For a part: its 1-based number and the blob's part count.
    pub part: Option<(usize, usize)>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.part {
            Some((i, n)) => write!(
                f,
                "{} part {i} of {n} (volume {})",
                self.digest, self.volume
            ),
            None => write!(f, "{} (volume {})", self.digest, self.volume),
        }
    }
}

/// Reports the blobs, and the parts of split blobs, that no given volume carried.
pub fn missing(m: &BundleManifest, present: &Present) -> Vec<Missing> {
    let mut out = Vec::new();
    for b in &m.blobs {
        if !b.is_split() {
            if !present.blobs.contains(&b.digest) {
                out.push(Missing {
                    digest: b.digest,
                    volume: b.volume,
                    part: None,
                });
            }
            continue;
        }
        for (i, p) in b.parts.iter().enumerate() {
            let id = PartId {
                blob: b.digest,
                index: i,
            };
            if !present.parts.contains(&id) {
                out.push(Missing {
                    digest: b.digest,
                    volume: p.volume,
                    part: Some((i + 1, b.parts.len())),
                });
            }
        }
    }
    out
}
