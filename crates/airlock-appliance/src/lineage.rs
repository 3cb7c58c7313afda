//! Lineage queries over imported models: which models name a dataset (a GDPR erasure request
//! covers it), and the chain of parents of a model.
//!
//! Lineage travels signed in each bundle manifest (`provenance.lineage` of a model artifact:
//! `datasets`, `code`, `hyperparameters`, `parent`); these queries read it from the catalog.

use serde_json::{json, Value};

use crate::{Appliance, ApplianceError};

impl Appliance {
    /// Every imported model version whose lineage names dataset `name`.
    pub fn models_using_dataset(&self, name: &str) -> Result<Vec<Value>, ApplianceError> {
        let mut out = Vec::new();
        for a in self
            .catalog
            .artifacts()?
            .into_iter()
            .filter(|a| a.kind == "model")
        {
            let datasets = a.provenance["lineage"]["datasets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for d in datasets.iter().filter(|d| d["name"] == name) {
                out.push(json!({
                    "model": a.name, "digest": a.digest, "bundle": a.bundle, "visible": a.visible,
                    "dataset": d, "source": a.provenance["source"],
                }));
            }
        }
        Ok(out)
    }

    /// The model `name` (its newest visible version) and its ancestors through `parent`,
    /// nearest first. Stops at a parent this appliance does not hold, or at a cycle.
    pub fn model_chain(&self, name: &str) -> Result<Vec<Value>, ApplianceError> {
        let artifacts: Vec<_> = self
            .catalog
            .artifacts()?
            .into_iter()
            .filter(|a| a.kind == "model")
            .collect();
        let names = self.catalog.names()?;
        let current = |n: &str| {
            let digest = names
                .iter()
                .find(|(k, m, _)| k == "model" && m == n)
                .map(|(_, _, d)| d.clone());
            artifacts
                .iter()
                .find(|a| a.name == n && Some(&a.digest) == digest.as_ref())
                .or_else(|| artifacts.iter().rev().find(|a| a.name == n))
                .cloned()
        };
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut next = Some(name.to_string());
        while let Some(n) = next.take() {
            if !seen.insert(n.clone()) {
                out.push(json!({"model": n, "note": "cycle in lineage; stopping"}));
                break;
            }
            match current(&n) {
                Some(a) => {
                    let lineage = a.provenance["lineage"].clone();
                    next = lineage["parent"].as_str().map(str::to_string);
                    out.push(json!({
                        "model": a.name, "digest": a.digest, "bundle": a.bundle,
                        "license": a.provenance["license"], "source": a.provenance["source"],
                        "commit": a.provenance["commit"], "lineage": lineage,
                    }));
                }
                None => {
                    out.push(json!({"model": n, "note": "not on this appliance"}));
                    break;
                }
            }
        }
        Ok(out)
    }
}
