//! airlock's YARA engine (yara-x, linked into `airlock scan`) against the reference
//! implementation: Debian's `yara` 4.2 CLI (libyara) runs the same rule file over the same
//! files, and the set of (rule, file) matches must be identical. The rules use what operator
//! rule sets use: text with modifiers (nocase, wide, xor, base64), hex with jumps and
//! alternatives, regular expressions, counts, `N of them`, `filesize`, `uint32()`, and the
//! `hash` and `math` modules.

use std::collections::BTreeSet;

use airlock_e2e::*;

const RULES: &str = r#"
import "hash"
import "math"

rule text_nocase { strings: $a = "airlock-marker" nocase condition: $a }
rule wide_text { strings: $a = "secret" wide condition: $a }
rule elf_hex_at_0 { strings: $h = { 7F 45 4C 46 02 01 01 [9] (02|03) 00 } condition: $h at 0 }
rule elf_magic { condition: filesize > 4 and uint32(0) == 0x464c457f }
rule url_payload { strings: $r = /https?:\/\/[a-z0-9.-]{3,40}\/payload\.(sh|bin)/ condition: $r }
rule tiny { condition: filesize < 64 }
rule thrice { strings: $x = "abc" condition: #x >= 3 }
rule two_of_three { strings: $a = "alpha" $b = "beta" $c = "gamma" condition: 2 of them }
rule high_entropy { condition: filesize > 4096 and math.entropy(0, filesize) > 7.9 }
rule known_md5 { condition: hash.md5(0, filesize) == "5d41402abc4b2a76b9719d911017c592" }
rule xor_password { strings: $x = "password" xor(1-255) condition: $x }
rule base64_shell { strings: $b = "/bin/sh -c" base64 condition: $b }
"#;

#[test]
fn airlock_and_the_yara_cli_agree_rule_for_rule() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    sh(
        p,
        r#"
mkdir -p rules files
cp /bin/true files/true.elf
python3 - <<'PY'
import base64, random
r = random.Random(7)
w = lambda n, b: open("files/" + n, "wb").write(b)
w("marker.txt", b"header\nThis is an AIRLOCK-Marker line\n" + b"." * 100)
w("wide.bin", b"\x01\x02" + "top secret".encode("utf-16-le") + b"\x00" * 80)
w("url.txt", b"fetch https://evil.example/payload.sh now\n" + b"-" * 80)
w("small.txt", b"short")
w("abc.txt", b"abc " * 3 + b"x" * 80)
w("abc2.txt", b"abc abc" + b"y" * 80)
w("greek.txt", b"alpha and gamma, but no b-word" + b"z" * 60)
w("random.dat", b"RAND" + bytes(r.getrandbits(8) for _ in range(65536)))
w("hello.txt", b"hello")
w("xored.bin", b"\x00" * 70 + bytes(c ^ 0x5a for c in b"password") + b"\x00" * 20)
w("b64.txt", b"cmd=" + base64.b64encode(b"xx /bin/sh -c 'id'") + b"\n" + b"=" * 70)
w("plain.txt", b"nothing to see here, " * 10)
PY
"#,
    )
    .ok();
    std::fs::write(p.join("rules/peer.yar"), RULES).unwrap();

    // The reference: libyara's CLI, every file, every rule.
    let out = sh(p, "yara --no-warnings rules/peer.yar files/ | sort")
        .ok()
        .stdout;
    let want: BTreeSet<(String, String)> = out
        .lines()
        .map(|l| {
            let (rule, path) = l.split_once(' ').unwrap();
            let file = path.rsplit('/').next().unwrap();
            (rule.to_string(), file.to_string())
        })
        .collect();

    // airlock: the same rules as an operator rule directory (namespace "peer").
    let run = airlock(p, &["--json", "scan", "--rules", "rules", "files"]);
    let v = run.json();
    let got: BTreeSet<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            let rule = f["rule"].as_str()?.strip_prefix("yara/peer/")?;
            let file = f["file"].as_str()?.rsplit('/').next()?;
            Some((rule.to_string(), file.to_string()))
        })
        .collect();
    assert_eq!(got, want, "airlock (left) and yara 4.2 (right) disagree");

    // Every rule matched something, so the agreement is not the empty set agreeing.
    let rules: BTreeSet<&str> = want.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rules.len(), 12, "rules that matched: {rules:?}");
    // Operator rules without `severity` are malicious, so the scan exits 1; the rule set's
    // digest and files are reported.
    assert_eq!(run.code, 1);
    assert_eq!(v["rules"]["files"][1]["namespace"], "peer");
    assert!(v["rules"]["id"].as_str().unwrap().starts_with("sha256:"));
}

/// A rule file that does not compile is exit 2 with the file and line named, and nothing is
/// scanned.
#[test]
fn a_broken_rule_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    sh(p, "mkdir rules && printf 'rule a { condition: true }\\nrule b { strings: $x = \"q\" condition: $y }\\n' > rules/bad.yar && echo hi > f.txt").ok();
    let r = airlock(p, &["scan", "--rules", "rules", "f.txt"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad.yar:2:"), "{}", r.stderr);
    assert!(r.stderr.contains("$y"), "{}", r.stderr);
    // The environment variable works like --rules.
    let r = sh(
        p,
        &format!(
            "AIRLOCK_YARA_RULES=rules {} scan f.txt",
            bin("airlock").display()
        ),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}
