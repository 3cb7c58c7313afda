//! airlock-appliance: everything `airlockd` does to its data directory.
//!
//! ```text
//! DATA/
//!   blobs/sha256/<hex>     verified content (airlock-store)
//!   catalog.db             bundles, artifacts, names, channels, imports, audit (airlock-catalog)
//!   trust/root.json        the pinned trust root (newest applied version)
//!   keys/appliance.{key,pub}  the appliance's own ed25519 key (audit, inventories)
//!   audit.head             signed (seq, hash) of the newest audit entry
//!   quarantine/            rejected volumes and their *.reason.json
//!   inbox/                 where the watcher looks for new volumes (done/ beneath it)
//!   staging/<bundle>/      blobs of the volume being imported, moved into blobs/ once the
//!                          whole volume verified; removed at every start
//!   staging-parts/<blob>/  verified parts of a split blob, kept across volumes and restarts
//!   vuln-state.json        the (image, advisory, package) pairs the last vulnerability match found
//!                          until the blob is complete (see [`parts`])
//!   config.yaml            optional: policy file, clock skew
//!   lock                   held while a command changes the data directory (see [`lock`])
//! ```
//!
//! * [`Appliance::init`] / [`Appliance::open`] — create or open for writing (taking the writer
//!   lock and cleaning temp files left by a crash) the data directory.
//! * [`Appliance::open_read_only`] — open for reading only: no lock, a read-only catalog
//!   connection, the public key only; works beside a running import or server and without
//!   write permission on the data directory.
//! * [`import`] — the import pipeline: trust root chain, signatures, expiry, rollback,
//!   differential base, policy, then blobs streamed and verified into the store, then one
//!   catalog transaction per volume; rejected volumes go to quarantine.
//! * [`check`] — fsck, inventories and audit verification.
//! * [`report`] — compliance reports: the transfer register, the inventory of what is served
//!   and the integrity of the record, signed by the appliance key.
//! * [`controls`] — the control mapping (NIST SP 800-53, HIPAA, SOC 2, ISO 27001, GDPR) and the
//!   audit entries that evidence each control in a report's period.
//! * [`oscal`] — the `full` report as OSCAL assessment results, and airlock's OSCAL component
//!   definition.
//! * [`watch`] — the inbox watcher.
//! * [`tls`] — the appliance CA and server certificate (`DATA/tls/`) for `airlockd serve`.

pub mod check;
pub mod controls;
pub mod error;
pub mod head;
pub mod import;
pub mod lineage;
pub mod lock;
pub mod modes;
pub mod oscal;
pub mod parts;
pub mod remote;
pub mod report;
pub mod tls;
pub mod vuln;
pub mod watch;

#[cfg(test)]
mod import_tests;

use std::fs;
use std::path::{Path, PathBuf};

use airlock_catalog::{audit, Catalog};
use airlock_core::time::{format_rfc3339, now};
use airlock_policy::Policy;
use airlock_store::BlobStore;
use airlock_trust::{KeyPair, PublicKey, Signer, TrustRoot};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub use check::Summary;
pub use error::ApplianceError;
pub use import::{Outcome, Status};

/// Optional `DATA/config.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Rego policy file replacing the built-in policy (relative to DATA).
    pub policy: Option<PathBuf>,
    /// Tolerated clock difference for expiry checks, e.g. `5m`.
    pub clock_skew_seconds: Option<i64>,
    /// Blobs in S3-compatible object storage instead of `DATA/blobs` (see [`remote`]).
    pub store: Option<remote::StoreConfig>,
}

pub struct Appliance {
    pub root: PathBuf,
    pub store: BlobStore,
    pub catalog: Catalog,
    /// The appliance's private key; `None` when opened read-only.
    key: Option<KeyPair>,
    public: PublicKey,
    pub trust: TrustRoot,
    pub policy: Policy,
    pub clock_skew: i64,
    /// Imports re-verify blobs the store already holds instead of skipping them
    /// (`airlockd import --verify-present`).
    pub verify_present: bool,
    /// Who runs imports, for the audit record (`airlockd import --operator`); defaults to
    /// [`default_operator`].
    pub operator: String,
    /// The object store, when blobs live in one (snapshots for replicas are published there).
    pub remote: Option<remote::Remote>,
    /// The writer lock; `None` when opened read-only.
    _lock: Option<lock::DataLock>,
}

