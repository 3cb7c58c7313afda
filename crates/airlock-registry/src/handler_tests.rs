//! The OCI and Hugging Face handlers over both store backends: a snapshot built from catalog
//! rows and the store, then blob GET/HEAD with and without `Range`, manifests by tag, and
//! model files. The memory backend has no local files, so its bodies are store streams; the
//! directory backend's are file ranges.

use airlock_catalog::ArtifactRow;
use airlock_core::{media, Digest, Sha256};
use airlock_store::BlobStore;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;

use crate::body::Body;
use crate::index::{Caches, Snapshot};
use crate::Ctx;

fn put(store: &BlobStore, bytes: &[u8]) -> (Digest, u64) {
    use std::io::Write;
    let d = Sha256::digest(bytes);
    let mut w = store.writer().unwrap();
    w.write_all(bytes).unwrap();
    w.commit(&d, Some(bytes.len() as u64)).unwrap();
    (d, bytes.len() as u64)
}

fn row(kind: &str, name: &str, d: &Digest) -> ArtifactRow {
    ArtifactRow {
        kind: kind.into(),
        name: name.into(),
        digest: d.to_string(),
        media_type: media::OCI_MANIFEST.into(),
        bundle: "b".into(),
        visible: true,
        provenance: json!({}),
    }
}

struct Fixture {
    snap: Snapshot,
    manifest: (Digest, Vec<u8>),
    layer: (Digest, Vec<u8>),
    weights: (Digest, Vec<u8>),
    model: (Digest, Vec<u8>),
}

/// An image `registry.example/acme/hello:1.0` and a model `acme/m` in `store`.
fn fixture(store: &BlobStore) -> Fixture {
    let layer: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let (ld, ls) = put(store, &layer);
    let (cd, cs) = put(store, config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    }))
    .unwrap();
    let (md, _) = put(store, &manifest);
    let weights = b"not really safetensors".to_vec();
    let card = b"{\"model_type\":\"gpt2\"}".to_vec();
    let (wd, ws) = put(store, &weights);
    let (kd, ks) = put(store, &card);
    let (ed, es) = put(store, b"{}");
    let title = |t: &str| json!({ media::ANNOTATION_TITLE: t });
    let model = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_EMPTY, "digest": ed, "size": es},
        "layers": [
            {"mediaType": "application/octet-stream", "digest": wd, "size": ws, "annotations": title("model.safetensors")},
            {"mediaType": "application/octet-stream", "digest": kd, "size": ks, "annotations": title("config.json")},
        ],
    }))
    .unwrap();
    let (mm, _) = put(store, &model);
    let image = "registry.example/acme/hello:1.0";
    let names = vec![
        ("image".into(), image.into(), md.to_string()),
        ("model".into(), "Acme/M".into(), mm.to_string()),
    ];
    let rows = [row("image", image, &md), row("model", "Acme/M", &mm)];
    let snap = Snapshot::from_rows(names, &rows, store, &mut Caches::default(), None).unwrap();
    Fixture {
        snap,
        manifest: (md, manifest),
        layer: (ld, layer),
        weights: (wd, weights),
        model: (mm, model),
    }
}

