//! The version orders and CVSS scores checked against independent implementations.
//!
//! Each test generates a few thousand inputs with a fixed pseudo-random generator (so a
//! failure reproduces), sends them all to one Python process from the test venv
//! (`AIRLOCK_TEST_VENV`, else `<workspace>/.venv`, created by `scripts/peers.sh`) and asserts
//! that airlock agrees with it on every input:
//!
//! - PEP 440: `packaging.version.Version`, pypa's reference implementation; order and
//!   validity must agree exactly.
//! - semver: `semantic_version.Version` (the library univers' `SemverVersion` builds on) on
//!   the version without its leading `v`, ordered by precedence (major, minor, patch,
//!   pre-release; build metadata ignored); order and validity must agree exactly.
//! - apk: univers' `AlpineLinuxVersion`, which implements Gentoo's rules. airlock follows
//!   apk-tools where the two differ, so the pairs sent are drawn from the forms on which
//!   apk-tools and Gentoo agree; the differing corners are asserted here against apk-tools'
//!   rules instead (see [`apk_differences_from_gentoo`]). Strings univers refuses must be
//!   refused by airlock too, except forms only apk-tools accepts.
//! - CVSS v3.0 and v3.1: the `cvss` package's `CVSS3(vector).base_score`, on every
//!   combination of base metric values in both versions and on vectors that also carry
//!   temporal and environmental metrics; vectors it refuses must be refused by airlock too.
//! - CVSS v4.0: the `cvss` package's `CVSS4(vector).base_score` on random base vectors; where
//!   airlock's vector also carries threat, environmental or supplemental metrics, the
//!   reference scores the base metrics alone (it would apply the others). Validity must agree
//!   exactly.

use std::cmp::Ordering;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_vuln::cvss;
use airlock_vuln::version::{apk, pep440, semver};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let venv = std::env::var_os("AIRLOCK_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/test.sh, which creates the test venv with packaging, univers \
         and cvss",
        py.display()
    );
    py
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            let d = if i == 0 {
                1 + self.below(9)
            } else {
                self.below(10)
            };
            s.push(char::from(b'0' + d as u8));
        }
        s
    }

    /// A number, usually small (so pairs often tie), sometimes huge.
    fn number(&mut self) -> String {
        match self.below(10) {
            0..=5 => self.below(4).to_string(),
            6 | 7 => self.below(30).to_string(),
            8 => self.below(100_000).to_string(),
            _ => {
                let n = 20 + self.below(10);
                self.digits(n)
            }
        }
    }

    /// A random edit of `s`: a character inserted, deleted or replaced.
    fn mutate(&mut self, s: &str, alphabet: &[u8]) -> String {
        let mut b: Vec<u8> = s.bytes().collect();
        let at = self.below(b.len() + 1);
        let c = alphabet[self.below(alphabet.len())];
        match self.below(3) {
            0 => b.insert(at, c),
            1 if at < b.len() => {
                b.remove(at);
            }
            _ if at < b.len() => b[at] = c,
            _ => b.push(c),
        }
        String::from_utf8_lossy(&b).into_owned()
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Runs `script` once over `lines` (each a list of strings, sent hex-encoded and
/// tab-separated) and returns its output lines, one per input line.
fn reference(script: &str, lines: &[Vec<String>]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    let mut f = std::fs::File::create(&input).unwrap();
    for line in lines {
        let fields: Vec<String> = line.iter().map(|s| hex(s)).collect();
        writeln!(f, "{}", fields.join("\t")).unwrap();
    }
    drop(f);
    let prelude = "import sys\n\
        rows = [[bytes.fromhex(x).decode() for x in l.rstrip('\\n').split('\\t')] \
        for l in open(sys.argv[1])]\n\
        def cmp(a, b):\n    return str((a > b) - (a < b))\n";
    let out = Command::new(python())
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got.len(), lines.len(), "one answer per input");
    got
}

fn ord(o: Option<Ordering>) -> &'static str {
    match o {
        None => "E",
        Some(Ordering::Less) => "-1",
        Some(Ordering::Equal) => "0",
        Some(Ordering::Greater) => "1",
    }
}

