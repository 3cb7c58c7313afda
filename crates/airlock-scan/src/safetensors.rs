//! safetensors validator. The format is safe to load only if it is what it claims: an 8-byte
//! little-endian header length, a JSON header, and tensor data that tiles the rest of the file
//! exactly. Loaders differ on what they tolerate (duplicate keys, gaps, trailing bytes), and
//! those differences hide data, so every one of them is `Invalid` here.
//!
//! Only the header is read: tensor data is never touched, so validating a 2 GiB model costs one
//! small read.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::{Ctx, Loc, Severity, Source};

/// A JSON object as an ordered list of pairs, so duplicate keys are visible.
struct Pairs(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Value>()? {
                    v.push((k, val));
                }
                Ok(Pairs(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Element size in bytes of a safetensors dtype (`None` for unknown dtypes). Sub-byte types
/// are given in bits by [`dtype_bits`].
fn dtype_bits(d: &str) -> Option<u64> {
    Some(match d {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        "F6_E2M3" | "F6_E3M2" => 6,
        "F4" => 4,
        _ => return None,
    })
}

/// Validation problems, in order found; empty when the file is well-formed.
pub fn validate(src: &dyn Source, max_header: u64) -> Vec<String> {
    let mut errs = Vec::new();
    let len = src.len();
    let mut n8 = [0u8; 8];
    if src.read_at(0, &mut n8).is_err() {
        return vec!["file shorter than the 8-byte header length".into()];
    }
    let n = u64::from_le_bytes(n8);
    if n > max_header {
        return vec![format!(
            "header length {n} exceeds the {max_header}-byte bound"
        )];
    }
    if n.checked_add(8).is_none_or(|e| e > len) {
        return vec![format!(
            "header length {n} runs past the end of the file ({len} bytes)"
        )];
    }
    let mut h = vec![0u8; n as usize];
    if let Err(e) = src.read_at(8, &mut h) {
        return vec![format!("cannot read header: {e}")];
    }
    if h.first() != Some(&b'{') {
        return vec!["header does not start with '{'".into()];
    }
    // The format allows trailing spaces as padding, nothing else.
    let pairs: Pairs = match serde_json::from_slice(&h) {
        Ok(p) => p,
        Err(e) => return vec![format!("header is not a JSON object: {e}")],
    };
    let data_len = len - 8 - n;
    let mut seen = std::collections::HashSet::new();
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    for (name, v) in &pairs.0 {
        if !seen.insert(name.clone()) {
            errs.push(format!("key {name:?} appears twice in the header"));
            continue;
        }
        if name == "__metadata__" {
            match v {
                Value::Object(m) if m.values().all(Value::is_string) => {}
                _ => errs.push("__metadata__ must map strings to strings".into()),
            }
            continue;
        }
        let Value::Object(t) = v else {
            errs.push(format!("tensor {name:?} is not an object"));
            continue;
        };
        if let Some(k) = t
            .keys()
            .find(|k| !matches!(k.as_str(), "dtype" | "shape" | "data_offsets"))
        {
            errs.push(format!("tensor {name:?} has unknown field {k:?}"));
        }
        let Some(bits) = t.get("dtype").and_then(Value::as_str).and_then(dtype_bits) else {
            errs.push(format!("tensor {name:?} has a missing or unknown dtype"));
            continue;
        };
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let Some(shape) = shape else {
            errs.push(format!(
                "tensor {name:?} has a missing or non-integer shape"
            ));
            continue;
        };
        let offs: Option<Vec<u64>> = t
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let Some([b, e]) = offs.as_deref().and_then(|o| <[u64; 2]>::try_from(o).ok()) else {
            errs.push(format!("tensor {name:?} needs data_offsets [begin, end]"));
            continue;
        };
        if e < b || e > data_len {
            errs.push(format!(
                "tensor {name:?} data_offsets [{b}, {e}] outside the {data_len}-byte data section"
            ));
            continue;
        }
        let elems = shape.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
        let bytes = elems
            .and_then(|x| x.checked_mul(bits))
            .map(|b| b.div_ceil(8));
        if bytes != Some(e - b) {
            errs.push(format!(
                "tensor {name:?}: shape {shape:?} of {bits}-bit elements needs {} bytes, offsets give {}",
                bytes.map(|b| b.to_string()).unwrap_or_else(|| "overflowing".into()),
                e - b
            ));
        }
        ranges.push((b, e, name.clone()));
    }
    ranges.sort();
    let mut at = 0u64;
    for (b, e, name) in &ranges {
        if *b != at {
            errs.push(if *b < at {
                format!("tensor {name:?} overlaps the previous tensor")
            } else {
                format!("gap of {} bytes before tensor {name:?}", b - at)
            });
        }
        at = at.max(*e);
    }
    if at != data_len {
        errs.push(format!(
            "{} bytes after the last tensor (data section {data_len} bytes, tensors end at {at})",
            data_len.saturating_sub(at)
        ));
    }
    errs
}

/// Returns where the tensor data starts when the file validated: every byte after it then
/// belongs to exactly one declared tensor, and pattern rules need only the header.
pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> Option<u64> {
    let errs = validate(src, ctx.limits.max_safetensors_header);
    let valid = errs.is_empty();
    for e in errs {
        ctx.add(loc, Severity::Invalid, "safetensors/format", None, e);
    }
    if !valid {
        return None;
    }
    let mut n8 = [0u8; 8];
    src.read_at(0, &mut n8).ok()?;
    8u64.checked_add(u64::from_le_bytes(n8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data));
        v
    }

    #[test]
    fn good_and_bad() {
        let ok = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            8,
        );
        assert!(validate(&ok.as_slice(), 1 << 20).is_empty());
        let trailing = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            9,
        );
        assert_eq!(validate(&trailing.as_slice(), 1 << 20).len(), 1);
        let dup = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            8,
        );
        assert!(!validate(&dup.as_slice(), 1 << 20).is_empty());
    }
}
