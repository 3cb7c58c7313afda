//! Blobs larger than a volume: a 48 MiB model file packed with `--volume-size 16MiB` travels as
//! parts in consecutive volumes; `airlock verify` checks a subset and names the missing parts,
//! `airlock unpack` assembles them;
//! `airlockd import` keeps parts across volumes given in reverse order and across a `kill -9`,
//! and makes the model visible (and served, byte for byte) only with the last part.

use airlock_e2e::*;

const MODEL_BYTES: usize = 48 << 20;

/// Volumes of a 48 MiB model packed into 16 MiB volumes (at least four: the model alone needs
/// three full ones).
fn packed() -> (Fixture, Vec<String>) {
    let f = Fixture::with_model_bytes(MODEL_BYTES);
    let vols = f.pack("out", &["--volume-size", "16MiB"]);
    assert!(vols.len() >= 4, "{vols:?}");
    for v in &vols {
        let len = std::fs::metadata(f.p(v)).unwrap().len();
        assert!(len <= 16 << 20, "{v} is {len} bytes");
    }
    (f, vols)
}

fn model_digest(f: &Fixture) -> String {
    let sum = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout;
    sum.trim().to_string()
}

#[test]
fn split_model_verifies_whole_and_a_subset_names_missing_parts() {
    let (f, vols) = packed();
    let hex = model_digest(&f);
    // Every part is a plain tar entry named after the blob, with the signed part bytes.
    let names = f
        .sh(&format!(
            "for v in out/*.tar.zst; do zstd -dc $v | tar -t; done | grep {hex}"
        ))
        .ok()
        .stdout;
    let parts: Vec<&str> = names.lines().collect();
    assert!(parts.len() >= 3, "{names}");
    let n = parts.len();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(
            *p,
            format!("blobs/sha256/{hex}.part-{:04}-of-{n:04}", i + 1)
        );
    }
    // tar -x of every volume, then cat of the parts in name order, rebuilds the file.
    f.sh(&format!(
        "mkdir x && for v in out/*.tar.zst; do zstd -dc $v | tar -x -C x; done && \
         cat x/blobs/sha256/{hex}.part-* | cmp - models/tiny/model.safetensors"
    ))
    .ok();

    let mut args = vec!["--json", "verify", "--trust", "root.json"];
    args.extend(vols.iter().rev().map(String::as_str));
    let j = f.airlock(&args).ok().json();
    assert_eq!(j["complete"], true, "{j}");
    assert_eq!(
        j["splitBlobsVerified"],
        serde_json::json!([format!("sha256:{hex}")])
    );

    // unpack assembles the parts into the layout (no part files in it).
    let mut args = vec!["unpack", "--trust", "root.json", "--out", "layout"];
    args.extend(vols.iter().map(String::as_str));
    f.airlock(&args).ok();
    f.sh(&format!(
        "cmp layout/blobs/sha256/{hex} models/tiny/model.safetensors && \
         test -z \"$(ls layout/blobs/sha256 | grep part)\""
    ))
    .ok();

    // Without the second volume: the parts it carries are verified, the missing one is named.
    let subset: Vec<&str> = vols
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, v)| v.as_str())
        .collect();
    let mut args = vec!["verify", "--trust", "root.json"];
    args.extend_from_slice(&subset);
    f.airlock(&args).ok().says(&[
        "incomplete",
        &format!("missing sha256:{hex} part 2 of {n} (volume 2)"),
    ]);
}

#[test]
fn split_model_imports_in_reverse_order_across_a_kill() {
    let (f, vols) = packed();
    let hex = model_digest(&f);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let model_visible = |f: &Fixture| {
        let list = airlockd(f, &["--json", "list", "--data", "data"])
            .ok()
            .json();
        list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "model" && a["visible"] == true)
    };
    let order: Vec<&String> = vols.iter().rev().collect();
    for (i, v) in order.iter().enumerate() {
        if i == 1 {
            // Killed in the middle of this volume's part: the parts kept so far survive.
            let out = std::process::Command::new(bin("airlockd"))
                .args(["import", "--data", "data", v.as_str()])
                .current_dir(f.path())
                .env("AIRLOCK_FAULT_KILL_AFTER_BYTES", (5u64 << 20).to_string())
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(9), "import was not killed");
            airlockd(&f, &["fsck", "--data", "data"]).ok();
            assert!(!model_visible(&f));
        }
        airlockd(&f, &["--json", "import", "--data", "data", v.as_str()]).ok();
        airlockd(&f, &["fsck", "--data", "data"]).ok();
        let last = i + 1 == order.len();
        assert_eq!(model_visible(&f), last, "after volume {v}");
        let stored = f.p(&format!("data/blobs/sha256/{hex}")).exists();
        assert_eq!(stored, last, "model blob in the store after {v}");
    }
    // Assembled, verified and moved into the store; the parts are gone.
    f.sh(&format!(
        "cmp data/blobs/sha256/{hex} models/tiny/model.safetensors && \
         test -z \"$(ls -A data/staging-parts)\""
    ))
    .ok();
    // Served byte for byte.
    let (server, base) = Background::airlockd_serve(f.path(), "data");
    let got = f
        .sh(&format!(
            "curl -sf {base}/acme/tiny-model/resolve/main/model.safetensors | sha256sum | cut -d' ' -f1"
        ))
        .ok()
        .stdout;
    assert_eq!(got.trim(), hex);
    drop(server); // it holds the data directory's lock
    airlockd(&f, &["audit", "verify", "--data", "data"]).ok();
}

#[test]
fn a_tampered_part_is_refused_naming_the_part() {
    let (f, vols) = packed();
    let hex = model_digest(&f);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    // Flip a byte in the middle of volume 2, which holds only model bytes.
    let len = std::fs::metadata(f.p(&vols[1])).unwrap().len();
    flip_byte(&f.p(&vols[1]), len / 2);
    f.airlock(&["verify", "--trust", "root.json", &vols[1]])
        .fails()
        .says(&[&format!("blob sha256:{hex} part 2 of")]);
    let j = airlockd(&f, &["--json", "import", "--data", "data", &vols[1]])
        .fails()
        .json();
    let reason = j["volumes"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("sha256:{hex} part 2 of")),
        "{reason}"
    );
    // Nothing of the refused volume is kept.
    let kept = f
        .sh("find data -path '*staging-parts/*/blobs/sha256/*' -type f | wc -l")
        .ok()
        .stdout;
    assert_eq!(kept.trim(), "0");
}
