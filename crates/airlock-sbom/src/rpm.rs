//! RPM packages from rpm's SQLite database, `rpmdb.sqlite` in `var/lib/rpm/` or
//! `usr/lib/sysimage/rpm/` (Fedora 33+, RHEL 9, openSUSE): table `Packages(hnum, blob)`, each
//! blob one package's header.
//!
//! The database file is untrusted. It is copied (already bounded by [`Limits::max_file`]) to
//! a private temporary directory and opened read-only and `immutable`, so SQLite takes no
//! locks and writes no journal next to it; a WAL-mode file is marked rollback-mode in the copy
//! so it can be read without its `-wal` and `-shm` companions. The schema must declare
//! `Packages` as a table (a view could run arbitrary queries) and `trusted_schema` is off.
//!
//! A header as the database stores it: two big-endian u32s, the number of index entries and
//! the size of the data store, then the 16-byte index entries (tag, type, offset, count),
//! then the store; there is no magic, unlike the header of an `.rpm` file. Everything in it
//! is checked against its bounds ([`parse_header`]). Tags used: `NAME`, `VERSION`,
//! `RELEASE`, `EPOCH`, `ARCH`, `LICENSE`, `VENDOR` (the supplier, else `PACKAGER`) and
//! `SOURCERPM` (the source package, as the file name `NAME-VERSION-RELEASE.src.rpm`).
//! The version is `[EPOCH:]VERSION-RELEASE`.
//!
//! The older BerkeleyDB (`Packages`) and ndb (`Packages.db`) formats are not read: each is
//! reported with a warning naming the file.
//!
//! [`Limits::max_file`]: crate::Limits::max_file

use std::collections::BTreeMap;

use crate::cyclonedx::purl_with;
use crate::files::Files;
use crate::{Distro, Ecosystem, Licenses, Package, SbomError};

/// Most index entries in one header (rpm's own limit, `HEADER_TAGS_MAX`).
pub const MAX_INDEX: u32 = 0xffff;
/// Largest data store of one header (rpm's own limit, `HEADER_DATA_MAX`).
pub const MAX_STORE: u32 = 0x0fff_ffff;
/// Longest string value kept.
pub const MAX_STRING: usize = 4096;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_VENDOR: u32 = 1011;
const TAG_LICENSE: u32 = 1014;
const TAG_PACKAGER: u32 = 1015;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

const DIRS: [&str; 2] = ["var/lib/rpm/", "usr/lib/sysimage/rpm/"];

/// Is `path` an rpm database (any format)?
pub fn is_rpmdb(path: &str) -> bool {
    DIRS.iter().any(|d| {
        path.strip_prefix(d)
            .is_some_and(|f| matches!(f, "rpmdb.sqlite" | "Packages" | "Packages.db"))
    })
}

/// The RPM packages among `files`.
pub fn catalog(files: &Files) -> Result<Vec<Package>, SbomError> {
    let mut out = Vec::new();
    for (path, file) in files.iter() {
        if !is_rpmdb(path) {
            continue;
        }
        if !path.ends_with("/rpmdb.sqlite") {
            let kind = if path.ends_with(".db") {
                "ndb"
            } else {
                "BerkeleyDB"
            };
            tracing::warn!(
                "{path}: an rpm database in the {kind} format, which is not read; \
                 its packages are not in the SBOM"
            );
            continue;
        }
        for (hnum, blob) in read_sqlite(path, &file.data)? {
            let h = parse_header(&blob)
                .map_err(|e| SbomError::Invalid(format!("{path}: package {hnum}: {e}")))?;
            let mut p = h
                .package(path)
                .map_err(|e| SbomError::Invalid(format!("{path}: package {hnum}: {e}")))?;
            p.layer = file.layer.clone();
            out.push(p);
        }
    }
    Ok(out)
}

