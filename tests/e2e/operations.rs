//! The appliance in real operation and under attack from its media and its local users:
//! read-only media (a read-only bind mount in a private mount namespace), commands beside a
//! running server and a running import, the writer lock, symbolic links and FIFOs on the
//! medium, a planted lock symlink, file modes under a permissive umask, signature floods,
//! damaged blobs and `fsck --repair`, clocks before 1970 and absurd durations.
//!
//! `scripts/test.sh` builds `airlockd` with the `fault-injection` feature, whose
//! `AIRLOCK_FAULT_HOLD_LOCK_MS` holds the writer lock so that a busy data directory can be met.

use std::time::{Duration, Instant};

use airlock_e2e::*;

/// Fixture + an initialized data dir `data`.
fn appliance() -> Fixture {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    f
}

/// `media/good.tar.zst` (a packed volume) and `media/bad.tar.zst` (the same, cut short).
fn media(f: &Fixture) {
    let v = f.pack("out", &[]).remove(0);
    f.sh(&format!(
        "mkdir -p media && cp {v} media/good.tar.zst && head -c 5000 {v} > media/bad.tar.zst"
    ))
    .ok();
}

/// Runs `script` with `ro/` a read-only bind mount of `media/`, in a private mount namespace.
fn with_read_only_media(f: &Fixture, script: &str) -> Run {
    f.sh(&format!(
        "mkdir -p ro && unshare -m bash -euo pipefail -c 'mount --bind media ro && mount -o remount,bind,ro ro && touch ro/x 2>/dev/null && exit 99; {script}'"
    ))
}

