//! `airlock verify`: signatures, expiry, then every blob of every volume given.

use std::collections::BTreeSet;

use airlock_bundle::reader::{missing_blobs, VerifyOnly};
use airlock_bundle::set::authenticate_all;
use airlock_core::time::now_checked;
use anyhow::Result;
use serde_json::json;

use crate::cli::{Cli, VerifyArgs};

pub fn run(cli: &Cli, a: &VerifyArgs) -> Result<u8> {
    let root = super::load_root(&a.trust)?;
    let members = authenticate_all(&a.volumes, &root, now_checked()?, a.clock_skew);
    let total: u64 = members
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|m| {
            m.auth
                .manifest()
                .blobs_of_volume(m.volume.label.volume)
                .map(|b| b.size)
                .sum::<u64>()
        })
        .sum();
    let bar = airlock_ui::Bar::bytes("verifying", total);
    let mut present = BTreeSet::new();
    let mut reports = Vec::new();
    let mut failed = 0;
    let mut manifest = None;
    let mut info = None;
    for (path, r) in members {
        let outcome = r.and_then(|m| {
            let rep = m.volume.read_blobs(m.auth.manifest(), &VerifyOnly, &bar)?;
            Ok((m, rep))
        });
        match outcome {
            Ok((m, rep)) => {
                present.extend(rep.verified.iter().copied());
                reports.push(
                    json!({"path": path, "ok": true, "volume": m.volume.label.volume,
                    "blobs": rep.verified.len(), "bytes": rep.bytes}),
                );
                info.get_or_insert_with(|| (m.auth.bundle_id, m.auth.signers.clone()));
                manifest.get_or_insert(m.auth.statement.predicate);
            }
            Err(e) => {
                failed += 1;
                let e = anyhow::Error::from(e);
                tracing::error!("{e:#}");
                reports.push(json!({"path": path, "ok": false, "error": format!("{e:#}")}));
            }
        }
    }
    bar.finish();
    let missing = manifest
        .as_ref()
        .map(|m| missing_blobs(m, &present))
        .unwrap_or_default();
    let ok = failed == 0;
    if cli.json {
        super::print_json(&json!({
            "ok": ok,
            "bundle": info.as_ref().map(|i| i.0),
            "name": manifest.as_ref().map(|m| &m.name),
            "version": manifest.as_ref().map(|m| &m.version),
            "signers": info.as_ref().map(|i| &i.1),
            "volumes": reports,
            "complete": ok && missing.is_empty(),
            "missing": missing.iter().map(|(d, v)| json!({"digest": d, "volume": v})).collect::<Vec<_>>(),
        }))?;
    } else {
        for r in &reports {
            if r["ok"] == true {
                say!(
                    "ok      {} (volume {}, {} blobs verified)",
                    r["path"].as_str().unwrap_or(""),
                    r["volume"],
                    r["blobs"]
                );
            } else {
                say!(
                    "FAILED  {}: {}",
                    r["path"].as_str().unwrap_or(""),
                    r["error"].as_str().unwrap_or("")
                );
            }
        }
        if let (Some(m), Some((id, signers))) = (&manifest, &info) {
            say!(
                "bundle {} {} ({id}), signed by {} trusted key(s)",
                m.name,
                m.version,
                signers.len()
            );
            if missing.is_empty() {
                say!("complete: all {} blobs present and verified", m.blobs.len());
            } else {
                let vols: BTreeSet<u32> = missing.iter().map(|(_, v)| *v).collect();
                say!(
                    "incomplete: {} of {} blobs are in volumes not given ({})",
                    missing.len(),
                    m.blobs.len(),
                    vols.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for (d, v) in &missing {
                    say!("  missing {d} (volume {v})");
                }
            }
        }
    }
    Ok(if ok {
        airlock_ui::exit::OK
    } else {
        airlock_ui::exit::FAILED
    })
}
