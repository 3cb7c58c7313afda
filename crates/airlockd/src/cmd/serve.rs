//! `airlockd serve`: the inbox watcher alone (`--once` polls until the inbox is empty), or with
//! `--listen ADDR` the HTTP server (airlock-registry) on a tokio runtime and the inbox watcher
//! on its own thread, in one process. The watcher takes the data directory's
//! writer lock only while it imports, so `airlockd import` and every reader work beside a
//! running server; the server reads the catalog through its own read-only connection and
//! picks up each import, its own watcher's or another process's, when it commits. SIGTERM or ctrl-c stops accepting connections,
//! drains open requests, lets the watcher finish the import in progress, and exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use airlock_appliance::watch::Watcher;
use airlock_appliance::Appliance;
use airlock_registry::{Credentials, Options, Server};
use airlock_ui::exit;
use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{data, print_watched, replica, wait};
use crate::cli::{Cli, ServeArgs};

pub fn run(cli: &Cli, args: &ServeArgs) -> Result<u8> {
    if args.replica {
        return replica::run(cli, args);
    }
    let root = data(cli)?.to_path_buf();
    let inbox = args.inbox.clone().unwrap_or_else(|| root.join("inbox"));
    let interval = Duration::from_millis(args.interval);
    let Some(listen) = &args.listen else {
        return watch(cli, root, inbox, interval, args.once);
    };
    let tls = match (&args.tls_cert, &args.tls_key, args.tls) {
        (Some(c), Some(k), _) => Some((c.clone(), k.clone())),
        (_, _, true) => Some((root.join("tls/server.pem"), root.join("tls/server.key"))),
        _ => None,
    };
    serve(
        cli.json,
        Listen {
            root,
            inbox,
            interval,
            wait: wait(cli),
            listen: listen.clone(),
            tls,
            auth: args.auth.clone(),
            public_url: args.public_url.clone(),
            head_timeout: Duration::from_millis(args.head_timeout),
            max_connections: args.max_connections,
        },
    )
}

/// `serve` without `--listen`: poll the inbox and import what appears; with `once`, stop
/// after three polls in a row found nothing.
fn watch(cli: &Cli, root: PathBuf, inbox: PathBuf, interval: Duration, once: bool) -> Result<u8> {
    // Fail early on an uninitialized data directory; the watcher takes the writer lock only
    // while it imports.
    drop(Appliance::open_read_only(&root)?);
    let mut w = Watcher::new(&root, &inbox, interval, wait(cli));
    tracing::info!(inbox = %inbox.display(), "watching for volumes");
    let mut failed = false;
    let mut idle_polls = 0;
    loop {
        let outcomes = w.poll()?;
        for o in &outcomes {
            failed |= !o.ok();
            print_watched(cli.json, o)?;
        }
        if once {
            idle_polls = if outcomes.is_empty() {
                idle_polls + 1
            } else {
                0
            };
            if idle_polls >= 3 {
                break;
            }
        }
        std::thread::sleep(interval);
    }
    Ok(if failed { exit::FAILED } else { exit::OK })
}

/// What `serve --listen` runs with, resolved from the command line.
struct Listen {
    root: PathBuf,
    inbox: PathBuf,
    interval: Duration,
    /// How long the watcher waits for another writer before it skips a poll.
    wait: Duration,
    listen: String,
    tls: Option<(PathBuf, PathBuf)>,
    auth: Vec<String>,
    public_url: Option<String>,
    head_timeout: Duration,
    max_connections: usize,
}

/// `serve --listen`: the HTTP server and the inbox watcher until SIGTERM or ctrl-c.
fn serve(json_out: bool, args: Listen) -> Result<u8> {
    let mut opts = Options::new(args.root.clone(), args.listen.clone());
    opts.tls = args.tls.clone();
    opts.head_timeout = args.head_timeout;
    opts.max_connections = args.max_connections.max(1);
    access_options(&mut opts, args.public_url.as_deref(), &args.auth)?;
    // Open the appliance for writing once first: that cleans up after a crash (under the
    // writer lock), so the server never sees a half-finished import's leftovers.
    let a = Appliance::open(&args.root, "serve start-up", args.wait)?;
    if a.remote.is_some() {
        opts.store = Some(a.store.clone());
    }
    drop(a);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("airlockd-http")
        .build()
        .context("starting the async runtime")?;
    let server = rt.block_on(Server::bind(opts))?;
    let addr = server.local_addr();
    let scheme = if args.tls.is_some() { "https" } else { "http" };
    {
        let mut out = std::io::stdout().lock();
        if json_out {
            writeln!(
                out,
                "{}",
                json!({"listening": addr.to_string(), "url": format!("{scheme}://{addr}"), "inbox": args.inbox})
            )?;
        } else {
            writeln!(
                out,
                "serving {scheme}://{addr} (inbox {})",
                args.inbox.display()
            )?;
        }
        out.flush()?;
    }
    tracing::info!(%addr, scheme, inbox = %args.inbox.display(), "serving");

    let stop = Arc::new(AtomicBool::new(false));
    let watcher_stop = stop.clone();
    let inbox = args.inbox.clone();
    let interval = args.interval;
    let (root, wait) = (args.root.clone(), args.wait);
    let watcher = std::thread::Builder::new()
        .name("airlockd-inbox".into())
        .spawn(move || -> Result<bool> {
            let mut w = Watcher::new(&root, &inbox, interval, wait);
            let mut failed = false;
            while !watcher_stop.load(Ordering::Relaxed) {
                match w.poll() {
                    Ok(outcomes) => {
                        for o in &outcomes {
                            failed |= !o.ok();
                            print_watched(json_out, o)?;
                        }
                    }
                    // The watcher keeps going: a full disk or an unreadable inbox may be fixed
                    // by the operator while the server keeps serving.
                    Err(e) => tracing::error!("inbox poll failed: {e:#}"),
                }
                let mut slept = Duration::ZERO;
                while slept < interval && !watcher_stop.load(Ordering::Relaxed) {
                    let step = Duration::from_millis(100).min(interval - slept);
                    std::thread::sleep(step);
                    slept += step;
                }
            }
            Ok(failed)
        })
        .context("starting the inbox watcher")?;

    rt.block_on(server.run(shutdown_signal()))?;
    stop.store(true, Ordering::Relaxed);
    let failed = match watcher.join() {
        Ok(r) => r?,
        Err(_) => bail!("the inbox watcher panicked"),
    };
    tracing::info!("stopped");
    Ok(if failed { exit::FAILED } else { exit::OK })
}

/// `--public-url` and `--auth GROUP=FILE`, checked, into the server options.
pub(super) fn access_options(
    opts: &mut Options,
    public_url: Option<&str>,
    auth: &[String],
) -> Result<()> {
    if let Some(u) = public_url {
        opts.public_url = Some(
            airlock_registry::parse_public_url(u)
                .map_err(|e| anyhow::anyhow!("--public-url {e}"))?,
        );
    }
    for a in auth {
        let Some((group, file)) = a.split_once('=') else {
            bail!("--auth {a:?}: expected GROUP=FILE");
        };
        if !airlock_registry::auth::GROUPS.contains(&group) {
            bail!(
                "--auth {a:?}: unknown route group {group:?} (one of {})",
                airlock_registry::auth::GROUPS.join(", ")
            );
        }
        opts.auth
            .insert(group.to_string(), Credentials::load(file.as_ref())?);
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT (ctrl-c).
pub(super) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
