//! Checks an auditor or operator runs: fsck, audit verification, inventories.

use std::collections::BTreeSet;
use std::path::PathBuf;

use airlock_catalog::{audit, ArtifactRow, BundleRow, ChannelRow, ImportRow};
use airlock_core::inventory::{
    Inventory, InventoryBlob, PAYLOAD_TYPE as INVENTORY_PAYLOAD_TYPE, TYPE as INVENTORY_TYPE,
};
use airlock_core::time::{format_rfc3339, now};
use airlock_trust::{Envelope, Signer};
use serde::Serialize;
use serde_json::json;

use crate::import::{closure_complete, recorded_manifests};
use crate::{Appliance, ApplianceError};

impl Appliance {
    /// Re-hashes every blob, checks that every recorded blob is present and that every visible
    /// artifact's closure is complete. Returns the problems (empty when clean).
    pub fn fsck(&self) -> Result<Vec<String>, ApplianceError> {
        let mut problems = self.store.fsck()?;
        problems.extend(crate::modes::check(&self.root));
        let present: BTreeSet<_> = self.store.list()?.into_iter().collect();
        for (d, _) in self.catalog.blobs()? {
            if !present.contains(&d) {
                problems.push(format!(
                    "{d}: recorded in the catalog but missing from blobs/"
                ));
            }
        }
        let manifests = recorded_manifests(&self.catalog)?;
        for a in self.catalog.artifacts()?.into_iter().filter(|a| a.visible) {
            let Some((_, m)) = manifests.iter().find(|(id, _)| *id == a.bundle) else {
                problems.push(format!(
                    "{} {}: its bundle {} is not recorded",
                    a.kind, a.name, a.bundle
                ));
                continue;
            };
            let Some(art) = m
                .artifacts
                .iter()
                .find(|x| x.name == a.name && x.kind.to_string() == a.kind)
            else {
                problems.push(format!(
                    "{} {}: not in its bundle's manifest",
                    a.kind, a.name
                ));
                continue;
            };
            if !closure_complete(&self.store, art)? {
                problems.push(format!(
                    "{} {} is visible but a blob of its closure is missing",
                    a.kind, a.name
                ));
            }
        }
        Ok(problems)
    }

    /// `fsck --repair`: moves every blob whose content does not match its digest to
    /// `DATA/damaged/` and marks every visible artifact whose closure is now incomplete as not
    /// visible. Importing the volume that carried a damaged blob again (it is no longer a no-op,
    /// since a blob of it is missing) restores the blob and the artifact. Returns one line per
    /// change; the changes are recorded in the audit log.
    pub fn repair(&mut self) -> Result<Vec<String>, ApplianceError> {
        let mut done = Vec::new();
        let damaged = self.store.damaged()?;
        let aside = self.root.join("damaged");
        for d in &damaged {
            let to = self.store.set_aside(d, &aside)?;
            done.push(format!(
                "{d}: content does not match its digest; moved to {}",
                to.display()
            ));
        }
        let manifests = recorded_manifests(&self.catalog)?;
        let mut hidden = Vec::new();
        for a in self.catalog.artifacts()?.into_iter().filter(|a| a.visible) {
            let Some(art) = manifests
                .iter()
                .find(|(id, _)| *id == a.bundle)
                .and_then(|(_, m)| {
                    m.artifacts
                        .iter()
                        .find(|x| x.name == a.name && x.kind.to_string() == a.kind)
                })
            else {
                continue;
            };
            if !closure_complete(&self.store, art)? {
                done.push(format!(
                    "{} {}: marked not visible until the volume carrying the missing blob is imported again",
                    a.kind, a.name
                ));
                hidden.push(a);
            }
        }
        if !hidden.is_empty() {
            self.catalog.write(|tx| {
                for a in &hidden {
                    airlock_catalog::Catalog::mark_not_visible(tx, &a.bundle, &a.kind, &a.name)?;
                }
                Ok(())
            })?;
        }
        if !done.is_empty() {
            self.audit(
                "fsck-repaired",
                json!({"damagedBlobs": damaged, "hidden": hidden.iter().map(|a| format!("{} {}", a.kind, a.name)).collect::<Vec<_>>()}),
            )?;
        }
        Ok(done)
    }

    /// Verifies the audit chain and the signed head file.
    pub fn verify_audit(&self) -> Result<audit::Report, ApplianceError> {
        let mut report = self.catalog.verify_audit(&self.public_key())?;
        let head_path = self.root.join("audit.head");
        match airlock_core::bounded::read_file_at_most(&head_path, 64 * 1024) {
            Ok(bytes) => match crate::head::verify(&bytes, &self.public_key()) {
                Ok((seq, hash)) => match self.catalog.audit_hash(seq)? {
                    None => report.problems.push(format!(
                        "the signed head names entry {seq}, which is not in the log: the newest entries were deleted"
                    )),
                    Some(h) if h != hash => report
                        .problems
                        .push(format!("entry {seq} differs from the signed head")),
                    _ => {}
                },
                Err(problem) => report.problems.push(problem),
            },
            Err(e) => report
                .problems
                .push(format!("{}: {e}", head_path.display())),
        }
        Ok(report)
    }

    /// A signed inventory of the blobs this appliance holds.
    pub fn export_inventory(&self) -> Result<Vec<u8>, ApplianceError> {
        let blobs = self
            .catalog
            .blobs()?
            .into_iter()
            .map(|(digest, size)| InventoryBlob { digest, size })
            .collect();
        let inv = Inventory {
            type_: INVENTORY_TYPE.into(),
            appliance: self.public_key().keyid(),
            created: format_rfc3339(now()),
            blobs,
        };
        let payload = serde_json::to_vec(&inv).expect("inventory serializes");
        let key: &dyn Signer = self.signer()?;
        Ok(Envelope::sign(INVENTORY_PAYLOAD_TYPE, &payload, &[key])?.to_json())
    }

    /// A summary for `airlockd status` and `list`.
    pub fn summary(&self) -> Result<Summary, ApplianceError> {
        Ok(Summary {
            data: self.root.clone(),
            trust_root_version: self.trust.meta.version,
            trust_root_expires: self.trust.meta.expires.clone(),
            appliance_key: self.public_key().keyid(),
            policy: self.policy.name().to_string(),
            bundles: self.catalog.bundles()?,
            channels: self.catalog.channels()?,
            artifacts: self.catalog.artifacts()?,
            names: self
                .catalog
                .names()?
                .into_iter()
                .map(|(kind, name, digest)| NameRow { kind, name, digest })
                .collect(),
            recent_imports: self.catalog.imports(10)?,
        })
    }
}

/// What `airlockd list` and `status` show (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub data: PathBuf,
    pub trust_root_version: u64,
    pub trust_root_expires: String,
    pub appliance_key: String,
    pub policy: String,
    pub bundles: Vec<BundleRow>,
    pub channels: Vec<ChannelRow>,
    pub artifacts: Vec<ArtifactRow>,
    pub names: Vec<NameRow>,
    /// The newest import attempts, newest first (at most ten).
    pub recent_imports: Vec<ImportRow>,
}

/// A name served and the digest of the newest visible artifact under it.
#[derive(Debug, Clone, Serialize)]
pub struct NameRow {
    pub kind: String,
    pub name: String,
    pub digest: String,
}
