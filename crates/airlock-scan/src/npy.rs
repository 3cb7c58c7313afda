//! numpy `.npy` files (and the members of `.npz` zips). A numeric array is data; an array of
//! dtype `object` is a pickle after the header, loaded only with `allow_pickle=True`, and its
//! pickle is analysed like any other. When that pickle is clean (well formed, and every global
//! it imports is allowlisted: numpy's reconstructors, builtin containers, listed data
//! classes) the array is reported as `info`, since an object array of strings or lists is
//! ordinary data; otherwise the array is `suspicious` and the pickle's own findings (an
//! `os.system` is malicious) are added.

use std::io;

use crate::globals::{classify_with, Verdict};
use crate::{pickle, Ctx, Loc, Severity, Slice, Source};

/// What the header says.
#[derive(Debug, PartialEq, Eq)]
pub struct NpyHeader {
    pub descr: String,
    pub object: bool,
    pub shape: Vec<u64>,
    pub data_offset: u64,
}

fn item(h: &str, key: &str) -> Option<String> {
    let i = h.find(&format!("'{key}'"))?;
    let rest = h[i + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    Some(rest.to_string())
}

/// Parses the header (format versions 1–3).
pub fn header(src: &dyn Source) -> Result<NpyHeader, String> {
    let mut pre = [0u8; 12];
    src.read_at(0, &mut pre[..10])
        .map_err(|_| "shorter than the npy preamble")?;
    let (hlen, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 => {
            src.read_at(0, &mut pre)
                .map_err(|_| "shorter than the npy preamble")?;
            (
                u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
                12,
            )
        }
        v => return Err(format!("unknown npy format version {v}")),
    };
    if hlen > 1 << 20 || start + hlen > src.len() {
        return Err(format!("header length {hlen} out of bounds"));
    }
    let mut hb = vec![0u8; hlen as usize];
    src.read_at(start, &mut hb).map_err(|e| e.to_string())?;
    let h = String::from_utf8_lossy(&hb).into_owned();
    let descr_v = item(&h, "descr").ok_or("header has no descr")?;
    let object = descr_v.contains("'O") || descr_v.contains("|O") || descr_v.contains("\"O");
    let descr = if let Some(s) = descr_v.strip_prefix('\'') {
        s.split('\'').next().unwrap_or("").to_string()
    } else {
        descr_v
            .split(['}'])
            .next()
            .unwrap_or("")
            .trim_end_matches([',', ' '])
            .to_string()
    };
    let shape_v = item(&h, "shape").ok_or("header has no shape")?;
    let inner = shape_v
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("shape is not a tuple")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<u64>()
                .map_err(|_| format!("bad shape {s:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NpyHeader {
        descr,
        object,
        shape,
        data_offset: start + hlen,
    })
}

fn itemsize(descr: &str) -> Option<u64> {
    let d = descr.trim_start_matches(['<', '>', '|', '=']);
    let digits: String = d.chars().skip(1).take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    Some(match d.chars().next()? {
        'U' => n * 4,
        _ => n,
    })
}

pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    let h = match header(src) {
        Ok(h) => h,
        Err(e) => {
            ctx.add(loc, Severity::Invalid, "npy/format", None, e);
            return Ok(());
        }
    };
    let Some(data) = Slice::new(src, h.data_offset, src.len() - h.data_offset) else {
        return Ok(());
    };
    if h.object {
        let a = pickle::analyse(&data, ctx.limits);
        let clean = a.pickles > 0
            && a.error.is_none()
            && a.unresolved.is_empty()
            && a.anomalies.is_empty()
            && a.globals.iter().all(|g| {
                classify_with(&g.module, &g.name, g.proto, &ctx.limits.allow) == Verdict::Allowed
            });
        if clean {
            ctx.add(
                loc,
                Severity::Info,
                "npy/object-array",
                None,
                "object array: its data is a pickle (loads only with allow_pickle=True) that rebuilds only allowlisted objects",
            );
        } else {
            ctx.add(
                loc,
                Severity::Suspicious,
                "npy/object-array",
                None,
                "object array: its data is a pickle and loads only with allow_pickle=True",
            );
            let _ = pickle::report(ctx, loc, &a, true);
        }
        return Ok(());
    }
    if let Some(size) = itemsize(&h.descr) {
        let want = h
            .shape
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d))
            .and_then(|e| e.checked_mul(size));
        if want != Some(data.len()) {
            ctx.add(
                loc,
                Severity::Invalid,
                "npy/format",
                None,
                format!(
                    "shape {:?} of {} needs {} bytes, file has {}",
                    h.shape,
                    h.descr,
                    want.map(|w| w.to_string())
                        .unwrap_or_else(|| "overflowing".into()),
                    data.len()
                ),
            );
        }
    }
    Ok(())
}
