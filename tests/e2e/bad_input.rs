//! Bad input: every case gets a non-zero exit and an error naming the volume and the entry or
//! blob at fault, and nothing is written outside a temp dir.

use airlock_e2e::*;

fn verify(f: &Fixture, vols: &[&str]) -> Run {
    let mut args = vec!["verify", "--trust", "root.json", "--clock-skew", "0s"];
    args.extend_from_slice(vols);
    f.airlock(&args)
}

fn packed() -> (Fixture, String) {
    let f = Fixture::new();
    let v = f.pack("out", &[]).remove(0);
    (f, v)
}

#[test]
fn flipped_byte_in_signature_payload_or_blob() {
    let (f, v) = packed();
    // The signature: change one base64 character of the first signature.
    rewrite_volume(
        f.path(),
        &v,
        "sig.tar.zst",
        r#"
import json
m, data = entries[0]
env = json.loads(data)
s = env["signatures"][0]["sig"]
env["signatures"][0]["sig"] = ("B" if s[5] != "B" else "C").join([s[:5], s[6:]])
entries[0] = regular(m.name, json.dumps(env).encode())
"#,
    );
    verify(&f, &["sig.tar.zst"]).fails().says(&[
        "sig.tar.zst",
        "signature does not verify",
        "threshold is 1",
    ]);
    // The signed payload: one character of the statement.
    rewrite_volume(
        f.path(),
        &v,
        "payload.tar.zst",
        r#"
import json, base64
m, data = entries[0]
env = json.loads(data)
p = base64.b64decode(env["payload"]).replace(b"acme/tiny-model", b"acme/tiny-modem")
env["payload"] = base64.b64encode(p).decode()
entries[0] = regular(m.name, json.dumps(env).encode())
"#,
    );
    verify(&f, &["payload.tar.zst"])
        .fails()
        .says(&["payload.tar.zst", "signature does not verify"]);
    // A blob: one byte of the model weights.
    let model = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout
        .trim()
        .to_string();
    rewrite_volume(
        f.path(),
        &v,
        "blob.tar.zst",
        &format!(
            r#"
i = names.index("blobs/sha256/{model}")
m, data = entries[i]
entries[i] = (m, data[:100] + bytes([data[100] ^ 1]) + data[101:])
"#
        ),
    );
    verify(&f, &["blob.tar.zst"]).fails().says(&[
        "blob.tar.zst",
        &format!("blob sha256:{model}"),
        "hashes to",
    ]);
    // Unpacking the same volume leaves nothing behind.
    f.airlock(&[
        "unpack",
        "--trust",
        "root.json",
        "blob.tar.zst",
        "--out",
        "layout",
    ])
    .fails()
    .says(&[&model]);
    assert!(!f.p("layout").exists());
    let leftovers = f.sh("ls -A | grep unpack || true").ok().stdout;
    assert!(
        leftovers.trim().is_empty(),
        "staging left behind: {leftovers}"
    );
}

