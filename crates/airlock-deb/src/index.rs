//! The universe a resolution draws from: the binary packages of one or more `Packages`
//! indexes for one native architecture.
//!
//! [`Index::add_packages`] checks every stanza it keeps (name, version, architecture,
//! `Multi-Arch`, a relative `Filename` without `..`, `Size`, a SHA-256 of 64 hex digits, and
//! every relationship field) and names the package or paragraph at fault. Stanzas of other
//! architectures are skipped; the first source to offer a (name, version, architecture)
//! wins. The index keeps each `Packages` text it was given and every [`Package`] the place of
//! its stanza in it ([`Index::stanza`]), so that the stanza can be published again verbatim
//! without a second copy of a 50 MB index in memory.
//! Lookups by name and by provided name go through two hash maps of package ids; versions of
//! one name are kept newest first.

use std::collections::HashMap;

use crate::control::{clip, paragraphs, Paragraph};
use crate::relation::{is_valid_name, parse_groups_in, parse_list_in, Interner, Relation};
use crate::{version, DebError};

/// A package's position in its [`Index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PkgId(pub u32);

/// The `Multi-Arch` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// One binary package of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub multi_arch: MultiArch,
    /// The caller's number for the `Packages` file it came from.
    pub source: u32,
    pub filename: String,
    pub size: u64,
    /// Lowercase hex, 64 characters.
    pub sha256: String,
    pub depends: Vec<Vec<Relation>>,
    pub pre_depends: Vec<Vec<Relation>>,
    pub recommends: Vec<Vec<Relation>>,
    pub conflicts: Vec<Vec<Relation>>,
    pub breaks: Vec<Vec<Relation>>,
    pub provides: Vec<Relation>,
    /// Where the paragraph stands in the index's texts: (text, start, end) byte offsets.
    stanza: (u32, usize, usize),
}

/// Binary packages of one native architecture (and `all`).
#[derive(Debug, Clone, Default)]
pub struct Index {
    native: String,
    packages: Vec<Package>,
    by_name: HashMap<String, Vec<PkgId>>,
    providers: HashMap<String, Vec<PkgId>>,
    strings: Interner,
    /// The `Packages` texts given to [`Index::add_packages`], which stanzas point into.
    texts: Vec<String>,
}

impl Index {
    /// An empty index for `native_arch` (`amd64`, `arm64`, …).
    pub fn new(native_arch: &str) -> Index {
        Index {
            native: native_arch.to_string(),
            ..Index::default()
        }
    }

    /// The native architecture.
    pub fn native_arch(&self) -> &str {
        &self.native
    }

    /// Adds the stanzas of one `Packages` file; `source` is the caller's number for it.
    /// Packages of other architectures are skipped (only native and `all` are kept). The
    /// same (name, version, architecture) seen again is ignored (first source wins). Returns
    /// how many packages were added. On error nothing of this file is kept.
    pub fn add_packages(
        &mut self,
        source: u32,
        text: impl Into<String>,
    ) -> Result<usize, DebError> {
        let text: String = text.into();
        let before = self.packages.len();
        let mut touched = Vec::new();
        if let Err(e) = self.add_all(source, &text, &mut touched) {
            // Forget this file's packages: ids from `before` on.
            self.packages.truncate(before);
            let keep = |id: &PkgId| (id.0 as usize) < before;
            self.by_name.retain(|_, ids| {
                ids.retain(keep);
                !ids.is_empty()
            });
            self.providers.retain(|_, ids| {
                ids.retain(keep);
                !ids.is_empty()
            });
            return Err(e);
        }
        // Newest first, then architecture, then earlier source.
        touched.sort();
        touched.dedup();
        for name in touched {
            if let Some(mut ids) = self.by_name.remove(&name) {
                ids.sort_by(|a, b| {
                    let (pa, pb) = (self.get(*a), self.get(*b));
                    version::compare(&pb.version, &pa.version)
                        .then_with(|| pa.architecture.cmp(&pb.architecture))
                        .then_with(|| a.cmp(b))
                });
                self.by_name.insert(name, ids);
            }
        }
        self.texts.push(text);
        Ok(self.packages.len() - before)
    }

    /// The paragraph of package `id` as it appeared in its `Packages` file.
    pub fn stanza(&self, id: PkgId) -> &str {
        let (t, start, end) = self.get(id).stanza;
        self.texts
            .get(t as usize)
            .and_then(|text| text.get(start..end))
            .unwrap_or_default()
    }