/// Compares airlock's answers with the reference's, printing the first mismatches.
fn check(what: &str, inputs: &[Vec<String>], ours: &[String], theirs: &[String]) {
    let bad: Vec<usize> = (0..inputs.len())
        .filter(|&i| ours[i] != theirs[i])
        .collect();
    for &i in bad.iter().take(20) {
        eprintln!(
            "{what}: {:?}: airlock {} reference {}",
            inputs[i], ours[i], theirs[i]
        );
    }
    assert!(
        bad.is_empty(),
        "{what}: {} of {} disagree",
        bad.len(),
        inputs.len()
    );
    let count = |v: &str| theirs.iter().filter(|t| *t == v).count();
    eprintln!(
        "{what}: {} inputs agree (less {}, equal {}, greater {}, valid {}, refused {})",
        inputs.len(),
        count("-1"),
        count("0"),
        count("1"),
        count("ok"),
        count("E")
    );
}

/// Pairs of versions: mostly independent, some the same string twice, some the second a
/// small edit of the first (`edit`).
fn pairs(
    rng: &mut Rng,
    n: usize,
    gen: impl Fn(&mut Rng) -> String,
    edit: impl Fn(&mut Rng, &str) -> String,
) -> Vec<Vec<String>> {
    (0..n)
        .map(|_| {
            let a = gen(rng);
            let b = match rng.below(100) {
                0..=14 => a.clone(),
                15..=39 => edit(rng, &a),
                _ => gen(rng),
            };
            vec![a, b]
        })
        .collect()
}

const PEP440_SCRIPT: &str = "
from packaging.version import Version, InvalidVersion
def parse(s):
    try:
        return Version(s)
    except InvalidVersion:
        return None
for r in rows:
    v = [parse(s) for s in r]
    if len(v) == 1:
        print('E' if v[0] is None else 'ok')
    else:
        print('E' if None in v else cmp(v[0], v[1]))
";

fn pep440_version(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(5) {
        s.push_str(rng.pick(&[" ", "\t", "\n"]));
    }
    if rng.chance(15) {
        s.push_str(rng.pick(&["v", "V"]));
    }
    if rng.chance(15) {
        s.push_str(&format!("{}!", rng.pick(&["0", "1", "2", "00"])));
    }
    let segments = 1 + rng.below(4);
    let release: Vec<String> = (0..segments)
        .map(|_| {
            if rng.chance(40) {
                rng.pick(&["0", "00", "1"]).to_string()
            } else {
                rng.number()
            }
        })
        .collect();
    s.push_str(&release.join("."));
    let sep = |rng: &mut Rng| {
        if rng.chance(50) {
            ""
        } else {
            rng.pick(&[".", "-", "_"])
        }
    };
    let num = |rng: &mut Rng| {
        if rng.chance(20) {
            String::new()
        } else {
            rng.number()
        }
    };
    let case = |rng: &mut Rng, w: &str| {
        if rng.chance(15) {
            w.to_ascii_uppercase()
        } else {
            w.to_string()
        }
    };
    if rng.chance(40) {
        let w = rng.pick(&["a", "b", "rc", "alpha", "beta", "c", "pre", "preview"]);
        s.push_str(&format!(
            "{}{}{}{}",
            sep(rng),
            case(rng, w),
            sep(rng),
            num(rng)
        ));
    }
    if rng.chance(30) {
        if rng.chance(25) {
            s.push_str(&format!("-{}", rng.number()));
        } else {
            let w = rng.pick(&["post", "rev", "r"]);
            s.push_str(&format!(
                "{}{}{}{}",
                sep(rng),
                case(rng, w),
                sep(rng),
                num(rng)
            ));
        }
    }
    if rng.chance(30) {
        s.push_str(&format!(
            "{}{}{}{}",
            sep(rng),
            case(rng, "dev"),
            sep(rng),
            num(rng)
        ));
    }
    if rng.chance(20) {
        let parts = 1 + rng.below(3);
        let local: Vec<String> = (0..parts)
            .map(|_| match rng.below(3) {
                0 => rng.number(),
                1 => rng.pick(&["abc", "ubuntu", "Cpu", "x1", "007"]).to_string(),
                _ => rng.pick(&["0", "1", "a", "b"]).to_string(),
            })
            .collect();
        s.push('+');
        for (i, p) in local.iter().enumerate() {
            if i > 0 {
                s.push_str(rng.pick(&[".", "-", "_"]));
            }
            s.push_str(p);
        }
    }
    if rng.chance(5) {
        s.push_str(rng.pick(&[" ", "\t"]));
    }
    if rng.chance(5) {
        s = rng.mutate(&s, b"0123456789.-_+!abcdefprvx ");
    }
    s
}

