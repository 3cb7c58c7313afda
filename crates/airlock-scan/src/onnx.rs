//! ONNX models: tensors may keep their data in external files named by a `location` entry
//! (`TensorProto.external_data`). A location that is absolute or climbs out of the model
//! directory makes the runtime read any file on the host into a tensor, so it is malicious.
//!
//! The protobuf is walked generically (every length-delimited field that parses as a message,
//! to a bounded depth and step budget), so the entries are found in initializers, node
//! attributes and subgraphs alike.

use std::io;

use crate::{Ctx, Loc, Severity, Source};

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for s in 0..10 {
        let c = *b.get(*i)?;
        *i += 1;
        v |= ((c & 0x7f) as u64) << (7 * s);
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `(field, bytes)` of every length-delimited field, or `None` if `b` is not a message.
fn fields(b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let key = varint(b, &mut i)?;
        let (f, wt) = (key >> 3, key & 7);
        if f == 0 {
            return None;
        }
        match wt {
            0 => {
                varint(b, &mut i)?;
            }
            1 => i = i.checked_add(8).filter(|e| *e <= b.len())?,
            5 => i = i.checked_add(4).filter(|e| *e <= b.len())?,
            2 => {
                let n = varint(b, &mut i)? as usize;
                let e = i.checked_add(n).filter(|e| *e <= b.len())?;
                out.push((f, &b[i..e]));
                i = e;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Every external-data `location` in the model.
pub fn external_locations(b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut budget = 5_000_000usize;
    walk(b, 0, &mut budget, &mut out);
    out
}

fn walk(b: &[u8], depth: usize, budget: &mut usize, out: &mut Vec<String>) {
    if depth > 24 || *budget == 0 {
        return;
    }
    *budget = budget.saturating_sub(1 + b.len() / 64);
    let Some(fs) = fields(b) else { return };
    for (f, body) in &fs {
        if *f == 13 {
            if let Some(kv) = fields(body) {
                let key = kv.iter().find(|(k, _)| *k == 1).map(|x| x.1);
                let val = kv.iter().find(|(k, _)| *k == 2).map(|x| x.1);
                if let (Some(b"location"), Some(v)) = (key, val) {
                    out.push(String::from_utf8_lossy(v).into_owned());
                }
            }
        }
        if body.len() >= 2 {
            walk(body, depth + 1, budget, out);
        }
    }
}

/// A relative path that stays inside the model directory.
pub fn location_is_safe(p: &str) -> bool {
    !(p.is_empty()
        || p.starts_with('/')
        || p.starts_with('\\')
        || p.contains('\0')
        || (p.len() >= 2 && p.as_bytes()[1] == b':')
        || p.split(['/', '\\']).any(|c| c == ".."))
}

pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    if src.len() > ctx.limits.max_inflate {
        ctx.add(
            loc,
            Severity::Suspicious,
            "onnx/too-large",
            None,
            "ONNX model too large to check for external data",
        );
        return Ok(());
    }
    let mut b = vec![0u8; src.len() as usize];
    src.read_at(0, &mut b)?;
    let mut seen = std::collections::HashSet::new();
    for l in external_locations(&b) {
        if !location_is_safe(&l) && seen.insert(l.clone()) {
            ctx.add(
                loc,
                Severity::Malicious,
                "onnx/external-data-path",
                None,
                format!("external data location {l:?} escapes the model directory"),
            );
        }
    }
    Ok(())
}