/// The rows of `Packages` (header number, header blob) of the SQLite database `data`, read
/// from a private read-only copy.
pub fn read_sqlite(path: &str, data: &[u8]) -> Result<Vec<(i64, Vec<u8>)>, SbomError> {
    let bad = |e: &dyn std::fmt::Display| SbomError::Invalid(format!("{path}: {e}"));
    if data.len() < 100 || !data.starts_with(b"SQLite format 3\0") {
        return Err(bad(&"not a SQLite database"));
    }
    let mut copy = data.to_vec();
    // File format read/write versions 2 mean WAL; 1 lets the copy be read on its own.
    for b in &mut copy[18..20] {
        if *b == 2 {
            *b = 1;
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("airlock-rpmdb-")
        .tempdir()
        .map_err(|e| bad(&format!("temporary directory: {e}")))?;
    let db = dir.path().join("rpmdb.sqlite");
    std::fs::write(&db, &copy).map_err(|e| bad(&format!("temporary copy: {e}")))?;
    let Some(db_str) = db.to_str() else {
        return Err(bad(&"temporary path is not UTF-8"));
    };
    let uri = format!("file:{}?mode=ro&immutable=1", uri_path(db_str));
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| bad(&e))?;
    conn.pragma_update(None, "trusted_schema", false)
        .map_err(|e| bad(&e))?;
    let _ = conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true);
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = 'Packages'",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(bad(&e)),
        })?;
    if kind.as_deref() != Some("table") {
        return Err(bad(&"no Packages table"));
    }
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| bad(&e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(|e| bad(&e))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(|e| bad(&e))?);
    }
    Ok(out)
}

fn uri_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The tags of one header that the cataloger uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub strings: BTreeMap<u32, String>,
    pub epoch: Option<u32>,
}

/// Parses a header blob as the database stores it. Every count, size and offset is checked
/// against the blob: the index must fit, the store must be exactly what is left, each used
/// value must lie inside the store and each string must end with a NUL there.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let u32_at =
        |b: &[u8], i: usize| -> u32 { u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) };
    if blob.len() < 8 {
        return Err(format!(
            "header of {} bytes, shorter than its preamble",
            blob.len()
        ));
    }
    let nindex = u32_at(blob, 0);
    let hsize = u32_at(blob, 4);
    if nindex == 0 || nindex > MAX_INDEX {
        return Err(format!("{nindex} index entries (1 to {MAX_INDEX} allowed)"));
    }
    if hsize > MAX_STORE {
        return Err(format!(
            "data store of {hsize} bytes, more than {MAX_STORE}"
        ));
    }
    let index_len = nindex as usize * 16;
    let want = 8 + index_len + hsize as usize;
    if blob.len() != want {
        return Err(format!(
            "header of {} bytes, but its preamble says {want} ({nindex} entries, {hsize} bytes of data)",
            blob.len()
        ));
    }
    let store = &blob[8 + index_len..];
    let mut h = Header::default();
    for i in 0..nindex as usize {
        let e = &blob[8 + i * 16..8 + (i + 1) * 16];
        let (tag, ty, off, count) = (u32_at(e, 0), u32_at(e, 4), u32_at(e, 8), u32_at(e, 12));
        let used = matches!(
            tag,
            TAG_NAME
                | TAG_VERSION
                | TAG_RELEASE
                | TAG_EPOCH
                | TAG_VENDOR
                | TAG_LICENSE
                | TAG_PACKAGER
                | TAG_ARCH
                | TAG_SOURCERPM
        );
        if !used {
            continue;
        }
        let off = off as usize;
        if off >= store.len() {
            return Err(format!(
                "tag {tag}: offset {off} past the data store ({} bytes)",
                store.len()
            ));
        }
        if count == 0 {
            return Err(format!("tag {tag}: count 0"));
        }
        if tag == TAG_EPOCH {
            if ty != TYPE_INT32 {
                return Err(format!("tag {tag}: type {ty}, not INT32"));
            }
            if store.len() - off < 4 {
                return Err(format!("tag {tag}: value past the data store"));
            }
            h.epoch = Some(u32_at(store, off));
            continue;
        }
        if !matches!(ty, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(format!("tag {tag}: type {ty}, not a string"));
        }
        // The first string of an array or of an i18n table is the one used.
        let rest = &store[off..];
        let Some(end) = rest.iter().take(MAX_STRING + 1).position(|&b| b == 0) else {
            return Err(if rest.len() > MAX_STRING {
                format!("tag {tag}: string longer than {MAX_STRING} bytes")
            } else {
                format!("tag {tag}: string not terminated inside the data store")
            });
        };
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        h.strings.insert(tag, s);
    }
    Ok(h)
}