fn audit_kinds(f: &Fixture) -> Vec<String> {
    airlockd(f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

fn sha(f: &Fixture, path: &str) -> String {
    f.sh(&format!("sha256sum {path} | cut -d' ' -f1"))
        .ok()
        .stdout
}

#[test]
fn read_only_media_a_rejection_is_copied_audited_and_the_batch_goes_on() {
    let f = appliance();
    media(&f);
    let (good, bad) = (sha(&f, "media/good.tar.zst"), sha(&f, "media/bad.tar.zst"));
    let d = bin("airlockd");
    let r = with_read_only_media(
        &f,
        &format!(
            "{} --json import --data data ro/bad.tar.zst ro/good.tar.zst",
            d.display()
        ),
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let (b, g) = (&j["volumes"][0], &j["volumes"][1]);
    assert_eq!(b["status"], "rejected", "{j}");
    assert_eq!(
        g["status"], "accepted",
        "the good volume after a rejected one: {j}"
    );
    let q = f.p(b["quarantined"].as_str().expect("quarantine copy"));
    assert_eq!(
        sha(&f, q.to_str().unwrap()),
        bad,
        "quarantine holds the volume"
    );
    assert_eq!(sha(&f, "media/good.tar.zst"), good, "media unchanged");
    assert_eq!(sha(&f, "media/bad.tar.zst"), bad, "media unchanged");
    let kinds = audit_kinds(&f);
    let rejected = kinds.iter().position(|k| k == "import-rejected").unwrap();
    assert_eq!(kinds[rejected + 1], "volume-quarantined", "{kinds:?}");
    assert!(kinds.contains(&"import-accepted".to_string()), "{kinds:?}");
    assert_eq!(kinds.last().unwrap(), "import-accepted", "{kinds:?}");
    airlockd(&f, &["audit", "verify", "--data", "data"]).ok();
    airlockd(&f, &["fsck", "--data", "data"]).ok();
}

#[test]
fn a_read_only_inbox_is_imported_once_not_every_interval() {
    let f = appliance();
    media(&f);
    let d = bin("airlockd");
    // The watcher polls a read-only inbox for 3 s (15 intervals) and is then stopped.
    let r = with_read_only_media(
        &f,
        &format!(
            "timeout -s TERM 3 {} serve --data data --inbox ro --interval 200ms || [ $? -eq 124 ]",
            d.display()
        ),
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let kinds = audit_kinds(&f);
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("import-started"), 2, "{kinds:?}");
    assert_eq!(count("import-accepted"), 1, "{kinds:?}");
    assert_eq!(count("import-rejected"), 1, "{kinds:?}");
    assert_eq!(count("inbox-move-failed"), 1, "{kinds:?}");
    assert!(f.p("media/good.tar.zst").exists() && f.p("media/bad.tar.zst").exists());
    airlockd(&f, &["audit", "verify", "--data", "data"]).ok();
}

#[test]
fn readers_and_imports_work_while_the_server_runs() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    let (_server, url) = Background::airlockd_serve(f.path(), "data");
    let manifest = format!("{url}/v2/registry.example/acme/hello/manifests/v1");
    let code = |u: &str| {
        f.sh(&format!("curl -s -o /dev/null -w '%{{http_code}}' {u}"))
            .ok()
            .stdout
    };
    assert_eq!(code(&manifest), "404");
    for args in [
        &["status", "--data", "data"][..],
        &["list", "--data", "data"],
        &["audit", "verify", "--data", "data"],
        &["audit", "show", "--data", "data"],
        &["fsck", "--data", "data"],
    ] {
        let t = Instant::now();
        airlockd(&f, args).ok();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?} beside a running server",
            t.elapsed()
        );
    }
    let t = Instant::now();
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    assert!(t.elapsed() < Duration::from_secs(20));
    let mut served = false;
    for _ in 0..50 {
        if code(&manifest) == "200" {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served, "the server never showed the imported image");
}

#[test]
fn a_second_writer_waits_then_names_the_holder_while_readers_go_on() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    let d = bin("airlockd");
    // An import that holds the writer lock for 4 s (fault-injection hook).
    let holder = std::process::Command::new(&d)
        .args(["import", "--data", "data", &v])
        .current_dir(f.path())
        .env("AIRLOCK_FAULT_HOLD_LOCK_MS", "4000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = holder.id();
    std::thread::sleep(Duration::from_millis(700));
    let t = Instant::now();
    airlockd(&f, &["status", "--data", "data"]).ok();
    airlockd(&f, &["audit", "verify", "--data", "data"]).ok();
    assert!(t.elapsed() < Duration::from_secs(2), "readers waited");
    let t = Instant::now();
    let r = airlockd(&f, &["--wait", "500ms", "import", "--data", "data", &v]).refused();
    assert!(t.elapsed() >= Duration::from_millis(500));
    assert!(
        r.stderr
            .contains(&format!("data directory busy: import by PID {pid} since")),
        "{}",
        r.stderr
    );
    // With a long enough wait, the second writer goes through once the first is done.
    airlockd(&f, &["--wait", "30s", "import", "--data", "data", &v]).ok();
    let mut holder = holder;
    assert!(holder.wait().unwrap().success());
}

#[test]
fn symlinks_fifos_and_a_symlinked_done_on_the_medium_are_never_followed() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    f.sh(&format!(
        "printf 'TOP-SECRET' > secret && chmod 600 secret && ln -s $PWD/secret data/inbox/steal.tar.zst \
         && mkfifo data/inbox/fifo.tar.zst && mkdir outside && rm -rf data/inbox/done \
         && ln -s $PWD/outside data/inbox/done && cp {v} data/inbox/good.tar.zst && touch data/inbox/good.tar.zst.done"
    ))
    .ok();
    let r = f.sh(&format!(
        "timeout 20 {} serve --data data --once --interval 100ms",
        bin("airlockd").display()
    ));
    assert_ne!(r.code, 124, "the watcher hung on the FIFO");
    assert!(r.stdout.contains("accepted"), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not a regular file"),
        "the links are reported: {}",
        r.stderr
    );
    assert_eq!(
        f.sh("grep -rl TOP-SECRET data || true").ok().stdout.trim(),
        "",
        "the link target was copied into the data directory"
    );
    assert_eq!(
        f.sh("ls outside").ok().stdout.trim(),
        "",
        "done/ was followed"
    );
    assert!(f.p("data/inbox/good.tar.zst").exists(), "left in the inbox");
    // The same through `airlockd import`: refused at once, exit 1, nothing copied.
    for vol in ["data/inbox/steal.tar.zst", "data/inbox/fifo.tar.zst"] {
        let r = f
            .sh(&format!(
                "timeout 20 {} --json import --data data {vol}",
                bin("airlockd").display()
            ))
            .refused();
        let o = &r.json()["volumes"][0];
        assert_eq!(o["status"], "rejected", "{o}");
        assert_eq!(o["kind"], "not-a-regular-file", "{o}");
        assert!(o["quarantined"].is_null(), "{o}");
    }
    assert_eq!(
        f.sh("grep -rl TOP-SECRET data || true").ok().stdout.trim(),
        ""
    );
    assert!(audit_kinds(&f).contains(&"import-rejected".to_string()));
}

