//! Command-line definitions (clap). Implementations live in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Typical flow on the connected side:
  airlock keys generate --name signer --out keys/
  airlock trust init --root-key keys/root.key --signer keys/signer.pub --out root.json
  airlock sync manifests/demo.yaml --store store/
  airlock pack manifests/demo.yaml --key keys/signer.key --out bundles/
  airlock verify --trust root.json bundles/demo-1.0.0.vol1of1.tar.zst
  airlock report --trust root.json bundles/demo-1.0.0.vol1of1.tar.zst --out lading.html

Exit codes: 0 success; 1 failure (bad input, verification failed, I/O error); 2 usage error.
Logs go to stderr (-v, -vv, or AIRLOCK_LOG=debug); data goes to stdout (--json for machines).";

#[derive(Parser, Debug)]
#[command(name = "airlock", version, about = "Pack signed, content-addressed bundles of images, models and files for an air-gapped rack", after_help = AFTER_HELP)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate and manage ed25519 signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Create trust roots: which keys may sign bundles, and how many must agree.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Mirror the registry images a manifest names into the local store (AIRLOCK_STORE).
    Sync(SyncArgs),
    /// Pack the content a manifest names into signed bundle volumes.
    Pack(Box<PackArgs>),
    /// Check volumes against a trust root: signatures, expiry, every blob's digest.
    Verify(VerifyArgs),
    /// Show what a volume carries (artifacts, blobs, signers, provenance) without extracting.
    Inspect(InspectArgs),
    /// Verify volumes and extract them into an OCI image layout.
    Unpack(UnpackArgs),
    /// Write the bill of lading for volumes handed over: bundle, volume files with their
    /// SHA-256, artifacts, signers, scan results, and a sign-off block for both parties.
    Report(ReportArgs),
    /// Scan model files and archives for code that runs on load (pickle globals, Keras Lambda
    /// layers, chat-template injection), malformed formats, and YARA rules (built-in plus
    /// --rules). Exit 0 clean, 1 findings, 2 error.
    Scan(ScanArgs),
    /// Write a software bill of materials (CycloneDX 1.6 JSON, or SPDX 2.3) of a root
    /// filesystem directory or an OCI image: Debian, Alpine and RPM packages, Python and npm
    /// packages. The same input gives the same bytes.
    Sbom(SbomArgs),
    /// Vulnerability data: download osv.dev's exports and CISA's known-exploited catalog,
    /// match an SBOM against them (a preview of what the appliance will find), pack them.
    #[command(subcommand)]
    Vulndb(VulndbCmd),
    /// Debian package closures: resolve what `spec.debs` asks for against its signed sources.
    #[command(subcommand)]
    Debs(DebsCmd),
}

#[derive(Subcommand, Debug)]
pub enum VulndbCmd {
    /// Match the components of a CycloneDX SBOM (`airlock sbom`, `airlockd sbom show`) against
    /// OSV records, with each ecosystem's version order. Exit 0 whatever is found (it is a
    /// preview; the appliance's policy decides), 1 when the SBOM or database cannot be read.
    Match(VulndbMatchArgs),
    /// Download osv.dev's export holding each ecosystem (`<source>/<EXPORT>/all.zip`; a
    /// release such as `Debian:12` is in its distribution's `Debian/all.zip`), keeping the
    /// records that name an ecosystem asked for, and, with `--known-exploited`, CISA's known-exploited catalog into DIR, verified (sizes,
    /// the server's digests, every zip member's CRC, every record) and resumable; a file the
    /// server still has unchanged (same ETag and size) is not downloaded again. DIR is what
    /// `vulndb pack` and `vulndb match --db` read. Exit 0 when every source is in DIR and
    /// checked, 1 when one cannot be downloaded or is refused (DIR keeps its previous sync).
    Sync(VulndbSyncArgs),
    /// Pack a directory of OSV records as a signed bundle on channel `vulndb`: the records
    /// are checked, normalised and sorted into one file (`vulndb`), with a header naming the
    /// source, build time and counts; records of ecosystems airlock cannot order are counted
    /// and dropped. The appliance matches what it serves against the newest one imported.
    Pack(VulndbPackArgs),
}

