//! `airlock sync`: mirror the registry images of an input manifest into the local store.
//!
//! The store is an OCI image layout ([`airlock_store::BlobStore`]) plus one record per image in
//! `STORE/images/<sha256 of the reference>.json` ([`ImageRecord`]): the reference as written, the
//! registry, the resolved root digest, the platforms kept and left out, the signatures and
//! attestations that came along, and the retrieval time. `airlock pack` resolves registry
//! references from these records ([`crate::plan`]), and `STORE/index.json` is rebuilt from them
//! after every sync so skopeo, umoci and oras read the store as a layout.
//!
//! How a sync runs:
//! 1. **Resolve** the images, [`SyncOptions::jobs`] at a time: the root manifest or
//!    index by tag (a `HEAD` first, so an unchanged tag costs no body) or by digest (no request
//!    at all when the store holds it), then its children filtered by platform. Every manifest is
//!    digest-checked and written to the store at once. Signatures come along: the referrers API
//!    when the registry has it, and the `sha256-<hex>.sig`/`.att` (and referrers tag schema
//!    `sha256-<hex>`) tags, each probed with one `HEAD`.
//! 2. **Download** the union of missing config and layer blobs, deduplicated across images, on
//!    a bounded pool of threads ([`SyncOptions::jobs`]), largest first; each resumes from its
//!    partial file in `STORE/partial/` and is retried with backoff on transient errors.
//! 3. **Record** every image whose closure is complete; a failed image is reported with its
//!    error and the others are kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use airlock_bundle::Progress;
use airlock_core::manifest::{ImageSource, InputManifest};
use airlock_core::media;
use airlock_core::oci::{Descriptor, Index, Manifest, MAX_MANIFEST_BYTES};
use airlock_core::reference::ImageRef;
use airlock_core::{Digest, Sha256};
use airlock_store::BlobStore;
use serde::{Deserialize, Serialize};

use crate::registry::{Client, Fetched};
use crate::MirrorError;

/// Per-image record kept in `STORE/images/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The reference as the manifest wrote it (normalized: `HOST/REPO[:TAG][@DIGEST]`).
    pub reference: String,
    pub registry: String,
    pub repository: String,
    /// The root object (index or manifest) the reference resolved to.
    pub root: Descriptor,
    /// The platform filter in force when synced (`None`: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms_omitted: Vec<String>,
    /// Signatures and attestations found for the root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureRecord>,
    /// RFC 3339 time of the sync that resolved it.
    pub retrieved: String,
}

/// A signature or attestation that travels with an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureRecord {
    /// The tag it was found under (`sha256-<hex>.sig`), or `None` when found by the referrers API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub root: Descriptor,
}

/// What to mirror and how.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Parallel blob downloads.
    pub jobs: usize,
    /// Refuse an image with no signature or attestation.
    pub require_signature: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            jobs: 8,
            require_signature: false,
        }
    }
}

/// One image to mirror.
#[derive(Debug, Clone)]
pub struct SyncImage {
    pub reference: ImageRef,
    pub platforms: Option<Vec<String>>,
}

/// The outcome of one image.
#[derive(Debug)]
pub struct ImageOutcome {
    pub reference: String,
    pub result: Result<ImageRecord, MirrorError>,
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub images: Vec<ImageOutcome>,
    /// Blobs downloaded (or resumed) in this run, and their bytes transferred.
    pub blobs_downloaded: usize,
    pub bytes_downloaded: u64,
    /// Blobs the store already held.
    pub blobs_present: usize,
    /// Manifests and indexes fetched with a body.
    pub manifests_fetched: usize,
}

impl SyncReport {
    pub fn failed(&self) -> usize {
        self.images.iter().filter(|i| i.result.is_err()).count()
    }
}

