//! Compression choice per frame: with `Compression::Auto` a random blob is stored as raw zstd
//! blocks (its frames take the data size plus a few header bytes), a text blob is compressed,
//! and so is a blob that starts with 1 MiB of random bytes followed by text; all verify
//! through airlock's reader and extract with the `zstd` CLI and `tar --zstd`. With
//! `Compression::Always` nothing is stored and the index stays version 1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use airlock_bundle::frames::{self, FrameIndex};
use airlock_bundle::reader::{VerifyOnly, Volume};
use airlock_bundle::writer::{pack, BlobData, Compression, PackInput, PackOptions, PlannedBlob};
use airlock_bundle::NoProgress;
use airlock_core::bundle::{
    Artifact, ArtifactKind, BundleManifest, EntryRef, Provenance, FORMAT_VERSION,
};
use airlock_core::time::now;
use airlock_core::Sha256;
use airlock_trust::root::RootSpec;
use airlock_trust::{KeyPair, Signer, TrustRoot};

/// Two frames of random data plus a short third.
const RANDOM: usize = 9 << 20;
const TEXT_LINES: usize = 40_000;
/// The mixed blob: this much random data, then text, in a 5 MiB blob.
const MIXED_HEAD: usize = 1 << 20;

struct Packed {
    dir: tempfile::TempDir,
    root: TrustRoot,
    volume: PathBuf,
    /// (digest hex, content) of the small root blob, the random, the text and the mixed blob.
    blobs: Vec<(String, Vec<u8>)>,
}

fn manifest(root_blob: &PlannedBlob) -> BundleManifest {
    BundleManifest {
        format_version: FORMAT_VERSION,
        format_minor: 0,
        name: "mixed".into(),
        version: "1".into(),
        channel: "stable".into(),
        sequence: 1,
        created: "2025-01-01T00:00:00Z".into(),
        expires: None,
        tool: "test".into(),
        volumes: 1,
        index: EntryRef {
            digest: Sha256::digest(b""),
            size: 0,
        },
        artifacts: vec![Artifact {
            kind: ArtifactKind::File,
            name: "mixed".into(),
            digest: root_blob.digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: root_blob.size,
            provenance: Provenance::default(),
            platforms_omitted: vec![],
        }],
        blobs: vec![],
        base_inventory: None,
        external: vec![],
        trust_roots: vec![],
        scan: vec![],
        waivers: vec![],
        nodes: vec![],
        sboms: vec![],
    }
}

fn file_blob(dir: &Path, name: &str, data: &[u8]) -> PlannedBlob {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(data)
        .unwrap();
    PlannedBlob {
        digest: Sha256::digest(data),
        size: data.len() as u64,
        data: BlobData::File {
            path,
            offset: 0,
            stamp: None,
        },
    }
}

fn packed(compression: Compression) -> Packed {
    let dir = tempfile::tempdir().unwrap();
    let (root_key, signer) = (KeyPair::generate(), KeyPair::generate());
    let spec = RootSpec {
        version: 1,
        expires: now() + 86_400,
        root_keys: vec![root_key.public_key()],
        root_threshold: 1,
        bundle_keys: vec![signer.public_key()],
        bundle_threshold: 1,
        revoked: vec![],
        labels: Default::default(),
        signers: vec![&root_key as &dyn Signer],
    };
    let root = TrustRoot::load_initial(&spec.sign().unwrap(), now()).unwrap();

    let mut random = vec![0u8; RANDOM];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mixed: Vec<u8> = random[..MIXED_HEAD]
        .iter()
        .copied()
        .chain(
            (0..).flat_map(|i: u32| format!("line {i} of the text after the head\n").into_bytes()),
        )
        .take(5 << 20)
        .collect();
    let text: Vec<u8> = (0..TEXT_LINES)
        .flat_map(|i| {
            format!("{i:08} key=value{} path=/usr/lib/x{}\n", i % 97, i % 13).into_bytes()
        })
        .collect();
    let small: Arc<[u8]> = Arc::from(&b"{\"mixed\":true}"[..]);
    let root_blob = PlannedBlob {
        digest: Sha256::digest(&small),
        size: small.len() as u64,
        data: BlobData::Bytes(small.clone()),
    };
    let random_blob = file_blob(dir.path(), "random.bin", &random);
    let text_blob = file_blob(dir.path(), "text.txt", &text);
    let mixed_blob = file_blob(dir.path(), "mixed.bin", &mixed);
    let blobs = vec![
        (root_blob.digest.hex().to_string(), small.to_vec()),
        (random_blob.digest.hex().to_string(), random),
        (text_blob.digest.hex().to_string(), text),
        (mixed_blob.digest.hex().to_string(), mixed),
    ];
    let input = PackInput {
        manifest: manifest(&root_blob),
        index_json: b"{}".to_vec(),
        blobs: vec![root_blob, random_blob, text_blob, mixed_blob],
    };
    let packed = pack(
        input,
        &PackOptions {
            out_dir: dir.path().join("out"),
            volume_size: None,
            zstd_level: 3,
            compression,
            threads: 2,
            signers: vec![&signer],
            progress: &NoProgress,
        },
    )
    .unwrap();
    Packed {
        root,
        volume: packed.volumes[0].path.clone(),
        blobs,
        dir,
    }
}

