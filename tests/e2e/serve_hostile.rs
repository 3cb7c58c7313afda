//! `airlockd serve --listen` against hostile clients, each test reproducing one attack and
//! checking that it is refused: slow-header trickling (total head deadline), too many
//! connections (503), control characters in Hugging Face revisions, request smuggling shapes,
//! `If-Range`, writes to `/metrics` and `/healthz`, a hostile `Host` in the tree API's `Link`,
//! the exact head size limit, credential checks cached per connection, invented methods in
//! metric labels, and a `.deb` whose control file holds a second paragraph. 127.0.0.1 only.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use airlock_e2e::*;

use crate::serve::{body, curl, header, served, status, Serving, IMAGE, MODEL};

/// Sends `req` on a fresh connection and reads until the server closes it (at most 10 s).
fn raw(addr: &str, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status codes of every response in `text` (a connection's whole output).
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Has the server closed `s` (EOF or reset)? `s` must be non-blocking.
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 before the close
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// One metric's value from `/metrics` (the first sample whose line starts with `prefix`).
fn metric(addr: &str, prefix: &str) -> f64 {
    let text = raw(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
}

/// `GET URL` for bytes 0-3 with `If-Range: VALIDATOR`, body discarded.
fn ranged(f: &Fixture, url: &str, validator: &str) -> Run {
    curl(
        f,
        &[
            "-o",
            "/dev/null",
            "-H",
            "Range: bytes=0-3",
            "-H",
            &format!("If-Range: {validator}"),
            url,
        ],
    )
}

#[test]
fn serve_hostile_slow_headers_do_not_starve_clients_and_are_cut_at_a_total_deadline() {
    const CONNS: usize = 500;
    const DEADLINE: Duration = Duration::from_secs(3);
    const TICK: Duration = Duration::from_millis(250);
    let f = served();
    let s = Serving::start(&f, &["--head-timeout", "3s"]);
    let manifest = format!(
        "GET /v2/{IMAGE}/manifests/v1 HTTP/1.1\r\nHost: t\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    // 500 connections that each send one more header byte every second: a per-read timeout
    // would never fire; the total deadline must, counted from each connection's start.
    let prefix = b"GET /v2/ HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    let start = Instant::now();
    let mut slow: Vec<(TcpStream, Instant, usize)> = (0..CONNS)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.write_all(&prefix[..1]).unwrap();
            c.set_nonblocking(true).unwrap();
            (c, Instant::now(), 1)
        })
        .collect();
    let opened = start.elapsed();
    let mut lifetimes: Vec<Option<(Duration, usize)>> = vec![None; CONNS];
    let mut pulls = Vec::new();
    let mut ticks = 0u32;
    while lifetimes.iter().any(Option::is_none) && ticks < 40 {
        std::thread::sleep(TICK);
        ticks += 1;
        for (i, (c, t0, sent)) in slow.iter_mut().enumerate() {
            if lifetimes[i].is_some() {
                continue;
            }
            if closed(c) {
                lifetimes[i] = Some((t0.elapsed(), *sent));
            } else if t0.elapsed() >= Duration::from_secs(*sent as u64) {
                // One byte per second of the connection's life.
                let byte = prefix.get(*sent).copied().unwrap_or(b'a');
                if c.write(&[byte]).is_ok() {
                    *sent += 1;
                }
            }
        }
        // While most tricklers still hold their connections, a normal client gets its
        // manifest promptly.
        if lifetimes.iter().filter(|l| l.is_none()).count() > CONNS * 9 / 10 {
            let t = Instant::now();
            let r = raw(&s.addr, manifest.as_bytes());
            assert_eq!(statuses(&r), [200], "{r}");
            pulls.push(t.elapsed());
        }
    }
    let still_open = lifetimes.iter().filter(|l| l.is_none()).count();
    let longest = lifetimes
        .iter()
        .flatten()
        .map(|l| l.0)
        .max()
        .unwrap_or_default();
    let fewest_bytes = lifetimes.iter().flatten().map(|l| l.1).min().unwrap_or(0);
    let worst = pulls.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{CONNS} trickling connections opened in {opened:?}; {} manifest pulls meanwhile, \
         slowest {worst:?}; longest trickler lived {longest:?} (deadline {DEADLINE:?}); \
         every trickler sent at least {fewest_bytes} bytes, one a second",
        pulls.len()
    );
    assert_eq!(still_open, 0, "connections still open after the deadline");
    assert!(pulls.len() >= 3, "too few pulls while trickling: {pulls:?}");
    assert!(worst < Duration::from_secs(1), "manifest took {worst:?}");
    assert!(
        longest < DEADLINE + Duration::from_millis(1500),
        "a trickler lived {longest:?}"
    );
    assert!(
        fewest_bytes >= 3,
        "the tricklers kept sending up to the deadline"
    );
}

#[test]
fn serve_hostile_connections_beyond_the_cap_get_503() {
    let f = served();
    let s = Serving::start(&f, &["--max-connections", "4"]);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = raw(
        &s.addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    assert!(r.ends_with("too many connections; retry later\n"), "{r}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let r = raw(
        &s.addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&r), [200], "{r}");
    assert_eq!(metric(&s.addr, "airlock_http_busy_total"), 1.0);
}

#[test]
fn serve_hostile_control_characters_in_hf_revisions_are_400_not_a_dropped_connection() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    for path in [
        format!("/api/models/{MODEL}/revision/%0a"),
        format!("/api/models/{MODEL}/tree/%0a"),
        format!("/api/models/{MODEL}/tree/%0d%0aX-Evil:%201/config.json"),
        format!("/{MODEL}/resolve/%0a/config.json"),
        format!("/{MODEL}/resolve/..%2f..%2fx/config.json"),
        format!("/api/models/{MODEL}/revision/%7f"),
    ] {
        let r = curl(&f, &[&format!("{base}{path}")]);
        assert_eq!(status(&r), 400, "{path}: {}", r.stdout);
        assert_eq!(
            header(&r, "x-error-code"),
            Some("RevisionNotFound"),
            "{path}"
        );
        assert_eq!(header(&r, "x-evil"), None);
    }
    // A file name outside visible ASCII is quoted into X-Error-Message, escaped.
    let r = curl(&f, &[&format!("{base}/{MODEL}/resolve/main/%C3%A9.json")]);
    assert_eq!(status(&r), 404, "{}", r.stdout);
    assert!(header(&r, "x-error-message")
        .unwrap()
        .starts_with("%C3%A9.json does not exist"));
    // The server is still there.
    let r = curl(&f, &[&format!("{base}/api/models/{MODEL}/revision/main")]);
    assert_eq!(status(&r), 200);
}