/// The registry images of an input manifest.
pub fn registry_images(m: &InputManifest) -> Vec<SyncImage> {
    m.spec
        .images
        .iter()
        .filter_map(|i| match i.source(Path::new(".")) {
            Ok(ImageSource::Registry(r)) => Some(SyncImage {
                reference: r,
                platforms: i.platforms.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Where the record of `reference` lives.
pub fn record_path(store: &Path, reference: &ImageRef) -> PathBuf {
    store.join("images").join(format!(
        "{}.json",
        Sha256::digest(reference.to_string().as_bytes()).hex()
    ))
}

/// Reads the record of `reference`, if it was synced.
pub fn load_record(store: &Path, reference: &ImageRef) -> Result<Option<ImageRecord>, MirrorError> {
    let p = record_path(store, reference);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MirrorError::io(&p, "read image record")(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| MirrorError::Invalid(format!("{}: {e}", p.display())))
}

/// Is `img` synced with its whole closure (for its platform filter) present in the store?
pub fn is_complete(store: &BlobStore, img: &SyncImage) -> Result<bool, MirrorError> {
    let Some(rec) = load_record(crate::store_dir(store)?, &img.reference)? else {
        return Ok(false);
    };
    if rec.platforms != img.platforms {
        return Ok(false);
    }
    let mut need = Vec::new();
    let mut seen = BTreeSet::new();
    let mut omitted = Vec::new();
    if closure_from_store(
        store,
        &rec.root,
        img.platforms.as_deref(),
        &mut need,
        &mut seen,
        &mut omitted,
        0,
    )
    .is_err()
    {
        return Ok(false);
    }
    Ok(need.iter().all(|d| store.contains(&d.digest, d.size)))
}

/// Mirrors `images` into the store at `store_root`.
pub fn sync(
    store_root: &Path,
    images: &[SyncImage],
    client: &Client,
    opts: &SyncOptions,
    progress: &dyn Fn(u64, usize) -> Box<dyn Progress>,
) -> Result<SyncReport, MirrorError> {
    let store = BlobStore::open(store_root).map_err(|source| MirrorError::Store {
        what: format!("store {}", store_root.display()),
        source,
    })?;
    let _lock = StoreLock::acquire(store_root)?;
    let partial_dir = store_root.join("partial");
    std::fs::create_dir_all(&partial_dir).map_err(MirrorError::io(&partial_dir, "create"))?;
    std::fs::create_dir_all(store_root.join("images"))
        .map_err(MirrorError::io(store_root.join("images"), "create"))?;
    let retrieved = airlock_core::time::format_rfc3339(airlock_core::time::now());
    let mut report = SyncReport::default();

    // 1. Resolve every image; remember which blobs each needs.
    struct Pending {
        reference: ImageRef,
        record: ImageRecord,
        blobs: Vec<Descriptor>,
    }
    let mut pending: Vec<Pending> = Vec::new();
    let mut failed: Vec<(String, MirrorError)> = Vec::new();
    // Images resolve in parallel too (a few small requests each, latency-bound on a WAN);
    // results are taken in manifest order.
    let resolved: Vec<Mutex<Option<(Resolved, usize)>>> =
        images.iter().map(|_| Mutex::new(None)).collect();
    let next_image = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, 64).min(images.len().max(1)) {
            s.spawn(|| loop {
                let i = next_image.fetch_add(1, Ordering::Relaxed);
                let Some(img) = images.get(i) else { break };
                let mut fetched = 0usize;
                let r = resolve_image(&store, client, img, &retrieved, opts, &mut fetched);
                *resolved[i].lock().expect("resolved") = Some((r, fetched));
            });
        }
    });
    for (img, slot) in images.iter().zip(resolved) {
        let name = img.reference.to_string();
        let (r, fetched) = slot
            .into_inner()
            .expect("resolved")
            .expect("every image was resolved");
        report.manifests_fetched += fetched;
        match r {
            Ok((record, blobs)) => pending.push(Pending {
                reference: img.reference.clone(),
                record,
                blobs,
            }),
            Err(e) => {
                tracing::error!(image = %name, "{e}");
                failed.push((name, e));
            }
        }
    }

    // 2. Download the union of missing blobs, in parallel.
    let mut wanted: BTreeMap<Digest, (Descriptor, ImageRef)> = BTreeMap::new();
    for p in &pending {
        for d in &p.blobs {
            wanted
                .entry(d.digest)
                .or_insert_with(|| (d.clone(), p.reference.clone()));
        }
    }
    let mut jobs: Vec<(Descriptor, ImageRef)> = Vec::new();
    for (_, (d, r)) in wanted {
        if store.contains(&d.digest, d.size) {
            report.blobs_present += 1;
        } else {
            jobs.push((d, r));
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.0.size));
    let progress = progress(jobs.iter().map(|j| j.0.size).sum(), jobs.len());
    let progress = progress.as_ref();
    let blob_errors: Mutex<HashMap<Digest, MirrorError>> = Mutex::new(HashMap::new());
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let count = AtomicUsize::new(0);
    let workers = opts.jobs.clamp(1, 64).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((d, r)) = jobs.get(i) else { break };
                let partial = partial_dir.join(d.digest.hex());
                let res = client
                    .retry(&format!("blob {}", d.digest), || {
                        client.blob_to(r, d, &partial, progress)
                    })
                    .and_then(|n| {
                        store
                            .adopt_file(&partial, &d.digest)
                            .map(|_| n)
                            .map_err(|source| MirrorError::Store {
                                what: format!("blob {}", d.digest),
                                source,
                            })
                    });
                match res {
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(blob = %d.digest, bytes = n, "downloaded");
                    }
                    Err(e) => {
                        tracing::error!(blob = %d.digest, "{e}");
                        blob_errors.lock().expect("errors").insert(d.digest, e);
                    }
                }
            });
        }
    });
    store.sync().map_err(|source| MirrorError::Store {
        what: "sync store".into(),
        source,
    })?;
    report.blobs_downloaded = count.into_inner();
    report.bytes_downloaded = bytes.into_inner();
    let mut blob_errors = blob_errors.into_inner().expect("errors");

    // 3. Record the images whose closure is complete.
    for p in pending {
        let name = p.reference.to_string();
        let err = p
            .blobs
            .iter()
            .find_map(|d| blob_errors.remove(&d.digest).map(|e| (d.digest, e)));
        let missing = p.blobs.iter().find(|d| !store.contains(&d.digest, d.size));
        let result = match (err, missing) {
            (Some((_, e)), _) => Err(e),
            (None, Some(d)) => Err(MirrorError::Invalid(format!(
                "blob {} is missing after the download (shared with a failed image)",
                d.digest
            ))),
            (None, None) => write_record(store_root, &p.reference, &p.record).map(|_| p.record),
        };
        report.images.push(ImageOutcome {
            reference: name,
            result,
        });
    }
    for (name, e) in failed {
        report.images.push(ImageOutcome {
            reference: name,
            result: Err(e),
        });
    }
    write_store_index(store_root)?;
    Ok(report)
}

