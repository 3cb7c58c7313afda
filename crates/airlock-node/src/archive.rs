//! Image archives k3s loads at start, and the zstd window limit of its loader.
//!
//! k3s imports every tarball in `/var/lib/rancher/k3s/agent/images/` into containerd before it
//! starts the kubelet, so a node needs no registry for the images it runs first. The archives
//! written here are OCI image layouts in a plain tar: `oci-layout`, an `index.json` with one
//! manifest whose `io.containerd.image.name` annotation gives the image's full upstream name
//! (containerd imports it under that name, so pods keep their upstream references), and the
//! manifest, config and layer blobs of one platform. They are not compressed again: layers are
//! compressed already, and a plain tar is what every containerd release reads.
//!
//! Tar headers are fixed (mode 0644, owner 0, time 0), so the same image gives the same bytes.
//! Every blob is hashed while it is copied out of the store and the archive is refused when a
//! digest does not match.
//!
//! A tarball k3s reads compressed (k3s's own `k3s-airgap-images-*.tar.zst`) must not need a
//! zstd window over [`K3S_MAX_ZSTD_WINDOW`]: k3s's decoder refuses larger windows ("window
//! size exceeded"), which `zstd --long=27` or higher and some `-19`/`--ultra` runs produce.
//! [`zstd_max_window`] walks a zstd file's frame and block headers, without decompressing, to
//! find the largest window any frame asks for.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};

use airlock_core::oci::{Descriptor, Manifest};
use airlock_core::{media, Digest, Hashing};
use airlock_store::BlobStore;
use serde_json::json;

use crate::NodeError;

/// The largest zstd window k3s's image loader accepts (32 MiB: the decoder's default limit in
/// the `klauspost/compress` zstd package k3s uses).
pub const K3S_MAX_ZSTD_WINDOW: u64 = 32 << 20;
/// Largest manifest or index read into memory.
const MAX_MANIFEST: u64 = 4 << 20;
/// Most frames [`zstd_max_window`] walks (a real archive has one per worker or per few MiB).
const MAX_FRAMES: u64 = 1 << 20;

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// The platform manifest written.
    pub manifest: Digest,
    /// Manifest, config and layers, in archive order.
    pub blobs: Vec<Descriptor>,
}