#[test]
fn serve_hostile_smuggling_shapes_get_400_and_close() {
    let f = served();
    let s = Serving::start(&f, &[]);
    // Two Content-Length headers: the 40 bytes behind the head must not become a request.
    let second = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{second}",
        second.len()
    );
    let r = raw(&s.addr, req.as_bytes());
    assert_eq!(statuses(&r), [400], "{r}");
    assert!(!r.contains("airlock_http"), "{r}");
    for head in [
        "GET /healthz HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a<b>?c\r\n\r\n",
    ] {
        let r = raw(&s.addr, format!("{head}{second}").as_bytes());
        assert_eq!(statuses(&r), [400], "{head:?}: {r}");
        assert!(r.contains("connection: close"), "{r}");
    }
    // HTTP/1.0 without Host is still fine.
    let r = raw(&s.addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(statuses(&r), [200], "{r}");
}

#[test]
fn serve_hostile_if_range_with_another_validator_gets_the_whole_file() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    // A blob: the config of the image (its digest from the manifest).
    let m = curl(
        &f,
        &[
            "-H",
            "Accept: */*",
            &format!("{base}/v2/{IMAGE}/manifests/v1"),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(body(&m)).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .or(manifest["manifests"][0]["digest"].as_str())
        .unwrap()
        .to_string();
    let blob_url = if manifest["layers"].is_array() {
        format!("{base}/v2/{IMAGE}/blobs/{layer}")
    } else {
        format!("{base}/v2/{IMAGE}/manifests/{layer}")
    };
    let hf_url = format!("{base}/{MODEL}/resolve/main/config.json");
    for url in [blob_url, hf_url] {
        let full = curl(&f, &["-o", "/dev/null", &url]);
        let etag = header(&full, "etag").unwrap().to_string();
        let len: u64 = header(&full, "content-length").unwrap().parse().unwrap();
        assert!(len > 4, "{url}");
        let get = |if_range: &str| ranged(&f, &url, if_range);
        let r = get(&etag);
        assert_eq!(status(&r), 206, "{url}: matching If-Range");
        for other in [
            "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"",
            &format!("W/{etag}"),
            "Fri, 27 Nov 2026 02:30:00 GMT",
        ] {
            let r = get(other);
            assert_eq!(status(&r), 200, "{url}: If-Range {other}");
            assert_eq!(header(&r, "content-length"), Some(len.to_string().as_str()));
        }
    }
}

#[test]
fn serve_hostile_writes_to_metrics_and_healthz_are_405_and_methods_do_not_grow_metrics() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    for path in ["/metrics", "/healthz"] {
        for method in ["PUT", "POST", "DELETE", "PATCH"] {
            let r = curl(&f, &["-X", method, &format!("{base}{path}")]);
            assert_eq!(status(&r), 405, "{method} {path}");
            assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
        }
    }
    for i in 0..50 {
        let r = raw(
            &s.addr,
            format!("INVENTED{i} /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(statuses(&r), [405], "{r}");
    }
    let text = raw(
        &s.addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(!text.contains("INVENTED"), "{text}");
    assert!(!text.contains("method=\"PUT\""), "{text}");
    let other: f64 = text
        .lines()
        .filter(|l| l.contains("method=\"other\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(other, 58.0, "{text}");
}

#[test]
fn serve_hostile_tree_link_is_built_from_the_public_url_not_a_hostile_host() {
    let f = served();
    let s = Serving::start(&f, &["--public-url", "https://airlock.rack:5000/"]);
    let base = format!("http://{}", s.addr);
    let url = format!("{base}/api/models/{MODEL}/tree/main?recursive=true&limit=1");
    let r = curl(&f, &["-H", "Host: evil<x>?y", &url]);
    assert_eq!(status(&r), 400, "{}", r.stdout);
    let r = curl(&f, &["-H", "Host: other.example:80", &url]);
    assert_eq!(status(&r), 200);
    let link = header(&r, "link").unwrap();
    assert!(
        link.starts_with("<https://airlock.rack:5000/api/models/acme/tiny-model/tree/main?"),
        "{link}"
    );
    // A public URL that is not one is refused at start.
    let bad = airlockd(
        &f,
        &[
            "serve",
            "--data",
            "data",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "http://a<b>/",
        ],
    );
    bad.fails().says(&["--public-url"]);
}

#[test]
fn serve_hostile_head_limit_is_exactly_64_kib() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let with_pad = |n: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(n)
        )
    };
    let fixed = with_pad(0).len();
    let exact = with_pad(65536 - fixed);
    assert_eq!(exact.len(), 65536);
    assert_eq!(statuses(&raw(&s.addr, exact.as_bytes())), [200]);
    let over = with_pad(65536 - fixed + 1);
    assert_eq!(statuses(&raw(&s.addr, over.as_bytes())), [431]);
    // 100 KiB without an end: refused at 64 KiB, not 128.
    let r = raw(&s.addr, with_pad(100 << 10).as_bytes());
    assert_eq!(statuses(&r), [431]);
}

#[test]
fn serve_hostile_credential_checks_run_once_per_connection() {
    let f = served();
    f.sh("htpasswd -nbB -C 10 alice s3cret-pw > users").ok();
    let s = Serving::start(&f, &["--auth", "oci=users"]);
    // 10 pipelined requests with the same Authorization on one connection: one bcrypt check.
    let auth = "Authorization: Basic YWxpY2U6czNjcmV0LXB3\r\n"; // alice:s3cret-pw
    let mut req = String::new();
    for i in 0..10 {
        let close = if i == 9 { "Connection: close\r\n" } else { "" };
        req.push_str(&format!(
            "GET /v2/ HTTP/1.1\r\nHost: t\r\n{auth}{close}\r\n"
        ));
    }
    let t = Instant::now();
    let r = raw(&s.addr, req.as_bytes());
    let took = t.elapsed();
    assert_eq!(statuses(&r), [200; 10], "{r}");
    assert_eq!(metric(&s.addr, "airlock_auth_checks_total"), 1.0);
    // A wrong password is also checked once per connection, and refused every time.
    let bad = "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"; // alice:wrong
    let req = format!(
        "GET /v2/ HTTP/1.1\r\nHost: t\r\n{bad}\r\nGET /v2/ HTTP/1.1\r\nHost: t\r\n{bad}Connection: close\r\n\r\n"
    );
    assert_eq!(statuses(&raw(&s.addr, req.as_bytes())), [401, 401]);
    assert_eq!(metric(&s.addr, "airlock_auth_checks_total"), 2.0);
    // While bcrypt checks run, a request that needs none is answered promptly.
    let checks: Vec<_> = (0..8)
        .map(|i| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let h = format!("alice:wrong{i}");
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
                    b64(h.as_bytes())
                );
                raw(&addr, req.as_bytes())
            })
        })
        .collect();
    let t2 = Instant::now();
    let r = raw(
        &s.addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let healthz = t2.elapsed();
    for c in checks {
        assert_eq!(statuses(&c.join().unwrap()), [401]);
    }
    eprintln!(
        "10 pipelined authorized requests: {took:?}; /healthz during 8 bcrypt checks: {healthz:?}"
    );
    assert_eq!(statuses(&r), [200]);
    assert!(healthz < Duration::from_millis(500), "{healthz:?}");
}

