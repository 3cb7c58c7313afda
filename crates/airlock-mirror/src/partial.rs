//! Resumable, verifying downloads into a partial file — shared by the registry client (blobs)
//! and the Hugging Face client (model files).
//!
//! Bytes already in the partial file count only once re-hashed; a resumed response must be a
//! `206` whose `Content-Range` starts exactly where the file ends (a `200` restarts from zero);
//! the body is bounded by the expected size; a body that ends early keeps what arrived for the
//! next attempt. The caller checks the digest and moves the file into place.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use airlock_bundle::Progress;
use airlock_core::{Digest, Sha256};
use sha1::Digest as _;

use crate::MirrorError;

pub(crate) struct Partial<'a> {
    path: &'a Path,
    file: File,
    size: u64,
    have: u64,
    sha256: Sha256,
    /// git's blob id (`sha1("blob <size>\0" + content)`), when the caller can check one.
    git: Option<sha1::Sha1>,
}

impl<'a> Partial<'a> {
    /// Opens (or creates) `path` for a download of `size` bytes, keeping and re-hashing what is
    /// already there (at most `size` bytes).
    pub fn open(
        path: &'a Path,
        size: u64,
        git_oid: bool,
        progress: &dyn Progress,
    ) -> Result<Self, MirrorError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(MirrorError::io(path, "open partial file"))?;
        let mut have = file
            .metadata()
            .map_err(MirrorError::io(path, "stat partial file"))?
            .len();
        if have > size {
            have = 0;
        }
        let mut p = Partial {
            path,
            file,
            size,
            have: 0,
            sha256: Sha256::new(),
            git: git_oid.then(|| {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                h
            }),
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut left = have;
        while left > 0 {
            let k = p
                .file
                .read(&mut buf[..left.min(1 << 20) as usize])
                .map_err(MirrorError::io(path, "read partial file"))?;
            if k == 0 {
                break;
            }
            p.hash(&buf[..k]);
            left -= k as u64;
        }
        p.have = have - left;
        p.file
            .set_len(p.have)
            .map_err(MirrorError::io(path, "truncate partial file"))?;
        p.file
            .seek(SeekFrom::Start(p.have))
            .map_err(MirrorError::io(path, "seek partial file"))?;
        progress.advance(p.have);
        Ok(p)
    }

    fn hash(&mut self, b: &[u8]) {
        self.sha256.update(b);
        if let Some(g) = self.git.as_mut() {
            g.update(b);
        }
    }

    /// Bytes already on disk.
    pub fn have(&self) -> u64 {
        self.have
    }

    fn restart(&mut self) -> Result<(), MirrorError> {
        self.have = 0;
        self.sha256 = Sha256::new();
        if let Some(g) = self.git.as_mut() {
            *g = sha1::Sha1::new();
            g.update(format!("blob {}\0", self.size).as_bytes());
        }
        self.file
            .set_len(0)
            .map_err(MirrorError::io(self.path, "truncate partial file"))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(MirrorError::io(self.path, "seek partial file"))?;
        Ok(())
    }

    /// Checks the response to a (possibly ranged) request: a `200` to a resumed request starts
    /// over; a `206` must continue exactly at [`Partial::have`].
    pub fn accept(
        &mut self,
        status: u16,
        content_range: Option<&str>,
        url: &str,
    ) -> Result<(), MirrorError> {
        if self.have > 0 && status == 200 {
            tracing::debug!(url, "server ignored Range; downloading from 0");
            return self.restart();
        }
        if status == 206 {
            let cr = content_range.unwrap_or("");
            if !cr.starts_with(&format!("bytes {}-", self.have)) {
                return Err(MirrorError::Invalid(format!(
                    "{url}: asked for bytes {}- but got Content-Range {cr:?}",
                    self.have
                )));
            }
        }
        Ok(())
    }

    /// Appends the body, hashing; more than the expected size deletes the file and is an error,
    /// less is a transport error that keeps what arrived. Returns the bytes transferred.
    pub fn fill(
        &mut self,
        mut body: impl Read,
        url: &str,
        progress: &dyn Progress,
    ) -> Result<u64, MirrorError> {
        let mut buf = vec![0u8; 256 << 10];
        let mut transferred = 0u64;
        loop {
            let k = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.file.flush().ok();
                    return Err(MirrorError::Transport {
                        url: url.into(),
                        detail: format!(
                            "connection lost after {} of the {} bytes announced: {e}",
                            self.have, self.size
                        ),
                    });
                }
            };
            if self.have + k as u64 > self.size {
                let _ = std::fs::remove_file(self.path);
                return Err(MirrorError::Invalid(format!(
                    "{url}: more bytes than the {} expected",
                    self.size
                )));
            }
            self.file
                .write_all(&buf[..k])
                .map_err(MirrorError::io(self.path, "write partial file"))?;
            self.hash(&buf[..k]);
            self.have += k as u64;
            transferred += k as u64;
            progress.advance(k as u64);
        }
        if self.have < self.size {
            return Err(MirrorError::Transport {
                url: url.into(),
                detail: format!("body ended after {} of {} bytes", self.have, self.size),
            });
        }
        Ok(transferred)
    }

    /// The complete file's sha256 and (when asked for) git blob id; the file handle for a
    /// caller that wants to fsync it.
    pub fn finish(self) -> (Digest, Option<String>, File) {
        (
            self.sha256.finish(),
            self.git.map(|g| hex::encode(g.finalize())),
            self.file,
        )
    }
}