/// One sync at a time per store: two would download into the same partial files. The lock is
/// an exclusive `flock` on `STORE/sync.lock`, which the kernel releases when its holder exits,
/// crash or not; the holder writes its PID into the file so that a refused sync can name it.
struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    fn acquire(store_root: &Path) -> Result<StoreLock, MirrorError> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let p = store_root.join("sync.lock");
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&p)
            .map_err(MirrorError::io(&p, "open lock"))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = (&f).take(64).read_to_string(&mut owner);
                let owner = airlock_core::text::escape(owner.trim());
                return Err(MirrorError::Invalid(format!(
                    "{}: another sync (pid {owner}) is using this store",
                    store_root.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(MirrorError::io(&p, "lock")(e));
            }
        }
        f.set_len(0)
            .and_then(|_| f.rewind())
            .and_then(|_| write!(f, "{}", std::process::id()))
            .map_err(MirrorError::io(&p, "write lock"))?;
        Ok(StoreLock { _file: f })
    }
}

fn write_record(store_root: &Path, r: &ImageRef, rec: &ImageRecord) -> Result<(), MirrorError> {
    let p = record_path(store_root, r);
    let bytes = serde_json::to_vec_pretty(rec).expect("record serializes");
    airlock_store::write_atomic(&p, &bytes).map_err(|source| MirrorError::Store {
        what: format!("image record {r}"),
        source,
    })
}