/// Standard base64 (for a basic-auth header).
fn b64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = ((c[0] as u32) << 16)
            | ((*c.get(1).unwrap_or(&0) as u32) << 8)
            | (*c.get(2).unwrap_or(&0) as u32);
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn serve_hostile_deb_with_a_second_control_paragraph_is_left_out() {
    let f = Fixture::new();
    // A good .deb, and one whose control file smuggles a second paragraph (built by hand:
    // dpkg-deb refuses it).
    f.sh(r#"
mkdir -p deb/DEBIAN deb/usr/share/airlock-hello
echo hello > deb/usr/share/airlock-hello/hello.txt
printf 'Package: airlock-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: airlock <ops@example.org>\nDescription: test package\n' > deb/DEBIAN/control
dpkg-deb --root-owner-group --build deb airlock-hello_1.0_all.deb >/dev/null
mkdir evil && cd evil
printf 'Package: airlock-evil\nVersion: 1.0\nArchitecture: all\nDescription: x\n\nPackage: airlock-hello\nVersion: 9.9\nArchitecture: all\nDescription: shadow\n' > control
tar -czf control.tar.gz ./control
echo x > f && tar -czf data.tar.gz ./f
echo 2.0 > debian-binary
ar rc ../airlock-evil_1.0_all.deb debian-binary control.tar.gz data.tar.gz
cd ..
cat >> m.yaml <<YAML
    - name: airlock-hello_1.0_all.deb
      path: ./airlock-hello_1.0_all.deb
    - name: airlock-evil_1.0_all.deb
      path: ./airlock-evil_1.0_all.deb
YAML
"#)
    .ok();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    // Packed with scanning, the package is an `invalid` finding and the import is refused.
    let scanned = f.pack("scanned", &[]).remove(0);
    let r = airlockd(&f, &["--json", "import", "--data", "data", &scanned]).refused();
    let reason = r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("deb/control"), "{reason}");
    // Packed without scanning, it reaches the appliance, which leaves it out of the index.
    let v = f.pack("out", &["--no-scan"]).remove(0);
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    let r = curl(
        &f,
        &[&format!(
            "{base}/apt/dists/airlock/main/binary-amd64/Packages"
        )],
    );
    assert_eq!(status(&r), 200);
    let packages = body(&r);
    assert!(packages.contains("Package: airlock-hello\n"), "{packages}");
    assert!(!packages.contains("airlock-evil"), "{packages}");
    assert!(!packages.contains("9.9"), "{packages}");
    assert_eq!(metric(&s.addr, "airlock_apt_refused_packages"), 1.0);
    let log = std::fs::read_to_string(f.p("serve.log")).unwrap();
    assert!(log.contains("more than one paragraph"), "{log}");
    // If-Range on a pool file: another validator gets the whole file.
    let url = format!("{base}/apt/pool/main/airlock-hello_1.0_all.deb");
    let full = curl(&f, &["-o", "/dev/null", &url]);
    let etag = header(&full, "etag").unwrap().to_string();
    let part = |v: &str| ranged(&f, &url, v);
    assert_eq!(status(&part(&etag)), 206);
    assert_eq!(status(&part("\"sha256:00\"")), 200);
    assert_eq!(status(&part("Fri, 27 Nov 2026 02:30:00 GMT")), 200);
}

