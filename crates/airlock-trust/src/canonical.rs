//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace,
//! strings and numbers as serde_json writes them. Signatures over trust roots and inventories
//! are computed over these bytes, so the signer and verifier need not share a serializer.
//!
//! The ordering is done here explicitly rather than relying on serde_json's map type, which a
//! feature flag elsewhere in the dependency graph (`preserve_order`) could change.

use serde::Serialize;
use serde_json::Value;

/// Serializes `value` canonically.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(256);
    write(&v, &mut out)?;
    Ok(out)
}

fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write(&map[k], out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorts_nested_keys_without_spaces() {
        let v =
            serde_json::json!({"scheme":"ed25519","keyval":{"public":"ab"},"keytype":"ed25519"});
        assert_eq!(
            String::from_utf8(super::to_vec(&v).unwrap()).unwrap(),
            r#"{"keytype":"ed25519","keyval":{"public":"ab"},"scheme":"ed25519"}"#
        );
    }
}
