//! The plain-HTTP/1.1 connection loop: the same handlers as the hyper path (TLS connections
//! use hyper), but file bodies go from the blob file to the socket with `sendfile(2)`, so blob
//! bytes are never copied through user space (blobs of a store without local files are
//! streamed).
//!
//! Deliberately small: requests are `GET`/`HEAD` without bodies (anything with a body gets its
//! answer, a 405 for writes, and the connection is closed instead of reading the body);
//! heads are parsed and checked by [`crate::head`] (at most [`crate::head::MAX_HEAD`] bytes and 64 fields,
//! no ambiguous framing); each head must arrive in full within the head timeout, counted from
//! when the server starts waiting for it (also the keep-alive idle timeout), however slowly
//! its bytes trickle in; keep-alive for HTTP/1.1 unless `Connection: close`; pipelined
//! requests are answered in order. Every response carries `Content-Length`.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{Response, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::Body;
use crate::head::HeadError;
use crate::State;

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// What waiting for the next request head ended with.
enum Next {
    Request(Box<http::Request<()>>),
    /// Close the connection (after writing these bytes, if any).
    Close(&'static [u8]),
}

/// Reads the next request head from `stream` into `buf` (which may already hold pipelined
/// bytes) before `deadline`. A head still incomplete at the deadline gets `408`, an idle
/// connection is closed silently. Re-parses only when a read brought a line end (or on the
/// first bytes, so non-HTTP such as a TLS ClientHello is answered at once, and at the size
/// limit): parsing is linear in what is buffered, and a head can only complete at a line end.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    stop: &mut watch::Receiver<bool>,
    deadline: tokio::time::Instant,
) -> std::io::Result<Next> {
    let mut parse_now = true;
    loop {
        if parse_now {
            match crate::head::parse(buf) {
                Ok(Some((req, n))) => {
                    buf.advance(n);
                    return Ok(Next::Request(Box::new(req)));
                }
                Ok(None) => {}
                Err(HeadError::TooLarge) => return Ok(Next::Close(TOO_LARGE)),
                Err(HeadError::Malformed) => return Ok(Next::Close(BAD_REQUEST)),
                Err(HeadError::Refused(why)) => {
                    tracing::debug!(why, "request refused");
                    return Ok(Next::Close(BAD_REQUEST));
                }
            }
        }
        if *stop.borrow() && buf.is_empty() {
            return Ok(Next::Close(b""));
        }
        let before = buf.len();
        let n = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read_buf(buf)) => match r {
                Ok(r) => r?,
                Err(_) if before == 0 => return Ok(Next::Close(b"")),
                Err(_) => return Ok(Next::Close(TIMEOUT)),
            },
            _ = stop.changed(), if buf.is_empty() => return Ok(Next::Close(b"")),
        };
        if n == 0 {
            return Ok(Next::Close(b""));
        }
        parse_now =
            before == 0 || buf[before..].contains(&b'\n') || buf.len() >= crate::head::MAX_HEAD;
    }
}

/// Serves one connection until the client closes it, an error, or shutdown.
pub(crate) async fn serve(
    state: Arc<State>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    head_timeout: Duration,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 << 10);
    let auth_cache = Mutex::new(crate::AuthCache::default());
    loop {
        let deadline = tokio::time::Instant::now() + head_timeout;
        let req = match read_head(&mut stream, &mut buf, &mut stop, deadline).await? {
            Next::Request(r) => r,
            Next::Close(answer) => {
                if !answer.is_empty() {
                    let _ = stream.write_all(answer).await;
                }
                let _ = stream.shutdown().await;
                return Ok(());
            }
        };
        let has_body = req.headers().contains_key("transfer-encoding")
            || req
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        let close_asked = req
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        let keep = req.version() == Version::HTTP_11 && !close_asked && !has_body;
        let head = req.method() == http::Method::HEAD;
        let resp = crate::respond(&state, &req, peer, &auth_cache).await;
        let keep = keep && !*stop.borrow() && !crate::closes(&resp);
        write_response(&mut stream, resp, head, keep).await?;
        if !keep {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

async fn write_response(
    stream: &mut TcpStream,
    resp: Response<Body>,
    head: bool,
    keep: bool,
) -> std::io::Result<()> {
    let (parts, mut body) = resp.into_parts();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (k, v) in &parts.headers {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key("content-length") {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(httpdate_header().as_bytes());
    if !keep {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if head {
        return stream.write_all(&out).await;
    }
    match &mut body {
        Body::Empty => stream.write_all(&out).await,
        Body::Full(b) => {
            if let Some(b) = b.take() {
                out.extend_from_slice(&b);
            }
            stream.write_all(&out).await
        }
        Body::FileRange { file, offset, len } => {
            stream.write_all(&out).await?;
            let file = file.take().expect("unstarted file body");
            let mut off = *offset;
            let end = *offset + *len;
            while off < end {
                let want = (end - off).min(1 << 30) as usize;
                let sent = stream
                    .async_io(Interest::WRITABLE, || {
                        rustix::fs::sendfile(stream.as_fd(), file.as_fd(), Some(&mut off), want)
                            .map_err(std::io::Error::from)
                    })
                    .await?;
                if sent == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than its recorded size",
                    ));
                }
            }
            Ok(())
        }
        Body::Stream { .. } | Body::File { .. } => {
            stream.write_all(&out).await?;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    stream.write_all(&data).await?;
                }
            }
            Ok(())
        }
    }
}

/// `date: <IMF-fixdate>\r\n`
fn httpdate_header() -> String {
    let t = airlock_core::time::now();
    format!("date: {}\r\n", crate::apt::http_date(t))
}
