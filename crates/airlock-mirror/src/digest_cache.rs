//! The digest cache in the connected-side store (`STORE/digest-cache/`).
//!
//! `pack` must know every blob's digest before it writes the first byte of a volume (the signed
//! manifest comes first), so without a cache it reads each local source file twice: once to
//! hash it, once to write it. Re-packing the same model weights for the next bundle then spends
//! a full pass on bytes that did not change. Like git's index, this cache remembers the digest
//! of a file under the file's identity at the time it was hashed: device, inode, size,
//! modification and change time (nanoseconds), and the path it was read from. When all of these
//! still match, `pack` takes the digest from the cache and does **not** trust it: the blob is
//! planned as unverified ([`airlock_bundle::writer::BlobData::File`] with no stamp), so the
//! volume writer hashes the bytes as it writes them and fails the pack if they are not the
//! digest's. Every byte of a bundle is still hashed once and checked against the signed
//! manifest; what the cache saves is the separate hashing pass, so each unchanged source byte
//! is read once. Blobs a differential pack leaves out (the appliance holds them) are not
//! written, so `pack` hashes those whose digest came from the cache before it signs.
//!
//! A file written again within the same clock tick as its last change keeps its times, which
//! would leave a stale entry (git's "racy" entries); entries are therefore stored only for files
//! whose last change is at least [`SETTLED`] old. The change time cannot be set by a user, so a
//! rewritten file cannot imitate the entry of the file it replaced.
//!
//! Entries are untrusted input like everything on disk: one is read with a size bound, and one
//! that cannot be read, is too large, does not parse or names another key is *absent*. A forged
//! or stale entry can make a pack fail (the writer finds the bytes are not the digest's) but
//! cannot put wrong bytes under a digest. When a pack fails that way, `pack` removes the entries
//! it used ([`DigestCache::forget_hits`]), so the next pack hashes those files again. `--rehash` packs
//! without the cache (and refreshes it); removing the directory clears it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_bundle::writer::FileStamp;
use airlock_core::{Digest, Sha256};
use serde::{Deserialize, Serialize};

/// The cache's directory inside the store.
pub const DIR: &str = "digest-cache";

/// Largest entry read back (an entry is a path and a few numbers).
const MAX_ENTRY: u64 = 64 << 10;

/// Entry format version, the first field of every entry.
const VERSION: u32 = 1;

/// How long ago a file must have last changed for its digest to be stored.
pub const SETTLED: Duration = Duration::from_secs(1);

