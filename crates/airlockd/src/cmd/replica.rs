//! `airlockd serve --replica`: a stateless server. It keeps no data directory: the catalog comes
//! from the signed snapshots the writer publishes to the object store
//! (`airlock_appliance::remote`), blobs are read from the object store, and a newer snapshot is
//! swapped in when one appears. A snapshot whose head does not verify against the appliance
//! key, whose version is not newer than the one served, or whose file does not hash to the
//! head's digest is never loaded. See docs/scale.md.

#[cfg(not(feature = "s3"))]
pub fn run(_cli: &crate::cli::Cli, _args: &crate::cli::ServeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("serve --replica reads an object store, and this airlockd was built without S3 support (cargo feature `s3`)")
}

#[cfg(feature = "s3")]
pub use with_s3::run;

#[cfg(feature = "s3")]
mod with_s3 {
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use airlock_appliance::remote::{self, StoreConfig, HEAD_KEY, MAX_HEAD, MAX_SNAPSHOT};
    use airlock_registry::{Options, Server, SnapshotFeed};
    use airlock_s3::S3Store;
    use airlock_store::BlobStore;
    use airlock_trust::PublicKey;
    use airlock_ui::exit;
    use anyhow::{bail, Context, Result};
    use serde_json::json;

    use crate::cli::{Cli, ServeArgs};

    /// Snapshots from the object store, verified with the appliance key.
    #[derive(Debug)]
    struct S3Feed {
        s3: S3Store,
        key: PublicKey,
        dir: PathBuf,
        /// The file of the snapshot served now (kept until the next one is in place).
        current: Option<PathBuf>,
    }

    impl SnapshotFeed for S3Feed {
        fn newer(&mut self, have: u64) -> Result<Option<(u64, PathBuf)>, String> {
            let Some(doc) = self
                .s3
                .get_object(HEAD_KEY, MAX_HEAD)
                .map_err(|e| format!("reading {HEAD_KEY}: {e}"))?
            else {
                return Ok(None);
            };
            let head = remote::verify_head(&doc, &self.key)?;
            if head.version <= have {
                if head.version < have {
                    tracing::warn!(
                        published = head.version,
                        served = have,
                        "the published snapshot is older than the one served; ignored"
                    );
                }
                return Ok(None);
            }
            if head.size > MAX_SNAPSHOT {
                return Err(format!(
                    "snapshot {} is {} bytes, more than the {MAX_SNAPSHOT} a replica loads",
                    head.key, head.size
                ));
            }
            let path = self.dir.join(format!("catalog-{:020}.db", head.version));
            let tmp = path.with_extension("db.part");
            let res = (|| -> Result<(), String> {
                let mut f =
                    std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
                let mut h = airlock_core::Hashing::new(&mut f);
                self.s3
                    .get_object_to(&head.key, &mut h, head.size)
                    .map_err(|e| format!("reading {}: {e}", head.key))?
                    .ok_or_else(|| format!("{} named by the head is missing", head.key))?;
                let (_, got, n) = h.finish();
                if n != head.size || got.hex() != head.sha256 {
                    return Err(format!(
                        "snapshot {} is {n} bytes with sha256 {}, the signed head says {} bytes with {}",
                        head.key,
                        got.hex(),
                        head.size,
                        head.sha256
                    ));
                }
                f.sync_all().map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
            })();
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            if let Some(old) = self.current.replace(path.clone()) {
                // The server's connection to the old file stays valid until it is replaced.
                let _ = std::fs::remove_file(old);
            }
            Ok(Some((head.version, path)))
        }
    }

    pub fn run(cli: &Cli, args: &ServeArgs) -> Result<u8> {
        let url = args.store.clone().context("--replica needs --store")?;
        let cfg = StoreConfig {
            url: url.clone(),
            endpoint: args
                .s3
                .s3_endpoint
                .clone()
                .context("--replica needs --s3-endpoint")?,
            region: args.s3.s3_region.clone(),
        };
        let key_file = args
            .appliance_key
            .clone()
            .context("--replica needs --appliance-key")?;
        let key = PublicKey::load(&key_file)
            .with_context(|| format!("the appliance key {}", key_file.display()))?;
        let (dir, _tmp) = match &args.cache {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("airlockd-replica.")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let s3 = remote::connect(&cfg, &dir.join("spool"))?;
        let listen = args.listen.clone().context("--replica needs --listen")?;
        let mut opts = Options::new(dir.clone(), listen);
        opts.store = Some(BlobStore::with_backend(Arc::new(s3.clone())));
        opts.feed = Some(Arc::new(Mutex::new(S3Feed {
            s3,
            key,
            dir: dir.clone(),
            current: None,
        })));
        opts.reload_interval = Duration::from_millis(args.interval);
        opts.apt = args.apt_key_dir.is_some();
        opts.apt_key_dir = args.apt_key_dir.clone();
        opts.head_timeout = Duration::from_millis(args.head_timeout);
        opts.max_connections = args.max_connections.max(1);
        opts.tls = match (&args.tls_cert, &args.tls_key, args.tls) {
            (Some(c), Some(k), _) => Some((c.clone(), k.clone())),
            (_, _, true) => bail!("a replica has no data directory: give --tls-cert and --tls-key"),
            _ => None,
        };
        super::super::serve::access_options(&mut opts, args.public_url.as_deref(), &args.auth)?;
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("airlockd-http")
            .build()
            .context("starting the async runtime")?;
        let server = rt.block_on(Server::bind(opts))?;
        let addr = server.local_addr();
        {
            let mut out = std::io::stdout().lock();
            if cli.json {
                writeln!(
                    out,
                    "{}",
                    json!({"listening": addr.to_string(), "url": format!("{scheme}://{addr}"), "replica": url})
                )?;
            } else {
                writeln!(out, "serving {scheme}://{addr} (replica of {url})")?;
            }
            out.flush()?;
        }
        tracing::info!(%addr, store = %url, "serving as a replica");
        rt.block_on(server.run(super::super::serve::shutdown_signal()))?;
        Ok(exit::OK)
    }
}
