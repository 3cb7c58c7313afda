//! The importer over both store backends: a signed bundle whose large blob is split across
//! volumes is imported into an appliance whose blob store is the directory or the memory
//! backend; blobs are staged on disk, published into the store, and the artifact becomes
//! visible. On the memory backend nothing reaches `DATA/blobs/`, and `fsck --repair` sets a
//! damaged blob aside like it does for files.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use airlock_bundle::writer::{pack, BlobData, PackInput, PackOptions, PlannedBlob};
use airlock_bundle::NoProgress;
use airlock_core::bundle::{
    Artifact, ArtifactKind, BundleManifest, EntryRef, Provenance, FORMAT_VERSION,
};
use airlock_core::time::now;
use airlock_core::{media, Digest, Sha256};
use airlock_store::{BlobStore, MemoryStore};
use airlock_trust::root::RootSpec;
use airlock_trust::{KeyPair, Signer};
use serde_json::json;

use crate::import::{Origin, Status};
use crate::Appliance;

/// 3 MiB of pseudo-random bytes: larger than a volume, so it is split.
fn big() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn bytes_blob(b: &[u8]) -> PlannedBlob {
    PlannedBlob {
        digest: Sha256::digest(b),
        size: b.len() as u64,
        data: BlobData::Bytes(Arc::from(b)),
    }
}

struct Bundle {
    _dir: tempfile::TempDir,
    trust: Vec<u8>,
    volumes: Vec<PathBuf>,
    big: Digest,
}

/// A file artifact: an OCI manifest, an empty config and the big layer, in 1 MiB volumes.
fn bundle() -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    let (root_key, signer) = (KeyPair::generate(), KeyPair::generate());
    let trust = RootSpec {
        version: 1,
        expires: now() + 86_400,
        root_keys: vec![root_key.public_key()],
        root_threshold: 1,
        bundle_keys: vec![signer.public_key()],
        bundle_threshold: 1,
        revoked: vec![],
        labels: Default::default(),
        signers: vec![&root_key as &dyn Signer],
    }
    .sign()
    .unwrap();
    let data = big();
    let big_path = dir.path().join("big.bin");
    std::fs::File::create(&big_path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let layer = PlannedBlob {
        digest: Sha256::digest(&data),
        size: data.len() as u64,
        data: BlobData::File {
            path: big_path,
            offset: 0,
            stamp: None,
        },
    };
    let config = bytes_blob(b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_EMPTY, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer.digest, "size": layer.size,
                    "annotations": {media::ANNOTATION_TITLE: "big.bin"}}],
    }))
    .unwrap();
    let root = bytes_blob(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": root.digest, "size": root.size,
                       "annotations": {"org.opencontainers.image.ref.name": "big.bin"}}],
    }))
    .unwrap();
    let m = BundleManifest {
        format_version: FORMAT_VERSION,
        format_minor: 0,
        name: "memory".into(),
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
            name: "big.bin".into(),
            digest: root.digest,
            media_type: media::OCI_MANIFEST.into(),
            size: root.size,
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
    };
    let big = layer.digest;
    let packed = pack(
        PackInput {
            manifest: m,
            index_json: index,
            blobs: vec![root, config, layer],
        },
        &PackOptions {
            out_dir: dir.path().join("out"),
            volume_size: Some(1 << 20),
            zstd_level: 1,
            compression: Default::default(),
            threads: 2,
            signers: vec![&signer],
            progress: &NoProgress,
        },
    )
    .unwrap();
    assert!(packed.volumes.len() > 1);
    Bundle {
        trust,
        volumes: packed.volumes.iter().map(|v| v.path.clone()).collect(),
        big,
        _dir: dir,
    }
}

/// fsck's findings about content; file modes are left out (`airlockd` sets its umask, this
/// test process does not).
fn fsck(a: &Appliance) -> Vec<String> {
    let mut p = a.fsck().unwrap();
    p.retain(|p| !p.contains(" mode "));
    p
}

/// Imports every volume of [`bundle`] into an appliance using `store`; returns the appliance.
fn import_into(data: &std::path::Path, b: &Bundle, store: Option<BlobStore>) -> Appliance {
    let mut a = Appliance::init(data, &b.trust).unwrap();
    if let Some(s) = store {
        a.store = s;
    }
    let outcomes = a.import(&b.volumes, Origin::Media, &NoProgress);
    for o in &outcomes {
        assert_eq!(
            o.status,
            Status::Accepted,
            "{}: {}",
            o.volume.display(),
            o.reason
        );
    }
    assert_eq!(
        outcomes.iter().flat_map(|o| &o.visible).collect::<Vec<_>>(),
        ["file big.bin"]
    );
    assert_eq!(a.store.size(&b.big), Some(3 << 20));
    assert_eq!(a.store.list().unwrap().len(), 3);
    let problems = fsck(&a);
    assert!(problems.is_empty(), "{problems:?}");
    // Importing again changes nothing.
    let again = a.import(&b.volumes, Origin::Media, &NoProgress);
    assert!(again.iter().all(|o| o.status == Status::Duplicate));
    a
}

