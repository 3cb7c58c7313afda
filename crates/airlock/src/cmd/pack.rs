//! `airlock pack`: resolve the manifest's sources, sign, write volumes.

use std::collections::BTreeSet;

use airlock_bundle::writer::{pack, PackInput, PackOptions};
use airlock_core::bundle::{BundleManifest, EntryRef, FORMAT_VERSION};
use airlock_core::manifest::{InputManifest, MAX_MANIFEST_BYTES};
use airlock_core::time::{format_rfc3339, now_checked};
use airlock_core::Sha256;
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, PackArgs};

pub fn run(cli: &Cli, a: &PackArgs) -> Result<u8> {
    let text = super::read_bounded(&a.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    let text = String::from_utf8(text).context("manifest is not UTF-8")?;
    let m = InputManifest::parse(&text, &a.manifest.display().to_string())?;
    let base_dir = a
        .manifest
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(std::path::Path::new("."));
    let keys = super::load_signers(&a.keys)?;
    // Rules first: a rule file that does not compile (or a refused allowlist) fails the pack
    // before any work.
    let rules = if a.no_scan {
        None
    } else {
        Some((a.rules.load()?, a.rules.allow_list()?))
    };
    let t = now_checked()?;
    let expires = match a.expires {
        airlock_ui::Expiry::Never => None,
        airlock_ui::Expiry::After(s) => Some(format_rfc3339(
            t.checked_add(s).context("--expires is out of range")?,
        )),
    };
    let trust_roots = a
        .trust_roots
        .iter()
        .map(|p| {
            let bytes =
                super::read_bounded(p, airlock_trust::root::MAX_ROOT_BYTES as u64, "trust root")?;
            airlock_trust::TrustRoot::load_initial(&bytes, t)
                .with_context(|| format!("trust root {}", p.display()))?;
            Ok(serde_json::from_slice::<serde_json::Value>(&bytes)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let base = match (&a.since, &a.appliance_key) {
        (Some(inv), Some(key)) => Some(load_inventory(inv, key)?),
        _ => None,
    };

    let started = std::time::Instant::now();
    // Registry images come from the store; sync first what is missing there.
    let registry_images = airlock_mirror::sync::registry_images(&m);
    let has_hf = !super::sync::hf_models(&m).is_empty();
    let needs_store = !registry_images.is_empty()
        || has_hf
        || !m.spec.debs.is_empty()
        || m.spec.files.iter().any(|f| f.url.is_some());
    let store = needs_store.then(|| super::sync::store_dir(a.store.as_ref()));
    if let Some(store) = &store {
        let bs = airlock_store::BlobStore::open(store)?;
        let mut missing = Vec::new();
        for img in registry_images {
            if !airlock_mirror::sync::is_complete(&bs, &img)? {
                missing.push(img);
            }
        }
        if !missing.is_empty() {
            tracing::info!(images = missing.len(), store = %store.display(), "syncing images missing from the store");
            let report = super::sync::mirror(store, &missing, &a.registry, false)?;
            let errors: Vec<String> = report
                .images
                .iter()
                .filter_map(|i| {
                    i.result
                        .as_ref()
                        .err()
                        .map(|e| format!("{}: {}", i.reference, super::sync::clone_err(e)))
                })
                .collect();
            anyhow::ensure!(
                errors.is_empty(),
                "sync before pack failed:\n  {}",
                errors.join("\n  ")
            );
        }
    }
    if let (Some(store), true) = (&store, has_hf) {
        let errors: Vec<String> = super::sync::mirror_models(store, &m, &a.registry, true)?
            .into_iter()
            .filter_map(|(src, r)| {
                r.err()
                    .map(|e| format!("{src}: {}", super::sync::clone_err(&e)))
            })
            .collect();
        anyhow::ensure!(
            errors.is_empty(),
            "sync before pack failed:\n  {}",
            errors.join("\n  ")
        );
    }
    if let Some(store) = &store {
        let mut errors: Vec<String> =
            super::sync::mirror_debs(store, &m, base_dir, &a.registry, true)?
                .into_iter()
                .filter_map(|(_, r)| r.err().map(|e| super::sync::clone_err(&e)))
                .collect();
        errors.extend(
            super::sync::mirror_urls(store, &m, &a.registry)?
                .into_iter()
                .filter_map(|(name, r)| {
                    r.err()
                        .map(|e| format!("file {name}: {}", super::sync::clone_err(&e)))
                }),
        );
        anyhow::ensure!(
            errors.is_empty(),
            "sync before pack failed:\n  {}",
            errors.join("\n  ")
        );
    }
    // Scan results are cached in the store when pack uses one (registry images, `hf:` models,
    // Debian closures, `url:` files) or one is named (`--store`, `AIRLOCK_STORE`).
    let cache = (!a.no_scan)
        .then(|| {
            store
                .clone()
                .or_else(|| a.store.clone())
                .map(|s| crate::scan_cache::ScanCache::in_store(&s, !a.no_scan_cache))
        })
        .flatten();
    // Digests of unchanged local files come from the same store's digest cache; the volume
    // writer hashes those blobs as it writes them, so each such file is read once.
    let digests = store
        .clone()
        .or_else(|| a.store.clone())
        .map(|s| airlock_mirror::digest_cache::DigestCache::in_store(&s, !a.rehash));
    let hashing = airlock_ui::Bar::bytes("hashing", 0);
    let mut plan = airlock_mirror::plan::plan_with_cache(
        &m,
        base_dir,
        &format_rfc3339(t),
        store.as_deref(),
        &airlock_mirror::model::Hashing {
            progress: &hashing,
            cache: digests.as_ref(),
        },
    )?;
    hashing.finish();
    if let Some(d) = &digests {
        tracing::info!(
            cached = d.hits(),
            hashed = d.misses(),
            "local files whose digests came from the digest cache, and files hashed"
        );
    }
    let scan = if a.no_scan {
        vec![]
    } else {
        let (rules, allow) = rules.as_ref().expect("loaded unless --no-scan");
        crate::scanning::scan_plan(&mut plan, &format_rfc3339(t), rules, allow, cache.as_ref())?
    };
    let sboms = if a.no_sbom {
        vec![]
    } else {
        crate::sboms::sbom_plan(
            &mut plan,
            &format_rfc3339(t),
            a.sbom_spdx,
            a.sbom_supplier.as_deref(),
        )?
    };
    if let Some(c) = &cache {
        tracing::info!(
            scanned = c.stats.scanned(),
            cached = c.stats.cached(),
            "blobs scanned, and blobs whose results came from the scan cache"
        );
    }
    // Differential: blobs the appliance holds stay home; the manifest names them as external.
    let mut external = Vec::new();
    let mut external_sources = Vec::new();
    let base_inventory = base.map(|(digest, held)| {
        plan.blobs.retain(|b| {
            if held.contains(&(b.digest, b.size)) {
                external_sources.push(b.clone());
                external.push(EntryRef {
                    digest: b.digest,
                    size: b.size,
                });
                false
            } else {
                true
            }
        });
        digest
    });
    if let Some(d) = &digests {
        verify_cached_external(d, &external_sources)?;
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        blobs = plan.blobs.len(),
        bytes = plan.total_bytes(),
        "sources resolved and hashed"
    );

    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        format_minor: 0,
        name: m.metadata.name.clone(),
        version: m.metadata.version.clone(),
        channel: m.metadata.channel.clone(),
        sequence: a.sequence.unwrap_or(t as u64),
        created: format_rfc3339(t),
        expires,
        tool: format!("airlock {}", env!("CARGO_PKG_VERSION")),
        volumes: 1,
        index: EntryRef {
            digest: Sha256::digest(b""),
            size: 0,
        },
        artifacts: plan.artifacts.clone(),
        blobs: vec![],
        base_inventory,
        external,
        trust_roots,
        scan,
        waivers: m.spec.waivers.clone(),
        nodes: m.spec.nodes.clone(),
        sboms,
    };
    let bar = airlock_ui::Bar::bytes("packing", plan.total_bytes());
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let opts = PackOptions {
        out_dir: a.out.clone(),
        volume_size: a.volume_size,
        zstd_level: a.zstd_level,
        compression: match a.compression {
            crate::cli::PackCompression::Auto => airlock_bundle::writer::Compression::Auto,
            crate::cli::PackCompression::Always => airlock_bundle::writer::Compression::Always,
        },
        threads,
        signers: super::signer_refs(&keys),
        progress: &bar,
    };
    let packed = pack(
        PackInput {
            manifest,
            index_json: plan.index_json,
            blobs: plan.blobs,
        },
        &opts,
    )
    .map_err(|e| stale_digest(e, digests.as_ref()))?;
    bar.finish();
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "volumes written");

    let m = &packed.manifest;
    if cli.json {
        super::print_json(&json!({
            "bundle": packed.bundle_id,
            "name": m.name, "version": m.version, "channel": m.channel, "sequence": m.sequence,
            "expires": m.expires,
            "artifacts": m.artifacts.iter().map(|a| json!({"kind": a.kind, "name": a.name, "digest": a.digest})).collect::<Vec<_>>(),
            "blobs": m.blobs.len(),
            "external": m.external.len(),
            "baseInventory": m.base_inventory,
            "scanCache": cache.as_ref().map(|c| json!({"scanned": c.stats.scanned(), "cached": c.stats.cached()})),
            "digestCache": digests.as_ref().map(|d| json!({"hashed": d.misses(), "cached": d.hits()})),
            "volumes": packed.volumes.iter().map(|v| json!({"path": v.path, "volume": v.number, "size": v.size, "blobs": v.blobs})).collect::<Vec<_>>(),
        }))?;
    } else {
        say!(
            "bundle {} {} (channel {}, sequence {}): {} artifacts, {} blobs",
            m.name,
            m.version,
            m.channel,
            m.sequence,
            m.artifacts.len(),
            m.blobs.len()
        );
        for v in &packed.volumes {
            say!("{}\t{}", v.path.display(), airlock_ui::human_bytes(v.size));
        }
    }
    Ok(airlock_ui::exit::OK)
}

/// A source that did not hash to its digest while written (`BundleError::Source`) may have had
/// its digest from a stale cache entry: the entries this pack used are removed, so that packing
/// again hashes those files anew, and the error says so.
fn stale_digest(
    e: airlock_bundle::BundleError,
    digests: Option<&airlock_mirror::digest_cache::DigestCache>,
) -> anyhow::Error {
    match digests {
        Some(d) if d.hits() > 0 && matches!(e, airlock_bundle::BundleError::Source { .. }) => {
            d.forget_hits();
            anyhow::Error::new(e).context(format!(
                "the digests of {} unchanged files came from the digest cache; those entries are removed, so packing again hashes the files anew",
                d.hits()
            ))
        }
        _ => e.into(),
    }
}

/// Hashes the blobs a differential pack leaves out (the appliance holds them) whose digests
/// came from the digest cache: they are not written, so the volume writer never checks them,
/// and the signed manifest must not name a digest the file no longer has. A mismatch removes
/// the entries this pack used.
fn verify_cached_external(
    digests: &airlock_mirror::digest_cache::DigestCache,
    external: &[airlock_bundle::writer::PlannedBlob],
) -> Result<()> {
    use airlock_bundle::writer::BlobData;
    let hits: BTreeSet<std::path::PathBuf> = digests.hit_paths().into_iter().collect();
    for b in external {
        if let BlobData::File {
            path,
            offset: 0,
            stamp: None,
        } = &b.data
        {
            if hits.contains(path) {
                let h = airlock_mirror::model::hash_file(path, &airlock_bundle::NoProgress)?;
                if h.digest != b.digest || h.size != b.size {
                    digests.forget_hits();
                    anyhow::bail!(
                        "{}: content hashes to {}, but the digest cache said {} (the cache entry is removed; pack again)",
                        path.display(),
                        h.digest,
                        b.digest
                    );
                }
            }
        }
    }
    Ok(())
}

/// Verifies an appliance inventory against the appliance key; returns its digest and the
/// blobs it lists.
fn load_inventory(
    path: &std::path::Path,
    key: &std::path::Path,
) -> Result<(airlock_core::Digest, BTreeSet<(airlock_core::Digest, u64)>)> {
    use airlock_core::inventory::{Inventory, PAYLOAD_TYPE, TYPE};
    let key = airlock_trust::PublicKey::load(key)?;
    let bytes = super::read_bounded(path, 256 << 20, "inventory")?;
    let env = airlock_trust::Envelope::parse(&bytes)
        .with_context(|| format!("inventory {}", path.display()))?;
    let keys = [(key.keyid(), key)].into_iter().collect();
    let verified = env
        .verify(PAYLOAD_TYPE, &keys, 1, "appliance inventory")
        .with_context(|| {
            format!(
                "inventory {} is not signed by the given appliance key",
                path.display()
            )
        })?;
    let inv: Inventory = serde_json::from_slice(&verified.payload)
        .with_context(|| format!("inventory {}", path.display()))?;
    anyhow::ensure!(
        inv.type_ == TYPE,
        "inventory {}: _type {:?} is not {TYPE}",
        path.display(),
        inv.type_
    );
    let digest = Sha256::digest(&verified.payload);
    tracing::info!(blobs = inv.blobs.len(), %digest, "differential bundle against appliance inventory");
    Ok((
        digest,
        inv.blobs.into_iter().map(|b| (b.digest, b.size)).collect(),
    ))
}
