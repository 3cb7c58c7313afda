//! The audit log: append-only, hash-chained, signed.
//!
//! Entry `n` stores `prev` = hash of entry `n-1` (64 zeros for the first), and
//! `hash` = SHA-256 of the canonical JSON `{"data","kind","prev","seq","time"}`, and `sig` =
//! ed25519 signature by the appliance key over the same canonical bytes. Editing, deleting,
//! inserting or moving an entry breaks the hash, the chain or the numbering; [`verify`] names the
//! first entry where that happens. Deleting the *newest* entries is caught by comparing with the
//! signed head the appliance keeps outside the database (see airlock-appliance).

use airlock_core::Sha256;
use airlock_trust::{PublicKey, Signer};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use serde_json::{json, Value};

use crate::CatalogError;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    pub kind: String,
    pub data: Value,
    pub prev: String,
    pub hash: String,
    pub sig: String,
}

fn canonical(seq: u64, time: &str, kind: &str, data: &Value, prev: &str) -> Vec<u8> {
    airlock_trust::canonical::to_vec(
        &json!({"seq": seq, "time": time, "kind": kind, "data": data, "prev": prev}),
    )
    .expect("JSON value serializes")
}

/// Appends an entry inside `tx` and returns it.
pub fn append(
    tx: &Transaction<'_>,
    signer: &dyn Signer,
    kind: &str,
    data: Value,
    now: &str,
) -> Result<Entry, CatalogError> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s as u64 + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let bytes = canonical(seq, now, kind, &data, &prev);
    let hash = Sha256::digest(&bytes).hex();
    let sig = B64.encode(signer.sign(&bytes)?);
    let text = String::from_utf8(airlock_trust::canonical::to_vec(&data)?).expect("JSON is UTF-8");
    tx.execute(
        "INSERT INTO audit (seq, time, kind, data, prev, hash, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq as i64, now, kind, text, prev, hash, sig],
    )?;
    Ok(Entry {
        seq,
        time: now.into(),
        kind: kind.into(),
        data,
        prev,
        hash,
        sig,
    })
}

/// All entries in order (optionally only the last `limit`).
pub(crate) fn entries(conn: &Connection, limit: Option<u32>) -> Result<Vec<Entry>, CatalogError> {
    let sql = match limit {
        Some(n) => format!("SELECT * FROM (SELECT seq, time, kind, data, prev, hash, sig FROM audit ORDER BY seq DESC LIMIT {n}) ORDER BY seq"),
        None => "SELECT seq, time, kind, data, prev, hash, sig FROM audit ORDER BY seq".to_string(),
    };
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], entry_of)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One row of `SELECT seq, time, kind, data, prev, hash, sig` as an entry (data that is not
/// JSON is kept as a string, for `verify` to report).
fn entry_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let data: String = r.get(3)?;
    Ok(Entry {
        seq: r.get::<_, i64>(0)? as u64,
        time: r.get(1)?,
        kind: r.get(2)?,
        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
        prev: r.get(4)?,
        hash: r.get(5)?,
        sig: r.get(6)?,
    })
}

/// The newest entry's (seq, hash), if any.
pub(crate) fn head(conn: &Connection) -> Result<Option<(u64, String)>, CatalogError> {
    Ok(conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
        )
        .optional()?)
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub entries: u64,
    pub problems: Vec<String>,
}

/// The stored hash of entry `seq`, if the log has that entry.
pub(crate) fn hash_of(conn: &Connection, seq: u64) -> Result<Option<String>, CatalogError> {
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    Ok(conn
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
        .optional()?)
}

/// One stored entry as read for verification (text, not yet parsed).
struct Stored {
    seq: u64,
    time: String,
    kind: String,
    data: String,
    prev: String,
    hash: String,
    sig: String,
}

/// What re-computing entries found, per entry: data is JSON, hash matches, signature verifies.
/// Signatures are checked together (ed25519 batch verification); only when the batch fails is
/// each checked alone, to name the bad ones.
fn check_content(entries: &[Stored], key: &PublicKey) -> Vec<(bool, bool, bool)> {
    let mut out = Vec::with_capacity(entries.len());
    let mut signed = Vec::with_capacity(entries.len());
    for e in entries {
        let (value, json_ok) = match serde_json::from_str::<Value>(&e.data) {
            Ok(v) => (v, true),
            Err(_) => (Value::String(e.data.clone()), false),
        };
        let bytes = canonical(e.seq, &e.time, &e.kind, &value, &e.prev);
        let hash_ok = Sha256::digest(&bytes).hex() == e.hash;
        out.push((json_ok, hash_ok, false));
        signed.push((bytes, B64.decode(&e.sig).ok()));
    }
    let all: Option<Vec<(&[u8], &[u8])>> = signed
        .iter()
        .map(|(b, s)| s.as_deref().map(|s| (b.as_slice(), s)))
        .collect();
    if all.is_some_and(|items| key.verify_all(&items)) {
        out.iter_mut().for_each(|o| o.2 = true);
    } else {
        for (o, (b, s)) in out.iter_mut().zip(&signed) {
            o.2 = s.as_deref().is_some_and(|s| key.verify(b, s));
        }
    }
    out
}

/// Entries per signature batch (each batch is one task for the thread pool).
const SIG_BATCH: usize = 128;

