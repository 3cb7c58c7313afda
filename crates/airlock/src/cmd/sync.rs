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

/// The plain-HTTP fetcher for apt sources and `url:` files, configured like the registry client.
pub fn fetcher(reg: &RegistryArgs) -> Result<airlock_mirror::fetch::Fetcher> {
    Ok(airlock_mirror::fetch::Fetcher::new(
        &airlock_mirror::fetch::FetchOptions {
            ca_file: reg.ca_file.clone(),
            retries: reg.retries,
        },
    )?)
}

/// Outcome of one closure: (record, `.deb` files downloaded, bytes), or the error.
pub type DebsOutcome = (
    String,
    Result<(airlock_core::debs::ClosureRecord, usize, u64), airlock_mirror::MirrorError>,
);

/// Resolves the Debian closures of `m` against their signed sources and downloads their
/// `.deb` files into the store. With `only_missing`, a closure whose record still answers the
/// manifest and whose files are all in the store is not contacted.
pub fn mirror_debs(
    store: &std::path::Path,
    m: &InputManifest,
    base: &std::path::Path,
    reg: &RegistryArgs,
    only_missing: bool,
) -> Result<Vec<DebsOutcome>> {
    if m.spec.debs.is_empty() {
        return Ok(vec![]);
    }
    let bs = airlock_store::BlobStore::open(store)?;
    let fetcher = fetcher(reg)?;
    let now = airlock_core::time::now();
    let resolved = airlock_core::time::format_rfc3339(now);
    let mut out = Vec::new();
    for spec in &m.spec.debs {
        if only_missing {
            let have = airlock_mirror::debs::load_record(store, &spec.name)?.filter(|r| {
                airlock_mirror::debs::record_matches(r, spec, base)
                    && airlock_mirror::model::debs_artifact(r, &bs).is_ok()
            });
            if have.is_some() {
                continue;
            }
        }
        let r = (|| {
            let universe = airlock_mirror::debs::load(&fetcher, spec, base, store, now)?;
            let rec = airlock_mirror::debs::resolve(spec, base, universe, &resolved)?;
            let total: u64 = rec.packages.iter().map(|p| p.size).sum();
            let bar = airlock_ui::Bar::bytes(&format!("debs {}", spec.name), total);
            let r = airlock_mirror::debs::download(&fetcher, &rec, &bs, reg.jobs as usize, &bar);
            bar.finish();
            let (n, bytes) = r?;
            airlock_mirror::debs::save_record(store, &rec)?;
            Ok((rec, n, bytes))
        })();
        out.push((spec.name.clone(), r));
    }
    Ok(out)
}

/// Downloads the `url:` files of `m` the store lacks; returns (name, bytes transferred or
/// the error).
pub fn mirror_urls(
    store: &std::path::Path,
    m: &InputManifest,
    reg: &RegistryArgs,
) -> Result<Vec<(String, Result<u64, airlock_mirror::MirrorError>)>> {
    let files: Vec<_> = m.spec.files.iter().filter(|f| f.url.is_some()).collect();
    if files.is_empty() {
        return Ok(vec![]);
    }
    let bs = airlock_store::BlobStore::open(store)?;
    let partial_dir = store.join("partial");
    std::fs::create_dir_all(&partial_dir)
        .with_context(|| format!("create {}", partial_dir.display()))?;
    let fetcher = fetcher(reg)?;
    let mut out = Vec::new();
    for f in files {
        let url = f.url.as_deref().expect("filtered");
        let digest = airlock_core::Digest::from_hex(f.sha256.as_deref().unwrap_or_default())
            .context("checked when the manifest was parsed")?;
        let bar = airlock_ui::Bar::bytes(&f.name, 0);
        let r = fetcher.download(
            url,
            &digest,
            None,
            &partial_dir.join(digest.hex()),
            &bs,
            &bar,
        );
        bar.finish();
        out.push((f.name.clone(), r));
    }
    Ok(out)
}