#[test]
fn pep440_agrees_with_packaging() {
    let mut rng = Rng(440);
    let mut inputs = pairs(&mut rng, 4000, pep440_version, |rng, s| {
        rng.mutate(s, b"0123456789.-_+!abcdeprv")
    });
    for s in [
        "1.0.dev1",
        "1.0a1",
        "1.0a1.dev1",
        "1.0.post1.dev1",
        "1.0.post1",
        "1.0a.",
        "1.0.post.",
        "1.0a.+x",
        "1.0a.-1",
        "1.0a._dev",
        "1.0-",
        "1!",
        "1.0+",
        "1.0+a..b",
        "1.0dev.post1",
        "1.0+ubuntu-1",
        "1.0.0.0.0",
        "1.0rc1-1",
        "1.0_c_1",
        "1.0-r-1",
    ] {
        inputs.push(vec![s.to_string(), "1.0".to_string()]);
    }
    // Single strings, many of them mangled: validity must agree.
    for _ in 0..2000 {
        let v = pep440_version(&mut rng);
        inputs.push(vec![rng.mutate(&v, b"0123456789.-_+!abcdeilnoprstvwx ~/")]);
    }
    let theirs = reference(PEP440_SCRIPT, &inputs);
    let ours: Vec<String> = inputs
        .iter()
        .map(|r| match r.as_slice() {
            [a] => (if pep440::parse(a).is_some() {
                "ok"
            } else {
                "E"
            })
            .to_string(),
            [a, b] => ord(pep440::compare(a, b)).to_string(),
            _ => unreachable!(),
        })
        .collect();
    check("PEP 440", &inputs, &ours, &theirs);
}

const SEMVER_SCRIPT: &str = "
import semantic_version
def parse(s):
    if s.startswith('v'):
        s = s[1:]
    try:
        return semantic_version.Version(s).precedence_key[:4]
    except ValueError:
        return None
for r in rows:
    v = [parse(s) for s in r]
    if len(v) == 1:
        print('E' if v[0] is None else 'ok')
    else:
        print('E' if None in v else cmp(v[0], v[1]))
";

fn semver_version(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(20) {
        s.push('v');
    }
    let core: Vec<String> = (0..3).map(|_| rng.number()).collect();
    s.push_str(&core.join("."));
    if rng.chance(50) {
        let n = 1 + rng.below(3);
        let ids: Vec<String> = (0..n)
            .map(|_| match rng.below(4) {
                0 => rng.number(),
                1 => rng.digits(14),
                _ => rng
                    .pick(&[
                        "alpha",
                        "beta",
                        "rc",
                        "a1",
                        "1a",
                        "x-y",
                        "-",
                        "--",
                        "Alpha",
                        "abcdef123456",
                        "0a",
                        "z",
                    ])
                    .to_string(),
            })
            .collect();
        s.push('-');
        s.push_str(&ids.join("."));
    }
    if rng.chance(20) {
        s.push('+');
        s.push_str(rng.pick(&["build.5", "001", "sha.abc", "x-y.1", "20200101"]));
    }
    if rng.chance(5) {
        s = rng.mutate(&s, b"0123456789.-+vabz ");
    }
    s
}

