//! airlock-catalog: what the appliance knows, in one SQLite database (`DATA/catalog.db`).
//!
//! * [`Catalog`] — opens the database (WAL, `synchronous=FULL`), applies [`schema`] migrations,
//!   and offers the queries the importer, the lister, fsck and the reports need. Writes happen
//!   in one transaction per imported volume ([`Catalog::commit_volume`]), so a crash leaves
//!   either the whole volume recorded or none of it.
//! * [`audit`] — the append-only audit log: every entry carries the hash of the previous one and
//!   an ed25519 signature by the appliance key; [`Catalog::verify_audit`] names the first entry
//!   that was edited, deleted, inserted or moved.
//!
//! All SQL lives in this crate: other crates read through [`Catalog`]'s methods and write
//! through [`Catalog::write`] with the statements offered here.

pub mod audit;
pub mod error;
pub mod schema;

use std::path::Path;

use airlock_core::bundle::{Artifact, BundleManifest};
use airlock_core::Digest;
use airlock_trust::PublicKey;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

pub use error::CatalogError;

pub struct Catalog {
    conn: Connection,
}

/// A bundle the appliance has seen.
#[derive(Debug, Clone, Serialize)]
pub struct BundleRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub channel: String,
    pub sequence: u64,
    pub volumes: u32,
    pub imported_volumes: Vec<u32>,
    pub complete: bool,
    pub first_seen: String,
}

/// A visible (importable, servable) artifact.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRow {
    pub kind: String,
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub bundle: String,
    pub visible: bool,
    pub provenance: serde_json::Value,
}

/// A channel and the newest sequence accepted on it.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelRow {
    pub channel: String,
    pub sequence: u64,
    /// The bundle that carried that sequence.
    pub bundle: String,
}

/// One recorded import attempt.
#[derive(Debug, Clone, Serialize)]
pub struct ImportRow {
    pub id: i64,
    pub volume: String,
    pub bundle: Option<String>,
    /// `accepted`, `duplicate`, `rejected` or `failed`.
    pub outcome: String,
    pub reason: String,
    pub at: String,
}

/// A visible artifact as the report of what is served sees it: the artifact, the bundle that
/// carried it, and whether it is the one its name currently resolves to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedRow {
    pub kind: String,
    pub name: String,
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub provenance: serde_json::Value,
    pub bundle: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub channel: String,
    pub sequence: u64,
    /// The `names` table points at this artifact (the newest visible one under its name);
    /// older visible versions stay reachable by digest.
    pub current: bool,
}

/// One pinned trust root version.
#[derive(Debug, Clone)]
pub struct TrustRootRow {
    pub version: u64,
    pub applied_at: String,
    pub document: Vec<u8>,
}

/// A served name that now resolves to another digest (or was served for the first time).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NameChange {
    pub kind: String,
    pub name: String,
    /// `None`: the name was not served before.
    pub previous: Option<String>,
    pub new: String,
}

/// Everything one accepted volume adds, committed atomically.
pub struct VolumeCommit<'a> {
    pub bundle_id: &'a Digest,
    pub statement: &'a [u8],
    pub manifest: &'a BundleManifest,
    pub signers: &'a [String],
    pub volume: u32,
    /// Blobs verified (or found present) in this volume.
    pub blobs: &'a [(Digest, u64)],
    /// Artifacts of the bundle whose whole closure is now present.
    pub visible: &'a [&'a Artifact],
    pub now: &'a str,
}

