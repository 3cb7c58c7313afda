//! What the appliance knows about the vulnerabilities of what it serves.
//!
//! Two inputs, both imported as signed bundles: the SBOM `airlock pack` attaches to every image
//! (an `attestation` artifact named `sbom:IMAGE`, whose one layer is CycloneDX JSON), and the
//! vulnerability database (the file `vulndb` on channel `vulndb`, written by `airlock vulndb
//! pack`: a header line, then one OSV record per line). The name `vulndb` resolves to the
//! newest bundle of that channel, so the channel's rollback protection is the database's.
//!
//! The header may carry CISA's known-exploited CVEs (`knownExploited.cves`); a match whose
//! advisory id or alias is one of them is `knownExploited` in the policy input.
//!
//! The database is read as a stream, each line bounded, while its SHA-256 is computed; the
//! result is used only when that equals the digest the catalog holds. After an import that
//! accepted a volume, [`crate::Appliance::rematch`] matches every served SBOM against the
//! database and records in the audit log which (image, advisory, package) pairs became
//! vulnerable and which were resolved since the last match (`DATA/vuln-state.json`).

use std::collections::BTreeSet;

use airlock_core::oci::Manifest;
use airlock_core::Digest;
use airlock_vuln::matching::{Database, Match};
use serde_json::{json, Value};

use crate::{Appliance, ApplianceError};

/// The served file artifact that holds the database.
pub const VULNDB_NAME: &str = "vulndb";
/// Largest SBOM manifest read.
const MAX_MANIFEST: u64 = 1 << 20;
/// Largest SBOM document read (a 10,000-package image's CycloneDX is about 10 MiB).
const MAX_DOCUMENT: u64 = 256 << 20;
/// Pairs listed per audit entry (the counts are always complete).
const MAX_LISTED: usize = 1000;
/// Where the last match's pairs are kept.
const STATE: &str = "vuln-state.json";

fn bad(what: String) -> ApplianceError {
    ApplianceError::Usage(what)
}

/// The active database: its header, the advisories, and the bundle it came from.
pub struct Active {
    pub header: Value,
    pub db: Database,
    pub bundle: String,
    /// Records of the file that did not parse (named in the log).
    pub refused: usize,
}

/// `(prefix, image, manifest digest)` of every current SBOM artifact (`sbom:` CycloneDX,
/// `spdx:` SPDX).
pub fn sboms(a: &Appliance) -> Result<Vec<(&'static str, String, String)>, ApplianceError> {
    let mut out = Vec::new();
    for r in a.catalog.served()? {
        if r.kind != "attestation" || !r.current {
            continue;
        }
        for prefix in ["sbom:", "spdx:"] {
            if let Some(image) = r.name.strip_prefix(prefix) {
                out.push((prefix, image.to_string(), r.digest.clone()));
            }
        }
    }
    Ok(out)
}

/// `(image, manifest digest)` of every served CycloneDX SBOM.
pub fn cyclonedx_sboms(a: &Appliance) -> Result<Vec<(String, String)>, ApplianceError> {
    Ok(sboms(a)?
        .into_iter()
        .filter(|(p, _, _)| *p == "sbom:")
        .map(|(_, i, d)| (i, d))
        .collect())
}

/// The one layer of the artifact whose manifest is `digest`.
fn only_layer(a: &Appliance, digest: &str, what: &str) -> Result<Digest, ApplianceError> {
    let d: Digest = digest
        .parse()
        .map_err(|e| bad(format!("catalog digest {digest}: {e}")))?;
    let m = a.store.read_verified(&d, MAX_MANIFEST)?;
    let m: Manifest =
        serde_json::from_slice(&m).map_err(|e| bad(format!("{what} manifest {d}: {e}")))?;
    match m.layers.as_slice() {
        [l] => Ok(l.digest),
        ls => Err(bad(format!(
            "{what} manifest {d} has {} layers, not one",
            ls.len()
        ))),
    }
}

/// The document of the SBOM artifact whose manifest is `digest`, each blob checked against its
/// digest.
pub fn sbom_document(a: &Appliance, digest: &str) -> Result<Vec<u8>, ApplianceError> {
    let layer = only_layer(a, digest, "SBOM")?;
    Ok(a.store.read_verified(&layer, MAX_DOCUMENT)?)
}

