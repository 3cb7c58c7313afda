//! airlock-registry: the disconnected side's read-only HTTP server. It serves what
//! `airlockd import` put into the appliance's store to the machines of the rack, with the
//! clients they already have:
//!
//! * [`oci`] — OCI Distribution pull API (`/v2/…`: manifests, blobs with `Range`, tags,
//!   `_catalog`, referrers), for containerd/k3s, podman, skopeo; models as the ModelPack
//!   artifacts they are (`models/ID`, for oras). Writes answer `UNSUPPORTED`.
//! * [`hf`] — a Hugging Face Hub-compatible model endpoint (`/api/models/…`,
//!   `/{repo}/resolve/{rev}/{path}`) for `huggingface_hub`, transformers and vLLM.
//! * `/metrics` (Prometheus, [`metrics`]) and `/healthz`.
//!
//! [`Server::bind`] opens the catalog read-only, builds an [`index::Snapshot`] of every visible
//! artifact, and [`Server::run`] serves it over HTTP/1.1 (plain or TLS, [`tls`]) until the
//! shutdown future completes, then drains open connections. The snapshot is rebuilt whenever
//! SQLite's `data_version` shows another connection (an import) committed. Optional client
//! credentials per route group come from [`auth`].
//!
//! ```no_run
//! # async fn f() -> Result<(), airlock_registry::RegistryError> {
//! let opts = airlock_registry::Options::new("/var/lib/airlock".into(), "0.0.0.0:5000".into());
//! let server = airlock_registry::Server::bind(opts).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod apt;
pub mod auth;
pub mod body;
pub mod error;
#[cfg(test)]
mod handler_tests;
pub mod head;
pub mod hf;
pub mod index;
pub mod metrics;
pub mod oci;
mod plain;
pub mod tls;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use airlock_catalog::Catalog;
use airlock_store::BlobStore;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

pub use auth::Credentials;
pub use body::Body;
pub use error::RegistryError;
use index::Snapshot;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The appliance data directory (`catalog.db`, `blobs/sha256/`).
    pub data: PathBuf,
    /// `HOST:PORT` to listen on (`:0` picks a free port; see [`Server::local_addr`]).
    pub listen: String,
    /// Certificate chain and key (PEM) for TLS; plain HTTP when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Route group (`oci`, `hf`, `metrics`) → credentials required there.
    pub auth: BTreeMap<String, Credentials>,
    /// How often to check the catalog for changes.
    pub reload_interval: Duration,
    /// How long to wait for open requests at shutdown.
    pub drain_timeout: Duration,
    /// Serve the apt repository (creates `DATA/keys/apt-signing.asc` on first use).
    pub apt: bool,
    /// Time allowed for a whole request head to arrive (and for a TLS handshake), counted
    /// from when the server starts waiting for it; also the keep-alive idle timeout.
    pub head_timeout: Duration,
    /// Most connections served at once; beyond it a plain-HTTP client gets `503` and the
    /// connection is closed (a TLS connection is closed).
    pub max_connections: usize,
    /// The URL clients reach the server at (`https://airlock.rack:5000`), for absolute links
    /// the server builds (the tree API's `Link`); when absent, the request's validated `Host`.
    /// Checked with [`parse_public_url`].
    pub public_url: Option<String>,
    /// The blob store to serve from; by default the directory store in `data`.
    pub store: Option<BlobStore>,
    /// Serve as a replica: catalog snapshots come from this feed instead of `data/catalog.db`.
    pub feed: Option<Arc<Mutex<dyn SnapshotFeed>>>,
    /// Load the apt signing key from this directory and never create one (replicas must sign
    /// with the appliance's key); by default `data/keys`, created on first use.
    pub apt_key_dir: Option<PathBuf>,
}

