//! `airlock debs resolve`: show a manifest's Debian package closures before anything is
//! downloaded, and why each package is in them.

use airlock_core::manifest::{InputManifest, MAX_MANIFEST_BYTES};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, DebsResolveArgs};

pub fn resolve(cli: &Cli, a: &DebsResolveArgs) -> Result<u8> {
    let text = super::read_bounded(&a.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    let text = String::from_utf8(text).context("manifest is not UTF-8")?;
    let m = InputManifest::parse(&text, &a.manifest.display().to_string())?;
    let base = a
        .manifest
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let specs: Vec<_> = m
        .spec
        .debs
        .iter()
        .filter(|d| a.name.as_ref().is_none_or(|n| *n == d.name))
        .collect();
    anyhow::ensure!(
        !specs.is_empty(),
        "{}: no Debian closure{} in spec.debs",
        a.manifest.display(),
        a.name
            .as_ref()
            .map(|n| format!(" named {n:?}"))
            .unwrap_or_default()
    );
    let store = super::sync::store_dir(a.store.as_ref());
    let fetcher = super::sync::fetcher(&a.registry)?;
    let now = airlock_core::time::now_checked()?;
    let resolved = airlock_core::time::format_rfc3339(now);
    let mut out = Vec::new();
    for spec in specs {
        let started = std::time::Instant::now();
        let universe = airlock_mirror::debs::load(&fetcher, spec, &base, &store, now)?;
        let loaded = universe.index.len();
        let rec = airlock_mirror::debs::resolve(spec, &base, universe, &resolved)?;
        tracing::info!(debs = %spec.name, candidates = loaded, packages = rec.packages.len(),
            seconds = started.elapsed().as_secs_f64(), "resolved");
        out.push(rec);
    }
    if let Some(pkg) = &a.why {
        let found: Vec<_> = out
            .iter()
            .filter_map(|rec| airlock_mirror::debs::why(rec, pkg).map(|p| (rec, p)))
            .collect();
        if found.is_empty() {
            anyhow::bail!("{pkg} is not in the closure");
        }
        if cli.json {
            super::print_json(&json!(found
                .iter()
                .map(|(rec, p)| json!({"closure": rec.name, "package": p.name, "version": p.version, "chain": p.chain}))
                .collect::<Vec<_>>()))?;
        } else {
            for (rec, p) in found {
                say!("{}: {}", rec.name, p.chain.join(" -> "));
            }
        }
        return Ok(airlock_ui::exit::OK);
    }
    if cli.json {
        super::print_json(&json!(out
            .iter()
            .map(|rec| json!({
                "name": rec.name,
                "arch": rec.arch,
                "sources": rec.sources.iter().map(|s| json!({"uri": s.uri, "suite": s.suite,
                    "releaseFile": s.release_file, "releaseSha256": s.release_sha256,
                    "signer": s.signer})).collect::<Vec<_>>(),
                "packages": rec.packages.iter().map(|p| json!({
                    "name": p.name, "version": p.version, "architecture": p.architecture,
                    "source": rec.sources.get(p.source as usize).map(|s| s.uri.as_str()),
                    "size": p.size, "sha256": p.sha256,
                    "requestedBy": p.chain.first(), "chain": p.chain,
                })).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()))?;
    } else {
        for rec in &out {
            let total: u64 = rec.packages.iter().map(|p| p.size).sum();
            say!(
                "# {} ({}): {} package(s), {}",
                rec.name,
                rec.arch,
                rec.packages.len(),
                airlock_ui::human_bytes(total)
            );
            for p in &rec.packages {
                say!(
                    "{}\t{}\t{}\t{}\tsha256:{}\t{}\t{}",
                    p.name,
                    p.version,
                    p.architecture,
                    p.size,
                    p.sha256,
                    rec.sources
                        .get(p.source as usize)
                        .map(|s| s.uri.as_str())
                        .unwrap_or("?"),
                    p.chain.first().map(String::as_str).unwrap_or("")
                );
            }
        }
    }
    Ok(airlock_ui::exit::OK)
}