/// The operator recorded when none is named: the user who ran `sudo` (`SUDO_USER`), else the
/// name of the process's effective user from `/etc/passwd`, else `uid N`.
pub fn default_operator() -> String {
    if let Ok(u) = std::env::var("SUDO_USER") {
        if !u.is_empty() && u.len() <= 64 && !u.chars().any(char::is_control) {
            return u;
        }
    }
    let uid = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    });
    let Some(uid) = uid else {
        return "unknown".into();
    };
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid && !f[0].is_empty()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Checks an operator name given on the command line: 1 to 128 bytes, no control characters.
pub fn check_operator(name: &str) -> Result<String, ApplianceError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ApplianceError::Usage(format!(
            "--operator {name:?}: expected 1 to 128 bytes without control characters"
        )));
    }
    Ok(name.to_string())
}

pub const DEFAULT_SKEW: i64 = 300;

fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> ApplianceError {
    let path = path.to_path_buf();
    move |source| ApplianceError::Io { path, op, source }
}

impl Appliance {
    /// Creates the data directory, pins `trust` (verified as a self-signed, unexpired root) and
    /// generates the appliance key and TLS material for the default names ([`tls::default_names`]).
    pub fn init(root: &Path, trust: &[u8]) -> Result<Self, ApplianceError> {
        Self::init_with_tls_names(root, trust, &tls::default_names())
    }

    /// [`Appliance::init`], with the server certificate issued for `tls_names`.
    pub fn init_with_tls_names(
        root: &Path,
        trust: &[u8],
        tls_names: &[String],
    ) -> Result<Self, ApplianceError> {
        Self::init_with(root, trust, tls_names, None)
    }