/// The manifest of `arch` (Linux) from an image's root object, which is either an image
/// manifest (taken as is) or an index (the matching entry; an error lists what it has).
pub fn select_platform(
    store: &BlobStore,
    root: &Digest,
    arch: &str,
) -> Result<(Descriptor, Manifest), NodeError> {
    let bytes = read_small(store, root)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| NodeError::Invalid(format!("image {root}: not JSON: {e}")))?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    if v.get("manifests").is_some() {
        let idx: airlock_core::oci::Index = serde_json::from_value(v)
            .map_err(|e| NodeError::Invalid(format!("image index {root}: {e}")))?;
        let mut seen = Vec::new();
        for d in &idx.manifests {
            match &d.platform {
                Some(p) if p.os == "linux" && p.architecture == arch => {
                    let m = read_manifest(store, &d.digest)?;
                    return Ok((d.clone(), m));
                }
                Some(p) => seen.push(p.key()),
                None => seen.push("unknown".into()),
            }
        }
        return Err(NodeError::Invalid(format!(
            "image index {root} has no linux/{arch} manifest (it has: {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        )));
    }
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| NodeError::Invalid(format!("image manifest {root}: {e}")))?;
    let desc = Descriptor {
        media_type: if mt.is_empty() {
            media::OCI_MANIFEST.into()
        } else {
            mt
        },
        digest: *root,
        size: bytes.len() as u64,
        artifact_type: None,
        platform: None,
        annotations: Default::default(),
    };
    Ok((desc, m))
}

fn read_small(store: &BlobStore, d: &Digest) -> Result<Vec<u8>, NodeError> {
    store
        .read_verified(d, MAX_MANIFEST)
        .map_err(|e| NodeError::Invalid(format!("blob {d}: {e}")))
}

fn read_manifest(store: &BlobStore, d: &Digest) -> Result<Manifest, NodeError> {
    serde_json::from_slice(&read_small(store, d)?)
        .map_err(|e| NodeError::Invalid(format!("image manifest {d}: {e}")))
}

/// Writes the archive of one platform manifest to `out`, naming it `name` (the full upstream
/// reference, `docker.io/vllm/vllm-openai:v0.9.1`).
pub fn write_image_archive(
    store: &BlobStore,
    name: &str,
    manifest: &Descriptor,
    m: &Manifest,
    out: impl Write,
) -> Result<ArchiveInfo, NodeError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut blobs = vec![strip(manifest)];
    let mut seen = BTreeSet::from([manifest.digest]);
    for d in std::iter::once(&m.config).chain(&m.layers) {
        if seen.insert(d.digest) {
            blobs.push(strip(d));
        }
    }
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let tag = name
        .rsplit_once(':')
        .filter(|(repo, t)| !t.contains('/') && !repo.is_empty())
        .map(|(_, t)| t.to_string());
    let mut annotations = serde_json::Map::new();
    annotations.insert(media::ANNOTATION_CONTAINERD_NAME.into(), json!(name));
    if let Some(t) = tag {
        annotations.insert(media::ANNOTATION_REF_NAME.into(), json!(t));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": manifest.size,
            "annotations": annotations,
        }],
    });
    let index = serde_json::to_vec(&index).expect("index serialises");
    let io = |what: &str| NodeError::io(format!("write image archive of {name}: {what}"));
    append(&mut tar, "oci-layout", &layout[..]).map_err(io("oci-layout"))?;
    append(&mut tar, "index.json", &index[..]).map_err(io("index.json"))?;
    let mut dir = tar::Header::new_ustar();
    for path in ["blobs/", "blobs/sha256/"] {
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        dir.set_mtime(0);
        tar.append_data(&mut dir, path, std::io::empty())
            .map_err(io(path))?;
    }
    for d in &blobs {
        let r = store
            .read(&d.digest)
            .map_err(|e| NodeError::Invalid(format!("image {name}: blob {}: {e}", d.digest)))?;
        let mut hr = Hashing::new(r.take(d.size));
        let path = format!("blobs/sha256/{}", d.digest.hex());
        let mut h = file_header(d.size);
        tar.append_data(&mut h, &path, &mut hr).map_err(io(&path))?;
        let (_, got, n) = hr.finish();
        if got != d.digest || n != d.size {
            return Err(NodeError::Invalid(format!(
                "image {name}: blob {} in the store reads as {got} ({n} bytes, {} expected); run `airlockd fsck`",
                d.digest, d.size
            )));
        }
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io("finish"))?;
    Ok(ArchiveInfo {
        manifest: manifest.digest,
        blobs,
    })
}

fn strip(d: &Descriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest,
        size: d.size,
        artifact_type: None,
        platform: None,
        annotations: Default::default(),
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = file_header(data.len() as u64);
    tar.append_data(&mut h, path, data)
}

/// The largest window any zstd frame of `r` declares, walking frame and block headers only.
/// `Ok(None)` when `r` does not start with a zstd frame (a plain or gzip tarball).
pub fn zstd_max_window(mut r: impl Read + Seek) -> Result<Option<u64>, String> {
    const MAGIC: u32 = 0xFD2F_B528;
    let mut max = None::<u64>;
    let mut frames = 0u64;
    loop {
        let mut m = [0u8; 4];
        match read_exact_or_eof(&mut r, &mut m)? {
            0 if frames > 0 => return Ok(max),
            0 => return Ok(None),
            4 => {}
            _ => return Err("truncated frame magic".into()),
        }
        frames += 1;
        if frames > MAX_FRAMES {
            return Err(format!("more than {MAX_FRAMES} frames"));
        }
        let magic = u32::from_le_bytes(m);
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let mut s = [0u8; 4];
            r.read_exact(&mut s)
                .map_err(|e| format!("skippable frame: {e}"))?;
            skip(&mut r, u32::from_le_bytes(s) as u64)?;
            continue;
        }
        if magic != MAGIC {
            return if frames == 1 {
                Ok(None)
            } else {
                Err(format!("frame {frames}: bad magic {magic:#010x}"))
            };
        }
        let mut fhd = [0u8; 1];
        r.read_exact(&mut fhd)
            .map_err(|e| format!("frame header: {e}"))?;
        let fhd = fhd[0];
        let single = fhd & 0x20 != 0;
        let checksum = fhd & 0x04 != 0;
        if fhd & 0x08 != 0 {
            return Err(format!("frame {frames}: reserved header bit set"));
        }
        let dict_len = [0u64, 1, 2, 4][(fhd & 3) as usize];
        let fcs_len = match fhd >> 6 {
            0 if single => 1u64,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let window = if single {
            skip(&mut r, dict_len)?;
            let mut b = [0u8; 8];
            r.read_exact(&mut b[..fcs_len as usize])
                .map_err(|e| format!("frame content size: {e}"))?;
            let v = u64::from_le_bytes(b);
            if fcs_len == 2 {
                v + 256
            } else {
                v
            }
        } else {
            let mut wd = [0u8; 1];
            r.read_exact(&mut wd)
                .map_err(|e| format!("window descriptor: {e}"))?;
            let exponent = (wd[0] >> 3) as u32;
            let mantissa = (wd[0] & 7) as u64;
            let base = 1u64 << (10 + exponent);
            skip(&mut r, dict_len + fcs_len)?;
            base + (base / 8) * mantissa
        };
        max = Some(max.map_or(window, |m: u64| m.max(window)));
        // Blocks: 3-byte headers (last flag, type, size); an RLE block stores one byte.
        loop {
            let mut bh = [0u8; 3];
            r.read_exact(&mut bh)
                .map_err(|e| format!("frame {frames}: block header: {e}"))?;
            let v = u32::from_le_bytes([bh[0], bh[1], bh[2], 0]);
            let last = v & 1 != 0;
            let kind = (v >> 1) & 3;
            let size = (v >> 3) as u64;
            match kind {
                0 | 2 => skip(&mut r, size)?,
                1 => skip(&mut r, 1)?,
                _ => return Err(format!("frame {frames}: reserved block type")),
            }
            if last {
                break;
            }
        }
        if checksum {
            skip(&mut r, 4)?;
        }
    }
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(n)
}

