//! The resolver: the closure of packages that `apt-get install` on the target would accept
//! for a list of requests, drawn from an [`Index`] and leaving out what a [`Baseline`] of
//! installed packages already satisfies.
//!
//! The search is a depth-first walk over an agenda of unsatisfied dependency groups, with
//! chronological backtracking:
//!
//! * `Pre-Depends` and `Depends` are required; `Recommends` too when [`Options::recommends`]
//!   is set, except that one with no installable candidate is dropped, as apt drops it.
//! * A group is satisfied when a chosen package, a `Provides` of a chosen package, or the
//!   baseline satisfies one of its alternatives. Otherwise its candidates are tried in order:
//!   alternatives in the order written; for each, the packages of that name newest first
//!   (apt's default candidate is the newest), then the packages that provide the name,
//!   ordered by name and newest version. An unversioned provide satisfies only an unversioned
//!   relation; a versioned one (`Provides: foo (= 1.2)`) is compared like a real version.
//! * `Multi-Arch`: a relation `name:any` is satisfied only by `Multi-Arch: allowed` packages
//!   (apt gives only those the implicit `name:any` provide; a `foreign` package satisfies
//!   plain relations from any architecture, not `:any`); `name:native` (or the native architecture) like a plain relation;
//!   any other architecture qualifier has no candidate, since the index holds one
//!   architecture (and `all`).
//! * One version per name. `Conflicts` and `Breaks` are checked both ways against the chosen
//!   set, including against provided names (versioned conflicts only against versioned
//!   provides); a package never conflicts with itself. A clash moves on to the next candidate;
//!   when none is left the search backs up to the previous choice. The search gives up after
//!   [`MAX_STEPS`] candidate tries.
//! * A package installed on the target is never replaced by an older version (apt does not
//!   downgrade by itself); a relation that only an older version satisfies has no candidate.
//! * A request `name=version` pins that name to exactly that version everywhere in the
//!   closure. A request for a purely virtual name is accepted when exactly one package
//!   provides it.
//! * A package found to have a required group with no candidate at all can never be
//!   installed; it is remembered and not tried again, which keeps failing searches short.
//!
//! The result is never a partial closure: a required group that cannot be satisfied is an
//! error whose chain names the path from the request to it. Output is sorted by name and does
//! not depend on hash order.
//!
//! Not modelled: conflicts against the baseline (apt would remove or upgrade the installed
//! package), architecture restrictions and build profiles in binary relations (not allowed
//! there), and more than one architecture of a `Multi-Arch: same` package.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::index::{Index, MultiArch, Package, PkgId};
use crate::relation::{is_valid_name, Relation};
use crate::status::{provide_satisfies, Baseline};
use crate::{version, DebError};

/// The most candidate tries before the search gives up.
pub const MAX_STEPS: usize = 100_000;

/// A requested package: `name` or `name=version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub name: String,
    pub version: Option<String>,
}

impl FromStr for Request {
    type Err = DebError;

    fn from_str(s: &str) -> Result<Request, DebError> {
        let (name, version) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        if !is_valid_name(name) {
            return Err(DebError(format!(
                "request {:?}: bad package name",
                crate::control::clip(s)
            )));
        }
        if let Some(v) = version {
            if !version::is_valid(v) {
                return Err(DebError(format!(
                    "request {:?}: bad version",
                    crate::control::clip(s)
                )));
            }
        }
        Ok(Request {
            name: name.to_string(),
            version: version.map(str::to_string),
        })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// How to resolve.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Follow `Recommends` (apt's default); an unsatisfiable one is skipped.
    pub recommends: bool,
    /// Installed packages on the target; what they satisfy is left out.
    pub baseline: Option<Baseline>,
}

/// The packages to install, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub packages: Vec<Chosen>,
}

/// One package of a [`Resolution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub id: PkgId,
    /// Package names from the request that pulled it in to this package (for `--why`).
    pub chain: Vec<String>,
}

/// Why a resolution failed: the path from a request to the relation at fault, and the
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    /// The request, then each relation followed, ending with the one that failed.
    pub chain: Vec<String>,
    pub reason: String,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.chain.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.chain.join(" -> "), self.reason)
        }
    }
}

impl std::error::Error for ResolveError {}

