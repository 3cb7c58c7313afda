//! Keys, trust roots, pack → verify → inspect → unpack, and what real tools make of the result.

use airlock_e2e::*;

#[test]
fn keys_are_read_by_openssl_and_private_key_is_0600() {
    let f = Fixture::new();
    f.sh(
        "openssl pkey -in keys/signer.key -noout && openssl pkey -pubin -in keys/signer.pub -noout",
    )
    .ok();
    // The public key openssl derives from the private key is the one airlock wrote.
    f.sh("diff <(openssl pkey -in keys/signer.key -pubout) keys/signer.pub")
        .ok();
    let mode = f.sh("stat -c %a keys/signer.key").ok().stdout;
    assert_eq!(mode.trim(), "600");
    // Never overwrites an existing key.
    f.airlock(&["keys", "generate", "--name", "signer", "--out", "keys"])
        .fails()
        .says(&["signer.key"]);
}

#[test]
fn securesystemslib_verifies_the_bundle_signature_from_the_raw_public_key() {
    let f = Fixture::new();
    let vols = f.pack("out", &[]);
    f.sh(&format!(
        "zstd -dc {} | tar -xO airlock-bundle.dsse.json > env.json",
        vols[0]
    ))
    .ok();
    let pubhex = f
        .sh("openssl pkey -pubin -in keys/signer.pub -outform DER | tail -c 32 | xxd -p -c 64")
        .ok()
        .stdout;
    let script = r#"
import json, sys, hashlib
from securesystemslib.signer import SSlibKey
from securesystemslib.dsse import Envelope
pub = sys.argv[1]
keyid = hashlib.sha256(json.dumps({"keytype":"ed25519","keyval":{"public":pub},"scheme":"ed25519"}, sort_keys=True, separators=(",",":")).encode()).hexdigest()
key = SSlibKey(keyid=keyid, keytype="ed25519", scheme="ed25519", keyval={"public": pub})
env = Envelope.from_dict(json.load(open(sys.argv[2])))
if len(sys.argv) > 3:
    env.payload = env.payload.replace(b"acme/tiny-model", b"acme/evil-model")
env.verify([key], 1)
print("verified", keyid)
"#;
    std::fs::write(f.p("v.py"), script).unwrap();
    let py = python();
    let py = py.to_str().unwrap();
    let r = run_in(f.path(), py, &["v.py", pubhex.trim(), "env.json"]).ok();
    let keyid = f.airlock(&["--json", "inspect", &vols[0]]).ok().json()["signatureKeyIds"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(r.stdout.contains(&keyid), "{} vs {keyid}", r.stdout);
    // A tampered payload fails securesystemslib's verification too.
    run_in(f.path(), py, &["v.py", pubhex.trim(), "env.json", "tamper"]).fails();
}

#[test]
fn pack_verify_inspect_unpack_with_skopeo_umoci_and_containerd() {
    let f = Fixture::new();
    let vols = f.pack("out", &[]);
    assert_eq!(vols.len(), 1);
    let v = f
        .airlock(&["--json", "verify", "--trust", "root.json", &vols[0]])
        .ok()
        .json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["complete"], true);
    assert!(v["volumes"][0]["bytes"].as_u64().unwrap() > 300_000, "{v}");

    let i = f
        .airlock(&["--json", "inspect", "--trust", "root.json", &vols[0]])
        .ok()
        .json();
    let arts = i["manifest"]["artifacts"].as_array().unwrap();
    let kinds: Vec<&str> = arts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    // The image, the model and the file are scanned; their results travel as attestations,
    // and so do the image's and the file's SBOMs and the model's ML-BOM.
    assert_eq!(
        kinds,
        [
            "image",
            "model",
            "file",
            "attestation",
            "attestation",
            "attestation",
            "attestation",
            "attestation",
            "attestation"
        ]
    );
    assert_eq!(arts[1]["provenance"]["license"], "apache-2.0");
    assert_eq!(arts[0]["provenance"]["source"], "oci:./layouts/hello:v1");

    // Plain tools read the volume: zstd skips the index frame, tar sees the entries.
    let listing = f.sh(&format!("zstd -dc {} | tar -t", vols[0])).ok().stdout;
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(
        &names[..4],
        [
            "airlock-bundle.dsse.json",
            "airlock-volume.json",
            "oci-layout",
            "index.json"
        ]
    );

    f.airlock(&[
        "unpack",
        "--trust",
        "root.json",
        &vols[0],
        "--out",
        "layout",
    ])
    .ok();
    let sk = f
        .sh("skopeo inspect oci:layout:registry.example/acme/hello:v1")
        .ok()
        .json();
    let src = f.sh("skopeo inspect oci:layouts/hello:v1").ok().json();
    assert_eq!(
        sk["Digest"], src["Digest"],
        "unpacked image keeps its digest"
    );
    let ls = f.sh("umoci ls --layout layout").ok().stdout;
    assert_eq!(ls.trim(), "registry.example/acme/hello:v1");
    // The model's layers are the files, byte for byte.
    let model = &arts[1]["digest"];
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(f.p(&format!(
            "layout/blobs/sha256/{}",
            model.as_str().unwrap().trim_start_matches("sha256:")
        )))
        .unwrap(),
    )
    .unwrap();
    let titles: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        titles,
        [
            "README.md",
            "config.json",
            "model.safetensors",
            "sub/extra.dat"
        ]
    );
    assert_eq!(
        m["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );

    // containerd imports the image under its full name, straight from the volume.
    let c = Containerd::start();
    let sock = c.socket();
    f.sh(&format!(
        "zstd -dc {} | ctr -a {} -n airlock images import --no-unpack -",
        vols[0],
        sock.display()
    ))
    .ok();
    let names = c.ctr(&["-n", "airlock", "images", "ls", "-q"]).ok().stdout;
    assert_eq!(
        names.trim(),
        "registry.example/acme/hello:v1",
        "containerd names the image by io.containerd.image.name"
    );
    // ... and from the unpacked layout, unpacking the layers with the native snapshotter.
    f.sh(&format!(
        "tar -C layout -cf layout.tar . && ctr -a {} -n unpacked images import --snapshotter native layout.tar",
        sock.display()
    ))
    .ok();
    let names = c.ctr(&["-n", "unpacked", "images", "ls", "-q"]).ok().stdout;
    assert_eq!(names.trim(), "registry.example/acme/hello:v1");
}

#[test]
fn volumes_split_verify_alone_and_in_any_order() {
    let f = Fixture::with_model_bytes(3 << 20);
    f.sh("head -c 3M /dev/urandom > models/tiny/model2.safetensors && head -c 3M /dev/urandom > models/tiny/model3.safetensors").ok();
    let vols = f.pack("out", &["--volume-size", "3584KiB"]);
    assert!(vols.len() >= 3, "expected at least 3 volumes, got {vols:?}");
    for v in &vols {
        let size = std::fs::metadata(f.p(v)).unwrap().len();
        assert!(size <= 3584 << 10, "{v} is {size} bytes, over the limit");
    }
    // One volume alone verifies and names what the others hold.
    let one = f
        .airlock(&["--json", "verify", "--trust", "root.json", &vols[1]])
        .ok()
        .json();
    assert_eq!(one["ok"], true);
    assert_eq!(one["complete"], false);
    assert!(!one["missing"].as_array().unwrap().is_empty());
    // All of them, in reverse order, are complete.
    let mut args = vec!["--json", "verify", "--trust", "root.json"];
    args.extend(vols.iter().rev().map(String::as_str));
    let all = f.airlock(&args).ok().json();
    assert_eq!(all["complete"], true, "{all}");
    let mut args = vec!["unpack", "--trust", "root.json", "--out", "layout"];
    args.extend(vols.iter().rev().map(String::as_str));
    f.airlock(&args).ok();
    f.sh("cmp layout/blobs/sha256/$(sha256sum models/tiny/model.safetensors | cut -d' ' -f1) models/tiny/model.safetensors").ok();
    // Every volume is an OCI layout on its own: zstd + tar extract it.
    f.sh(&format!(
        "mkdir x && zstd -dc {} | tar -x -C x && test -f x/index.json && test -f x/oci-layout",
        vols[0]
    ))
    .ok();
}

#[test]
fn same_inputs_give_the_same_artifact_digests() {
    let f = Fixture::new();
    let a = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "a",
        ])
        .ok()
        .json();
    let b = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "b",
            "--zstd-level",
            "9",
        ])
        .ok()
        .json();
    assert_eq!(a["artifacts"], b["artifacts"]);
    let ix = |d: &str| {
        f.sh(&format!("zstd -dc {d}/*.zst | tar -xO index.json"))
            .ok()
            .stdout
    };
    assert_eq!(ix("a"), ix("b"), "index.json is reproducible");
}

