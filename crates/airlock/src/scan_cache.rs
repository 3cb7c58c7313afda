//! The scan-result cache in the connected-side store (`STORE/scan-cache/`).
//!
//! `sync` scans what it mirrors and `pack` scans what it packs, mostly the same blobs; without a
//! cache every run scans every blob again (a no-op re-sync of a store of images is then all
//! scanning). The unit cached is the unit `scanning.rs` scans: one blob, read as a file or
//! unpacked as an image layer, under the name findings call it. Its findings are a pure
//! function of
//!
//! - the bytes, named by the blob's digest (and size);
//! - the name the scanner is given (findings carry it, the sniffer takes extensions as hints,
//!   and YARA rules see it as `airlock_name`) and whether the blob is a tar layer and how it is
//!   compressed;
//! - the scanner: `scanning::scanner_id` (airlock-scan version, yara-x version, digest of the
//!   YARA rule set, built-in and operator rules) and the build fingerprint of the scanner's
//!   code (`build.rs`: airlock-scan with its compiled-in pickle allowlists, airlock-deb,
//!   airlock-yara, `scanning.rs` with the scan limits, `Cargo.lock`).
//!
//! All of these make up the [`Key`]; an entry is found by the SHA-256 of the key's JSON and
//! holds the key itself, checked on read, so reusing an entry is as sound as scanning again.
//! `scanning.rs` stores findings only for bytes it knows are the digest's (see
//! `scanned_the_digests_bytes` there), so a source that lies about a digest cannot plant
//! entries.
//!
//! Entries are untrusted input like everything on disk: one is read with a size bound, and one
//! that cannot be read, is too large, does not parse, names another key or whose findings do
//! not match the digest beside them is *absent*: the blob is scanned again and the entry
//! rewritten. An unreadable entry never stands for "clean". Entries are written whole to a
//! temporary file and renamed into place, so a reader never sees half an entry, and two
//! writers of one key write the same bytes. Whoever can write the store can also forge an
//! entry, as they could replace the images it holds; `--no-scan-cache` scans everything
//! again, and removing the directory clears the cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_core::{Digest, Sha256};
use serde::{Deserialize, Serialize};

/// The cache's directory inside the store.
pub const DIR: &str = "scan-cache";

/// Largest entry read back or written (a layer's findings are bounded by the scanner's
/// `max_findings_per_file`; a larger file is not an entry this program wrote).
pub const MAX_ENTRY: u64 = 16 << 20;

/// Entry format version, the first field of every entry.
const VERSION: u32 = 1;

/// The build fingerprint of the scanner's code (see `build.rs`).
pub const BUILD: &str = env!("AIRLOCK_SCANNER_BUILD");

/// Everything a scan unit's findings depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// The blob scanned.
    pub blob: Digest,
    pub size: u64,
    /// The name findings call it (a file name, or `IMAGE layer DIGEST`).
    pub name: String,
    /// `file`, or how a tar layer is compressed: `tar`, `tar+gzip`, `tar+zstd`.
    pub mode: String,
    /// `scanning::scanner_id`: scanner version, yara-x version, rule-set digest.
    pub scanner: String,
    /// Build fingerprint of the scanner's code.
    pub build: String,
}

impl Key {
    /// The entry's file name: the SHA-256 of the key's JSON.
    fn file_name(&self) -> String {
        let json = serde_json::to_vec(self).expect("key serializes");
        format!("{}.json", Sha256::digest(&json).hex())
    }
}

/// The first line of an entry; the findings' JSON follows it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    v: u32,
    key: Key,
    /// SHA-256 of the findings' JSON (the rest of the entry).
    findings: Digest,
}

/// Hits and misses of one run, for the command's report.
#[derive(Debug, Default)]
pub struct Stats {
    /// Units whose findings came from the cache.
    pub cached: AtomicU64,
    /// Units scanned (no usable entry, or the cache not read).
    pub scanned: AtomicU64,
}

impl Stats {
    pub fn cached(&self) -> u64 {
        self.cached.load(Ordering::Relaxed)
    }
    pub fn scanned(&self) -> u64 {
        self.scanned.load(Ordering::Relaxed)
    }
}