#[test]
fn a_planted_lock_symlink_is_refused_and_its_target_untouched() {
    let f = appliance();
    f.sh("echo precious > victim && ln -sf $PWD/victim data/lock")
        .ok();
    airlockd(&f, &["list", "--data", "data"]).ok();
    let v = f.pack("out", &[]).remove(0);
    airlockd(&f, &["import", "--data", "data", &v])
        .refused()
        .says(&["symbolic link"]);
    assert_eq!(
        std::fs::read_to_string(f.p("victim")).unwrap(),
        "precious\n"
    );
}

#[test]
fn modes_are_tight_under_a_permissive_umask_and_fsck_reports_loose_ones() {
    let f = Fixture::new();
    let v = f.pack("out", &[]).remove(0);
    let d = bin("airlockd");
    f.sh(&format!(
        "umask 000 && {d} init --data data --trust root.json >/dev/null && {d} import --data data {v} >/dev/null",
        d = d.display()
    ))
    .ok();
    let mode = |p: &str| {
        f.sh(&format!("stat -c %a {p}"))
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(mode("data"), "750");
    assert_eq!(mode("data/blobs/sha256"), "750");
    assert_eq!(mode("data/trust/root.json"), "640");
    assert_eq!(mode("data/keys/appliance.pub"), "640");
    assert_eq!(mode("data/keys/appliance.key"), "600");
    assert_eq!(mode("data/audit.head"), "640");
    assert_eq!(mode("data/catalog.db"), "640");
    let blob = f.sh("ls data/blobs/sha256 | head -1").ok().stdout;
    assert_eq!(mode(&format!("data/blobs/sha256/{}", blob.trim())), "640");
    airlockd(&f, &["fsck", "--data", "data"]).ok();
    f.sh(&format!("chmod 666 data/blobs/sha256/{}", blob.trim()))
        .ok();
    f.sh("chmod 644 data/keys/appliance.key").ok();
    airlockd(&f, &["fsck", "--data", "data"])
        .refused()
        .says(&["looser than 0640", "appliance.key: mode 0644"]);
}

#[test]
fn a_signature_flood_is_refused_quickly_and_stores_a_bounded_reason() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    // 30,000 bogus signatures under the trusted key id (4 MB of envelope).
    rewrite_volume(
        f.path(),
        &v,
        "flood.tar.zst",
        r#"
import json
ti, data = entries[0][0], entries[0][1]
env = json.loads(data)
bogus = {"keyid": env["signatures"][0]["keyid"], "sig": "A" * 86 + "=="}
env["signatures"] = [bogus] * 30000
data = json.dumps(env).encode()
ti.size = len(data)
entries[0] = (ti, data)
"#,
    );
    let db_before = std::fs::metadata(f.p("data/catalog.db")).unwrap().len();
    let t = Instant::now();
    let r = airlockd(&f, &["--json", "import", "--data", "data", "flood.tar.zst"]).refused();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let o = &r.json()["volumes"][0];
    assert_eq!(o["status"], "rejected", "{o}");
    let reason = o["reason"].as_str().unwrap();
    assert!(reason.len() <= 4200, "{} bytes of reason", reason.len());
    assert!(reason.contains("at most 64"), "{reason}");
    let q = o["quarantined"].as_str().unwrap();
    let reason_file = std::fs::metadata(f.p(&format!("{q}.reason.json"))).unwrap();
    assert!(reason_file.len() < 8192);
    let db_after = std::fs::metadata(f.p("data/catalog.db")).unwrap().len();
    assert!(
        db_after < db_before + 256 * 1024,
        "{db_before} -> {db_after}"
    );
}