/// Rebuilds `STORE/index.json` from the image records, so the store reads as an OCI layout.
pub fn write_store_index(store_root: &Path) -> Result<(), MirrorError> {
    let dir = store_root.join("images");
    let mut manifests = Vec::new();
    let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    entries.sort();
    for p in entries {
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        let Ok(rec) = serde_json::from_slice::<ImageRecord>(&bytes) else {
            tracing::warn!(file = %p.display(), "not an image record, skipped");
            continue;
        };
        let mut d = rec.root.clone();
        d.platform = None;
        d.annotations = [(
            media::ANNOTATION_REF_NAME.to_string(),
            rec.reference.clone(),
        )]
        .into();
        manifests.push(d);
        for s in &rec.signatures {
            let mut d = s.root.clone();
            d.platform = None;
            let name = match &s.tag {
                Some(t) => format!("{}/{}:{t}", rec.registry, rec.repository),
                None => format!("{}/{}@{}", rec.registry, rec.repository, s.root.digest),
            };
            d.annotations = [(media::ANNOTATION_REF_NAME.to_string(), name)].into();
            manifests.push(d);
        }
    }
    let ix = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests,
        annotations: BTreeMap::new(),
    };
    airlock_store::write_atomic(
        &store_root.join("index.json"),
        &serde_json::to_vec(&ix).expect("index serializes"),
    )
    .map_err(|source| MirrorError::Store {
        what: "store index.json".into(),
        source,
    })
}

/// Fetches a manifest by digest, from the store when it is there, else from the registry
/// (and stores it).
fn manifest_by_digest(
    store: &BlobStore,
    client: &Client,
    r: &ImageRef,
    d: &Descriptor,
    fetched: &mut usize,
) -> Result<Vec<u8>, MirrorError> {
    if d.size > MAX_MANIFEST_BYTES {
        return Err(MirrorError::Invalid(format!(
            "{r}: manifest {} is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
            d.digest, d.size
        )));
    }
    if store.contains(&d.digest, d.size) {
        if let Ok(b) = store.read_verified(&d.digest, MAX_MANIFEST_BYTES) {
            return Ok(b);
        }
    }
    let f = client.retry(&format!("manifest {}", d.digest), || {
        client.manifest(r, &d.digest.to_string())
    })?;
    *fetched += 1;
    if f.bytes.len() as u64 != d.size {
        return Err(MirrorError::Invalid(format!(
            "{r}: manifest {} is {} bytes, its descriptor says {}",
            d.digest,
            f.bytes.len(),
            d.size
        )));
    }
    put(store, &f)?;
    Ok(f.bytes)
}

fn put(store: &BlobStore, f: &Fetched) -> Result<(), MirrorError> {
    use std::io::Write;
    if store.contains(&f.digest, f.bytes.len() as u64) {
        return Ok(());
    }
    let mut w = store.writer().map_err(|source| MirrorError::Store {
        what: "store".into(),
        source,
    })?;
    w.write_all(&f.bytes).map_err(MirrorError::io(
        store.backend().locate(&f.digest),
        "write manifest",
    ))?;
    w.commit(&f.digest, Some(f.bytes.len() as u64))
        .map_err(|source| MirrorError::Store {
            what: format!("manifest {}", f.digest),
            source,
        })?;
    Ok(())
}

/// An image's record and the config and layer blobs it needs, or why it could not be resolved.
type Resolved = Result<(ImageRecord, Vec<Descriptor>), MirrorError>;