/// A scan-result cache directory.
#[derive(Debug)]
pub struct ScanCache {
    dir: PathBuf,
    /// Whether entries are read (`--no-scan-cache` scans again but still writes).
    read: bool,
    pub stats: Stats,
}

static TMP_SERIAL: AtomicU64 = AtomicU64::new(0);

impl ScanCache {
    /// The cache of the store at `store`; with `read` false, entries are written but not used.
    pub fn in_store(store: &Path, read: bool) -> Self {
        ScanCache {
            dir: store.join(DIR),
            read,
            stats: Stats::default(),
        }
    }

    /// The store's blob directory, whose files were written only after their digest matched.
    pub fn store_blobs(&self) -> PathBuf {
        self.dir.parent().unwrap_or(Path::new(".")).join("blobs")
    }

    /// The findings stored for `key`, or `None` when there is no usable entry.
    pub fn get(&self, key: &Key) -> Option<Vec<airlock_scan::Finding>> {
        if !self.read {
            return None;
        }
        let path = self.dir.join(key.file_name());
        match read_entry(&path, key) {
            Ok(f) => Some(f),
            Err(Absent::Missing) => None,
            Err(Absent::Bad(why)) => {
                tracing::warn!(entry = %path.display(), "scan cache entry ignored ({why}); scanning again");
                None
            }
        }
    }

    /// Stores `findings` for `key`. Failing to store is logged, not an error: the cache only
    /// saves work.
    pub fn put(&self, key: &Key, findings: &[airlock_scan::Finding]) {
        if let Err(e) = self.write_entry(key, findings) {
            tracing::warn!(dir = %self.dir.display(), "scan result not cached: {e}");
        }
    }

    fn write_entry(&self, key: &Key, findings: &[airlock_scan::Finding]) -> std::io::Result<()> {
        let body = serde_json::to_vec(findings).map_err(std::io::Error::other)?;
        let header = Header {
            v: VERSION,
            key: key.clone(),
            findings: Sha256::digest(&body),
        };
        let mut bytes = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(&body);
        if bytes.len() as u64 > MAX_ENTRY {
            return Err(std::io::Error::other(format!(
                "entry of {} bytes is over the {MAX_ENTRY}-byte bound",
                bytes.len()
            )));
        }
        std::fs::create_dir_all(&self.dir)?;
        let name = key.file_name();
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}-{name}",
            std::process::id(),
            TMP_SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let r =
            std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, self.dir.join(&name)));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }
}

enum Absent {
    Missing,
    Bad(String),
}

