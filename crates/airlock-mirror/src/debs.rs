//! Debian package closures (`spec.debs`): read signed apt sources, resolve the requested
//! packages to exactly the set `apt-get install` on the target needs, and download those
//! `.deb` files into the store.
//!
//! For each source:
//! 1. `InRelease`, else `Release` + `Release.gpg`, verified against that source's keyring only
//!    ([`airlock_deb::release`]), with apt's date checks and the suite checked.
//! 2. Each `Packages` index the closure needs (`COMPONENT/binary-ARCH`, and `binary-all` unless
//!    the `Release` says `all` packages are in the architecture indexes): `.xz`, else `.gz`,
//!    else plain, whichever the `Release` lists; fetched by hash when it says
//!    `Acquire-By-Hash: yes`; refused unless size and SHA-256 match; decompressed with a bound.
//!    Verified indexes are kept in `STORE/debs/indexes/` by digest, so resolving again after
//!    an unchanged `Release` reads no index from the network.
//!
//! Then [`airlock_deb::resolve`] picks the closure, and [`download`] fetches every `.deb`
//! (resumable, refused unless size and SHA-256 match its `Packages` paragraph). The resolution
//! is kept as a [`ClosureRecord`] in `STORE/debs/NAME.json`, which `airlock pack` turns into
//! the closure's artifact.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use airlock_bundle::Progress;
use airlock_core::debs::{ClosureRecord, IndexRecord, PackageRecord, SourceRecord};
use airlock_core::manifest::{DebSource, DebsSpec};
use airlock_core::{Digest, Sha256};
use airlock_deb::release::{self, Keyring, VerifiedRelease};
use airlock_store::BlobStore;

use crate::fetch::Fetcher;
use crate::MirrorError;

/// Largest compressed (or plain) `Packages` index downloaded.
pub const MAX_INDEX: u64 = 256 << 20;
/// Largest decompressed `Packages` index read.
pub const MAX_INDEX_TEXT: u64 = 512 << 20;
/// Largest baseline `status` file read.
pub const MAX_STATUS: u64 = 64 << 20;

fn invalid(name: &str, detail: impl std::fmt::Display) -> MirrorError {
    MirrorError::Invalid(format!("debs {name}: {detail}"))
}

/// The sources of a closure, read and verified: the package universe and what it came from.
pub struct Universe {
    pub index: airlock_deb::Index,
    pub sources: Vec<SourceRecord>,
}

/// Reads and verifies every source of `spec` (relative paths against `base`) and loads their
/// `Packages` indexes. `cache` is the store (verified indexes are kept there).
pub fn load(
    fetcher: &Fetcher,
    spec: &DebsSpec,
    base: &Path,
    store: &Path,
    now: i64,
) -> Result<Universe, MirrorError> {
    let cache = store.join("debs").join("indexes");
    std::fs::create_dir_all(&cache).map_err(MirrorError::io(&cache, "create"))?;
    let mut index = airlock_deb::Index::new(&spec.arch);
    let mut sources = Vec::new();
    for (i, src) in spec.sources.iter().enumerate() {
        let what = format!("sources[{i}] ({})", src.uri);
        let keyring_path = base.join(&src.keyring);
        let bytes = airlock_core::bounded::read_file_at_most(&keyring_path, release::MAX_KEYRING)
            .map_err(|e| invalid(&spec.name, format!("{what}: keyring: {e}")))?;
        let keyring = Keyring::parse(&bytes).map_err(|e| {
            invalid(
                &spec.name,
                format!("{what}: keyring {}: {e}", keyring_path.display()),
            )
        })?;
        let (verified, release_file, release_sha256) = fetch_release(fetcher, src, &keyring, now)
            .map_err(|e| match e {
            MirrorError::Invalid(m) => invalid(&spec.name, format!("{what}: {m}")),
            other => other,
        })?;
        verified
            .release
            .check(src.suite.as_deref(), now)
            .map_err(|e| invalid(&spec.name, format!("{what}: {e}")))?;
        let mut indexes = Vec::new();
        for path in index_paths(src, &spec.arch, &verified) {
            let Some((path, entry)) = pick_compression(&verified, &path) else {
                if path.contains("binary-all") {
                    continue;
                }
                return Err(invalid(
                    &spec.name,
                    format!("{what}: the Release lists no {path} index (wrong component or architecture?)"),
                ));
            };
            let text = fetch_index(fetcher, src, &verified, &path, &entry, &cache).map_err(
                |e| match e {
                    MirrorError::Invalid(m) => invalid(&spec.name, format!("{what}: {m}")),
                    other => other,
                },
            )?;
            let n = index
                .add_packages(i as u32, text)
                .map_err(|e| invalid(&spec.name, format!("{what}: {path}: {e}")))?;
            tracing::debug!(source = %src.uri, index = %path, packages = n, "read index");
            indexes.push(IndexRecord {
                path,
                sha256: entry.sha256.clone(),
                size: entry.size,
            });
        }
        let r = &verified.release;
        sources.push(SourceRecord {
            uri: src.uri.clone(),
            suite: src.suite.clone(),
            components: src.components.clone(),
            flat: src.flat,
            release_file,
            release_sha256,
            signer: verified.signer.clone(),
            keyring: keyring.fingerprints(),
            date: r.date.map(airlock_core::time::format_rfc3339),
            valid_until: r.valid_until.map(airlock_core::time::format_rfc3339),
            indexes,
        });
    }
    Ok(Universe { index, sources })
}