#[test]
fn imports_into_the_directory_store() {
    let b = bundle();
    let data = tempfile::tempdir().unwrap();
    let a = import_into(data.path(), &b, None);
    assert!(a.store.local_path(&b.big).unwrap().is_file());
}

#[test]
fn imports_into_the_memory_store() {
    let b = bundle();
    let data = tempfile::tempdir().unwrap();
    let mem = MemoryStore::new();
    let mut a = import_into(
        data.path(),
        &b,
        Some(BlobStore::with_backend(Arc::new(mem.clone()))),
    );
    assert_eq!(a.store.local_path(&b.big), None);
    let on_disk = BlobStore::open_existing(data.path()).unwrap();
    assert!(
        on_disk.list().unwrap().is_empty(),
        "a blob reached DATA/blobs"
    );
    assert!(!data.path().join("staging-parts").join(b.big.hex()).exists());

    mem.corrupt(&b.big, b"rot");
    let problems = fsck(&a);
    assert_eq!(
        problems.len(),
        2,
        "damaged blob, incomplete closure: {problems:?}"
    );
    let done = a.repair().unwrap();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(data.path().join("damaged").join(b.big.hex()).is_file());
    assert_eq!(a.store.size(&b.big), None);
}

#[test]
fn a_report_of_the_imports_is_the_same_bytes_each_time_and_read_only() {
    use crate::report::{Format, Kind, Period};
    let b = bundle();
    let data = tempfile::tempdir().unwrap();
    let a = import_into(data.path(), &b, None);
    let to = a.catalog.audit_head().unwrap().unwrap();
    let last_time = a.catalog.audit_entries(Some(1)).unwrap()[0].time.clone();
    let period = Period::new(None, Some(&last_time), now()).unwrap();
    let r = a
        .report(Kind::Full, period.clone(), Default::default())
        .unwrap();
    let n = b.volumes.len();
    let c = r.counts.as_ref().unwrap();
    assert_eq!((c.attempts, c.accepted, c.duplicate), (2 * n, n, n));
    let t = r.transfers.as_ref().unwrap();
    assert!(t[..n]
        .iter()
        .all(|t| t.bundle_name.as_deref() == Some("memory")
            && t.threshold == Some(1)
            && t.signers.len() == 1));
    assert!(t[n..]
        .iter()
        .all(|t| t.outcome == "duplicate" && t.bundle_name.is_some()));
    // Chain of custody: who imported, and the digest of each volume file as read.
    for (row, vol) in t[..n].iter().zip(&b.volumes) {
        let bytes = std::fs::read(vol).unwrap();
        assert_eq!(
            row.volume_sha256.as_deref(),
            Some(airlock_core::Sha256::digest(&bytes).hex().as_str())
        );
        assert_eq!(row.volume_size, Some(bytes.len() as u64));
        assert_eq!(
            row.operator.as_deref(),
            Some(crate::default_operator().as_str())
        );
        assert_eq!(row.policy.as_deref(), Some("built-in"));
        assert_eq!(row.policy_sha256.as_ref().map(String::len), Some(64));
    }
    // The first import served every name for the first time.
    let changes = r.changes.as_ref().unwrap();
    assert!(!changes.is_empty());
    assert!(changes
        .iter()
        .all(|c| c.previous.is_none() && c.new.starts_with("sha256:")));
    assert!(changes.iter().any(|c| c.name == "big.bin"));
    let g = r.integrity.as_ref().unwrap();
    // fsck ran; the only findings here are modes (the test process does not set airlockd's
    // umask), never content.
    assert!(g.fsck_clean.is_some());
    assert!(
        g.fsck_problems.iter().all(|p| p.contains("mode")),
        "{:?}",
        g.fsck_problems
    );
    assert!(g.fsck_blobs.unwrap() > 0);
    assert_eq!(r.audit.last_seq, Some(to.0));
    assert_eq!(r.audit.head_hash.as_deref(), Some(to.1.as_str()));
    assert!(r.integrity.as_ref().unwrap().audit_intact);
    let inv = r.inventory.as_ref().unwrap();
    assert!(inv.iter().any(|s| s.name == "big.bin" && s.current));
    // A read-only view of the same directory renders the same bytes, in every format.
    drop(a);
    let ro = Appliance::open_read_only(data.path()).unwrap();
    for f in [Format::Json, Format::Csv, Format::Html] {
        let again = ro
            .report(Kind::Full, period.clone(), Default::default())
            .unwrap()
            .render(f);
        assert_eq!(r.render(f), again, "{f:?}");
    }
    assert_eq!(ro.catalog.audit_head().unwrap(), Some(to));
}
