//! An appliance whose blobs live in S3-compatible object storage, and the catalog snapshots
//! its single writer publishes for serving replicas.
//!
//! `DATA/config.yaml` names the store (`store: {url: s3://BUCKET/PREFIX, endpoint: URL,
//! region: R}`); `airlockd init --store` writes it. Credentials come from the environment or
//! the shared credentials file, never from the command line or the data directory. Only a build
//! with the `s3` feature can open such an appliance: a default `airlockd` links no HTTP client
//! and refuses with a message saying so.
//!
//! After each committed import the writer publishes a snapshot: a consistent copy of
//! `catalog.db` (`VACUUM INTO`) uploaded as `catalog/catalog-<version>.db`, then
//! `catalog/head.json`, a DSSE envelope signed by the appliance key over [`SnapshotHead`]
//! (version, object key, SHA-256, size, time). The version is the audit log's newest sequence
//! number, so it only grows. A replica loads a snapshot only when the head verifies against the
//! appliance's public key, its version is newer than what it serves, and the downloaded file
//! hashes to the head's digest.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_core::Digest;
use airlock_store::BlobStore;
use airlock_trust::{Envelope, PublicKey, Signer};
use serde::{Deserialize, Serialize};

use crate::ApplianceError;

/// DSSE payload type of a catalog snapshot head.
pub const SNAPSHOT_PAYLOAD_TYPE: &str = "application/vnd.airlock.catalog-snapshot.v1+json";
/// Object key of the newest snapshot's head, under the store prefix.
pub const HEAD_KEY: &str = "catalog/head.json";
/// Largest head document read.
pub const MAX_HEAD: u64 = 64 << 10;
/// Largest catalog snapshot a replica downloads.
pub const MAX_SNAPSHOT: u64 = 4 << 30;

/// Key prefix of the snapshot files (`catalog/catalog-<version>.db`).
const SNAPSHOT_PREFIX: &str = "catalog/catalog-";

/// Of the snapshot files `keys`, those to delete once `current` is published: all but the two
/// newest up to `current` (versions are zero-padded, so key order is version order). Newer
/// keys than `current`, which only another writer could have made, are left alone.
fn stale_snapshots(mut keys: Vec<String>, current: &str) -> Vec<String> {
    keys.retain(|k| k.starts_with(SNAPSHOT_PREFIX) && k.ends_with(".db") && k.as_str() <= current);
    keys.sort();
    let keep = keys.len().min(2);
    keys.truncate(keys.len() - keep);
    keys
}

/// Where the appliance keeps its blobs, from `DATA/config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `s3://BUCKET[/PREFIX]`.
    pub url: String,
    /// The S3 endpoint (`https://rgw.rack:7480`).
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// What a snapshot head says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotHead {
    /// Strictly increasing: the newest audit sequence number when it was taken.
    pub version: u64,
    /// Object key of the SQLite file, under the store prefix.
    pub key: String,
    pub sha256: String,
    pub size: u64,
    /// RFC 3339.
    pub created: String,
}

/// Signs a head.
pub fn sign_head(h: &SnapshotHead, key: &dyn Signer) -> Result<Vec<u8>, ApplianceError> {
    let payload = serde_json::to_vec(h).expect("head serializes");
    Ok(Envelope::sign(SNAPSHOT_PAYLOAD_TYPE, &payload, &[key])
        .map_err(|e| ApplianceError::Usage(format!("signing the catalog snapshot head: {e}")))?
        .to_json())
}

/// The head a document carries, once its signature by `key` verified.
pub fn verify_head(bytes: &[u8], key: &PublicKey) -> Result<SnapshotHead, String> {
    let env = Envelope::parse(bytes).map_err(|e| format!("snapshot head: {e}"))?;
    let keys = BTreeMap::from([(key.keyid(), *key)]);
    let ok = env
        .verify(SNAPSHOT_PAYLOAD_TYPE, &keys, 1, "catalog snapshot head")
        .map_err(|_| {
            "the snapshot head's signature does not verify against the appliance key".to_string()
        })?;
    let h: SnapshotHead = serde_json::from_slice(&ok.payload)
        .map_err(|e| format!("snapshot head: malformed: {e}"))?;
    Digest::from_hex(&h.sha256).map_err(|e| format!("snapshot head: sha256: {e}"))?;
    if !h.key.starts_with("catalog/") || h.key.contains("..") || h.key.len() > 256 {
        return Err(format!(
            "snapshot head: key {:?} is not under catalog/",
            h.key
        ));
    }
    Ok(h)
}

/// The appliance's handle on its object store, for publishing snapshots.
#[derive(Debug, Clone)]
pub struct Remote {
    #[cfg(feature = "s3")]
    pub s3: airlock_s3::S3Store,
    #[cfg(not(feature = "s3"))]
    _never: std::convert::Infallible,
}

