//! The inbox watcher: imports volumes that appear in a directory (the mount point of a USB disk,
//! or a drop folder) once they are complete, then moves them to `done/` (accepted, duplicate) or
//! leaves the import to move them to `quarantine/` (rejected).
//!
//! A file is complete when `FILE.done` exists, or when its size has not changed for two polls.
//! Only `*.tar.zst` files are considered; hidden files (partial copies) are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::import::{move_file, Outcome};
use crate::{Appliance, ApplianceError};

pub struct Watcher {
    pub inbox: PathBuf,
    pub interval: Duration,
    sizes: BTreeMap<PathBuf, u64>,
    /// Volumes whose import failed for a reason of the appliance (disk full): retried only when
    /// the file changes, so a stuck volume does not flood the audit log.
    failed: BTreeMap<PathBuf, u64>,
}

impl Watcher {
    pub fn new(inbox: &Path, interval: Duration) -> Self {
        Watcher {
            inbox: inbox.to_path_buf(),
            interval,
            sizes: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    /// One poll: imports every complete volume; returns their outcomes.
    pub fn poll(&mut self, app: &mut Appliance) -> Result<Vec<Outcome>, ApplianceError> {
        let mut ready = Vec::new();
        let entries =
            std::fs::read_dir(&self.inbox).map_err(crate::io(&self.inbox, "read inbox"))?;
        let mut seen = BTreeMap::new();
        for e in entries {
            let e = e.map_err(crate::io(&self.inbox, "read inbox"))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !name.ends_with(".tar.zst") || !p.is_file() {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            if self.failed.get(&p) == Some(&size) {
                continue;
            }
            let mut marker = p.clone().into_os_string();
            marker.push(".done");
            let marked = Path::new(&marker).exists();
            let stable = self.sizes.get(&p) == Some(&size) && size > 0;
            if marked || stable {
                ready.push((p.clone(), PathBuf::from(marker)));
            } else {
                seen.insert(p, size);
            }
        }
        self.sizes = seen;
        let mut out = Vec::new();
        for (p, marker) in ready {
            let o = app
                .import(std::slice::from_ref(&p), &airlock_bundle::NoProgress)?
                .remove(0);
            if matches!(o.status, "accepted" | "duplicate") {
                let done = self.inbox.join("done");
                std::fs::create_dir_all(&done).map_err(crate::io(&done, "create done/"))?;
                move_file(&p, &done.join(p.file_name().expect("file name")))?;
            }
            if o.status == "failed" {
                let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                self.failed.insert(p.clone(), size);
            }
            let _ = std::fs::remove_file(marker);
            out.push(o);
        }
        Ok(out)
    }
}
