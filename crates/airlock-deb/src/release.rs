//! Signed apt `Release` files: the OpenPGP check against one source's own keyring, and the
//! fields airlock relies on.
//!
//! apt trusts a repository through one signed file: `InRelease` (clear-signed) or `Release`
//! with a detached `Release.gpg`. It lists the size and SHA-256 of every index file, so once
//! its signature checks out, every `Packages` file and through it every `.deb` is pinned. The
//! signature is verified with the pure-Rust `pgp` crate (no gpg process, no keyring state on
//! the host) against the keys the manifest names for that source only: a key that signs some
//! other archive does not count here, as with apt's `signed-by=`.
//!
//! Checked besides the signature, as apt does with `Acquire::Check-Valid-Until` and
//! `Check-Date`: the signing key (or subkey) is not expired or revoked at `now`, the signature
//! is not from the future, `Date` is not in the future, `Valid-Until` (when present) has not
//! passed, and the `Suite` or `Codename` is the suite asked for (a validly signed `Release` of
//! another suite is a downgrade).
//!
//! What is hashed is what is parsed: the body of a clear-signed file is taken from the
//! verified text, never from the bytes around it.

use std::collections::BTreeMap;

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::{KeyDetails, VerifyingKey};

use crate::DebError;

/// Largest `InRelease`/`Release` accepted (Debian's main suite's is about 150 KiB).
pub const MAX_RELEASE: u64 = 16 << 20;
/// Largest keyring file accepted.
pub const MAX_KEYRING: u64 = 4 << 20;
/// Largest detached signature accepted.
pub const MAX_SIGNATURE: u64 = 1 << 20;
/// Clock skew tolerated for `Date` and signature creation times.
pub const CLOCK_SKEW: i64 = 600;

fn bad(s: impl Into<String>) -> DebError {
    DebError(s.into())
}

/// The OpenPGP public keys of one source, with what their own self-signatures say.
pub struct Keyring {
    keys: Vec<Key>,
}

/// One certificate: the primary key, its signing subkeys, expiry and revocation, each taken
/// only from signatures the primary key itself made and that verify. Third-party
/// certifications (common on distribution keys) are ignored, not fatal.
struct Key {
    fingerprint: String,
    primary: pgp::packet::PublicKey,
    /// When the primary key expires, if it does.
    expires: Option<i64>,
    revoked: bool,
    /// Subkeys with a verified binding: (key, expiry, revoked).
    subkeys: Vec<(pgp::packet::PublicSubkey, Option<i64>, bool)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fingerprints()).finish()
    }
}

impl Keyring {
    /// Reads binary (`.gpg`, possibly several keys concatenated) or armored (`.asc`) keys.
    /// A key with no verifying self-signature is left out; a keyring with no usable key is an
    /// error.
    pub fn parse(bytes: &[u8]) -> Result<Keyring, DebError> {
        if bytes.len() as u64 > MAX_KEYRING {
            return Err(bad(format!("keyring is larger than {MAX_KEYRING} bytes")));
        }
        let armored = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"));
        let parsed: Vec<_> = if armored {
            SignedPublicKey::from_armor_many(bytes)
                .map_err(|e| bad(format!("keyring: {e}")))?
                .0
                .take(1024)
                .collect()
        } else {
            SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| bad(format!("keyring: {e}")))?
                .take(1024)
                .collect()
        };
        let mut keys = Vec::new();
        for k in parsed {
            let k = k.map_err(|e| bad(format!("keyring: {e}")))?;
            if let Some(key) = Key::of(&k) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(bad("keyring holds no usable OpenPGP public key"));
        }
        Ok(Keyring { keys })
    }

    /// Upper-case hex fingerprints of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.fingerprint.clone()).collect()
    }

    /// The signer of the first of `sigs` that [`Keyring::check`] accepts, else why the last
    /// one was refused.
    fn first_accepted<'s>(
        &self,
        sigs: impl Iterator<Item = &'s Signature>,
        data: &[u8],
        now: i64,
    ) -> Result<String, String> {
        let mut why = String::from("no signature");
        for sig in sigs {
            match self.check(sig, data, now) {
                Ok(signer) => return Ok(signer),
                Err(e) => why = e,
            }
        }
        Err(why)
    }

    /// The primary key fingerprint of the first key (or subkey) that made `sig` over `data`
    /// and was valid at `now`.
    fn check(&self, sig: &Signature, data: &[u8], now: i64) -> Result<String, String> {
        let mut why = String::from("signed by a key that is not in this source's keyring");
        for k in &self.keys {
            let fp = &k.fingerprint;
            let candidates = std::iter::once((&k.primary as &dyn Verify, None, false)).chain(
                k.subkeys
                    .iter()
                    .map(|(s, exp, rev)| (s as &dyn Verify, *exp, *rev)),
            );
            for (key, sub_expiry, sub_revoked) in candidates {
                if key.verify_sig(sig, data).is_err() {
                    continue;
                }
                if k.revoked || sub_revoked {
                    why = format!("signing key {fp} is revoked");
                    continue;
                }
                if let Some(t) = [k.expires, sub_expiry]
                    .into_iter()
                    .flatten()
                    .find(|t| *t <= now)
                {
                    why = format!("signing key {fp} expired at {}", rfc2822(t));
                    continue;
                }
                let created = sig.created().map(|t| t.as_secs() as i64).unwrap_or(0);
                if created > now + CLOCK_SKEW {
                    why = format!(
                        "the signature is dated {} (in the future)",
                        rfc2822(created)
                    );
                    continue;
                }
                if let Some(e) = sig.signature_expiration_time().map(|d| d.as_secs() as i64) {
                    if e > 0 && created + e <= now {
                        why = format!("the signature expired at {}", rfc2822(created + e));
                        continue;
                    }
                }
                return Ok(fp.clone());
            }
        }
        Err(why)
    }
}

