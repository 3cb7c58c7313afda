//! `include`/`exclude` patterns for model files, with the Hugging Face Hub's semantics
//! (`huggingface_hub.utils.filter_repo_objects`): each pattern is matched against the whole
//! `/`-separated path with Python's `fnmatch.fnmatchcase` rules — `*` matches any run of
//! characters *including* `/`, `?` one character, `[seq]` / `[!seq]` one character in or not
//! in `seq`, everything else itself, case-sensitively. Backslashes in patterns are path
//! separators, and a pattern ending in `/` matches everything below that directory. So
//! `*.safetensors` matches `a/b/model.safetensors` and `onnx/*` matches `onnx/q/model.onnx`,
//! exactly as `snapshot_download(allow_patterns=...)` selects them.
//!
//! `glob_cases.json` holds cases whose expected results were produced by `huggingface_hub`
//! itself; a unit test checks this matcher against them and an end-to-end test checks them
//! against the installed `huggingface_hub`.

/// Which files of a repository to take.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        Filter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        }
    }

    /// Kept when it matches an include pattern (or there are none) and no exclude pattern.
    pub fn keeps(&self, path: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, path)))
            && !self.exclude.iter().any(|p| matches(p, path))
    }
}

/// Does `pattern` match `path` as `filter_repo_objects` decides it?
pub fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.replace('\\', "/");
    if p.ends_with('/') {
        p.push('*');
    }
    let p: Vec<char> = p.chars().collect();
    let s: Vec<char> = path.chars().collect();
    fnmatch(&p, &s)
}

/// One pattern item: a literal, `?`, `*`, or a character class.
enum Item {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Splits a pattern into items the way `fnmatch.translate` does: an unclosed `[` is a literal.
fn items(p: &[char]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if !matches!(out.last(), Some(Item::Star)) {
                    out.push(Item::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Item::Any);
                i += 1;
            }
            '[' => match class(p, i + 1) {
                Some((item, next)) => {
                    out.push(item);
                    i = next;
                }
                None => {
                    out.push(Item::Char('['));
                    i += 1;
                }
            },
            c => {
                out.push(Item::Char(c));
                i += 1;
            }
        }
    }
    out
}

/// Parses a class starting after `[`; returns it and the index after `]`.
fn class(p: &[char], mut j: usize) -> Option<(Item, usize)> {
    let negated = p.get(j) == Some(&'!');
    if negated {
        j += 1;
    }
    let start = j;
    // A `]` right after `[` or `[!` is a member, not the end.
    if p.get(j) == Some(&']') {
        j += 1;
    }
    while j < p.len() && p[j] != ']' {
        j += 1;
    }
    if j >= p.len() {
        return None;
    }
    let body = &p[start..j];
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < body.len() {
        if k + 2 < body.len() && body[k + 1] == '-' {
            ranges.push((body[k], body[k + 2]));
            k += 3;
        } else {
            ranges.push((body[k], body[k]));
            k += 1;
        }
    }
    Some((Item::Class { negated, ranges }, j + 1))
}

impl Item {
    fn one(&self, c: char) -> bool {
        match self {
            Item::Char(x) => *x == c,
            Item::Any => true,
            Item::Star => false,
            Item::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
            }
        }
    }
}

/// Whole-string wildcard match, iterative (no exponential backtracking).
fn fnmatch(p: &[char], s: &[char]) -> bool {
    let p = items(p);
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && !matches!(p[pi], Item::Star) && p[pi].one(s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && matches!(p[pi], Item::Star) {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && matches!(p[pi], Item::Star) {
        pi += 1;
    }
    pi == p.len()
}

/// The cases of `glob_cases.json`: `[pattern, path, expected]`, expected as decided by
/// `huggingface_hub.utils.filter_repo_objects(allow_patterns=[pattern])`.
pub const HUB_CASES: &str = include_str!("glob_cases.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hubs_own_answers() {
        let cases: Vec<(String, String, bool)> = serde_json::from_str(HUB_CASES).unwrap();
        assert!(cases.len() > 40);
        for (p, path, want) in cases {
            assert_eq!(matches(&p, &path), want, "pattern {p:?} on {path:?}");
        }
    }

    #[test]
    fn filters() {
        let f = Filter::new(
            &["*.json".into(), "*.safetensors".into()],
            &["*optimizer*".into()],
        );
        assert!(f.keeps("config.json") && f.keeps("a/model.safetensors"));
        assert!(!f.keeps("optimizer.safetensors") && !f.keeps("pytorch_model.bin"));
        assert!(Filter::default().keeps("anything"));
    }

    #[test]
    fn no_exponential_backtracking() {
        let p = "*a*a*a*a*a*a*a*a*a*a*b";
        let s = "a".repeat(5000);
        let t = std::time::Instant::now();
        assert!(!matches(p, &s));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