/// Skips `n` bytes, failing when that runs past the end.
fn skip(r: &mut (impl Read + Seek), n: u64) -> Result<(), String> {
    let here = r.stream_position().map_err(|e| e.to_string())?;
    let end = r.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    if here.checked_add(n).is_none_or(|t| t > end) {
        return Err(format!(
            "truncated: {n} bytes needed at offset {here}, file ends at {end}"
        ));
    }
    r.seek(SeekFrom::Start(here + n))
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn compress(data: &[u8], level: i32, window_log: Option<u32>) -> Vec<u8> {
        let mut e = zstd::stream::Encoder::new(Vec::new(), level).unwrap();
        if let Some(w) = window_log {
            e.long_distance_matching(true).unwrap();
            e.window_log(w).unwrap();
        }
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn windows_are_read_from_frame_headers() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        // A small single-segment frame declares its content size as the window.
        let small = zstd::bulk::compress(&data[..1000], 3).unwrap();
        assert_eq!(zstd_max_window(Cursor::new(&small)).unwrap(), Some(1000));
        // A streamed frame (size unknown) declares a window descriptor.
        let streamed = compress(&data[..1000], 3, None);
        let w = zstd_max_window(Cursor::new(&streamed)).unwrap().unwrap();
        assert!(w <= K3S_MAX_ZSTD_WINDOW, "{w}");
        // --long=27 asks for a 128 MiB window: over k3s's limit.
        let long = compress(&data, 3, Some(27));
        let w = zstd_max_window(Cursor::new(&long)).unwrap().unwrap();
        assert!(w > K3S_MAX_ZSTD_WINDOW, "{w}");
        // Two frames: the larger window counts.
        let mut two = small.clone();
        two.extend_from_slice(&long);
        assert_eq!(zstd_max_window(Cursor::new(&two)).unwrap(), Some(w));
        // Not zstd at all.
        assert_eq!(
            zstd_max_window(Cursor::new(b"plain tar bytes")).unwrap(),
            None
        );
        assert_eq!(zstd_max_window(Cursor::new(b"")).unwrap(), None);
    }

    #[test]
    fn truncated_and_damaged_frames_are_errors_not_panics() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
        let z = compress(&data, 3, Some(20));
        for cut in [5, 6, 9, z.len() / 2, z.len() - 1] {
            assert!(
                zstd_max_window(Cursor::new(&z[..cut])).is_err(),
                "cut {cut}"
            );
        }
        let mut bad = z.clone();
        bad[4] |= 0x08;
        assert!(zstd_max_window(Cursor::new(&bad)).is_err());
        // Any byte string: never a panic.
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut v = z[..4].to_vec();
            for _ in 0..(x % 64) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            let _ = zstd_max_window(Cursor::new(&v));
        }
    }
}