/// Resolves one image: root, children, signatures. Returns its record and the config and layer
/// blobs it needs.
fn resolve_image(
    store: &BlobStore,
    client: &Client,
    img: &SyncImage,
    retrieved: &str,
    opts: &SyncOptions,
    fetched: &mut usize,
) -> Result<(ImageRecord, Vec<Descriptor>), MirrorError> {
    let r = &img.reference;
    // The root: by digest from the store when possible (no request at all); by tag via HEAD,
    // then GET only when the store lacks what the tag points at. A registry that refuses HEAD
    // (405, 400) is asked with GET, which reports the real error if there is one.
    let root = match r.digest {
        Some(d) => match present_manifest(store, &d) {
            Some(f) => f,
            None => {
                let f = client.retry(&format!("manifest {r}"), || {
                    client.manifest(r, &d.to_string())
                })?;
                *fetched += 1;
                put(store, &f)?;
                f
            }
        },
        None => {
            let tag = r.reference();
            match tagged_manifest(store, client, r, &tag, fetched) {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Err(MirrorError::Status {
                        url: format!("{r}"),
                        status: 404,
                        detail: "MANIFEST_UNKNOWN: no such tag".into(),
                    })
                }
                Err(MirrorError::Status { status, .. })
                    if status != 404 && status != 401 && status != 403 =>
                {
                    let f = client.retry(&format!("manifest {r}"), || client.manifest(r, &tag))?;
                    *fetched += 1;
                    put(store, &f)?;
                    f
                }
                Err(e) => return Err(e),
            }
        }
    };
    let root_desc = root.descriptor();
    tracing::info!(image = %r, digest = %root.digest, media_type = %root.media_type, "resolved");

    // Children and blobs.
    let mut blobs = Vec::new();
    let mut seen = BTreeSet::new();
    let mut omitted = Vec::new();
    walk_remote(
        store,
        client,
        r,
        &root_desc,
        img.platforms.as_deref(),
        &mut blobs,
        &mut seen,
        &mut omitted,
        fetched,
        0,
    )?;

    // Signatures and attestations.
    let mut signatures = Vec::new();
    let mut found_by_referrers = BTreeSet::new();
    match client.referrers(r, &root.digest) {
        Ok(Some(ix)) => {
            for d in ix.manifests {
                if found_by_referrers.insert(d.digest) {
                    let mut d = d.clone();
                    d.annotations.clear();
                    walk_remote(
                        store,
                        client,
                        r,
                        &d,
                        None,
                        &mut blobs,
                        &mut seen,
                        &mut Vec::new(),
                        fetched,
                        0,
                    )?;
                    signatures.push(SignatureRecord { tag: None, root: d });
                }
            }
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(image = %r, "referrers API: {e}"),
    }
    let hexd = root.digest.hex();
    let candidates = [
        format!("sha256-{hexd}.sig"),
        format!("sha256-{hexd}.att"),
        format!("sha256-{hexd}"),
    ];
    // One HEAD per candidate tag (cheaper than listing every tag of a large repository);
    // a manifest already in the store is not fetched again.
    for t in &candidates {
        let f = match tagged_manifest(store, client, r, t, fetched) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(image = %r, tag = %t, "signature tag: {e}");
                continue;
            }
        };
        let d = f.descriptor();
        if media::is_index(&f.media_type) && t == &format!("sha256-{hexd}") {
            // Referrers tag schema: an index listing the referrers.
            let ix: Index = serde_json::from_slice(&f.bytes)
                .map_err(|e| MirrorError::Invalid(format!("{r}:{t}: {e}")))?;
            for mut c in ix.manifests {
                if found_by_referrers.insert(c.digest) {
                    c.annotations.clear();
                    walk_remote(
                        store,
                        client,
                        r,
                        &c,
                        None,
                        &mut blobs,
                        &mut seen,
                        &mut Vec::new(),
                        fetched,
                        0,
                    )?;
                    signatures.push(SignatureRecord { tag: None, root: c });
                }
            }
            continue;
        }
        walk_remote(
            store,
            client,
            r,
            &d,
            None,
            &mut blobs,
            &mut seen,
            &mut Vec::new(),
            fetched,
            0,
        )?;
        signatures.push(SignatureRecord {
            tag: Some(t.clone()),
            root: d,
        });
    }
    if opts.require_signature && signatures.is_empty() {
        return Err(MirrorError::Invalid(format!(
            "{r}: no signature or attestation found (referrers API, {}.sig/.att tags) and --require-signature is set",
            format_args!("sha256-{}", &hexd[..12])
        )));
    }
    tracing::info!(image = %r, signatures = signatures.len(), blobs = blobs.len(), "closure resolved");
    Ok((
        ImageRecord {
            reference: r.to_string(),
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            root: root_desc,
            platforms: img.platforms.clone(),
            platforms_omitted: omitted,
            signatures,
            retrieved: retrieved.to_string(),
        },
        blobs,
    ))
}

