//! Zip walker that trusts nothing twice: the central directory is read (as loaders such as
//! `zipfile` and PyTorch do) and every entry is cross-checked against its local header, so a
//! member that one reader sees under another name, with other flags, sizes or CRC, or that
//! shares bytes with another member, is reported as `Invalid` instead of being scanned under
//! one interpretation while another is loaded.
//!
//! Checks: end-of-central-directory present and consistent (no prepended data shifting the
//! offsets), zip64, entry count bound, duplicate names, unknown flag bits, encryption, local
//! signature / name / flags / method / sizes / CRC against the central record, member ranges
//! inside the file and not overlapping, CRC and size of the decompressed data, unsafe member
//! paths. Members are stored (scanned in place) or deflated (inflated up to
//! [`Limits::max_inflate`](crate::Limits)); other methods are reported as unscannable. Every
//! member is then scanned by content, recursively; PyTorch's raw tensor storages
//! (`*/data/<n>` beside a `data.pkl`) are only CRC-checked.
//!
//! [`members`] is the strict form for archives whose members are data to be read, not scanned
//! (osv.dev's per-ecosystem exports): the same structure checks, but any fault refuses the
//! whole archive, and declared sizes, their total and each member's compression ratio are
//! bounded before anything is inflated.

use std::collections::HashSet;
use std::io::{self, Read};

use crate::{scan_any, Ctx, Loc, Severity, Slice, Source, SourceReader};

/// One central-directory entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub raw_name: Vec<u8>,
    pub flags: u16,
    pub method: u16,
    pub crc: u32,
    pub csize: u64,
    pub usize: u64,
    pub local_offset: u64,
}