/// Where a replica's catalog comes from: signed, versioned snapshots of the writer's catalog
/// (see `docs/scale.md`). Implementations verify what they return.
pub trait SnapshotFeed: Send + std::fmt::Debug {
    /// A verified snapshot newer than version `have`: its version and a local SQLite file the
    /// server may open read-only (and that stays in place until a newer one is returned).
    /// `Ok(None)` when there is none newer.
    fn newer(&mut self, have: u64) -> Result<Option<(u64, PathBuf)>, String>;
}

impl Options {
    pub fn new(data: PathBuf, listen: String) -> Self {
        Options {
            data,
            listen,
            tls: None,
            auth: BTreeMap::new(),
            reload_interval: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            apt: true,
            head_timeout: Duration::from_secs(30),
            max_connections: 1024,
            public_url: None,
            store: None,
            feed: None,
            apt_key_dir: None,
        }
    }
}

struct State {
    store: BlobStore,
    snap: RwLock<Arc<Snapshot>>,
    metrics: metrics::Metrics,
    auth: BTreeMap<String, Credentials>,
    tls: bool,
    public_url: Option<String>,
    /// Bounds the credential checks running at once (bcrypt is slow on purpose).
    auth_slots: tokio::sync::Semaphore,
}

/// What a handler needs to know about the request.
pub struct Ctx<'a> {
    pub method: &'a Method,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub store: &'a BlobStore,
    pub tls: bool,
    /// [`Options::public_url`].
    pub public_url: Option<&'a str>,
    /// May models be answered under `/v2`? A model is served to a client only when the `hf`
    /// group admits it too (or is open), so `/v2` never opens what `--auth hf` closes.
    pub models_allowed: bool,
}

/// The reloader's state: its own catalog connection, the version the current snapshot was
/// built at (SQLite's `data_version`, or a replica's snapshot version), the git blob ids
/// computed so far (by blob digest), and a replica's snapshot feed.
struct Reloader {
    catalog: Option<Catalog>,
    version: i64,
    cache: index::Caches,
    feed: Option<Arc<Mutex<dyn SnapshotFeed>>>,
}

/// A bound, ready server.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    catalog: Arc<Mutex<Reloader>>,
    apt_key: Option<Arc<apt::AptKey>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    opts: Options,
}