/// The manifest a tag names: `None` when the tag does not exist (HEAD 404); from the store when
/// the registry's digest for the tag is there, else fetched, checked and stored.
fn tagged_manifest(
    store: &BlobStore,
    client: &Client,
    r: &ImageRef,
    tag: &str,
    fetched: &mut usize,
) -> Result<Option<Fetched>, MirrorError> {
    let head = match client.retry(&format!("manifest {r}:{tag}"), || {
        client.head_manifest(r, tag)
    }) {
        Ok(d) => d,
        Err(MirrorError::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(f) = head.and_then(|d| present_manifest(store, &d)) {
        return Ok(Some(f));
    }
    let f = client.retry(&format!("manifest {r}:{tag}"), || client.manifest(r, tag))?;
    *fetched += 1;
    put(store, &f)?;
    Ok(Some(f))
}

/// A manifest already in the store, with its media type read from its bytes.
fn present_manifest(store: &BlobStore, d: &Digest) -> Option<Fetched> {
    let bytes = store.read_verified(d, MAX_MANIFEST_BYTES).ok()?;
    let probe: airlock_core::oci::Probe = serde_json::from_slice(&bytes).ok()?;
    let media_type = probe.kind()?.to_string();
    Some(Fetched {
        digest: *d,
        media_type,
        bytes,
    })
}

#[allow(clippy::too_many_arguments)]
fn walk_remote(
    store: &BlobStore,
    client: &Client,
    r: &ImageRef,
    desc: &Descriptor,
    platforms: Option<&[String]>,
    blobs: &mut Vec<Descriptor>,
    seen: &mut BTreeSet<Digest>,
    omitted: &mut Vec<String>,
    fetched: &mut usize,
    depth: u32,
) -> Result<(), MirrorError> {
    if depth > 4 {
        return Err(MirrorError::Invalid(format!(
            "{r}: indexes nested too deeply at {}",
            desc.digest
        )));
    }
    if !seen.insert(desc.digest) {
        return Ok(());
    }
    let bytes = manifest_by_digest(store, client, r, desc, fetched)?;
    let (children, leaves) = parse_children(r, desc, &bytes)?;
    let before = omitted.len();
    let had_children = !children.is_empty();
    let mut kept = 0usize;
    for c in children {
        if let (Some(want), Some(p)) = (platforms, &c.platform) {
            if !want
                .iter()
                .any(|w| crate::local::platform_matches(w, &p.key()))
            {
                omitted.push(p.key());
                continue;
            }
        }
        kept += 1;
        walk_remote(
            store,
            client,
            r,
            &c,
            platforms,
            blobs,
            seen,
            omitted,
            fetched,
            depth + 1,
        )?;
    }
    if had_children && kept == 0 {
        // A typo in `platforms:` must not mirror an image with nothing runnable in it.
        return Err(MirrorError::Invalid(format!(
            "{r}: no manifest of index {} matches platforms {:?} (it has {})",
            desc.digest,
            platforms.unwrap_or_default(),
            omitted[before..].join(", ")
        )));
    }
    for l in leaves {
        if seen.insert(l.digest) {
            blobs.push(l);
        }
    }
    Ok(())
}

/// Splits a manifest-ish document into child manifests (of an index) and leaf blobs (config and
/// layers of a manifest). Checks that the bytes are what the descriptor says.
fn parse_children(
    r: &ImageRef,
    desc: &Descriptor,
    bytes: &[u8],
) -> Result<(Vec<Descriptor>, Vec<Descriptor>), MirrorError> {
    let bad =
        |detail: String| MirrorError::Invalid(format!("{r}: manifest {} {detail}", desc.digest));
    let probe: airlock_core::oci::Probe =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let kind = probe.kind().unwrap_or("").to_string();
    if !desc.media_type.is_empty() && kind != desc.media_type {
        return Err(bad(format!(
            "says it is {kind:?} but its descriptor says {:?}",
            desc.media_type
        )));
    }
    if media::is_index(&kind) {
        let ix: Index =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("is not a valid index: {e}")))?;
        Ok((ix.manifests, Vec::new()))
    } else if media::is_manifest(&kind) {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("is not a valid manifest: {e}")))?;
        let mut leaves = vec![m.config];
        leaves.extend(m.layers);
        Ok((Vec::new(), leaves))
    } else {
        Err(bad(format!("has unsupported media type {kind:?}")))
    }
}

