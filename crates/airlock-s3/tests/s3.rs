//! The S3 backend against real S3 servers on 127.0.0.1, started by each test: moto (the Python
//! AWS mock, in server mode, from the test venv) and s3s-fs (an S3 server over a directory,
//! installed into `target/tools` by `scripts/peers.sh`). The same checks run against both.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_core::{Digest, Sha256};
use airlock_s3::{create_bucket, Credentials, S3Config, S3Store};
use airlock_store::{BlobBackend, BlobStore, StoreError};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
    creds: Credentials,
    /// Does the server check request signatures?
    authenticates: bool,
    /// Does the server compare a PUT's body with its `x-amz-checksum-sha256`?
    checks_sha256: bool,
    /// Does the server implement ListMultipartUploads?
    lists_uploads: bool,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cmd` (which listens on `port`) and waits until it accepts connections.
fn start(
    mut cmd: Command,
    port: u16,
    what: &str,
    dir: tempfile::TempDir,
) -> (Child, String, tempfile::TempDir) {
    let log = dir.path().join("server.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "{what} did not listen on port {port} within 60 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, format!("http://127.0.0.1:{port}"), dir)
}

/// moto in server mode, from the test venv (`AIRLOCK_TEST_VENV`, else `.venv`).
fn moto() -> Server {
    let venv = std::env::var_os("AIRLOCK_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/test.sh, which creates the test venv with moto[server]",
        py.display()
    );
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&py);
    cmd.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .current_dir(dir.path());
    let (child, endpoint, dir) = start(cmd, port, "moto", dir);
    Server {
        child,
        endpoint,
        // moto takes any keys: it does not check signatures unless its IAM emulation is on.
        creds: Credentials {
            access_key: "testing".into(),
            secret_key: "testing".into(),
            session_token: None,
        },
        authenticates: false,
        // moto 5 ignores x-amz-checksum-sha256 (it would store it unchecked, were
        // x-amz-sdk-checksum-algorithm sent too).
        checks_sha256: false,
        lists_uploads: true,
        _dir: dir,
    }
}

/// s3s-fs over a temp directory (`AIRLOCK_S3S_FS`, else `target/tools/bin/s3s-fs`).
fn s3s_fs() -> Server {
    let bin = std::env::var_os("AIRLOCK_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/tools/bin/s3s-fs"));
    assert!(
        bin.exists(),
        "{} missing: run scripts/test.sh, whose peer setup installs it \
         (cargo install --root target/tools s3s-fs --features binary)",
        bin.display()
    );
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let creds = Credentials {
        access_key: "AKIAAIRLOCKTEST".into(),
        secret_key: "airlock-test-secret-key".into(),
        session_token: None,
    };
    let mut cmd = Command::new(&bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", &creds.access_key])
        .args(["--secret-key", &creds.secret_key])
        .arg(&root);
    let (child, endpoint, dir) = start(cmd, port, "s3s-fs", dir);
    Server {
        child,
        endpoint,
        creds,
        authenticates: true,
        checks_sha256: true,
        // s3s-fs 0.14 answers ListMultipartUploads with NotImplemented.
        lists_uploads: false,
        _dir: dir,
    }
}

fn config(server: &Server, bucket: &str, prefix: &str) -> S3Config {
    S3Config::parse_url(&format!("s3://{bucket}/{prefix}"), &server.endpoint, None).unwrap()
}

/// A store at `prefix` of bucket `airlock`.
fn store(server: &Server, prefix: &str, spool: &Path) -> S3Store {
    S3Store::open(
        config(server, "airlock", prefix),
        server.creds.clone(),
        spool,
    )
    .unwrap()
}

/// `n` bytes of a deterministic pseudo-random stream, produced in pieces.
fn generate(n: u64, mut piece: impl FnMut(&[u8])) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        for c in buf[..k].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        piece(&buf[..k]);
        left -= k as u64;
    }
}

fn put(s: &BlobStore, bytes: &[u8]) -> Digest {
    let d = Sha256::digest(bytes);
    let mut w = s.writer().unwrap();
    w.write_all(bytes).unwrap();
    w.commit(&d, Some(bytes.len() as u64)).unwrap();
    d
}

/// Starts a multipart upload of `key` in bucket `airlock` and leaves it unfinished, as an
/// interrupted put would.
fn start_multipart_upload(server: &Server, key: &str) {
    use rusty_s3::S3Action;
    let bucket = rusty_s3::Bucket::new(
        server.endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        "airlock",
        "us-east-1",
    )
    .unwrap();
    let creds = rusty_s3::Credentials::new(&server.creds.access_key, &server.creds.secret_key);
    let url = bucket
        .create_multipart_upload(Some(&creds), key)
        .sign(Duration::from_secs(60));
    let resp = ureq::post(url.as_str()).send_empty().unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

fn read_from(s: &BlobStore, d: &Digest, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    s.open_at(d, offset).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn spool_is_empty(spool: &Path) -> bool {
    std::fs::read_dir(spool).unwrap().next().is_none()
}

/// Everything the backend must do, against one server.
fn suite(server: &Server) {
    let spool = tempfile::tempdir().unwrap();
    let spool = spool.path();
    create_bucket(&config(server, "airlock", ""), &server.creds).unwrap();

    // The behaviour every backend shares; corruption overwrites the object behind its back.
    let raw = store(server, "conformance/a", spool);
    let s = BlobStore::with_backend(Arc::new(raw.clone()));
    airlock_store::conformance::exercise(&s, |d, b| {
        raw.put_object(&format!("blobs/sha256/{}", d.hex()), b)
            .unwrap()
    });
    assert!(spool_is_empty(spool));

    // A sub-store (how the appliance keeps the parts of a split blob): its own keys under
    // the parent's prefix, invisible to the parent's listing, and its clean-up leaves the
    // parent's spool alone.
    let sub_spool = tempfile::tempdir().unwrap();
    let parent_raw = store(server, "withsub", sub_spool.path());
    let parent = BlobStore::with_backend(Arc::new(parent_raw.clone()));
    let whole = put(&parent, b"whole blob");
    let sub_raw = parent_raw.sub("staging-parts/abc").unwrap();
    let sub = BlobStore::with_backend(Arc::new(sub_raw.clone()));
    let part = put(&sub, b"one part");
    assert_eq!(
        sub_raw.locate(&part),
        PathBuf::from(format!(
            "s3://airlock/withsub/staging-parts/abc/blobs/sha256/{}",
            part.hex()
        ))
    );
    assert_eq!(parent.list().unwrap(), vec![whole]);
    assert_eq!(sub.list().unwrap(), vec![part]);
    assert!(sub.contains(&part, 8) && !parent.contains(&part, 8));
    let mut pending = parent.writer().unwrap();
    pending.write_all(b"in flight").unwrap();
    sub.clean_temp().unwrap();
    pending
        .commit(&Sha256::digest(b"in flight"), Some(9))
        .unwrap();
    assert_eq!(
        parent_raw
            .object_size(&format!("staging-parts/abc/blobs/sha256/{}", part.hex()))
            .unwrap(),
        Some(8)
    );
    assert_eq!(parent_raw.object_size("staging-parts/none").unwrap(), None);
    assert_eq!(
        parent_raw.object_url("quarantine/x"),
        "s3://airlock/withsub/quarantine/x"
    );
    for bad in ["", "/", "a//b", "a/../b", "."] {
        assert!(parent_raw.sub(bad).is_err(), "{bad:?}");
    }
    sub.remove(&part).unwrap();
    assert!(sub.list().unwrap().is_empty());
    assert!(spool_is_empty(&sub_spool.path().join("sub")));

    // Layout, ranged reads, abandoned puts, strays.
    let raw = store(server, "ranges", spool);
    let s = BlobStore::with_backend(Arc::new(raw.clone()));
    let d = put(&s, b"0123456789");
    assert_eq!(
        raw.locate(&d),
        PathBuf::from(format!("s3://airlock/ranges/blobs/sha256/{}", d.hex()))
    );
    assert_eq!(
        raw.describe(),
        format!("s3://airlock/ranges at {}", server.endpoint)
    );
    assert_eq!(raw.local_path(&d), None);
    assert_eq!(read_from(&s, &d, 0), b"0123456789");
    assert_eq!(read_from(&s, &d, 4), b"456789");
    assert_eq!(read_from(&s, &d, 10), b"");
    assert!(s.open_at(&d, 11).is_err());
    assert_eq!(s.size(&Sha256::digest(b"absent")), None);
    let err = s.read(&Sha256::digest(b"absent")).err().unwrap();
    assert!(
        matches!(&err, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    let mut w = s.writer().unwrap();
    w.write_all(b"abandoned").unwrap();
    drop(w);
    assert!(spool_is_empty(spool));
    assert_eq!(s.list().unwrap(), vec![d]);
    assert_eq!(raw.list_keys("").unwrap().len(), 1);
    raw.put_object("blobs/sha256/not-a-digest", b"x").unwrap();
    let strays = raw.strays().unwrap();
    assert_eq!(strays.len(), 1, "{strays:?}");
    assert!(strays[0].contains("not-a-digest"), "{strays:?}");
    assert_eq!(s.list().unwrap(), vec![d]);
    assert_eq!(s.fsck().unwrap().len(), 1);
    std::fs::write(spool.join(".s3-spool-1-1"), b"left over").unwrap();
    assert!(s.clean_temp().unwrap() >= 1);
    assert!(spool_is_empty(spool));
    s.remove(&d).unwrap();
    assert_eq!(s.list().unwrap(), vec![]);

    // Plain objects beside the blobs.
    let raw = store(server, "objects", spool);
    assert_eq!(raw.get_object("catalog/head.json", 100).unwrap(), None);
    raw.put_object("catalog/head.json", b"{\"v\":1}").unwrap();
    raw.put_object("catalog/a b+c.json", b"odd name").unwrap();
    assert_eq!(
        raw.get_object("catalog/head.json", 100).unwrap().unwrap(),
        b"{\"v\":1}"
    );
    assert_eq!(
        raw.get_object("catalog/a b+c.json", 8).unwrap().unwrap(),
        b"odd name"
    );
    assert!(matches!(
        raw.get_object("catalog/head.json", 6),
        Err(StoreError::TooLarge { .. })
    ));
    let mut out = Vec::new();
    assert_eq!(
        raw.get_object_to("catalog/head.json", &mut out, 7).unwrap(),
        Some(7)
    );
    assert_eq!(out, b"{\"v\":1}");
    assert_eq!(
        raw.list_keys("catalog/").unwrap(),
        vec![
            ("catalog/a b+c.json".to_string(), 8),
            ("catalog/head.json".to_string(), 7)
        ]
    );
    raw.delete_object("catalog/head.json").unwrap();
    raw.delete_object("catalog/head.json").unwrap();
    assert_eq!(raw.get_object("catalog/head.json", 100).unwrap(), None);
    // Listing follows continuation tokens (a page holds at most 1000 keys).
    for i in 0..1005 {
        if i % 100 == 0 || i >= 1000 {
            raw.put_object(&format!("many/{i:05}"), b"").unwrap();
        }
    }
    assert_eq!(raw.list_keys("many/").unwrap().len(), 15);

    // x-amz-checksum-sha256: the server checks the body against it, or takes it unchecked.
    let ok = Sha256::digest(b"checked");
    raw.put_object_checked("checked", b"checked", &ok).unwrap();
    assert_eq!(raw.sha256_header_accepted(), Some(true));
    let wrong = raw.put_object_checked("checked-wrong", b"other bytes", &ok);
    if server.checks_sha256 {
        let e = wrong
            .expect_err("a body that does not match its checksum is refused")
            .to_string();
        assert!(e.contains("BadDigest"), "{e}");
        // s3s-fs 0.14 compares only after writing the object, so the refused bytes stay under
        // the key (AWS S3 stores nothing); blob keys are safe anyway, as their bytes were
        // verified before the upload, and fsck re-hashes what is stored.
        raw.delete_object("checked-wrong").unwrap();
    } else {
        wrong.unwrap();
    }

    // A blob over 64 MiB goes up in parts; generated twice rather than held in memory.
    let raw = store(server, "large", spool);
    let s = BlobStore::with_backend(Arc::new(raw.clone()));
    let n = 70u64 << 20;
    let mut h = Sha256::new();
    generate(n, |b| h.update(b));
    let d = h.finish();
    let mut w = s.writer().unwrap();
    generate(n, |b| w.write_all(b).unwrap());
    w.commit(&d, Some(n)).unwrap();
    assert!(spool_is_empty(spool));
    assert_eq!(s.size(&d), Some(n));
    assert_eq!(s.rehash(&d).unwrap(), (d, n));
    // From inside the second part to the end.
    let off = (64u64 << 20) + 12345;
    let mut h = Sha256::new();
    let mut skipped = 0u64;
    generate(n, |b| {
        let start = off.saturating_sub(skipped).min(b.len() as u64) as usize;
        h.update(&b[start..]);
        skipped += b.len() as u64;
    });
    let mut r = s.open_at(&d, off).unwrap();
    let mut h2 = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let k = r.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        h2.update(&buf[..k]);
        got += k as u64;
    }
    assert_eq!(got, n - off);
    assert_eq!(h2.finish(), h.finish());
    assert!(s.fsck().unwrap().is_empty());
    // No multipart upload is left behind; an interrupted one is aborted by clean_temp where the
    // server lists them (elsewhere clean_temp still succeeds).
    assert_eq!(s.clean_temp().unwrap(), 0);
    start_multipart_upload(server, "large/blobs/sha256/interrupted");
    let aborted = usize::from(server.lists_uploads);
    assert_eq!(s.clean_temp().unwrap(), aborted);
    assert_eq!(s.clean_temp().unwrap(), 0);

    // A bucket that does not exist is named at open.
    let cfg = config(server, "no-such-bucket", "x");
    let e = S3Store::open(cfg, server.creds.clone(), spool)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-bucket") && e.contains(&server.endpoint) && e.contains("NoSuchBucket"),
        "{e}"
    );

    // A wrong secret key: the server's error code is in the message.
    if server.authenticates {
        let mut creds = server.creds.clone();
        creds.secret_key.push('x');
        let e = S3Store::open(config(server, "airlock", "x"), creds, spool)
            .unwrap_err()
            .to_string();
        assert!(e.contains("SignatureDoesNotMatch"), "{e}");
        let creds = Credentials {
            access_key: "AKIAUNKNOWN".into(),
            ..server.creds.clone()
        };
        let e = S3Store::open(config(server, "airlock", "x"), creds, spool)
            .unwrap_err()
            .to_string();
        // AWS answers InvalidAccessKeyId; s3s NotSignedUp.
        assert!(
            ["InvalidAccessKeyId", "NotSignedUp"]
                .iter()
                .any(|c| e.contains(c)),
            "{e}"
        );
    }
}

#[test]
fn against_moto() {
    suite(&moto());
}

#[test]
fn against_s3s_fs() {
    suite(&s3s_fs());
}

#[test]
fn nothing_answers() {
    let port = free_port();
    let cfg = S3Config::parse_url("s3://bkt/p", &format!("http://127.0.0.1:{port}"), None).unwrap();
    let creds = Credentials {
        access_key: "a".into(),
        secret_key: "b".into(),
        session_token: None,
    };
    let spool = tempfile::tempdir().unwrap();
    let e = S3Store::open(cfg, creds, spool.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s3://bkt/p") && e.contains(&port.to_string()),
        "{e}"
    );
}

#[test]
fn credentials_from_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = Credentials::from_sources(
        env(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("AWS_SESSION_TOKEN", "T"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(
        (
            c.access_key.as_str(),
            c.secret_key.as_str(),
            c.session_token.as_deref()
        ),
        ("AK", "SK", Some("T"))
    );
    assert!(!format!("{c:?}").contains("SK"));
    assert!(Credentials::from_sources(env(&[("AWS_ACCESS_KEY_ID", "AK")]), None).is_err());

    // ~/.aws/credentials, default profile or AWS_PROFILE.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "# comment\n[default]\naws_access_key_id = DK\naws_secret_access_key=DS\n\n\
         [profile other]\n; comment\naws_access_key_id = OK\naws_secret_access_key = OS\n\
         aws_session_token = OT\n[broken]\naws_access_key_id = BK\n",
    )
    .unwrap();
    let c = Credentials::from_sources(env(&[]), Some(home.clone())).unwrap();
    assert_eq!((c.access_key.as_str(), c.secret_key.as_str()), ("DK", "DS"));
    assert_eq!(c.session_token, None);
    let c =
        Credentials::from_sources(env(&[("AWS_PROFILE", "other")]), Some(home.clone())).unwrap();
    assert_eq!(
        (c.access_key.as_str(), c.session_token.as_deref()),
        ("OK", Some("OT"))
    );
    let e = Credentials::from_sources(env(&[("AWS_PROFILE", "broken")]), Some(home.clone()))
        .unwrap_err();
    assert!(
        e.contains("[broken]") && e.contains("aws_secret_access_key"),
        "{e}"
    );
    let e =
        Credentials::from_sources(env(&[("AWS_PROFILE", "nope")]), Some(home.clone())).unwrap_err();
    assert!(
        e.contains("[nope]") && e.contains(".aws/credentials"),
        "{e}"
    );

    // AWS_SHARED_CREDENTIALS_FILE overrides the home directory's file.
    let file = dir.path().join("creds.ini");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id=FK\naws_secret_access_key=FS\n",
    )
    .unwrap();
    let vars: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(
        "AWS_SHARED_CREDENTIALS_FILE",
        &*Box::leak(file.display().to_string().into_boxed_str()),
    )]));
    let c = Credentials::from_sources(env(vars), Some(home)).unwrap();
    assert_eq!(c.access_key, "FK");
    let e = Credentials::from_sources(env(&[]), Some(dir.path().join("nohome"))).unwrap_err();
    assert!(
        e.contains("AWS_ACCESS_KEY_ID") && e.contains("nohome/.aws/credentials"),
        "{e}"
    );
}

/// A scripted HTTP server for what real servers do not do on demand: refusing
/// `x-amz-checksum-sha256`, failing with 5xx. Answers each request with `answer(method, path,
/// headers)` (the path without its query) and records the requests.
fn scripted(
    answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let mut headers = String::new();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push_str(&lower);
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            log.lock().unwrap().push(format!("{method} {path}"));
            let (status, text) = answer(&method, path.split('?').next().unwrap(), &headers);
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                if method == "HEAD" { 0 } else { text.len() },
                if method == "HEAD" { "" } else { &text }
            );
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    (endpoint, seen)
}