#[test]
fn identical_blobs_are_stored_once() {
    let f = Fixture::new();
    f.sh("cp models/tiny/model.safetensors models/tiny/copy.safetensors && cp bin/k3s models/tiny/k3s-copy").ok();
    let vols = f.pack("out", &[]);
    let i = f.airlock(&["--json", "inspect", &vols[0]]).ok().json();
    let digests: Vec<&str> = i["manifest"]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<_> = digests.iter().collect();
    assert_eq!(digests.len(), unique.len(), "a blob is listed twice");
    let entries = f
        .sh(&format!("zstd -dc {} | tar -t | grep -c blobs/", vols[0]))
        .ok()
        .stdout;
    assert_eq!(entries.trim().parse::<usize>().unwrap(), digests.len());
}

#[test]
fn multi_signer_threshold_and_oci_archive_source() {
    let f = Fixture::new();
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
        "root2.json",
    ])
    .ok();
    f.sh("skopeo copy -q oci:layouts/hello:v1 oci-archive:hello.tar:v1 && sed -i 's#oci:./layouts/hello:v1#oci-archive:./hello.tar:v1#' m.yaml").ok();
    let r = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--key",
            "keys/signer2.key",
            "--out",
            "out",
        ])
        .ok()
        .json();
    let vol = r["volumes"][0]["path"].as_str().unwrap().to_string();
    let v = f
        .airlock(&["--json", "verify", "--trust", "root2.json", &vol])
        .ok()
        .json();
    assert_eq!(v["signers"].as_array().unwrap().len(), 2);
    f.airlock(&["unpack", "--trust", "root2.json", &vol, "--out", "layout"])
        .ok();
    let a = f
        .sh("skopeo inspect oci:layout:registry.example/acme/hello:v1")
        .ok()
        .json();
    let b = f.sh("skopeo inspect oci:layouts/hello:v1").ok().json();
    assert_eq!(a["Digest"], b["Digest"]);
}