/// The frame records of entry `entry`.
fn entry_frames(ix: &FrameIndex, entry: u32) -> Vec<frames::FrameRecord> {
    ix.frames
        .iter()
        .filter(|f| f.entry == entry)
        .copied()
        .collect()
}

fn index_of(p: &Packed) -> FrameIndex {
    FrameIndex::parse(&std::fs::read(&p.volume).unwrap())
        .unwrap()
        .expect("volume has a frame index")
}

/// Verifies the volume with airlock's reader; returns how many blobs verified.
fn verify(p: &Packed) -> usize {
    let vol = Volume::open(&p.volume).unwrap();
    let auth = vol.authenticate(&p.root, now(), 0).unwrap();
    let report = vol
        .read_blobs(auth.manifest(), &VerifyOnly, &NoProgress)
        .unwrap();
    report.verified.len()
}

/// Extracts the volume with `tar --zstd` (which runs the `zstd` CLI) and checks every blob.
fn extract_with_tar(p: &Packed) {
    let out = p.dir.path().join("extracted");
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&p.volume)
        .arg("-C")
        .arg(&out)
        .status()
        .expect("tar and zstd must be installed (scripts/peers.sh installs them)");
    assert!(status.success(), "tar --zstd -x failed: {status}");
    for (hex, data) in &p.blobs {
        let got = std::fs::read(out.join("blobs/sha256").join(hex)).unwrap();
        assert!(got == *data, "blob {hex} differs after tar --zstd -x");
    }
    // And `zstd -t` accepts every frame of the file, the skippable index included.
    let status = Command::new("zstd")
        .arg("-qt")
        .arg(&p.volume)
        .status()
        .expect("zstd must be installed");
    assert!(status.success(), "zstd -t failed: {status}");
}

#[test]
fn random_blobs_are_stored_and_text_blobs_compressed() {
    let p = packed(Compression::Auto);
    let ix = index_of(&p);
    ix.check(airlock_bundle::format::MAX_FRAME).unwrap();
    // Entries 4, 5, 6, 7: the root blob, the random blob, the text blob, the mixed blob.
    let random = entry_frames(&ix, 5);
    assert_eq!(random.len(), 3, "{random:?}");
    assert!(random.iter().all(|f| f.stored), "{random:?}");
    let (csize, usize) = random.iter().fold((0u64, 0u64), |(c, u), f| {
        (c + f.csize as u64, u + f.usize as u64)
    });
    assert_eq!(usize, 512 + RANDOM as u64);
    // A copy: the data, its tar header, and 9 + 3 bytes per 128 KiB block of framing.
    assert!(
        csize - usize < 300 + (RANDOM as u64 >> 17) * 3,
        "{csize} vs {usize}"
    );

    let text = entry_frames(&ix, 6);
    assert!(text.iter().all(|f| !f.stored), "{text:?}");
    let (csize, usize) = text.iter().fold((0u64, 0u64), |(c, u), f| {
        (c + f.csize as u64, u + f.usize as u64)
    });
    assert!(
        csize * 4 < usize,
        "text compressed to {csize} of {usize} bytes"
    );

    // A random first megabyte does not make the rest of the blob stored: its first frame
    // (1 MiB random, 3 MiB text) and its second (text) are compressed.
    let mixed = entry_frames(&ix, 7);
    assert_eq!(mixed.len(), 2, "{mixed:?}");
    assert!(mixed.iter().all(|f| !f.stored), "{mixed:?}");
    let csize: u64 = mixed.iter().map(|f| f.csize as u64).sum();
    assert!(
        csize < (MIXED_HEAD as u64) * 3 / 2,
        "mixed blob took {csize} bytes"
    );

    // The metadata entries, the end-of-archive marker and the 14-byte root blob (too short to
    // shrink, but its frame's tar header and padding do) are compressed.
    for entry in [0, 1, 2, 3, 4, 8] {
        assert!(entry_frames(&ix, entry).iter().all(|f| !f.stored));
    }
    let bytes = std::fs::read(&p.volume).unwrap();
    assert_eq!(&bytes[bytes.len() - 8..], frames::FOOTER_MAGIC_V2);

    assert_eq!(verify(&p), 4);
    extract_with_tar(&p);
}

#[test]
fn always_compresses_every_frame_and_keeps_the_version_1_index() {
    let p = packed(Compression::Always);
    let ix = index_of(&p);
    assert!(ix.frames.iter().all(|f| !f.stored));
    let bytes = std::fs::read(&p.volume).unwrap();
    assert_eq!(&bytes[bytes.len() - 8..], frames::FOOTER_MAGIC);
    // libzstd falls back to raw blocks for the random data, after trying to compress it.
    let random: u64 = entry_frames(&ix, 5).iter().map(|f| f.csize as u64).sum();
    assert!(random >= RANDOM as u64);
    assert_eq!(verify(&p), 4);
    extract_with_tar(&p);
}