/// Collects the closure of `root` from the store (for completeness checks).
fn closure_from_store(
    store: &BlobStore,
    desc: &Descriptor,
    platforms: Option<&[String]>,
    out: &mut Vec<Descriptor>,
    seen: &mut BTreeSet<Digest>,
    omitted: &mut Vec<String>,
    depth: u32,
) -> Result<(), MirrorError> {
    if depth > 4 || !seen.insert(desc.digest) {
        return Ok(());
    }
    out.push(desc.clone());
    let bytes = store
        .read_verified(&desc.digest, MAX_MANIFEST_BYTES)
        .map_err(|source| MirrorError::Store {
            what: format!("manifest {}", desc.digest),
            source,
        })?;
    let r = ImageRef {
        registry: "store".into(),
        repository: "store".into(),
        tag: None,
        digest: None,
    };
    let (children, leaves) = parse_children(&r, desc, &bytes)?;
    for c in children {
        if let (Some(want), Some(p)) = (platforms, &c.platform) {
            if !want
                .iter()
                .any(|w| crate::local::platform_matches(w, &p.key()))
            {
                omitted.push(p.key());
                continue;
            }
        }
        closure_from_store(store, &c, platforms, out, seen, omitted, depth + 1)?;
    }
    out.extend(leaves);
    Ok(())
}

/// An image (or one of its signatures) resolved from the store for packing.
pub struct PlannedImage {
    pub artifact: airlock_core::bundle::Artifact,
    pub root: Descriptor,
    pub blobs: Vec<airlock_bundle::writer::PlannedBlob>,
}

/// The store as a [`crate::local::LayoutSource`] whose index holds one root.
struct StoreSource<'a> {
    store: &'a BlobStore,
    index: Index,
}

impl crate::local::LayoutSource for StoreSource<'_> {
    fn index(&self) -> &Index {
        &self.index
    }
    fn read_json(&self, desc: &Descriptor) -> Result<Vec<u8>, MirrorError> {
        let b = self
            .store
            .read_verified(&desc.digest, MAX_MANIFEST_BYTES.min(desc.size))
            .map_err(|source| MirrorError::Store {
                what: format!("store {}", self.store.describe()),
                source,
            })?;
        Ok(b)
    }
    fn locate(&self, desc: &Descriptor) -> Result<airlock_bundle::writer::BlobData, MirrorError> {
        if !self.store.contains(&desc.digest, desc.size) {
            return Err(MirrorError::Source {
                what: format!("blob {}", desc.digest),
                path: self.store.backend().locate(&desc.digest),
                detail: "missing from the store; run `airlock sync`".into(),
            });
        }
        crate::store_blob(self.store, &desc.digest, desc.size)
    }
    fn describe(&self) -> String {
        format!("store {}", self.store.describe())
    }
}

