//! The inbox watcher: imports volumes that appear in a directory (the mount point of a USB disk,
//! or a drop folder) once they are complete, then moves them to `done/` (accepted, duplicate);
//! rejected ones are copied to `quarantine/` and removed from the inbox by the import.
//!
//! A file is complete when `FILE.done` exists, or when its size has not changed for two polls.
//! Only regular `*.tar.zst` files are considered: hidden files (partial copies) are ignored, and
//! symbolic links, FIFOs and devices are never opened (each is reported once). A `done/` that is
//! a symbolic link is never followed.
//!
//! The watcher holds no lock while it looks: it opens the appliance for writing (taking the
//! writer lock, see [`crate::lock`]) only when there is something to import, so commands and
//! other writers can use the data directory between imports.
//!
//! A volume the watcher cannot move out of the inbox (a read-only medium) is remembered by
//! path, size, modification time and SHA-256, and not imported again until it changes; a volume
//! whose import failed for a reason of the appliance (disk full) is retried only when it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock_core::Digest;
use serde_json::json;

use crate::import::{move_file, Origin, Outcome};
use crate::{Appliance, ApplianceError};

/// What the watcher remembers of a volume it will not import again until it changes.
#[derive(Debug, Clone, PartialEq)]
struct Stuck {
    size: u64,
    mtime: Option<SystemTime>,
    digest: Option<Digest>,
}

pub struct Watcher {
    pub root: PathBuf,
    pub inbox: PathBuf,
    pub interval: Duration,
    /// How long to wait for the writer lock when there is something to import.
    pub wait: Duration,
    sizes: BTreeMap<PathBuf, u64>,
    stuck: BTreeMap<PathBuf, Stuck>,
    /// Entries that are not regular files, reported once each.
    reported: BTreeSet<PathBuf>,
}

impl Watcher {
    pub fn new(root: &Path, inbox: &Path, interval: Duration, wait: Duration) -> Self {
        Watcher {
            root: root.to_path_buf(),
            inbox: inbox.to_path_buf(),
            interval,
            wait,
            sizes: BTreeMap::new(),
            stuck: BTreeMap::new(),
            reported: BTreeSet::new(),
        }
    }

    /// One poll: imports every complete volume (opening the appliance for writing only when
    /// there is one); returns their outcomes.
    pub fn poll(&mut self) -> Result<Vec<Outcome>, ApplianceError> {
        let ready = self.ready()?;
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let mut app = Appliance::open(&self.root, "inbox import", self.wait)?;
        Ok(ready
            .into_iter()
            .map(|(p, marker)| self.import(&mut app, &p, &marker))
            .collect())
    }

    /// The complete volumes of the inbox, with their `.done` marker paths.
    fn ready(&mut self) -> Result<Vec<(PathBuf, PathBuf)>, ApplianceError> {
        let mut ready = Vec::new();
        let entries =
            std::fs::read_dir(&self.inbox).map_err(crate::io(&self.inbox, "read inbox"))?;
        let mut seen = BTreeMap::new();
        for e in entries {
            let e = e.map_err(crate::io(&self.inbox, "read inbox"))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !name.ends_with(".tar.zst") {
                continue;
            }
            // `DirEntry::file_type` does not follow symbolic links.
            let regular = e.file_type().map(|t| t.is_file()).unwrap_or(false);
            if !regular {
                if self.reported.insert(p.clone()) {
                    tracing::warn!(
                        entry = %p.display(),
                        "not a regular file (a symbolic link, FIFO or device); ignored"
                    );
                }
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let size = meta.len();
            if let Some(s) = self.stuck.get(&p) {
                if s.size == size && (s.mtime == meta.modified().ok() || same_content(&p, s)) {
                    continue;
                }
                self.stuck.remove(&p);
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
        Ok(ready)
    }

    /// Imports one inbox volume and moves it out of the inbox, remembering it when it stays.
    fn import(&mut self, app: &mut Appliance, p: &Path, marker: &Path) -> Outcome {
        let mut o = app
            .import(
                &[p.to_path_buf()],
                Origin::Inbox,
                &airlock_bundle::NoProgress,
            )
            .remove(0);
        if o.ok() {
            if let Err(e) = self.move_to_done(p) {
                let err = crate::import::anyhow_like(&e);
                tracing::error!(volume = %p.display(), "cannot move to done/: {err}");
                o.note = Some(format!("could not be moved to done/: {err}"));
                let _ = app.audit(
                    "inbox-move-failed",
                    json!({"volume": p.display().to_string(), "error": airlock_core::text::bound(&err)}),
                );
            }
        }
        if std::fs::symlink_metadata(p).is_ok() {
            self.remember(p);
        }
        let _ = std::fs::remove_file(marker);
        o
    }

    /// Moves an imported volume to `INBOX/done/`, never through a symbolic link.
    fn move_to_done(&self, p: &Path) -> Result<(), ApplianceError> {
        let done = self.inbox.join("done");
        match std::fs::symlink_metadata(&done) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(ApplianceError::Usage(format!(
                    "{} is not a directory (a symbolic link?); refusing to move volumes into it",
                    done.display()
                )))
            }
            Err(_) => std::fs::create_dir(&done).map_err(crate::io(&done, "create done/"))?,
        }
        let name = p
            .file_name()
            .ok_or_else(|| ApplianceError::Usage(format!("{}: no file name", p.display())))?;
        move_file(p, &done.join(name))
    }

    /// Remembers a volume that is still in the inbox after its import.
    fn remember(&mut self, p: &Path) {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return;
        };
        let digest = airlock_store::hash_file(p).ok().map(|(d, _)| d);
        self.stuck.insert(
            p.to_path_buf(),
            Stuck {
                size: meta.len(),
                mtime: meta.modified().ok(),
                digest,
            },
        );
    }
}

/// Does the file at `p` still hash to what was remembered (a touched but unchanged volume)?
fn same_content(p: &Path, s: &Stuck) -> bool {
    s.digest.is_some() && airlock_store::hash_file(p).ok().map(|(d, _)| d) == s.digest
}