#[test]
fn semver_agrees_with_semantic_version() {
    let mut rng = Rng(2_000);
    let mut inputs = pairs(&mut rng, 4000, semver_version, |rng, s| {
        rng.mutate(s, b"0123456789.-+abz")
    });
    for s in [
        "v0.0.0-20210101000000-abcdef123456",
        "v0.0.0-20201231235959-0123456789ab",
        "1.0.0-01",
        "01.0.0",
        "1.0",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-a..b",
    ] {
        inputs.push(vec![s.to_string(), "0.0.0".to_string()]);
    }
    for _ in 0..2000 {
        let v = semver_version(&mut rng);
        inputs.push(vec![rng.mutate(&v, b"0123456789.-+_vVaz ~")]);
    }
    let theirs = reference(SEMVER_SCRIPT, &inputs);
    let ours: Vec<String> = inputs
        .iter()
        .map(|r| match r.as_slice() {
            [a] => (if semver::parse(a).is_some() {
                "ok"
            } else {
                "E"
            })
            .to_string(),
            [a, b] => ord(semver::compare(a, b)).to_string(),
            _ => unreachable!(),
        })
        .collect();
    check("semver", &inputs, &ours, &theirs);
}

const APK_SCRIPT: &str = "
from univers.versions import AlpineLinuxVersion
def parse(s):
    try:
        return AlpineLinuxVersion(s)
    except Exception:
        return None
for r in rows:
    v = [parse(s) for s in r]
    if len(v) == 1:
        print('E' if v[0] is None else 'ok')
    else:
        print('E' if None in v else cmp(v[0], v[1]))
";

/// An apk version in the forms where apk-tools' and Gentoo's rules agree: no leading zero on
/// the first number; a dotted number with a leading zero does not end in `0` (unless it is
/// `0`); a suffix without a number only last, and no suffix number or revision `0`.
fn apk_version(rng: &mut Rng) -> String {
    let nonzero = |rng: &mut Rng| {
        let n = rng.number();
        let n = if n == "0" { "1".to_string() } else { n };
        if rng.chance(10) {
            format!("0{n}")
        } else {
            n
        }
    };
    let mut s = rng.number();
    for _ in 0..rng.below(4) {
        s.push('.');
        match rng.below(6) {
            0 => s.push_str(rng.pick(&["01", "05", "012", "007", "0009"])),
            _ => s.push_str(&rng.number()),
        }
    }
    if rng.chance(20) {
        s.push_str(rng.pick(&["a", "b", "k", "z"]));
    }
    let suffixes = if rng.chance(50) { 0 } else { 1 + rng.below(3) };
    for i in 0..suffixes {
        s.push('_');
        s.push_str(rng.pick(&["alpha", "beta", "pre", "rc", "p"]));
        if i + 1 < suffixes || rng.chance(60) {
            s.push_str(&nonzero(rng));
        }
    }
    if rng.chance(60) {
        s.push_str("-r");
        s.push_str(&nonzero(rng));
    }
    s
}

/// `s` with one nonzero digit replaced by another, which keeps it in the forms above.
fn apk_edit(rng: &mut Rng, s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let at: Vec<usize> = (0..b.len())
        .filter(|&i| (b'1'..=b'9').contains(&b[i]))
        .collect();
    if let Some(&i) = at.get(rng.below(at.len().max(1))) {
        b[i] = b'1' + rng.below(9) as u8;
    }
    String::from_utf8(b).unwrap()
}