impl Server {
    /// Opens the catalog and store, builds the first snapshot and binds the listener.
    pub async fn bind(mut opts: Options) -> Result<Server, RegistryError> {
        let store = match opts.store.take() {
            Some(s) => s,
            None => BlobStore::open(&opts.data)?,
        };
        let mut cache = index::Caches::default();
        let apt_key = match (&opts.apt_key_dir, opts.apt) {
            (_, false) => None,
            (Some(dir), true) => Some(Arc::new(apt::AptKey::load(dir)?)),
            (None, true) => Some(Arc::new(apt::AptKey::load_or_create(
                &opts.data.join("keys"),
            )?)),
        };
        let feed = opts.feed.take();
        // A replica that finds no snapshot it can load starts anyway, serving nothing, and keeps
        // polling: a store that is down or a head that does not verify may be fixed while it runs.
        let first = feed.as_ref().map(|f| match f.lock().expect("feed lock").newer(0) {
            Ok(Some(found)) => Some(found),
            Ok(None) => {
                tracing::warn!("replica: no catalog snapshot published yet; serving nothing until one is");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "replica: no catalog snapshot loaded; serving nothing until one is");
                None
            }
        });
        let (catalog, version, snap) = match first {
            None => {
                let catalog = Catalog::open_read_only(&opts.data.join("catalog.db"))?;
                let version = catalog.data_version()?;
                let snap = Snapshot::build(&catalog, &store, &mut cache, apt_key.as_deref())?;
                (Some(catalog), version, snap)
            }
            Some(Some((v, path))) => {
                let catalog = Catalog::open_read_only(&path)?;
                let snap = Snapshot::build(&catalog, &store, &mut cache, apt_key.as_deref())?;
                tracing::info!(version = v, "replica: catalog snapshot loaded");
                (Some(catalog), v as i64, snap)
            }
            Some(None) => (None, 0, Snapshot::default()),
        };
        tracing::info!(
            repositories = snap.repos.len(),
            models = snap.models.len(),
            "catalog loaded"
        );
        let tls = match &opts.tls {
            Some((c, k)) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(c, k)?)),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(&opts.listen)
            .await
            .map_err(|source| RegistryError::Bind {
                addr: opts.listen.clone(),
                source,
            })?;
        Ok(Server {
            listener,
            state: Arc::new(State {
                store,
                snap: RwLock::new(Arc::new(snap)),
                metrics: metrics::Metrics::default(),
                auth: opts.auth.clone(),
                tls: tls.is_some(),
                public_url: opts.public_url.clone(),
                auth_slots: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                ),
            }),
            catalog: Arc::new(Mutex::new(Reloader {
                catalog,
                version,
                cache,
                feed,
            })),
            apt_key,
            tls,
            opts,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` completes, then stops accepting and waits (up to the drain
    /// timeout) for open connections to finish their current request.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RegistryError> {
        let Server {
            listener,
            state,
            catalog,
            apt_key,
            tls,
            opts,
        } = self;
        let reloader = tokio::spawn(reload_loop(
            state.clone(),
            catalog,
            apt_key,
            opts.reload_interval,
        ));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        // Plain-HTTP connections: told to stop through `stop_tx`, counted by `active`'s
        // strong count.
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let active = Arc::new(());
        let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
        let head_timeout = opts.head_timeout;
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                state.metrics.busy.inc();
                tokio::spawn(refuse_busy(tcp, tls.is_none()));
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let state = state.clone();
            let stop_rx = stop_tx.subscribe();
            let active = active.clone();
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                match tls {
                    Some(acc) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(head_timeout, acc.accept(tcp)).await
                        else {
                            tracing::debug!(%peer, "TLS handshake failed or timed out");
                            return;
                        };
                        let conn = hyper_builder(head_timeout)
                            .serve_connection(TokioIo::new(stream), hyper_service(state, peer));
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    None => {
                        drop(watcher);
                        let _guard = active;
                        let r = plain::serve(state, tcp, peer, stop_rx, head_timeout).await;
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                }
            });
        }
        drop(listener);
        tracing::info!("shutting down: draining open connections");
        let _ = stop_tx.send(true);
        let drain = async {
            graceful.shutdown().await;
            while Arc::strong_count(&active) > 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(opts.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
        reloader.abort();
        Ok(())
    }
}

/// hyper's HTTP/1.1 settings for TLS connections: its `header_read_timeout` is armed once
/// per head and not reset by reads, so it is the same total head deadline as the plain path's;
/// the read buffer is bounded near [`head::MAX_HEAD`].
fn hyper_builder(head_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(head::MAX_HEAD.max(8192))
        .max_headers(head::MAX_FIELDS);
    b
}

/// The hyper service of one TLS connection: the shared handlers, with a credential cache
/// that lives as long as the connection.
fn hyper_service(
    state: Arc<State>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Send {
    let cache = Arc::new(Mutex::new(AuthCache::default()));
    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let state = state.clone();
        let cache = cache.clone();
        // No route reads a body: keep only the head.
        let req = Request::from_parts(req.into_parts().0, ());
        async move { Ok::<_, Infallible>(respond(&state, &req, peer, &cache).await) }
    })
}

/// Answers a connection beyond [`Options::max_connections`]: `503` with a short body on plain
/// HTTP (a TLS client cannot read plain text, so it is just closed), within a second.
async fn refuse_busy(mut tcp: tokio::net::TcpStream, plain: bool) {
    use tokio::io::AsyncWriteExt;
    if plain {
        const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 34\r\nretry-after: 1\r\nconnection: close\r\n\r\ntoo many connections; retry later\n";
        let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(BUSY)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.shutdown()).await;
}

/// Credential checks remembered for one connection: (route group, `Authorization` value,
/// verdict). A client sending the same header on a keep-alive connection is checked once;
/// bounded so varying headers cannot grow it.
#[derive(Default)]
pub(crate) struct AuthCache(Vec<(&'static str, HeaderValue, bool)>);

impl AuthCache {
    const MAX: usize = 8;

    fn get(&self, group: &str, v: &HeaderValue) -> Option<bool> {
        self.0
            .iter()
            .find(|(g, h, _)| *g == group && h == v)
            .map(|(_, _, ok)| *ok)
    }

    fn put(&mut self, group: &'static str, v: HeaderValue, ok: bool) {
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.push((group, v, ok));
    }
}

/// May the request be answered, as far as credentials go? Groups without credentials are
/// open. Checks run on the blocking pool (a bcrypt check takes tens of milliseconds of CPU
/// and must not stall the async workers), a few at a time, and are cached per connection.
async fn authorized(
    state: &Arc<State>,
    headers: &HeaderMap,
    group: &'static str,
    cache: &Mutex<AuthCache>,
) -> bool {
    if !state.auth.contains_key(group) {
        return true;
    }
    let Some(value) = headers.get("authorization").cloned() else {
        return false;
    };
    let cached = cache.lock().expect("auth cache lock").get(group, &value);
    if let Some(ok) = cached {
        return ok;
    }
    let Ok(_slot) = state.auth_slots.acquire().await else {
        return false;
    };
    state.metrics.auth_checks.inc();
    let st = state.clone();
    let v = value.clone();
    let ok = tokio::task::spawn_blocking(move || {
        let mut h = HeaderMap::new();
        h.insert("authorization", v);
        st.auth.get(group).is_some_and(|c| c.allows(&h))
    })
    .await
    .unwrap_or(false);
    cache.lock().expect("auth cache lock").put(group, value, ok);
    ok
}

/// The whole answer to one request, shared by the plain and the hyper path: the head checks
/// of [`head::problem`] (hyper parsed this request itself), credentials, then the handlers.
pub(crate) async fn respond<B>(
    state: &Arc<State>,
    req: &Request<B>,
    peer: SocketAddr,
    cache: &Mutex<AuthCache>,
) -> Response<Body> {
    if let Some(why) = head::problem(req.headers(), req.version()) {
        tracing::debug!(%peer, why, "request refused");
        return bad_request_close();
    }
    let group = group_of(req.uri().path());
    let allowed = authorized(state, req.headers(), group, cache).await;
    let models_allowed =
        group != "oci" || (allowed && authorized(state, req.headers(), "hf", cache).await);
    handle(state, req, peer, allowed, models_allowed)
}

/// Does this response end its connection (`Connection: close`)?
pub(crate) fn closes(r: &Response<Body>) -> bool {
    r.headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// `400` that also closes the connection: for requests whose framing cannot be trusted.
fn bad_request_close() -> Response<Body> {
    let mut r = Response::new(Body::bytes("bad request\n"));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/plain"));
    h.insert("content-length", HeaderValue::from_static("12"));
    h.insert("connection", HeaderValue::from_static("close"));
    r
}

/// The answer when a response cannot be built, which happens only when a header value taken
/// from the request is not a valid header value: `400` rather than a panic.
pub fn bad_request(e: http::Error) -> Response<Body> {
    tracing::debug!(error = %e, "response header from request data not representable");
    bad_request_close()
}

/// Checks a public URL (`http(s)://authority[/path]`, no query or fragment) and returns it
/// without a trailing `/`.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?}: must start with http:// or https://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !head::authority_ok(authority) {
        return Err(format!("{s:?}: {authority:?} is not host[:port]"));
    }
    let path_ok = path
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'.' | b'_' | b'~' | b'%'));
    if !path_ok {
        return Err(format!(
            "{s:?}: the path may hold only unreserved characters"
        ));
    }
    Ok(s.trim_end_matches('/').to_string())
}