/// Loads the database the name `vulndb` serves into `db` (which may keep only the advisories
/// of known components, [`Database::only_for`]); `None` when none was imported.
pub fn active_into(a: &Appliance, mut db: Database) -> Result<Option<Active>, ApplianceError> {
    let Some(row) = a
        .catalog
        .served()?
        .into_iter()
        .find(|r| r.kind == "file" && r.name == VULNDB_NAME && r.current)
    else {
        return Ok(None);
    };
    let layer = only_layer(a, &row.digest, "vulnerability database")?;
    let io = |e: std::io::Error| bad(format!("vulnerability database {layer}: {e}"));
    let mut hashing = airlock_core::Hashing::new(a.store.read(&layer)?);
    let (header, refused) = {
        let mut lines = std::io::BufReader::with_capacity(1 << 20, &mut hashing);
        let read = airlock_vuln::db::read_lines_into(
            &mut lines,
            &mut db,
            &format!("vulnerability database {layer}"),
        )
        .map_err(bad)?;
        // Whatever the reader left unread still counts towards the digest.
        std::io::copy(&mut lines, &mut std::io::sink()).map_err(io)?;
        (read.header, read.refused)
    };
    let (_, got, _) = hashing.finish();
    if got != layer {
        return Err(bad(format!(
            "vulnerability database {layer} reads as {got}: the store is damaged (airlockd fsck)"
        )));
    }
    Ok(Some(Active {
        header,
        db,
        bundle: row.bundle,
        refused,
    }))
}

/// The served SBOMs (only `only` when given) matched against the active database: the
/// database, every (image, match) highest severity first, and the count of pairs that could
/// not be decided; `None` when no database was imported. The SBOMs are read first, so that
/// only the advisories affecting their components are kept while the database is read.
#[allow(clippy::type_complexity)]
pub fn match_served(
    a: &Appliance,
    only: Option<&str>,
) -> Result<Option<(Active, Vec<(String, Match)>, usize)>, ApplianceError> {
    let mut images = Vec::new();
    for (image, digest) in cyclonedx_sboms(a)? {
        if only.is_some_and(|o| o != image) {
            continue;
        }
        let doc = sbom_document(a, &digest)?;
        let (components, _) = airlock_vuln::db::components_of_cyclonedx(&doc)
            .map_err(|e| bad(format!("SBOM of {image}: {e}")))?;
        images.push((image, components));
    }
    let all: Vec<airlock_vuln::matching::Component> =
        images.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
    let Some(act) = active_into(a, Database::only_for(&all))? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let mut undecided = 0;
    for (image, components) in images {
        let (ms, u) = airlock_vuln::db::match_all(&act.db, &components);
        undecided += u;
        out.extend(ms.into_iter().map(|m| (image.clone(), m)));
    }
    out.sort_by(|x, y| {
        y.1.rank
            .cmp(&x.1.rank)
            .then_with(|| x.0.cmp(&y.0))
            .then_with(|| x.1.id.cmp(&y.1.id))
            .then_with(|| x.1.purl.cmp(&y.1.purl))
    });
    Ok(Some((act, out, undecided)))
}

/// Days from `built` (RFC 3339) to now, rounded down; `None` when unreadable.
pub fn age_days(built: &str) -> Option<i64> {
    let t = airlock_core::time::parse_rfc3339(built).ok()?;
    Some((airlock_core::time::now() - t).max(0) / 86_400)
}

/// One (image, advisory, package URL) pair, as the state file and audit entries list it.
type Pair = (String, String, String);

