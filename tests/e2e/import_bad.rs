//! Hostile and damaged volumes fed to `airlockd import` (a broken signature, `..` and absolute
//! paths, a hard link, a device node, a duplicate entry, a decompression bomb, an oversized
//! manifest envelope): each is refused, moved to quarantine with a reason of kind `integrity`,
//! and the store and catalog stay as they were.

use airlock_e2e::*;

#[test]
fn bad_volumes_are_refused_and_quarantined_by_import() {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let v = f.pack("out", &[]).remove(0);
    let cases: &[(&str, &str)] = &[
        (
            "sig",
            r#"
import json
m, data = entries[0]
env = json.loads(data)
s = env["signatures"][0]["sig"]
env["signatures"][0]["sig"] = ("B" if s[5] != "B" else "C").join([s[:5], s[6:]])
entries[0] = regular(m.name, json.dumps(env).encode())
"#,
        ),
        ("dotdot", r#"entries.insert(4, regular("../evil", b"x"))"#),
        (
            "absolute",
            r#"entries.insert(4, regular("/etc/evil", b"x"))"#,
        ),
        (
            "hardlink",
            r#"
ti = tarfile.TarInfo("blobs/sha256/hard"); ti.type = tarfile.LNKTYPE; ti.linkname = "oci-layout"
entries.insert(4, (ti, b""))"#,
        ),
        (
            "device",
            r#"
ti = tarfile.TarInfo("dev/sda"); ti.type = tarfile.CHRTYPE; ti.devmajor = 8
entries.insert(4, (ti, b""))"#,
        ),
        ("duplicate", "entries.insert(5, entries[4])"),
        ("bomb", r#"eof_frame = "bomb.frame""#),
    ];
    f.sh("head -c 1G /dev/zero | zstd -q -1 -o bomb.frame").ok();
    f.sh(r#"python3 -c "import tarfile,sys; ti=tarfile.TarInfo('airlock-bundle.dsse.json'); ti.size=100<<20; sys.stdout.buffer.write(ti.tobuf(format=tarfile.USTAR_FORMAT)+b'{'*4096)" | zstd -q -o oversized.tar.zst"#).ok();
    let blobs_before = f.sh("ls data/blobs/sha256 | wc -l").ok().stdout;
    let mut vols: Vec<String> = vec!["oversized.tar.zst".into()];
    for (name, edit) in cases {
        let out = format!("{name}.tar.zst");
        rewrite_volume(f.path(), &v, &out, edit);
        vols.push(out);
    }
    for vol in &vols {
        let r = airlockd(&f, &["--json", "import", "--data", "data", vol]).refused();
        let o = &r.json()["volumes"][0];
        assert_eq!(o["status"], "rejected", "{vol}: {o}");
        assert!(f.p(vol).exists(), "{vol} on the medium was removed");
        assert!(
            f.p(o["quarantined"].as_str().unwrap()).exists(),
            "{vol} was not copied to quarantine"
        );
    }
    let q = f.sh("ls data/quarantine | grep -c reason.json").ok().stdout;
    assert_eq!(q.trim().parse::<usize>().unwrap(), vols.len());
    assert_eq!(
        f.sh("ls data/blobs/sha256 | wc -l").ok().stdout,
        blobs_before,
        "a refused volume left blobs"
    );
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    assert!(list["bundles"].as_array().unwrap().is_empty());
    airlockd(&f, &["audit", "verify", "--data", "data"]).ok();
    // The untouched volume still imports.
    airlockd(&f, &["import", "--data", "data", &v]).ok();
}