async fn reload_loop(
    state: Arc<State>,
    catalog: Arc<Mutex<Reloader>>,
    apt_key: Option<Arc<apt::AptKey>>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let st = state.clone();
        let cat = catalog.clone();
        let key = apt_key.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<bool, RegistryError> {
            let mut guard = cat.lock().expect("catalog lock");
            let r = &mut *guard;
            let stale_release = st
                .snap
                .read()
                .expect("snapshot lock")
                .apt
                .as_ref()
                .is_some_and(|a| airlock_core::time::now() - a.built_at >= apt::RESIGN_AFTER);
            let v = match (&mut r.feed, &r.catalog) {
                (Some(feed), _) => match feed
                    .lock()
                    .expect("feed lock")
                    .newer(r.version as u64)
                    .map_err(RegistryError::Snapshot)?
                {
                    Some((v, path)) => {
                        r.catalog = Some(Catalog::open_read_only(&path)?);
                        v as i64
                    }
                    None => r.version,
                },
                (None, Some(c)) => c.data_version()?,
                (None, None) => return Ok(false),
            };
            if v == r.version && !stale_release {
                return Ok(false);
            }
            let Some(catalog) = &r.catalog else {
                return Ok(false);
            };
            let snap = Snapshot::build(catalog, &st.store, &mut r.cache, key.as_deref())?;
            r.version = v;
            *st.snap.write().expect("snapshot lock") = Arc::new(snap);
            Ok(true)
        })
        .await;
        match r {
            Ok(Ok(true)) => {
                state.metrics.reloads.inc();
                tracing::info!("catalog changed: serving the new snapshot");
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reloading the catalog failed; serving the previous snapshot")
            }
            Err(e) => tracing::warn!(error = %e, "reload task failed"),
        }
    }
}

