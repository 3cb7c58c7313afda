//! `airlock verify`: signatures, expiry, then every blob of every volume given.
//!
//! Volumes are read in volume order so that the parts of a split blob arrive in order and
//! [`VerifyWhole`] can check the whole blob's digest once every part was given; a subset of
//! volumes verifies the parts it carries and lists the parts that are missing.

use std::collections::BTreeSet;

use airlock_bundle::reader::{missing, Present};
use airlock_bundle::set::authenticate_all;
use airlock_bundle::split::VerifyWhole;
use airlock_core::bundle::VolumeItem;
use airlock_core::time::now_checked;
use anyhow::Result;
use serde_json::json;

use crate::cli::{Cli, VerifyArgs};

pub fn run(cli: &Cli, a: &VerifyArgs) -> Result<u8> {
    let root = super::load_root(&a.trust)?;
    let mut members = authenticate_all(&a.volumes, &root, now_checked()?, a.clock_skew);
    members.sort_by_key(|(_, r)| r.as_ref().map(|m| m.volume.label.volume).unwrap_or(0));
    let total: u64 = members
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|m| {
            m.auth
                .manifest()
                .items_of_volume(m.volume.label.volume)
                .map(|item| match item {
                    VolumeItem::Whole(b) => b.size,
                    VolumeItem::Part(b, i) => b.parts[i].size,
                })
                .sum::<u64>()
        })
        .sum();
    let sink = VerifyWhole::default();
    let bar = airlock_ui::Bar::bytes("verifying", total);
    let mut present = Present::default();
    let mut reports = Vec::new();
    let mut failed = 0;
    let mut manifest = None;
    let mut info = None;
    for (path, r) in members {
        let outcome = r.and_then(|m| {
            let rep = m.volume.read_blobs(m.auth.manifest(), &sink, &bar)?;
            Ok((m, rep))
        });
        match outcome {
            Ok((m, rep)) => {
                present.add(&rep);
                reports.push(
                    json!({"path": path, "ok": true, "volume": m.volume.label.volume,
                    "blobs": rep.verified.len(), "parts": rep.parts_verified.len(), "bytes": rep.bytes}),
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
        .map(|m| missing(m, &present))
        .unwrap_or_default();
    let whole = sink.whole_verified();
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
            "splitBlobsVerified": whole,
            "missing": missing.iter().map(|x| {
                let mut j = json!({"digest": x.digest, "volume": x.volume});
                if let Some((i, n)) = x.part {
                    j["part"] = json!(i);
                    j["parts"] = json!(n);
                }
                j
            }).collect::<Vec<_>>(),
        }))?;
    } else {
        for r in &reports {
            if r["ok"] == true {
                let parts = match r["parts"].as_u64() {
                    Some(n) if n > 0 => format!(", {n} part(s) of split blobs"),
                    _ => String::new(),
                };
                say!(
                    "ok      {} (volume {}, {} blobs verified{parts})",
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
                if !whole.is_empty() {
                    say!(
                        "  {} split blob(s) verified whole across their parts",
                        whole.len()
                    );
                }
            } else {
                let vols: BTreeSet<u32> = missing.iter().map(|x| x.volume).collect();
                let blobs: BTreeSet<_> = missing.iter().map(|x| x.digest).collect();
                say!(
                    "incomplete: {} of {} blobs (or parts of them) are in volumes not given ({})",
                    blobs.len(),
                    m.blobs.len(),
                    vols.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for x in &missing {
                    say!("  missing {x}");
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
