//! The example CVE-ceiling policy (`policies/cve-ceiling.rego`) over fixture inputs: over the
//! ceiling, waived, an expired waiver (airlockd computes `waived: false` for it), known
//! exploited, a stale and a missing database.

use airlock_policy::Policy;
use serde_json::{json, Value};

fn policy() -> Policy {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/cve-ceiling.rego");
    Policy::from_file(&path).expect("the example policy compiles")
}

fn vuln(severity: &str, fixed: &[&str], waived: bool, exploited: bool) -> Value {
    json!({"artifact": "r.example/app:v1", "id": "DEBIAN-CVE-2099-0001", "aliases": ["CVE-2099-0001"],
           "package": "openssl", "version": "3.0.11-1", "purl": "pkg:deb/debian/libssl3@3.0.11-1",
           "ecosystem": "Debian:12", "severity": severity, "rank": 5, "cvssScore": 9.8,
           "cvssVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "fixed": fixed,
           "fixAvailable": !fixed.is_empty(), "knownExploited": exploited, "waived": waived})
}

fn input(channel: &str, vulns: Vec<Value>, vulndb: Value) -> Value {
    json!({"bundle": {"channel": channel, "artifacts": [{"kind": "image", "name": "r.example/app:v1"}]},
           "signers": ["k1", "k2"], "findings": [], "waivers": [],
           "sboms": [{"artifact": "r.example/app:v1", "components": 120}],
           "vulnerabilities": vulns, "vulndb": vulndb})
}

fn fresh() -> Value {
    json!({"present": true, "bundle": "sha256:ab", "built": "2026-11-30T00:00:00Z", "ageDays": 1, "records": 10})
}

fn reasons(v: Value) -> Vec<String> {
    policy().evaluate(&v).unwrap().reasons
}

#[test]
fn an_unwaived_critical_with_a_fix_is_over_the_ceiling() {
    let r = reasons(input(
        "stable",
        vec![vuln("critical", &["3.0.11-2"], false, false)],
        fresh(),
    ));
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].contains("DEBIAN-CVE-2099-0001") && r[0].contains("fixed in 3.0.11-2"),
        "{r:?}"
    );
}

#[test]
fn a_waiver_admits_it_and_an_expired_one_does_not() {
    assert!(reasons(input(
        "stable",
        vec![vuln("critical", &["3.0.11-2"], true, false)],
        fresh()
    ))
    .is_empty());
    // airlockd sets waived to false when the waiver's expiry has passed.
    assert_eq!(
        reasons(input(
            "stable",
            vec![vuln("critical", &["3.0.11-2"], false, false)],
            fresh()
        ))
        .len(),
        1
    );
}

#[test]
fn below_the_ceiling_or_without_a_fix_is_admitted() {
    assert!(reasons(input(
        "stable",
        vec![vuln("high", &["3.0.11-2"], false, false)],
        fresh()
    ))
    .is_empty());
    assert!(reasons(input(
        "stable",
        vec![vuln("critical", &[], false, false)],
        fresh()
    ))
    .is_empty());
}

#[test]
fn known_exploited_is_refused_even_when_waived() {
    let r = reasons(input(
        "stable",
        vec![vuln("medium", &[], true, true)],
        fresh(),
    ));
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("known to be exploited"), "{r:?}");
}

#[test]
fn production_needs_a_current_database() {
    let mut stale = fresh();
    stale["ageDays"] = json!(9);
    let r = reasons(input("production", vec![], stale.clone()));
    assert!(r.iter().any(|m| m.contains("9 days old")), "{r:?}");
    assert!(reasons(input("stable", vec![], stale)).is_empty());
    let r = reasons(input("production", vec![], json!({"present": false})));
    assert!(
        r.iter().any(|m| m.contains("no vulnerability database")),
        "{r:?}"
    );
    assert!(reasons(input("production", vec![], fresh())).is_empty());
    // A bundle without images needs no database.
    let mut no_images = input("production", vec![], json!({"present": false}));
    no_images["sboms"] = json!([]);
    assert!(reasons(no_images.clone()).is_empty());
    // Nor does one whose only SBOM is a model's ML-BOM, which has no components to match.
    no_images["sboms"] = json!([{"artifact": "acme/tiny-model", "components": 0}]);
    assert!(reasons(no_images).is_empty());
}

#[test]
fn the_built_in_rules_still_apply() {
    let mut v = input("stable", vec![], fresh());
    v["findings"] = json!([{"severity": "malicious", "rule": "pickle/os.system", "artifact": "m", "file": "x.pkl"}]);
    assert_eq!(reasons(v).len(), 1);
}