fn group_of(path: &str) -> &'static str {
    if path == "/v2" || path.starts_with("/v2/") {
        "oci"
    } else if path == "/metrics" {
        "metrics"
    } else if path == "/healthz" {
        "other"
    } else if path.starts_with("/apt/") {
        "apt"
    } else {
        "hf"
    }
}

/// Answers one request whose credentials were already judged (`allowed`), records metrics
/// and the access log.
fn handle<B>(
    state: &State,
    req: &Request<B>,
    peer: SocketAddr,
    allowed: bool,
    models_allowed: bool,
) -> Response<Body> {
    let start = Instant::now();
    state.metrics.in_flight.inc();
    let path = req.uri().path().to_string();
    let group = group_of(&path);
    let resp = route(state, req, &path, group, allowed, models_allowed);
    let status = resp.status().as_u16();
    let bytes = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let bytes = if req.method() == Method::HEAD {
        0
    } else {
        bytes
    };
    let elapsed = start.elapsed();
    state
        .metrics
        .record(group, req.method(), status, bytes, elapsed);
    state.metrics.in_flight.dec();
    tracing::info!(
        target: "airlock::access",
        %peer,
        method = %req.method(),
        path = %path,
        query = req.uri().query().unwrap_or(""),
        status,
        bytes,
        micros = elapsed.as_micros() as u64,
        user_agent = header_str(req.headers(), "user-agent").unwrap_or(""),
    );
    resp
}

