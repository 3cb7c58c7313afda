//! An apt repository over the `.deb` file artifacts of the store, signed with an OpenPGP key
//! the appliance owns.
//!
//! ```text
//! /apt/airlock-archive-keyring.asc   the public key, armored (for `signed-by=`)
//! /apt/airlock-archive-keyring.gpg   the same, binary
//! /apt/dists/SUITE/InRelease         Release, clear-signed
//! /apt/dists/SUITE/Release(.gpg)     Release and its detached signature
//! /apt/dists/SUITE/main/binary-<arch>/Packages(.gz)
//! /apt/pool/main/<file>.deb          single .deb file artifacts (suite `airlock`)
//! /apt/pool/SUITE/<file>.deb         the packages of closure SUITE
//! ```
//!
//! Suite `airlock` holds every `.deb` carried as a plain file artifact. Each Debian package
//! closure (`spec.debs`) is its own suite, named after the closure, holding exactly its
//! packages, so a rack node that lists only that suite installs from exactly what was
//! resolved and approved; the newest imported closure of a name is the one served.
//!
//! Sources line: `deb [signed-by=/etc/apt/keyrings/airlock.asc] http://HOST:PORT/apt SUITE main`.
//!
//! The key is an Ed25519 ("legacy" EdDSA, what GnuPG 2.2's gpgv accepts) OpenPGP key kept in
//! `DATA/keys/apt-signing.asc` (0600), created on the first start. `Release` carries
//! `Valid-Until` = `Date` + [`VALID_FOR`]; the server re-signs whenever the catalog changes and
//! at least once every [`RESIGN_AFTER`] seconds, so a rack whose apt enforces `Valid-Until`
//! keeps working between imports. Each `.deb` is read only to extract its `control` file
//! (bounded sizes, gz/xz/zst/uncompressed `control.tar`); a `.deb` that cannot be parsed is
//! left out and logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::Path;

use airlock_core::{Digest, Sha256};
use airlock_store::BlobStore;
use bytes::Bytes;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize as _;
use pgp::types::Password;

use crate::RegistryError;

pub const SUITE: &str = "airlock";
pub const COMPONENT: &str = "main";
/// How long a signed `Release` stays valid (`Valid-Until`).
pub const VALID_FOR: i64 = 7 * 86_400;
/// The server re-signs `Release` at least this often.
pub const RESIGN_AFTER: i64 = 86_400;

/// The repository signing key.
pub struct AptKey {
    secret: SignedSecretKey,
    pub public_armored: String,
    pub public_binary: Vec<u8>,
}

fn pgp_err(what: &str) -> impl FnOnce(pgp::errors::Error) -> RegistryError + '_ {
    move |e| RegistryError::Tls(format!("apt signing key: {what}: {e}"))
}

impl AptKey {
    /// Loads `DIR/apt-signing.asc`, which must exist (a replica signs with the appliance's
    /// key, never a key of its own).
    pub fn load(dir: &Path) -> Result<AptKey, RegistryError> {
        let path = dir.join("apt-signing.asc");
        if !path.exists() {
            return Err(RegistryError::Tls(format!(
                "apt signing key: {} is missing; copy DATA/keys/apt-signing.asc from the writer",
                path.display()
            )));
        }
        Self::load_or_create(dir)
    }

    /// Loads `DIR/apt-signing.asc`, creating it (and `apt-signing.pub.asc`) when missing.
    pub fn load_or_create(dir: &Path) -> Result<AptKey, RegistryError> {
        let path = dir.join("apt-signing.asc");
        let secret = if path.exists() {
            let f = File::open(&path).map_err(RegistryError::io(&path, "open"))?;
            SignedSecretKey::from_armor_single(f)
                .map_err(pgp_err("read"))?
                .0
        } else {
            let mut p = SecretKeyParamsBuilder::default();
            p.key_type(KeyType::Ed25519Legacy)
                .can_certify(true)
                .can_sign(true)
                .primary_user_id("airlock appliance apt repository <apt@airlock.invalid>".into());
            let params = p
                .build()
                .map_err(|e| RegistryError::Tls(format!("apt signing key: {e}")))?;
            let key = params
                .generate(rand::thread_rng())
                .map_err(pgp_err("generate"))?;
            let armored = key
                .to_armored_string(ArmorOptions::default())
                .map_err(pgp_err("armor"))?;
            std::fs::create_dir_all(dir).map_err(RegistryError::io(dir, "create"))?;
            write_private(&path, armored.as_bytes())?;
            key
        };
        let public = SignedPublicKey::from(secret.clone());
        let public_armored = public
            .to_armored_string(ArmorOptions::default())
            .map_err(pgp_err("armor"))?;
        let public_binary = public.to_bytes().map_err(pgp_err("serialize"))?;
        let pub_path = dir.join("apt-signing.pub.asc");
        if !pub_path.exists() {
            airlock_store::write_atomic(&pub_path, public_armored.as_bytes())?;
        }
        Ok(AptKey {
            secret,
            public_armored,
            public_binary,
        })
    }