/// Whether `s` is in a form apk-tools accepts and Gentoo (so univers) does not.
fn apk_only(s: &str) -> bool {
    ["_cvs", "_svn", "_git", "_hg", "~"]
        .iter()
        .any(|f| s.contains(f))
        || (s.starts_with('0') && s.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
}

#[test]
fn apk_agrees_with_univers() {
    let mut rng = Rng(0xa1f1e);
    let mut inputs = pairs(&mut rng, 4000, apk_version, apk_edit);
    let mut singles = Vec::new();
    for _ in 0..2000 {
        let v = apk_version(&mut rng);
        singles.push(vec![rng.mutate(&v, b"0123456789._-rpabcAZ~ ")]);
    }
    let n_pairs = inputs.len();
    inputs.extend(singles);
    let theirs = reference(APK_SCRIPT, &inputs);
    let mut bad = Vec::new();
    for (i, r) in inputs.iter().enumerate() {
        match r.as_slice() {
            [a, b] => {
                let ours = ord(apk::compare(a, b));
                if ours != theirs[i] {
                    bad.push(format!(
                        "{a:?} vs {b:?}: airlock {ours} univers {}",
                        theirs[i]
                    ));
                }
            }
            // univers refuses ⇒ airlock refuses, except the forms only apk-tools has.
            [s] => {
                if theirs[i] == "E" && apk::is_valid(s) && !apk_only(s) {
                    bad.push(format!("{s:?}: univers refuses it, airlock accepts it"));
                }
            }
            _ => unreachable!(),
        }
    }
    for b in bad.iter().take(20) {
        eprintln!("apk: {b}");
    }
    assert!(
        bad.is_empty(),
        "apk: {} of {} disagree",
        bad.len(),
        inputs.len()
    );
    let count = |v: &str| theirs[..n_pairs].iter().filter(|t| *t == v).count();
    eprintln!(
        "apk: {n_pairs} pairs (less {}, equal {}, greater {}) and {} strings ({} refused by \
         univers) agree",
        count("-1"),
        count("0"),
        count("1"),
        inputs.len() - n_pairs,
        theirs[n_pairs..].iter().filter(|t| *t == "E").count()
    );
}

/// Where Gentoo's rules (univers) and apk-tools' differ, airlock follows apk-tools.
#[test]
fn apk_differences_from_gentoo() {
    use Ordering::*;
    for (a, b, apk_tools, gentoo) in [
        // A revision `-r0` is a token after the end of `1.0`: apk-tools puts it after.
        ("1.0", "1.0-r0", Less, Equal),
        // An explicit suffix number 0 is a token after a bare suffix.
        ("1.0_alpha", "1.0_alpha0", Less, Equal),
        // A suffix following a bare suffix is an earlier token than a suffix number.
        ("1.0_p_p", "1.0_p1", Greater, Less),
        // Leading-zero numbers compare as strings, trailing zeros included.
        ("1.01", "1.010", Less, Equal),
        ("1.0", "1.00", Less, Equal),
    ] {
        assert_eq!(apk::compare(a, b), Some(apk_tools), "{a} vs {b}");
        let _ = gentoo;
    }
    // Forms Gentoo does not have.
    assert_eq!(apk::compare("1.0_git20240101", "1.0"), Some(Greater));
    assert_eq!(apk::compare("1.0_git1", "1.0_p1"), Some(Less));
    assert_eq!(apk::compare("1.0~abc1", "1.0~abc2"), Some(Less));
    assert_eq!(apk::compare("01.2", "1.2"), Some(Equal));
}

const CVSS_SCRIPT: &str = "
from cvss import CVSS3
for r in rows:
    try:
        print(str(CVSS3(r[0]).base_score))
    except Exception:
        print('E')
";

/// Every combination of base metric values, in both versions; some with temporal and
/// environmental metrics after them; some mangled.
fn cvss_vectors(rng: &mut Rng) -> Vec<Vec<String>> {
    let base: [(&str, &[&str]); 8] = [
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "R"]),
        ("S", &["U", "C"]),
        ("C", &["H", "L", "N"]),
        ("I", &["H", "L", "N"]),
        ("A", &["H", "L", "N"]),
    ];
    let extra: [(&str, &[&str]); 14] = [
        ("E", &["X", "U", "P", "F", "H"]),
        ("RL", &["X", "O", "T", "W", "U"]),
        ("RC", &["X", "U", "R", "C"]),
        ("CR", &["X", "L", "M", "H"]),
        ("IR", &["X", "L", "M", "H"]),
        ("AR", &["X", "L", "M", "H"]),
        ("MAV", &["X", "N", "A", "L", "P"]),
        ("MAC", &["X", "L", "H"]),
        ("MPR", &["X", "N", "L", "H"]),
        ("MUI", &["X", "N", "R"]),
        ("MS", &["X", "U", "C"]),
        ("MC", &["X", "N", "L", "H"]),
        ("MI", &["X", "N", "L", "H"]),
        ("MA", &["X", "N", "L", "H"]),
    ];
    let combos: usize = base.iter().map(|(_, v)| v.len()).product();
    let mut out = Vec::new();
    for version in ["3.0", "3.1"] {
        for mut k in 0..combos {
            let mut v = format!("CVSS:{version}");
            for (name, values) in &base {
                v.push_str(&format!("/{name}:{}", values[k % values.len()]));
                k /= values.len();
            }
            if rng.chance(20) {
                for (name, values) in &extra {
                    if rng.chance(50) {
                        v.push_str(&format!("/{name}:{}", values[rng.below(values.len())]));
                    }
                }
            }
            out.push(vec![v]);
        }
    }
    for _ in 0..500 {
        let v = out[rng.below(out.len())][0].clone();
        let v = match rng.below(4) {
            0 => format!(
                "{v}/{}",
                rng.pick(&["AV:N", "XX:Y", "E:Q", "S:C", "", "MAV"])
            ),
            1 => {
                let parts: Vec<&str> = v.split('/').collect();
                let drop = 1 + rng.below(parts.len() - 1);
                parts
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != drop)
                    .map(|(_, p)| *p)
                    .collect::<Vec<_>>()
                    .join("/")
            }
            _ => rng.mutate(&v, b"ACHILMNPRSUX:/.0134"),
        };
        out.push(vec![v]);
    }
    out
}