#[derive(Args, Debug)]
pub struct VulndbSyncArgs {
    /// An OSV ecosystem, as osv.dev names it (`Debian:12`, `Alpine:v3.20`, `PyPI`, `npm`,
    /// `Go`, `crates.io`; `Debian` for every release); repeat for several.
    #[arg(long = "ecosystem", value_name = "ECOSYSTEM", required = true)]
    pub ecosystems: Vec<String>,
    /// Where the exports are: `<URL>/<EXPORT>/all.zip`.
    #[arg(long, value_name = "URL", default_value = airlock_mirror::osv::DEFAULT_SOURCE)]
    pub source: String,
    /// Also download CISA's known-exploited vulnerabilities catalog (from URL, default
    /// cisa.gov's feed); advisories it lists are reported as known-exploited.
    #[arg(long, value_name = "URL", num_args = 0..=1,
          default_missing_value = airlock_mirror::osv::DEFAULT_KEV)]
    pub known_exploited: Option<String>,
    /// The directory to sync into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Retries of a transient failure (a cut connection is resumed where it stopped).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Extra CA certificates (PEM) for https:// sources.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VulndbPackArgs {
    /// A directory `vulndb sync` wrote, or a directory of OSV records (one JSON file each;
    /// searched recursively).
    pub dir: PathBuf,
    /// Signing key (as for `airlock pack`); repeat to sign with several keys.
    #[arg(long = "key", value_name = "KEY|URI", required = true)]
    pub keys: Vec<PathBuf>,
    /// Output directory for the volume.
    #[arg(long, value_name = "DIR", default_value = "bundles")]
    pub out: PathBuf,
    /// Bundle lifetime: a database goes stale, so the default is short.
    #[arg(long, default_value = "14d")]
    pub expires: String,
    /// Sequence number on the `vulndb` channel (default: seconds since the Unix epoch).
    #[arg(long)]
    pub sequence: Option<u64>,
    /// Also keep the normalised database file the bundle carries at FILE, for
    /// `vulndb match --db FILE` previews against exactly what is carried.
    #[arg(long, value_name = "FILE")]
    pub keep_db: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VulndbMatchArgs {
    /// The SBOM (CycloneDX JSON).
    #[arg(long, value_name = "FILE")]
    pub sbom: PathBuf,
    /// A directory `vulndb sync` wrote, a directory of OSV records, one JSON file each
    /// (osv.dev's per-ecosystem exports, unzipped; searched recursively, symlinks not
    /// followed), or a database file as `vulndb pack` normalises it (`vulndb pack
    /// --keep-db`): the quick way, since records naming no component of the SBOM are passed
    /// over unparsed.
    #[arg(long, value_name = "DIR|FILE")]
    pub db: PathBuf,
    /// Show only matches at or above this severity.
    #[arg(long, value_enum, default_value_t = MinSeverity::Unknown)]
    pub min_severity: MinSeverity,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinSeverity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Subcommand, Debug)]
pub enum DebsCmd {
    /// Print each closure of a manifest without downloading any .deb: every package with its
    /// version, architecture, size, SHA-256, source, and the requested package that pulled it
    /// in. Reads and verifies the sources' signed Release and Packages indexes (kept in the
    /// store, so a second run reads only the Release files). Exit 1 when a request cannot be
    /// satisfied, with the chain that fails.
    Resolve(DebsResolveArgs),
}