/// A path as the path part of an SQLite `file:` URI (`?`, `#` and `%` escaped).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        schema::migrate(&mut conn)?;
        Ok(Catalog { conn })
    }

    /// Opens an existing catalog for reading only (the HTTP server): no migrations, no writes.
    /// Refuses a catalog whose schema is newer or older than this build knows.
    ///
    /// A reader without write access to the data directory (an auditor) cannot create the
    /// WAL's shared-memory file; when no writer is active (no `-wal` file exists, so every
    /// change is in the database file itself) it reads the file as immutable instead.
    pub fn open_read_only(path: &Path) -> Result<Self, CatalogError> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let probe = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let mut conn = Connection::open_with_flags(path, flags)?;
        let found = match probe(&conn) {
            Ok(v) => v,
            Err(e) => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                if Path::new(&wal).exists() {
                    return Err(e.into());
                }
                let uri = format!("file:{}?immutable=1", uri_path(path));
                conn =
                    Connection::open_with_flags(uri, flags | rusqlite::OpenFlags::SQLITE_OPEN_URI)?;
                probe(&conn)?
            }
        };
        let known = schema::known_version();
        if found > known {
            return Err(CatalogError::TooNew { found, known });
        }
        Ok(Catalog { conn })
    }

    /// SQLite's `data_version`: changes whenever another connection commits, so a reader can
    /// cheaply tell whether its cached view is stale.
    pub fn data_version(&self) -> Result<i64, CatalogError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// The raw connection, for this crate's tests (which tamper with the audit table).
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The audit log in order (optionally only the last `limit` entries).
    pub fn audit_entries(&self, limit: Option<u32>) -> Result<Vec<audit::Entry>, CatalogError> {
        audit::entries(&self.conn, limit)
    }

    /// The newest audit entry's (seq, hash), if any.
    /// Calls `f` with every audit entry in order without holding the log in memory.
    pub fn audit_for_each(
        &self,
        f: impl FnMut(audit::Entry) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        audit::for_each(&self.conn, f)
    }

    pub fn audit_head(&self) -> Result<Option<(u64, String)>, CatalogError> {
        audit::head(&self.conn)
    }

    /// The stored hash of audit entry `seq`, if the log has that entry.
    pub fn audit_hash(&self, seq: u64) -> Result<Option<String>, CatalogError> {
        audit::hash_of(&self.conn, seq)
    }

    /// Checks numbering, chain, hashes and signatures of the whole audit log against the
    /// appliance key; the report names the first entry where the chain breaks.
    pub fn verify_audit(&self, key: &PublicKey) -> Result<audit::Report, CatalogError> {
        audit::verify(&self.conn, key)
    }

    /// Runs `f` in one IMMEDIATE transaction (one writer at a time).
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The pinned trust root: the newest version applied.
    pub fn pinned_root(&self) -> Result<Option<(u64, Vec<u8>)>, CatalogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT version, document FROM trust_roots ORDER BY version DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn channel_sequence(&self, channel: &str) -> Result<Option<(u64, String)>, CatalogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sequence, bundle FROM channels WHERE channel = ?1",
                [channel],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn bundle(&self, id: &Digest) -> Result<Option<BundleRow>, CatalogError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, name, version, channel, sequence, volumes, complete, first_seen FROM bundles WHERE id = ?1",
                [id.to_string()],
                bundle_row,
            )
            .optional()?;
        match row {
            Some(mut b) => {
                b.imported_volumes = self.imported_volumes(&b.id)?;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }

    fn imported_volumes(&self, id: &str) -> Result<Vec<u32>, CatalogError> {
        let mut st = self
            .conn
            .prepare("SELECT volume FROM bundle_volumes WHERE bundle = ?1 ORDER BY volume")?;
        let v = st
            .query_map([id], |r| r.get::<_, i64>(0).map(|x| x as u32))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    pub fn bundles(&self) -> Result<Vec<BundleRow>, CatalogError> {
        let mut st = self.conn.prepare(
            "SELECT id, name, version, channel, sequence, volumes, complete, first_seen FROM bundles ORDER BY first_seen, id",
        )?;
        let mut rows: Vec<BundleRow> = st.query_map([], bundle_row)?.collect::<Result<_, _>>()?;
        for b in &mut rows {
            b.imported_volumes = self.imported_volumes(&b.id)?;
        }
        Ok(rows)
    }

    pub fn channels(&self) -> Result<Vec<ChannelRow>, CatalogError> {
        let mut st = self
            .conn
            .prepare("SELECT channel, sequence, bundle FROM channels ORDER BY channel")?;
        let v = st
            .query_map([], |r| {
                Ok(ChannelRow {
                    channel: r.get(0)?,
                    sequence: r.get::<_, i64>(1)? as u64,
                    bundle: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Artifacts, visible or not (pending ones wait for more volumes).
    pub fn artifacts(&self) -> Result<Vec<ArtifactRow>, CatalogError> {
        let mut st = self.conn.prepare(
            "SELECT kind, name, digest, media_type, bundle, visible, provenance FROM artifacts ORDER BY kind, name, bundle",
        )?;
        let v = st
            .query_map([], |r| {
                let prov: String = r.get(6)?;
                Ok(ArtifactRow {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    digest: r.get(2)?,
                    media_type: r.get(3)?,
                    bundle: r.get(4)?,
                    visible: r.get::<_, i64>(5)? != 0,
                    provenance: serde_json::from_str(&prov).unwrap_or(serde_json::Value::Null),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// The names served: (kind, name) → digest of the newest visible artifact.
    pub fn names(&self) -> Result<Vec<(String, String, String)>, CatalogError> {
        let mut st = self
            .conn
            .prepare("SELECT kind, name, digest FROM names ORDER BY kind, name")?;
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Every blob digest the catalog records, with its size.
    pub fn blobs(&self) -> Result<Vec<(Digest, u64)>, CatalogError> {
        let mut st = self
            .conn
            .prepare("SELECT digest, size FROM blobs ORDER BY digest")?;
        let rows: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(d, s)| {
                Ok((
                    d.parse().map_err(|e: airlock_core::CoreError| {
                        CatalogError::Corrupt(e.to_string())
                    })?,
                    s as u64,
                ))
            })
            .collect()
    }

    /// Writes a consistent copy of the whole catalog to `dest` (a new file), as of the last
    /// committed transaction: what a serving replica loads.
    pub fn snapshot_to(&self, dest: &Path) -> Result<(), CatalogError> {
        let dest = dest.to_str().ok_or_else(|| {
            CatalogError::Corrupt(format!("snapshot path {} is not UTF-8", dest.display()))
        })?;
        self.conn.execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }

    /// The signed statements of every bundle (for closure checks in fsck).
    pub fn statements(&self) -> Result<Vec<(String, Vec<u8>)>, CatalogError> {
        let mut st = self.conn.prepare("SELECT id, statement FROM bundles")?;
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Records an accepted volume: bundle (first time), volume, blobs, channel sequence,
    /// artifacts and the names of those now visible. Call inside [`Catalog::write`]. Returns
    /// the served names whose digest this changed (the change record).
    pub fn commit_volume(
        tx: &Transaction<'_>,
        c: &VolumeCommit<'_>,
    ) -> Result<Vec<NameChange>, CatalogError> {
        let id = c.bundle_id.to_string();
        let m = c.manifest;
        tx.execute(
            "INSERT OR IGNORE INTO bundles (id, name, version, channel, sequence, volumes, complete, statement, signers, first_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
            params![id, m.name, m.version, m.channel, m.sequence as i64, m.volumes, c.statement, serde_json::to_string(c.signers)?, c.now],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO bundle_volumes (bundle, volume, imported_at) VALUES (?1, ?2, ?3)",
            params![id, c.volume, c.now],
        )?;
        {
            let mut st = tx.prepare(
                "INSERT OR IGNORE INTO blobs (digest, size, added_at) VALUES (?1, ?2, ?3)",
            )?;
            for (d, s) in c.blobs {
                st.execute(params![d.to_string(), *s as i64, c.now])?;
            }
        }
        let prev: Option<i64> = tx
            .query_row(
                "SELECT sequence FROM channels WHERE channel = ?1",
                [&m.channel],
                |r| r.get(0),
            )
            .optional()?;
        if prev.is_none_or(|p| (p as u64) < m.sequence) {
            tx.execute(
                "INSERT INTO channels (channel, sequence, bundle) VALUES (?1, ?2, ?3)
                 ON CONFLICT(channel) DO UPDATE SET sequence = excluded.sequence, bundle = excluded.bundle",
                params![m.channel, m.sequence as i64, id],
            )?;
        }
        for a in &m.artifacts {
            tx.execute(
                "INSERT OR IGNORE INTO artifacts (bundle, kind, name, digest, media_type, size, provenance, visible)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![id, a.kind.to_string(), a.name, a.digest.to_string(), a.media_type, a.size as i64, serde_json::to_string(&a.provenance)?],
            )?;
        }
        let mut changes = Vec::new();
        for a in c.visible {
            let name_digest = |tx: &Transaction<'_>| -> Result<Option<String>, CatalogError> {
                Ok(tx
                    .query_row(
                        "SELECT digest FROM names WHERE kind = ?1 AND name = ?2",
                        params![a.kind.to_string(), a.name],
                        |r| r.get(0),
                    )
                    .optional()?)
            };
            let previous = name_digest(tx)?;
            tx.execute(
                "UPDATE artifacts SET visible = 1 WHERE bundle = ?1 AND kind = ?2 AND name = ?3",
                params![id, a.kind.to_string(), a.name],
            )?;
            tx.execute(
                "INSERT INTO names (kind, name, digest, bundle, sequence) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(kind, name) DO UPDATE SET digest = excluded.digest, bundle = excluded.bundle, sequence = excluded.sequence
                 WHERE excluded.sequence >= names.sequence",
                params![a.kind.to_string(), a.name, a.digest.to_string(), id, m.sequence as i64],
            )?;
            let new = name_digest(tx)?;
            if new != previous {
                changes.push(NameChange {
                    kind: a.kind.to_string(),
                    name: a.name.clone(),
                    previous,
                    new: new.unwrap_or_default(),
                });
            }
        }
        let all_visible: i64 = tx.query_row(
            "SELECT COUNT(*) FROM artifacts WHERE bundle = ?1 AND visible = 0",
            [&id],
            |r| r.get(0),
        )?;
        let volumes: i64 = tx.query_row(
            "SELECT COUNT(*) FROM bundle_volumes WHERE bundle = ?1",
            [&id],
            |r| r.get(0),
        )?;
        if all_visible == 0 && volumes as u32 == m.volumes {
            tx.execute("UPDATE bundles SET complete = 1 WHERE id = ?1", [&id])?;
        }
        Ok(changes)
    }

    /// Marks an artifact as no longer visible (a blob of its closure was found damaged and set
    /// aside) and its bundle as incomplete; importing the volume again restores both.
    pub fn mark_not_visible(
        tx: &Transaction<'_>,
        bundle: &str,
        kind: &str,
        name: &str,
    ) -> Result<(), CatalogError> {
        tx.execute(
            "UPDATE artifacts SET visible = 0 WHERE bundle = ?1 AND kind = ?2 AND name = ?3",
            params![bundle, kind, name],
        )?;
        tx.execute("UPDATE bundles SET complete = 0 WHERE id = ?1", [bundle])?;
        Ok(())
    }

    /// Records a newer pinned trust root.
    pub fn pin_root(
        tx: &Transaction<'_>,
        version: u64,
        document: &[u8],
        now: &str,
    ) -> Result<(), CatalogError> {
        tx.execute(
            "INSERT INTO trust_roots (version, document, applied_at) VALUES (?1, ?2, ?3)",
            params![version as i64, document, now],
        )?;
        Ok(())
    }

    /// Records an import attempt's outcome (accepted, duplicate, rejected).
    pub fn record_import(
        tx: &Transaction<'_>,
        volume_path: &str,
        bundle: Option<&str>,
        outcome: &str,
        reason: &str,
        now: &str,
    ) -> Result<(), CatalogError> {
        tx.execute(
            "INSERT INTO imports (volume_path, bundle, outcome, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![volume_path, bundle, outcome, reason, now],
        )?;
        Ok(())
    }

    /// Every visible artifact with its bundle, ordered by kind, name, channel sequence and
    /// bundle id; `current` marks the one its name resolves to.
    pub fn served(&self) -> Result<Vec<ServedRow>, CatalogError> {
        let mut st = self.conn.prepare(
            "SELECT a.kind, a.name, a.digest, a.size, a.media_type, a.provenance, a.bundle,
                    b.name, b.version, b.channel, b.sequence, n.digest IS NOT NULL
             FROM artifacts a
             JOIN bundles b ON b.id = a.bundle
             LEFT JOIN names n ON n.kind = a.kind AND n.name = a.name AND n.bundle = a.bundle
             WHERE a.visible = 1
             ORDER BY a.kind, a.name, b.sequence, a.bundle",
        )?;
        let v = st
            .query_map([], |r| {
                let prov: String = r.get(5)?;
                Ok(ServedRow {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    digest: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    media_type: r.get(4)?,
                    provenance: serde_json::from_str(&prov).unwrap_or(serde_json::Value::Null),
                    bundle: r.get(6)?,
                    bundle_name: r.get(7)?,
                    bundle_version: r.get(8)?,
                    channel: r.get(9)?,
                    sequence: r.get::<_, i64>(10)? as u64,
                    current: r.get::<_, i64>(11)? != 0,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Every trust root version pinned, oldest first.
    pub fn trust_roots(&self) -> Result<Vec<TrustRootRow>, CatalogError> {
        let mut st = self
            .conn
            .prepare("SELECT version, applied_at, document FROM trust_roots ORDER BY version")?;
        let v = st
            .query_map([], |r| {
                Ok(TrustRootRow {
                    version: r.get::<_, i64>(0)? as u64,
                    applied_at: r.get(1)?,
                    document: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Recent import attempts, newest first.
    pub fn imports(&self, limit: u32) -> Result<Vec<ImportRow>, CatalogError> {
        let mut st = self
            .conn
            .prepare("SELECT id, volume_path, bundle, outcome, reason, at FROM imports ORDER BY id DESC LIMIT ?1")?;
        let v = st
            .query_map([limit], |r| {
                Ok(ImportRow {
                    id: r.get(0)?,
                    volume: r.get(1)?,
                    bundle: r.get(2)?,
                    outcome: r.get(3)?,
                    reason: r.get(4)?,
                    at: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }
}

fn bundle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BundleRow> {
    Ok(BundleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        channel: r.get(3)?,
        sequence: r.get::<_, i64>(4)? as u64,
        volumes: r.get::<_, i64>(5)? as u32,
        complete: r.get::<_, i64>(6)? != 0,
        first_seen: r.get(7)?,
        imported_volumes: vec![],
    })
}
