//! Constants of bundle format v1. Changing any of these changes the on-disk format.

use serde::{Deserialize, Serialize};

use airlock_core::Digest;

/// First entry: the DSSE envelope over the in-toto statement whose predicate is the manifest.
pub const ENTRY_MANIFEST: &str = "airlock-bundle.dsse.json";
/// Second entry: which volume of which bundle this is (unsigned; checked against the manifest).
pub const ENTRY_VOLUME: &str = "airlock-volume.json";
pub const ENTRY_OCI_LAYOUT: &str = "oci-layout";
pub const ENTRY_INDEX: &str = "index.json";

/// Content of `oci-layout`.
pub const OCI_LAYOUT_CONTENT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";

/// Largest signed manifest a reader accepts (bounded read before parsing).
pub const MAX_MANIFEST_ENTRY: u64 = 64 << 20;
/// Largest `index.json` / volume label a reader accepts.
pub const MAX_SMALL_ENTRY: u64 = 16 << 20;
/// Uncompressed bytes per zstd frame (the last frame of an entry may be shorter, the first
/// also holds the 512-byte tar header). Bounds memory on both sides.
pub const FRAME_DATA: usize = 4 << 20;
/// Largest uncompressed frame a reader accepts.
pub const MAX_FRAME: u64 = 16 << 20;
/// Largest window a streaming reader allows a frame to ask for (bomb and memory bound).
pub const MAX_WINDOW_LOG: u32 = 24;

/// The volume label entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeLabel {
    /// SHA-256 of the DSSE payload (the statement): the bundle's identity.
    pub bundle: Digest,
    pub volume: u32,
    pub volumes: u32,
}

/// File name of volume `n` of `total`.
pub fn volume_file_name(name: &str, version: &str, n: u32, total: u32) -> String {
    format!("{name}-{version}.vol{n}of{total}.tar.zst")
}
