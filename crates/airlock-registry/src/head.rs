//! Request heads: parsing a raw HTTP/1.x head into an [`http::Request`] (the plain-HTTP path,
//! [`crate::plain`]) and the checks every request passes before a handler sees it, on both the
//! plain and the TLS (hyper) path.
//!
//! The checks refuse what lets two parties read one byte stream differently (request
//! smuggling): more than one `Content-Length`, `Content-Length` together with
//! `Transfer-Encoding`, a missing or repeated `Host` on HTTP/1.1, a `Host` that is not an
//! authority (`host[:port]`), and a repeated `Range`. Such requests get `400` and the
//! connection is closed. All functions here are pure, so they can be fuzzed
//! (`fuzz/fuzz_targets/registry_head.rs`).

use http::{HeaderMap, Request, Version};

/// Largest request head accepted, in bytes (request line, fields and the blank line).
pub const MAX_HEAD: usize = 64 << 10;
/// Most header fields accepted in one head.
pub const MAX_FIELDS: usize = 64;

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x, or a field the `http` crate does not accept: `400`.
    Malformed,
    /// More than [`MAX_HEAD`] bytes or [`MAX_FIELDS`] fields: `431`.
    TooLarge,
    /// Parsed, but ambiguous framing or authority: `400` (see [`problem`]).
    Refused(&'static str),
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read more; `Ok(Some((req,
/// n)))`: a request whose head is the first `n` bytes. The size limit is exact: a head of
/// [`MAX_HEAD`] bytes is accepted whatever else is buffered behind it, one byte more is not.
pub fn parse(buf: &[u8]) -> Result<Option<(Request<()>, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut fields);
    let n = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut b = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(version);
    for h in parsed.headers.iter() {
        b = b.header(h.name, h.value);
    }
    let req = b.body(()).map_err(|_| HeadError::Malformed)?;
    if let Some(why) = problem(req.headers(), req.version()) {
        return Err(HeadError::Refused(why));
    }
    Ok(Some((req, n)))
}

/// What is wrong with a request's fields, if anything (see the module docs). Shared by the
/// plain and the hyper path.
pub fn problem(h: &HeaderMap, version: Version) -> Option<&'static str> {
    let count = |name: &str| h.get_all(name).iter().count();
    if count("content-length") > 1 {
        return Some("more than one Content-Length");
    }
    if h.contains_key("content-length") && h.contains_key("transfer-encoding") {
        return Some("both Content-Length and Transfer-Encoding");
    }
    match count("host") {
        0 if version == Version::HTTP_11 => return Some("no Host"),
        0 => {}
        1 => {
            let ok = h
                .get("host")
                .and_then(|v| v.to_str().ok())
                .is_some_and(authority_ok);
            if !ok {
                return Some("Host is not host[:port]");
            }
        }
        _ => return Some("more than one Host"),
    }
    if count("range") > 1 {
        return Some("more than one Range");
    }
    None
}

/// Is `s` an authority as a `Host` field may carry it: a DNS name or IPv4 address
/// (`[A-Za-z0-9.-]`), or a bracketed IPv6 literal, with an optional decimal port? Nothing
/// else (no user info, path, `<`, `>`, `?`), so it can be pasted into a URL.
pub fn authority_ok(s: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit());
    if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let v6_ok = !v6.is_empty()
            && v6
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.');
        return v6_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        && port.is_none_or(port_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(extra: &str) -> String {
        format!("GET /v2/ HTTP/1.1\r\nHost: a\r\n{extra}\r\n")
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for extra in [
            "Content-Length: 0\r\nContent-Length: 5\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Host: b\r\n",
            "Range: bytes=0-1\r\nRange: bytes=2-3\r\n",
        ] {
            assert!(
                matches!(parse(head(extra).as_bytes()), Err(HeadError::Refused(_))),
                "{extra:?}"
            );
        }
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(HeadError::Refused("no Host"))
        ));
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a<b>?c\r\n\r\n"),
            Err(HeadError::Refused(_))
        ));
    }

    #[test]
    fn head_limit_is_exact() {
        let base = head("X-Pad: \r\n");
        let pad = MAX_HEAD - base.len();
        let exact = head(&format!("X-Pad: {}\r\n", "a".repeat(pad)));
        assert_eq!(exact.len(), MAX_HEAD);
        let (_, n) = parse(exact.as_bytes()).unwrap().unwrap();
        assert_eq!(n, MAX_HEAD);
        let over = head(&format!("X-Pad: {}\r\n", "a".repeat(pad + 1)));
        assert!(matches!(parse(over.as_bytes()), Err(HeadError::TooLarge)));
        // Incomplete and already at the limit: refused without waiting for more.
        assert!(matches!(
            parse(&over.as_bytes()[..MAX_HEAD]),
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(parse(&exact.as_bytes()[..MAX_HEAD - 1]), Ok(None)));
    }

    #[test]
    fn authorities() {
        for ok in ["a", "127.0.0.1:5000", "airlock.rack", "[::1]", "[::1]:80"] {
            assert!(authority_ok(ok), "{ok}");
        }
        for bad in [
            "", "a:", "a:123456", "a b", "a/b", "<x>", "a?b", "u@h", "[::1", "[]:1",
        ] {
            assert!(!authority_ok(bad), "{bad}");
        }
    }
}