const KNOWN_FLAGS: u16 = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0800;
const MAX_CD: u64 = 256 << 20;

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64le(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Why the archive as a whole cannot be read.
#[derive(Debug)]
pub struct Broken(pub String);

/// The central directory: `(entries, start of the central directory)`.
pub fn central_directory(
    src: &dyn Source,
    max_entries: usize,
) -> Result<(Vec<Entry>, u64), Broken> {
    let len = src.len();
    if len < 22 {
        return Err(Broken(
            "shorter than an end-of-central-directory record".into(),
        ));
    }
    let tail_len = len.min(22 + 65535);
    let mut tail = vec![0u8; tail_len as usize];
    src.read_at(len - tail_len, &mut tail)
        .map_err(|e| Broken(format!("cannot read: {e}")))?;
    let mut eocd = None;
    let mut i = tail.len().saturating_sub(22) as isize;
    while i >= 0 {
        let p = i as usize;
        if &tail[p..p + 4] == b"PK\x05\x06" {
            let clen = u16le(&tail, p + 20) as usize;
            if p + 22 + clen == tail.len() {
                eocd = Some(p);
                break;
            }
        }
        i -= 1;
    }
    let Some(p) = eocd else {
        return Err(Broken(
            "no end-of-central-directory record at the end of the file".into(),
        ));
    };
    let eocd_pos = len - tail_len + p as u64;
    let e = &tail[p..p + 22];
    if u16le(e, 4) != 0 || u16le(e, 6) != 0 {
        return Err(Broken("multi-disk zip archives are not supported".into()));
    }
    let mut count = u16le(e, 10) as u64;
    let mut cd_size = u32le(e, 12) as u64;
    let mut cd_off = u32le(e, 16) as u64;
    let mut cd_end_expected = eocd_pos;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_off == 0xFFFF_FFFF {
        // zip64: locator right before the EOCD.
        if eocd_pos < 20 {
            return Err(Broken("zip64 locator missing".into()));
        }
        let mut loc = [0u8; 20];
        src.read_at(eocd_pos - 20, &mut loc)
            .map_err(|e| Broken(format!("cannot read zip64 locator: {e}")))?;
        if &loc[..4] != b"PK\x06\x07" {
            return Err(Broken("zip64 locator missing".into()));
        }
        let rec_off = u64le(&loc, 8);
        let mut rec = [0u8; 56];
        src.read_at(rec_off, &mut rec)
            .map_err(|_| Broken("zip64 end of central directory out of range".into()))?;
        if &rec[..4] != b"PK\x06\x06" {
            return Err(Broken(
                "bad zip64 end of central directory signature".into(),
            ));
        }
        count = u64le(&rec, 32);
        cd_size = u64le(&rec, 40);
        cd_off = u64le(&rec, 48);
        cd_end_expected = rec_off;
    }
    if cd_off.checked_add(cd_size) != Some(cd_end_expected) {
        return Err(Broken(format!(
            "central directory at {cd_off}+{cd_size} does not end where the end record is ({cd_end_expected}): data was prepended or the offsets lie"
        )));
    }
    if count > max_entries as u64 {
        return Err(Broken(format!("more than {max_entries} entries")));
    }
    if cd_size > MAX_CD {
        return Err(Broken(format!(
            "central directory larger than {MAX_CD} bytes"
        )));
    }
    let mut cd = vec![0u8; cd_size as usize];
    src.read_at(cd_off, &mut cd)
        .map_err(|_| Broken("central directory out of range".into()))?;
    let mut entries = Vec::new();
    let mut q = 0usize;
    for _ in 0..count {
        if q + 46 > cd.len() || &cd[q..q + 4] != b"PK\x01\x02" {
            return Err(Broken(format!(
                "central directory entry {} is malformed",
                entries.len()
            )));
        }
        let flags = u16le(&cd, q + 8);
        let method = u16le(&cd, q + 10);
        let crc = u32le(&cd, q + 16);
        let mut csize = u32le(&cd, q + 20) as u64;
        let mut usize_ = u32le(&cd, q + 24) as u64;
        let nl = u16le(&cd, q + 28) as usize;
        let xl = u16le(&cd, q + 30) as usize;
        let cl = u16le(&cd, q + 32) as usize;
        let mut local_offset = u32le(&cd, q + 42) as u64;
        let end = q + 46 + nl + xl + cl;
        if end > cd.len() {
            return Err(Broken("central directory entry runs past its end".into()));
        }
        let raw_name = cd[q + 46..q + 46 + nl].to_vec();
        let extra = &cd[q + 46 + nl..q + 46 + nl + xl];
        // zip64 extra field: the fields that are 0xFFFFFFFF, in order.
        let mut x = 0;
        while x + 4 <= extra.len() {
            let id = u16le(extra, x);
            let sz = u16le(extra, x + 2) as usize;
            let body = &extra[x + 4..(x + 4 + sz).min(extra.len())];
            if id == 1 {
                let mut k = 0;
                let mut next = |v: &mut u64| {
                    if *v == 0xFFFF_FFFF && k + 8 <= body.len() {
                        *v = u64le(body, k);
                        k += 8;
                    }
                };
                next(&mut usize_);
                next(&mut csize);
                next(&mut local_offset);
            }
            x += 4 + sz;
        }
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        entries.push(Entry {
            name,
            raw_name,
            flags,
            method,
            crc,
            csize,
            usize: usize_,
            local_offset,
        });
        q = end;
    }
    Ok((entries, cd_off))
}

fn unsafe_path(name: &str) -> bool {
    name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.split('/').any(|c| c == "..")
        || (name.len() >= 2 && name.as_bytes()[1] == b':')
}

/// Walks a zip archive: structure checks, then every member by content.
pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    let (entries, cd_off) = match central_directory(src, ctx.limits.max_entries) {
        Ok(x) => x,
        Err(Broken(why)) => {
            ctx.add(loc, Severity::Invalid, "zip/structure", None, why);
            return Ok(());
        }
    };
    let mut names = HashSet::new();
    let mut ranges: Vec<(u64, u64, usize)> = Vec::new();
    let mut data: Vec<Option<(u64, &Entry)>> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mloc = loc.child(&e.name);
        data.push(None);
        if !names.insert(e.raw_name.clone()) {
            ctx.add(
                &mloc,
                Severity::Invalid,
                "zip/duplicate-name",
                None,
                format!("member name {:?} appears more than once", e.name),
            );
        }
        if unsafe_path(&e.name) {
            ctx.add(
                &mloc,
                Severity::Suspicious,
                "zip/unsafe-path",
                None,
                format!("member path {:?} escapes the extraction directory", e.name),
            );
        }
        if e.flags & !KNOWN_FLAGS != 0 {
            ctx.add(
                &mloc,
                Severity::Invalid,
                "zip/unknown-flags",
                None,
                format!("general purpose flags 0x{:04x} have unknown bits", e.flags),
            );
            continue;
        }
        let mut lh = [0u8; 30];
        if src.read_at(e.local_offset, &mut lh).is_err() || &lh[..4] != b"PK\x03\x04" {
            ctx.add(
                &mloc,
                Severity::Invalid,
                "zip/local-header",
                None,
                format!("no local header at offset {}", e.local_offset),
            );
            continue;
        }
        let lflags = u16le(&lh, 6);
        let lmethod = u16le(&lh, 8);
        let lcrc = u32le(&lh, 14);
        let lcsize = u32le(&lh, 18) as u64;
        let lusize = u32le(&lh, 22) as u64;
        let nl = u16le(&lh, 26) as u64;
        let xl = u16le(&lh, 28) as u64;
        let mut lname = vec![0u8; nl as usize];
        if src.read_at(e.local_offset + 30, &mut lname).is_err() || lname != e.raw_name {
            ctx.add(
                &mloc,
                Severity::Invalid,
                "zip/name-mismatch",
                None,
                format!(
                    "local header names {:?}, central directory {:?}",
                    String::from_utf8_lossy(&lname),
                    e.name
                ),
            );
            continue;
        }
        if lflags != e.flags || lmethod != e.method {
            ctx.add(
                &mloc,
                Severity::Invalid,
                "zip/header-mismatch",
                None,
                format!(
                    "local header flags/method 0x{lflags:04x}/{lmethod} differ from central 0x{:04x}/{}",
                    e.flags, e.method
                ),
            );
            continue;
        }
        if e.flags & 0x8 == 0 {
            let sizes_ok = (lcsize == e.csize || lcsize == 0xFFFF_FFFF)
                && (lusize == e.usize || lusize == 0xFFFF_FFFF);
            if lcrc != e.crc || !sizes_ok {
                ctx.add(
                    &mloc,
                    Severity::Invalid,
                    "zip/header-mismatch",
                    None,
                    "local header CRC or sizes differ from the central directory".to_string(),
                );
                continue;
            }
        }
        let start = e.local_offset + 30 + nl + xl;
        let end = start.checked_add(e.csize);
        match end {
            Some(end) if end <= cd_off => {
                ranges.push((e.local_offset, end, i));
                data[i] = Some((start, e));
            }
            _ => {
                ctx.add(
                    &mloc,
                    Severity::Invalid,
                    "zip/out-of-range",
                    None,
                    "member data runs into the central directory or past the end".to_string(),
                );
            }
        }
    }
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            let (a, b) = (&entries[w[0].2].name, &entries[w[1].2].name);
            ctx.add(
                &loc.child(b),
                Severity::Invalid,
                "zip/overlapping-entries",
                None,
                format!("member {b:?} shares bytes with member {a:?}"),
            );
            data[w[1].2] = None;
            data[w[0].2] = None;
        }
    }
    // PyTorch zip: `<prefix>/data/<n>` are raw storages when `<prefix>/data.pkl` exists.
    let torch_prefixes: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.name.strip_suffix("data.pkl"))
        .collect();
    let is_storage = |n: &str| {
        torch_prefixes.iter().any(|p| {
            n.strip_prefix(p)
                .and_then(|r| r.strip_prefix("data/"))
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    for (start, e) in data.into_iter().flatten() {
        let mloc = loc.child(&e.name);
        if e.flags & 1 != 0 {
            ctx.add(
                &mloc,
                Severity::Suspicious,
                "zip/encrypted",
                None,
                "encrypted member cannot be scanned".to_string(),
            );
            continue;
        }
        if e.name.ends_with('/') && e.usize == 0 {
            continue;
        }
        match e.method {
            0 => {
                let Some(slice) = Slice::new(src, start, e.csize) else {
                    continue;
                };
                if e.csize != e.usize {
                    ctx.add(
                        &mloc,
                        Severity::Invalid,
                        "zip/size-mismatch",
                        None,
                        "stored member's sizes differ".to_string(),
                    );
                    continue;
                }
                let crc = crc_of(&mut SourceReader::new(&slice))?;
                if crc != e.crc {
                    crc_finding(ctx, &mloc, e.crc, crc);
                    continue;
                }
                if !is_storage(&e.name) {
                    scan_any(ctx, &slice, &mloc)?;
                }
            }
            8 => {
                let Some(slice) = Slice::new(src, start, e.csize) else {
                    continue;
                };
                let mut dec = flate2::read::DeflateDecoder::new(SourceReader::new(&slice));
                let mut buf = Vec::new();
                let cap = ctx.limits.max_inflate.min(e.usize);
                let r = (&mut dec).take(cap).read_to_end(&mut buf);
                if let Err(err) = r {
                    ctx.add(
                        &mloc,
                        Severity::Invalid,
                        "zip/corrupt-deflate",
                        None,
                        format!("deflate stream is corrupt: {err}"),
                    );
                    continue;
                }
                // Any byte beyond the declared size is a lie about the size.
                let mut probe = [0u8; 1];
                let more = matches!(dec.read(&mut probe), Ok(n) if n > 0);
                if e.usize > ctx.limits.max_inflate {
                    ctx.add(
                        &mloc,
                        Severity::Suspicious,
                        "archive/too-large",
                        None,
                        format!(
                            "member inflates to {} bytes, more than the {} scanned",
                            e.usize, ctx.limits.max_inflate
                        ),
                    );
                    continue;
                }
                if more || buf.len() as u64 != e.usize {
                    ctx.add(
                        &mloc,
                        Severity::Invalid,
                        "zip/size-mismatch",
                        None,
                        format!(
                            "member inflates to {}{} bytes, header says {}",
                            buf.len(),
                            if more { "+" } else { "" },
                            e.usize
                        ),
                    );
                    continue;
                }
                let crc = crc32fast::hash(&buf);
                if crc != e.crc {
                    crc_finding(ctx, &mloc, e.crc, crc);
                    continue;
                }
                if !is_storage(&e.name) {
                    scan_any(ctx, &buf.as_slice(), &mloc)?;
                }
            }
            m => ctx.add(
                &mloc,
                Severity::Suspicious,
                "archive/unscannable",
                None,
                format!("compression method {m} is not supported; member not scanned"),
            ),
        }
    }
    Ok(())
}

fn crc_finding(ctx: &mut Ctx, loc: &Loc, want: u32, got: u32) {
    ctx.add(
        loc,
        Severity::Invalid,
        "zip/crc-mismatch",
        None,
        format!("CRC-32 is {got:08x}, headers say {want:08x}"),
    );
}

fn crc_of(r: &mut impl Read) -> io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize());
        }
        h.update(&buf[..n]);
    }
}