    /// [`Appliance::init_with_tls_names`], keeping blobs in the object store `store` names
    /// (written to `DATA/config.yaml`) instead of `DATA/blobs`.
    pub fn init_with(
        root: &Path,
        trust: &[u8],
        tls_names: &[String],
        store: Option<remote::StoreConfig>,
    ) -> Result<Self, ApplianceError> {
        if root.join("catalog.db").exists() {
            return Err(ApplianceError::Usage(format!(
                "{} is already initialized (catalog.db exists)",
                root.display()
            )));
        }
        let t =
            airlock_core::time::now_checked().map_err(|e| ApplianceError::Usage(e.to_string()))?;
        let pinned = TrustRoot::load_initial(trust, t).map_err(|source| ApplianceError::Trust {
            what: "the trust root given to init".into(),
            source,
        })?;
        for d in ["quarantine", "inbox/done", "trust", "keys"] {
            fs::create_dir_all(root.join(d)).map_err(io(&root.join(d), "create directory"))?;
        }
        // A data directory that existed before (a mount point, say) gets 0750 like the rest.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root, fs::Permissions::from_mode(0o750))
                .map_err(io(root, "set data directory mode"))?;
        }
        if let Some(cfg) = &store {
            #[derive(serde::Serialize)]
            struct StoreOnly<'a> {
                store: &'a remote::StoreConfig,
            }
            let text = serde_norway::to_string(&StoreOnly { store: cfg })
                .expect("store config serialises");
            airlock_store::write_atomic(&root.join("config.yaml"), text.as_bytes())?;
        }
        let (store, _) = remote::open_store(root, store.as_ref(), false)?;
        let key = KeyPair::generate();
        key.write_files(&root.join("keys"), "appliance")?;
        airlock_store::write_atomic(&root.join("trust/root.json"), trust)?;
        tls::create(root, tls_names)?;
        let mut catalog = Catalog::open(&root.join("catalog.db"))?;
        let now_s = format_rfc3339(t);
        catalog.write(|tx| {
            Catalog::pin_root(tx, pinned.meta.version, trust, &now_s)?;
            audit::append(
                tx,
                &key,
                "initialized",
                json!({"trustRootVersion": pinned.meta.version, "applianceKey": key.public_key().keyid(),
                       "bundleSigners": pinned.meta.roles["bundle"].keyids, "bundleThreshold": pinned.meta.roles["bundle"].threshold}),
                &now_s,
            )?;
            Ok(())
        })?;
        drop((catalog, store));
        let a = Self::open(root, "init", Duration::ZERO)?;
        a.write_head()?;
        Ok(a)
    }

    /// Opens an initialized data directory for writing: takes the writer lock (waiting up to
    /// `wait`, see [`lock`]) for `purpose`, and removes temp files a crash may have left.
    pub fn open(root: &Path, purpose: &str, wait: Duration) -> Result<Self, ApplianceError> {
        require_initialized(root)?;
        let lock = lock::DataLock::acquire(root, purpose, wait)?;
        let config = load_config(root)?;
        let (store, remote) = remote::open_store(root, config.store.as_ref(), false)?;
        // Staged blobs of an import that never finished were never part of the store.
        let staging = root.join("staging");
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io(&staging, "remove staging"))?;
        }
        let cleaned = store.clean_temp()?;
        if cleaned > 0 {
            tracing::warn!("removed {cleaned} temp file(s) left by an interrupted import");
        }
        let catalog = Catalog::open(&root.join("catalog.db"))?;
        let key = KeyPair::load(&root.join("keys/appliance.key"))?;
        let public = key.public_key();
        let mut a = Self::assemble(root, store, catalog, Some(key), public, Some(lock))?;
        a.remote = remote;
        Ok(a)
    }

    /// Opens an initialized data directory for reading only: no lock (readers never wait for
    /// a writer), a read-only catalog connection, the appliance's public key. Methods that
    /// change the data directory or sign fail on it.
    pub fn open_read_only(root: &Path) -> Result<Self, ApplianceError> {
        require_initialized(root)?;
        let config = load_config(root)?;
        let (store, remote) = remote::open_store(root, config.store.as_ref(), true)?;
        let catalog = Catalog::open_read_only(&root.join("catalog.db"))?;
        let public = PublicKey::load(&root.join("keys/appliance.pub"))?;
        let mut a = Self::assemble(root, store, catalog, None, public, None)?;
        a.remote = remote;
        Ok(a)
    }

    fn assemble(
        root: &Path,
        store: BlobStore,
        catalog: Catalog,
        key: Option<KeyPair>,
        public: PublicKey,
        lock: Option<lock::DataLock>,
    ) -> Result<Self, ApplianceError> {
        let (version, doc) = catalog
            .pinned_root()?
            .ok_or_else(|| ApplianceError::Usage("catalog has no pinned trust root".into()))?;
        // The pinned root was verified when it was pinned; re-check its signatures (not its
        // expiry, so an operator can still read and rotate an appliance whose root expired).
        let trust = TrustRoot::load_initial(&doc, 0).map_err(|source| ApplianceError::Trust {
            what: format!("pinned trust root version {version}"),
            source,
        })?;
        let config = load_config(root)?;
        let policy = match &config.policy {
            Some(p) => Policy::from_file(&root.join(p))?,
            None => Policy::builtin(),
        };
        Ok(Appliance {
            root: root.to_path_buf(),
            store,
            catalog,
            key,
            public,
            trust,
            policy,
            clock_skew: config.clock_skew_seconds.unwrap_or(DEFAULT_SKEW),
            verify_present: false,
            operator: default_operator(),
            remote: None,
            _lock: lock,
        })
    }

    /// Is this appliance open for writing (holding the lock, with its private key)?
    pub fn writable(&self) -> bool {
        self.key.is_some()
    }

    /// The private key, or an error naming what needed it on a read-only appliance.
    fn key(&self) -> Result<&KeyPair, ApplianceError> {
        self.key.as_ref().ok_or_else(read_only)
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub fn signer(&self) -> Result<&dyn Signer, ApplianceError> {
        Ok(self.key()? as &dyn Signer)
    }

    /// Writes `audit.head`: the newest entry's seq and hash, signed, so that deleting the newest
    /// entries from the database is detectable.
    pub fn write_head(&self) -> Result<(), ApplianceError> {
        if let Some((seq, hash)) = self.catalog.audit_head()? {
            let doc = head::sign(seq, &hash, self.key()?)?;
            airlock_store::write_atomic(&self.root.join("audit.head"), &doc)?;
        }
        Ok(())
    }

    /// Appends one audit entry in its own transaction and updates the head.
    pub fn audit(&mut self, kind: &str, data: serde_json::Value) -> Result<(), ApplianceError> {
        let now_s = format_rfc3339(now());
        let key = self.key.as_ref().ok_or_else(read_only)?;
        self.catalog
            .write(|tx| audit::append(tx, key, kind, data, &now_s).map(|_| ()))?;
        self.write_head()
    }
}

/// The error of a method that writes or signs, called on an appliance opened read-only.
pub(crate) fn read_only() -> ApplianceError {
    ApplianceError::Usage("the data directory was opened read-only".into())
}

fn require_initialized(root: &Path) -> Result<(), ApplianceError> {
    if root.join("catalog.db").exists() {
        return Ok(());
    }
    Err(ApplianceError::Usage(format!(
        "{} is not an airlockd data directory; run `airlockd init --data {} --trust ROOT` first",
        root.display(),
        root.display()
    )))
}

fn load_config(root: &Path) -> Result<Config, ApplianceError> {
    let p = root.join("config.yaml");
    match fs::read_to_string(&p) {
        Ok(text) => serde_norway::from_str(&text)
            .map_err(|e| ApplianceError::Usage(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(io(&p, "read config")(e)),
    }
}
