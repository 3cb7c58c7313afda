//! Tar walker over a [`Source`]: headers are checksummed, sizes bounded by the file, GNU long
//! names and pax `path` records honoured (a member is scanned under the name an extractor
//! would give it), and every regular file is scanned in place by content.

use std::collections::HashSet;
use std::io;

use crate::sniff::tar_checksum_ok;
use crate::{scan_any, Ctx, Loc, Severity, Slice, Source};

fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256 (GNU) for large sizes
        let mut v: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { *b };
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s: String = field
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(&s, 8).ok()
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|x| *x == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn pax_path(data: &[u8]) -> Option<String> {
    // records: "<len> key=value\n"
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let n: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if n == 0 || n > rest.len() {
            return found;
        }
        let rec = &rest[sp + 1..n];
        if let Some(v) = rec.strip_prefix(b"path=") {
            found = Some(String::from_utf8_lossy(v.strip_suffix(b"\n").unwrap_or(v)).into_owned());
        }
        rest = &rest[n..];
    }
    found
}

pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    let len = src.len();
    let mut off = 0u64;
    let mut names = HashSet::new();
    let mut long_name: Option<String> = None;
    let mut count = 0usize;
    let mut h = [0u8; 512];
    while off + 512 <= len {
        src.read_at(off, &mut h)?;
        if h.iter().all(|b| *b == 0) {
            break;
        }
        count += 1;
        if count > ctx.limits.max_entries {
            ctx.add(
                loc,
                Severity::Suspicious,
                "tar/too-many-entries",
                None,
                format!(
                    "more than {} entries; the rest are not scanned",
                    ctx.limits.max_entries
                ),
            );
            break;
        }
        if !tar_checksum_ok(&h) {
            ctx.add(
                loc,
                Severity::Invalid,
                "tar/checksum",
                None,
                format!("tar header at offset {off} has a bad checksum"),
            );
            break;
        }
        let Some(size) = octal(&h[124..136]) else {
            ctx.add(
                loc,
                Severity::Invalid,
                "tar/header",
                None,
                format!("bad size field at {off}"),
            );
            break;
        };
        let data = off + 512;
        let padded = size.div_ceil(512).saturating_mul(512);
        if data.checked_add(size).is_none_or(|e| e > len) {
            ctx.add(
                loc,
                Severity::Invalid,
                "tar/truncated",
                None,
                format!("member at offset {off} runs past the end of the archive"),
            );
            break;
        }
        let typeflag = h[156];
        let mut name = cstr(&h[..100]);
        if &h[257..262] == b"ustar" {
            let prefix = cstr(&h[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        match typeflag {
            b'L' | b'x' => {
                let mut buf = vec![0u8; size.min(1 << 20) as usize];
                src.read_at(data, &mut buf)?;
                long_name = if typeflag == b'L' {
                    Some(cstr(&buf))
                } else {
                    pax_path(&buf)
                };
            }
            b'0' | 0 | b'7' => {
                if let Some(n) = long_name.take() {
                    name = n;
                }
                let mloc = loc.child(&name);
                if !names.insert(name.clone()) {
                    ctx.add(
                        &mloc,
                        Severity::Suspicious,
                        "tar/duplicate-name",
                        None,
                        format!("member {name:?} appears more than once; extractors keep the last"),
                    );
                }
                if name.starts_with('/') || name.split('/').any(|c| c == "..") {
                    ctx.add(
                        &mloc,
                        Severity::Suspicious,
                        "tar/unsafe-path",
                        None,
                        format!("member path {name:?} escapes the extraction directory"),
                    );
                }
                if let Some(s) = Slice::new(src, data, size) {
                    scan_any(ctx, &s, &mloc)?;
                }
            }
            _ => {
                long_name = None;
            }
        }
        off = data.saturating_add(padded);
    }
    Ok(())
}
