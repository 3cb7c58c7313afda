//! Content addresses. Only `sha256` is accepted: it is what every OCI tool writes, and a single
//! algorithm leaves no downgrade path for an attacker.
//!
//! ```
//! use airlock_core::{Digest, Sha256};
//! let d = Sha256::digest(b"hello");
//! assert_eq!(d.to_string(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
//! assert_eq!(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".parse().unwrap());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::CoreError;

/// A validated `sha256:<64 lowercase hex>` digest. Holding one means the string was checked, so
/// [`Digest::hex`] is always safe to join onto a path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The raw 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(b: [u8; 32]) -> Self {
        Digest(b)
    }

    /// The 64 lowercase hex characters, as used in `blobs/sha256/<hex>`.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses bare hex (the file name in `blobs/sha256/`).
    pub fn from_hex(s: &str) -> Result<Self, CoreError> {
        let bad = |reason| CoreError::InvalidDigest {
            value: s.to_string(),
            reason,
        };
        if s.len() != 64 {
            return Err(bad("expected 64 hex characters"));
        }
        if !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("expected lowercase hex"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad("expected lowercase hex"))?;
        Ok(Digest(out))
    }

    /// Relative path of this blob inside an OCI image layout.
    pub fn layout_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.strip_prefix("sha256:") {
            Some(hex) => Digest::from_hex(hex),
            None => Err(CoreError::InvalidDigest {
                value: s.to_string(),
                reason: "only sha256:<hex> digests are accepted",
            }),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental SHA-256 that yields a [`Digest`].
#[derive(Clone, Default)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
    /// One-shot digest of a byte slice.
    pub fn digest(data: &[u8]) -> Digest {
        let mut h = Sha256::new();
        h.update(data);
        h.finish()
    }
}

impl std::io::Write for Sha256 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hashes the bytes read through it: [`Hashing::finish`] gives their digest and count.
/// Wrapped around a writer instead, it hashes the bytes written through it.
pub struct Hashing<T> {
    inner: T,
    hash: Sha256,
    n: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }

    /// The wrapped reader or writer, the digest of the bytes that passed and their count.
    pub fn finish(self) -> (T, Digest, u64) {
        (self.inner, self.hash.finish(), self.n)
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_counts_only_what_passed() {
        use std::io::{Read, Write};
        let mut r = Hashing::new(&b"hello world"[..]);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        let (_, d, n) = r.finish();
        assert_eq!((d, n), (Sha256::digest(b"hello"), 5));
        let mut w = Hashing::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (v, d, n) = w.finish();
        assert_eq!((v, d, n), (b"abc".to_vec(), Sha256::digest(b"abc"), 3));
    }

    #[test]
    fn parse_rejects_bad_forms() {
        for bad in [
            "",
            "sha256:",
            "sha512:00",
            "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
            "sha256:../../etc/passwd000000000000000000000000000000000000000000000000",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn json_round_trip() {
        let d = Sha256::digest(b"x");
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
    }
}