#[test]
fn serve_hostile_slow_headers_over_tls_are_cut_at_a_total_deadline() {
    let f = served();
    let s = Serving::start(&f, &["--tls", "--head-timeout", "2s"]);
    // One header byte every 0.4 s over TLS (hyper's header_read_timeout): closed at about 2 s.
    let script = format!(
        r#"
import socket, ssl, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
host, port = "{addr}".rsplit(":", 1)
ssl_sock = ctx.wrap_socket(socket.create_connection((host, int(port))))
start = time.monotonic()
head = b"GET /v2/ HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
sent = 0
ssl_sock.settimeout(0.4)
while time.monotonic() - start < 10:
    try:
        ssl_sock.send(head[sent:sent + 1])
        sent += 1
        if ssl_sock.recv(4096) in (b"",):
            break
    except socket.timeout:
        continue
    except (ssl.SSLError, OSError):
        break
print(f"{{time.monotonic() - start:.2f}} {{sent}}")
"#,
        addr = s.addr
    );
    std::fs::write(f.p("trickle.py"), script).unwrap();
    let out = run_in(f.path(), "python3", &["trickle.py"]).ok().stdout;
    let mut it = out.split_whitespace();
    let secs: f64 = it.next().unwrap().parse().unwrap();
    let sent: u32 = it.next().unwrap().parse().unwrap();
    eprintln!("TLS trickler closed after {secs} s, {sent} bytes sent");
    assert!(sent >= 4, "the trickler kept sending: {out}");
    assert!(secs < 3.5, "TLS head deadline not total: {out}");
}