/// Resolves `spec` over a loaded universe into a record (nothing downloaded yet).
pub fn resolve(
    spec: &DebsSpec,
    base: &Path,
    universe: Universe,
    resolved: &str,
) -> Result<ClosureRecord, MirrorError> {
    let requests = spec
        .packages
        .iter()
        .map(|p| {
            p.parse::<airlock_deb::Request>()
                .map_err(|e| invalid(&spec.name, format!("packages: {p:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (baseline, baseline_sha256) = match &spec.baseline {
        None => (None, None),
        Some(p) => {
            let path = base.join(p);
            let bytes = airlock_core::bounded::read_file_at_most(&path, MAX_STATUS)
                .map_err(|e| invalid(&spec.name, format!("baseline: {e}")))?;
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                invalid(
                    &spec.name,
                    format!("baseline {}: not UTF-8", path.display()),
                )
            })?;
            let b = airlock_deb::Baseline::parse(text)
                .map_err(|e| invalid(&spec.name, format!("baseline {}: {e}", path.display())))?;
            (Some(b), Some(Sha256::digest(&bytes).hex()))
        }
    };
    let opts = airlock_deb::Options {
        recommends: spec.recommends,
        baseline,
    };
    let res = airlock_deb::resolve(&universe.index, &requests, &opts)
        .map_err(|e| invalid(&spec.name, e))?;
    let packages = res
        .packages
        .iter()
        .map(|c| {
            let p = universe.index.get(c.id);
            PackageRecord {
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: p.architecture.clone(),
                source: p.source,
                filename: p.filename.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
                chain: c.chain.clone(),
                stanza: universe.index.stanza(c.id).to_string(),
            }
        })
        .collect();
    Ok(ClosureRecord {
        name: spec.name.clone(),
        arch: spec.arch.clone(),
        recommends: spec.recommends,
        requested: spec.packages.clone(),
        baseline: baseline_sha256,
        resolved: resolved.to_string(),
        sources: universe.sources,
        packages,
    })
}

/// The directory URL a source's `Release` sits in.
fn release_dir(src: &DebSource) -> String {
    let uri = src.uri.trim_end_matches('/');
    match &src.suite {
        Some(s) if !src.flat => format!("{uri}/dists/{s}"),
        _ => uri.to_string(),
    }
}

/// `InRelease`, else `Release` + `Release.gpg`: verified, with the file name and its digest.
fn fetch_release(
    fetcher: &Fetcher,
    src: &DebSource,
    keyring: &Keyring,
    now: i64,
) -> Result<(VerifiedRelease, String, String), MirrorError> {
    let dir = release_dir(src);
    if let Some(bytes) = fetcher.get_small(&format!("{dir}/InRelease"), release::MAX_RELEASE)? {
        let v = release::verify_inrelease(&bytes, keyring, now)
            .map_err(|e| MirrorError::Invalid(format!("{dir}/InRelease: {e}")))?;
        return Ok((v, "InRelease".into(), Sha256::digest(&bytes).hex()));
    }
    let rel = fetcher
        .get_small(&format!("{dir}/Release"), release::MAX_RELEASE)?
        .ok_or_else(|| {
            MirrorError::Invalid(format!("{dir}: neither InRelease nor Release exists"))
        })?;
    let sig = fetcher
        .get_small(&format!("{dir}/Release.gpg"), release::MAX_SIGNATURE)?
        .ok_or_else(|| {
            MirrorError::Invalid(format!(
                "{dir}/Release is not signed (no InRelease, no Release.gpg)"
            ))
        })?;
    let v = release::verify_detached(&rel, &sig, keyring, now)
        .map_err(|e| MirrorError::Invalid(format!("{dir}/Release: {e}")))?;
    Ok((v, "Release".into(), Sha256::digest(&rel).hex()))
}

/// The uncompressed index paths (below the `Release`) a closure reads.
fn index_paths(src: &DebSource, arch: &str, v: &VerifiedRelease) -> Vec<String> {
    if src.flat {
        return vec!["Packages".into()];
    }
    let mut out = Vec::new();
    for c in &src.components {
        out.push(format!("{c}/binary-{arch}/Packages"));
        if !v.release.no_arch_all_index {
            out.push(format!("{c}/binary-all/Packages"));
        }
    }
    out
}

/// The best-compressed variant of `path` the `Release` lists.
fn pick_compression(v: &VerifiedRelease, path: &str) -> Option<(String, release::IndexEntry)> {
    ["xz", "gz", ""].iter().find_map(|ext| {
        let p = if ext.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{ext}")
        };
        v.release.sha256.get(&p).map(|e| (p, e.clone()))
    })
}

/// Fetches one index (from the cache when it holds the digest), verifies and decompresses it.
fn fetch_index(
    fetcher: &Fetcher,
    src: &DebSource,
    v: &VerifiedRelease,
    path: &str,
    entry: &release::IndexEntry,
    cache: &Path,
) -> Result<String, MirrorError> {
    if entry.size > MAX_INDEX {
        return Err(MirrorError::Invalid(format!(
            "{path}: the Release lists {} bytes, more than the {MAX_INDEX} allowed",
            entry.size
        )));
    }
    // The Release usually lists the uncompressed index too: then the decompressed text is
    // checked against it and kept, so the next run neither downloads nor decompresses.
    let plain_path = path
        .strip_suffix(".xz")
        .or_else(|| path.strip_suffix(".gz"))
        .unwrap_or(path);
    let plain = v
        .release
        .sha256
        .get(plain_path)
        .filter(|e| e.size <= MAX_INDEX_TEXT)
        .and_then(|e| Digest::from_hex(&e.sha256).ok().map(|d| (d, e.size)));
    if let Some((d, size)) = plain {
        if let Ok(b) = airlock_core::bounded::read_file_at_most(&cache.join(d.hex()), size) {
            if b.len() as u64 == size && Sha256::digest(&b) == d {
                return String::from_utf8(b)
                    .map_err(|_| MirrorError::Invalid(format!("{plain_path}: not UTF-8")));
            }
        }
    }
    let want = Digest::from_hex(&entry.sha256)
        .map_err(|e| MirrorError::Invalid(format!("{path}: {e}")))?;
    let cached = cache.join(want.hex());
    let bytes = match airlock_core::bounded::read_file_at_most(&cached, entry.size) {
        Ok(b) if Sha256::digest(&b) == want => b,
        _ => {
            let dir = release_dir(src);
            let url = match (v.release.acquire_by_hash, path.rsplit_once('/')) {
                (true, Some((d, _))) => format!("{dir}/{d}/by-hash/SHA256/{}", entry.sha256),
                (true, None) => format!("{dir}/by-hash/SHA256/{}", entry.sha256),
                _ => format!("{dir}/{path}"),
            };
            let b = fetcher
                .get_small(&url, entry.size)
                .map_err(|e| match e {
                    MirrorError::Invalid(_) => MirrorError::Invalid(format!(
                        "{url}: larger than the {} bytes the Release lists",
                        entry.size
                    )),
                    other => other,
                })?
                .ok_or_else(|| MirrorError::Invalid(format!("{url}: not found")))?;
            let found = Sha256::digest(&b);
            if b.len() as u64 != entry.size || found != want {
                return Err(MirrorError::Invalid(format!(
                    "{url}: {} bytes hashing to {found}, but the signed Release lists {} bytes with sha256:{}",
                    b.len(),
                    entry.size,
                    entry.sha256
                )));
            }
            if plain.is_none() {
                cache_index(&cached, &b, path)?;
            }
            b
        }
    };
    let text = decompress(path, &bytes)?;
    drop(bytes);
    if let Some((d, size)) = plain {
        let found = Sha256::digest(&text);
        if text.len() as u64 != size || found != d {
            return Err(MirrorError::Invalid(format!(
                "{path}: decompresses to {} bytes hashing to {found}, but the signed Release lists {size} bytes with {d} for {plain_path}",
                text.len()
            )));
        }
        cache_index(&cache.join(d.hex()), &text, plain_path)?;
    }
    String::from_utf8(text).map_err(|_| MirrorError::Invalid(format!("{path}: not UTF-8")))
}

fn cache_index(file: &Path, bytes: &[u8], path: &str) -> Result<(), MirrorError> {
    airlock_store::write_atomic(file, bytes).map_err(|source| MirrorError::Store {
        what: format!("cache index {path}"),
        source,
    })
}

/// Decompresses an index by its extension, at most [`MAX_INDEX_TEXT`] bytes.
fn decompress(path: &str, bytes: &[u8]) -> Result<Vec<u8>, MirrorError> {
    let too_big = || {
        MirrorError::Invalid(format!(
            "{path}: decompresses to more than {MAX_INDEX_TEXT} bytes"
        ))
    };
    let broken = |e: String| MirrorError::Invalid(format!("{path}: {e}"));
    if path.ends_with(".gz") {
        airlock_core::bounded::read_at_most(
            flate2::read::MultiGzDecoder::new(bytes),
            MAX_INDEX_TEXT,
        )
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                too_big()
            } else {
                broken(e.to_string())
            }
        })
    } else if path.ends_with(".xz") {
        airlock_core::bounded::read_at_most(lzma_rust2::XzReader::new(bytes, true), MAX_INDEX_TEXT)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::FileTooLarge {
                    too_big()
                } else {
                    broken(e.to_string())
                }
            })
    } else {
        Ok(bytes.to_vec())
    }
}