#[test]
fn a_damaged_blob_is_found_repaired_and_restored_by_importing_again() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    // The model's safetensors blob, overwritten with garbage of the same size.
    let blob = f
        .sh("ls -S data/blobs/sha256 | head -1")
        .ok()
        .stdout
        .trim()
        .to_string();
    let path = format!("data/blobs/sha256/{blob}");
    f.sh(&format!(
        "s=$(stat -c %s {path}) && head -c $s /dev/zero > x && cat x > {path}"
    ))
    .ok();
    airlockd(&f, &["fsck", "--data", "data"])
        .refused()
        .says(&[&blob, "content hashes to"]);
    // A plain re-import trusts the present blob; --verify-present re-hashes and restores it.
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    airlockd(&f, &["fsck", "--data", "data"]).refused();
    airlockd(&f, &["import", "--data", "data", "--verify-present", &v]).ok();
    airlockd(&f, &["fsck", "--data", "data"]).ok();
    // fsck --repair sets a damaged blob aside and hides what needs it until re-import.
    f.sh(&format!(
        "s=$(stat -c %s {path}) && head -c $s /dev/zero > x && cat x > {path}"
    ))
    .ok();
    // The blob stays missing (exit 1) until its volume is imported again.
    let r = airlockd(&f, &["--json", "fsck", "--data", "data", "--repair"]).refused();
    assert!(!r.json()["repaired"].as_array().unwrap().is_empty());
    assert!(r.stdout.contains("missing from blobs/"), "{}", r.stdout);
    assert!(f.p(&format!("data/damaged/{blob}")).exists());
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    assert!(
        list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["visible"] == false),
        "{list}"
    );
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    airlockd(&f, &["fsck", "--data", "data"]).ok();
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    assert!(list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["visible"] == true));
    assert!(audit_kinds(&f).contains(&"fsck-repaired".to_string()));
}

#[test]
fn a_clock_before_1970_and_absurd_durations_are_errors() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    f.sh(&format!(
        "faketime '1960-01-01 00:00:00' {} import --data data {v}",
        bin("airlockd").display()
    ))
    .refused()
    .says(&["before 1970"]);
    let r = f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "o2",
        "--expires",
        "9999999999y",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("longer than 100 years"), "{}", r.stderr);
}

#[test]
fn an_auditor_with_read_access_only_verifies_the_audit_log() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    // An unprivileged user (nobody) in a group that may read the data directory, nothing more.
    let r = f.sh(&format!(
        "getent group airlock-auditors >/dev/null || groupadd airlock-auditors; \
         chgrp -R airlock-auditors data && chmod o+x $PWD $(dirname $PWD) && \
         g=$(getent group airlock-auditors | cut -d: -f3) && \
         setpriv --reuid=65534 --regid=65534 --groups=$g {d} audit verify --data $PWD/data && \
         setpriv --reuid=65534 --regid=65534 --groups=$g {d} list --data $PWD/data && \
         ! setpriv --reuid=65534 --regid=65534 --groups=$g {d} --wait 0s import --data $PWD/data $PWD/{v}",
        d = bin("airlockd").display()
    ));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("audit log intact"), "{}", r.stdout);
}