/// Bounds of [`members`].
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most entries in the central directory.
    pub max_entries: usize,
    /// Largest declared (and inflated) size of one member.
    pub max_member: u64,
    /// Largest sum of the members' declared sizes.
    pub max_total: u64,
    /// Largest ratio of inflated to compressed size, for members over 1 MiB.
    pub max_ratio: u64,
}

/// What [`members`] read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    pub members: usize,
    pub inflated: u64,
}

/// Reads every member of a zip archive in central-directory order, handing `f` its entry and
/// its bytes; any structural fault, a member over the bounds, a CRC-32 or size that does not
/// match, a method other than stored or deflated, encryption, a duplicate or unsafe name, or
/// members sharing bytes refuses the archive with a message naming the member. Directory
/// entries are skipped. `f` may refuse too; its message is returned as is.
pub fn members(
    src: &dyn Source,
    b: &Bounds,
    mut f: impl FnMut(&Entry, &[u8]) -> Result<(), String>,
) -> Result<Walked, Broken> {
    let (entries, cd_off) = central_directory(src, b.max_entries)?;
    let mut names = HashSet::new();
    let mut total = 0u64;
    let mut spans = Vec::with_capacity(entries.len());
    for e in &entries {
        let name = &e.name;
        if !names.insert(e.raw_name.clone()) {
            return Err(Broken(format!("member {name:?} appears more than once")));
        }
        if unsafe_path(name) {
            return Err(Broken(format!(
                "member path {name:?} is not a relative path"
            )));
        }
        if e.flags & !KNOWN_FLAGS != 0 || e.flags & 1 != 0 {
            return Err(Broken(format!(
                "member {name:?}: flags 0x{:04x} (encrypted or unknown)",
                e.flags
            )));
        }
        if e.method != 0 && e.method != 8 {
            return Err(Broken(format!(
                "member {name:?}: compression method {} (only stored and deflated are read)",
                e.method
            )));
        }
        if e.usize > b.max_member {
            return Err(Broken(format!(
                "member {name:?} declares {} bytes, more than the {} allowed",
                e.usize, b.max_member
            )));
        }
        if e.usize > 1 << 20 && e.usize / e.csize.max(1) > b.max_ratio {
            return Err(Broken(format!(
                "member {name:?} inflates {} bytes to {}, a ratio over {}:1",
                e.csize, e.usize, b.max_ratio
            )));
        }
        total = total.saturating_add(e.usize);
        if total > b.max_total {
            return Err(Broken(format!(
                "members declare more than the {} bytes allowed in all",
                b.max_total
            )));
        }
        let mut lh = [0u8; 30];
        if src.read_at(e.local_offset, &mut lh).is_err() || &lh[..4] != b"PK\x03\x04" {
            return Err(Broken(format!(
                "member {name:?}: no local header at offset {}",
                e.local_offset
            )));
        }
        let nl = u16le(&lh, 26) as u64;
        let xl = u16le(&lh, 28) as u64;
        let mut lname = vec![0u8; nl as usize];
        if src.read_at(e.local_offset + 30, &mut lname).is_err() || lname != e.raw_name {
            return Err(Broken(format!(
                "member {name:?}: the local header names {:?}",
                String::from_utf8_lossy(&lname)
            )));
        }
        if u16le(&lh, 6) != e.flags || u16le(&lh, 8) != e.method {
            return Err(Broken(format!(
                "member {name:?}: local and central flags or method differ"
            )));
        }
        if e.flags & 0x8 == 0 {
            let (lcrc, lcsize, lusize) =
                (u32le(&lh, 14), u32le(&lh, 18) as u64, u32le(&lh, 22) as u64);
            let sizes_ok = (lcsize == e.csize || lcsize == 0xFFFF_FFFF)
                && (lusize == e.usize || lusize == 0xFFFF_FFFF);
            if lcrc != e.crc || !sizes_ok {
                return Err(Broken(format!(
                    "member {name:?}: local header CRC or sizes differ from the central directory"
                )));
            }
        }
        if e.method == 0 && e.csize != e.usize {
            return Err(Broken(format!("member {name:?}: stored with two sizes")));
        }
        let start = e.local_offset + 30 + nl + xl;
        match start.checked_add(e.csize) {
            Some(end) if end <= cd_off => spans.push((e.local_offset, end, start)),
            _ => {
                return Err(Broken(format!(
                    "member {name:?} runs into the central directory or past the end"
                )))
            }
        }
    }
    let mut sorted: Vec<(u64, u64, usize)> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0, s.1, i))
        .collect();
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(Broken(format!(
                "members {:?} and {:?} share bytes",
                entries[w[0].2].name, entries[w[1].2].name
            )));
        }
    }
    let mut walked = Walked::default();
    let mut raw = Vec::new();
    let mut buf = Vec::new();
    for (e, span) in entries.iter().zip(&spans) {
        let name = &e.name;
        if name.ends_with('/') && e.usize == 0 {
            continue;
        }
        raw.resize(e.csize as usize, 0);
        src.read_at(span.2, &mut raw)
            .map_err(|err| Broken(format!("member {name:?}: {err}")))?;
        let data: &[u8] = if e.method == 0 {
            &raw
        } else {
            buf.clear();
            let mut dec = flate2::read::DeflateDecoder::new(raw.as_slice());
            (&mut dec)
                .take(e.usize)
                .read_to_end(&mut buf)
                .map_err(|err| Broken(format!("member {name:?}: corrupt deflate stream: {err}")))?;
            let mut probe = [0u8; 1];
            if buf.len() as u64 != e.usize || matches!(dec.read(&mut probe), Ok(n) if n > 0) {
                return Err(Broken(format!(
                    "member {name:?} does not inflate to the {} bytes its header says",
                    e.usize
                )));
            }
            &buf
        };
        let crc = crc32fast::hash(data);
        if crc != e.crc {
            return Err(Broken(format!(
                "member {name:?}: CRC-32 is {crc:08x}, the headers say {:08x}",
                e.crc
            )));
        }
        f(e, data).map_err(Broken)?;
        walked.members += 1;
        walked.inflated += data.len() as u64;
    }
    Ok(walked)
}

