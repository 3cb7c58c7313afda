//! Response bodies: small in-memory bodies, file ranges — sent with `sendfile` on plain
//! HTTP ([`crate::plain`]), or streamed by a blocking reader thread in 2 MiB chunks through
//! hyper (TLS) — and store streams, for blobs of a backend without local files, read by the
//! same thread; a blob is never held in memory whole.
//! Also the `Range` header parser shared by the OCI and Hugging Face routes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::mpsc;

const CHUNK: u64 = 2 << 20;

/// The one body type every handler returns.
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    /// A file range not started yet: the plain-HTTP path sends it with `sendfile`; polled as
    /// an `http_body::Body` (the hyper/TLS path) it becomes [`Body::File`].
    FileRange {
        file: Option<File>,
        offset: u64,
        len: u64,
    },
    /// `len` bytes from a reader opened when the body is first polled (on the blocking
    /// thread, since opening may do I/O); becomes [`Body::File`].
    Stream {
        open: Option<Opener>,
        len: u64,
    },
    File {
        rx: mpsc::Receiver<std::io::Result<Bytes>>,
        remaining: u64,
    },
}

/// Opens the reader of a [`Body::Stream`], positioned at its first byte.
pub type Opener = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

impl Body {
    pub fn empty() -> Self {
        Body::Empty
    }

    pub fn bytes(b: impl Into<Bytes>) -> Self {
        Body::Full(Some(b.into()))
    }

    /// `len` bytes of `file` from `offset`.
    pub fn file(file: File, offset: u64, len: u64) -> Self {
        Body::FileRange {
            file: Some(file),
            offset,
            len,
        }
    }

    /// `len` bytes of the reader `open` gives.
    pub fn stream(open: Opener, len: u64) -> Self {
        Body::Stream {
            open: Some(open),
            len,
        }
    }
}

/// Opens `file` at `offset`, as a [`Body::Stream`] opener.
fn file_opener(mut file: File, offset: u64) -> Opener {
    Box::new(move || {
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(file) as Box<dyn Read + Send>)
    })
}

/// Opens the reader and reads `len` bytes on a blocking thread, chunk by chunk, into a
/// bounded channel. Must be called inside the tokio runtime.
fn start_reader(open: Opener, len: u64) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = match open() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut left = len;
        while left > 0 {
            let n = CHUNK.min(left);
            // read_to_end into spare capacity: no zero-filling of the buffer.
            let mut buf = Vec::with_capacity(n as usize);
            let r = match (&mut reader).take(n).read_to_end(&mut buf) {
                Ok(k) if k as u64 == n => Ok(Bytes::from(buf)),
                Ok(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than its recorded size",
                )),
                Err(e) => Err(e),
            };
            let failed = r.is_err();
            if tx.blocking_send(r).is_err() || failed {
                return; // client went away, or the read failed (reported in the stream)
            }
            left -= n;
        }
    });
    rx
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let opener = match this {
            Body::FileRange { file, offset, len } => {
                Some((file.take().map(|f| file_opener(f, *offset)), *len))
            }
            Body::Stream { open, len } => Some((open.take(), *len)),
            _ => None,
        };
        if let Some((open, len)) = opener {
            *this = match open {
                Some(open) if len > 0 => Body::File {
                    rx: start_reader(open, len),
                    remaining: len,
                },
                _ => Body::Empty,
            };
        }
        match this {
            Body::FileRange { .. } | Body::Stream { .. } => Poll::Ready(None),
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::File { rx, remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(Ok(b))) => {
                        *remaining = remaining.saturating_sub(b.len() as u64);
                        Poll::Ready(Some(Ok(Frame::data(b))))
                    }
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob reader stopped early",
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::FileRange { len, .. } | Body::Stream { len, .. } => *len == 0,
            Body::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::FileRange { len, .. } | Body::Stream { len, .. } => SizeHint::with_exact(*len),
            Body::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Range {
    /// No (usable) range: send everything with 200.
    Full,
    /// Send `start..=end` with 206.
    Part { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Does a `Range` apply, given the request's `If-Range` and the representation's strong
/// `ETag` (RFC 9110 §13.1.5)? Without `If-Range`, yes. With one, only when it is that exact
/// entity tag: a weak tag never matches, and a date never does either (the server sends no
/// `Last-Modified`), so the client gets the whole, current representation with `200`.
pub fn if_range_matches(if_range: Option<&str>, etag: Option<&str>) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(v) if v.starts_with('"') => etag == Some(v),
        Some(_) => false,
    }
}

/// Parses a single-range `bytes=` header: `N-`, `N-M`, `-S`. Malformed headers and multiple
/// ranges are ignored (RFC 9110 allows serving the whole representation instead).
pub fn parse_range(h: Option<&str>, len: u64) -> Range {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Full;
    };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Range::Full,
        (true, false) => match num(b) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if len == 0 => Range::Unsatisfiable,
            Some(s) => Range::Part {
                start: len.saturating_sub(s),
                end: len - 1,
            },
            None => Range::Full,
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return Range::Full;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) if e >= start => e,
                    _ => return Range::Full,
                }
            };
            if start >= len {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(
            parse_range(Some("bytes=2-"), 10),
            Range::Part { start: 2, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-4"), 10),
            Range::Part { start: 2, end: 4 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-400"), 10),
            Range::Part { start: 2, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            Range::Part { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            Range::Part { start: 0, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Range::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Range::Full);
    }

    #[test]
    fn if_range() {
        let tag = Some("\"sha256:ab\"");
        assert!(if_range_matches(None, tag));
        assert!(if_range_matches(Some("\"sha256:ab\""), tag));
        assert!(!if_range_matches(Some("\"sha256:cd\""), tag));
        assert!(!if_range_matches(Some("W/\"sha256:ab\""), tag));
        assert!(!if_range_matches(
            Some("Fri, 27 Nov 2026 02:30:00 GMT"),
            tag
        ));
        assert!(!if_range_matches(Some("\"x\""), None));
    }
}
