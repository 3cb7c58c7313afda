//! `airlockd`: the disconnected-side command line and daemon. It links no HTTP client and no
//! connected-side crate (a test checks `cargo tree`): it only ever reads bundles.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod serve;

use airlock_appliance::Appliance;
use airlock_ui::exit;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

const AFTER_HELP: &str = "\
Typical flow on the disconnected side:
  airlockd init --data /var/lib/airlock --trust root.json
  airlockd import --data /var/lib/airlock /media/usb/demo-1.0.0.vol1of1.tar.zst
  airlockd list --data /var/lib/airlock
  airlockd audit verify --data /var/lib/airlock

Readers (list, status, audit, lineage, fsck without --repair) open the data directory
read-only and never wait; writers (init, import, fsck --repair, the watcher while it imports)
take DATA/lock, waiting up to --wait for another writer. Volumes named on the command line are
never modified: a rejected one is copied to DATA/quarantine and left where it is.

Exit codes: 0 success; 1 failure (a volume rejected or failed, fsck or audit problems, bad
input, the data directory busy past --wait); 2 usage error. Logs go to stderr (-v, -vv, or
AIRLOCK_LOG=debug); data to stdout (--json for machines). The data directory comes from --data
or AIRLOCK_DATA.";

#[derive(Parser, Debug)]
#[command(name = "airlockd", version, about = "Verify, import and keep signed airlock bundles on an air-gapped appliance", after_help = AFTER_HELP)]
struct Cli {
    /// The appliance data directory.
    #[arg(long, global = true, env = "AIRLOCK_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// How long a writer waits for another writer (an import, the watcher) to release the data
    /// directory before failing with `data directory busy` (e.g. 30s, 5m, 0s).
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION", value_parser = airlock_ui::parse_duration_ms)]
    wait: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the data directory, pin a trust root, and generate the appliance key.
    Init {
        /// The trust root to pin (from `airlock trust init`), verified before it is pinned.
        #[arg(long, value_name = "ROOT")]
        trust: PathBuf,
        /// A name (DNS name or IP address) the server certificate in DATA/tls is issued for;
        /// repeat for several. Default: localhost, 127.0.0.1, ::1 and the host name.
        #[arg(long = "tls-name", value_name = "NAME")]
        tls_names: Vec<String>,
    },
    /// Verify and import bundle volumes (any order; multi-volume bundles complete with the last).
    Import {
        #[arg(required = true, value_name = "VOLUME")]
        volumes: Vec<PathBuf>,
        /// Rego policy replacing the built-in one for this import.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Tolerated clock difference for expiry checks (e.g. 5m).
        #[arg(long, value_name = "DURATION", value_parser = airlock_ui::parse_duration)]
        clock_skew: Option<i64>,
        /// Re-hash blobs the store already holds instead of trusting them (restores blobs that
        /// `fsck` found damaged; slower).
        #[arg(long)]
        verify_present: bool,
    },
    /// Bundles, channels, artifacts and the names they are served under.
    List,
    /// A short health summary: trust root, counts, recent imports.
    Status,
    /// Re-hash every blob, check every catalog reference and the data directory's file modes.
    Fsck {
        /// Move damaged blobs to DATA/damaged/ and mark the artifacts that need them as not
        /// visible; importing their volume again restores them. Takes the writer lock.
        #[arg(long)]
        repair: bool,
    },
    /// Read or verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Signed inventories of the blobs this appliance holds (for differential bundles).
    #[command(subcommand)]
    Inventory(InventoryCmd),
    /// Model lineage: which imported models were trained on a dataset, or a model's ancestry.
    Lineage {
        /// List every imported model whose lineage names this dataset.
        #[arg(long, conflicts_with = "model", required_unless_present = "model")]
        dataset: Option<String>,
        /// Show this model and its chain of parent models.
        #[arg(long)]
        model: Option<String>,
    },
    /// Watch an inbox directory and import volumes that appear in it; with --listen, also serve
    /// the store over HTTP (OCI registry, Hugging Face-compatible models, metrics).
    Serve {
        #[arg(long, value_name = "DIR")]
        inbox: Option<PathBuf>,
        /// How often to look (e.g. 2s).
        #[arg(long, default_value = "2s", value_parser = airlock_ui::parse_duration_ms)]
        interval: u64,
        /// Poll until the inbox is empty of complete volumes, then exit (for scripts and tests).
        #[arg(long, conflicts_with = "listen")]
        once: bool,
        /// Serve HTTP on HOST:PORT (e.g. 0.0.0.0:5000; port 0 picks a free one, printed on stdout).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// TLS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key", requires = "listen")]
        tls_cert: Option<PathBuf>,
        /// The TLS private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// TLS with the appliance's own certificate (DATA/tls/server.pem and server.key).
        #[arg(long, requires = "listen", conflicts_with = "tls_cert")]
        tls: bool,
        /// Require credentials for a route group: GROUP=FILE, GROUP one of oci, hf, metrics
        /// (FILE: one token or bcrypt `user:hash` per line). Repeat per group.
        #[arg(long, value_name = "GROUP=FILE", requires = "listen")]
        auth: Vec<String>,
        /// The URL clients reach this server at (e.g. https://airlock.rack:5000), used for the
        /// absolute links the server sends; by default the request's Host.
        #[arg(long, value_name = "URL", requires = "listen")]
        public_url: Option<String>,
        /// Time allowed for a whole request head (also the keep-alive idle timeout).
        #[arg(long, hide = true, default_value = "30s", value_parser = airlock_ui::parse_duration_ms)]
        head_timeout: u64,
        /// Most connections served at once; more get 503.
        #[arg(long, hide = true, default_value_t = 1024)]
        max_connections: usize,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Print the log (newest last).
    Show {
        /// Only the last N entries.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Check hashes, chain, numbering, signatures and the signed head; names the first bad entry.
    Verify,
}

#[derive(Subcommand, Debug)]
enum InventoryCmd {
    /// Write a DSSE envelope, signed by the appliance key, listing every blob held.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    // Directories 0750 and files 0640 whatever the caller's umask: a world-writable store
    // would let any local user swap served content or the appliance's keys.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o027));
    let cli = Cli::parse();
    airlock_ui::init_logging(cli.verbose);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if airlock_ui::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Opens the data directory for writing, waiting up to `--wait` for another writer.
fn open_writer(cli: &Cli, purpose: &str) -> Result<Appliance> {
    Ok(Appliance::open(
        data(cli)?,
        purpose,
        Duration::from_millis(cli.wait),
    )?)
}

/// Opens the data directory read-only: never waits, needs no write access.
fn open_reader(cli: &Cli) -> Result<Appliance> {
    Ok(Appliance::open_read_only(data(cli)?)?)
}

/// Untrusted text (names and reasons from bundles, paths from media) made safe for a terminal.
fn esc(s: &str) -> String {
    airlock_core::text::escape(s)
}

fn data(cli: &Cli) -> Result<&Path> {
    cli.data
        .as_deref()
        .context("no data directory: pass --data DIR or set AIRLOCK_DATA")
}

/// A trust root is a few KiB; `init` refuses to read more than the trust crate accepts.
const MAX_ROOT_BYTES: u64 = 1 << 20;

/// Reads a file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        buf.len() as u64 <= max,
        "{} is larger than {max} bytes",
        path.display()
    );
    Ok(buf)
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

macro_rules! say {
    ($($t:tt)*) => {{ writeln!(std::io::stdout().lock(), $($t)*)?; }};
}

fn run(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Init { trust, tls_names } => {
            let bytes = read_bounded(trust, MAX_ROOT_BYTES)?;
            let names = if tls_names.is_empty() {
                airlock_appliance::tls::default_names()
            } else {
                tls_names.clone()
            };
            let a = Appliance::init_with_tls_names(data(cli)?, &bytes, &names)?;
            let v = json!({"data": a.root, "trustRootVersion": a.trust.meta.version, "applianceKey": a.public_key().keyid(),
                           "applianceKeyFile": a.root.join("keys/appliance.pub"), "tlsCa": a.root.join("tls/ca.pem"),
                           "tlsNames": names});
            if cli.json {
                print_json(&v)?;
            } else {
                say!(
                    "initialized {} (trust root version {}, appliance key {})",
                    a.root.display(),
                    a.trust.meta.version,
                    a.public_key().keyid()
                );
                say!(
                    "appliance public key: {}",
                    a.root.join("keys/appliance.pub").display()
                );
            }
            Ok(exit::OK)
        }
        Command::Import {
            volumes,
            policy,
            clock_skew,
            verify_present,
        } => {
            let mut a = open_writer(cli, "import")?;
            a.verify_present = *verify_present;
            if let Some(p) = policy {
                a.policy = airlock_policy::Policy::from_file(p)?;
            }
            if let Some(s) = clock_skew {
                a.clock_skew = *s;
            }
            let total = volumes
                .iter()
                .filter_map(|v| std::fs::metadata(v).ok())
                .map(|m| m.len())
                .sum();
            let bar = airlock_ui::Bar::bytes("importing", total);
            let outcomes = a.import(volumes, airlock_appliance::import::Origin::Media, &bar);
            bar.finish();
            let ok = outcomes.iter().all(|o| o.ok());
            if cli.json {
                print_json(&json!({"ok": ok, "volumes": outcomes}))?;
            } else {
                for o in &outcomes {
                    let vol = esc(&o.volume.display().to_string());
                    match o.status {
                        "accepted" => say!(
                            "accepted  {} ({}, volume {}): {} blobs written, {} already present{}",
                            vol,
                            esc(o.name.as_deref().unwrap_or("")),
                            o.volume_number.unwrap_or(0),
                            o.written,
                            o.skipped,
                            if o.visible.is_empty() {
                                String::from("; waiting for more volumes")
                            } else {
                                format!("; now visible: {}", esc(&o.visible.join(", ")))
                            }
                        ),
                        "duplicate" => say!("no-op     {}: {}", vol, esc(&o.reason)),
                        "rejected" => {
                            say!("REJECTED  {}: {}", vol, esc(&o.reason));
                            if let Some(q) = &o.quarantined {
                                say!(
                                    "          copied to {} (the original is left as it was)",
                                    q.display()
                                );
                            }
                        }
                        _ => say!("FAILED    {}: {}", vol, esc(&o.reason)),
                    }
                    if let Some(n) = &o.note {
                        say!("          note: {}", esc(n));
                    }
                }
            }
            for o in outcomes.iter().filter(|o| !o.ok()) {
                tracing::error!(
                    "{} {}: {}",
                    o.status,
                    esc(&o.volume.display().to_string()),
                    esc(&o.reason)
                );
            }
            Ok(if ok { exit::OK } else { exit::FAILED })
        }
        Command::List | Command::Status => {
            let a = open_reader(cli)?;
            let s = a.summary()?;
            if cli.json {
                print_json(&s)?;
                return Ok(exit::OK);
            }
            say!("data        {}", a.root.display());
            say!(
                "trust root  version {} (expires {})",
                a.trust.meta.version,
                a.trust.meta.expires
            );
            say!("policy      {}", a.policy.name());
            if matches!(cli.command, Command::Status) {
                say!(
                    "bundles     {}",
                    s["bundles"].as_array().map(|b| b.len()).unwrap_or(0)
                );
                say!(
                    "artifacts   {} visible",
                    s["artifacts"]
                        .as_array()
                        .map(|v| v.iter().filter(|a| a["visible"] == true).count())
                        .unwrap_or(0)
                );
                for i in s["recentImports"].as_array().into_iter().flatten().take(5) {
                    say!(
                        "import      {} {} {} {}",
                        i["at"].as_str().unwrap_or(""),
                        i["outcome"].as_str().unwrap_or(""),
                        esc(i["volume"].as_str().unwrap_or("")),
                        esc(i["reason"].as_str().unwrap_or(""))
                    );
                }
                return Ok(exit::OK);
            }
            say!("channels");
            for c in s["channels"].as_array().into_iter().flatten() {
                say!(
                    "  {:<12} sequence {}",
                    esc(c["channel"].as_str().unwrap_or("")),
                    c["sequence"]
                );
            }
            say!("bundles");
            for b in s["bundles"].as_array().into_iter().flatten() {
                say!(
                    "  {} {} channel {} sequence {}: volumes {} of {}{}",
                    esc(b["name"].as_str().unwrap_or("")),
                    esc(b["version"].as_str().unwrap_or("")),
                    esc(b["channel"].as_str().unwrap_or("")),
                    b["sequence"],
                    b["imported_volumes"]
                        .as_array()
                        .map(|v| v
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default(),
                    b["volumes"],
                    if b["complete"] == true {
                        " (complete)"
                    } else {
                        " (incomplete)"
                    }
                );
            }
            say!("artifacts");
            for x in s["artifacts"].as_array().into_iter().flatten() {
                say!(
                    "  {:<6} {}  {}{}",
                    x["kind"].as_str().unwrap_or(""),
                    esc(x["name"].as_str().unwrap_or("")),
                    x["digest"].as_str().unwrap_or(""),
                    if x["visible"] == true {
                        ""
                    } else {
                        "  (pending: blobs in volumes not yet imported)"
                    }
                );
            }
            Ok(exit::OK)
        }
        Command::Fsck { repair } => {
            let mut a = if *repair {
                open_writer(cli, "fsck --repair")?
            } else {
                open_reader(cli)?
            };
            let repaired = if *repair { a.repair()? } else { Vec::new() };
            let problems = a.fsck()?;
            if cli.json {
                print_json(
                    &json!({"ok": problems.is_empty(), "problems": problems, "repaired": repaired}),
                )?;
            } else {
                for r in &repaired {
                    say!("repaired: {}", esc(r));
                }
                if problems.is_empty() {
                    say!("fsck: clean ({} blobs re-hashed)", a.store.list()?.len());
                }
                for p in &problems {
                    say!("problem: {}", esc(p));
                }
            }
            Ok(if problems.is_empty() {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Audit(AuditCmd::Show { limit }) => {
            let a = open_reader(cli)?;
            let entries = airlock_catalog::audit::entries(a.catalog.conn(), *limit)?;
            if cli.json {
                print_json(&serde_json::to_value(&entries)?)?;
            } else {
                for e in &entries {
                    say!(
                        "{:>5} {} {:<18} {}",
                        e.seq,
                        e.time,
                        e.kind,
                        esc(&e.data.to_string())
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Audit(AuditCmd::Verify) => {
            let a = open_reader(cli)?;
            let r = a.verify_audit()?;
            if cli.json {
                print_json(
                    &json!({"ok": r.problems.is_empty(), "entries": r.entries, "problems": r.problems}),
                )?;
            } else if r.problems.is_empty() {
                say!(
                    "audit log intact: {} entries, chain and signatures verified",
                    r.entries
                );
            } else {
                for p in &r.problems {
                    say!("TAMPERED: {p}");
                }
            }
            Ok(if r.problems.is_empty() {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Lineage { dataset, model } => {
            let a = open_reader(cli)?;
            let rows = match (dataset, model) {
                (Some(d), _) => a.models_using_dataset(d)?,
                (_, Some(m)) => a.model_chain(m)?,
                _ => unreachable!("clap requires one"),
            };
            if cli.json {
                print_json(&serde_json::Value::Array(rows))?;
            } else if let Some(d) = dataset {
                if rows.is_empty() {
                    say!("no imported model names dataset {d}");
                }
                for r in &rows {
                    say!(
                        "{}  {}  dataset {} {}",
                        r["model"].as_str().unwrap_or(""),
                        r["digest"].as_str().unwrap_or(""),
                        r["dataset"]["name"].as_str().unwrap_or(""),
                        r["dataset"]["version"]
                            .as_str()
                            .or(r["dataset"]["digest"].as_str())
                            .unwrap_or("")
                    );
                }
            } else {
                for (i, r) in rows.iter().enumerate() {
                    let pad = "  ".repeat(i);
                    match r["note"].as_str() {
                        Some(n) => say!("{pad}{}: {n}", r["model"].as_str().unwrap_or("")),
                        None => {
                            let ds: Vec<String> = r["lineage"]["datasets"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|d| d["name"].as_str().unwrap_or("").to_string())
                                .collect();
                            say!(
                                "{pad}{} {}{}",
                                r["model"].as_str().unwrap_or(""),
                                r["digest"].as_str().unwrap_or(""),
                                if ds.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (datasets: {})", ds.join(", "))
                                }
                            );
                        }
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Inventory(InventoryCmd::Export { out }) => {
            // Signing needs the private key and the audit entry the writer lock, held only for
            // the moment the entry takes.
            let mut a = open_writer(cli, "inventory export")?;
            let doc = a.export_inventory()?;
            airlock_store_write(out, &doc)?;
            a.audit(
                "inventory-exported",
                json!({"file": out, "blobs": a.catalog.blobs()?.len()}),
            )?;
            if cli.json {
                print_json(&json!({"out": out, "applianceKey": a.public_key().keyid()}))?;
            } else {
                say!(
                    "wrote {} (signed by appliance key {})",
                    out.display(),
                    a.public_key().keyid()
                );
            }
            Ok(exit::OK)
        }
        Command::Serve {
            inbox,
            interval,
            listen: Some(listen),
            tls_cert,
            tls_key,
            tls,
            auth,
            public_url,
            head_timeout,
            max_connections,
            ..
        } => {
            let root = data(cli)?.to_path_buf();
            let inbox = inbox.clone().unwrap_or_else(|| root.join("inbox"));
            let tls = match (tls_cert, tls_key, tls) {
                (Some(c), Some(k), _) => Some((c.clone(), k.clone())),
                (_, _, true) => Some((root.join("tls/server.pem"), root.join("tls/server.key"))),
                _ => None,
            };
            serve::run(
                cli.json,
                serve::Args {
                    root,
                    inbox,
                    interval: Duration::from_millis(*interval),
                    wait: Duration::from_millis(cli.wait),
                    listen: listen.clone(),
                    tls,
                    auth: auth.clone(),
                    public_url: public_url.clone(),
                    head_timeout: Duration::from_millis(*head_timeout),
                    max_connections: *max_connections,
                },
            )
        }
        Command::Serve {
            inbox,
            interval,
            once,
            ..
        } => {
            let root = data(cli)?.to_path_buf();
            let inbox = inbox.clone().unwrap_or_else(|| root.join("inbox"));
            // Fail early on an uninitialized data directory; the watcher takes the writer lock
            // only while it imports.
            drop(Appliance::open_read_only(&root)?);
            let mut w = airlock_appliance::watch::Watcher::new(
                &root,
                &inbox,
                Duration::from_millis(*interval),
                Duration::from_millis(cli.wait),
            );
            tracing::info!(inbox = %inbox.display(), "watching for volumes");
            let mut failed = false;
            let mut idle_polls = 0;
            loop {
                let outcomes = w.poll()?;
                for o in &outcomes {
                    failed |= !o.ok();
                    if cli.json {
                        let mut out = std::io::stdout().lock();
                        serde_json::to_writer(&mut out, o).map_err(std::io::Error::from)?;
                        writeln!(out)?;
                    } else {
                        say!(
                            "{:<9} {} {}",
                            o.status,
                            esc(&o.volume.display().to_string()),
                            esc(&o.reason)
                        );
                    }
                }
                if *once {
                    idle_polls = if outcomes.is_empty() {
                        idle_polls + 1
                    } else {
                        0
                    };
                    if idle_polls >= 3 {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(*interval));
            }
            Ok(if failed { exit::FAILED } else { exit::OK })
        }
    }
}

fn airlock_store_write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