#[test]
fn flipped_byte_in_any_frame_of_the_compressed_volume() {
    let (f, v) = packed();
    let path = f.p(&v);
    let frames = frames(&path);
    let original = std::fs::read(&path).unwrap();
    let len = original.len() as u64;
    // The middle of every frame (metadata, each blob, end-of-archive) and the index itself.
    let mut offsets: Vec<u64> = frames.iter().map(|(off, size, _)| off + size / 2).collect();
    offsets.push(len - 20);
    offsets.push(len - 3);
    for off in offsets {
        std::fs::write(&path, &original).unwrap();
        flip_byte(&path, off);
        let r = verify(&f, &[&v]).fails();
        assert!(
            r.stderr.contains(v.as_str()) || r.stdout.contains(v.as_str()),
            "error at {off} does not name the volume:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
    std::fs::write(&path, &original).unwrap();
    verify(&f, &[&v]).ok();
}

#[test]
fn truncated_volume() {
    let (f, v) = packed();
    let len = std::fs::metadata(f.p(&v)).unwrap().len();
    for keep in [len / 2, len - 100, 600, 10] {
        f.sh(&format!("head -c {keep} {v} > cut.tar.zst")).ok();
        verify(&f, &["cut.tar.zst"]).fails().says(&["cut.tar.zst"]);
    }
    f.sh(&format!("head -c {} {v} > cut.tar.zst", len / 2)).ok();
    verify(&f, &["cut.tar.zst"]).fails().says(&["truncated"]);
}

#[test]
fn volume_from_another_bundle_is_refused() {
    let f = Fixture::with_model_bytes(2 << 20);
    f.sh("head -c 2M /dev/urandom > models/tiny/model2.safetensors")
        .ok();
    let a = f.pack("a", &["--volume-size", "2600KiB", "--sequence", "1"]);
    let b = f.pack("b", &["--volume-size", "2600KiB", "--sequence", "2"]);
    assert!(a.len() >= 2 && b.len() >= 2);
    verify(&f, &[&a[0], &b[1]])
        .fails()
        .says(&[&b[1], "belongs to bundle"]);
    verify(&f, &[&a[0], &a[0]]).fails().says(&["given twice"]);
}

#[test]
fn unknown_too_few_and_repeated_signers() {
    let f = Fixture::new();
    // A root that trusts only signer2: the bundle's signer is unknown.
    f.airlock(&[
        "trust",
        "init",
        "--root-key",
        "keys/root.key",
        "--signer",
        "keys/signer2.pub",
        "--out",
        "other.json",
    ])
    .ok();
    let v = f.pack("out", &[]).remove(0);
    f.airlock(&["verify", "--trust", "other.json", &v])
        .fails()
        .says(&[&v, "is not trusted for bundle"]);
    // Threshold 2: one signature is one short, and the same key twice still counts once.
    f.airlock(&[
        "trust",
        "init",
        "--root-key",
        "keys/root.key",
        "--signer",
        "keys/signer.pub",
        "--signer",
        "keys/signer2.pub",
        "--threshold",
        "2",
        "--out",
        "two.json",
    ])
    .ok();
    f.airlock(&["verify", "--trust", "two.json", &v])
        .fails()
        .says(&["1 valid from trusted keys, threshold is 2"]);
    let r = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--key",
            "keys/signer.key",
            "--out",
            "twice",
        ])
        .ok()
        .json();
    let twice = r["volumes"][0]["path"].as_str().unwrap().to_string();
    f.airlock(&["verify", "--trust", "two.json", &twice])
        .fails()
        .says(&["1 valid from trusted keys, threshold is 2"]);
}

#[test]
fn expired_bundle() {
    let f = Fixture::new();
    let v = f.pack("out", &["--expires", "1h"]).remove(0);
    verify(&f, &[&v]).ok();
    // The verifier's clock two hours on (libfaketime), instead of waiting for expiry.
    f.sh(&format!(
        "faketime -f +2h {} verify --trust root.json --clock-skew 0s {v}",
        bin("airlock").display()
    ))
    .refused()
    .says(&[&v, "expired at"]);
}