/// A file's identity when it was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    /// The path as given (lossy UTF-8; the device and inode identify the file).
    path: String,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Key {
    fn new(path: &Path, s: &FileStamp) -> Self {
        Key {
            path: path.to_string_lossy().into_owned(),
            dev: s.dev,
            ino: s.ino,
            size: s.size,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
        }
    }

    /// The entry's file name: the SHA-256 of the key's JSON.
    fn file_name(&self) -> String {
        let json = serde_json::to_vec(self).expect("key serializes");
        format!("{}.json", Sha256::digest(&json).hex())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    version: u32,
    key: Key,
    digest: Digest,
}

/// Digests of local source files by file identity; see the module docs.
#[derive(Debug)]
pub struct DigestCache {
    dir: PathBuf,
    /// Look entries up; `false` hashes every file and only refreshes the entries.
    read: bool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Entries this run took digests from, and the files they name.
    used: Mutex<Vec<(PathBuf, PathBuf)>>,
}

impl DigestCache {
    /// The cache of the store at `store`; `read: false` ignores existing entries.
    pub fn in_store(store: &Path, read: bool) -> Self {
        DigestCache {
            dir: store.join(DIR),
            read,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            used: Mutex::new(Vec::new()),
        }
    }

    /// The digest stored for `path` as it is now (`stamp`), if any.
    pub fn get(&self, path: &Path, stamp: &FileStamp) -> Option<Digest> {
        if !self.read {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let key = Key::new(path, stamp);
        let entry = self.dir.join(key.file_name());
        let found = read_entry(&entry).filter(|e| e.version == VERSION && e.key == key);
        match found {
            Some(e) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.used
                    .lock()
                    .expect("cache lock")
                    .push((entry, path.to_path_buf()));
                Some(e.digest)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores `digest` for `path` as it was when hashed (`stamp`), unless the file changed too
    /// recently to be told apart from a later write ([`SETTLED`]). Failing to store is only
    /// logged: the cache is an optimisation.
    pub fn put(&self, path: &Path, stamp: &FileStamp, digest: &Digest) {
        if !settled(stamp, SystemTime::now()) {
            tracing::debug!(path = %path.display(), "changed too recently to cache its digest");
            return;
        }
        let key = Key::new(path, stamp);
        let name = key.file_name();
        let entry = Entry {
            version: VERSION,
            key,
            digest: *digest,
        };
        let bytes = serde_json::to_vec(&entry).expect("entry serializes");
        let tmp = self.dir.join(format!(".{name}.{}", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::write(&tmp, &bytes))
            .and_then(|_| std::fs::rename(&tmp, self.dir.join(&name)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not store a digest in the digest cache");
        }
    }

    /// Counts `path`, whose digest was taken from the cache, as hashed after all (its entry
    /// disagreed with a digest the manifest pins).
    pub fn rehashed(&self, path: &Path) {
        let mut used = self.used.lock().expect("cache lock");
        if let Some(i) = used.iter().position(|(_, p)| p == path) {
            used.remove(i);
            self.hits.fetch_sub(1, Ordering::Relaxed);
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Files whose digest this run took from the cache.
    pub fn hit_paths(&self) -> Vec<PathBuf> {
        let used = self.used.lock().expect("cache lock");
        used.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Removes the entries this run took digests from (after a failed pack, one of them may be
    /// stale; the next pack hashes those files again).
    pub fn forget_hits(&self) {
        let mut used = self.used.lock().expect("cache lock");
        for (entry, _) in used.drain(..) {
            let _ = std::fs::remove_file(entry);
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// Whether a file last changed at `stamp`'s times is at least [`SETTLED`] older than `now`.
fn settled(stamp: &FileStamp, now: SystemTime) -> bool {
    let Ok(now) = now.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let last = stamp.mtime_ns.max(stamp.ctime_ns);
    now.as_nanos() as i128 - last >= SETTLED.as_nanos() as i128
}

fn read_entry(path: &Path) -> Option<Entry> {
    let f = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_ENTRY + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_ENTRY {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp_of(p: &Path) -> FileStamp {
        FileStamp::of(&std::fs::metadata(p).unwrap())
    }

    /// A stamp as if the file had last changed an hour ago.
    fn old(mut s: FileStamp) -> FileStamp {
        s.mtime_ns -= 3600 * 1_000_000_000;
        s.ctime_ns -= 3600 * 1_000_000_000;
        s
    }

    #[test]
    fn a_stored_digest_is_found_only_for_the_same_file_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.bin");
        std::fs::write(&file, b"weights").unwrap();
        let s = old(stamp_of(&file));
        let d = Sha256::digest(b"weights");
        let c = DigestCache::in_store(dir.path(), true);
        assert_eq!(c.get(&file, &s), None);
        c.put(&file, &s, &d);
        assert_eq!(c.get(&file, &s), Some(d));
        assert_eq!((c.hits(), c.misses()), (1, 1));
        assert_eq!(c.hit_paths(), vec![file.clone()]);
        // Any change of identity is a miss: size, times, inode, path.
        for changed in [
            FileStamp {
                size: s.size + 1,
                ..s
            },
            FileStamp {
                mtime_ns: s.mtime_ns + 1,
                ..s
            },
            FileStamp {
                ctime_ns: s.ctime_ns + 1,
                ..s
            },
            FileStamp {
                ino: s.ino + 1,
                ..s
            },
        ] {
            assert_eq!(c.get(&file, &changed), None);
        }
        assert_eq!(c.get(&dir.path().join("other.bin"), &s), None);
        // A cache opened not to read finds nothing.
        let c2 = DigestCache::in_store(dir.path(), false);
        assert_eq!(c2.get(&file, &s), None);
    }

    #[test]
    fn a_file_changed_within_the_settling_time_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.bin");
        std::fs::write(&file, b"fresh").unwrap();
        let s = stamp_of(&file);
        let c = DigestCache::in_store(dir.path(), true);
        c.put(&file, &s, &Sha256::digest(b"fresh"));
        assert_eq!(c.get(&file, &s), None);
        assert!(
            !dir.path().join(DIR).exists()
                || std::fs::read_dir(dir.path().join(DIR))
                    .unwrap()
                    .next()
                    .is_none()
        );
        let now = UNIX_EPOCH + Duration::from_nanos(s.ctime_ns.max(s.mtime_ns) as u64);
        assert!(!settled(&s, now));
        assert!(settled(&s, now + SETTLED));
    }

    #[test]
    fn unreadable_or_foreign_entries_are_absent_and_forgotten_entries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.bin");
        std::fs::write(&file, b"weights").unwrap();
        let s = old(stamp_of(&file));
        let c = DigestCache::in_store(dir.path(), true);
        c.put(&file, &s, &Sha256::digest(b"weights"));
        let entry = dir.path().join(DIR).join(Key::new(&file, &s).file_name());
        assert!(entry.is_file());
        // Garbage, an oversized entry, and an entry naming another key.
        std::fs::write(&entry, b"not json").unwrap();
        assert_eq!(c.get(&file, &s), None);
        std::fs::write(&entry, vec![b' '; MAX_ENTRY as usize + 1]).unwrap();
        assert_eq!(c.get(&file, &s), None);
        let other = Entry {
            version: VERSION,
            key: Key::new(&dir.path().join("x"), &s),
            digest: Sha256::digest(b"x"),
        };
        std::fs::write(&entry, serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(c.get(&file, &s), None);
        // A hit, then forgotten: the entry file is gone.
        c.put(&file, &s, &Sha256::digest(b"weights"));
        assert!(c.get(&file, &s).is_some());
        c.forget_hits();
        assert!(!entry.exists());
        assert_eq!(c.get(&file, &s), None);
        // A hit counted as hashed after all.
        c.put(&file, &s, &Sha256::digest(b"weights"));
        let (h, m) = (c.hits(), c.misses());
        assert!(c.get(&file, &s).is_some());
        c.rehashed(&file);
        assert_eq!((c.hits(), c.misses()), (h, m + 1));
        assert!(c.hit_paths().is_empty());
    }
}