/// Resolves `requests` against `index`; see the module documentation for the rules.
///
/// With a baseline, installed packages the closure would break are upgraded as apt does: an
/// installed package that a chosen package `Breaks`/`Conflicts` (or that breaks or conflicts
/// with a chosen package), whose dependencies an upgraded package no longer satisfies, or that
/// was built from the same source package as an installed package the closure upgrades (apt
/// keeps the binaries of one source at one version), is added to the request (newest version)
/// and the closure resolved again, until nothing more breaks. Its chain starts with
/// `NAME (upgrade of installed VERSION)`.
pub fn resolve(
    index: &Index,
    requests: &[Request],
    opts: &Options,
) -> Result<Resolution, ResolveError> {
    let Some(baseline) = &opts.baseline else {
        return resolve_once(index, requests, opts);
    };
    let mut all: Vec<Request> = requests.to_vec();
    let mut upgrades: HashMap<String, String> = HashMap::new();
    for _ in 0..64 {
        let res = resolve_once(index, &all, opts)?;
        let broken = broken_installed(index, baseline, &res, &upgrades);
        if broken.is_empty() {
            let mut res = res;
            for c in &mut res.packages {
                if let Some(first) = c.chain.first_mut() {
                    if let Some(v) = upgrades.get(first.as_str()) {
                        *first = format!("{first} (upgrade of installed {v})");
                    }
                }
            }
            return Ok(res);
        }
        for (name, version) in broken {
            upgrades.insert(name.clone(), version);
            all.push(Request {
                name,
                version: None,
            });
        }
    }
    Err(ResolveError {
        chain: requests.iter().map(ToString::to_string).collect(),
        reason: "upgrades of installed packages do not settle".into(),
    })
}

/// Installed packages (name, version) the resolution breaks and that have a newer version in
/// the index to upgrade to.
fn broken_installed(
    index: &Index,
    baseline: &Baseline,
    res: &Resolution,
    already: &HashMap<String, String>,
) -> Vec<(String, String)> {
    let chosen: Vec<&Package> = res.packages.iter().map(|c| index.get(c.id)).collect();
    let chosen_names: HashSet<&str> = chosen.iter().map(|p| p.name.as_str()).collect();
    let hits = |rel: &Relation, name: &str, version: &str, provides: &[Relation]| {
        (*rel.name == *name && rel.accepts_version(version))
            || provides
                .iter()
                .any(|pr| pr.name == rel.name && provide_satisfies(pr, rel))
    };
    let satisfied_after = |rel: &Relation| {
        chosen
            .iter()
            .any(|p| hits(rel, &p.name, &p.version, &p.provides))
            || baseline.packages().iter().any(|i| {
                !chosen_names.contains(i.name.as_str())
                    && hits(rel, &i.name, &i.version, &i.provides)
            })
    };
    // Sources of installed packages the closure upgrades.
    let upgraded_sources: HashSet<String> = res
        .packages
        .iter()
        .map(|c| (c.id, index.get(c.id)))
        .filter(|(_, p)| {
            baseline
                .installed(&p.name)
                .any(|i| version::compare(&p.version, &i.version).is_gt())
        })
        .map(|(id, p)| {
            let field = crate::control::paragraphs(index.stanza(id))
                .next()
                .and_then(Result::ok)
                .and_then(|para| para.get("Source"));
            crate::status::source_name(field, &p.name)
        })
        .collect();
    let mut out = Vec::new();
    for i in baseline.packages() {
        if chosen_names.contains(i.name.as_str()) || already.contains_key(&i.name) {
            continue;
        }
        let same_source = upgraded_sources.contains(&i.source);
        let clashes = chosen.iter().any(|p| {
            p.conflicts
                .iter()
                .chain(p.breaks.iter())
                .flatten()
                .any(|r| *r.name != *p.name && hits(r, &i.name, &i.version, &i.provides))
                || i.conflicts
                    .iter()
                    .any(|r| *r.name != *i.name && hits(r, &p.name, &p.version, &p.provides))
        });
        let unmet = || {
            i.depends.iter().any(|group| {
                group.iter().any(|r| chosen_names.contains(&*r.name))
                    && !group.iter().any(&satisfied_after)
            })
        };
        if !(same_source || clashes || unmet()) {
            continue;
        }
        let newer = index
            .versions_of(&i.name)
            .next()
            .is_some_and(|id| version::compare(&index.get(id).version, &i.version).is_gt());
        if newer {
            out.push((i.name.clone(), i.version.clone()));
        }
    }
    out.sort();
    out
}