    fn clearsign(&self, text: &str) -> Result<String, RegistryError> {
        CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .and_then(|m| m.to_armored_string(ArmorOptions::default()))
        .map_err(pgp_err("clearsign"))
    }

    fn detach(&self, data: &[u8]) -> Result<String, RegistryError> {
        DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .and_then(|s| s.to_armored_string(ArmorOptions::default()))
        .map_err(pgp_err("sign"))
    }
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), RegistryError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(RegistryError::io(&tmp, "create"))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(RegistryError::io(&tmp, "write"))?;
    std::fs::rename(&tmp, path).map_err(RegistryError::io(path, "rename"))
}

/// One `.deb` offered to the repository.
pub struct Deb {
    pub file_name: String,
    pub digest: Digest,
    pub size: u64,
}

/// One suite of the repository and the `.deb` files it publishes.
pub struct Suite {
    pub name: String,
    pub debs: Vec<Deb>,
}

/// The generated repository: metadata files by path (below `/apt/`) and the pool.
#[derive(Debug, Default)]
pub struct AptRepo {
    pub files: HashMap<String, Bytes>,
    pub pool: HashMap<String, Digest>,
    pub built_at: i64,
    /// `.deb` files left out because their control file was refused: (file name, reason).
    pub refused: Vec<(String, String)>,
}

/// Builds and signs the repository: every suite, then the keys. `control_cache` keeps each
/// `.deb`'s control paragraph, or why it is not usable, by digest.
pub fn build(
    suites: &[Suite],
    store: &BlobStore,
    key: &AptKey,
    now: i64,
    control_cache: &mut HashMap<Digest, Result<String, String>>,
) -> Result<AptRepo, RegistryError> {
    let mut repo = AptRepo {
        built_at: now,
        ..AptRepo::default()
    };
    for suite in suites {
        build_suite(suite, store, key, now, control_cache, &mut repo)?;
    }
    repo.files.insert(
        "airlock-archive-keyring.asc".into(),
        Bytes::from(key.public_armored.clone()),
    );
    repo.files.insert(
        "airlock-archive-keyring.gpg".into(),
        Bytes::from(key.public_binary.clone()),
    );
    Ok(repo)
}