impl Key {
    fn of(k: &SignedPublicKey) -> Option<Key> {
        let primary = &k.primary_key;
        let created = primary.created_at().as_secs() as i64;
        let self_sigs: Vec<&Signature> = k
            .details
            .users
            .iter()
            .flat_map(|u| {
                u.signatures.iter().filter(move |s| {
                    s.verify_certification(primary, pgp::types::Tag::UserId, &u.id)
                        .is_ok()
                })
            })
            .chain(
                k.details
                    .direct_signatures
                    .iter()
                    .filter(|s| s.verify_key(primary).is_ok()),
            )
            .collect();
        if self_sigs.is_empty() {
            return None;
        }
        let revoked = k
            .details
            .revocation_signatures
            .iter()
            .any(|s| s.verify_key(primary).is_ok());
        let subkeys = k
            .public_subkeys
            .iter()
            .filter_map(|s| {
                let bindings: Vec<&Signature> = s
                    .signatures
                    .iter()
                    .filter(|b| b.verify_subkey_binding(primary, &s.key).is_ok())
                    .collect();
                let revoked = bindings
                    .iter()
                    .any(|b| b.typ() == Some(pgp::packet::SignatureType::SubkeyRevocation));
                let binding: Vec<&Signature> = bindings
                    .into_iter()
                    .filter(|b| b.typ() == Some(pgp::packet::SignatureType::SubkeyBinding))
                    .collect();
                if binding.is_empty() {
                    return None;
                }
                let exp = expiry(s.key.created_at().as_secs() as i64, binding.into_iter());
                Some((s.key.clone(), exp, revoked))
            })
            .collect();
        Some(Key {
            fingerprint: format!("{:X}", primary.fingerprint()),
            primary: primary.clone(),
            expires: expiry(created, self_sigs.into_iter()),
            revoked,
            subkeys,
        })
    }
}

/// Primary keys and subkeys verify through one object-safe door.
trait Verify {
    fn verify_sig(&self, sig: &Signature, data: &[u8]) -> pgp::errors::Result<()>;
}

impl<K: VerifyingKey> Verify for K {
    fn verify_sig(&self, sig: &Signature, data: &[u8]) -> pgp::errors::Result<()> {
        sig.verify(self, data)
    }
}

/// The expiry time the newest self-signature gives, if any.
fn expiry<'a>(created: i64, sigs: impl Iterator<Item = &'a Signature>) -> Option<i64> {
    sigs.filter_map(|s| Some((s.created()?.as_secs(), s.key_expiration_time())))
        .max_by_key(|(t, _)| *t)
        .and_then(|(_, e)| e)
        .map(|d| d.as_secs() as i64)
        .filter(|d| *d > 0)
        .map(|d| created + d)
}

/// A `Release` whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    /// The signed text, as hashed (LF line ends).
    pub text: String,
    /// Fingerprint of the primary key that signed it.
    pub signer: String,
    pub release: Release,
}