#[test]
fn unsafe_tar_entries_are_refused() {
    let (f, v) = packed();
    let cases: &[(&str, &str, &str)] = &[
        (
            "dotdot",
            r#"entries.insert(4, regular("../evil", b"x"))"#,
            "unsafe path component",
        ),
        (
            "absolute",
            r#"entries.insert(4, regular("/etc/evil", b"x"))"#,
            "absolute path",
        ),
        (
            "symlink",
            r#"
ti = tarfile.TarInfo("blobs/sha256/link"); ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/passwd"
entries.insert(4, (ti, b""))"#,
            "symbolic link",
        ),
        (
            "hardlink",
            r#"
ti = tarfile.TarInfo("blobs/sha256/hard"); ti.type = tarfile.LNKTYPE; ti.linkname = "oci-layout"
entries.insert(4, (ti, b""))"#,
            "hard link",
        ),
        (
            "device",
            r#"
ti = tarfile.TarInfo("dev/sda"); ti.type = tarfile.CHRTYPE; ti.devmajor = 8
entries.insert(4, (ti, b""))"#,
            "character device",
        ),
        ("duplicate", "entries.insert(5, entries[4])", "duplicate"),
        (
            "duplicate-last",
            "entries.append(entries[-1])",
            "not listed in the signed manifest",
        ),
        (
            "foreign",
            r#"entries.insert(4, regular("blobs/sha256/" + "0" * 64, b"x"))"#,
            "where the signed manifest expects",
        ),
    ];
    for (name, edit, says) in cases {
        let out = format!("{name}.tar.zst");
        rewrite_volume(f.path(), &v, &out, edit);
        let r = verify(&f, &[&out]).fails().says(&[&out]);
        assert!(
            r.stderr.contains(says),
            "{name}: expected {says:?} in:\n{}",
            r.stderr
        );
        f.airlock(&[
            "unpack",
            "--trust",
            "root.json",
            &out,
            "--out",
            &format!("u-{name}"),
        ])
        .fails();
        assert!(!f.p(&format!("u-{name}")).exists());
    }
    assert!(!f.p("etc").exists() && !f.p("../evil").exists());
}

#[test]
fn non_canonical_header_fields_are_refused() {
    let (f, v) = packed();
    let model = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout
        .trim()
        .to_string();
    let entry = format!("blobs/sha256/{model}");
    // The real blob with its real data and size, a valid header checksum and a valid frame
    // index: only mode 4755 and owner "evil" (or the mtime) differ, which `tar -x` would apply.
    let cases: &[(&str, &str)] = &[
        (
            "setuid",
            r#"mode=0o4755, uname="evil", gname="evil", uid=666, gid=666"#,
        ),
        ("mtime", "mtime=1700000000"),
    ];
    for (name, fields) in cases {
        let out = format!("{name}.tar.zst");
        rewrite_volume(
            f.path(),
            &v,
            &out,
            &format!(
                r#"
i = names.index("{entry}")
m, data = entries[i]
entries[i] = (m, data, hdr(m.name, len(data), {fields}))
"#
            ),
        );
        // Python's tarfile reads it as a setuid file owned by "evil" (or with a new mtime).
        if *name == "setuid" {
            let r = f.sh(&format!(
                "zstd -dc {out} | python3 -c \"import tarfile,sys; t=tarfile.open(fileobj=sys.stdin.buffer, mode='r|'); print([(m.mode, m.uname) for m in t if m.name=='{entry}'])\""
            ));
            assert!(
                r.stdout.contains("(2541, 'evil')"),
                "{}{}",
                r.stdout,
                r.stderr
            );
        }
        verify(&f, &[&out])
            .fails()
            .says(&[&out, &entry, "differ from the canonical header"]);
        f.airlock(&[
            "unpack",
            "--trust",
            "root.json",
            &out,
            "--out",
            &format!("u-{name}"),
        ])
        .fails()
        .says(&["differ from the canonical header"]);
        assert!(!f.p(&format!("u-{name}")).exists());
    }
    // The same rewrite with canonical headers everywhere is accepted: only the fields matter.
    rewrite_volume(f.path(), &v, "same.tar.zst", "");
    verify(&f, &["same.tar.zst"]).ok();
}

