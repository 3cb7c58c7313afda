//! Container image layers: a tar stream, plain or gzip/zstd-compressed, walked entry by entry
//! as it is decompressed, so a multi-gigabyte layer is scanned in one pass with flat memory.
//!
//! Every regular file in the layer is scanned like a file on disk (content sniffing, format
//! scanners, nested archives, pattern rules) and findings name it as the member
//! (`usr/lib/model.pkl`). A member up to [`Limits::max_member_in_memory`] bytes is held in
//! memory while it is scanned; a larger one is spilled to a temporary file first (model
//! scanners seek). Links, directories, devices and whiteouts carry no content and are
//! skipped. A stream that does not decompress or does not parse as tar is an `invalid`
//! finding (`layer/corrupt`); a layer that unpacks to more than [`Limits::max_layer_unpacked`]
//! bytes is reported and not scanned further.

use std::io::{self, Read, Write};

use crate::{scan_any, Ctx, Finding, Limits, Loc, RuleEngine, Severity};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a tar layer media type (OCI and Docker), or `None` for media types
    /// that are not tar layers (configs, artifact blobs).
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        let mt = media_type.to_ascii_lowercase();
        if !(mt.contains(".tar") || mt.contains("rootfs.diff.tar")) {
            return None;
        }
        Some(if mt.ends_with("gzip") {
            Compression::Gzip
        } else if mt.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        })
    }
}

/// Counts the bytes read through it and refuses to go past a limit.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.limit {
            return Err(io::Error::other(LIMIT_HIT));
        }
        let want = buf.len().min((self.limit - self.read) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        Ok(n)
    }
}

const LIMIT_HIT: &str = "layer unpacks past the size limit";

/// Ends the stream cleanly for the tar reader: when the layer stops short of a 512-byte
/// boundary or without the two zero blocks that close a tar, zeros are supplied. umoci, for
/// one, writes layers that end right after the last member's data (no padding, no end
/// blocks), and container runtimes accept them. A member cut short inside its data is still
/// visible to the scan only as zeros; the layer's digest, checked before scanning, is what
/// vouches for its bytes.
struct PadTail<R> {
    inner: R,
    total: u64,
    /// Zeros still to supply once `inner` is done (`None` while it is not).
    tail: Option<u64>,
}

impl<R: Read> Read for PadTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.total += n as u64;
                return Ok(n);
            }
            let pad = (512 - self.total % 512) % 512;
            self.tail = Some(pad + 1024);
        }
        let left = self.tail.as_mut().expect("set above");
        let n = (*left).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

/// The tar stream of a layer blob: decompressed, refusing to unpack past `limit` bytes (the
/// read fails with an error for which [`is_limit_error`] is true), and padded to a clean tar
/// end (see `PadTail`). Shared with other readers of image layers (the SBOM cataloger).
pub fn tar_stream<'a>(
    reader: impl Read + 'a,
    compression: Compression,
    limit: u64,
) -> io::Result<impl Read + 'a> {
    let stream: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    };
    Ok(PadTail {
        inner: Bounded {
            inner: stream,
            read: 0,
            limit,
        },
        total: 0,
        tail: None,
    })
}

/// Is `e` the error of a [`tar_stream`] that reached its unpacked-size limit?
pub fn is_limit_error(e: &io::Error) -> bool {
    e.to_string().contains(LIMIT_HIT)
}

/// Scans one layer blob read from `reader`. `name` is what findings call the layer (the
/// `file` field). An error is an error reading `reader` itself; bad content is a finding.
pub fn scan_layer(
    reader: impl Read,
    compression: Compression,
    name: &str,
    limits: &Limits,
    rules: &dyn RuleEngine,
) -> io::Result<Vec<Finding>> {
    let mut ctx = Ctx::new(limits, rules, name.to_string());
    let loc = Loc::default();
    let stream = tar_stream(reader, compression, limits.max_layer_unpacked)?;
    match walk(&mut ctx, stream) {
        Ok(()) => {}
        Err(Failure::Local(e)) => return Err(e),
        Err(Failure::Stream(e)) if is_limit_error(&e) => {
            ctx.add(
                &loc,
                Severity::Suspicious,
                "layer/too-large",
                None,
                format!(
                    "the layer unpacks to more than {} bytes; the rest is not scanned",
                    limits.max_layer_unpacked
                ),
            );
        }
        Err(Failure::Stream(e)) => {
            ctx.add(
                &loc,
                Severity::Invalid,
                "layer/corrupt",
                None,
                format!("the layer does not unpack as a tar stream: {e}"),
            );
        }
    }
    Ok(ctx.findings)
}

/// Why a walk stopped: the layer's bytes (a finding) or this machine (an error).
enum Failure {
    Stream(io::Error),
    Local(io::Error),
}

fn walk(ctx: &mut Ctx, stream: impl Read) -> Result<(), Failure> {
    let mut ar = tar::Archive::new(stream);
    let mut count = 0usize;
    // One buffer for every in-memory member: its pages are faulted in once, not per member.
    let mut buf: Vec<u8> = Vec::new();
    for entry in ar.entries().map_err(Failure::Stream)? {
        let mut entry = entry.map_err(Failure::Stream)?;
        count += 1;
        if count > ctx.limits.max_entries {
            ctx.add(
                &Loc::default(),
                Severity::Suspicious,
                "tar/too-many-entries",
                None,
                format!(
                    "more than {} entries; the rest are not scanned",
                    ctx.limits.max_entries
                ),
            );
            return Ok(());
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = path.trim_start_matches("./").to_string();
        let base = path.rsplit('/').next().unwrap_or("");
        if base.starts_with(".wh.") {
            continue;
        }
        let size = entry.size();
        let loc = Loc::default().child(&path);
        let short = || {
            Failure::Stream(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: member cut short"),
            ))
        };
        if size <= ctx.limits.max_member_in_memory {
            buf.clear();
            (&mut entry)
                .take(size)
                .read_to_end(&mut buf)
                .map_err(Failure::Stream)?;
            if buf.len() as u64 != size {
                return Err(short());
            }
            scan_any(ctx, &buf.as_slice(), &loc).map_err(Failure::Local)?;
        } else {
            // Spill: model scanners seek, and the member may be gigabytes.
            let mut tmp = tempfile::tempfile().map_err(Failure::Local)?;
            let mut chunk = vec![0u8; 1 << 20];
            let mut copied = 0u64;
            while copied < size {
                let want = chunk.len().min((size - copied) as usize);
                let n = entry.read(&mut chunk[..want]).map_err(Failure::Stream)?;
                if n == 0 {
                    return Err(short());
                }
                tmp.write_all(&chunk[..n]).map_err(Failure::Local)?;
                copied += n as u64;
            }
            tmp.flush().map_err(Failure::Local)?;
            let src = crate::source::FileSource::new(tmp).map_err(Failure::Local)?;
            scan_any(ctx, &src, &loc).map_err(Failure::Local)?;
        }
    }
    Ok(())
}