/// Verifies a clear-signed `InRelease` and parses its body.
pub fn verify_inrelease(
    bytes: &[u8],
    keyring: &Keyring,
    now: i64,
) -> Result<VerifiedRelease, DebError> {
    if bytes.len() as u64 > MAX_RELEASE {
        return Err(bad(format!("InRelease is larger than {MAX_RELEASE} bytes")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("InRelease is not UTF-8"))?;
    let (msg, _) = CleartextSignedMessage::from_string(text).map_err(|e| {
        bad(format!(
            "InRelease is not a clear-signed OpenPGP message: {e}"
        ))
    })?;
    if msg.signatures().is_empty() || msg.signatures().len() > 16 {
        return Err(bad("InRelease carries no signature (or more than 16)"));
    }
    let signed = msg.signed_text();
    let signer = keyring
        .first_accepted(msg.signatures().iter(), signed.as_bytes(), now)
        .map_err(|why| bad(format!("InRelease: signature not accepted: {why}")))?;
    VerifiedRelease::new(signed.replace("\r\n", "\n"), signer)
}

impl VerifiedRelease {
    fn new(text: String, signer: String) -> Result<VerifiedRelease, DebError> {
        let release = Release::parse(&text)?;
        Ok(VerifiedRelease {
            text,
            signer,
            release,
        })
    }
}

/// Verifies `Release` against its detached `Release.gpg` (armored or binary) and parses it.
pub fn verify_detached(
    release: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    now: i64,
) -> Result<VerifiedRelease, DebError> {
    if release.len() as u64 > MAX_RELEASE || signature.len() as u64 > MAX_SIGNATURE {
        return Err(bad("Release or Release.gpg is too large"));
    }
    let armored = signature.starts_with(b"-----BEGIN");
    let sigs: Vec<DetachedSignature> = if armored {
        DetachedSignature::from_armor_many(signature)
            .map_err(|e| bad(format!("Release.gpg: {e}")))?
            .0
            .take(16)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("Release.gpg: {e}")))?
    } else {
        DetachedSignature::from_bytes_many(signature)
            .map_err(|e| bad(format!("Release.gpg: {e}")))?
            .take(16)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("Release.gpg: {e}")))?
    };
    if sigs.is_empty() {
        return Err(bad("Release.gpg carries no signature"));
    }
    let signer = keyring
        .first_accepted(sigs.iter().map(|s| &s.signature), release, now)
        .map_err(|why| bad(format!("Release.gpg: signature not accepted: {why}")))?;
    let text = std::str::from_utf8(release).map_err(|_| bad("Release is not UTF-8"))?;
    VerifiedRelease::new(text.to_string(), signer)
}

/// One index file a `Release` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub sha256: String,
    pub size: u64,
}

/// The fields of a `Release` file airlock uses.
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// Seconds since the epoch.
    pub date: Option<i64>,
    pub valid_until: Option<i64>,
    pub acquire_by_hash: bool,
    /// `No-Support-for-Architecture-all: Packages`: `all` packages are in each architecture's
    /// index, and there is no `binary-all` index to read.
    pub no_arch_all_index: bool,
    /// Index files by path relative to the `Release` file's directory.
    pub sha256: BTreeMap<String, IndexEntry>,
}

impl Release {
    /// Parses the (already verified) text of a `Release` file.
    pub fn parse(text: &str) -> Result<Release, DebError> {
        let mut r = Release::default();
        let mut in_sha256 = false;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with([' ', '\t']) {
                if !in_sha256 {
                    continue;
                }
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [hash, size, path] = parts[..] else {
                    return Err(bad(format!(
                        "Release line {}: SHA256 entry is not \"HASH SIZE PATH\"",
                        n + 1
                    )));
                };
                if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(format!("Release line {}: bad SHA256 {hash:?}", n + 1)));
                }
                let size: u64 = size
                    .parse()
                    .map_err(|_| bad(format!("Release line {}: bad size {size:?}", n + 1)))?;
                if r.sha256.len() >= 100_000 {
                    return Err(bad("Release lists more than 100000 files"));
                }
                r.sha256.insert(
                    path.to_string(),
                    IndexEntry {
                        sha256: hash.to_ascii_lowercase(),
                        size,
                    },
                );
                continue;
            }
            in_sha256 = false;
            let Some((k, v)) = line.split_once(':') else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(bad(format!("Release line {}: not a field", n + 1)));
            };
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "suite" => r.suite = Some(v.to_string()),
                "codename" => r.codename = Some(v.to_string()),
                "date" => r.date = Some(parse_date(v)?),
                "valid-until" => r.valid_until = Some(parse_date(v)?),
                "acquire-by-hash" => r.acquire_by_hash = v.eq_ignore_ascii_case("yes"),
                "no-support-for-architecture-all" => r.no_arch_all_index = v == "Packages",
                "sha256" => in_sha256 = true,
                _ => {}
            }
        }
        Ok(r)
    }

    /// The apt checks on a verified `Release`: dates and the suite asked for (`None` for a
    /// flat repository, whose `Release` may name any suite).
    pub fn check(&self, suite: Option<&str>, now: i64) -> Result<(), DebError> {
        if let Some(want) = suite {
            let names = [self.suite.as_deref(), self.codename.as_deref()];
            if names.iter().any(Option::is_some) && !names.contains(&Some(want)) {
                return Err(bad(format!(
                    "Release is for suite {:?} (codename {:?}), not {want:?}",
                    self.suite.as_deref().unwrap_or(""),
                    self.codename.as_deref().unwrap_or("")
                )));
            }
        }
        if let Some(d) = self.date {
            if d > now + CLOCK_SKEW {
                return Err(bad(format!(
                    "Release is not valid yet: Date is {}",
                    rfc2822(d)
                )));
            }
        }
        if let Some(v) = self.valid_until {
            if v <= now {
                return Err(bad(format!(
                    "Release expired: Valid-Until was {}",
                    rfc2822(v)
                )));
            }
        }
        Ok(())
    }
}

