//! GGUF validator (llama.cpp model files). Reads the header only: magic, version, bounded
//! metadata key/value pairs (no duplicate keys, every string and array length bounded),
//! tensor infos (bounded dimensions, known types, offsets aligned, inside the file, not
//! overlapping). The tensor data is never read.
//!
//! `tokenizer.chat_template` is a Jinja program that servers render for every request; a
//! template that reaches `__globals__`, `__subclasses__`, `__class__` or `popen` is a sandbox
//! escape (template injection), reported as malicious.

use std::io::{BufReader, Read};

use crate::{Ctx, Limits, Loc, Severity, Source, SourceReader};

/// Markers of Jinja sandbox escapes in chat templates.
pub const TEMPLATE_MARKERS: &[&str] = &[
    "__globals__",
    "__subclasses__",
    "__class__",
    "__mro__",
    "__base__",
    "__builtins__",
    "__import__",
    "__init__",
    "__getattribute__",
    "popen",
    "os.system",
    "subprocess",
    "eval(",
    "exec(",
    "lipsum",
    "cycler",
    "joiner",
    "self._TemplateReference__context",
];

/// Returns the injection markers found in a template.
pub fn template_markers(t: &str) -> Vec<&'static str> {
    TEMPLATE_MARKERS
        .iter()
        .copied()
        .filter(|m| t.contains(m))
        .collect()
}

/// `(elements per block, bytes per block)` of a ggml tensor type.
fn ggml_type(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),
        1 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        16 => (256, 66),
        17 => (256, 74),
        18 => (256, 98),
        19 => (256, 50),
        20 => (32, 18),
        21 => (256, 110),
        22 => (256, 82),
        23 => (256, 136),
        24 => (1, 1),
        25 => (1, 2),
        26 => (1, 4),
        27 => (1, 8),
        28 => (1, 8),
        29 => (256, 56),
        30 => (1, 2),
        34 => (256, 54),
        35 => (256, 66),
        39 => (32, 17),
        _ => return None,
    })
}

/// What a GGUF header holds that matters to scanning.
#[derive(Debug, Default)]
pub struct Header {
    pub version: u32,
    pub keys: Vec<String>,
    /// `(key, template)` of every chat template.
    pub templates: Vec<(String, String)>,
    pub tensors: u64,
    /// Where the tensor data starts (everything before it is header and metadata).
    pub data_start: u64,
}

struct Rd<'a> {
    r: BufReader<SourceReader<'a>>,
    pos: u64,
    lim: &'a Limits,
}

impl Rd<'_> {
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        let mut b = vec![0u8; n as usize];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("unexpected end of file at offset {}", self.pos))?;
        self.pos += n;
        Ok(b)
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let got = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        if got != n {
            return Err(format!("unexpected end of file at offset {}", self.pos));
        }
        self.pos += n;
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn string(&mut self, keep: bool) -> Result<Option<String>, String> {
        let n = self.u64()?;
        if n > self.lim.max_gguf_string {
            return Err(format!(
                "string of {n} bytes at offset {} exceeds the bound",
                self.pos
            ));
        }
        if keep {
            let b = self.bytes(n)?;
            Ok(Some(String::from_utf8_lossy(&b).into_owned()))
        } else {
            self.skip(n)?;
            Ok(None)
        }
    }
    /// Reads a value of type `t`; returns it when it is a string and `keep`.
    fn value(&mut self, t: u32, keep: bool, depth: u32) -> Result<Option<String>, String> {
        match t {
            0 | 1 | 7 => self.skip(1)?,
            2 | 3 => self.skip(2)?,
            4..=6 => self.skip(4)?,
            10..=12 => self.skip(8)?,
            8 => return self.string(keep),
            9 => {
                if depth > 2 {
                    return Err("arrays nested too deep".into());
                }
                let et = self.u32()?;
                let n = self.u64()?;
                if n > self.lim.max_gguf_array {
                    return Err(format!("array of {n} elements exceeds the bound"));
                }
                for _ in 0..n {
                    self.value(et, false, depth + 1)?;
                }
            }
            _ => return Err(format!("unknown value type {t} at offset {}", self.pos)),
        }
        Ok(None)
    }
}