#[test]
fn pack_stores_random_weights_raw_unless_told_to_compress_always() {
    let f = Fixture::with_model_bytes(3 << 20);
    let auto = f.pack("auto", &[]).remove(0);
    let always = f.pack("always", &["--compression", "always"]).remove(0);
    let footer = |v: &str| {
        let data = std::fs::read(f.p(v)).unwrap();
        data[data.len() - 8..].to_vec()
    };
    // The random weights are stored raw: the index records it (version 2). Compressing every
    // frame keeps the version 1 index.
    assert_eq!(footer(&auto), b"AIRLKIX2");
    assert_eq!(footer(&always), b"AIRLKIX1");
    // Raw blocks cost a few bytes per 128 KiB more than nothing, as libzstd's own fallback does.
    let size = |v: &str| std::fs::metadata(f.p(v)).unwrap().len();
    assert!(
        size(&auto) <= size(&always) + 4096,
        "auto {} vs always {}",
        size(&auto),
        size(&always)
    );
    for v in [&auto, &always] {
        f.airlock(&["verify", "--trust", "root.json", v]).ok();
        f.sh(&format!(
            "rm -rf x && mkdir x && tar --zstd -xf {v} -C x && cmp x/blobs/sha256/$(sha256sum models/tiny/model.safetensors | cut -d' ' -f1) models/tiny/model.safetensors"
        ))
        .ok();
    }
    // Anything but auto or always is a usage error.
    let r = f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "x",
        "--compression",
        "never",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// With a store, `pack` takes the digests of unchanged local files from the store's digest
/// cache and writes the same bundle as when it hashes them. A cached digest is never trusted:
/// forged entries make the pack fail (the volume writer hashes what it writes), leave no
/// volume behind and are removed, so the next pack hashes the files again and succeeds.
#[test]
fn digest_cache_skips_the_hashing_pass_and_is_checked_while_writing() {
    let f = Fixture::new();
    // Files changed within the last second are not cached (a write in the same clock tick
    // would keep their times).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let pack = |out: &str, extra: &[&str]| {
        f.pack_run(
            "m.yaml",
            out,
            &[&["--store", "store", "--no-scan"], extra].concat(),
        )
    };
    let counts = |j: &serde_json::Value| {
        (
            j["digestCache"]["hashed"].as_u64().unwrap(),
            j["digestCache"]["cached"].as_u64().unwrap(),
        )
    };
    let artifacts = |j: &serde_json::Value| j["artifacts"].clone();
    let cold = pack("cold", &[]).ok().json();
    // The model's four files and the k3s file.
    let files = counts(&cold).0;
    assert!(files >= 5, "{cold}");
    assert_eq!(counts(&cold).1, 0);
    let warm = pack("warm", &[]).ok().json();
    assert_eq!(counts(&warm), (0, files));
    assert_eq!(artifacts(&warm), artifacts(&cold));
    let vol = warm["volumes"][0]["path"].as_str().unwrap();
    f.airlock(&["verify", "--trust", "root.json", vol]).ok();
    // --rehash hashes everything again.
    assert_eq!(
        counts(&pack("rehash", &["--rehash"]).ok().json()),
        (files, 0)
    );

    // Every entry now names the digest of other bytes.
    f.sh(r#"python3 - <<'PY'
import glob, json
for p in glob.glob("store/digest-cache/*.json"):
    e = json.load(open(p))
    e["digest"] = "sha256:" + "ab" * 32
    json.dump(e, open(p, "w"))
PY"#)
        .ok();
    pack("forged", &[]).refused().says(&[
        "content hashes to",
        "came from the digest cache",
        "those entries are removed",
    ]);
    assert!(
        !f.p("forged").exists() || std::fs::read_dir(f.p("forged")).unwrap().next().is_none(),
        "a failed pack leaves no volume"
    );
    let again = pack("again", &[]).ok().json();
    assert!(
        again["digestCache"]["hashed"].as_u64().unwrap() >= 1,
        "{again}"
    );
    assert_eq!(artifacts(&again), artifacts(&cold));
}