fn resolve_once(
    index: &Index,
    requests: &[Request],
    opts: &Options,
) -> Result<Resolution, ResolveError> {
    let mut pins: HashMap<&str, &str> = HashMap::new();
    let mut req_rels = Vec::with_capacity(requests.len());
    for r in requests {
        let fail = |reason: String| ResolveError {
            chain: vec![r.to_string()],
            reason,
        };
        if !is_valid_name(&r.name) {
            return Err(fail("bad package name".into()));
        }
        if let Some(v) = &r.version {
            if !version::is_valid(v) {
                return Err(fail("bad version".into()));
            }
            if let Some(old) = pins.insert(&r.name, v) {
                if version::compare(old, v).is_ne() {
                    return Err(fail(format!("also requested as {}={old}", r.name)));
                }
            }
            let available: Vec<&str> = index
                .versions_of(&r.name)
                .map(|id| index.get(id).version.as_str())
                .collect();
            if !available.iter().any(|a| version::compare(a, v).is_eq()) {
                return Err(fail(if available.is_empty() {
                    "no such package in the given sources".into()
                } else {
                    format!("no such version; available: {}", available.join(", "))
                }));
            }
        } else if index.versions_of(&r.name).next().is_none() {
            let mut names: Vec<&str> = index
                .providers_of(&r.name)
                .map(|id| index.get(id).name.as_str())
                .collect();
            names.sort_unstable();
            names.dedup();
            match names.len() {
                0 => return Err(fail("no candidate in the given sources".into())),
                1 => {}
                _ => {
                    return Err(fail(format!(
                        "virtual package provided by {}; request one of them",
                        names.join(", ")
                    )))
                }
            }
        }
        req_rels.push(Relation {
            name: r.name.as_str().into(),
            arch: None,
            version: None,
            restrictions: None,
        });
    }
    let mut s = Solver {
        index,
        opts,
        requests,
        req_rels: &req_rels,
        pins,
        picks: Vec::new(),
        by_name: HashMap::new(),
        provided: HashMap::new(),
        conflicts_on: HashMap::new(),
        agenda: Vec::new(),
        log: Vec::new(),
        frames: Vec::new(),
        dead: HashSet::new(),
        steps: 0,
        first_failure: None,
    };
    for i in (0..requests.len()).rev() {
        s.agenda.push(Goal {
            need: Need::Request(i),
            optional: false,
        });
    }
    s.run()?;
    let mut packages: Vec<Chosen> = (0..s.picks.len())
        .filter_map(|i| {
            let id = s.picks.get(i)?.id;
            Some(Chosen {
                id,
                chain: s.chain_names(i),
            })
        })
        .collect();
    packages.sort_by(|a, b| {
        let (pa, pb) = (index.get(a.id), index.get(b.id));
        pa.name
            .cmp(&pb.name)
            .then_with(|| version::compare(&pa.version, &pb.version))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(Resolution { packages })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PreDepends,
    Depends,
    Recommends,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Request(usize),
    Group { from: PkgId, kind: Kind, idx: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Goal {
    need: Need,
    optional: bool,
}

/// An agenda operation, undone on backtracking.
#[derive(Debug, Clone, Copy)]
enum Undo {
    Pushed,
    Popped(Goal),
}

/// A chosen package: which goal and alternative chose it, and the pick that owns that goal.
#[derive(Debug, Clone, Copy)]
struct Pick {
    id: PkgId,
    goal: Goal,
    alt: usize,
    parent: Option<usize>,
}

/// A choice point: the goal, its candidates (package, alternative) and the next to try.
struct Frame {
    goal: Goal,
    cands: Vec<(PkgId, usize)>,
    next: usize,
    skipped: bool,
    log_len: usize,
    picks_len: usize,
}

struct Solver<'a> {
    index: &'a Index,
    opts: &'a Options,
    requests: &'a [Request],
    req_rels: &'a [Relation],
    pins: HashMap<&'a str, &'a str>,
    picks: Vec<Pick>,
    by_name: HashMap<&'a str, usize>,
    /// Provided name -> (pick, provide) of chosen packages.
    provided: HashMap<&'a str, Vec<(usize, &'a Relation)>>,
    /// Name -> (pick, relation) of the chosen packages' `Conflicts` and `Breaks`.
    conflicts_on: HashMap<&'a str, Vec<(usize, &'a Relation)>>,
    agenda: Vec<Goal>,
    log: Vec<Undo>,
    frames: Vec<Frame>,
    dead: HashSet<PkgId>,
    steps: usize,
    first_failure: Option<ResolveError>,
}

impl<'a> Solver<'a> {
    fn pkg(&self, id: PkgId) -> &'a Package {
        self.index.get(id)
    }

    fn group(&self, need: Need) -> &'a [Relation] {
        match need {
            Need::Request(i) => self.req_rels.get(i..=i).unwrap_or_default(),
            Need::Group { from, kind, idx } => {
                let p = self.index.get(from);
                let groups = match kind {
                    Kind::PreDepends => &p.pre_depends,
                    Kind::Depends => &p.depends,
                    Kind::Recommends => &p.recommends,
                };
                groups.get(idx).map(Vec::as_slice).unwrap_or_default()
            }
        }
    }

    /// Does package `p` match the architecture qualifier of `rel`?
    fn arch_ok(&self, rel: &Relation, p: &Package) -> bool {
        match rel.arch.as_deref() {
            None | Some("native") => true,
            Some("any") => p.multi_arch == MultiArch::Allowed,
            Some(a) => a == self.index.native_arch(),
        }
    }

    /// Does `p` respect the pins, and is it no older than an installed version of its name
    /// (apt never downgrades by itself)?
    fn pin_ok(&self, p: &Package) -> bool {
        let pinned = self
            .pins
            .get(p.name.as_str())
            .is_none_or(|v| version::compare(&p.version, v).is_eq());
        let native = self.index.native_arch();
        pinned
            && self.opts.baseline.as_ref().is_none_or(|b| {
                b.installed(&p.name).all(|i| {
                    !(i.architecture == native || i.architecture == "all")
                        || version::compare(&p.version, &i.version).is_ge()
                })
            })
    }

    fn satisfied(&self, goal: Goal) -> bool {
        let native = self.index.native_arch();
        if let Need::Request(i) = goal.need {
            let Some(r) = self.requests.get(i) else {
                return true;
            };
            if self.by_name.contains_key(r.name.as_str()) {
                return true;
            }
            let Some(b) = &self.opts.baseline else {
                return false;
            };
            // Installed already, at the pinned version or at least the newest candidate.
            let newest = self
                .index
                .versions_of(&r.name)
                .map(|id| self.pkg(id))
                .find(|p| self.pin_ok(p));
            return b.installed(&r.name).any(|inst| {
                let arch_ok = inst.architecture == native || inst.architecture == "all";
                arch_ok
                    && match (&r.version, newest) {
                        (Some(v), _) => version::compare(&inst.version, v).is_eq(),
                        (None, Some(n)) => version::compare(&inst.version, &n.version).is_ge(),
                        (None, None) => true,
                    }
            });
        }
        self.group(goal.need).iter().any(|rel| {
            if let Some(&i) = self.by_name.get(&*rel.name) {
                if let Some(pick) = self.picks.get(i) {
                    let p = self.pkg(pick.id);
                    if self.arch_ok(rel, p) && rel.accepts_version(&p.version) {
                        return true;
                    }
                }
            }
            let by_provide = self.provided.get(&*rel.name).is_some_and(|v| {
                v.iter().any(|&(i, prov)| {
                    self.picks.get(i).is_some_and(|pick| {
                        self.arch_ok(rel, self.pkg(pick.id)) && provide_satisfies(prov, rel)
                    })
                })
            });
            by_provide
                || self
                    .opts
                    .baseline
                    .as_ref()
                    .is_some_and(|b| b.satisfies(rel, native))
        })
    }

    fn candidates(&self, goal: Goal) -> Vec<(PkgId, usize)> {
        let mut out: Vec<(PkgId, usize)> = Vec::new();
        for (ai, rel) in self.group(goal.need).iter().enumerate() {
            if let Some(a) = rel.arch.as_deref() {
                if !matches!(a, "any" | "native") && a != self.index.native_arch() {
                    continue;
                }
            }
            let usable = |id: PkgId, p: &Package| {
                !self.dead.contains(&id) && self.arch_ok(rel, p) && self.pin_ok(p)
            };
            for id in self.index.versions_of(&rel.name) {
                let p = self.pkg(id);
                if usable(id, p)
                    && rel.accepts_version(&p.version)
                    && !out.iter().any(|c| c.0 == id)
                {
                    out.push((id, ai));
                }
            }
            let mut provs: Vec<PkgId> = self
                .index
                .providers_of(&rel.name)
                .filter(|&id| {
                    let p = self.pkg(id);
                    usable(id, p)
                        && p.provides
                            .iter()
                            .any(|prov| prov.name == rel.name && provide_satisfies(prov, rel))
                        && !out.iter().any(|c| c.0 == id)
                })
                .collect();
            provs.sort_by(|&a, &b| {
                let (pa, pb) = (self.pkg(a), self.pkg(b));
                pa.name
                    .cmp(&pb.name)
                    .then_with(|| version::compare(&pb.version, &pa.version))
                    .then_with(|| a.cmp(&b))
            });
            provs.dedup();
            out.extend(provs.into_iter().map(|id| (id, ai)));
        }
        out
    }

    /// Would choosing `id` clash with the chosen set? Names the chosen package it clashes with.
    fn clash(&self, id: PkgId) -> Option<String> {
        let c = self.pkg(id);
        if let Some(&i) = self.by_name.get(c.name.as_str()) {
            let other = self.picks.get(i).map(|p| self.pkg(p.id))?;
            return Some(format!(
                "{} {} is needed, but {} {} is chosen (via {})",
                c.name,
                c.version,
                other.name,
                other.version,
                self.chain_names(i).join(" -> ")
            ));
        }
        let described = |i: usize, what: &str| {
            let other = self.picks.get(i).map(|p| self.pkg(p.id));
            let (n, v) = other.map_or(("?", "?"), |o| (o.name.as_str(), o.version.as_str()));
            format!(
                "{} {} {what} {n} {v} (chosen via {})",
                c.name,
                c.version,
                self.chain_names(i).join(" -> ")
            )
        };
        for rel in c.conflicts.iter().chain(&c.breaks).flatten() {
            if let Some(&i) = self.by_name.get(&*rel.name) {
                if let Some(pick) = self.picks.get(i) {
                    if pick.id != id && rel.accepts_version(&self.pkg(pick.id).version) {
                        return Some(described(i, "conflicts with"));
                    }
                }
            }
            for &(i, prov) in self.provided.get(&*rel.name).into_iter().flatten() {
                let other = self.picks.get(i).map(|p| p.id);
                if other != Some(id) && provide_satisfies(prov, rel) {
                    return Some(described(
                        i,
                        &format!("conflicts with {} provided by", rel.name),
                    ));
                }
            }
        }
        for &(i, rel) in self.conflicts_on.get(c.name.as_str()).into_iter().flatten() {
            let other = self.picks.get(i).map(|p| p.id);
            if other != Some(id) && rel.accepts_version(&c.version) {
                return Some(described(i, "is in conflict with"));
            }
        }
        for prov in &c.provides {
            for &(i, rel) in self.conflicts_on.get(&*prov.name).into_iter().flatten() {
                let other = self.picks.get(i).map(|p| p.id);
                if other != Some(id) && provide_satisfies(prov, rel) {
                    return Some(described(
                        i,
                        &format!("provides {}, in conflict with", prov.name),
                    ));
                }
            }
        }
        None
    }

    fn choose(&mut self, id: PkgId, goal: Goal, alt: usize) {
        let p = self.pkg(id);
        let parent = match goal.need {
            Need::Request(_) => None,
            Need::Group { from, .. } => self.by_name.get(self.pkg(from).name.as_str()).copied(),
        };
        let i = self.picks.len();
        self.picks.push(Pick {
            id,
            goal,
            alt,
            parent,
        });
        self.by_name.insert(&p.name, i);
        for prov in &p.provides {
            self.provided.entry(&prov.name).or_default().push((i, prov));
        }
        for rel in p.conflicts.iter().chain(&p.breaks).flatten() {
            self.conflicts_on
                .entry(&rel.name)
                .or_default()
                .push((i, rel));
        }
        // The agenda is a stack: push so that Pre-Depends come off first, Recommends last.
        let mut push = |kind: Kind, n: usize, optional: bool| {
            for idx in (0..n).rev() {
                self.agenda.push(Goal {
                    need: Need::Group {
                        from: id,
                        kind,
                        idx,
                    },
                    optional,
                });
                self.log.push(Undo::Pushed);
            }
        };
        if self.opts.recommends {
            push(Kind::Recommends, p.recommends.len(), true);
        }
        push(Kind::Depends, p.depends.len(), false);
        push(Kind::PreDepends, p.pre_depends.len(), false);
    }

    /// Undoes agenda operations back to `log_len` and picks back to `picks_len`.
    fn undo_to(&mut self, log_len: usize, picks_len: usize) {
        while self.log.len() > log_len {
            match self.log.pop() {
                Some(Undo::Pushed) => {
                    self.agenda.pop();
                }
                Some(Undo::Popped(g)) => self.agenda.push(g),
                None => break,
            }
        }
        while self.picks.len() > picks_len {
            let Some(pick) = self.picks.pop() else {
                break;
            };
            let p = self.pkg(pick.id);
            self.by_name.remove(p.name.as_str());
            for prov in &p.provides {
                if let Some(v) = self.provided.get_mut(&*prov.name) {
                    v.pop();
                }
            }
            for rel in p.conflicts.iter().chain(&p.breaks).flatten() {
                if let Some(v) = self.conflicts_on.get_mut(&*rel.name) {
                    v.pop();
                }
            }
        }
    }

    /// Names from the request to pick `i`.
    fn chain_names(&self, mut i: usize) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(pick) = self.picks.get(i) {
            out.push(self.pkg(pick.id).name.clone());
            match pick.parent {
                Some(p) if p < i => i = p,
                _ => break,
            }
        }
        out.reverse();
        out
    }

    /// The request and relations followed to reach `goal`'s group, then the group.
    fn chain_to(&self, goal: Goal) -> Vec<String> {
        let mut out = vec![self.group_text(goal.need)];
        let mut at = match goal.need {
            Need::Request(_) => None,
            Need::Group { from, .. } => self.by_name.get(self.pkg(from).name.as_str()).copied(),
        };
        while let Some(i) = at {
            let Some(pick) = self.picks.get(i) else {
                break;
            };
            let via = match pick.goal.need {
                Need::Request(r) => self.requests.get(r).map(|r| r.to_string()),
                need => self.group(need).get(pick.alt).map(|r| r.to_string()),
            };
            out.push(via.unwrap_or_default());
            at = pick.parent.filter(|&p| p < i);
        }
        out.reverse();
        out
    }

    fn group_text(&self, need: Need) -> String {
        if let Need::Request(i) = need {
            return self
                .requests
                .get(i)
                .map(|r| r.to_string())
                .unwrap_or_default();
        }
        let alts: Vec<String> = self.group(need).iter().map(|r| r.to_string()).collect();
        alts.join(" | ")
    }

    fn note_failure(&mut self, goal: Goal, reason: String) {
        if self.first_failure.is_none() {
            self.first_failure = Some(ResolveError {
                chain: self.chain_to(goal),
                reason,
            });
        }
    }

    /// Marks `id` as never installable and backs up to the choice that picked it: every
    /// choice made since then was made in a state that cannot succeed.
    /// Returns whether any frame was dropped.
    fn kill(&mut self, id: PkgId) -> bool {
        self.dead.insert(id);
        let Some(&i) = self.by_name.get(self.pkg(id).name.as_str()) else {
            return false;
        };
        if self.picks.get(i).is_none_or(|p| p.id != id) {
            return false;
        }
        let mut dropped = false;
        while self.frames.last().is_some_and(|f| f.picks_len > i) {
            self.frames.pop();
            dropped = true;
        }
        dropped
    }

    fn run(&mut self) -> Result<(), ResolveError> {
        'main: loop {
            let Some(goal) = self.agenda.pop() else {
                return Ok(());
            };
            self.log.push(Undo::Popped(goal));
            if self.satisfied(goal) {
                continue;
            }
            let cands = self.candidates(goal);
            if cands.is_empty() {
                if goal.optional {
                    continue;
                }
                // The empty frame below fails at once and marks the goal's owner dead.
                self.note_failure(goal, "no candidate in the given sources".into());
            }
            self.frames.push(Frame {
                goal,
                cands,
                next: 0,
                skipped: false,
                log_len: self.log.len(),
                picks_len: self.picks.len(),
            });
            // Try the top frame's next candidate, backing up while frames are exhausted.
            loop {
                let Some(f) = self.frames.last() else {
                    return Err(self.first_failure.take().unwrap_or_else(|| ResolveError {
                        chain: Vec::new(),
                        reason: "no solution".into(),
                    }));
                };
                let (goal, log_len, picks_len) = (f.goal, f.log_len, f.picks_len);
                self.undo_to(log_len, picks_len);
                let mut clashes = Vec::new();
                while let Some(&(id, alt)) = self.frames.last().and_then(|f| f.cands.get(f.next)) {
                    if let Some(f) = self.frames.last_mut() {
                        f.next += 1;
                    }
                    self.steps += 1;
                    if self.steps > MAX_STEPS {
                        let last = self
                            .first_failure
                            .take()
                            .map(|e| format!("; first dead end: {e}"))
                            .unwrap_or_default();
                        return Err(ResolveError {
                            chain: self.chain_to(goal),
                            reason: format!(
                                "gave up after {MAX_STEPS} tries: too many combinations{last}"
                            ),
                        });
                    }
                    if self.dead.contains(&id) {
                        continue;
                    }
                    match self.clash(id) {
                        None => {
                            self.choose(id, goal, alt);
                            continue 'main;
                        }
                        Some(why) => clashes.push(why),
                    }
                }
                let Some(f) = self.frames.last_mut() else {
                    continue;
                };
                if f.goal.optional && !f.skipped {
                    f.skipped = true;
                    continue 'main;
                }
                let all_dead = f.cands.iter().all(|(id, _)| self.dead.contains(id));
                if !clashes.is_empty() && !f.skipped {
                    self.note_failure(goal, clashes.join("; "));
                }
                if let (true, false, Need::Group { from, .. }) =
                    (all_dead, goal.optional, goal.need)
                {
                    // Every way to satisfy the group is impossible: so is its owner.
                    if self.kill(from) {
                        continue;
                    }
                }
                self.frames.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stanza of architecture `amd64` (or the `Architecture:` given in `extra`).
    fn st(name: &str, version: &str, extra: &str) -> String {
        let arch = if extra.contains("Architecture:") {
            ""
        } else {
            "Architecture: amd64\n"
        };
        format!(
            "Package: {name}\nVersion: {version}\n{arch}{extra}Filename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n\n",
            "0f".repeat(32)
        )
    }

    fn index(stanzas: &[String]) -> Index {
        let mut ix = Index::new("amd64");
        ix.add_packages(0, stanzas.concat()).unwrap();
        ix
    }

    fn run(ix: &Index, reqs: &[&str], opts: &Options) -> Result<Vec<String>, ResolveError> {
        let reqs: Vec<Request> = reqs.iter().map(|r| r.parse().unwrap()).collect();
        let res = resolve(ix, &reqs, opts)?;
        Ok(res
            .packages
            .iter()
            .map(|c| {
                let p = ix.get(c.id);
                format!("{}={}", p.name, p.version)
            })
            .collect())
    }

    fn ok(ix: &Index, reqs: &[&str]) -> Vec<String> {
        run(ix, reqs, &Options::default()).unwrap()
    }

    fn err(ix: &Index, reqs: &[&str]) -> String {
        run(ix, reqs, &Options::default()).unwrap_err().to_string()
    }

    #[test]
    fn alternatives_in_order_newest_version() {
        let ix = index(&[
            st("app", "1", "Depends: missing | lib (>= 2), other\n"),
            st("lib", "1", ""),
            st("lib", "3", ""),
            st("lib", "2", ""),
            st("other", "1", "Pre-Depends: base\n"),
            st("base", "1", "Architecture: all\n"),
        ]);
        assert_eq!(ok(&ix, &["app"]), ["app=1", "base=1", "lib=3", "other=1"]);
    }

    #[test]
    fn virtual_and_versioned_provides() {
        let ix = index(&[
            st("app", "1", "Depends: mta, libfoo (>= 2)\n"),
            st("postfix", "1", "Provides: mta\n"),
            st("exim", "1", "Provides: mta\n"),
            st("foo-old", "1", "Provides: libfoo\n"),
            st("foo-new", "1", "Provides: libfoo (= 2.5)\n"),
        ]);
        // Providers by name; the unversioned provide does not satisfy `libfoo (>= 2)`.
        assert_eq!(ok(&ix, &["app"]), ["app=1", "exim=1", "foo-new=1"]);
        let e = err(&ix, &["mta"]);
        assert!(
            e.contains("virtual package provided by exim, postfix"),
            "{e}"
        );
    }

    #[test]
    fn epochs_and_tilde() {
        let ix = index(&[
            st("app", "1", "Depends: lib (>= 2.0~rc1), tool (>> 5)\n"),
            st("lib", "2.0~beta1", ""),
            st("lib", "2.0~rc1", ""),
            st("tool", "1:1.0", ""),
            st("tool", "9.0", ""),
        ]);
        assert_eq!(ok(&ix, &["app"]), ["app=1", "lib=2.0~rc1", "tool=1:1.0"]);
    }

    #[test]
    fn multi_arch_any() {
        let ix = index(&[
            st("app", "1", "Depends: py:any, tool, native:native\n"),
            st("py", "3", "Multi-Arch: allowed\n"),
            st("tool", "1", "Multi-Arch: foreign\n"),
            st("native", "1", "Multi-Arch: same\n"),
            st("app2", "1", "Depends: lib:any\n"),
            st("lib", "1", "Multi-Arch: same\n"),
            st("app3", "1", "Depends: lib:i386\n"),
        ]);
        assert_eq!(ok(&ix, &["app"]), ["app=1", "native=1", "py=3", "tool=1"]);
        assert!(err(&ix, &["app2"]).contains("app2 -> lib:any: no candidate"));
        assert!(err(&ix, &["app3"]).contains("lib:i386: no candidate"));
        let ix = index(&[
            st("app4", "1", "Depends: tool:any\n"),
            st("tool", "1", "Multi-Arch: foreign\n"),
        ]);
        assert!(err(&ix, &["app4"]).contains("app4 -> tool:any: no candidate"));
    }

    #[test]
    fn conflict_forces_second_alternative() {
        let ix = index(&[
            st("app", "1", "Depends: a, b | c\n"),
            st("a", "1", "Conflicts: b\n"),
            st("b", "1", ""),
            st("c", "1", ""),
            // A versioned conflict on a provided name, and the replace idiom.
            st("d", "1", "Depends: e | f\n"),
            st("e", "1", "Provides: v (= 1)\n"),
            st("f", "1", "Provides: v (= 2)\nConflicts: v (<< 2)\n"),
            st("g", "1", "Depends: d, f\n"),
        ]);
        assert_eq!(ok(&ix, &["app"]), ["a=1", "app=1", "c=1"]);
        // g needs d (-> e, provides v 1) and f, which conflicts with v << 2: d takes f.
        assert_eq!(ok(&ix, &["g"]), ["d=1", "f=1", "g=1"]);
    }

    #[test]
    fn backtracks_to_an_older_version() {
        let ix = index(&[
            st("app", "1", "Depends: lib, z\n"),
            st("lib", "2", "Breaks: z\n"),
            st("lib", "1", ""),
            st("z", "1", ""),
        ]);
        assert_eq!(ok(&ix, &["app"]), ["app=1", "lib=1", "z=1"]);
    }

    #[test]
    fn conflict_without_way_out_names_both() {
        let ix = index(&[
            st("app", "1", "Depends: a, b\n"),
            st("a", "1", "Conflicts: b\n"),
            st("b", "1", ""),
        ]);
        let e = err(&ix, &["app"]);
        assert!(
            e.starts_with("app -> b: b 1 is in conflict with a 1"),
            "{e}"
        );
    }

    #[test]
    fn loops_terminate() {
        let ix = index(&[
            st("a", "1", "Depends: b\n"),
            st("b", "1", "Depends: c\n"),
            st("c", "1", "Depends: a (>= 1)\n"),
        ]);
        assert_eq!(ok(&ix, &["a"]), ["a=1", "b=1", "c=1"]);
        let res = resolve(&ix, &["a".parse().unwrap()], &Options::default()).unwrap();
        let c = res
            .packages
            .iter()
            .find(|c| ix.get(c.id).name == "c")
            .unwrap();
        assert_eq!(c.chain, ["a", "b", "c"]);
    }

    #[test]
    fn pins() {
        let ix = index(&[
            st("app", "1", "Depends: lib\n"),
            st("lib", "1", ""),
            st("lib", "2", ""),
        ]);
        assert_eq!(ok(&ix, &["app", "lib=1"]), ["app=1", "lib=1"]);
        assert_eq!(ok(&ix, &["app"]), ["app=1", "lib=2"]);
        let e = err(&ix, &["lib=3"]);
        assert_eq!(e, "lib=3: no such version; available: 2, 1");
        assert!("Lib=1".parse::<Request>().is_err());
        assert!("lib=x".parse::<Request>().is_err());
    }

    #[test]
    fn baseline_is_left_out() {
        let ix = index(&[
            st("app", "1", "Depends: libc (>= 2), mta, new\n"),
            st("libc", "2", "Depends: deep\n"),
            st("deep", "1", ""),
            st("postfix", "1", "Provides: mta\n"),
            st("new", "1", ""),
        ]);
        let status = "Package: libc\nStatus: install ok installed\nVersion: 2.1\nArchitecture: amd64\n\n\
                      Package: exim\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nProvides: mta\n";
        let opts = Options {
            recommends: false,
            baseline: Some(Baseline::parse(status).unwrap()),
        };
        assert_eq!(run(&ix, &["app"], &opts).unwrap(), ["app=1", "new=1"]);
        assert_eq!(run(&ix, &["libc"], &opts).unwrap(), Vec::<String>::new());
        // No downgrade of an installed package.
        let ix = index(&[st("app", "1", "Depends: libc (= 2)\n"), st("libc", "2", "")]);
        let e = run(&ix, &["app"], &opts).unwrap_err().to_string();
        assert_eq!(e, "app -> libc (= 2): no candidate in the given sources");
    }

    #[test]
    fn installed_packages_the_closure_breaks_are_upgraded() {
        let ix = index(&[
            st("app", "1", "Depends: lib (>= 2)\n"),
            st("lib", "1", ""),
            st("lib", "2", ""),
            st("tool", "1", "Depends: lib (= 1)\n"),
            st("tool", "2", "Depends: lib (= 2)\n"),
            st("new", "1", "Breaks: old (<< 2)\n"),
            st("old", "2", ""),
            st("stuck", "1", "Breaks: pinned (<< 9)\n"),
        ]);
        let status = "Package: lib\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
                      Package: tool\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nDepends: lib (= 1)\n\n\
                      Package: old\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
                      Package: pinned\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n";
        let opts = Options {
            recommends: false,
            baseline: Some(Baseline::parse(status).unwrap()),
        };
        // Upgrading lib leaves the installed tool's exact dependency unmet: tool is upgraded.
        assert_eq!(
            run(&ix, &["app"], &opts).unwrap(),
            ["app=1", "lib=2", "tool=2"]
        );
        let reqs = ["app".parse::<Request>().unwrap()];
        let res = resolve(&ix, &reqs, &opts).unwrap();
        let tool = res
            .packages
            .iter()
            .find(|c| ix.get(c.id).name == "tool")
            .unwrap();
        assert_eq!(tool.chain, ["tool (upgrade of installed 1)"]);
        // A Breaks on an installed version upgrades it.
        assert_eq!(run(&ix, &["new"], &opts).unwrap(), ["new=1", "old=2"]);
        // Nothing newer to upgrade to: left as it is (apt would have to remove it).
        assert_eq!(run(&ix, &["stuck"], &opts).unwrap(), ["stuck=1"]);
    }

    #[test]
    fn recommends_on_and_off() {
        let ix = index(&[
            st("app", "1", "Recommends: extra, missing, bad\n"),
            st("extra", "1", ""),
            st("bad", "1", "Depends: nowhere\n"),
        ]);
        assert_eq!(ok(&ix, &["app"]), ["app=1"]);
        let opts = Options {
            recommends: true,
            baseline: None,
        };
        assert_eq!(run(&ix, &["app"], &opts).unwrap(), ["app=1", "extra=1"]);
    }

    #[test]
    fn missing_dependency_names_the_chain() {
        let ix = index(&[
            st(
                "nvidia-driver",
                "535",
                "Depends: nvidia-kernel-dkms (= 535.261.03-1)\n",
            ),
            st("nvidia-kernel-dkms", "535.261.03-1", "Depends: dkms\n"),
        ]);
        assert_eq!(
            err(&ix, &["nvidia-driver"]),
            "nvidia-driver -> nvidia-kernel-dkms (= 535.261.03-1) -> dkms: no candidate in the given sources"
        );
        assert_eq!(
            err(&ix, &["nothere"]),
            "nothere: no candidate in the given sources"
        );
    }

    #[test]
    fn output_is_deterministic() {
        let mut s = Vec::new();
        for i in 0..50 {
            s.push(st(
                &format!("p{i}"),
                "1",
                &format!("Depends: p{} | v\n", (i * 7) % 50),
            ));
            s.push(st(&format!("q{i}"), "1", "Provides: v\n"));
        }
        let ix = index(&s);
        let first = ok(&ix, &["p3", "p9"]);
        for _ in 0..5 {
            assert_eq!(ok(&ix, &["p3", "p9"]), first);
        }
    }

    #[test]
    fn search_is_bounded() {
        // Each level has two versions; the bottom always fails, on a conflict that only
        // shows after every level is chosen.
        let mut s = vec![st("top", "1", "Depends: l0, killer\n")];
        for i in 0..30 {
            s.push(st(&format!("l{i}"), "2", &format!("Depends: l{}\n", i + 1)));
            s.push(st(&format!("l{i}"), "1", &format!("Depends: l{}\n", i + 1)));
        }
        s.push(st("l30", "1", ""));
        s.push(st("killer", "1", "Conflicts: l30\n"));
        let e = err(&index(&s), &["top"]);
        assert!(e.contains("gave up after"), "{e}");
    }
}
