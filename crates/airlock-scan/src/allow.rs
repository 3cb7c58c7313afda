//! Allowlists of classes that unpickle as data, beyond the core list in [`crate::globals`].
//!
//! scikit-learn pipelines, SciPy sparse matrices, pandas frames and XGBoost/LightGBM boosters
//! are ordinary model files, but their pickles import classes that no core list can know; each
//! one would be an `unknown-global` finding needing a signed waiver. Two lists admit them:
//!
//! - the built-in list ([`AllowList::builtin`], `allowlists/data-classes-v1.txt`, versioned by
//!   [`BUILTIN_ID`]): classes checked to restore only attributes when unpickled, and the
//!   reconstructor functions their pickles call;
//! - an operator list (`--allow-globals FILE`, [`AllowList::parse`]), whose SHA-256 is
//!   recorded with the scan results so that an auditor can tell what was admitted.
//!
//! Both name exact `module.Class` pairs: a whole module is never admitted, and a line naming a
//! denylisted global (`os.system`, `builtins.eval`, anything in `subprocess`) is refused, so
//! no list can hide code execution. An allowlisted global only ever turns a `suspicious`
//! verdict into no finding; a `malicious` one stays malicious ([`crate::globals::classify_with`]).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::globals::{classify, normalize_module, Verdict};

/// Name and version of the built-in list, recorded in the scanner string.
pub const BUILTIN_ID: &str = "data-classes-v1";

const BUILTIN_TEXT: &str = include_str!("../allowlists/data-classes-v1.txt");

/// A set of exact `(module, name)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: BTreeSet<(String, String)>,
    sha256: Option<String>,
}

/// A line of an allowlist that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct AllowListError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

fn ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f == '_' || f.is_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_alphanumeric())
}

impl AllowList {
    /// An empty list (no operator allowlist).
    pub fn empty() -> AllowList {
        AllowList::default()
    }

    /// Parses an allowlist: one `module.Class` per line; `#` starts a comment; blank lines are
    /// skipped. Refused: wildcards (`sklearn.*`), a bare module name, anything that is not a
    /// dotted Python identifier, and a global the denylist marks malicious.
    pub fn parse(text: &str) -> Result<AllowList, AllowListError> {
        let mut entries = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| AllowListError {
                line: i + 1,
                message,
            };
            if line.contains('*') {
                return Err(err(format!(
                    "{line:?}: wildcards are refused; name each class as module.Class, a whole module is never allowlisted"
                )));
            }
            if line.split_whitespace().nth(1).is_some() {
                return Err(err(format!(
                    "{line:?}: one module.Class per line, without spaces"
                )));
            }
            let Some((module, name)) = line.rsplit_once('.') else {
                return Err(err(format!(
                    "{line:?} names no class; write module.Class (a whole module is never allowlisted)"
                )));
            };
            if !module.split('.').all(ident) || !ident(name) {
                return Err(err(format!(
                    "{line:?} is not a dotted Python name (module.Class)"
                )));
            }
            if let Verdict::Malicious(why) = classify(module, name) {
                return Err(err(format!(
                    "{line:?} cannot be allowlisted: {why}, and it stays malicious"
                )));
            }
            entries.insert((normalize_module(module).to_string(), name.to_string()));
        }
        Ok(AllowList {
            entries,
            sha256: Some(format!(
                "sha256:{}",
                hex::encode(Sha256::digest(text.as_bytes()))
            )),
        })
    }

    /// The built-in list of data classes ([`BUILTIN_ID`]).
    pub fn builtin() -> &'static AllowList {
        static BUILTIN: OnceLock<AllowList> = OnceLock::new();
        BUILTIN.get_or_init(|| AllowList::parse(BUILTIN_TEXT).expect("built-in allowlist parses"))
    }

    /// Whether `module.name` is listed (`module` as the pickle names it; Python 2 names are
    /// normalized).
    pub fn contains(&self, module: &str, name: &str) -> bool {
        self.entries
            .contains(&(normalize_module(module).to_string(), name.to_string()))
    }

    /// `sha256:<hex>` of the text parsed; `None` for [`AllowList::empty`].
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_parses_and_names_classes() {
        let b = AllowList::builtin();
        assert!(b.len() > 100);
        for (m, n) in [
            ("sklearn.pipeline", "Pipeline"),
            ("sklearn.linear_model._logistic", "LogisticRegression"),
            ("sklearn.preprocessing._data", "StandardScaler"),
            ("scipy.sparse._csr", "csr_matrix"),
            ("pandas.core.frame", "DataFrame"),
            ("pandas._libs.internals", "_unpickle_block"),
            ("xgboost.core", "Booster"),
            ("lightgbm.basic", "Booster"),
        ] {
            assert!(b.contains(m, n), "{m}.{n}");
        }
        assert!(!b.contains("sklearn.pipeline", "make_pipeline"));
        assert!(!b.contains("sklearn", "pipeline"));
    }

    #[test]
    fn operator_list_parses_with_comments() {
        let l = AllowList::parse("# mine\n\ncorp.models.Scorer  # checked\n  corp.x.Y\n").unwrap();
        assert_eq!(l.len(), 2);
        assert!(l.contains("corp.models", "Scorer"));
        assert!(l.contains("corp.x", "Y"));
        assert!(!l.contains("corp.models", "Other"));
        let digest = l.sha256().unwrap();
        assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64);
        assert_ne!(AllowList::parse("corp.x.Y\n").unwrap().sha256(), l.sha256());
        assert_eq!(AllowList::empty().sha256(), None);
    }

    #[test]
    fn operator_list_refuses_modules_wildcards_and_denylisted_globals() {
        let refused = |text: &str, line: usize, says: &str| {
            let e = AllowList::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(says), "{text:?}: {e}");
        };
        refused("ok.A\nsklearn.*\n", 2, "wildcards are refused");
        refused("sklearn.pipeline.*", 1, "whole module");
        refused("*", 1, "wildcards");
        refused("sklearn", 1, "names no class");
        refused("sklearn.", 1, "not a dotted Python name");
        refused("a..b", 1, "not a dotted Python name");
        refused("a.b c.d", 1, "one module.Class per line");
        refused("os.system", 1, "stays malicious");
        refused("posix.system", 1, "stays malicious");
        refused("builtins.eval", 1, "stays malicious");
        refused("__builtin__.getattr", 1, "stays malicious");
        refused("subprocess.Popen", 1, "stays malicious");
        refused("torch.load", 1, "stays malicious");
    }
}
