//! Relationship fields of binary packages: `Depends`, `Pre-Depends`, `Recommends`,
//! `Conflicts`, `Breaks`, `Provides`.
//!
//! A field is a comma-separated list of groups; a group is `|`-separated alternatives; an
//! alternative is `name[:archqual] [(op version)] [arch restrictions] [<build profiles>]`.
//! The operators are `<<`, `<=`, `=`, `>=`, `>>`; the obsolete `<` and `>` mean `<=` and `>=`,
//! as dpkg reads them. Names and versions are checked (names as dpkg spells them, versions with
//! [`crate::version::is_valid`]); errors quote the text at fault. Names and versions are shared
//! (`Arc<str>` from an [`Interner`]) because a whole distribution holds some 370,000 relations
//! over a few tens of thousands of distinct names: sharing them saves about 15 MB on Debian
//! bookworm `main`.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::control::clip;
use crate::version;
use crate::DebError;

/// Longest package name accepted.
pub const MAX_NAME_LEN: usize = 256;
/// Most groups or alternatives accepted in one field.
pub const MAX_RELATIONS: usize = 10_000;

/// A version operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// Does a version that compares `ord` against the relation's version satisfy it?
    pub fn accepts(self, ord: Ordering) -> bool {
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// Architecture restrictions (`[amd64 !i386]`) and build profiles (`<!nocheck>`), which
/// belong to source packages but are parsed wherever they appear.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restrictions {
    pub arches: Vec<Box<str>>,
    /// Each `<...>` group's terms.
    pub profiles: Vec<Vec<Box<str>>>,
}

/// One alternative of a relationship field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: Arc<str>,
    /// The architecture qualifier after `:` (`any`, `native`, or an architecture).
    pub arch: Option<Arc<str>>,
    pub version: Option<(Op, Arc<str>)>,
    pub restrictions: Option<Box<Restrictions>>,
}

impl Relation {
    /// Does `v` satisfy the relation's version constraint (always, when it has none)?
    pub fn accepts_version(&self, v: &str) -> bool {
        match &self.version {
            None => true,
            Some((op, want)) => op.accepts(version::compare(v, want)),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// Is `s` a package name as dpkg spells it: a lowercase letter or digit, then lowercase
/// letters, digits and `+-.`; at most [`MAX_NAME_LEN`] bytes?
pub fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b.first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c))
}

fn is_arch_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Hands out one shared copy of each distinct string.
#[derive(Debug, Clone, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.0.insert(a.clone());
        a
    }
}

/// A field of `|`-alternative groups (`Depends`, `Pre-Depends`, `Recommends`, `Conflicts`,
/// `Breaks`). `field` names the field in errors. An empty value is an empty list.
pub fn parse_groups(field: &str, text: &str) -> Result<Vec<Vec<Relation>>, DebError> {
    parse_groups_in(field, text, &mut Interner::default())
}

/// [`parse_groups`] sharing names and versions through `strings`.
pub fn parse_groups_in(
    field: &str,
    text: &str,
    strings: &mut Interner,
) -> Result<Vec<Vec<Relation>>, DebError> {
    let mut out = Vec::with_capacity(text.bytes().filter(|&c| c == b',').count() + 1);
    for group in text.split(',') {
        if group.trim().is_empty() {
            if text.trim().is_empty() {
                break;
            }
            return Err(field_error(field, text, "empty group"));
        }
        if out.len() >= MAX_RELATIONS {
            return Err(field_error(field, text, "too many groups"));
        }
        let mut alts = Vec::with_capacity(1);
        for alt in group.split('|') {
            alts.push(parse_one_in(alt, strings).map_err(|why| field_error(field, alt, &why))?);
        }
        out.push(alts);
    }
    Ok(out)
}

/// A field without alternatives (`Provides`).
pub fn parse_list(field: &str, text: &str) -> Result<Vec<Relation>, DebError> {
    parse_list_in(field, text, &mut Interner::default())
}

/// [`parse_list`] sharing names and versions through `strings`.
pub fn parse_list_in(
    field: &str,
    text: &str,
    strings: &mut Interner,
) -> Result<Vec<Relation>, DebError> {
    let groups = parse_groups_in(field, text, strings)?;
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        if group.len() != 1 {
            return Err(field_error(
                field,
                text,
                "alternatives are not allowed here",
            ));
        }
        out.extend(group);
    }
    Ok(out)
}

fn field_error(field: &str, text: &str, why: &str) -> DebError {
    DebError(format!("{field}: {:?}: {why}", clip(text.trim())))
}

/// One alternative.
pub fn parse_one(text: &str) -> Result<Relation, String> {
    parse_one_in(text, &mut Interner::default())
}