/// The URL of a package of the record.
pub fn package_url(rec: &ClosureRecord, p: &PackageRecord) -> Result<String, MirrorError> {
    let src = rec
        .sources
        .get(p.source as usize)
        .ok_or_else(|| invalid(&rec.name, format!("{}: no source {}", p.name, p.source)))?;
    let file = p.filename.trim_start_matches("./");
    if !airlock_core::bounded::safe_rel_path(file) {
        return Err(invalid(
            &rec.name,
            format!("{}: unsafe Filename {:?}", p.name, p.filename),
        ));
    }
    Ok(format!("{}/{file}", src.uri.trim_end_matches('/')))
}

/// Downloads every `.deb` of `rec` the store lacks, `jobs` at a time. Returns (files, bytes)
/// transferred; the first error (after the others finished).
pub fn download(
    fetcher: &Fetcher,
    rec: &ClosureRecord,
    store: &BlobStore,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<(usize, u64), MirrorError> {
    let partial_dir = crate::store_dir(store)?.join("partial");
    std::fs::create_dir_all(&partial_dir).map_err(MirrorError::io(&partial_dir, "create"))?;
    let mut todo = Vec::new();
    for p in &rec.packages {
        let d = Digest::from_hex(&p.sha256)
            .map_err(|e| invalid(&rec.name, format!("{}: {e}", p.name)))?;
        if !store.contains(&d, p.size) {
            todo.push((p, d, package_url(rec, p)?));
        }
    }
    todo.sort_by_key(|t| std::cmp::Reverse(t.0.size));
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let count = AtomicUsize::new(0);
    let first_err: Mutex<Option<MirrorError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 64).min(todo.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((p, d, url)) = todo.get(i) else {
                    break;
                };
                let partial: PathBuf = partial_dir.join(d.hex());
                match fetcher.download(url, d, Some(p.size), &partial, store, progress) {
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(package = %p.name, "{e}");
                        first_err.lock().expect("errors").get_or_insert(invalid(
                            &rec.name,
                            format!("{} {}: {e}", p.name, p.version),
                        ));
                    }
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().expect("errors") {
        return Err(e);
    }
    store.sync().map_err(|source| MirrorError::Store {
        what: "sync store".into(),
        source,
    })?;
    Ok((count.into_inner(), bytes.into_inner()))
}

/// Where the record of closure `name` is kept in the store.
pub fn record_path(store: &Path, name: &str) -> PathBuf {
    store.join("debs").join(format!("{name}.json"))
}

/// Saves a record (after its `.deb` files are in the store).
pub fn save_record(store: &Path, rec: &ClosureRecord) -> Result<(), MirrorError> {
    let path = record_path(store, &rec.name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(MirrorError::io(dir, "create"))?;
    }
    let json = serde_json::to_vec_pretty(rec).expect("record serializes");
    airlock_store::write_atomic(&path, &json).map_err(|source| MirrorError::Store {
        what: format!("save {}", path.display()),
        source,
    })
}

/// The record of closure `name`, if synced.
pub fn load_record(store: &Path, name: &str) -> Result<Option<ClosureRecord>, MirrorError> {
    let path = record_path(store, name);
    let bytes = match airlock_core::bounded::read_file_at_most(&path, 256 << 20) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MirrorError::io(&path, "read")(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| MirrorError::Invalid(format!("{}: {e}", path.display())))
}

/// Does the record still answer `spec` (same request, options, sources and keyrings, and a
/// baseline file with the same digest)? A changed manifest, keyring or baseline needs a new
/// resolution. Relative paths resolve against `base`.
pub fn record_matches(rec: &ClosureRecord, spec: &DebsSpec, base: &Path) -> bool {
    let keyring_fps = |k: &str| {
        airlock_core::bounded::read_file_at_most(&base.join(k), release::MAX_KEYRING)
            .ok()
            .and_then(|b| Keyring::parse(&b).ok())
            .map(|k| k.fingerprints())
    };
    let baseline = spec.baseline.as_ref().map(|p| {
        airlock_core::bounded::read_file_at_most(&base.join(p), MAX_STATUS)
            .map(|b| Sha256::digest(&b).hex())
            .unwrap_or_default()
    });
    rec.arch == spec.arch
        && rec.recommends == spec.recommends
        && rec.requested == spec.packages
        && rec.sources.len() == spec.sources.len()
        && rec.baseline == baseline
        && rec.sources.iter().zip(&spec.sources).all(|(r, s)| {
            r.uri == s.uri
                && r.suite == s.suite
                && r.components == s.components
                && r.flat == s.flat
                && keyring_fps(&s.keyring).as_ref() == Some(&r.keyring)
        })
}

/// `(package, chain)` for `--why`.
pub fn why<'a>(rec: &'a ClosureRecord, name: &str) -> Option<&'a PackageRecord> {
    rec.packages.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_decompress_within_bounds() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"Package: a\n").unwrap();
        let z = gz.finish().unwrap();
        assert_eq!(
            decompress("main/binary-amd64/Packages.gz", &z).unwrap(),
            b"Package: a\n"
        );
        assert!(decompress("Packages.gz", b"not gzip").is_err());
        assert!(decompress("Packages.xz", b"not xz").is_err());
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &b"Package: b\n"[..], &mut xz).unwrap();
        assert_eq!(decompress("Packages.xz", &xz).unwrap(), b"Package: b\n");
    }
}
