//! `airlock pack`: resolve the manifest's sources, sign, write volumes.

use airlock_bundle::writer::{pack, PackInput, PackOptions};
use airlock_core::bundle::{BundleManifest, EntryRef, FORMAT_VERSION};
use airlock_core::manifest::{InputManifest, MAX_MANIFEST_BYTES};
use airlock_core::time::{format_rfc3339, now};
use airlock_core::Sha256;
use airlock_trust::{KeyPair, Signer};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, PackArgs};

pub fn run(cli: &Cli, a: &PackArgs) -> Result<u8> {
    let text = super::read_bounded(&a.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    let text = String::from_utf8(text).context("manifest is not UTF-8")?;
    let m = InputManifest::parse(&text, &a.manifest.display().to_string())?;
    let base = a
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
    let keys: Vec<KeyPair> = a
        .keys
        .iter()
        .map(|p| KeyPair::load(p))
        .collect::<Result<_, _>>()?;
    let volume_size = a
        .volume_size
        .as_deref()
        .map(airlock_ui::parse_size)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let t = now();
    let expires = match a.expires.as_str() {
        "never" => None,
        s => Some(format_rfc3339(
            t + airlock_ui::parse_duration(s).map_err(anyhow::Error::msg)?,
        )),
    };

    let started = std::time::Instant::now();
    let hashing = airlock_ui::Bar::bytes("hashing", 0);
    let plan = airlock_mirror::plan::plan(&m, base, &format_rfc3339(t), &hashing)?;
    hashing.finish();
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        blobs = plan.blobs.len(),
        bytes = plan.total_bytes(),
        "sources resolved and hashed"
    );

    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
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
        base_inventory: None,
        external: vec![],
        trust_roots: vec![],
    };
    let bar = airlock_ui::Bar::bytes("packing", plan.total_bytes());
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let opts = PackOptions {
        out_dir: a.out.clone(),
        volume_size,
        zstd_level: a.zstd_level,
        threads,
        signers: keys.iter().map(|k| k as &dyn Signer).collect(),
        progress: &bar,
    };
    let packed = pack(
        PackInput {
            manifest,
            index_json: plan.index_json,
            blobs: plan.blobs,
        },
        &opts,
    )?;
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
            "volumes": packed.volumes.iter().map(|v| json!({"path": v.path, "volume": v.number, "size": v.size, "blobs": v.blobs})).collect::<Vec<_>>(),
        }))?;
    } else {
        println!(
            "bundle {} {} (channel {}, sequence {}): {} artifacts, {} blobs",
            m.name,
            m.version,
            m.channel,
            m.sequence,
            m.artifacts.len(),
            m.blobs.len()
        );
        for v in &packed.volumes {
            println!("{}\t{}", v.path.display(), airlock_ui::human_bytes(v.size));
        }
    }
    Ok(airlock_ui::exit::OK)
}
