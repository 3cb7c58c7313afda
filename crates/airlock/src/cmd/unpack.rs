//! `airlock unpack`: verify and extract volumes into an OCI image layout.
//!
//! Everything is written into a staging directory beside `--out` and renamed to `--out` only
//! when every volume verified; on failure the staging directory is removed, so bad input leaves
//! nothing behind. Parts of split blobs are kept by their own digests in a second staging store
//! beside it and assembled, hashed against the whole blob's digest, once every volume was read.

use std::fs;

use airlock_bundle::reader::{missing, BlobSink, Hashed, Present};
use airlock_bundle::set::authenticate_all;
use airlock_core::bundle::{BlobRecord, BundleManifest};
use airlock_core::time::now_checked;
use airlock_core::Digest;
use airlock_store::{BlobStore, BlobWriter};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, UnpackArgs};

/// Blobs into the layout being built, parts of split blobs into `parts` (by part digest).
struct StoreSink<'a> {
    store: &'a BlobStore,
    parts: &'a BlobStore,
}

impl BlobSink for StoreSink<'_> {
    type Writer = BlobWriter;
    fn begin(&self, _: &Digest, _: u64) -> std::io::Result<Option<BlobWriter>> {
        self.store.writer().map(Some).map_err(std::io::Error::other)
    }
    fn commit(&self, w: BlobWriter, hashed: &Hashed) -> std::io::Result<()> {
        w.commit(hashed.digest(), None)
            .map(|_| ())
            .map_err(std::io::Error::other)
    }
    fn begin_part(&self, _: &BlobRecord, _: usize) -> std::io::Result<Option<BlobWriter>> {
        self.parts.writer().map(Some).map_err(std::io::Error::other)
    }
    fn commit_part(
        &self,
        w: BlobWriter,
        b: &BlobRecord,
        i: usize,
        _: &Hashed,
    ) -> std::io::Result<()> {
        w.commit(&b.parts[i].digest, Some(b.parts[i].size))
            .map(|_| ())
            .map_err(std::io::Error::other)
    }
}

/// Streams every split blob whose parts are all present from `parts` into `store`.
fn assemble_split(m: &BundleManifest, parts: &BlobStore, store: &BlobStore) -> Result<usize> {
    let mut n = 0;
    for b in m.blobs.iter().filter(|b| b.is_split()) {
        if !b.parts.iter().all(|p| parts.contains(&p.digest, p.size)) {
            continue;
        }
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
        .with_context(|| format!("assembling split blob {}", b.digest))?;
        w.commit(&b.digest, Some(b.size))
            .with_context(|| format!("assembling split blob {}", b.digest))?;
        n += 1;
    }
    Ok(n)
}

pub fn run(cli: &Cli, a: &UnpackArgs) -> Result<u8> {
    if a.out.exists() {
        let empty = fs::read_dir(&a.out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        anyhow::ensure!(empty, "{} exists and is not empty", a.out.display());
    }
    let root = super::load_root(&a.trust)?;
    let parent = a
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = parent.join(format!(
        ".{}.unpack-{}",
        a.out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = unpack_into(a, &root, a.clock_skew, &staging);
    let mut parts_dir = staging.clone().into_os_string();
    parts_dir.push(".parts");
    let _ = fs::remove_dir_all(&parts_dir);
    match result {
        Ok((_, missing)) if missing > 0 => {
            let _ = fs::remove_dir_all(&staging);
            anyhow::bail!(
                "incomplete: {missing} blob(s) are in volumes not given; give every volume of the bundle (airlock verify lists them)"
            )
        }
        Ok((summary, _)) => {
            if a.out.exists() {
                fs::remove_dir(&a.out)
                    .with_context(|| format!("replacing empty {}", a.out.display()))?;
            }
            fs::rename(&staging, &a.out)
                .with_context(|| format!("moving the layout to {}", a.out.display()))?;
            if cli.json {
                super::print_json(&summary)?;
            } else {
                say!(
                    "unpacked {} blobs into {}",
                    summary["blobs"],
                    a.out.display()
                );
            }
            Ok(airlock_ui::exit::OK)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn unpack_into(
    a: &UnpackArgs,
    root: &airlock_trust::TrustRoot,
    skew: i64,
    staging: &std::path::Path,
) -> Result<(serde_json::Value, usize)> {
    let store = BlobStore::open(staging)?;
    let mut parts_dir = staging.to_path_buf().into_os_string();
    parts_dir.push(".parts");
    let parts = BlobStore::open(std::path::Path::new(&parts_dir))?;
    let sink = StoreSink {
        store: &store,
        parts: &parts,
    };
    let mut present = Present::default();
    let mut first = None;
    let bar = airlock_ui::Bar::bytes("unpacking", 0);
    for (_, r) in authenticate_all(&a.volumes, root, now_checked()?, skew) {
        let m = r?;
        let rep = m.volume.read_blobs(m.auth.manifest(), &sink, &bar)?;
        present.add(&rep);
        if first.is_none() {
            first = Some((m.volume.index_json.clone(), m.auth));
        }
    }
    bar.finish();
    let (index_json, auth) = first.expect("at least one volume");
    let split = assemble_split(auth.manifest(), &parts, &store)?;
    store.sync()?;
    airlock_store::write_atomic(&staging.join("index.json"), &index_json)?;
    let missing = missing(auth.manifest(), &present);
    Ok((
        json!({"out": a.out, "bundle": auth.bundle_id, "blobs": present.blobs.len() + split, "missing": missing.len()}),
        missing.len(),
    ))
}