/// Parses an RFC 2822 date as apt writes them (`Sat, 09 Nov 2024 10:24:58 UTC`; `GMT`, `+0000`
/// and one-digit days accepted).
pub fn parse_date(v: &str) -> Result<i64, DebError> {
    let err = || bad(format!("unreadable date {v:?}"));
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_wd, day, mon, year, time, zone] = parts[..] else {
        return Err(err());
    };
    if !matches!(zone, "UTC" | "GMT" | "+0000" | "Z") {
        return Err(err());
    }
    let day: u32 = day.parse().map_err(|_| err())?;
    let norm = format!("Mon, {day:02} {mon} {year} {time} GMT");
    // The weekday is not checked (httpdate insists it matches; apt does not).
    let t = httpdate_any_weekday(&norm).ok_or_else(err)?;
    Ok(t)
}

fn httpdate_any_weekday(s: &str) -> Option<i64> {
    let rest = s.get(5..)?;
    for wd in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] {
        if let Ok(t) = httpdate::parse_http_date(&format!("{wd}, {rest}")) {
            return t
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs() as i64);
        }
    }
    None
}

/// A time as a `Release` writes it.
pub fn rfc2822(t: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    httpdate::fmt_http_date(t).replace(" GMT", " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_apt_writes_them() {
        assert_eq!(
            parse_date("Sat, 09 Nov 2024 10:24:58 UTC").unwrap(),
            1_731_147_898
        );
        assert_eq!(
            parse_date("Sat, 9 Nov 2024 10:24:58 +0000").unwrap(),
            1_731_147_898
        );
        // A wrong weekday is tolerated, a wrong zone is not.
        assert_eq!(
            parse_date("Mon, 09 Nov 2024 10:24:58 UTC").unwrap(),
            1_731_147_898
        );
        for bad in [
            "",
            "yesterday",
            "Sat, 09 Nov 2024 10:24:58 CET",
            "Sat, 32 Nov 2024 10:24:58 UTC",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(rfc2822(1_731_147_898), "Sat, 09 Nov 2024 10:24:58 UTC");
    }

    #[test]
    fn release_fields_and_checks() {
        let text = "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 09 Nov 2024 10:24:58 UTC\nValid-Until: Sat, 16 Nov 2024 10:24:58 UTC\nAcquire-By-Hash: yes\nMD5Sum:\n 0123 12 main/binary-amd64/Packages\nSHA256:\n 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 4 main/binary-amd64/Packages\n";
        let r = Release::parse(text).unwrap();
        assert!(r.acquire_by_hash);
        assert_eq!(r.sha256.len(), 1, "MD5Sum entries are not SHA-256 entries");
        assert_eq!(r.sha256["main/binary-amd64/Packages"].size, 4);
        let day = 1_731_147_898;
        r.check(Some("bookworm"), day + 60).unwrap();
        r.check(Some("stable"), day + 60).unwrap();
        let e = r.check(Some("trixie"), day + 60).unwrap_err().to_string();
        assert!(e.contains("not \"trixie\""), "{e}");
        let e = r
            .check(Some("bookworm"), day + 8 * 86_400)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expired"), "{e}");
        let e = r
            .check(Some("bookworm"), day - 86_400)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid yet"), "{e}");
        assert!(Release::parse("SHA256:\n nothex 4 x\n").is_err());
        assert!(Release::parse("garbage line\n").is_err());
    }

    #[test]
    fn garbage_keyrings_and_signatures_are_refused() {
        assert!(Keyring::parse(b"").is_err());
        assert!(Keyring::parse(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n").is_err());
        assert!(Keyring::parse(&[0x99, 0x01, 0x02]).is_err());
    }
}