/// Runs a handler the way the server does and collects the response body.
async fn call(
    store: &BlobStore,
    snap: &Snapshot,
    method: Method,
    path: &str,
    headers: &[(&'static str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    call_as(store, snap, method, path, headers, true).await
}

/// [`call`] for a client the `hf` group admits (`models_allowed`) or not.
async fn call_as(
    store: &BlobStore,
    snap: &Snapshot,
    method: Method,
    path: &str,
    headers: &[(&'static str, &str)],
    models_allowed: bool,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    let ctx = Ctx {
        method: &method,
        query: None,
        headers: &h,
        store,
        tls: false,
        public_url: None,
        models_allowed,
    };
    let r: Response<Body> = match path.strip_prefix("/v2") {
        Some(rest) => crate::oci::handle(&ctx, snap, rest),
        None => crate::hf::resolve(&ctx, snap, path.trim_start_matches('/')).unwrap(),
    };
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn header<'a>(h: &'a HeaderMap, k: &str) -> &'a str {
    h.get(k).unwrap().to_str().unwrap()
}

async fn serves(store: BlobStore) {
    let f = fixture(&store);
    let (ld, layer) = &f.layer;
    let blob = format!("/v2/acme/hello/blobs/{ld}");

    let (s, h, b) = call(&store, &f.snap, Method::GET, &blob, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b, layer);
    assert_eq!(header(&h, "content-length"), "1000");
    assert_eq!(header(&h, "docker-content-digest"), ld.to_string());

    let (s, h, b) = call(&store, &f.snap, Method::HEAD, &blob, &[]).await;
    assert_eq!((s, b.len()), (StatusCode::OK, 0));
    assert_eq!(header(&h, "content-length"), "1000");

    let (s, h, b) = call(
        &store,
        &f.snap,
        Method::GET,
        &blob,
        &[("range", "bytes=10-19")],
    )
    .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(b, layer[10..20]);
    assert_eq!(header(&h, "content-range"), "bytes 10-19/1000");

    let (s, _, b) = call(
        &store,
        &f.snap,
        Method::GET,
        &blob,
        &[("range", "bytes=-5")],
    )
    .await;
    assert_eq!(
        (s, b.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &layer[995..])
    );

    let stale = [("range", "bytes=10-19"), ("if-range", "\"sha256:00\"")];
    let (s, _, b) = call(&store, &f.snap, Method::GET, &blob, &stale).await;
    assert_eq!((s, b.len()), (StatusCode::OK, 1000));

    let far = [("range", "bytes=5000-")];
    let (s, h, _) = call(&store, &f.snap, Method::GET, &blob, &far).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&h, "content-range"), "bytes */1000");

    let unknown = format!("/v2/acme/hello/blobs/{}", Sha256::digest(b"absent"));
    let (s, _, _) = call(&store, &f.snap, Method::GET, &unknown, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (md, manifest) = &f.manifest;
    for reference in ["1.0".to_string(), md.to_string()] {
        let path = format!("/v2/acme/hello/manifests/{reference}");
        let (s, h, b) = call(&store, &f.snap, Method::GET, &path, &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&b, manifest);
        assert_eq!(header(&h, "content-type"), media::OCI_MANIFEST);
        assert_eq!(header(&h, "docker-content-digest"), md.to_string());
    }
    // A manifest is also a blob of its repository.
    let path = format!("/v2/acme/hello/blobs/{md}");
    let (s, _, b) = call(&store, &f.snap, Method::GET, &path, &[]).await;
    assert_eq!((s, &b), (StatusCode::OK, manifest));

    let (wd, weights) = &f.weights;
    let path = "/Acme/M/resolve/main/model.safetensors";
    let (s, h, b) = call(&store, &f.snap, Method::GET, path, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b, weights);
    assert_eq!(header(&h, "etag"), format!("\"{}\"", wd.hex()));
    let (s, _, b) = call(&store, &f.snap, Method::GET, path, &[("range", "bytes=4-")]).await;
    assert_eq!((s, &b[..]), (StatusCode::PARTIAL_CONTENT, &weights[4..]));
    // A small file is a git blob: its ETag is the git blob id, computed from the store.
    let (s, h, b) = call(
        &store,
        &f.snap,
        Method::GET,
        "/Acme/M/resolve/main/config.json",
        &[],
    )
    .await;
    assert_eq!(
        (s, &b[..]),
        (StatusCode::OK, &b"{\"model_type\":\"gpt2\"}"[..])
    );
    assert_eq!(header(&h, "etag").len(), 42);

    // The model is an OCI repository too: `models/` + its id in lower case, tagged `latest`,
    // `main` and its revision id, its files blobs of it and of no image repository.
    let (mm, model) = &f.model;
    let sha = crate::index::revision_of(mm);
    for tag in ["latest", "main", sha.as_str()] {
        let path = format!("/v2/models/acme/m/manifests/{tag}");
        let (s, h, b) = call(&store, &f.snap, Method::GET, &path, &[]).await;
        assert_eq!((s, &b), (StatusCode::OK, model), "{tag}");
        assert_eq!(header(&h, "docker-content-digest"), mm.to_string());
    }
    let path = format!("/v2/models/acme/m/blobs/{wd}");
    let (s, _, b) = call(
        &store,
        &f.snap,
        Method::GET,
        &path,
        &[("range", "bytes=4-")],
    )
    .await;
    assert_eq!((s, &b[..]), (StatusCode::PARTIAL_CONTENT, &weights[4..]));
    let path = format!("/v2/acme/hello/blobs/{wd}");
    let (s, _, _) = call(&store, &f.snap, Method::GET, &path, &[]).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a model file is no blob of an image"
    );
    let (s, _, b) = call(
        &store,
        &f.snap,
        Method::GET,
        "/v2/models/acme/m/tags/list",
        &[],
    )
    .await;
    let tags: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tags["name"], "models/acme/m");
    assert_eq!(tags["tags"], json!([sha, "latest", "main"]));
    let (_, _, b) = call(&store, &f.snap, Method::GET, "/v2/_catalog", &[]).await;
    let c: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        c["repositories"],
        json!(["models/acme/m", "registry.example/acme/hello"])
    );
    for (path, code) in [
        ("/v2/models/acme/m/manifests/v9", "MANIFEST_UNKNOWN"),
        ("/v2/models/acme/nope/manifests/latest", "NAME_UNKNOWN"),
        ("/v2/models/Acme/M/manifests/latest", "NAME_INVALID"),
    ] {
        let (_, _, b) = call(&store, &f.snap, Method::GET, path, &[]).await;
        let e: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(e["errors"][0]["code"], code, "{path}");
    }
    // A client the hf group does not admit gets no model, and the catalog does not name it.
    let path = "/v2/models/acme/m/manifests/latest";
    let (s, _, _) = call_as(&store, &f.snap, Method::GET, path, &[], false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, _, b) = call_as(&store, &f.snap, Method::GET, "/v2/_catalog", &[], false).await;
    let c: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(c["repositories"], json!(["registry.example/acme/hello"]));
}

