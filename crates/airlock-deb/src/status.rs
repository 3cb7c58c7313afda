//! What the target machine already has: the installed packages of a dpkg `status` file
//! (`/var/lib/dpkg/status`), so that a resolution leaves out what is already satisfied.
//!
//! A package counts as installed when its `Status` is `install ok installed` or
//! `hold ok installed` (held packages are installed too). Other paragraphs (removed,
//! config-files, half-installed) are ignored; installed ones must carry a valid `Version`
//! and an `Architecture`, and their `Provides` must parse.

use std::collections::HashMap;

use crate::control::{clip, paragraphs};
use crate::relation::{parse_list, Relation};
use crate::DebError;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub provides: Vec<Relation>,
    /// `Pre-Depends` and `Depends` groups (to see which installed packages an upgrade breaks).
    pub depends: Vec<Vec<Relation>>,
    /// `Conflicts` and `Breaks`.
    pub conflicts: Vec<Relation>,
    /// The source package it was built from (`Source`, else its own name).
    pub source: String,
}

/// The installed packages of a target machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    packages: Vec<Installed>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<(usize, usize)>>,
}

impl Baseline {
    /// The installed packages of dpkg `status` text.
    pub fn parse(text: &str) -> Result<Baseline, DebError> {
        let mut b = Baseline::default();
        for p in paragraphs(text) {
            let p = p?;
            let n = p.number;
            let Some(name) = p.get("Package") else {
                return Err(DebError(format!("status paragraph {n}: no Package field")));
            };
            let words: Vec<&str> = p.get("Status").unwrap_or("").split_whitespace().collect();
            if !matches!(words.as_slice(), ["install" | "hold", "ok", "installed"]) {
                continue;
            }
            let err =
                |what: String| DebError(format!("status paragraph {n} ({}): {what}", clip(name)));
            let version = p.get("Version").unwrap_or("");
            if !crate::version::is_valid(version) {
                return Err(err(format!("bad Version {:?}", clip(version))));
            }
            let Some(arch) = p.get("Architecture") else {
                return Err(err("no Architecture field".into()));
            };
            let provides = match p.get("Provides") {
                Some(t) => parse_list("Provides", t).map_err(|e| err(e.0))?,
                None => Vec::new(),
            };
            let mut depends = Vec::new();
            for field in ["Pre-Depends", "Depends"] {
                if let Some(t) = p.get(field) {
                    depends.extend(crate::relation::parse_groups(field, t).map_err(|e| err(e.0))?);
                }
            }
            let mut conflicts = Vec::new();
            for field in ["Conflicts", "Breaks"] {
                if let Some(t) = p.get(field) {
                    conflicts.extend(parse_list(field, t).map_err(|e| err(e.0))?);
                }
            }
            let i = b.packages.len();
            for (j, r) in provides.iter().enumerate() {
                b.providers
                    .entry(r.name.to_string())
                    .or_default()
                    .push((i, j));
            }
            b.by_name.entry(name.to_string()).or_default().push(i);
            b.packages.push(Installed {
                name: name.to_string(),
                version: version.to_string(),
                architecture: arch.to_string(),
                provides,
                depends,
                conflicts,
                source: source_name(p.get("Source"), name),
            });
        }
        Ok(b)
    }

    /// Every installed package.
    pub fn packages(&self) -> &[Installed] {
        &self.packages
    }

    /// How many installed packages.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// Is nothing installed?
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The installed packages named `name` (several only for `Multi-Arch: same` packages).
    pub fn installed(&self, name: &str) -> impl Iterator<Item = &Installed> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.packages.get(i))
    }

    /// Does an installed package, or an installed package's `Provides`, satisfy `rel`
    /// (`native` being the target's architecture)? An unversioned provide satisfies only an
    /// unversioned relation.
    pub fn satisfies(&self, rel: &Relation, native: &str) -> bool {
        let arch_ok = |p: &Installed| match rel.arch.as_deref() {
            None | Some("any") => true,
            Some("native") => p.architecture == native || p.architecture == "all",
            Some(a) => p.architecture == a,
        };
        if self
            .installed(&rel.name)
            .any(|p| arch_ok(p) && rel.accepts_version(&p.version))
        {
            return true;
        }
        self.providers
            .get(&*rel.name)
            .into_iter()
            .flatten()
            .any(|&(i, j)| {
                let Some(p) = self.packages.get(i) else {
                    return false;
                };
                let Some(prov) = p.provides.get(j) else {
                    return false;
                };
                arch_ok(p) && provide_satisfies(prov, rel)
            })
    }
}

/// The source package name of a `Source` field (`systemd (252.38-1)` → `systemd`), else
/// the binary package's own name.
pub fn source_name(field: Option<&str>, package: &str) -> String {
    field
        .and_then(|f| f.split_whitespace().next())
        .unwrap_or(package)
        .to_string()
}

/// Does the provide `prov` (of a package whose name is `prov.name`'s provider) satisfy
/// `rel`? Unversioned relations take any provide; versioned ones only a versioned provide
/// whose version satisfies them.
pub(crate) fn provide_satisfies(prov: &Relation, rel: &Relation) -> bool {
    match (&rel.version, &prov.version) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some((_, v))) => rel.accepts_version(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::parse_one;

    #[test]
    fn installed_only() {
        let t = "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nProvides: va, vb (= 2)\n\n\
                 Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n\
                 Package: h\nStatus: hold ok installed\nVersion: 3\nArchitecture: all\n";
        let b = Baseline::parse(t).unwrap();
        assert_eq!(b.len(), 2);
        let r = |s: &str| parse_one(s).unwrap();
        assert!(b.satisfies(&r("a (>= 1)"), "amd64"));
        assert!(!b.satisfies(&r("a (>> 1.0)"), "amd64"));
        assert!(b.satisfies(&r("va"), "amd64"));
        assert!(!b.satisfies(&r("va (>= 1)"), "amd64"));
        assert!(b.satisfies(&r("vb (>= 1)"), "amd64"));
        assert!(!b.satisfies(&r("gone"), "amd64"));
        assert!(b.satisfies(&r("h:native"), "amd64"));
        assert!(!b.satisfies(&r("a:i386"), "amd64"));
        let e =
            Baseline::parse("Package: x\nStatus: install ok installed\nVersion: 1\n").unwrap_err();
        assert!(e.0.contains("(x)") && e.0.contains("Architecture"), "{e}");
    }
}
