//! The plain-HTTP/1.1 connection loop: the same handlers as the hyper path (TLS connections
//! use hyper), but file bodies go from the blob file to the socket with `sendfile(2)`, so blob
//! bytes are never copied through user space.
//!
//! Deliberately small: requests are `GET`/`HEAD` without bodies (anything with a body gets its
//! answer, a 405 for writes, and the connection is closed instead of reading the body);
//! headers are at most [`MAX_HEAD`] bytes and 64 fields, read within [`HEAD_TIMEOUT`];
//! keep-alive for HTTP/1.1 unless `Connection: close`; pipelined requests are answered in
//! order. Every response carries `Content-Length`.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::Body;
use crate::State;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 64 << 10;
/// Time allowed for a request head to arrive (also the keep-alive idle timeout).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one connection until the client closes it, an error, or shutdown.
pub(crate) async fn serve(
    state: Arc<State>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 << 10);
    loop {
        // Read one request head.
        let end = loop {
            // Parse what has arrived: a complete head, more needed, or not HTTP at all (a TLS
            // ClientHello, say), which is answered at once rather than waited on.
            let mut headers = [httparse::EMPTY_HEADER; 64];
            match httparse::Request::new(&mut headers).parse(&buf) {
                Ok(httparse::Status::Complete(n)) => break n,
                Ok(httparse::Status::Partial) => {}
                Err(_) => {
                    let _ = stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return Ok(());
                }
            }
            if buf.len() > MAX_HEAD {
                let _ = stream
                    .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                return Ok(());
            }
            if *stop.borrow() && buf.is_empty() {
                return Ok(());
            }
            let n = tokio::select! {
                r = tokio::time::timeout(HEAD_TIMEOUT, stream.read_buf(&mut buf)) => match r {
                    Ok(r) => r?,
                    Err(_) => return Ok(()),
                },
                _ = stop.changed(), if buf.is_empty() => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let req = match parsed.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(_)) => {
                let mut b = Request::builder()
                    .method(parsed.method.unwrap_or("GET"))
                    .uri(parsed.path.unwrap_or("/"))
                    .version(if parsed.version == Some(0) {
                        Version::HTTP_10
                    } else {
                        Version::HTTP_11
                    });
                for h in parsed.headers.iter() {
                    b = b.header(h.name, h.value);
                }
                b.body(())
            }
            _ => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                return Ok(());
            }
        };
        buf.advance(end);
        let Ok(req) = req else {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            return Ok(());
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
        let resp = crate::handle(&state, &req, peer);
        let keep = keep && !*stop.borrow();
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
        Body::File { .. } => {
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