fn route<B>(
    state: &State,
    req: &Request<B>,
    path: &str,
    group: &'static str,
    allowed: bool,
    models_allowed: bool,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if !allowed {
        let mut r = if group == "oci" {
            oci::error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
                head,
            )
        } else {
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("Content-Length", 0)
                .body(Body::empty())
                .unwrap_or_else(bad_request)
        };
        r.headers_mut().insert(
            "WWW-Authenticate",
            http::HeaderValue::from_static("Basic realm=\"airlock\""),
        );
        return r;
    }
    let ctx = Ctx {
        method: req.method(),
        query: req.uri().query(),
        headers: req.headers(),
        store: &state.store,
        tls: state.tls,
        public_url: state.public_url.as_deref(),
        models_allowed,
    };
    let snap = state.snap.read().expect("snapshot lock").clone();
    if group == "oci" {
        return oci::handle(&ctx, &snap, &path["/v2".len()..]);
    }
    if (path == "/metrics" || path == "/healthz")
        && !matches!(*req.method(), Method::GET | Method::HEAD)
    {
        return method_not_allowed();
    }
    if path == "/metrics" {
        let body = state
            .metrics
            .render(snap.apt.as_ref().map_or(0, |a| a.refused.len()));
        return Response::builder()
            .header("Content-Type", metrics::CONTENT_TYPE)
            .header("Content-Length", body.len())
            .body(Body::bytes(body))
            .unwrap_or_else(bad_request);
    }
    if path == "/healthz" {
        return Response::builder()
            .header("Content-Type", "text/plain")
            .header("Content-Length", 3)
            .body(Body::bytes("ok\n"))
            .unwrap_or_else(bad_request);
    }
    if let Some(rest) = path.strip_prefix("/apt/") {
        return apt_route(&ctx, &snap, rest);
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        return hf::api(&ctx, &snap, rest);
    }
    if let Some(r) = hf::resolve(&ctx, &snap, path.trim_start_matches('/')) {
        return r;
    }
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header("Content-Type", "text/plain")
        .header("Content-Length", 10)
        .body(if head {
            Body::empty()
        } else {
            Body::bytes("not found\n")
        })
        .unwrap_or_else(bad_request)
}

/// `/apt/...`: metadata from memory, `.deb` files from the store. `./` segments (what apt
/// asks of flat repositories) are dropped before the lookup; nothing else is interpreted.
fn apt_route(ctx: &Ctx, snap: &Snapshot, rest: &str) -> Response<Body> {
    let head = ctx.method == Method::HEAD;
    let not_found = || {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("Content-Length", 0)
            .body(Body::empty())
            .unwrap_or_else(bad_request)
    };
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return method_not_allowed();
    }
    let Some(repo) = &snap.apt else {
        return not_found();
    };
    let Some(decoded) = percent_decode(rest) else {
        return not_found();
    };
    let path: Vec<&str> = decoded.split('/').filter(|s| *s != ".").collect();
    if path.iter().any(|s| s.is_empty() || *s == "..") {
        return not_found();
    }
    let path = path.join("/");
    if let Some(b) = repo.files.get(&path) {
        let ct = if path.ends_with(".gz") {
            "application/gzip"
        } else if path.ends_with(".gpg") && !path.ends_with("Release.gpg") {
            "application/pgp-keys"
        } else {
            "text/plain; charset=utf-8"
        };
        return Response::builder()
            .header("Content-Type", ct)
            .header("Content-Length", b.len())
            .body(if head {
                Body::empty()
            } else {
                Body::bytes(b.clone())
            })
            .unwrap_or_else(bad_request);
    }
    let Some(d) = repo.pool.get(&path) else {
        return not_found();
    };
    let Ok((src, len)) = oci::open_blob(ctx.store, d) else {
        return not_found();
    };
    oci::file_response(
        src,
        len,
        ctx.headers,
        head,
        "application/vnd.debian.binary-package",
        Some(&format!("\"{d}\"")),
        |b| b,
    )
}

/// `405` with `Allow: GET, HEAD`: the server is read-only.
pub fn method_not_allowed() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let h = r.headers_mut();
    h.insert("allow", HeaderValue::from_static("GET, HEAD"));
    h.insert("content-length", HeaderValue::from_static("0"));
    r
}

/// A header's value as text, if present and visible ASCII.
pub fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k == name {
            percent_decode(&v.replace('+', " "))
        } else {
            None
        }
    })
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits (the
/// `percent-encoding` crate would keep it literally; a request carrying one is malformed) or
/// a non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Everything but RFC 3986 unreserved characters is escaped.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes everything but unreserved characters (for query values).
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Encodes each segment of a `/`-separated path.
pub fn percent_encode_path(s: &str) -> String {
    s.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(percent_decode("%2e%2e/a%20b").as_deref(), Some("../a b"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_encode("é~x"), "%C3%A9~x");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(
            query_param(Some("n=2&last=a%3Ab"), "last").as_deref(),
            Some("a:b")
        );
    }
}