    /// Adds the packages of `text` one by one (straight into the index, so that a large file
    /// is not held twice); names that now have several versions go to `touched`.
    fn add_all(
        &mut self,
        source: u32,
        text: &str,
        touched: &mut Vec<String>,
    ) -> Result<(), DebError> {
        for p in paragraphs(text) {
            let p = p?;
            let Some(arch) = p.get("Architecture") else {
                return Err(DebError(format!(
                    "paragraph {}{}: no Architecture",
                    p.number,
                    name_note(&p)
                )));
            };
            if arch != self.native && arch != "all" {
                continue;
            }
            let mut pkg = package_of(&p, source, &mut self.strings)?;
            // The paragraph borrows from `text`: its offsets there.
            let start = (p.text.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
            pkg.stanza = (self.texts.len() as u32, start, start + p.text.len());
            let dup = self.by_name.get(&pkg.name).is_some_and(|ids| {
                ids.iter().any(|id| {
                    let q = self.get(*id);
                    q.version == pkg.version && q.architecture == pkg.architecture
                })
            });
            if dup {
                continue;
            }
            let Ok(n) = u32::try_from(self.packages.len()) else {
                return Err(DebError("more than 2^32 packages".into()));
            };
            let id = PkgId(n);
            for prov in &pkg.provides {
                let v = self.providers.entry(prov.name.to_string()).or_default();
                if v.last() != Some(&id) {
                    v.push(id);
                }
            }
            match self.by_name.get_mut(pkg.name.as_str()) {
                Some(ids) => {
                    ids.push(id);
                    touched.push(pkg.name.clone());
                }
                None => {
                    self.by_name.insert(pkg.name.clone(), vec![id]);
                }
            }
            self.packages.push(pkg);
        }
        Ok(())
    }

    /// How many packages the index holds.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// Does the index hold no package?
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The package `id` (ids come from this index).
    ///
    /// # Panics
    /// If `id` is not from this index.
    pub fn get(&self, id: PkgId) -> &Package {
        &self.packages[id.0 as usize]
    }

    /// All packages with their ids, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (PkgId, &Package)> {
        self.packages
            .iter()
            .enumerate()
            .map(|(i, p)| (PkgId(i as u32), p))
    }

    /// The packages named `name`, newest version first.
    pub fn versions_of(&self, name: &str) -> impl Iterator<Item = PkgId> + '_ {
        self.by_name.get(name).into_iter().flatten().copied()
    }

    /// The packages whose `Provides` names `name`, in the order they were added.
    pub fn providers_of(&self, name: &str) -> impl Iterator<Item = PkgId> + '_ {
        self.providers.get(name).into_iter().flatten().copied()
    }
}

fn name_note(p: &Paragraph<'_>) -> String {
    match p.get("Package") {
        Some(n) => format!(" ({})", clip(n)),
        None => String::new(),
    }
}

