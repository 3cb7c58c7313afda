//! `airlock sync`: mirror the registry images of a manifest into the local store, so that
//! `airlock pack` can pack them without the network.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use airlock_core::manifest::{InputManifest, MAX_MANIFEST_BYTES};
use airlock_mirror::auth::Credentials;
use airlock_mirror::registry::{Client, ClientOptions};
use airlock_mirror::sync::{self, SyncImage, SyncOptions, SyncReport};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, RegistryArgs, SyncArgs};

/// The store directory: `--store`, `AIRLOCK_STORE` (clap fills both), else
/// `$XDG_DATA_HOME/airlock/store` or `~/.local/share/airlock/store`.
pub fn store_dir(given: Option<&PathBuf>) -> PathBuf {
    if let Some(p) = given {
        return p.clone();
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("airlock/store");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    home.join(".local/share/airlock/store")
}

pub fn client(a: &RegistryArgs) -> Result<Client> {
    let credentials = a
        .creds
        .as_deref()
        .map(Credentials::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--creds: {e}"))?;
    Ok(Client::new(ClientOptions {
        insecure: a.insecure.clone(),
        ca_file: a.ca_file.clone(),
        credentials,
        auth_file: a.authfile.clone(),
        retries: a.retries,
    })?)
}

/// A progress bar shared between the library (which advances it) and the command (which
/// clears it at the end).
struct Shared(Arc<airlock_ui::Bar>);
impl airlock_bundle::Progress for Shared {
    fn advance(&self, n: u64) {
        airlock_bundle::Progress::advance(self.0.as_ref(), n)
    }
}

/// Mirrors `images`; returns the report. Used by `sync` and by `pack` (content missing).
pub fn mirror(
    store: &std::path::Path,
    images: &[SyncImage],
    reg: &RegistryArgs,
    require_signature: bool,
) -> Result<SyncReport> {
    let client = client(reg)?;
    let bar: Mutex<Option<Arc<airlock_ui::Bar>>> = Mutex::new(None);
    let make = |total: u64, blobs: usize| -> Box<dyn airlock_bundle::Progress> {
        let b = Arc::new(airlock_ui::Bar::bytes(&format!("{blobs} blobs"), total));
        *bar.lock().expect("bar") = Some(b.clone());
        Box::new(Shared(b))
    };
    let opts = SyncOptions {
        jobs: reg.jobs as usize,
        require_signature,
    };
    let report = sync::sync(store, images, &client, &opts, &make)
        .with_context(|| format!("sync into {}", store.display()))?;
    if let Some(b) = bar.lock().expect("bar").take() {
        b.finish();
    }
    Ok(report)
}

pub fn run(cli: &Cli, a: &SyncArgs) -> Result<u8> {
    let text = super::read_bounded(&a.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    let text = String::from_utf8(text).context("manifest is not UTF-8")?;
    let m = InputManifest::parse(&text, &a.manifest.display().to_string())?;
    let store = store_dir(a.store.as_ref());
    let images = sync::registry_images(&m);
    let started = std::time::Instant::now();
    let report = mirror(&store, &images, &a.registry, a.require_signature)?;
    let seconds = started.elapsed().as_secs_f64();
    let failed = report.failed();
    if cli.json {
        super::print_json(&json!({
            "store": store,
            "ok": failed == 0,
            "seconds": seconds,
            "blobsDownloaded": report.blobs_downloaded,
            "bytesDownloaded": report.bytes_downloaded,
            "blobsPresent": report.blobs_present,
            "manifestsFetched": report.manifests_fetched,
            "images": report.images.iter().map(|i| match &i.result {
                Ok(r) => json!({"reference": i.reference, "ok": true, "digest": r.root.digest,
                    "mediaType": r.root.media_type, "registry": r.registry, "retrieved": r.retrieved,
                    "platformsOmitted": r.platforms_omitted,
                    "signatures": r.signatures.iter().map(|s| json!({"tag": s.tag, "digest": s.root.digest})).collect::<Vec<_>>()}),
                Err(e) => json!({"reference": i.reference, "ok": false, "error": format!("{e}")}),
            }).collect::<Vec<_>>(),
        }))?;
    } else {
        for i in &report.images {
            match &i.result {
                Ok(r) => say!(
                    "{}\t{}{}",
                    i.reference,
                    r.root.digest,
                    if r.signatures.is_empty() {
                        String::new()
                    } else {
                        format!("\t{} signature(s)", r.signatures.len())
                    }
                ),
                Err(_) => say!("{}\tFAILED", i.reference),
            }
        }
        say!(
            "{} image(s), {} failed; {} blob(s) downloaded ({}), {} already present, in {:.1}s",
            report.images.len(),
            failed,
            report.blobs_downloaded,
            airlock_ui::human_bytes(report.bytes_downloaded),
            report.blobs_present,
            seconds
        );
    }
    for i in &report.images {
        if let Err(e) = &i.result {
            eprintln!("error: {}: {}", i.reference, clone_err(e));
        }
    }
    if failed > 0 && !a.keep_going {
        return Ok(airlock_ui::exit::FAILED);
    }
    Ok(airlock_ui::exit::OK)
}

/// Error text with its sources, for the per-image report.
pub fn clone_err(e: &airlock_mirror::MirrorError) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}
