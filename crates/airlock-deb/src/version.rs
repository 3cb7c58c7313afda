//! Debian version strings compared the way dpkg compares them.
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch is a decimal number (absent means 0),
//! the revision is everything after the last `-` (absent means empty, which compares equal to
//! `0`). Upstream and revision are compared with dpkg's `verrevcmp`: alternating runs of
//! non-digits, compared character by character with `~` before everything (even the end of
//! the string), then letters, then other characters; and runs of digits, compared as numbers
//! (leading zeros ignored, arbitrarily long).
//!
//! Why not a crate: `debversion` 0.5 is the well-kept choice, but it pulls 15 further crates
//! into the build (`regex`, `lazy-regex` and its proc-macro, `chrono`, `num-bigint`, …) for a
//! comparison that is some sixty lines here. The property test in this module checks
//! [`compare`] against `dpkg --compare-versions` on random versions.

use std::cmp::Ordering;

/// Longest version accepted by [`is_valid`].
pub const MAX_VERSION_LEN: usize = 256;

/// A version split into its three parts (not validated).
struct Parts<'a> {
    epoch: &'a str,
    upstream: &'a str,
    revision: &'a str,
}

fn split(v: &str) -> Parts<'_> {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (e, rest),
        None => ("", v),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, r),
        None => (rest, ""),
    };
    Parts {
        epoch,
        upstream,
        revision,
    }
}

/// Is `s` a version dpkg accepts: an optional decimal epoch that fits in 31 bits, an upstream
/// part that starts with a digit and holds only alphanumerics and `.+-~:`, and an optional
/// non-empty revision of alphanumerics and `.+~`; no whitespace; at most
/// [`MAX_VERSION_LEN`] bytes.
pub fn is_valid(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_VERSION_LEN || s.trim() != s {
        return false;
    }
    let p = split(s);
    if s.contains(':')
        && (p.epoch.is_empty()
            || !p.epoch.bytes().all(|c| c.is_ascii_digit())
            || p.epoch.parse::<i32>().is_err())
    {
        return false;
    }
    if s.contains('-') && p.revision.is_empty() {
        return false;
    }
    let up_ok = p
        .upstream
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
        && p.upstream
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".+-~:".contains(&c));
    let rev_ok = p
        .revision
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b".+~".contains(&c));
    up_ok && rev_ok
}

/// dpkg's ordering of `a` against `b` (`Less` means `a << b`). Total on any input: text that
/// is not a valid version is compared as if it were (an unparsable epoch counts as part of the
/// upstream version).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (split(a), split(b));
    let ea = epoch_of(&pa);
    let eb = epoch_of(&pb);
    match (ea, eb) {
        (Some(x), Some(y)) => {
            let c = cmp_digits(x.as_bytes(), y.as_bytes());
            if c != Ordering::Equal {
                return c;
            }
        }
        _ => {
            // An epoch that is not a number: compare the text before the colon like upstream.
            let c = verrevcmp(pa.epoch.as_bytes(), pb.epoch.as_bytes());
            if c != Ordering::Equal {
                return c;
            }
        }
    }
    verrevcmp(pa.upstream.as_bytes(), pb.upstream.as_bytes())
        .then_with(|| verrevcmp(pa.revision.as_bytes(), pb.revision.as_bytes()))
}

fn epoch_of<'a>(p: &Parts<'a>) -> Option<&'a str> {
    p.epoch
        .bytes()
        .all(|c| c.is_ascii_digit())
        .then_some(p.epoch)
}

/// Two runs of digits compared as numbers of any length.
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    s.get(n..).unwrap_or_default()
}

