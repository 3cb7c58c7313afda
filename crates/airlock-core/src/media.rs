//! Media types, artifact types and annotation keys used in bundles.

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The two bytes `{}` that OCI uses as the empty config of artifacts.
pub const EMPTY_JSON: &[u8] = b"{}";

/// Model artifacts follow the CNCF ModelPack specification (see docs/architecture.md).
pub const MODEL_ARTIFACT: &str = "application/vnd.cncf.model.manifest.v1+json";
pub const MODEL_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
pub const MODEL_WEIGHT: &str = "application/vnd.cncf.model.weight.v1.raw";
pub const MODEL_WEIGHT_CONFIG: &str = "application/vnd.cncf.model.weight.config.v1.raw";
pub const MODEL_DOC: &str = "application/vnd.cncf.model.doc.v1.raw";
pub const MODEL_CODE: &str = "application/vnd.cncf.model.code.v1.raw";

/// Plain files (k3s binaries, install scripts, `.deb` packages) travel as one-layer artifacts.
pub const FILE_ARTIFACT: &str = "application/vnd.airlock.file.v1";
pub const FILE_LAYER: &str = "application/octet-stream";
/// A Debian package closure: config = the resolution record ([`crate::debs::ClosureRecord`]),
/// one layer per `.deb`.
pub const DEBS_ARTIFACT: &str = "application/vnd.airlock.debs.v1";
pub const DEBS_CONFIG: &str = "application/vnd.airlock.debs.config.v1+json";
pub const DEB_LAYER: &str = "application/vnd.debian.binary-package";

pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// ModelPack's layer annotation for the file's path inside the model (`AnnotationFilepath` in
/// the CNCF model-spec, `specs-go/v1/annotations.go`).
pub const ANNOTATION_MODEL_FILEPATH: &str = "org.cncf.model.filepath";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_AIRLOCK_KIND: &str = "dev.airlock.kind";
pub const ANNOTATION_AIRLOCK_NAME: &str = "dev.airlock.name";
/// On a Debian closure's `index.json` entry: how many packages it holds (for `airlock inspect`,
/// which reads no blob).
pub const ANNOTATION_AIRLOCK_DEBS_PACKAGES: &str = "dev.airlock.debs.packages";

/// Is this the media type of an index (OCI index or Docker manifest list)?
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Is this the media type of an image/artifact manifest (OCI or Docker schema 2)?
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The ModelPack layer media type for a file of a model repository, chosen by its name.
pub fn model_layer_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "safetensors" | "bin" | "pt" | "pth" | "ckpt" | "gguf" | "onnx" | "h5" | "msgpack"
        | "pkl" | "npz" | "npy" | "tflite" | "mlmodel" | "keras" => MODEL_WEIGHT,
        "md" | "txt" | "rst" | "pdf" => MODEL_DOC,
        "py" | "ipynb" | "sh" => MODEL_CODE,
        _ if name.starts_with("license") || name.starts_with("readme") => MODEL_DOC,
        _ => MODEL_WEIGHT_CONFIG,
    }
}
