//! airlock-bundle: writing and reading bundle volumes.
//!
//! A volume is a POSIX tar stream, compressed as a sequence of independent zstd frames, each
//! frame holding a slice of exactly one tar entry, followed by a zstd *skippable* frame with an
//! index of all frames. Plain `zstd -d | tar -x` reads it (skippable frames decode to nothing);
//! airlock uses the index to verify entries on all cores and to seek to any blob.
//!
//! Entry order (see `docs/bundle-format.md`): the signed manifest ([`format::ENTRY_MANIFEST`],
//! a DSSE envelope), the volume label, `oci-layout`, `index.json`, then `blobs/sha256/<hex>` for
//! the blobs assigned to this volume, in manifest order, then the tar end-of-archive marker.
//!
//! * [`writer::pack`] — signs a manifest and writes the volumes, compressing frames in parallel.
//! * [`reader::Volume`] — opens a volume, reads its signed manifest (bounded), and
//!   [`reader::Volume::read_blobs`] streams every blob through a [`reader::BlobSink`] after
//!   checking the tar structure entry by entry: only names, sizes and digests that the signed
//!   manifest lists are accepted, so nothing unhashed can ever reach a disk.
//! * [`split`] — blobs larger than a volume: planning their parts, checking the whole digest
//!   while verifying, assembling staged parts.

pub mod error;
pub mod format;
pub mod frames;
pub mod reader;
pub mod set;
pub mod split;
pub mod tarfmt;
pub mod writer;

pub use error::BundleError;

/// Progress callbacks for long operations; the binaries draw bars, libraries stay silent.
pub trait Progress: Sync {
    /// `n` more uncompressed bytes processed.
    fn advance(&self, _n: u64) {}
}

/// A [`Progress`] that does nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
