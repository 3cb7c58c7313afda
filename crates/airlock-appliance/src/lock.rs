//! The data directory's writer lock (`DATA/lock`).
//!
//! Only commands that change the data directory take it: `import`, the inbox watcher while it
//! imports, `fsck --repair`, the audit entries of `inventory export` and `report`. Readers (`list`, `status`,
//! `audit`, `lineage`, `fsck`, the HTTP server) never take it: they read the catalog through
//! SQLite's read-only WAL connections, which never wait for a writer.
//!
//! A writer that finds the lock held waits up to a given duration, polling, and then fails with
//! the holder's own description (`import by PID 1234 since 2026-…`), which the holder writes into
//! the lock file once it has the lock. The file is opened with `O_NOFOLLOW` and never truncated
//! before the lock is held, so a symlink planted at `DATA/lock` is refused instead of followed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ApplianceError;

/// How long a writer waits for the lock unless told otherwise (`--wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Test hook (only with the `fault-injection` feature): milliseconds to sleep right after taking
/// the lock.
pub const FAULT_HOLD_LOCK_MS: &str = "AIRLOCK_FAULT_HOLD_LOCK_MS";

/// The holder description is a short line; more is never read.
const MAX_HOLDER_BYTES: u64 = 512;

/// An exclusive hold on `DATA/lock`, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the writer lock for `purpose` (e.g. `import`), waiting up to `wait`.
    pub fn acquire(root: &Path, purpose: &str, wait: Duration) -> Result<Self, ApplianceError> {
        let path = root.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| {
                if source.raw_os_error() == Some(libc::ELOOP) {
                    ApplianceError::Usage(format!(
                        "{} is a symbolic link; refusing to follow it (remove it)",
                        path.display()
                    ))
                } else {
                    crate::io(&path, "open lock file")(source)
                }
            })?;
        let meta = file
            .metadata()
            .map_err(crate::io(&path, "stat lock file"))?;
        if !meta.is_file() {
            return Err(ApplianceError::Usage(format!(
                "{} is not a regular file; refusing to use it as the lock",
                path.display()
            )));
        }
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(ApplianceError::Busy {
                            holder: holder_of(&mut file),
                            waited: wait,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(crate::io(&path, "lock data directory")(e))
                }
            }
        }
        let desc = format!(
            "{purpose} by PID {} since {}\n",
            std::process::id(),
            airlock_core::time::format_rfc3339(airlock_core::time::now())
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(desc.as_bytes()))
            .map_err(crate::io(&path, "write lock holder"))?;
        // Test hook: hold the lock a while so that tests can meet a busy data directory.
        #[cfg(feature = "fault-injection")]
        if let Some(ms) = std::env::var(FAULT_HOLD_LOCK_MS)
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        Ok(DataLock { _file: file })
    }
}

/// The description the current holder wrote, or a placeholder while it has not yet.
fn holder_of(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(MAX_HOLDER_BYTES).read_to_string(&mut s);
    let s = airlock_core::text::escape(s.trim());
    if s.is_empty() {
        "another airlockd process".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataLock::acquire(dir.path(), "import", Duration::ZERO).unwrap();
        let t = Instant::now();
        let e = DataLock::acquire(dir.path(), "import", Duration::from_millis(300)).unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(300));
        let msg = e.to_string();
        assert!(msg.contains("data directory busy"), "{msg}");
        assert!(
            msg.contains(&format!("import by PID {}", std::process::id())),
            "{msg}"
        );
        drop(held);
        DataLock::acquire(dir.path(), "fsck --repair", Duration::ZERO).unwrap();
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("lock")).unwrap();
        let e = DataLock::acquire(dir.path(), "import", Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