/// Resolves a synced registry image (and the signatures that came with it) from the store:
/// artifact records with provenance, roots and blobs.
pub fn planned(
    store_root: &Path,
    r: &ImageRef,
    name: &str,
    platforms: Option<&[String]>,
    _pack_time: &str,
) -> Result<Vec<PlannedImage>, MirrorError> {
    use airlock_core::bundle::{Artifact, ArtifactKind, Provenance};
    let store = BlobStore::open(store_root).map_err(|source| MirrorError::Store {
        what: format!("store {}", store_root.display()),
        source,
    })?;
    let rec = load_record(store_root, r)?.ok_or_else(|| {
        MirrorError::Invalid(format!(
            "{r} is not in the store {}; run `airlock sync`",
            store_root.display()
        ))
    })?;
    if rec.platforms.as_deref() != platforms {
        return Err(MirrorError::Invalid(format!(
            "{r} was synced with platforms {:?}, the manifest asks for {platforms:?}; run `airlock sync`",
            rec.platforms
        )));
    }
    let mut out = Vec::new();
    let mut one = |root: &Descriptor,
                   name: String,
                   platforms: Option<&[String]>|
     -> Result<(), MirrorError> {
        let src = StoreSource {
            store: &store,
            index: Index {
                schema_version: 2,
                media_type: Some(media::OCI_INDEX.into()),
                manifests: vec![root.clone()],
                annotations: BTreeMap::new(),
            },
        };
        let res = crate::local::resolve(&src, root.clone(), platforms)?;
        out.push(PlannedImage {
            artifact: Artifact {
                kind: ArtifactKind::Image,
                name,
                digest: res.root.digest,
                media_type: res.root.media_type.clone(),
                size: res.root.size,
                provenance: Provenance {
                    source: rec.reference.clone(),
                    upstream_digest: Some(rec.root.digest),
                    registry: Some(rec.registry.clone()),
                    retrieved: Some(rec.retrieved.clone()),
                    ..Default::default()
                },
                platforms_omitted: res.platforms_omitted.clone(),
            },
            root: res.root,
            blobs: res.blobs,
        });
        Ok(())
    };
    one(&rec.root, name.to_string(), platforms)?;
    let base: Option<ImageRef> = name.parse().ok();
    let base = base.unwrap_or_else(|| r.clone());
    for s in &rec.signatures {
        let sig_name = match &s.tag {
            Some(t) => base.with_tag(t).to_string(),
            None => base.with_digest(s.root.digest).to_string(),
        };
        one(&s.root, sig_name, None)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Sha256::digest(data),
            size: data.len() as u64,
            artifact_type: None,
            platform: None,
            annotations: Default::default(),
        }
    }

    #[test]
    fn children_and_leaves_are_split_and_types_checked() {
        let r: ImageRef = "reg.example/a/b:v1".parse().unwrap();
        let cfg = desc(media::OCI_CONFIG, b"{}");
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": cfg, "layers": [desc("application/vnd.oci.image.layer.v1.tar", b"x")]
        }))
        .unwrap();
        let (children, leaves) = parse_children(&r, &desc(media::OCI_MANIFEST, &m), &m).unwrap();
        assert!(children.is_empty());
        assert_eq!(leaves.len(), 2);
        // The bytes say manifest, the descriptor says index: refused.
        let e = parse_children(&r, &desc(media::OCI_INDEX, &m), &m).unwrap_err();
        assert!(e.to_string().contains("says it is"), "{e}");
        let e = parse_children(&r, &desc("", b"[1]"), b"[1]").unwrap_err();
        assert!(
            e.to_string().contains("not JSON") || e.to_string().contains("unsupported"),
            "{e}"
        );
    }

    #[test]
    fn records_are_keyed_by_the_normalized_reference() {
        let a: ImageRef = "ubuntu:24.04".parse().unwrap();
        let b: ImageRef = "docker.io/library/ubuntu:24.04".parse().unwrap();
        let p = Path::new("/s");
        assert_eq!(record_path(p, &a), record_path(p, &b));
        let c: ImageRef = "ubuntu:22.04".parse().unwrap();
        assert_ne!(record_path(p, &a), record_path(p, &c));
    }
}
