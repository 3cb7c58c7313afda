//! Keras model configs, in `.keras` zips (`config.json`), `.h5` files (the `model_config`
//! attribute) and plain JSON. A `Lambda` layer carries marshalled Python bytecode that runs on
//! load; a layer whose `module` is not Keras imports arbitrary code. Both can sit deep inside
//! nested sub-models, so the whole config tree is walked.
//!
//! HDF5 is not parsed as a file system here: the JSON config is found by its bytes
//! (`{"class_name"` / `{"module"`), extracted as one balanced JSON value and parsed. A file that
//! mentions a Lambda layer in a way this does not parse is still reported from the raw bytes.

use std::io;

use serde_json::Value;

use crate::globals::DENY_MODULES;
use crate::{Ctx, Loc, Severity, Source};

fn keras_module(m: &str) -> bool {
    [
        "keras",
        "tf_keras",
        "tensorflow",
        "keras_hub",
        "keras_nlp",
        "keras_cv",
    ]
    .iter()
    .any(|k| m == *k || m.starts_with(&format!("{k}.")))
}

/// Walks a config tree; returns `(severity, rule, detail)` for each problem.
pub fn check_config(v: &Value) -> Vec<(Severity, &'static str, String)> {
    let mut out = Vec::new();
    walk(v, "$", 0, &mut out);
    out
}

fn walk(v: &Value, path: &str, depth: usize, out: &mut Vec<(Severity, &'static str, String)>) {
    if depth > 256 {
        out.push((
            Severity::Suspicious,
            "keras/too-deep",
            format!("config nested too deep at {path}"),
        ));
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(Value::String(c)) = m.get("class_name") {
                if c == "Lambda" || c == "__lambda__" {
                    out.push((
                        Severity::Malicious,
                        "keras/lambda-layer",
                        format!("{c} at {path} carries Python code that runs when the model loads"),
                    ));
                }
                if let Some(Value::String(module)) = m.get("module") {
                    if DENY_MODULES
                        .iter()
                        .any(|d| module == d || module.starts_with(&format!("{d}.")))
                    {
                        out.push((
                            Severity::Malicious,
                            "keras/denylisted-module",
                            format!("{c} at {path} comes from module {module:?}"),
                        ));
                    } else if !keras_module(module) && module != "builtins" {
                        out.push((
                            Severity::Suspicious,
                            "keras/foreign-module",
                            format!("{c} at {path} comes from non-Keras module {module:?}"),
                        ));
                    } else if module == "builtins" && c == "function" {
                        out.push((
                            Severity::Suspicious,
                            "keras/function",
                            format!("serialized function at {path}"),
                        ));
                    }
                }
            }
            for (k, x) in m {
                walk(x, &format!("{path}.{k}"), depth + 1, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        _ => {}
    }
}

fn report(ctx: &mut Ctx, loc: &Loc, v: &Value) {
    for (sev, rule, detail) in check_config(v) {
        ctx.add(loc, sev, rule, None, detail);
    }
}

/// JSON files: checked as Keras configs when they look like one.
pub(crate) fn scan_json(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    if src.len() > 256 << 20 {
        return Ok(());
    }
    let mut b = vec![0u8; src.len() as usize];
    src.read_at(0, &mut b)?;
    if memchr::memmem::find(&b, b"\"class_name\"").is_none() {
        return Ok(());
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&b) {
        report(ctx, loc, &v);
    }
    Ok(())
}

/// The balanced JSON object starting at `b[0]` (`{`), string-aware.
fn balanced(b: &[u8]) -> Option<&[u8]> {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, c) in b.iter().enumerate().take(64 << 20) {
        if in_str {
            match (esc, *c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match *c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&b[..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// HDF5 files (Keras 2 `.h5`): find embedded JSON configs by their bytes.
pub(crate) fn scan_hdf5(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    let n = src.len().min(512 << 20);
    let mut b = vec![0u8; n as usize];
    src.read_at(0, &mut b)?;
    let mut found_lambda_json = false;
    for pat in [&b"{\"class_name\""[..], b"{\"module\""] {
        for at in memchr::memmem::find_iter(&b, pat) {
            if let Some(j) = balanced(&b[at..]) {
                if let Ok(v) = serde_json::from_slice::<Value>(j) {
                    let r = check_config(&v);
                    found_lambda_json |= r.iter().any(|x| x.1 == "keras/lambda-layer");
                    report(ctx, loc, &v);
                }
            }
        }
    }
    if !found_lambda_json {
        for pat in [
            &b"\"class_name\": \"Lambda\""[..],
            b"\"class_name\":\"Lambda\"",
        ] {
            if memchr::memmem::find(&b, pat).is_some() {
                ctx.add(
                    loc,
                    Severity::Malicious,
                    "keras/lambda-layer",
                    None,
                    "HDF5 file mentions a Lambda layer (config not parseable)",
                );
            }
        }
    }
    if src.len() > n {
        ctx.add(
            loc,
            Severity::Suspicious,
            "keras/partial",
            None,
            format!("only the first {n} bytes of the HDF5 file were searched for configs"),
        );
    }
    Ok(())
}