/// Adds one signed suite (`dists/NAME/`, `pool/...`) to `repo`.
fn build_suite(
    suite: &Suite,
    store: &BlobStore,
    key: &AptKey,
    now: i64,
    control_cache: &mut HashMap<Digest, Result<String, String>>,
    repo: &mut AptRepo,
) -> Result<(), RegistryError> {
    let name = suite.name.as_str();
    let pool = if name == SUITE {
        format!("pool/{COMPONENT}")
    } else {
        format!("pool/{name}")
    };
    // arch → stanzas
    let mut by_arch: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for d in &suite.debs {
        if !seen.insert(d.file_name.clone()) {
            continue;
        }
        let control = control_cache
            .entry(d.digest)
            .or_insert_with(|| usable_control(store, &d.digest))
            .clone();
        let control = match control {
            Ok(c) => c,
            Err(reason) => {
                tracing::error!(suite = name, file = %d.file_name, %reason, "not a usable .deb; left out of the apt repository");
                repo.refused.push((d.file_name.clone(), reason));
                continue;
            }
        };
        let arch = field(&control, "Architecture").unwrap_or_else(|| "all".into());
        let pool_path = format!("{pool}/{}", d.file_name);
        let mut stanza = String::new();
        for line in control.lines() {
            let l = line.trim_end();
            if l.is_empty() {
                continue;
            }
            // Fields the repository computes itself.
            let field_name = l.split(':').next().unwrap_or("");
            if !l.starts_with([' ', '\t'])
                && ["Filename", "Size", "SHA256", "MD5sum", "SHA1", "SHA512"].contains(&field_name)
            {
                continue;
            }
            stanza.push_str(l);
            stanza.push('\n');
        }
        stanza.push_str(&format!(
            "Filename: {pool_path}\nSize: {}\nSHA256: {}\n",
            d.size,
            d.digest.hex()
        ));
        repo.pool.insert(pool_path, d.digest);
        if arch == "all" {
            all.push(stanza);
        } else {
            by_arch.entry(arch).or_default().push(stanza);
        }
    }
    if by_arch.is_empty() {
        by_arch.insert("amd64".into(), Vec::new());
    }
    let mut sums = Vec::new();
    for (arch, stanzas) in &by_arch {
        let mut text = stanzas
            .iter()
            .chain(all.iter())
            .cloned()
            .collect::<Vec<_>>();
        text.sort();
        let packages = text.join("\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(packages.as_bytes())
            .map_err(RegistryError::io("Packages.gz", "compress"))?;
        let packages_gz = gz
            .finish()
            .map_err(RegistryError::io("Packages.gz", "compress"))?;
        let dir = format!("{COMPONENT}/binary-{arch}");
        for (file, bytes) in [
            ("Packages", packages.into_bytes()),
            ("Packages.gz", packages_gz),
        ] {
            sums.push((
                Sha256::digest(&bytes).hex(),
                bytes.len(),
                format!("{dir}/{file}"),
            ));
            repo.files
                .insert(format!("dists/{name}/{dir}/{file}"), Bytes::from(bytes));
        }
    }
    let archs: Vec<&str> = by_arch.keys().map(|s| s.as_str()).collect();
    let description = if name == SUITE {
        "packages imported through signed airlock bundles".to_string()
    } else {
        format!("the package closure {name} imported through a signed airlock bundle")
    };
    let mut release = format!(
        "Origin: airlock\nLabel: airlock\nSuite: {name}\nCodename: {name}\nDate: {}\nValid-Until: {}\nArchitectures: {}\nComponents: {COMPONENT}\nDescription: {description}\nSHA256:\n",
        rfc2822(now),
        rfc2822(now + VALID_FOR),
        archs.join(" ")
    );
    for (h, len, path) in sums {
        release.push_str(&format!(" {h} {len:>16} {path}\n"));
    }
    // gpg strips trailing whitespace before hashing cleartext; rPGP does not: strip it here.
    let release: String = release
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    let inrelease = key.clearsign(&release)?;
    let detached = key.detach(release.as_bytes())?;
    repo.files
        .insert(format!("dists/{name}/InRelease"), Bytes::from(inrelease));
    repo.files
        .insert(format!("dists/{name}/Release.gpg"), Bytes::from(detached));
    repo.files
        .insert(format!("dists/{name}/Release"), Bytes::from(release));
    Ok(())
}

/// The control paragraph of the `.deb` at `path`, checked with [`check_control`].
fn usable_control(store: &BlobStore, d: &Digest) -> Result<String, String> {
    let f = store.read(d).map_err(|e| e.to_string())?;
    let c = airlock_deb::control_of(std::io::BufReader::new(f)).map_err(|e| e.to_string())?;
    check_control(c.as_bytes())?;
    Ok(c)
}

pub use airlock_deb::check_control;
use airlock_deb::field;

/// An HTTP `Date` value (IMF-fixdate): `Fri, 27 Nov 2026 02:30:00 GMT`. Times before 1970 are
/// written as 1970 (the appliance refuses to run its checks on such a clock anyway).
pub(crate) fn http_date(t: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// The `Date:` of a `Release` file, as Debian writes it: `Fri, 27 Nov 2026 02:30:00 UTC`.
fn rfc2822(t: i64) -> String {
    http_date(t).replace(" GMT", " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(rfc2822(1_795_746_600), "Fri, 27 Nov 2026 02:30:00 UTC");
    }
}
