//! Starting write-back while a file is still being written, so that the fsync that makes it
//! durable has little left to do.
//!
//! Linux starts writing dirty pages back only when they exceed `dirty_background_ratio` of
//! memory (gigabytes on a server) or are 30 s old. A bundle volume or an imported blob of a
//! few GiB written and then fsynced therefore reaches the disk only inside the closing fsync,
//! and the writer waits for the whole file there, after all the CPU work is done. A
//! [`Writeback`] syncs what was written so far on a helper thread every [`STEP`] bytes, so the
//! disk works while the CPUs hash and compress, and the closing fsync waits only for the tail.
//!
//! Durability still rests on the caller's own fsync. The helper syncs through a descriptor of
//! its own, because a write-back error is reported once per open file description: syncing
//! through a clone of the caller's descriptor could consume the error the caller's fsync must
//! see. It reopens the caller's file through `/proc/self/fd`, not by its path, so a path that
//! was renamed, removed or replaced meanwhile (by a symlink, or a FIFO that would block the
//! open) cannot point the helper at another file; it also checks that device and inode match.
//! Without `/proc`, or if anything fails, there is no helper and only the closing fsync
//! writes: the helper's result is ignored, it is only a head start. Files that stay under one
//! step never start a helper.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Bytes written between two background syncs.
pub const STEP: u64 = 32 << 20;

/// Tracks how much of a file was written and syncs it in the background every [`STEP`] bytes.
#[derive(Debug, Default)]
pub struct Writeback {
    pending: u64,
    helper: Option<(SyncSender<()>, JoinHandle<u64>)>,
    unavailable: bool,
}

/// A second open file description of `file` (the same inode), for the helper.
fn reopen(file: &File) -> Option<File> {
    let again = File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let (a, b) = (file.metadata().ok()?, again.metadata().ok()?);
    (a.dev() == b.dev() && a.ino() == b.ino()).then_some(again)
}

impl Writeback {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `n` more bytes were written to `file`; once [`STEP`] bytes are pending,
    /// asks the helper to sync (without waiting for it; a request while one is running is
    /// merged).
    pub fn wrote(&mut self, file: &File, n: u64) {
        self.pending += n;
        if self.pending < STEP || self.unavailable {
            return;
        }
        self.pending = 0;
        if self.helper.is_none() {
            let Some(file) = reopen(file) else {
                self.unavailable = true;
                return;
            };
            let (tx, rx) = sync_channel::<()>(1);
            let spawned = std::thread::Builder::new()
                .name("writeback".into())
                .spawn(move || {
                    let mut syncs = 0;
                    for () in rx {
                        let _ = file.sync_data();
                        syncs += 1;
                    }
                    syncs
                });
            match spawned {
                Ok(h) => self.helper = Some((tx, h)),
                Err(_) => {
                    self.unavailable = true;
                    return;
                }
            }
        }
        if let Some((tx, _)) = &self.helper {
            let _ = tx.try_send(());
        }
    }

    /// Stops the helper after the sync it is running, if any; returns how many it ran.
    pub fn finish(&mut self) -> u64 {
        match self.helper.take() {
            Some((tx, h)) => {
                drop(tx);
                h.join().unwrap_or(0)
            }
            None => 0,
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn syncs_in_the_background_once_a_step_is_written_and_keeps_the_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        let mut wb = Writeback::new();
        let chunk = vec![7u8; 4 << 20];
        for _ in 0..7 {
            f.write_all(&chunk).unwrap();
            wb.wrote(&f, chunk.len() as u64);
        }
        assert!(wb.helper.is_none(), "28 MiB is under one step: no helper");
        for _ in 0..10 {
            f.write_all(&chunk).unwrap();
            wb.wrote(&f, chunk.len() as u64);
        }
        let syncs = wb.finish();
        assert!(
            syncs >= 1,
            "68 MiB written: at least one background sync ran"
        );
        f.sync_all().unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 68 << 20);
        assert!(back.iter().all(|&b| b == 7));
    }

    #[test]
    fn the_helper_follows_the_file_not_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = File::create(&path).unwrap();
        // The path now names a FIFO, which an open by path would block on.
        std::fs::remove_file(&path).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
        let again = reopen(&f).expect("reopened through /proc/self/fd");
        assert_eq!(again.metadata().unwrap().ino(), f.metadata().unwrap().ino());
        let mut wb = Writeback::new();
        wb.wrote(&f, STEP);
        wb.wrote(&f, STEP);
        assert!(wb.helper.is_some());
        assert!(wb.finish() >= 1);
    }
}