#[test]
fn cvss3_agrees_with_cvss_package() {
    let mut rng = Rng(31);
    let inputs = cvss_vectors(&mut rng);
    let theirs = reference(CVSS_SCRIPT, &inputs);
    let mut bad = Vec::new();
    let mut scored = 0;
    for (r, t) in inputs.iter().zip(&theirs) {
        let ours = cvss::base_score(&r[0]);
        match (&ours, t.as_str()) {
            // The reference refuses it: so must airlock.
            (Ok(s), "E") => bad.push(format!("{:?}: airlock {s}, cvss refuses it", r[0])),
            (Err(_), "E") => {}
            (Ok(s), t) => {
                scored += 1;
                if format!("{s:.1}") != format!("{:.1}", t.parse::<f64>().unwrap()) {
                    bad.push(format!("{:?}: airlock {s}, cvss {t}", r[0]));
                }
            }
            // airlock may be stricter than the reference, but not on a well-formed vector.
            (Err(e), t) => {
                if !r[0].contains("//") && r[0].matches('/').count() >= 8 {
                    eprintln!("cvss: {:?}: airlock refuses ({e}), cvss scores {t}", r[0]);
                }
            }
        }
    }
    for b in bad.iter().take(20) {
        eprintln!("cvss: {b}");
    }
    assert!(
        bad.is_empty(),
        "cvss: {} of {} disagree",
        bad.len(),
        inputs.len()
    );
    assert!(scored > 5000, "only {scored} vectors scored");
    eprintln!(
        "cvss: {} vectors agree, {scored} scored by both",
        inputs.len()
    );
}

const CVSS4_SCRIPT: &str = "
from cvss import CVSS4
for r in rows:
    try:
        print(str(CVSS4(r[1]).base_score))
    except Exception:
        print('E')
";