/// Entries verified per batch: the hashes and signatures of a batch are checked on all cores
/// while memory stays bounded by the batch, whatever the length of the log.
const VERIFY_BATCH: usize = 4096;

/// Checks numbering, chain, hashes and signatures of the whole log.
pub(crate) fn verify(conn: &Connection, key: &PublicKey) -> Result<Report, CatalogError> {
    use rayon::prelude::*;
    let mut st =
        conn.prepare("SELECT seq, time, kind, data, prev, hash, sig FROM audit ORDER BY seq")?;
    let mut rows = st.query([])?;
    let mut problems = Vec::new();
    let (mut expect_seq, mut expect_prev) = (1u64, GENESIS.to_string());
    let mut n = 0;
    loop {
        let mut batch = Vec::with_capacity(VERIFY_BATCH);
        while batch.len() < VERIFY_BATCH {
            let Some(r) = rows.next()? else { break };
            batch.push(Stored {
                seq: r.get::<_, i64>(0)? as u64,
                time: r.get(1)?,
                kind: r.get(2)?,
                data: r.get(3)?,
                prev: r.get(4)?,
                hash: r.get(5)?,
                sig: r.get(6)?,
            });
        }
        if batch.is_empty() {
            break;
        }
        let checked: Vec<(bool, bool, bool)> = batch
            .par_chunks(SIG_BATCH)
            .flat_map_iter(|c| check_content(c, key))
            .collect();
        for (e, (json_ok, hash_ok, sig_ok)) in batch.into_iter().zip(checked) {
            n += 1;
            let seq = e.seq;
            if seq != expect_seq {
                if seq > expect_seq {
                    problems.push(format!(
                        "entries {expect_seq}..{} are missing (deleted)",
                        seq - 1
                    ));
                } else {
                    problems.push(format!("entry {seq} is out of order"));
                }
            }
            if e.prev != expect_prev {
                problems.push(format!(
                    "entry {seq} does not follow the entry before it (an entry was inserted, deleted or moved here)"
                ));
            }
            if !json_ok {
                problems.push(format!("entry {seq} data is not JSON (edited)"));
            }
            if !hash_ok {
                problems.push(format!(
                    "entry {seq} was edited: its content does not match its hash"
                ));
            }
            if !sig_ok {
                problems.push(format!(
                    "entry {seq} signature does not verify with the appliance key"
                ));
            }
            expect_seq = seq + 1;
            expect_prev = e.hash;
        }
    }
    Ok(Report {
        entries: n,
        problems,
    })
}

/// Calls `f` with every entry in order, one at a time (memory stays flat however long the log).
pub(crate) fn for_each(
    conn: &Connection,
    mut f: impl FnMut(Entry) -> Result<(), CatalogError>,
) -> Result<(), CatalogError> {
    let mut st =
        conn.prepare("SELECT seq, time, kind, data, prev, hash, sig FROM audit ORDER BY seq")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        f(entry_of(r)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_trust::KeyPair;

    fn log() -> (crate::Catalog, KeyPair, tempfile::TempDir) {
        let d = tempfile::tempdir().unwrap();
        let mut c = crate::Catalog::open(&d.path().join("c.db")).unwrap();
        let k = KeyPair::generate();
        for i in 0..5 {
            c.write(|tx| append(tx, &k, "test", json!({"i": i}), "2026-01-01T00:00:00Z"))
                .unwrap();
        }
        (c, k, d)
    }

    #[test]
    fn clean_log_verifies() {
        let (c, k, _d) = log();
        let r = verify(c.conn(), &k.public_key()).unwrap();
        assert_eq!(r.entries, 5);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn edit_delete_insert_reorder_are_named() {
        let (c, k, _d) = log();
        c.conn()
            .execute("UPDATE audit SET data = '{\"i\":9}' WHERE seq = 3", [])
            .unwrap();
        let p = verify(c.conn(), &k.public_key()).unwrap().problems;
        assert!(p.iter().any(|x| x.contains("entry 3 was edited")), "{p:?}");

        let (c, k, _d) = log();
        c.conn()
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        let p = verify(c.conn(), &k.public_key()).unwrap().problems;
        assert!(
            p.iter().any(|x| x.contains("entries 2..2 are missing")),
            "{p:?}"
        );

        let (c, k, _d) = log();
        // insert a forged entry 3, renumbering the rest
        c.conn()
            .execute_batch(
                "UPDATE audit SET seq = seq + 100 WHERE seq >= 3; UPDATE audit SET seq = seq - 99 WHERE seq >= 103;
                 INSERT INTO audit SELECT 3, time, kind, '{\"forged\":true}', hash, hash, sig FROM audit WHERE seq = 2;",
            )
            .unwrap();
        let p = verify(c.conn(), &k.public_key()).unwrap().problems;
        assert!(p.iter().any(|x| x.contains("entry 3")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("entry 4")), "{p:?}");

        let (c, k, _d) = log();
        // swap the contents of entries 2 and 4
        c.conn().execute_batch("UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 100;").unwrap();
        let p = verify(c.conn(), &k.public_key()).unwrap().problems;
        assert!(p.iter().any(|x| x.contains("entry 2")), "{p:?}");
    }
}