const EMPTY_LISTING: &str = "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
    <IsTruncated>false</IsTruncated></ListBucketResult>";

fn s3_error(code: &str) -> String {
    format!("<Error><Code>{code}</Code><Message>scripted</Message></Error>")
}

#[test]
fn refused_checksum_header_and_retries() {
    let flaky = std::sync::atomic::AtomicU32::new(0);
    let (endpoint, seen) = scripted(move |method, path, headers| match (method, path) {
        ("GET", "/bkt/") => (200, EMPTY_LISTING.into()),
        ("PUT", _) if headers.contains("x-amz-checksum-sha256:") => {
            (400, s3_error("InvalidArgument"))
        }
        ("PUT", _) => (200, String::new()),
        ("GET", "/bkt/p/flaky") => {
            if flaky.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                (503, s3_error("SlowDown"))
            } else {
                (200, "ok".into())
            }
        }
        _ => (500, s3_error("InternalError")),
    });
    let cfg = S3Config::parse_url("s3://bkt/p", &endpoint, None).unwrap();
    let spool = tempfile::tempdir().unwrap();
    let creds = Credentials {
        access_key: "a".into(),
        secret_key: "b".into(),
        session_token: None,
    };
    let s = S3Store::open(cfg, creds, spool.path()).unwrap();
    let d = Sha256::digest(b"x");
    s.put_object_checked("k", b"x", &d).unwrap();
    assert_eq!(s.sha256_header_accepted(), Some(false));
    s.put_object_checked("k2", b"x", &d).unwrap();
    let puts = |seen: &[String]| seen.iter().filter(|r| r.starts_with("PUT")).count();
    // The refused PUT, its plain retry, then plain PUTs only.
    assert_eq!(puts(&seen.lock().unwrap()), 3);
    // 5xx answers are retried; the third attempt succeeds.
    assert_eq!(s.get_object("flaky", 10).unwrap().unwrap(), b"ok");
    // After three 5xx answers the error carries the server's code.
    let before = seen.lock().unwrap().len();
    let e = s.get_object("down", 10).unwrap_err().to_string();
    assert!(
        e.contains("InternalError") && e.contains("s3://bkt/p/down"),
        "{e}"
    );
    assert_eq!(seen.lock().unwrap().len() - before, 3);
}