/// CVSS v4.0 vectors: random base metric values, some followed by threat, environmental
/// and supplemental metrics, some mangled. Each comes with the vector the reference scores:
/// the base metrics alone, since the reference applies the other metrics to its score.
fn cvss4_vectors(rng: &mut Rng) -> Vec<Vec<String>> {
    let base: [(&str, &[&str]); 11] = [
        ("AV", &["N", "A", "L", "P"]),
        ("AC", &["L", "H"]),
        ("AT", &["N", "P"]),
        ("PR", &["N", "L", "H"]),
        ("UI", &["N", "P", "A"]),
        ("VC", &["H", "L", "N"]),
        ("VI", &["H", "L", "N"]),
        ("VA", &["H", "L", "N"]),
        ("SC", &["H", "L", "N"]),
        ("SI", &["H", "L", "N"]),
        ("SA", &["H", "L", "N"]),
    ];
    let extra: [(&str, &[&str]); 8] = [
        ("E", &["X", "A", "P", "U"]),
        ("CR", &["X", "H", "M", "L"]),
        ("MAV", &["X", "N", "A", "L", "P"]),
        ("MVC", &["X", "H", "L", "N"]),
        ("MSI", &["X", "S", "H", "L", "N"]),
        ("S", &["X", "N", "P"]),
        ("R", &["X", "A", "U", "I"]),
        ("U", &["X", "Clear", "Green", "Amber", "Red"]),
    ];
    let mut out = Vec::new();
    for _ in 0..4000 {
        let mut v = "CVSS:4.0".to_string();
        for (name, values) in &base {
            v.push_str(&format!("/{name}:{}", values[rng.below(values.len())]));
        }
        let plain = v.clone();
        if rng.chance(20) {
            for (name, values) in &extra {
                if rng.chance(50) {
                    v.push_str(&format!("/{name}:{}", values[rng.below(values.len())]));
                }
            }
        }
        out.push(vec![v, plain]);
    }
    for _ in 0..500 {
        let v = out[rng.below(out.len())][1].clone();
        let v = match rng.below(3) {
            0 => format!(
                "{v}/{}",
                rng.pick(&["AV:N", "XX:Y", "E:Q", "U:Blue", "", "S"])
            ),
            1 => {
                let parts: Vec<&str> = v.split('/').collect();
                let drop = 1 + rng.below(parts.len() - 1);
                parts
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != drop)
                    .map(|(_, p)| *p)
                    .collect::<Vec<_>>()
                    .join("/")
            }
            _ => rng.mutate(&v, b"ACHILMNPRSUVX:/.04"),
        };
        out.push(vec![v.clone(), v]);
    }
    out
}

#[test]
fn cvss4_agrees_with_cvss_package() {
    let mut rng = Rng(40);
    let inputs = cvss4_vectors(&mut rng);
    let theirs = reference(CVSS4_SCRIPT, &inputs);
    let mut bad = Vec::new();
    let mut scored = 0;
    for (r, t) in inputs.iter().zip(&theirs) {
        match (cvss::base_score(&r[0]), t.as_str()) {
            (Ok(s), "E") => bad.push(format!("{:?}: airlock {s}, cvss refuses it", r[0])),
            (Err(_), "E") => {}
            (Ok(s), t) => {
                scored += 1;
                if format!("{s:.1}") != format!("{:.1}", t.parse::<f64>().unwrap()) {
                    bad.push(format!("{:?}: airlock {s}, cvss {t}", r[0]));
                }
            }
            (Err(e), t) => bad.push(format!("{:?}: airlock refuses ({e}), cvss {t}", r[0])),
        }
    }
    for b in bad.iter().take(20) {
        eprintln!("cvss v4: {b}");
    }
    assert!(
        bad.is_empty(),
        "cvss v4: {} of {} disagree",
        bad.len(),
        inputs.len()
    );
    assert!(scored > 4000, "only {scored} vectors scored");
    eprintln!(
        "cvss v4: {} vectors agree, {scored} scored by both",
        inputs.len()
    );
}
