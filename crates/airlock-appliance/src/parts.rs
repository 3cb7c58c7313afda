//! Parts of split blobs, kept across volumes and restarts until the blob is complete.
//!
//! A blob larger than a volume arrives as parts in several volumes, imported in any order, in
//! separate runs, possibly with crashes between them. Each part is verified against its own
//! signed digest by the volume reader and then kept in `DATA/staging-parts/<blob hex>/`, a
//! small blob store holding the parts of one blob by their part digests (written to a temp file,
//! hashed, fsynced, renamed: a kill at any instant leaves either the whole part or a temp file,
//! which the next write to that directory removes). `DATA/staging/` is cleared at every start;
//! this directory is not, which is what lets parts survive restarts.
//!
//! An appliance whose blobs live in an object store keeps the parts in the same bucket, under
//! `PREFIX/staging-parts/<blob hex>/blobs/sha256/<part hex>`: a part is uploaded only after it
//! verified (as any blob of that store), so the writer's disk holds no more than one part in
//! flight, and a replacement writer machine finds the parts another one staged.
//!
//! When the volume that brings a blob's last missing part has verified, [`finish_volume`]
//! streams the parts in order into a store writer (one 1 MiB buffer, whatever the blob's size),
//! which hashes them: only a whole digest equal to the signed one is renamed into
//! `DATA/blobs/`, and only then are the parts deleted. Artifacts referencing the blob become
//! visible through the ordinary closure check once it is in the store. A crash during assembly
//! leaves the parts; importing the same volume again (it was not recorded) finishes the job.

use std::fs;
use std::path::{Path, PathBuf};

use airlock_core::bundle::{BlobRecord, BundleManifest};
use airlock_core::Digest;
use airlock_store::{BlobStore, BlobWriter};

use crate::remote::Remote;
use crate::ApplianceError;

/// Name of the directory under `DATA/`.
pub const DIR: &str = "staging-parts";

/// Why assembling a split blob failed.
pub(crate) enum AssembleError {
    /// Every staged part matches its signed digest, yet together they do not hash to the
    /// signed whole digest: the bundle is inconsistent.
    Inconsistent(String),
    /// The appliance failed (I/O), or a staged part was damaged on disk (it was removed, so
    /// importing its volume again brings it back).
    Appliance(ApplianceError),
}

impl From<ApplianceError> for AssembleError {
    fn from(e: ApplianceError) -> Self {
        AssembleError::Appliance(e)
    }
}

impl From<airlock_store::StoreError> for AssembleError {
    fn from(e: airlock_store::StoreError) -> Self {
        AssembleError::Appliance(e.into())
    }
}

/// `DATA/staging-parts/`, or `staging-parts/` in the object store.
pub(crate) struct PartStaging {
    root: PathBuf,
    remote: Option<Remote>,
}

impl PartStaging {
    pub(crate) fn new(data: &Path, remote: Option<&Remote>) -> Self {
        PartStaging {
            root: data.join(DIR),
            remote: remote.cloned(),
        }
    }

    fn dir(&self, blob: &Digest) -> PathBuf {
        self.root.join(blob.hex())
    }

    fn rel(blob: &Digest) -> String {
        format!("{DIR}/{}", blob.hex())
    }

    /// Where the parts of `blob` are kept, for messages.
    fn shown(&self, blob: &Digest) -> PathBuf {
        match &self.remote {
            Some(r) => PathBuf::from(r.object_url(&Self::rel(blob))),
            None => self.dir(blob),
        }
    }

    /// The store keeping the parts of `b`, if any were kept.
    fn store(&self, b: &BlobRecord) -> Option<BlobStore> {
        match &self.remote {
            Some(r) => r.sub_store(&Self::rel(&b.digest)).ok(),
            None => BlobStore::open_existing(&self.dir(&b.digest)).ok(),
        }
    }

    /// The store for the parts of `b`, created when missing.
    fn open(&self, b: &BlobRecord) -> Result<BlobStore, ApplianceError> {
        match &self.remote {
            Some(r) => r.sub_store(&Self::rel(&b.digest)),
            None => Ok(BlobStore::open(&self.dir(&b.digest))?),
        }
    }

