//! Schema migrations, applied in order and recorded in SQLite's `user_version`.
//! Never edit a shipped migration; add a new one.

use rusqlite::Connection;

use crate::CatalogError;

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE trust_roots (
        version    INTEGER PRIMARY KEY,
        document   BLOB NOT NULL,
        applied_at TEXT NOT NULL
    );
    CREATE TABLE bundles (
        id         TEXT PRIMARY KEY,          -- sha256 of the signed statement
        name       TEXT NOT NULL,
        version    TEXT NOT NULL,
        channel    TEXT NOT NULL,
        sequence   INTEGER NOT NULL,
        volumes    INTEGER NOT NULL,
        complete   INTEGER NOT NULL DEFAULT 0,
        statement  BLOB NOT NULL,             -- the verified statement, for audits and fsck
        signers    TEXT NOT NULL,             -- JSON list of trusted key ids that signed
        first_seen TEXT NOT NULL
    );
    CREATE TABLE bundle_volumes (
        bundle      TEXT NOT NULL REFERENCES bundles(id),
        volume      INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        PRIMARY KEY (bundle, volume)
    );
    CREATE TABLE blobs (
        digest   TEXT PRIMARY KEY,
        size     INTEGER NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE channels (
        channel  TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL,
        bundle   TEXT NOT NULL REFERENCES bundles(id)
    );
    CREATE TABLE artifacts (
        bundle     TEXT NOT NULL REFERENCES bundles(id),
        kind       TEXT NOT NULL,
        name       TEXT NOT NULL,
        digest     TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        provenance TEXT NOT NULL,
        visible    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (bundle, kind, name)
    );
    CREATE TABLE names (
        kind     TEXT NOT NULL,
        name     TEXT NOT NULL,
        digest   TEXT NOT NULL,
        bundle   TEXT NOT NULL REFERENCES bundles(id),
        sequence INTEGER NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE imports (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        volume_path TEXT NOT NULL,
        bundle      TEXT,
        outcome     TEXT NOT NULL,            -- accepted | duplicate | rejected
        reason      TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    CREATE TABLE audit (
        seq  INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        sig  TEXT NOT NULL
    );
    "#,
];

/// The schema version this build creates and reads.
pub fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn migrate(conn: &mut Connection) -> Result<(), CatalogError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(CatalogError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
