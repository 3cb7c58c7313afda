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

/// Registry credentials: `--creds-file`, else `--creds` / `AIRLOCK_REGISTRY_CREDS`.
fn credentials(a: &RegistryArgs) -> Result<Option<Credentials>> {
    if let Some(p) = &a.creds_file {
        let text = super::read_bounded(p, 64 * 1024, "credentials file")?;
        let text = String::from_utf8(text)
            .map_err(|_| anyhow::anyhow!("--creds-file {}: not UTF-8", p.display()))?;
        let line = text.lines().next().unwrap_or("").trim();
        return Credentials::parse(line)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--creds-file {}: {e}", p.display()));
    }
    if a.creds.is_some() && std::env::var_os("AIRLOCK_REGISTRY_CREDS").is_none() {
        tracing::warn!(
            "--creds puts the password on the command line, where `ps` shows it; use --creds-file or AIRLOCK_REGISTRY_CREDS"
        );
    }
    a.creds
        .as_deref()
        .map(Credentials::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--creds: {e}"))
}

pub fn client(a: &RegistryArgs) -> Result<Client> {
    let credentials = credentials(a)?;
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

/// The `hf:` models of a manifest: (served name, repo, revision, filter).
pub fn hf_models(m: &InputManifest) -> Vec<(String, String, String, airlock_mirror::glob::Filter)> {
    m.spec
        .models
        .iter()
        .filter_map(|spec| match spec.source(std::path::Path::new(".")) {
            Ok(airlock_core::manifest::ModelSource::Hf { repo, revision }) => Some((
                spec.name.clone(),
                repo,
                revision,
                airlock_mirror::glob::Filter::new(&spec.include, &spec.exclude),
            )),
            _ => None,
        })
        .collect()
}

/// Outcome of mirroring one model: the record and bytes transferred, or the error.
pub type ModelOutcome = (
    String,
    Result<(airlock_mirror::hf::ModelRecord, u64), airlock_mirror::MirrorError>,
);

/// Mirrors `hf:` models from the hub (`HF_ENDPOINT`) into the store. With `only_missing`,
/// models whose selected files are all in the store already are not contacted at all.
pub fn mirror_models(
    store: &std::path::Path,
    m: &InputManifest,
    reg: &RegistryArgs,
    only_missing: bool,
) -> Result<Vec<ModelOutcome>> {
    let models = hf_models(m);
    if models.is_empty() {
        return Ok(vec![]);
    }
    let bs = airlock_store::BlobStore::open(store)?;
    let hub = airlock_mirror::hf::Hub::new(&airlock_mirror::hf::HubOptions {
        ca_file: reg.ca_file.clone(),
        workers: (reg.jobs as usize).max(1),
        retries: reg.retries.max(1),
        ..Default::default()
    })?;
    let retrieved = airlock_core::time::format_rfc3339(airlock_core::time::now());
    let mut out = Vec::new();
    for (name, repo, revision, filter) in models {
        if only_missing {
            let have = airlock_mirror::hf::load_record(store, &repo, &revision)?
                .is_some_and(|rec| airlock_mirror::hf::record_files(&bs, &rec, &filter).is_ok());
            if have {
                continue;
            }
        }
        let bar = airlock_ui::Bar::bytes(&name, 0);
        let r = hub.sync(&bs, &repo, &revision, &filter, &retrieved, &bar);
        bar.finish();
        out.push((format!("hf:{repo}@{revision}"), r));
    }
    Ok(out)
}

pub fn run(cli: &Cli, a: &SyncArgs) -> Result<u8> {
    let text = super::read_bounded(&a.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    let text = String::from_utf8(text).context("manifest is not UTF-8")?;
    let m = InputManifest::parse(&text, &a.manifest.display().to_string())?;
    let store = store_dir(a.store.as_ref());
    let images = sync::registry_images(&m);
    if images.is_empty() && hf_models(&m).is_empty() {
        if cli.json {
            super::print_json(&json!({"store": store, "ok": true, "images": []}))?;
        } else {
            say!(
                "{}: no registry images or hf: models to sync",
                a.manifest.display()
            );
        }
        return Ok(airlock_ui::exit::OK);
    }
    let rules = if a.no_scan {
        None
    } else {
        Some(a.rules.load()?)
    };
    let started = std::time::Instant::now();
    let report = mirror(&store, &images, &a.registry, a.require_signature)?;
    let models = mirror_models(&store, &m, &a.registry, false)?;
    let seconds = started.elapsed().as_secs_f64();
    let scanned = match &rules {
        Some(rules) => scan_mirrored(&m, &store, &report, &models, rules)?,
        None => Vec::new(),
    };
    let failed = report.failed() + models.iter().filter(|(_, r)| r.is_err()).count();
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
            "models": models.iter().map(|(src, r)| match r {
                Ok((rec, bytes)) => json!({"source": src, "ok": true, "repo": rec.repo, "commit": rec.commit,
                    "files": rec.files.len(), "bytesDownloaded": bytes, "endpoint": rec.endpoint}),
                Err(e) => json!({"source": src, "ok": false, "error": clone_err(e)}),
            }).collect::<Vec<_>>(),
            "scan": scanned.iter().map(|(name, files, findings)| json!({
                "artifact": name, "files": files, "findings": findings,
            })).collect::<Vec<_>>(),
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
    if !cli.json {
        for (src, r) in &models {
            if let Ok((rec, bytes)) = r {
                say!(
                    "{src}\tcommit {}\t{} file(s), {} downloaded",
                    rec.commit,
                    rec.files.len(),
                    airlock_ui::human_bytes(*bytes)
                );
            }
        }
    }
    if !cli.json && rules.is_some() {
        let n: usize = scanned.iter().map(|(_, _, f)| f.len()).sum();
        for (name, _, findings) in &scanned {
            for f in findings {
                say!("{name}: {}", crate::scanning::finding_line(f));
            }
        }
        say!(
            "scanned {} artifact(s): {n} finding(s){}",
            scanned.len(),
            if n > 0 {
                " (pack scans again and signs its results; the appliance's policy decides)"
            } else {
                ""
            }
        );
    }
    for i in &report.images {
        if let Err(e) = &i.result {
            let msg = clone_err(e);
            if msg.starts_with(&i.reference) {
                eprintln!("error: {msg}");
            } else {
                eprintln!("error: {}: {msg}", i.reference);
            }
        }
    }
    for (src, r) in &models {
        if let Err(e) = r {
            eprintln!("error: {src}: {}", clone_err(e));
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

/// Scans what this sync mirrored (the images and `hf:` models that succeeded), reading them
/// from the store; returns `(artifact, layers scanned, findings)` per artifact. Findings are
/// logged; they do not change the exit status (pack signs its own results, and the
/// appliance's policy decides).
fn scan_mirrored(
    m: &InputManifest,
    store: &std::path::Path,
    report: &SyncReport,
    models: &[ModelOutcome],
    rules: &airlock_yara::RuleSet,
) -> Result<Vec<(String, usize, Vec<airlock_scan::Finding>)>> {
    let ok_images: std::collections::BTreeSet<String> = report
        .images
        .iter()
        .filter(|i| i.result.is_ok())
        .map(|i| i.reference.clone())
        .collect();
    let ok_models: std::collections::BTreeSet<&str> = models
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(s, _)| s.as_str())
        .collect();
    let here = std::path::Path::new(".");
    let mut only = m.clone();
    only.spec.files.clear();
    only.spec.images.retain(|i| {
        matches!(i.source(here), Ok(airlock_core::manifest::ImageSource::Registry(r)) if ok_images.contains(&r.to_string()))
    });
    only.spec.models.retain(|s| {
        matches!(s.source(here), Ok(airlock_core::manifest::ModelSource::Hf { repo, revision }) if ok_models.contains(format!("hf:{repo}@{revision}").as_str()))
    });
    if only.spec.images.is_empty() && only.spec.models.is_empty() {
        return Ok(Vec::new());
    }
    let retrieved = airlock_core::time::format_rfc3339(airlock_core::time::now());
    let plan = airlock_mirror::plan::plan_with_store(
        &only,
        here,
        &retrieved,
        Some(store),
        &airlock_ui::Bar::bytes("planning", 0),
    )?;
    let out: Vec<_> = crate::scanning::scan_artifacts(&plan, rules)?
        .into_iter()
        .map(|s| (s.artifact.name.clone(), s.files, s.findings))
        .collect();
    for (name, _, f) in &out {
        if !f.is_empty() {
            tracing::warn!(artifact = %name, findings = f.len(), "scanner findings in mirrored content");
        }
    }
    Ok(out)
}
