//! airlock-policy: the import gate as code.
//!
//! A policy is a Rego v1 module in package `airlock.import` that defines `deny`, a set of
//! strings. [`Policy::evaluate`] runs it in-process (regorus, no OPA daemon) over the input
//! document described in `default.rego` and returns a [`Decision`]: admitted when `deny` is
//! empty, otherwise refused with every message as a reason. Each evaluation works on a fresh
//! copy of the compiled engine, so evaluations never see each other's input.

use std::path::Path;

use serde::Serialize;

/// The policy built into airlockd.
pub const DEFAULT_POLICY: &str = include_str!("default.rego");
const RULE: &str = "data.airlock.import.deny";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {source_name}: {message}")]
    Load {
        source_name: String,
        message: String,
    },
    #[error("evaluating policy {source_name}: {message}")]
    Eval {
        source_name: String,
        message: String,
    },
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    pub reasons: Vec<String>,
    /// Where the policy came from (`built-in` or a file path).
    pub policy: String,
    /// SHA-256 (hex) of the policy's Rego text: which exact policy decided.
    pub policy_sha256: String,
}

#[derive(Clone)]
pub struct Policy {
    engine: regorus::Engine,
    name: String,
    sha256: String,
}

impl Policy {
    pub fn builtin() -> Self {
        Self::from_source("built-in", DEFAULT_POLICY).expect("the built-in policy compiles")
    }

    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Load {
            source_name: name.clone(),
            message: e.to_string(),
        })?;
        Self::from_source(&name, &text)
    }

    pub fn from_source(name: &str, rego: &str) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy(name.to_string(), rego.to_string())
            .map_err(|e| PolicyError::Load {
                source_name: name.into(),
                message: e.to_string(),
            })?;
        let p = Policy {
            engine,
            name: name.into(),
            sha256: hex_sha256(rego.as_bytes()),
        };
        // Fail at load time, not at the first import, when the module lacks the rule.
        p.evaluate(&serde_json::json!({"bundle": {"artifacts": []}, "signers": [], "findings": [], "waivers": []}))?;
        Ok(p)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 (hex) of the Rego text.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Evaluates `deny` over `input`.
    pub fn evaluate(&self, input: &serde_json::Value) -> Result<Decision, PolicyError> {
        let err = |message: String| PolicyError::Eval {
            source_name: self.name.clone(),
            message,
        };
        let mut engine = self.engine.clone();
        engine
            .set_input_json(&input.to_string())
            .map_err(|e| err(e.to_string()))?;
        let v = engine
            .eval_rule(RULE.to_string())
            .map_err(|e| err(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&v.to_json_str().map_err(|e| err(e.to_string()))?)
                .map_err(|e| err(e.to_string()))?;
        let reasons: Vec<String> = match json {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
            serde_json::Value::Null => vec![],
            other => return Err(err(format!("`deny` must be a set of strings, got {other}"))),
        };
        let mut reasons = reasons;
        reasons.sort();
        Ok(Decision {
            allow: reasons.is_empty(),
            reasons,
            policy: self.name.clone(),
            policy_sha256: self.sha256.clone(),
        })
    }
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_policy_requires_two_signers_for_production() {
        let p = Policy::builtin();
        let input = |channel: &str, signers: usize| {
            json!({"bundle": {"channel": channel, "artifacts": [{"kind": "image", "name": "r.example/a:1"}]},
                   "signers": vec!["k"; signers].iter().enumerate().map(|(i, _)| format!("k{i}")).collect::<Vec<_>>(),
                   "findings": [], "waivers": []})
        };
        assert!(p.evaluate(&input("staging", 1)).unwrap().allow);
        let d = p.evaluate(&input("production", 1)).unwrap();
        assert!(!d.allow);
        assert!(d.reasons[0].contains("at least 2"), "{d:?}");
        assert!(p.evaluate(&input("production", 2)).unwrap().allow);
    }

    #[test]
    fn findings_and_bad_names_are_denied() {
        let p = Policy::builtin();
        let d = p
            .evaluate(&json!({"bundle": {"channel": "s", "artifacts": [{"kind": "image", "name": "busybox"}]},
                "signers": ["a"], "findings": [{"severity": "malicious", "rule": "os.system", "artifact": "m", "file": "x.pkl"}]}))
            .unwrap();
        assert_eq!(d.reasons.len(), 2, "{d:?}");
    }

    #[test]
    fn info_findings_need_no_waiver() {
        let p = Policy::builtin();
        let input = |severity: &str| {
            json!({"bundle": {"channel": "s", "artifacts": [{"kind": "model", "name": "m"}]},
                "signers": ["a"], "waivers": [],
                "findings": [{"severity": severity, "rule": "npy/object-array", "key": "npy/object-array", "artifact": "m", "file": "x.npy"}]})
        };
        assert!(p.evaluate(&input("info")).unwrap().allow);
        assert!(!p.evaluate(&input("suspicious")).unwrap().allow);
    }

    #[test]
    fn a_policy_without_deny_is_refused_at_load() {
        let e = Policy::from_source("x.rego", "package other\nimport rego.v1\nallow := true\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("x.rego"), "{e}");
        assert!(Policy::from_source("x.rego", "this is not rego").is_err());
    }
}
