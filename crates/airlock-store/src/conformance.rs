//! The behaviour every [`BlobBackend`](crate::BlobBackend) must have, as a test run by each
//! backend's tests (the directory and memory backends here, object-store backends in their own
//! crates), so that callers of [`BlobStore`] need not know which backend they hold.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_core::{Digest, Sha256};

use crate::{BlobStore, StoreError};

/// Runs the behaviour every backend shares against `s`, which must start empty: verified
/// puts, abandoned puts that leave nothing, reads from an offset (the end included), bounded
/// verified reads, fsck finding a blob that `corrupt` overwrote with other bytes, and moving a
/// blob aside. Panics on the first difference.
pub fn exercise(s: &BlobStore, corrupt: impl Fn(&Digest, &[u8])) {
    let d = Sha256::digest(b"hello");
    let mut w = s.writer().unwrap();
    w.write_all(b"hello").unwrap();
    w.commit(&d, Some(5)).unwrap();
    assert!(s.contains(&d, 5));
    assert!(!s.contains(&d, 4));
    assert_eq!(s.size(&d), Some(5));
    let mut w = s.writer().unwrap();
    w.write_all(b"hellO").unwrap();
    assert!(matches!(
        w.commit(&d, None),
        Err(StoreError::DigestMismatch { .. })
    ));
    let mut w = s.writer().unwrap();
    w.write_all(b"hello").unwrap();
    assert!(matches!(
        w.commit(&d, Some(6)),
        Err(StoreError::SizeMismatch { .. })
    ));
    let w = s.writer().unwrap();
    drop(w);
    assert_eq!(s.list().unwrap(), vec![d]);
    let mut tail = String::new();
    s.open_at(&d, 3).unwrap().read_to_string(&mut tail).unwrap();
    assert_eq!(tail, "lo");
    let mut end = Vec::new();
    s.open_at(&d, 5).unwrap().read_to_end(&mut end).unwrap();
    assert!(end.is_empty());
    assert_eq!(s.read_verified(&d, 5).unwrap(), b"hello");
    assert!(matches!(
        s.read_verified(&d, 4),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(s.fsck().unwrap().is_empty());
    assert!(s.damaged().unwrap().is_empty());
    corrupt(&d, b"jello");
    assert_eq!(s.fsck().unwrap().len(), 1);
    assert_eq!(s.damaged().unwrap(), vec![d]);
    let aside = scratch_dir();
    let to = s.set_aside(&d, &aside).unwrap();
    assert_eq!(std::fs::read(to).unwrap(), b"jello");
    std::fs::remove_dir_all(&aside).unwrap();
    assert!(s.list().unwrap().is_empty());
    assert!(s.read(&d).is_err());
}

/// A fresh, empty directory under the system temp directory.
fn scratch_dir() -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "airlock-conformance-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
