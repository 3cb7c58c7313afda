//! File modes of the data directory.
//!
//! `airlockd` creates directories 0750, files 0640 and private keys 0600 whatever the caller's
//! umask (the binary sets its umask to 027 at start; keys are written 0600 explicitly). A looser
//! mode would let another local user swap served content, the trust root or the appliance's
//! public key, so [`check`] (run by `fsck`) reports every entry that is group-writable or
//! accessible to others, and every private key readable by anyone but its owner.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Directories checked (when present), relative to the data directory.
const DIRS: &[&str] = &[
    "",
    "blobs",
    "blobs/sha256",
    "trust",
    "keys",
    "tls",
    "quarantine",
    "inbox",
];
/// Files checked (when present).
const FILES: &[&str] = &[
    "catalog.db",
    "trust/root.json",
    "keys/appliance.pub",
    "audit.head",
    "config.yaml",
    "oci-layout",
    "tls/ca.pem",
    "tls/server.pem",
];
/// Private keys: owner only.
const KEYS: &[&str] = &["keys/appliance.key", "tls/ca.key", "tls/server.key"];

/// Bits that must be clear: group write and any access by others for directories and files
/// (plus execute for files), any group or other access for keys.
const DIR_LOOSE: u32 = 0o027;
const FILE_LOOSE: u32 = 0o137;
const KEY_LOOSE: u32 = 0o077;

/// Every entry of the data directory whose mode is looser than it should be, one line each.
pub fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut look = |rel: &str, loose: u32, what: &str, want: u32| {
        let p = root.join(rel);
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            let mode = m.permissions().mode() & 0o7777;
            if mode & loose != 0 {
                problems.push(format!(
                    "{}: mode {mode:04o} is looser than {want:04o} for {what}",
                    p.display()
                ));
            }
        }
    };
    for d in DIRS {
        look(d, DIR_LOOSE, "a directory", 0o750);
    }
    for f in FILES {
        look(f, FILE_LOOSE, "a file", 0o640);
    }
    for k in KEYS {
        look(k, KEY_LOOSE, "a private key", 0o600);
    }
    let blobs = root.join("blobs/sha256");
    if let Ok(entries) = std::fs::read_dir(&blobs) {
        let mut loose = 0usize;
        let mut first = None;
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.permissions().mode() & FILE_LOOSE != 0 {
                loose += 1;
                first.get_or_insert_with(|| e.path());
            }
        }
        if let Some(first) = first {
            problems.push(format!(
                "{loose} blob(s) with a mode looser than 0640 (first: {})",
                first.display()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_modes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::create_dir_all(root.join("keys")).unwrap();
        for d in ["", "blobs", "blobs/sha256", "keys"] {
            std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o750)).unwrap();
        }
        std::fs::write(root.join("keys/appliance.key"), b"k").unwrap();
        std::fs::set_permissions(
            root.join("keys/appliance.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(root.join("blobs/sha256/ab"), b"x").unwrap();
        std::fs::set_permissions(
            root.join("blobs/sha256/ab"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        assert_eq!(check(root), Vec::<String>::new());
        std::fs::set_permissions(
            root.join("blobs/sha256/ab"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        std::fs::set_permissions(
            root.join("keys/appliance.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let p = check(root);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("appliance.key") && p[0].contains("0644"),
            "{p:?}"
        );
        assert!(p[1].contains("1 blob(s)"), "{p:?}");
    }
}