impl Header {
    fn get(&self, tag: u32) -> Option<&str> {
        self.strings
            .get(&tag)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "(none)")
    }

    /// The package this header describes, found in the database at `location`.
    pub fn package(&self, location: &str) -> Result<Package, String> {
        let (Some(name), Some(version), Some(release)) = (
            self.get(TAG_NAME),
            self.get(TAG_VERSION),
            self.get(TAG_RELEASE),
        ) else {
            return Err("no NAME, VERSION or RELEASE".into());
        };
        let version = match self.epoch {
            Some(e) => format!("{e}:{version}-{release}"),
            None => format!("{version}-{release}"),
        };
        Ok(Package {
            ecosystem: Ecosystem::Rpm,
            name: name.to_string(),
            version,
            arch: self.get(TAG_ARCH).map(str::to_string),
            source_package: self.get(TAG_SOURCERPM).map(str::to_string),
            supplier: self
                .get(TAG_VENDOR)
                .or(self.get(TAG_PACKAGER))
                .map(str::to_string),
            licenses: match self.get(TAG_LICENSE) {
                Some(l) => Licenses::Names(vec![l.to_string()]),
                None => Licenses::None,
            },
            location: location.to_string(),
            layer: None,
        })
    }
}

/// `pkg:rpm/ID/NAME@VERSION-RELEASE?arch=…&distro=ID-VERSION_ID&epoch=…&upstream=SRPM`:
/// the epoch moves from the version to its qualifier; no namespace when os-release gives no
/// `ID`.
pub fn purl(p: &Package, distro: &Distro) -> String {
    let (epoch, version) = match p.version.split_once(':') {
        Some((e, v)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(e.to_string()), v)
        }
        _ => (None, p.version.as_str()),
    };
    let d = match (&distro.id, &distro.version_id) {
        (Some(id), Some(v)) => Some(format!("{id}-{v}")),
        _ => None,
    };
    purl_with(
        "rpm",
        distro.id.as_deref(),
        &p.name,
        version,
        &[
            ("arch", p.arch.clone()),
            ("distro", d),
            ("epoch", epoch),
            ("upstream", p.source_package.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with `entries` (tag, type, value bytes, count) laid out in order.
    fn header(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store: Vec<u8> = Vec::new();
        for (tag, ty, v, count) in entries {
            for x in [*tag, *ty, store.len() as u32, *count] {
                index.extend(x.to_be_bytes());
            }
            store.extend(v);
        }
        let mut b = Vec::new();
        b.extend((entries.len() as u32).to_be_bytes());
        b.extend((store.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(store);
        b
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    fn good() -> Vec<(u32, u32, Vec<u8>, u32)> {
        vec![
            (TAG_NAME, TYPE_STRING, s("bash"), 1),
            (TAG_VERSION, TYPE_STRING, s("5.2.26"), 1),
            (TAG_RELEASE, TYPE_STRING, s("3.fc40"), 1),
            (TAG_EPOCH, TYPE_INT32, 2u32.to_be_bytes().to_vec(), 1),
            (TAG_LICENSE, TYPE_STRING, s("GPL-3.0-or-later"), 1),
            (TAG_VENDOR, TYPE_STRING, s("Fedora Project"), 1),
            (TAG_ARCH, TYPE_STRING, s("x86_64"), 1),
            (
                TAG_SOURCERPM,
                TYPE_STRING,
                s("bash-5.2.26-3.fc40.src.rpm"),
                1,
            ),
            (1004, TYPE_I18NSTRING, s("The GNU Bourne Again shell"), 1),
        ]
    }

    #[test]
    fn a_header_gives_the_package_and_its_purl() {
        let p = parse_header(&header(&good()))
            .unwrap()
            .package("var/lib/rpm/rpmdb.sqlite")
            .unwrap();
        assert_eq!(p.name, "bash");
        assert_eq!(p.version, "2:5.2.26-3.fc40");
        assert_eq!(p.supplier.as_deref(), Some("Fedora Project"));
        assert_eq!(p.licenses, Licenses::Names(vec!["GPL-3.0-or-later".into()]));
        let d = Distro {
            id: Some("fedora".into()),
            version_id: Some("40".into()),
        };
        assert_eq!(
            purl(&p, &d),
            "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40&epoch=2\
&upstream=bash-5.2.26-3.fc40.src.rpm"
        );
        assert_eq!(
            purl(&p, &Distro::default()),
            "pkg:rpm/bash@5.2.26-3.fc40?arch=x86_64&epoch=2&upstream=bash-5.2.26-3.fc40.src.rpm"
        );
    }

    #[test]
    fn truncated_and_inconsistent_headers_are_errors() {
        let b = header(&good());
        assert!(parse_header(&b[..5])
            .unwrap_err()
            .contains("shorter than its preamble"));
        let e = parse_header(&b[..b.len() - 1]).unwrap_err();
        assert!(e.contains("but its preamble says"), "{e}");
        let e = parse_header(&b[..40]).unwrap_err();
        assert!(e.contains("but its preamble says"), "{e}");
        let mut extra = b.clone();
        extra.push(0);
        assert!(parse_header(&extra).is_err());
    }

    #[test]
    fn huge_counts_and_sizes_are_refused_before_allocating() {
        let mut b = header(&good());
        b[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&b).unwrap_err().contains("index entries"));
        let mut b = header(&good());
        b[0..4].copy_from_slice(&0u32.to_be_bytes());
        assert!(parse_header(&b).unwrap_err().contains("0 index entries"));
        let mut b = header(&good());
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&b).unwrap_err().contains("data store of"));
        // A count that does not fit the store: counts are not used to size anything.
        let mut e = good();
        e[0].3 = u32::MAX;
        assert!(parse_header(&header(&e)).is_ok());
    }

    #[test]
    fn offsets_past_the_store_and_unterminated_strings_are_errors() {
        let mut b = header(&good());
        // The first entry's offset field.
        b[8 + 8..8 + 12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let e = parse_header(&b).unwrap_err();
        assert!(
            e.contains("tag 1000: offset") && e.contains("past the data store"),
            "{e}"
        );
        // The last string in the store without its NUL.
        let mut e = good();
        e.truncate(2);
        e[1].2.pop();
        let err = parse_header(&header(&e)).unwrap_err();
        assert!(err.contains("tag 1001: string not terminated"), "{err}");
        // An epoch whose four bytes run off the end.
        let e = vec![(TAG_EPOCH, TYPE_INT32, vec![0, 1], 1)];
        assert!(parse_header(&header(&e))
            .unwrap_err()
            .contains("past the data store"));
        // Wrong types.
        let e = vec![(TAG_EPOCH, TYPE_STRING, s("1"), 1)];
        assert!(parse_header(&header(&e)).unwrap_err().contains("not INT32"));
        let e = vec![(TAG_NAME, TYPE_INT32, vec![0; 4], 1)];
        assert!(parse_header(&header(&e))
            .unwrap_err()
            .contains("not a string"));
    }

    #[test]
    fn oversized_strings_and_missing_fields_are_errors() {
        let mut e = good();
        e[0].2 = s(&"n".repeat(MAX_STRING + 1));
        let err = parse_header(&header(&e)).unwrap_err();
        assert!(err.contains("string longer than 4096"), "{err}");
        let mut e = good();
        e.remove(2);
        let err = parse_header(&header(&e)).unwrap().package("x").unwrap_err();
        assert!(err.contains("no NAME, VERSION or RELEASE"), "{err}");
    }

    #[test]
    fn databases_that_are_not_sqlite_or_lack_the_table_are_errors_naming_the_file() {
        let e = read_sqlite("var/lib/rpm/rpmdb.sqlite", b"nope").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("var/lib/rpm/rpmdb.sqlite: not a SQLite database"),
            "{e}"
        );
        // A real SQLite file with another schema.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE Other(x); CREATE VIEW Packages AS SELECT 1 AS hnum, x'00' AS blob;",
        )
        .unwrap();
        drop(c);
        let data = std::fs::read(&path).unwrap();
        let e = read_sqlite("r/rpmdb.sqlite", &data)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no Packages table"), "{e}");
        // Truncated: SQLite reports the damage, named by file.
        let mut cut = data.clone();
        cut.truncate(100);
        assert!(read_sqlite("r/rpmdb.sqlite", &cut)
            .unwrap_err()
            .to_string()
            .starts_with("r/rpmdb.sqlite: "));
    }

    #[test]
    fn a_sqlite_database_is_read_from_a_copy_and_bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE Packages(hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);")
            .unwrap();
        c.execute("INSERT INTO Packages VALUES (1, ?1)", [header(&good())])
            .unwrap();
        c.execute("INSERT INTO Packages VALUES (7, ?1)", [vec![0u8, 0, 0, 1]])
            .unwrap();
        drop(c);
        let data = std::fs::read(&path).unwrap();
        let rows = read_sqlite("var/lib/rpm/rpmdb.sqlite", &data).unwrap();
        assert_eq!(rows.len(), 2);
        let mut f = Files::default();
        f.insert(
            "var/lib/rpm/rpmdb.sqlite".into(),
            crate::files::File { data, layer: None },
            &crate::Limits::default(),
            "t",
        )
        .unwrap();
        let e = catalog(&f).unwrap_err().to_string();
        assert!(
            e.starts_with("var/lib/rpm/rpmdb.sqlite: package 7: header of 4 bytes"),
            "{e}"
        );
    }
}
