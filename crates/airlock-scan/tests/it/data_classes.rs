//! Ordinary model files that unpickle as data, and their injected twins, on real files written
//! by `tests/fixtures/make-data-classes.py` (scikit-learn, SciPy, pandas, numpy, joblib).

use airlock_scan::{scan_bytes, AllowList, Finding, Limits, Severity};

fn fixture(name: &str) -> Vec<u8> {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data-classes/");
    std::fs::read(format!("{p}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn scan(name: &str, limits: &Limits) -> Vec<Finding> {
    scan_bytes(&fixture(name), name, limits).unwrap()
}

fn worst(f: &[Finding]) -> Option<Severity> {
    f.iter().map(|f| f.severity).max()
}

fn has(f: &[Finding], sev: Severity, global: &str) -> bool {
    f.iter()
        .any(|f| f.severity == sev && f.global.as_deref() == Some(global))
}

#[test]
fn clean_object_array_is_info() {
    for name in ["objarr.npy", "objarr.npz"] {
        let f = scan(name, &Limits::default());
        assert_eq!(worst(&f), Some(Severity::Info), "{name}: {f:#?}");
        assert!(f.iter().any(|f| f.rule == "npy/object-array"), "{name}");
    }
}

#[test]
fn object_array_calling_os_system_is_malicious() {
    let f = scan("objarr-system.npy", &Limits::default());
    assert_eq!(worst(&f), Some(Severity::Malicious), "{f:#?}");
    assert!(has(&f, Severity::Malicious, "posix.system"), "{f:#?}");
    assert!(f
        .iter()
        .any(|f| f.rule == "npy/object-array" && f.severity == Severity::Suspicious));
}

#[test]
fn allowlisted_data_classes_have_no_findings() {
    for name in ["pipeline.joblib", "sparse-frame.pkl"] {
        let f = scan(name, &Limits::default());
        assert!(f.is_empty(), "{name}: {f:#?}");
    }
}

#[test]
fn class_off_the_list_stays_suspicious_until_an_operator_lists_it() {
    let g = "sklearn.preprocessing._function_transformer.FunctionTransformer";
    let f = scan("function-transformer.pkl", &Limits::default());
    assert_eq!(worst(&f), Some(Severity::Suspicious), "{f:#?}");
    assert!(has(&f, Severity::Suspicious, g), "{f:#?}");
    let limits = Limits {
        allow: AllowList::parse(&format!("{g}\n")).unwrap(),
        ..Limits::default()
    };
    let f = scan("function-transformer.pkl", &limits);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn injected_pipeline_step_is_malicious() {
    let f = scan("pipeline-system.joblib", &Limits::default());
    assert_eq!(worst(&f), Some(Severity::Malicious), "{f:#?}");
    assert!(has(&f, Severity::Malicious, "posix.system"), "{f:#?}");
    let f = scan("pipeline-eval.pkl", &Limits::default());
    assert_eq!(worst(&f), Some(Severity::Malicious), "{f:#?}");
    assert!(has(&f, Severity::Malicious, "builtins.eval"), "{f:#?}");
    // The clean pipeline's classes are still not reported next to the payload.
    assert!(!f
        .iter()
        .any(|f| f.global.as_deref() == Some("sklearn.pipeline.Pipeline")));
}