/// Is `f` a relative path of plain components (no `..`, `.`, empty component, backslash or
/// control character)?
/// A relative path without `.`/`..` components; one leading `./` is allowed (flat
/// repositories made by `apt-ftparchive packages .` write it).
fn filename_ok(f: &str) -> bool {
    let f = f.strip_prefix("./").unwrap_or(f);
    !f.is_empty()
        && f.len() <= 4096
        && !f.starts_with('/')
        && !f.chars().any(|c| c.is_control() || c == '\\')
        && f.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn package_of(p: &Paragraph<'_>, source: u32, strings: &mut Interner) -> Result<Package, DebError> {
    let n = p.number;
    let Some(name) = p.get("Package") else {
        return Err(DebError(format!("paragraph {n}: no Package field")));
    };
    if !is_valid_name(name) {
        return Err(DebError(format!(
            "paragraph {n}: bad package name {:?}",
            clip(name)
        )));
    }
    let err = |what: String| DebError(format!("package {name} (paragraph {n}): {what}"));
    let need = |field: &str| p.get(field).ok_or_else(|| err(format!("no {field} field")));
    let ver = need("Version")?;
    if !version::is_valid(ver) {
        return Err(err(format!("bad Version {:?}", clip(ver))));
    }
    let architecture = need("Architecture")?;
    let filename = need("Filename")?;
    if !filename_ok(filename) {
        return Err(err(format!(
            "Filename {:?} is not a plain relative path",
            clip(filename)
        )));
    }
    let size_text = need("Size")?;
    let size = size_text
        .bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| size_text.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| err(format!("bad Size {:?}", clip(size_text))))?;
    let sha = need("SHA256")?;
    if sha.len() != 64 || !sha.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(format!("SHA256 {:?} is not 64 hex digits", clip(sha))));
    }
    let multi_arch = match p.get("Multi-Arch") {
        None | Some("no") => MultiArch::No,
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        Some(other) => return Err(err(format!("bad Multi-Arch {:?}", clip(other)))),
    };
    let mut groups = |field: &str| -> Result<Vec<Vec<Relation>>, DebError> {
        match p.get(field) {
            None => Ok(Vec::new()),
            Some(t) => parse_groups_in(field, t, strings).map_err(|e| err(e.0)),
        }
    };
    let depends = groups("Depends")?;
    let pre_depends = groups("Pre-Depends")?;
    let recommends = groups("Recommends")?;
    let conflicts = groups("Conflicts")?;
    let breaks = groups("Breaks")?;
    let provides = match p.get("Provides") {
        None => Vec::new(),
        Some(t) => parse_list_in("Provides", t, strings).map_err(|e| err(e.0))?,
    };
    Ok(Package {
        name: name.to_string(),
        version: ver.to_string(),
        architecture: architecture.to_string(),
        multi_arch,
        source,
        filename: filename.to_string(),
        size,
        sha256: sha.to_ascii_lowercase(),
        depends,
        pre_depends,
        recommends,
        conflicts,
        breaks,
        provides,
        stanza: (0, 0, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}_{version}.deb\nSize: 10\nSHA256: {}\n\n",
            "ab".repeat(32)
        )
    }

    #[test]
    fn keeps_native_and_all_first_source_wins() {
        let mut text = stanza("a", "1", "");
        text += &stanza("a", "2", "Multi-Arch: foreign\n");
        text += &stanza("b", "1", "").replace("amd64", "i386");
        text +=
            &stanza("c", "1", "Depends: a (>= 1) | b\nProvides: v (= 3)\n").replace("amd64", "all");
        let mut ix = Index::new("amd64");
        assert_eq!(ix.add_packages(0, &text).unwrap(), 3);
        assert_eq!(ix.add_packages(1, stanza("a", "1", "")).unwrap(), 0);
        assert_eq!(ix.add_packages(1, stanza("a", "0.5", "")).unwrap(), 1);
        let vs: Vec<_> = ix
            .versions_of("a")
            .map(|id| ix.get(id).version.as_str())
            .collect();
        assert_eq!(vs, ["2", "1", "0.5"]);
        assert_eq!(
            ix.get(ix.versions_of("a").next().unwrap()).multi_arch,
            MultiArch::Foreign
        );
        let a1 = ix.versions_of("a").nth(1).unwrap();
        assert_eq!(ix.get(a1).source, 0);
        assert_eq!(ix.versions_of("b").count(), 0);
        let c = ix.get(ix.versions_of("c").next().unwrap());
        assert_eq!(c.depends[0].len(), 2);
        let c_id = ix.versions_of("c").next().unwrap();
        assert_eq!(
            ix.stanza(c_id),
            stanza("c", "1", "Depends: a (>= 1) | b\nProvides: v (= 3)\n")
                .replace("amd64", "all")
                .trim_end_matches('\n')
                .to_string()
                + "\n"
        );
        assert_eq!(ix.providers_of("v").count(), 1);
        assert_eq!(ix.len(), 4);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = |t: String| Index::new("amd64").add_packages(0, &t).unwrap_err().0;
        let good = stanza("a", "1", "");
        let err = e(good.replace(&"ab".repeat(32), &"ab".repeat(31)));
        assert!(err.contains("package a") && err.contains("SHA256"), "{err}");
        let err = e(good.replace(&"ab".repeat(32), &"zz".repeat(32)));
        assert!(err.contains("SHA256"), "{err}");
        assert!(e(good.replace("pool/", "../")).contains("Filename"));
        assert!(e(good.replace("pool/", "/pool/")).contains("Filename"));
        assert!(e(good.replace("Size: 10", "Size: -1")).contains("Size"));
        assert!(e(good.replace("Version: 1", "Version: x")).contains("Version"));
        assert!(e(good.replace("SHA256", "MD5sum")).contains("no SHA256"));
        let err = e(stanza("a", "1", "Depends: b (>= )\n"));
        assert!(
            err.contains("package a") && err.contains("Depends"),
            "{err}"
        );
        let err = e(format!("{good}Version: 1\nArchitecture: all\n"));
        assert!(err.contains("paragraph 2: no Package"), "{err}");
        let upper = Index::new("amd64")
            .add_packages(0, good.replace(&"ab".repeat(32), &"AB".repeat(32)))
            .map(|_| ());
        assert_eq!(upper, Ok(()));
    }
}