pub fn run(cli: &Cli, a: &SyncArgs) -> Result<u8> {
    let text = super::read_bounded(&a.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    let text = String::from_utf8(text).context("manifest is not UTF-8")?;
    let m = InputManifest::parse(&text, &a.manifest.display().to_string())?;
    let store = store_dir(a.store.as_ref());
    let images = sync::registry_images(&m);
    let base = a
        .manifest
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let has_urls = m.spec.files.iter().any(|f| f.url.is_some());
    if images.is_empty() && hf_models(&m).is_empty() && m.spec.debs.is_empty() && !has_urls {
        if cli.json {
            super::print_json(&json!({"store": store, "ok": true, "images": []}))?;
        } else {
            say!(
                "{}: no registry images, hf: models, Debian closures or url: files to sync",
                a.manifest.display()
            );
        }
        return Ok(airlock_ui::exit::OK);
    }
    // The operator's allowlist is read first (a bad line is a usage error before anything is
    // contacted); the YARA rules compile (tens of milliseconds, most of a sync with nothing to
    // download and every scan result cached) while the sources are contacted; a rule file
    // that does not compile fails the sync once mirroring is done, and what was mirrored stays.
    let allow = if a.no_scan {
        None
    } else {
        Some(a.rules.allow_list()?)
    };
    let compiling = (!a.no_scan).then(|| {
        let rules = a.rules.clone();
        std::thread::spawn(move || rules.load())
    });
    let started = std::time::Instant::now();
    let report = mirror(&store, &images, &a.registry, a.require_signature)?;
    let models = mirror_models(&store, &m, &a.registry, false)?;
    let debs = mirror_debs(&store, &m, &base, &a.registry, false)?;
    let urls = mirror_urls(&store, &m, &a.registry)?;
    let seconds = started.elapsed().as_secs_f64();
    let rules = compiling
        .map(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("compiling the YARA rules failed"))?
        })
        .transpose()?;
    let cache = rules
        .is_some()
        .then(|| crate::scan_cache::ScanCache::in_store(&store, !a.no_scan_cache));
    let scanned = match (&rules, &allow, &cache) {
        (Some(rules), Some(allow), Some(cache)) => {
            scan_mirrored(&m, &store, &report, &models, rules, allow, cache)?
        }
        _ => Vec::new(),
    };
    let failed = report.failed()
        + models.iter().filter(|(_, r)| r.is_err()).count()
        + debs.iter().filter(|(_, r)| r.is_err()).count()
        + urls.iter().filter(|(_, r)| r.is_err()).count();
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
            "debs": debs.iter().map(|(name, r)| match r {
                Ok((rec, n, bytes)) => json!({"name": name, "ok": true, "packages": rec.packages.len(),
                    "bytes": rec.packages.iter().map(|p| p.size).sum::<u64>(),
                    "downloaded": n, "bytesDownloaded": bytes}),
                Err(e) => json!({"name": name, "ok": false, "error": clone_err(e)}),
            }).collect::<Vec<_>>(),
            "files": urls.iter().map(|(name, r)| match r {
                Ok(bytes) => json!({"name": name, "ok": true, "bytesDownloaded": bytes}),
                Err(e) => json!({"name": name, "ok": false, "error": clone_err(e)}),
            }).collect::<Vec<_>>(),
            "scan": scanned.iter().map(|(name, files, findings)| json!({
                "artifact": name, "files": files, "findings": findings,
            })).collect::<Vec<_>>(),
            "scanCache": cache.as_ref().map(|c| json!({"scanned": c.stats.scanned(), "cached": c.stats.cached()})),
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
        if !report.images.is_empty() {
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
    if !cli.json {
        for (name, r) in &debs {
            if let Ok((rec, n, bytes)) = r {
                say!(
                    "debs {name}\t{} package(s), {} ({} downloaded, {})",
                    rec.packages.len(),
                    airlock_ui::human_bytes(rec.packages.iter().map(|p| p.size).sum()),
                    n,
                    airlock_ui::human_bytes(*bytes)
                );
            }
        }
        for (name, r) in &urls {
            if let Ok(bytes) = r {
                say!(
                    "file {name}\t{} downloaded",
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
        let (fresh, cached) = cache
            .as_ref()
            .map_or((0, 0), |c| (c.stats.scanned(), c.stats.cached()));
        say!(
            "scanned {} artifact(s): {n} finding(s){}; {fresh} blob(s) scanned, {cached} from the scan cache",
            scanned.len(),
            if n > 0 {
                " (pack signs the results; the appliance's policy decides)"
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
    for (_, r) in &debs {
        if let Err(e) = r {
            eprintln!("error: {}", clone_err(e));
        }
    }
    for (name, r) in &urls {
        if let Err(e) = r {
            eprintln!("error: file {name}: {}", clone_err(e));
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
/// from the store, with the store's scan cache; returns `(artifact, layers scanned, findings)`
/// per artifact. Findings are logged; they do not change the exit status (pack signs the results
/// for what it packs, and the appliance's policy decides).
fn scan_mirrored(
    m: &InputManifest,
    store: &std::path::Path,
    report: &SyncReport,
    models: &[ModelOutcome],
    rules: &airlock_yara::RuleSet,
    allow: &airlock_scan::AllowList,
    cache: &crate::scan_cache::ScanCache,
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
    let out: Vec<_> = crate::scanning::scan_artifacts(&plan, rules, allow, Some(cache))?
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
