//! Split blobs end to end inside the crate: pack a blob larger than a volume, verify every
//! volume (whole digest checked across the parts), verify a subset (the missing part is named),
//! and refuse a tampered part naming the blob and the part.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_bundle::reader::{missing, Present, Volume, VolumeReport};
use airlock_bundle::split::VerifyWhole;
use airlock_bundle::writer::{pack, BlobData, PackInput, PackOptions, PlannedBlob};
use airlock_bundle::{BundleError, NoProgress};
use airlock_core::bundle::{
    Artifact, ArtifactKind, BundleManifest, EntryRef, Provenance, FORMAT_VERSION,
};
use airlock_core::time::now;
use airlock_core::{Digest, Sha256};
use airlock_trust::root::RootSpec;
use airlock_trust::{KeyPair, Signer, TrustRoot};

const BIG: usize = 3 << 20;

struct Packed {
    _dir: tempfile::TempDir,
    root: TrustRoot,
    volumes: Vec<PathBuf>,
    big: Digest,
}

fn manifest(root_blob: &PlannedBlob) -> BundleManifest {
    BundleManifest {
        format_version: FORMAT_VERSION,
        format_minor: 0,
        name: "split".into(),
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
            name: "big".into(),
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

/// A small root blob and a 3 MiB random file, packed into 1 MiB volumes.
fn packed() -> Packed {
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

    let big_path = dir.path().join("big.bin");
    let mut data = vec![0u8; BIG];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::File::create(&big_path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let big = PlannedBlob {
        digest: Sha256::digest(&data),
        size: BIG as u64,
        data: BlobData::File {
            path: big_path,
            offset: 0,
            stamp: None,
        },
    };
    let small: Arc<[u8]> = Arc::from(&b"{\"small\":true}"[..]);
    let root_blob = PlannedBlob {
        digest: Sha256::digest(&small),
        size: small.len() as u64,
        data: BlobData::Bytes(small),
    };
    let input = PackInput {
        manifest: manifest(&root_blob),
        index_json: b"{}".to_vec(),
        blobs: vec![root_blob, big.clone()],
    };
    let out = dir.path().join("out");
    let packed = pack(
        input,
        &PackOptions {
            out_dir: out,
            volume_size: Some(1 << 20),
            zstd_level: 1,
            compression: Default::default(),
            threads: 2,
            signers: vec![&signer],
            progress: &NoProgress,
        },
    )
    .unwrap();
    Packed {
        root,
        volumes: packed.volumes.iter().map(|v| v.path.clone()).collect(),
        big: big.digest,
        _dir: dir,
    }
}

fn read(path: &Path, root: &TrustRoot, sink: &VerifyWhole) -> Result<VolumeReport, BundleError> {
    let vol = Volume::open(path)?;
    let auth = vol.authenticate(root, now(), 0)?;
    vol.read_blobs(auth.manifest(), sink, &NoProgress)
}

fn manifest_of(p: &Packed) -> BundleManifest {
    let vol = Volume::open(&p.volumes[0]).unwrap();
    vol.authenticate(&p.root, now(), 0)
        .unwrap()
        .statement
        .predicate
}

#[test]
fn a_blob_larger_than_a_volume_is_split_and_verified_whole() {
    let p = packed();
    let m = manifest_of(&p);
    assert_eq!(m.format_minor, 1);
    let b = m.blobs.iter().find(|b| b.digest == p.big).unwrap();
    assert!(b.parts.len() >= 3, "{b:?}");
    assert_eq!(p.volumes.len(), b.parts.last().unwrap().volume as usize);
    for v in &p.volumes {
        assert!(std::fs::metadata(v).unwrap().len() <= 1 << 20);
    }
    let sink = VerifyWhole::default();
    let mut present = Present::default();
    for v in &p.volumes {
        present.add(&read(v, &p.root, &sink).unwrap());
    }
    assert!(missing(&m, &present).is_empty());
    assert_eq!(sink.whole_verified(), vec![p.big]);
}

#[test]
fn a_subset_of_volumes_verifies_its_parts_and_names_the_missing_one() {
    let p = packed();
    let m = manifest_of(&p);
    let sink = VerifyWhole::default();
    let mut present = Present::default();
    for (i, v) in p.volumes.iter().enumerate() {
        if i != 1 {
            let r = read(v, &p.root, &sink).unwrap();
            assert_eq!(r.parts_verified.len(), 1, "volume {}", i + 1);
            present.add(&r);
        }
    }
    let gone = missing(&m, &present);
    assert_eq!(gone.len(), 1, "{gone:?}");
    let n = m
        .blobs
        .iter()
        .find(|b| b.digest == p.big)
        .unwrap()
        .parts
        .len();
    assert_eq!(
        gone[0].to_string(),
        format!("{} part 2 of {n} (volume 2)", p.big)
    );
    assert!(sink.whole_verified().is_empty());
}

#[test]
fn a_tampered_part_is_refused_naming_blob_and_part() {
    let p = packed();
    let v2 = &p.volumes[1];
    let bytes = std::fs::read(v2).unwrap();
    let mut bad = bytes.clone();
    let at = bytes.len() / 2;
    bad[at] ^= 0x5a;
    std::fs::write(v2, &bad).unwrap();
    let e = read(v2, &p.root, &VerifyWhole::default()).unwrap_err();
    match &e {
        BundleError::PartDigestMismatch { digest, part, .. } => {
            assert_eq!(*digest, p.big);
            assert_eq!(*part, 2u32);
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(
        e.to_string().contains(&format!("blob {} part 2 of", p.big)),
        "{e}"
    );
}

#[test]
fn manifest_validation_refuses_inconsistent_parts() {
    let p = packed();
    let good = manifest_of(&p);
    good.validate().unwrap();
    let i = good.blobs.iter().position(|b| b.digest == p.big).unwrap();
    let refused = |edit: &dyn Fn(&mut BundleManifest), says: &str| {
        let mut m = good.clone();
        edit(&mut m);
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    };
    refused(&|m| m.format_minor = 0, "split blobs need formatMinor 1");
    refused(
        &|m| m.format_minor = 2,
        "format version 1.2 is not supported",
    );
    refused(&|m| m.blobs[i].parts[1].offset += 1, "does not continue");
    refused(&|m| m.blobs[i].parts[1].volume = 1, "out of order");
    refused(&|m| m.blobs[i].size += 1, "parts cover");
    refused(&|m| m.blobs[i].parts.truncate(1), "single part");
}