/// Parses and checks a GGUF header; returns what was read and the problems found.
pub fn validate(src: &dyn Source, lim: &Limits) -> (Header, Vec<String>) {
    let mut h = Header::default();
    let mut errs = Vec::new();
    let mut rd = Rd {
        r: BufReader::with_capacity(1 << 16, SourceReader::new(src)),
        pos: 0,
        lim,
    };
    let r = (|| -> Result<(), String> {
        if rd.bytes(4)? != b"GGUF" {
            return Err("bad magic".into());
        }
        h.version = rd.u32()?;
        if !(2..=3).contains(&h.version) {
            return Err(format!("unsupported GGUF version {}", h.version));
        }
        let nt = rd.u64()?;
        let nkv = rd.u64()?;
        if nt > lim.max_gguf_items || nkv > lim.max_gguf_items {
            return Err(format!("{nt} tensors / {nkv} keys exceed the bound"));
        }
        h.tensors = nt;
        let mut seen = std::collections::HashSet::new();
        let mut alignment = 32u64;
        for _ in 0..nkv {
            let key = rd.string(true)?.unwrap_or_default();
            if !seen.insert(key.clone()) {
                errs.push(format!("metadata key {key:?} appears twice"));
            }
            let t = rd.u32()?;
            let is_template = key.starts_with("tokenizer.chat_template");
            if key == "general.alignment" {
                if t != 4 {
                    return Err("general.alignment must be a u32".into());
                }
                alignment = rd.u32()? as u64;
                if alignment == 0 || !alignment.is_power_of_two() {
                    return Err(format!(
                        "general.alignment {alignment} is not a power of two"
                    ));
                }
            } else if let Some(s) = rd.value(t, is_template, 0)? {
                h.templates.push((key.clone(), s));
            }
            h.keys.push(key);
        }
        let mut names = std::collections::HashSet::new();
        let mut ranges = Vec::new();
        for _ in 0..nt {
            let name = rd.string(true)?.unwrap_or_default();
            if !names.insert(name.clone()) {
                errs.push(format!("tensor {name:?} appears twice"));
            }
            let nd = rd.u32()?;
            if nd == 0 || nd > 8 {
                return Err(format!("tensor {name:?} has {nd} dimensions"));
            }
            let mut elems = 1u64;
            for _ in 0..nd {
                let d = rd.u64()?;
                elems = elems
                    .checked_mul(d)
                    .ok_or_else(|| format!("tensor {name:?} size overflows"))?;
            }
            let t = rd.u32()?;
            let off = rd.u64()?;
            let Some((blk, bsz)) = ggml_type(t) else {
                errs.push(format!("tensor {name:?} has unknown type {t}"));
                continue;
            };
            if elems.checked_rem(blk) != Some(0) {
                errs.push(format!(
                    "tensor {name:?}: {elems} elements not a multiple of the block size {blk}"
                ));
                continue;
            }
            if off % alignment != 0 {
                errs.push(format!(
                    "tensor {name:?} offset {off} is not aligned to {alignment}"
                ));
            }
            let size = (elems / blk)
                .checked_mul(bsz)
                .ok_or_else(|| format!("tensor {name:?} size overflows"))?;
            ranges.push((off, off.saturating_add(size), name));
        }
        let data_start = rd.pos.div_ceil(alignment) * alignment;
        h.data_start = data_start;
        let data_len = src.len().saturating_sub(data_start);
        if data_start > src.len() && nt > 0 {
            return Err("tensor data section missing".into());
        }
        ranges.sort();
        let mut end = 0u64;
        for (b, e, name) in &ranges {
            if *b < end {
                errs.push(format!("tensor {name:?} overlaps the previous tensor"));
            }
            if *e > data_len {
                errs.push(format!(
                    "tensor {name:?} [{b}, {e}) runs past the end of the data section ({data_len} bytes)"
                ));
            }
            end = end.max(*e);
        }
        Ok(())
    })();
    if let Err(e) = r {
        errs.push(e);
    }
    (h, errs)
}

/// Returns where the tensor data starts when the file validated (pattern rules then need only
/// the header and metadata before it).
pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> Option<u64> {
    let (h, errs) = validate(src, ctx.limits);
    let valid = errs.is_empty();
    for e in errs {
        ctx.add(loc, Severity::Invalid, "gguf/format", None, e);
    }
    for (key, t) in &h.templates {
        let m = template_markers(t);
        if !m.is_empty() {
            ctx.add(
                loc,
                Severity::Malicious,
                "gguf/chat-template-injection",
                None,
                format!("{key} reaches {}: Jinja sandbox escape", m.join(", ")),
            );
        }
    }
    valid.then_some(h.data_start)
}