#[cfg(test)]
mod strict_tests {
    use super::*;

    /// A zip of `(name, data, deflated)` members, built here byte by byte.
    fn build(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data, deflate) in members {
            let body = if *deflate {
                use std::io::Write;
                let mut w = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
                w.write_all(data).unwrap();
                w.finish().unwrap()
            } else {
                data.to_vec()
            };
            let crc = crc32fast::hash(data);
            let method: u16 = if *deflate { 8 } else { 0 };
            let off = out.len() as u32;
            let mut h = Vec::new();
            h.extend_from_slice(b"PK\x03\x04");
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&method.to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(body.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            cd.extend_from_slice(b"PK\x01\x02");
            cd.extend_from_slice(&20u16.to_le_bytes());
            cd.extend_from_slice(&h[4..30]);
            cd.extend_from_slice(&[0; 10]);
            cd.extend_from_slice(&off.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    const B: Bounds = Bounds {
        max_entries: 10,
        max_member: 4 << 20,
        max_total: 8 << 20,
        max_ratio: 100,
    };

    fn walk(z: &[u8], b: &Bounds) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut got = Vec::new();
        members(&z, b, |e, d| {
            got.push((e.name.clone(), d.to_vec()));
            Ok(())
        })
        .map_err(|Broken(w)| w)?;
        Ok(got)
    }

    #[test]
    fn members_are_read_and_checked() {
        let z = build(&[
            ("a.json", b"{\"id\": 1}", true),
            ("b.json", b"plain", false),
        ]);
        let got = walk(&z, &B).unwrap();
        assert_eq!(got[0], ("a.json".into(), b"{\"id\": 1}".to_vec()));
        assert_eq!(got[1].1, b"plain");
        // A flipped byte of a stored member: the CRC names it.
        let mut bad = z.clone();
        let at = bad.windows(5).position(|w| w == b"plain").unwrap();
        bad[at] ^= 1;
        let e = walk(&bad, &B).unwrap_err();
        assert!(e.contains("b.json") && e.contains("CRC-32"), "{e}");
    }

    #[test]
    fn bombs_and_lies_are_refused_before_inflating() {
        let big = vec![b'a'; 3 << 20];
        let z = build(&[("bomb.json", &big, true)]);
        let e = walk(&z, &B).unwrap_err();
        assert!(e.contains("ratio"), "{e}");
        let e = walk(
            &z,
            &Bounds {
                max_member: 1 << 20,
                ..B
            },
        )
        .unwrap_err();
        assert!(e.contains("declares") && e.contains("bomb.json"), "{e}");
        let z = build(&[("a", b"1", false), ("b", b"2", false), ("c", b"3", false)]);
        let e = walk(
            &z,
            &Bounds {
                max_entries: 2,
                ..B
            },
        )
        .unwrap_err();
        assert!(e.contains("more than 2 entries"), "{e}");
        let e = walk(&z, &Bounds { max_total: 2, ..B }).unwrap_err();
        assert!(e.contains("in all"), "{e}");
        let z = build(&[("../x", b"1", false)]);
        assert!(walk(&z, &B).unwrap_err().contains("relative path"));
    }
}