/// Opens the store `cfg` names (the directory store in `root` when `None`).
pub fn open_store(
    root: &Path,
    cfg: Option<&StoreConfig>,
    existing_only: bool,
) -> Result<(BlobStore, Option<Remote>), ApplianceError> {
    let Some(cfg) = cfg else {
        let s = if existing_only {
            BlobStore::open_existing(root)?
        } else {
            BlobStore::open(root)?
        };
        return Ok((s, None));
    };
    open_s3(root, cfg)
}

#[cfg(feature = "s3")]
fn open_s3(root: &Path, cfg: &StoreConfig) -> Result<(BlobStore, Option<Remote>), ApplianceError> {
    let s3 = connect(cfg, &root.join("tmp/s3-spool"))?;
    Ok((
        BlobStore::with_backend(std::sync::Arc::new(s3.clone())),
        Some(Remote { s3 }),
    ))
}

/// Connects to the bucket `cfg` names, with credentials from the environment.
#[cfg(feature = "s3")]
pub fn connect(cfg: &StoreConfig, spool: &Path) -> Result<airlock_s3::S3Store, ApplianceError> {
    let c = airlock_s3::S3Config::parse_url(&cfg.url, &cfg.endpoint, cfg.region.as_deref())
        .map_err(|e| ApplianceError::Usage(format!("store {}: {e}", cfg.url)))?;
    let creds = airlock_s3::Credentials::from_env()
        .map_err(|e| ApplianceError::Usage(format!("store {}: credentials: {e}", cfg.url)))?;
    std::fs::create_dir_all(spool).map_err(|source| ApplianceError::Io {
        path: spool.to_path_buf(),
        op: "create spool directory",
        source,
    })?;
    Ok(airlock_s3::S3Store::open(c, creds, spool)?)
}

#[cfg(not(feature = "s3"))]
fn open_s3(_root: &Path, cfg: &StoreConfig) -> Result<(BlobStore, Option<Remote>), ApplianceError> {
    Err(ApplianceError::Usage(format!(
        "the store is {} but this airlockd was built without S3 support (cargo feature `s3`)",
        cfg.url
    )))
}

impl crate::Appliance {
    /// Publishes a snapshot of the catalog for serving replicas when the store is an object
    /// store; returns its version (`None` for a directory store).
    pub fn publish_snapshot(&self) -> Result<Option<u64>, ApplianceError> {
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let version = self.catalog.audit_head()?.map_or(0, |(seq, _)| seq);
        let dir = self.root.join("tmp");
        std::fs::create_dir_all(&dir).map_err(|source| ApplianceError::Io {
            path: dir.clone(),
            op: "create directory",
            source,
        })?;
        let file = dir.join(format!("catalog-snapshot-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&file);
        self.catalog.snapshot_to(&file)?;
        let res = (|| -> Result<u64, ApplianceError> {
            let (sha256, size) = {
                let f = std::fs::File::open(&file).map_err(|source| ApplianceError::Io {
                    path: file.clone(),
                    op: "open snapshot",
                    source,
                })?;
                airlock_store::hash_open_file(&f, |_| {}).map_err(|source| ApplianceError::Io {
                    path: file.clone(),
                    op: "hash snapshot",
                    source,
                })?
            };
            let head = SnapshotHead {
                version,
                key: format!("catalog/catalog-{version:020}.db"),
                sha256: sha256.hex(),
                size,
                created: airlock_core::time::format_rfc3339(airlock_core::time::now()),
            };
            let doc = sign_head(&head, self.signer()?)?;
            remote.put_file(&head.key, &file)?;
            remote.put_object(HEAD_KEY, &doc)?;
            remote.prune_snapshots(&head.key);
            Ok(version)
        })();
        let _ = std::fs::remove_file(&file);
        let v = res?;
        tracing::info!(version = v, "published the catalog snapshot for replicas");
        Ok(Some(v))
    }
}

impl Remote {
    /// Deletes the snapshot files older than the one before `current`. The one before stays:
    /// a replica that read the previous head may still be downloading it. A failure is logged
    /// and left for the next publication.
    fn prune_snapshots(&self, current: &str) {
        let keys = match self.list_keys(SNAPSHOT_PREFIX) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("listing old catalog snapshots: {e}");
                return;
            }
        };
        for key in stale_snapshots(keys.into_iter().map(|(k, _)| k).collect(), current) {
            match self.delete_object(&key) {
                Ok(()) => tracing::debug!(key, "deleted an old catalog snapshot"),
                Err(e) => tracing::warn!(key, "deleting an old catalog snapshot: {e}"),
            }
        }
    }