    /// Removes every kept part of `b`.
    fn remove_all(&self, b: &BlobRecord, parts: &BlobStore) -> Result<(), ApplianceError> {
        if self.remote.is_some() {
            for p in &b.parts {
                parts.remove(&p.digest)?;
            }
            return Ok(());
        }
        fs::remove_dir_all(self.dir(&b.digest))
            .map_err(crate::io(&self.dir(&b.digest), "remove assembled parts"))
    }

    /// Is part `i` of `b` kept (its content was verified when it was written)?
    pub(crate) fn has(&self, b: &BlobRecord, i: usize) -> bool {
        self.store(b)
            .is_some_and(|s| s.contains(&b.parts[i].digest, b.parts[i].size))
    }

    /// A writer for a part of `b` whose bytes the bundle reader hashes (see
    /// [`BlobStore::writer_hashed_by_caller`]); commit it with the part's digest. Removes temp
    /// files an interrupted writer left in that blob's directory.
    pub(crate) fn writer(&self, b: &BlobRecord) -> Result<BlobWriter, ApplianceError> {
        let store = self.open(b)?;
        store.clean_temp()?;
        Ok(store.writer_hashed_by_caller()?)
    }

    /// Removes part `i` of `b` (a volume that brought it was refused after all).
    pub(crate) fn remove(&self, b: &BlobRecord, i: usize) {
        if let Some(s) = self.store(b) {
            let _ = s.remove(&b.parts[i].digest);
        }
    }

    fn complete(&self, b: &BlobRecord) -> bool {
        (0..b.parts.len()).all(|i| self.has(b, i))
    }

    /// Streams the parts of `b` into `store`, which commits the blob only if the whole digest
    /// and size match; then deletes the parts.
    fn assemble(&self, b: &BlobRecord, store: &BlobStore) -> Result<(), AssembleError> {
        let parts = self.open(b)?;
        let mut w = store.writer()?;
        airlock_bundle::split::assemble(
            b,
            |i| {
                parts
                    .read(&b.parts[i].digest)
                    .map_err(std::io::Error::other)
            },
            &mut w,
        )
        .map_err(crate::io(&self.shown(&b.digest), "assemble split blob"))?;
        match w.commit(&b.digest, Some(b.size)) {
            Ok(_) => {}
            Err(airlock_store::StoreError::DigestMismatch { found, .. }) => {
                return Err(self.mismatch(b, &parts, found));
            }
            Err(e) => return Err(e.into()),
        }
        store.sync()?;
        Ok(self.remove_all(b, &parts)?)
    }

    /// After a whole-digest mismatch: re-hash every staged part, remove the damaged ones.
    fn mismatch(&self, b: &BlobRecord, parts: &BlobStore, found: Digest) -> AssembleError {
        let mut damaged = Vec::new();
        for (i, p) in b.parts.iter().enumerate() {
            if !matches!(parts.rehash(&p.digest), Ok((d, n)) if d == p.digest && n == p.size) {
                let _ = parts.remove(&p.digest);
                damaged.push((i + 1).to_string());
            }
        }
        if damaged.is_empty() {
            let _ = self.remove_all(b, parts);
            return AssembleError::Inconsistent(format!(
                "split blob {}: every part matches its signed digest, but together they hash to {found}",
                b.digest
            ));
        }
        AssembleError::Appliance(ApplianceError::Usage(format!(
            "split blob {}: staged part(s) {} of {} were damaged on disk and removed; import the volumes that carry them again",
            b.digest,
            damaged.join(", "),
            b.parts.len()
        )))
    }
}

/// After volume `volume` of `m` verified and its whole blobs reached `store`: assembles every
/// split blob with a part in this volume whose parts are now all kept. Returns the split blobs
/// of this volume that are in the store (to record in the catalog with the volume).
pub(crate) fn finish_volume(
    staging: &PartStaging,
    store: &BlobStore,
    m: &BundleManifest,
    volume: u32,
) -> Result<Vec<(Digest, u64)>, AssembleError> {
    let mut done = Vec::new();
    for b in m.split_blobs_of_volume(volume) {
        if !store.contains(&b.digest, b.size) && staging.complete(b) {
            staging.assemble(b, store)?;
            tracing::info!(blob = %b.digest, parts = b.parts.len(), "split blob assembled");
        }
        if store.contains(&b.digest, b.size) {
            done.push((b.digest, b.size));
        }
    }
    Ok(done)
}