/// The weight of one character in a non-digit run; `None` is the end of the run.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefix, character by character.
        loop {
            let ca = a.first().copied();
            let cb = b.first().copied();
            let a_nd = ca.is_some_and(|c| !c.is_ascii_digit());
            let b_nd = cb.is_some_and(|c| !c.is_ascii_digit());
            if !a_nd && !b_nd {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        // Digit runs, as numbers.
        let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let (da, ra) = a.split_at(na);
        let (db, rb) = b.split_at(nb);
        let c = cmp_digits(da, db);
        if c != Ordering::Equal {
            return c;
        }
        a = ra;
        b = rb;
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn known_orderings() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0a", Less),
            ("1:0.1", "9.9", Greater),
            ("1.10", "1.9", Greater),
            ("1.007", "1.7", Equal),
            ("1.0-1", "1.0-1~bpo1", Greater),
            ("2.30-1", "2.30-10", Less),
            ("1.2.3-4-5", "1.2.3-4-4", Greater),
            ("12345678901234567890123", "12345678901234567890124", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn validity() {
        for ok in ["1", "1.0-1", "1:2.3~rc1+dfsg-1ubuntu0.1", "2:1.2:3-4", "0"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            " 1",
            "a1",
            "1.0-",
            ":1",
            "x:1",
            "1 2",
            "1.0-a_b",
            "1_0",
            "99999999999:1",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    /// A small deterministic PRNG (xorshift64*), so that the property test is repeatable.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            let i = self.below(xs.len() as u64) as usize;
            xs.get(i).copied().unwrap_or("")
        }
    }

    fn random_part(r: &mut Rng, first_digit: bool, alphabet: &[&str]) -> String {
        let mut s = String::new();
        if first_digit {
            s.push_str(r.pick(&["0", "1", "2", "9", "00", "01", "10"]));
        }
        for _ in 0..r.below(5) {
            s.push_str(r.pick(alphabet));
        }
        if s.is_empty() {
            s.push('0');
        }
        s
    }

    fn random_version(r: &mut Rng) -> String {
        const UP: &[&str] = &[
            "0", "1", "2", "10", "007", "9", ".", ".", "~", "~", "+", "a", "b", "z", "A", "rc",
            "-", "dfsg", "~~", "1a",
        ];
        const REV: &[&str] = &["0", "1", "2", "01", ".", "~", "+", "b", "bpo", "a"];
        let mut v = String::new();
        if r.below(4) == 0 {
            v.push_str(r.pick(&["0", "1", "2", "10", "01"]));
            v.push(':');
        }
        let mut up = random_part(r, true, UP);
        while up.ends_with('-') {
            up.push('1');
        }
        v.push_str(&up);
        if r.below(2) == 0 {
            v.push('-');
            v.push_str(&random_part(r, false, REV));
        } else if v.contains('-') {
            v.push_str("-1");
        }
        v
    }

    /// [`compare`] agrees with `dpkg --compare-versions` on random versions.
    #[test]
    fn agrees_with_dpkg() {
        if std::process::Command::new("dpkg")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("dpkg not installed: skipped");
            return;
        }
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut pairs = Vec::new();
        while pairs.len() < 1200 {
            let a = random_version(&mut r);
            let b = if r.below(8) == 0 {
                a.clone()
            } else {
                random_version(&mut r)
            };
            assert!(is_valid(&a), "generated invalid {a}");
            assert!(is_valid(&b), "generated invalid {b}");
            pairs.push((a, b));
        }
        // One shell reading the script on stdin, many comparisons: each prints `<`, `=` or `>`.
        let mut script = String::new();
        for (a, b) in &pairs {
            script.push_str(&format!(
                "if dpkg --compare-versions '{a}' lt '{b}'; then echo '<'; \
                 elif dpkg --compare-versions '{a}' eq '{b}'; then echo '='; else echo '>'; fi\n"
            ));
        }
        let mut child = std::process::Command::new("sh")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(script.as_bytes()).expect("script written");
        }
        let out = child.wait_with_output().expect("sh runs");
        let text = String::from_utf8(out.stdout).expect("ascii");
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(
            got.len(),
            pairs.len(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for ((a, b), d) in pairs.iter().zip(got) {
            let want = match d {
                "<" => Less,
                "=" => Equal,
                _ => Greater,
            };
            assert_eq!(compare(a, b), want, "dpkg says {a} {d} {b}");
        }
    }
}