#[derive(Args, Debug)]
pub struct DebsResolveArgs {
    /// The input manifest.
    pub manifest: PathBuf,
    /// Only the closure of this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Print only why PACKAGE is in the closure: the chain from a requested package.
    #[arg(long, value_name = "PACKAGE")]
    pub why: Option<String>,
    /// The local store (caches verified indexes).
    #[arg(long, value_name = "DIR", env = airlock_core::env::AIRLOCK_STORE)]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Write NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM) into DIR; with
    /// --pkcs11, create the key pair inside a token and write only NAME.pub.
    Generate {
        /// File name stem of the key pair ([A-Za-z0-9._-]); with --pkcs11 also the key's
        /// label in the token unless the URI names one with object=.
        #[arg(long)]
        name: String,
        /// Create the key inside the PKCS#11 token this URI names (`pkcs11:token=T?pin-source=
        /// file:PIN`); the private key is non-extractable and never written to disk.
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
        /// Directory to write into (created if missing); existing keys are never overwritten.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Write a new signed trust root (version 1).
    Init(TrustInitArgs),
    /// Write the next version of a trust root, signed by the old root keys and the new ones,
    /// to be carried to appliances inside a bundle (`airlock pack --trust-root`).
    Rotate(TrustRotateArgs),
}

#[derive(Args, Debug)]
pub struct TrustRotateArgs {
    /// The current root (version N).
    #[arg(long, value_name = "ROOT")]
    pub from: PathBuf,
    /// Private key of a current root key holder (PKCS#8 file or pkcs11: URI); enough of them
    /// to meet the current root threshold must sign.
    #[arg(long = "sign-key", value_name = "KEY|URI", required = true)]
    pub sign_keys: Vec<PathBuf>,
    /// Private key of a root key holder in the new root (PKCS#8 file or pkcs11: URI); each
    /// also signs it.
    #[arg(long = "root-key", value_name = "KEY|URI", required = true)]
    pub root_keys: Vec<PathBuf>,
    /// How many root keys must sign the rotation after this one.
    #[arg(long, default_value_t = 1)]
    pub root_threshold: u32,
    /// Public key allowed to sign bundles under the new root; repeat for several.
    #[arg(long = "signer", value_name = "PUB", required = true)]
    pub signers: Vec<PathBuf>,
    /// How many distinct signers a bundle needs under the new root.
    #[arg(long, default_value_t = 1)]
    pub threshold: u32,
    /// Name of the holder of a key, shown in reports: KEY=NAME, KEY being a key id or a public
    /// key file given with --signer; repeat for several keys.
    #[arg(long = "signer-name", value_name = "KEY=NAME")]
    pub signer_names: Vec<String>,
    /// Role of the holder of a key (e.g. "release manager"): KEY=ROLE; repeat for several.
    #[arg(long = "signer-role", value_name = "KEY=ROLE")]
    pub signer_roles: Vec<String>,
    /// Key id to revoke (never counts towards a threshold again); repeat for several.
    #[arg(long = "revoke", value_name = "KEYID")]
    pub revoke: Vec<String>,
    /// How long the new root stays valid.
    #[arg(long, default_value = "365d", value_parser = airlock_ui::parse_duration)]
    pub expires: i64,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct TrustInitArgs {
    /// Private key of a root key holder (PKCS#8 file or pkcs11: URI); repeat for several.
    /// Each signs the root.
    #[arg(long = "root-key", value_name = "KEY|URI", required = true)]
    pub root_keys: Vec<PathBuf>,
    /// How many root keys must sign a future root rotation.
    #[arg(long, default_value_t = 1)]
    pub root_threshold: u32,
    /// Public key (SPKI PEM) allowed to sign bundles; repeat for several.
    #[arg(long = "signer", value_name = "PUB", required = true)]
    pub signers: Vec<PathBuf>,
    /// How many distinct signers a bundle needs.
    #[arg(long, default_value_t = 1)]
    pub threshold: u32,
    /// Name of the holder of a key, shown in reports: KEY=NAME, KEY being a key id or a public
    /// key file given with --signer; repeat for several keys.
    #[arg(long = "signer-name", value_name = "KEY=NAME")]
    pub signer_names: Vec<String>,
    /// Role of the holder of a key (e.g. "release manager"): KEY=ROLE; repeat for several.
    #[arg(long = "signer-role", value_name = "KEY=ROLE")]
    pub signer_roles: Vec<String>,
    /// How long the root stays valid (e.g. 365d).
    #[arg(long, default_value = "365d", value_parser = airlock_ui::parse_duration)]
    pub expires: i64,
    /// Where to write root.json (never overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `airlock pack --compression`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackCompression {
    Auto,
    Always,
}

#[derive(Args, Debug)]
pub struct PackArgs {
    /// The input manifest (manifests/*.yaml).
    pub manifest: PathBuf,
    /// Signing key: a PKCS#8 PEM file or a pkcs11: URI naming a key in a token
    /// (`pkcs11:token=T;object=K?pin-source=file:PIN`); repeat to sign with several keys.
    #[arg(long = "key", value_name = "KEY|URI", required = true)]
    pub keys: Vec<PathBuf>,
    /// Output directory for the volumes.
    #[arg(long, value_name = "DIR", default_value = "bundles")]
    pub out: PathBuf,
    /// Split into volumes no larger than this (e.g. 4095MiB for FAT32, 4480MiB for DVD).
    #[arg(long, value_name = "SIZE", value_parser = airlock_ui::parse_size)]
    pub volume_size: Option<u64>,
    /// zstd compression level (1-19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    /// auto: store each 4 MiB frame whose 64 KiB sample does not shrink by 2 % at zstd level 1
    /// as raw zstd blocks (a copy, no compressor pass); always: compress every frame.
    #[arg(long, value_enum, default_value_t = PackCompression::Auto)]
    pub compression: PackCompression,
    /// Sequence number on the channel; must grow with every bundle (default: seconds since the
    /// Unix epoch, which grows by itself).
    #[arg(long)]
    pub sequence: Option<u64>,
    /// Bundle lifetime, after which importers refuse it (e.g. 30d), or "never".
    #[arg(long, default_value = "30d", value_parser = airlock_ui::parse_expiry)]
    pub expires: airlock_ui::Expiry,
    /// Compression threads (default: all cores; --jobs sets parallel downloads).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Make a differential bundle: leave out every blob this signed appliance inventory
    /// (`airlockd inventory export`) lists. Needs --appliance-key.
    #[arg(long, value_name = "INVENTORY", requires = "appliance_key")]
    pub since: Option<PathBuf>,
    /// The appliance public key (DATA/keys/appliance.pub) that must have signed --since.
    #[arg(long, value_name = "PUB")]
    pub appliance_key: Option<PathBuf>,
    /// Carry a newer trust root (from `airlock trust rotate`) for appliances to apply before
    /// checking this bundle's signatures; repeat for several versions, oldest first.
    #[arg(long = "trust-root", value_name = "ROOT")]
    pub trust_roots: Vec<PathBuf>,
    /// Do not scan images, models and files (the bundle then carries no scan results, and
    /// the appliance's policy sees no findings).
    #[arg(long)]
    pub no_scan: bool,
    /// Scan every blob again instead of reusing results stored in the store's scan cache
    /// (the new results are stored).
    #[arg(long, conflicts_with = "no_scan")]
    pub no_scan_cache: bool,
    /// Hash every local model file and plain file again instead of taking the digests of
    /// unchanged files from the store's digest cache (the cache is refreshed). Digests from
    /// the cache are never trusted: the bytes are hashed as they are written, and a mismatch
    /// fails the pack.
    #[arg(long)]
    pub rehash: bool,
    /// Do not make SBOMs of the images and models (by default each image, each platform of
    /// an index, gets a CycloneDX SBOM attached to it as `sbom:IMAGE`, and each model a
    /// CycloneDX ML-BOM as `sbom:MODEL`, signed with the bundle).
    #[arg(long)]
    pub no_sbom: bool,
    /// Also attach an SPDX 2.3 SBOM to each image (`spdx:IMAGE`).
    #[arg(long, conflicts_with = "no_sbom")]
    pub sbom_spdx: bool,
    /// The supplier each SBOM names for the image it describes (see `airlock sbom
    /// --supplier`).
    #[arg(long, value_name = "NAME", conflicts_with = "no_sbom")]
    pub sbom_supplier: Option<String>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Store that registry images are mirrored into and packed from (synced first when
    /// content is missing).
    #[arg(long, value_name = "DIR", env = airlock_core::env::AIRLOCK_STORE)]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The input manifest (manifests/*.yaml); its registry images are mirrored.
    pub manifest: PathBuf,
    /// The local store (an OCI image layout plus image records).
    #[arg(long, value_name = "DIR", env = airlock_core::env::AIRLOCK_STORE)]
    pub store: Option<PathBuf>,
    /// Refuse an image that has no signature or attestation (referrers API or
    /// sha256-<hex>.sig/.att tags).
    #[arg(long)]
    pub require_signature: bool,
    /// Exit 0 even when some images failed (each failure is still reported).
    #[arg(long)]
    pub keep_going: bool,
    /// Do not scan what was mirrored. (Findings are reported early here; `pack` signs the
    /// results for what it packs, which are what the appliance enforces.)
    #[arg(long)]
    pub no_scan: bool,
    /// Scan every blob again instead of reusing results stored in the store's scan cache
    /// (the new results are stored).
    #[arg(long, conflicts_with = "no_scan")]
    pub no_scan_cache: bool,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach registries (shared by `sync` and `pack`).
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry (HOST:PORT) that may be reached over plain HTTP; repeat for several.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure: Vec<String>,
    /// PEM file of CA certificates to trust instead of the built-in roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// File holding USER:PASSWORD for the registries (first line), or set
    /// AIRLOCK_REGISTRY_CREDS; default: auth files of podman/skopeo and docker.
    #[arg(long, value_name = "FILE", conflicts_with = "creds")]
    pub creds_file: Option<PathBuf>,
    /// USER:PASSWORD on the command line (visible to every local user in `ps`; prefer
    /// --creds-file or AIRLOCK_REGISTRY_CREDS).
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "AIRLOCK_REGISTRY_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,
    /// Auth file to read instead of $REGISTRY_AUTH_FILE, containers auth.json, ~/.docker/config.json.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Parallel blob downloads.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Extra tries after a transient failure (network, 5xx, damaged bytes).
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Trust root to check signatures against.
    #[arg(long, value_name = "ROOT")]
    pub trust: PathBuf,
    /// Volumes of one bundle (any subset, any order).
    #[arg(required = true)]
    pub volumes: Vec<PathBuf>,
    /// Tolerated clock difference for expiry checks (e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = airlock_ui::parse_duration)]
    pub clock_skew: i64,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The volume to describe.
    pub volume: PathBuf,
    /// Also check the signatures against this trust root.
    #[arg(long, value_name = "ROOT")]
    pub trust: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// Trust root to check signatures against.
    #[arg(long, value_name = "ROOT")]
    pub trust: PathBuf,
    /// Volumes of one bundle; give all of them for a complete layout.
    #[arg(required = true)]
    pub volumes: Vec<PathBuf>,
    /// Directory to create (must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Tolerated clock difference for expiry checks (e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = airlock_ui::parse_duration)]
    pub clock_skew: i64,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Volumes of one bundle (any subset, any order); the document says which are missing.
    #[arg(required = true)]
    pub volumes: Vec<PathBuf>,
    /// Trust root to check the signatures against (the envelope names its signers by key id
    /// only, so there is nothing to check them against without it).
    #[arg(long, value_name = "ROOT")]
    pub trust: PathBuf,
    /// html: one self-contained printable page with a sign-off block; json: the typed
    /// document (`_type: airlock-bill-of-lading/v1`).
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Where to write the document (replaced if it exists; nothing is written on failure).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Tolerated clock difference for expiry checks (e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = airlock_ui::parse_duration)]
    pub clock_skew: i64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

#[derive(Args, Debug)]
pub struct SbomArgs {
    /// What to catalog: `dir:PATH` (a root filesystem directory, such as `dir:/` or an
    /// unpacked image), `oci:LAYOUT[:TAG]` (an image in an OCI image layout),
    /// `oci-archive:FILE[:TAG]` (one in a tar of a layout) or a registry reference
    /// `HOST/REPO[:TAG][@DIGEST]` (an image `airlock sync` mirrored into the store). A model:
    /// `dir:PATH --model NAME` (a model directory) or `hf-cache:PATH/models--ORG--NAME[@REV]`.
    pub source: String,
    /// Describe SOURCE as the model NAME (as a manifest's `models[].name`): a CycloneDX ML-BOM
    /// of the ModelPack artifact `airlock pack` makes of it, the document `pack` attaches as
    /// `sbom:NAME`. Implied by `hf-cache:` sources, whose default name is the upstream id.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// For a model: the licence to declare, as a manifest's `license:` (else the card's).
    #[arg(long, value_name = "SPDX")]
    pub license: Option<String>,
    /// For a model: its lineage, a YAML (or JSON) file holding what a manifest's `lineage:`
    /// holds (`datasets`, `code`, `hyperparameters`, `parent`).
    #[arg(long, value_name = "FILE")]
    pub lineage: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SbomFormat::CyclonedxJson)]
    pub format: SbomFormat,
    /// Write the SBOM to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The supplier of what is described: an organisation (`ACME Platform Team`) or a person
    /// (`Jane Doe <jane@example.org>`). Nothing in an image or a directory says who supplies
    /// it; the NTIA minimum elements ask for it (SPDX writes NOASSERTION without it).
    #[arg(long, value_name = "NAME")]
    pub supplier: Option<String>,
    /// For an image that is a multi-platform index: the platform (`os/arch[/variant]`) to
    /// describe.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Store that registry references are read from (as `airlock sync` filled it).
    #[arg(long, value_name = "DIR", env = airlock_core::env::AIRLOCK_STORE)]
    pub store: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON (deterministic: no timestamp unless SOURCE_DATE_EPOCH is set).
    CyclonedxJson,
    /// SPDX 2.3 JSON (its creation time is mandatory: SOURCE_DATE_EPOCH, else now).
    SpdxJson,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan (directories recursively; symlinks are not followed).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RulesArgs,
}

/// Operator YARA rules, run beside the built-in ones.
#[derive(Args, Debug, Clone, Default)]
pub struct RulesArgs {
    /// A directory of YARA rules (every *.yar / *.yara file in it, each its own namespace) or
    /// one rule file; repeat for several. A rule's `meta: severity = "suspicious"` makes its
    /// findings waivable; rules without it are malicious.
    #[arg(long = "rules", value_name = "DIR", env = airlock_core::env::AIRLOCK_YARA_RULES, value_delimiter = ':')]
    pub dirs: Vec<PathBuf>,
    /// A file of pickle globals to admit beyond the built-in lists: one module.Class per line,
    /// `#` comments. Whole modules and denylisted globals (os.system, builtins.eval, ...) are
    /// refused. Its SHA-256 is recorded with the scan results.
    #[arg(long = "allow-globals", value_name = "FILE")]
    pub allow_globals: Option<PathBuf>,
}

impl RulesArgs {
    /// Compiles the built-in rules plus these directories.
    pub fn load(&self) -> anyhow::Result<airlock_yara::RuleSet> {
        let rules = airlock_yara::RuleSet::load(&self.dirs)?;
        tracing::info!(rules = rules.len(), files = rules.files().len(), id = %rules.id(), "YARA rules compiled");
        Ok(rules)
    }

    /// The operator's globals allowlist (`--allow-globals`), empty when none is given.
    pub fn allow_list(&self) -> anyhow::Result<airlock_scan::AllowList> {
        use anyhow::Context;
        let Some(p) = &self.allow_globals else {
            return Ok(airlock_scan::AllowList::empty());
        };
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading --allow-globals {}", p.display()))?;
        let list = airlock_scan::AllowList::parse(&text)
            .with_context(|| format!("--allow-globals {}", p.display()))?;
        tracing::info!(
            globals = list.len(),
            sha256 = list.sha256(),
            "globals allowlist read"
        );
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (unique flags, valid defaults, conflicts that exist),
    /// which otherwise only fire when a command is run.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