fn read_entry(path: &Path, key: &Key) -> Result<Vec<airlock_scan::Finding>, Absent> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Absent::Missing),
        Err(e) => return Err(Absent::Bad(e.to_string())),
    };
    let mut bytes = Vec::new();
    f.take(MAX_ENTRY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Absent::Bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_ENTRY {
        return Err(Absent::Bad(format!("larger than {MAX_ENTRY} bytes")));
    }
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| Absent::Bad("no header line".into()))?;
    let (head, body) = (&bytes[..nl], &bytes[nl + 1..]);
    let header: Header =
        serde_json::from_slice(head).map_err(|e| Absent::Bad(format!("header: {e}")))?;
    if header.v != VERSION {
        return Err(Absent::Bad(format!("format version {}", header.v)));
    }
    if header.key != *key {
        return Err(Absent::Bad("entry is for another key".into()));
    }
    if Sha256::digest(body) != header.findings {
        return Err(Absent::Bad("findings do not match their digest".into()));
    }
    serde_json::from_slice(body).map_err(|e| Absent::Bad(format!("findings: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_scan::{Finding, Severity};

    fn key(scanner: &str) -> Key {
        Key {
            blob: Sha256::digest(b"blob"),
            size: 4,
            name: "model.pkl".into(),
            mode: "file".into(),
            scanner: scanner.into(),
            build: BUILD.into(),
        }
    }

    fn findings() -> Vec<Finding> {
        ["pickle/denylisted-global", "yara/builtin/reverse_shell"]
            .iter()
            .map(|rule| Finding {
                file: "model.pkl".into(),
                member: Some("archive/data.pkl".into()),
                rule: rule.to_string(),
                global: Some("os.system".into()),
                severity: Severity::Malicious,
                detail: "runs code".into(),
            })
            .collect()
    }

    fn entry_path(dir: &Path, k: &Key) -> PathBuf {
        dir.join(DIR).join(k.file_name())
    }

    #[test]
    fn a_stored_result_is_found_again_in_order() {
        let d = tempfile::tempdir().unwrap();
        let c = ScanCache::in_store(d.path(), true);
        let k = key("airlock-scan 1; yara-x 1; rules sha256:aa");
        assert_eq!(c.get(&k), None);
        c.put(&k, &findings());
        assert_eq!(c.get(&k), Some(findings()));
        // A clean result is cached too, as an empty list.
        let k2 = Key {
            name: "other.bin".into(),
            ..k.clone()
        };
        c.put(&k2, &[]);
        assert_eq!(c.get(&k2), Some(vec![]));
        assert_eq!(c.get(&k), Some(findings()));
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(d.path().join(DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    }

    #[test]
    fn another_rule_set_or_build_or_name_misses() {
        let d = tempfile::tempdir().unwrap();
        let c = ScanCache::in_store(d.path(), true);
        let k = key("airlock-scan 1; yara-x 1; rules sha256:aa");
        c.put(&k, &[]);
        assert_eq!(c.get(&k), Some(vec![]));
        for other in [
            key("airlock-scan 1; yara-x 1; rules sha256:bb"),
            Key {
                build: "0000000000000000".into(),
                ..k.clone()
            },
            Key {
                name: "model.bin".into(),
                ..k.clone()
            },
            Key {
                mode: "tar+gzip".into(),
                ..k.clone()
            },
            Key {
                blob: Sha256::digest(b"other"),
                ..k.clone()
            },
        ] {
            assert_ne!(other.file_name(), k.file_name());
            assert_eq!(c.get(&other), None, "{other:?}");
        }
    }

    #[test]
    fn corrupt_entries_are_absent_never_clean() {
        let d = tempfile::tempdir().unwrap();
        let c = ScanCache::in_store(d.path(), true);
        let k = key("airlock-scan 1; yara-x 1; rules sha256:aa");
        let path = entry_path(d.path(), &k);
        let good = || {
            c.put(&k, &findings());
            std::fs::read(&path).unwrap()
        };
        let bytes = good();
        let nl = bytes.iter().position(|b| *b == b'\n').unwrap();
        // The findings list emptied (what a "clean" forgery by truncation would look like).
        let mut emptied = bytes[..=nl].to_vec();
        emptied.extend_from_slice(b"[]");
        // The entry of another key copied over this one.
        let other = Key {
            name: "x".into(),
            ..k.clone()
        };
        c.put(&other, &[]);
        let foreign = std::fs::read(entry_path(d.path(), &other)).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty file", vec![]),
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("header only", bytes[..nl].to_vec()),
            ("findings emptied", emptied),
            ("another key's entry", foreign),
            ("not JSON", b"garbage\n[]".to_vec()),
            ("over the bound", vec![b' '; MAX_ENTRY as usize + 1]),
        ];
        for (what, b) in cases {
            good();
            std::fs::write(&path, &b).unwrap();
            assert_eq!(c.get(&k), None, "{what}");
        }
        // A directory where the entry should be is absent too.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(c.get(&k), None);
        // A put that cannot replace it is not an error, and the entry stays absent.
        c.put(&k, &findings());
        assert_eq!(c.get(&k), None);
    }

    #[test]
    fn a_cache_not_read_still_writes() {
        let d = tempfile::tempdir().unwrap();
        let k = key("s");
        let write_only = ScanCache::in_store(d.path(), false);
        write_only.put(&k, &findings());
        assert_eq!(write_only.get(&k), None);
        assert_eq!(
            ScanCache::in_store(d.path(), true).get(&k),
            Some(findings())
        );
    }
}