#[test]
fn oversized_manifest_is_refused_before_reading() {
    let f = Fixture::new();
    f.sh(r#"python3 - <<'PY'
import tarfile, io
ti = tarfile.TarInfo("airlock-bundle.dsse.json"); ti.size = 100 << 20
open("big.tar", "wb").write(ti.tobuf(format=tarfile.USTAR_FORMAT) + b"{" * 4096)
PY
zstd -q big.tar -o big.tar.zst"#)
        .ok();
    verify(&f, &["big.tar.zst"]).fails().says(&[
        "big.tar.zst",
        "airlock-bundle.dsse.json",
        "exceeds the",
    ]);
    f.airlock(&["inspect", "big.tar.zst"])
        .fails()
        .says(&["exceeds the"]);
}

#[test]
fn decompression_bomb_is_bounded() {
    let (f, v) = packed();
    // The end-of-archive frame is indexed as 1024 bytes but expands to 2 GiB of zeros.
    f.sh("head -c 2G /dev/zero | zstd -q -1 -o bomb.frame").ok();
    let small = std::fs::metadata(f.p("bomb.frame")).unwrap().len();
    assert!(small < 1 << 20, "bomb is {small} bytes");
    rewrite_volume(f.path(), &v, "bomb.tar.zst", r#"eof_frame = "bomb.frame""#);
    let t = std::time::Instant::now();
    let r = f.sh(&format!(
        "/usr/bin/time -f 'maxrss=%M' {} verify --trust root.json bomb.tar.zst",
        bin("airlock").display()
    ));
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("bomb.tar.zst")
            && r.stderr
                .contains("does not decompress to its 1024 indexed bytes"),
        "{}",
        r.stderr
    );
    assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
    let rss: u64 = r
        .stderr
        .split("maxrss=")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss < 100 * 1024, "peak RSS {rss} KiB");
    // A manifest entry that expands without end is cut at its size bound.
    f.sh("python3 -c \"import tarfile,sys; ti=tarfile.TarInfo('airlock-bundle.dsse.json'); ti.size=60<<20; sys.stdout.buffer.write(ti.tobuf(format=tarfile.USTAR_FORMAT))\" > h && (cat h; head -c 3G /dev/zero) | zstd -q -1 -o bomb2.tar.zst").ok();
    let r = f.sh(&format!(
        "/usr/bin/time -f 'maxrss=%M' {} inspect bomb2.tar.zst",
        bin("airlock").display()
    ));
    assert_ne!(r.code, 0, "{}", r.stdout);
    let rss: u64 = r
        .stderr
        .split("maxrss=")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss < 200 * 1024, "peak RSS {rss} KiB: {}", r.stderr);
}

#[test]
fn bad_manifests_and_sources_name_the_problem() {
    let f = Fixture::new();
    f.sh("sed 's/      name: registry/      nmae: registry/' m.yaml > typo.yaml")
        .ok();
    f.airlock(&[
        "pack",
        "typo.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "o",
    ])
    .fails()
    .says(&["typo.yaml", "nmae", "line 7"]);
    f.sh("sed 's/sha256: \".*\"/sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"/' m.yaml > badsum.yaml").ok();
    f.airlock(&[
        "pack",
        "badsum.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "o",
    ])
    .fails()
    .says(&["bin/k3s", "sha256 is"]);
    f.sh("sed 's#layouts/hello:v1#layouts/hello:v9#' m.yaml > notag.yaml")
        .ok();
    f.airlock(&[
        "pack",
        "notag.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "o",
    ])
    .fails()
    .says(&["v9"]);
    // A layout whose blob was altered on disk: caught while packing.
    f.sh("cp -r layouts/hello layouts/bad && L=$(ls -S layouts/bad/blobs/sha256 | head -1) && printf x >> layouts/bad/blobs/sha256/$L && sed 's#layouts/hello#layouts/bad#' m.yaml > bad.yaml").ok();
    f.airlock(&["pack", "bad.yaml", "--key", "keys/signer.key", "--out", "o"])
        .fails()
        .says(&["layouts/bad"]);
    assert!(
        !f.p("o").exists() || std::fs::read_dir(f.p("o")).unwrap().next().is_none(),
        "a failed pack left files"
    );
}

/// With `--json`, a failure is also a JSON document on stdout, with the same exit code.
#[test]
fn failures_are_json_on_stdout_with_json() {
    let f = Fixture::new();
    let r = f
        .airlock(&["--json", "verify", "--trust", "missing.json", "x.tar.zst"])
        .refused();
    let j = r.json();
    assert!(j["error"].as_str().is_some(), "{j}");
    assert!(j["causes"].is_array(), "{j}");
    let r = airlockd(&f, &["--json", "list", "--data", "nowhere"]).refused();
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not an airlockd data directory"),
        "{}",
        r.stdout
    );
}