fn parse_one_in(text: &str, strings: &mut Interner) -> Result<Relation, String> {
    let s = text.trim();
    let stop = |c: char| c.is_whitespace() || "([<:".contains(c);
    let name_end = s.find(stop).unwrap_or(s.len());
    let (name, mut rest) = s.split_at(name_end);
    if !is_valid_name(name) {
        return Err(format!("bad package name {:?}", clip(name)));
    }
    let mut arch = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r.find(stop).unwrap_or(r.len());
        let (a, r) = r.split_at(end);
        if !is_arch_word(a) {
            return Err(format!("bad architecture qualifier {:?}", clip(a)));
        }
        arch = Some(strings.get(a));
        rest = r;
    }
    rest = rest.trim_start();
    let mut ver = None;
    if let Some(r) = rest.strip_prefix('(') {
        let Some((inside, r)) = r.split_once(')') else {
            return Err("unclosed `(`".into());
        };
        let inside = inside.trim();
        let op_len = inside
            .find(|c: char| !"<>=".contains(c))
            .unwrap_or(inside.len());
        let (op, v) = inside.split_at(op_len);
        let op = match op {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return Err(format!("bad version operator {:?}", clip(op))),
        };
        let v = v.trim();
        if !version::is_valid(v) {
            return Err(format!("bad version {:?}", clip(v)));
        }
        ver = Some((op, strings.get(v)));
        rest = r.trim_start();
    }
    let mut restrictions: Option<Box<Restrictions>> = None;
    if let Some(r) = rest.strip_prefix('[') {
        let Some((inside, r)) = r.split_once(']') else {
            return Err("unclosed `[`".into());
        };
        let mut arches = Vec::new();
        for a in inside.split_whitespace() {
            if !is_arch_word(a.strip_prefix('!').unwrap_or(a)) {
                return Err(format!("bad architecture {:?}", clip(a)));
            }
            arches.push(a.into());
        }
        restrictions.get_or_insert_with(Default::default).arches = arches;
        rest = r.trim_start();
    }
    while let Some(r) = rest.strip_prefix('<') {
        let Some((inside, r)) = r.split_once('>') else {
            return Err("unclosed `<`".into());
        };
        let mut terms = Vec::new();
        for t in inside.split_whitespace() {
            let word = t.strip_prefix('!').unwrap_or(t);
            if word.is_empty()
                || !word
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c))
            {
                return Err(format!("bad build profile {:?}", clip(t)));
            }
            terms.push(t.into());
        }
        restrictions
            .get_or_insert_with(Default::default)
            .profiles
            .push(terms);
        rest = r.trim_start();
    }
    if !rest.is_empty() {
        return Err(format!("unexpected {:?}", clip(rest)));
    }
    Ok(Relation {
        name: strings.get(name),
        arch,
        version: ver,
        restrictions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups() {
        let g = parse_groups(
            "Depends",
            "libc6 (>= 2.34), foo:any | bar (<< 1:2~rc1),\n baz [amd64 !i386] <!nocheck> <stage1>, q (>1), r (<1), s(=1)",
        )
        .unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(g[1][0].to_string(), "foo:any");
        assert_eq!(g[1][1].version, Some((Op::Lt, "1:2~rc1".into())));
        let r = g[2][0].restrictions.as_deref().unwrap();
        assert_eq!(r.arches, vec!["amd64".into(), "!i386".into()]);
        assert_eq!(r.profiles.len(), 2);
        assert_eq!(g[3][0].version.as_ref().unwrap().0, Op::Ge);
        assert_eq!(g[4][0].version.as_ref().unwrap().0, Op::Le);
        assert_eq!(g[5][0].to_string(), "s (= 1)");
        assert!(g[5][0].accepts_version("1-0"));
        assert!(!g[5][0].accepts_version("1.0"));
        assert_eq!(parse_groups("Depends", " ").unwrap().len(), 0);
    }

    #[test]
    fn errors_name_the_text() {
        for bad in [
            "a,,b",
            "a (>= )",
            "a (~ 1)",
            "a (>= 1",
            "Foo",
            "a:",
            "a b",
            "a [amd64",
            "a (= 1) junk",
            "a | ",
        ] {
            let e = parse_groups("Depends", bad).unwrap_err().0;
            assert!(e.starts_with("Depends: "), "{bad}: {e}");
        }
        let e = parse_groups("Depends", "x, a (>= !)").unwrap_err().0;
        assert!(e.contains("a (>= !)"), "{e}");
        assert!(parse_list("Provides", "a | b").is_err());
        assert_eq!(parse_list("Provides", "a (= 1), b").unwrap().len(), 2);
    }
}