#[tokio::test]
async fn memory_store() {
    serves(BlobStore::memory()).await;
}

#[tokio::test]
async fn directory_store() {
    let dir = tempfile::tempdir().unwrap();
    serves(BlobStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn model_ids_differing_only_in_case_are_left_out_of_v2() {
    let store = BlobStore::memory();
    let (wd, ws) = put(&store, b"weights");
    let (ed, es) = put(&store, b"{}");
    let model = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_EMPTY, "digest": ed, "size": es},
        "layers": [{"mediaType": "application/octet-stream", "digest": wd, "size": ws,
                    "annotations": {media::ANNOTATION_TITLE: "w.bin"}}],
    }))
    .unwrap();
    let (mm, _) = put(&store, &model);
    let names = vec![
        ("model".into(), "Acme/M".into(), mm.to_string()),
        ("model".into(), "acme/m".into(), mm.to_string()),
        ("model".into(), "acme/other".into(), mm.to_string()),
    ];
    let rows = [
        row("model", "Acme/M", &mm),
        row("model", "acme/m", &mm),
        row("model", "acme/other", &mm),
    ];
    let snap = Snapshot::from_rows(names, &rows, &store, &mut Caches::default(), None).unwrap();
    let (_, _, b) = call(
        &store,
        &snap,
        Method::GET,
        "/v2/models/acme/m/tags/list",
        &[],
    )
    .await;
    let e: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(e["errors"][0]["code"], "NAME_UNKNOWN");
    let (s, _, _) = call(
        &store,
        &snap,
        Method::GET,
        "/v2/models/acme/other/manifests/latest",
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Both stay on the Hugging Face endpoint under their own ids.
    for path in ["/Acme/M/resolve/main/w.bin", "/acme/m/resolve/main/w.bin"] {
        let (s, _, b) = call(&store, &snap, Method::GET, path, &[]).await;
        assert_eq!((s, &b[..]), (StatusCode::OK, &b"weights"[..]), "{path}");
    }
    // A client the hf group does not admit is told at /v2/ that credentials would help.
    let (s, h, _) = call_as(&store, &snap, Method::GET, "/v2/", &[], false).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "www-authenticate"), "Basic realm=\"airlock\"");
    let (_, h, _) = call(&store, &snap, Method::GET, "/v2/", &[]).await;
    assert!(h.get("www-authenticate").is_none());
}
