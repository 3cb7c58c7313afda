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
//! its own (the file opened again by path), because a write-back error is reported once per
//! open file description: syncing through a clone of the caller's descriptor could consume the
//! error the caller's fsync must see. The helper's result is ignored; it is only a head start.
//! Files that stay under one step never start a helper.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Bytes written between two background syncs.
pub const STEP: u64 = 32 << 20;

/// Tracks how much of a file was written and syncs it in the background every [`STEP`] bytes.
#[derive(Debug)]
pub struct Writeback {
    path: PathBuf,
    pending: u64,
    helper: Option<(SyncSender<()>, JoinHandle<u64>)>,
    unavailable: bool,
}

impl Writeback {
    /// For the file at `path`, which the caller is writing.
    pub fn new(path: &Path) -> Self {
        Writeback {
            path: path.to_path_buf(),
            pending: 0,
            helper: None,
            unavailable: false,
        }
    }

    /// Records that `n` more bytes were written; once [`STEP`] bytes are pending, asks the
    /// helper to sync (without waiting for it; a request while one is running is merged).
    pub fn wrote(&mut self, n: u64) {
        self.pending += n;
        if self.pending < STEP || self.unavailable {
            return;
        }
        self.pending = 0;
        if self.helper.is_none() {
            let Ok(file) = File::open(&self.path) else {
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
        let mut wb = Writeback::new(&path);
        let chunk = vec![7u8; 4 << 20];
        for _ in 0..7 {
            f.write_all(&chunk).unwrap();
            wb.wrote(chunk.len() as u64);
        }
        assert!(wb.helper.is_none(), "28 MiB is under one step: no helper");
        for _ in 0..10 {
            f.write_all(&chunk).unwrap();
            wb.wrote(chunk.len() as u64);
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
    fn a_file_that_cannot_be_opened_again_is_written_without_a_helper() {
        let dir = tempfile::tempdir().unwrap();
        let mut wb = Writeback::new(&dir.path().join("gone"));
        wb.wrote(STEP);
        wb.wrote(STEP);
        assert!(wb.helper.is_none());
        assert_eq!(wb.finish(), 0);
    }
}