impl Appliance {
    /// Matches every served SBOM against the active database and records in the audit log
    /// (`vulnerabilities-rematched`) the pairs that became vulnerable or were resolved since
    /// the last match. Does nothing without a database. Returns the audit entry's data.
    pub fn rematch(&mut self) -> Result<Option<Value>, ApplianceError> {
        let Some((act, rows, undecided)) = match_served(self, None)? else {
            return Ok(None);
        };
        let now: BTreeSet<Pair> = rows
            .iter()
            .map(|(i, m)| (i.clone(), m.id.clone(), m.purl.clone()))
            .collect();
        let state = self.root.join(STATE);
        let before: BTreeSet<Pair> = match std::fs::read(&state) {
            Ok(b) => serde_json::from_slice::<Value>(&b)
                .ok()
                .and_then(|v| serde_json::from_value(v["pairs"].clone()).ok())
                .unwrap_or_default(),
            Err(_) => BTreeSet::new(),
        };
        let list = |s: Vec<&Pair>| -> Value {
            s.iter()
                .take(MAX_LISTED)
                .map(|(i, id, p)| {
                    let sev = rows
                        .iter()
                        .find(|(ri, m)| ri == i && &m.id == id && &m.purl == p)
                        .map(|(_, m)| m.severity.name());
                    json!({"artifact": i, "id": id, "purl": p, "severity": sev})
                })
                .collect()
        };
        let new: Vec<&Pair> = now.difference(&before).collect();
        let resolved: Vec<&Pair> = before.difference(&now).collect();
        let data = json!({
            "vulndbBundle": act.bundle,
            "vulndbBuilt": act.header["built"],
            "vulnerable": now.len(),
            "undecided": undecided,
            "newlyVulnerableCount": new.len(),
            "resolvedCount": resolved.len(),
            "newlyVulnerable": list(new),
            "resolved": list(resolved),
        });
        self.audit("vulnerabilities-rematched", data.clone())?;
        airlock_store::write_atomic(
            &state,
            &serde_json::to_vec(&json!({"vulndbBundle": act.bundle, "pairs": now})).expect("JSON"),
        )?;
        Ok(Some(data))
    }
}

/// The import policy's view of vulnerabilities, for the bundle `m` being imported at `now`:
/// `sboms` (one per SBOM record: artifact, subject, component count), `vulnerabilities` (the
/// records' components matched against the active database, each with `waived` computed here
/// from the bundle's unexpired vulnerability waivers) and `vulndb` (`present`, and with a
/// database its bundle, build time, age in days and record count). The database is read only
/// when the bundle carries SBOM records.
pub fn policy_inputs(
    a: &Appliance,
    m: &airlock_core::bundle::BundleManifest,
    now: i64,
) -> Result<(Value, Value, Value), ApplianceError> {
    let sboms: Vec<Value> = m
        .sboms
        .iter()
        .map(|r| {
            json!({"artifact": r.artifact, "subject": r.subject.to_string(), "sbom": r.sbom.to_string(),
                   "components": r.components.len()})
        })
        .collect();
    if m.sboms.is_empty() {
        let present = a
            .catalog
            .served()?
            .iter()
            .any(|r| r.kind == "file" && r.name == VULNDB_NAME && r.current);
        return Ok((json!(sboms), json!([]), json!({"present": present})));
    }
    let wanted: Vec<airlock_vuln::matching::Component> = m
        .sboms
        .iter()
        .flat_map(|r| &r.components)
        .filter_map(|c| {
            airlock_vuln::matching::Component::from_purl(&c.purl, c.source_package.as_deref())
        })
        .collect();
    let Some(act) = active_into(a, Database::only_for(&wanted))? else {
        return Ok((json!(sboms), json!([]), json!({"present": false})));
    };
    let built = act.header["built"].as_str().unwrap_or("").to_string();
    let age = airlock_core::time::parse_rfc3339(&built)
        .ok()
        .map(|t| (now - t).max(0) / 86_400);
    let vulndb = json!({"present": true, "bundle": act.bundle, "built": built, "ageDays": age,
                        "records": act.header["records"]});
    let mut vulns = Vec::new();
    for r in &m.sboms {
        let components: Vec<airlock_vuln::matching::Component> = r
            .components
            .iter()
            .filter_map(|c| {
                airlock_vuln::matching::Component::from_purl(&c.purl, c.source_package.as_deref())
            })
            .collect();
        let (ms, _) = airlock_vuln::db::match_all(&act.db, &components);
        for mt in ms {
            let waived = m.waivers.iter().any(|w| {
                let names_it = w
                    .vulnerability
                    .as_deref()
                    .is_some_and(|v| v == mt.id || mt.aliases.iter().any(|al| al == v));
                let same_artifact = w.artifact == r.artifact
                    || r.artifact
                        .strip_prefix(&w.artifact)
                        .is_some_and(|rest| rest.starts_with('@'));
                let in_force = w
                    .expires
                    .as_deref()
                    .is_none_or(|e| airlock_core::time::parse_rfc3339(e).is_ok_and(|t| t > now));
                names_it && same_artifact && in_force
            });
            let mut v = serde_json::to_value(&mt).expect("match serialises");
            v["artifact"] = json!(r.artifact);
            v["waived"] = json!(waived);
            vulns.push(v);
        }
    }
    Ok((json!(sboms), Value::Array(vulns), vulndb))
}