    /// The blob store under `rel` in the same bucket (`staging-parts/<hex>`).
    #[cfg(feature = "s3")]
    pub(crate) fn sub_store(&self, rel: &str) -> Result<BlobStore, ApplianceError> {
        Ok(BlobStore::with_backend(std::sync::Arc::new(
            self.s3.sub(rel)?,
        )))
    }
    /// `s3://BUCKET/PREFIX/key`.
    #[cfg(feature = "s3")]
    pub(crate) fn object_url(&self, key: &str) -> String {
        self.s3.object_url(key)
    }
    /// Is there an object `key`?
    #[cfg(feature = "s3")]
    pub(crate) fn exists(&self, key: &str) -> Result<bool, ApplianceError> {
        Ok(self.s3.object_size(key)?.is_some())
    }
    #[cfg(feature = "s3")]
    fn list_keys(&self, sub_prefix: &str) -> Result<Vec<(String, u64)>, ApplianceError> {
        Ok(self.s3.list_keys(sub_prefix)?)
    }
    #[cfg(feature = "s3")]
    fn delete_object(&self, key: &str) -> Result<(), ApplianceError> {
        Ok(self.s3.delete_object(key)?)
    }
    #[cfg(not(feature = "s3"))]
    pub(crate) fn sub_store(&self, _rel: &str) -> Result<BlobStore, ApplianceError> {
        match self._never {}
    }
    #[cfg(not(feature = "s3"))]
    pub(crate) fn object_url(&self, _key: &str) -> String {
        match self._never {}
    }
    #[cfg(not(feature = "s3"))]
    pub(crate) fn exists(&self, _key: &str) -> Result<bool, ApplianceError> {
        match self._never {}
    }
    #[cfg(not(feature = "s3"))]
    fn list_keys(&self, _sub_prefix: &str) -> Result<Vec<(String, u64)>, ApplianceError> {
        match self._never {}
    }
    #[cfg(not(feature = "s3"))]
    fn delete_object(&self, _key: &str) -> Result<(), ApplianceError> {
        match self._never {}
    }
    #[cfg(feature = "s3")]
    pub(crate) fn put_file(&self, key: &str, path: &Path) -> Result<(), ApplianceError> {
        Ok(self.s3.put_file(key, path)?)
    }
    #[cfg(feature = "s3")]
    pub(crate) fn put_object(&self, key: &str, bytes: &[u8]) -> Result<(), ApplianceError> {
        Ok(self.s3.put_object(key, bytes)?)
    }
    #[cfg(not(feature = "s3"))]
    pub(crate) fn put_file(&self, _key: &str, _path: &Path) -> Result<(), ApplianceError> {
        match self._never {}
    }
    #[cfg(not(feature = "s3"))]
    pub(crate) fn put_object(&self, _key: &str, _bytes: &[u8]) -> Result<(), ApplianceError> {
        match self._never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_trust::KeyPair;

    fn head(v: u64) -> SnapshotHead {
        SnapshotHead {
            version: v,
            key: format!("catalog/catalog-{v:020}.db"),
            sha256: "ab".repeat(32),
            size: 10,
            created: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn heads_verify_only_with_the_appliance_key() {
        let k = KeyPair::generate();
        let doc = sign_head(&head(7), &k).unwrap();
        assert_eq!(verify_head(&doc, &k.public_key()).unwrap(), head(7));
        let other = KeyPair::generate();
        assert!(verify_head(&doc, &other.public_key())
            .unwrap_err()
            .contains("does not verify"));
        let mut bad = head(8);
        bad.key = "blobs/sha256/../../x".into();
        let doc = sign_head(&bad, &k).unwrap();
        assert!(verify_head(&doc, &k.public_key())
            .unwrap_err()
            .contains("not under catalog/"));
        assert!(verify_head(b"{}", &k.public_key()).is_err());
    }

    #[test]
    fn old_snapshots_are_pruned_but_the_previous_one_stays() {
        let k = |v: u64| format!("catalog/catalog-{v:020}.db");
        let keys = vec![k(9), k(3), k(12), k(7), "catalog/head.json".into(), k(15)];
        assert_eq!(stale_snapshots(keys.clone(), &k(12)), vec![k(3), k(7)]);
        assert_eq!(stale_snapshots(vec![k(3)], &k(3)), Vec::<String>::new());
        assert_eq!(
            stale_snapshots(vec![k(2), k(3)], &k(3)),
            Vec::<String>::new()
        );
        assert_eq!(stale_snapshots(keys, &k(9)), vec![k(3)]);
    }

    #[test]
    fn a_default_build_refuses_an_object_store_by_name() {
        if cfg!(feature = "s3") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            url: "s3://bucket/prefix".into(),
            endpoint: "http://127.0.0.1:9".into(),
            region: None,
        };
        let e = open_store(d.path(), Some(&cfg), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("built without S3 support"), "{e}");
    }
}
