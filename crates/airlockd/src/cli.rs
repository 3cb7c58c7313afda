//! Command-line definitions (clap). Implementations live in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Typical flow on the disconnected side:
  airlockd init --data /var/lib/airlock --trust root.json
  airlockd import --data /var/lib/airlock /media/usb/demo-1.0.0.vol1of1.tar.zst
  airlockd list --data /var/lib/airlock
  airlockd audit verify --data /var/lib/airlock

Readers (list, status, audit, lineage, fsck without --repair) open the data directory
read-only and never wait; writers (init, import, fsck --repair, the watcher while it imports,
inventory export and report for their audit entry) take DATA/lock, waiting up to --wait for
another writer. Volumes named on the command line are never modified: a rejected one is copied
to DATA/quarantine and left where it is.

Exit codes: 0 success; 1 failure (a volume rejected or failed, fsck or audit problems, bad
input, the data directory busy past --wait); 2 usage error. Logs go to stderr (-v, -vv, or
AIRLOCK_LOG=debug); data to stdout (--json for machines). The data directory comes from --data
or AIRLOCK_DATA.";

#[derive(Parser, Debug)]
#[command(name = "airlockd", version, about = "Verify, import and keep signed airlock bundles on an air-gapped appliance", after_help = AFTER_HELP)]
pub struct Cli {
    /// The appliance data directory.
    #[arg(long, global = true, env = "AIRLOCK_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// How long a writer waits for another writer (an import, the watcher) to release the data
    /// directory before failing with `data directory busy` (e.g. 30s, 5m, 0s).
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION", value_parser = airlock_ui::parse_duration_ms)]
    pub wait: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the data directory, pin a trust root, and generate the appliance key.
    Init(InitArgs),
    /// Verify and import bundle volumes (any order; multi-volume bundles complete with the last).
    Import(ImportArgs),
    /// Bundles, channels, artifacts and the names they are served under.
    List,
    /// A short health summary: trust root, counts, recent imports.
    Status,
    /// Re-hash every blob, check every catalog reference and the data directory's file modes.
    Fsck {
        /// Move damaged blobs to DATA/damaged/ and mark the artifacts that need them as not
        /// visible; importing their volume again restores them. Takes the writer lock.
        #[arg(long)]
        repair: bool,
    },
    /// Read or verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Signed inventories of the blobs this appliance holds (for differential bundles).
    #[command(subcommand)]
    Inventory(InventoryCmd),
    /// Model lineage: which imported models were trained on a dataset, or a model's ancestry.
    Lineage(LineageArgs),
    /// The software bills of materials that bundles carried for the images served here.
    #[command(subcommand)]
    Sbom(SbomCmd),
    /// Known vulnerabilities of what is served: the SBOMs of the served images matched
    /// against the newest vulnerability database imported (`airlock vulndb pack`).
    #[command(subcommand)]
    Vuln(VulnCmd),
    /// Compliance reports: the transfer register, what is served, the integrity of the record;
    /// signed by the appliance key (FILE.dsse.json beside the report).
    Report(ReportArgs),
    /// Watch an inbox directory and import volumes that appear in it; with --listen, also serve
    /// the store over HTTP (OCI registry, Hugging Face-compatible models, metrics).
    Serve(ServeArgs),
    /// Turn this machine into a k3s GPU serving node from a signed node profile: check it,
    /// render the node's files, install in the order that works.
    #[command(subcommand, after_help = NODE_HELP)]
    Node(NodeCmd),
}

const NODE_HELP: &str = "\
A node profile travels in a signed bundle (`nodes:` in the input manifest) and names the k3s
binary, installer and air-gap images, the GPU closure, the device plugin and the workloads.

  airlockd node preflight --profile gpu-node       can this machine be that node?
  airlockd node render --profile gpu-node --root /tmp/node   look at what would be written
  airlockd node install --profile gpu-node --dry-run         the steps, in order
  airlockd node install --profile gpu-node                   do it (resumes after a failure)

Install order: preflight, packages from the appliance's apt suite only, the driver loaded
(or reboot and run again), the container toolkit, k3s from the carried binary, the node Ready
with nvidia.com/gpu allocatable, the workloads Ready. See docs/node.md.";

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Check the machine: NVIDIA GPUs (sysfs), the loaded driver, nouveau, kernel headers in the
    /// closure, a default route, swap, free disk, ports 6443/10250, cgroup v2. Exit 1 on a failed
    /// check.
    Preflight(PreflightArgs),
    /// Write every file the node needs under --root, as if it were /, from the store; a second
    /// render changes no byte and says so.
    Render(RenderArgs),
    /// Render into / and run the install steps, stopping at the first failure with what to do;
    /// every step goes to the audit log and a re-run resumes.
    Install(InstallArgs),
}

#[derive(Args, Debug)]
pub struct PreflightArgs {
    /// The profile whose GPU closure gives the kernel headers to check against.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Read sysfs and procfs under this directory (fixture trees in tests).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct NodeTarget {
    /// The node profile (from an imported bundle's `nodes:`).
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// The appliance as the node reaches it (default https://HOSTNAME:5000).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// server: runs the k3s server, the manifests and airlockd; agent: joins --server.
    #[arg(long, value_enum, default_value_t = NodeRole::Server)]
    pub role: NodeRole,
    /// The k3s server an agent joins (https://HOST:6443).
    #[arg(long, value_name = "URL", required_if_eq("role", "agent"))]
    pub server: Option<String>,
    /// The file on the agent holding the cluster join token.
    #[arg(long, value_name = "FILE", required_if_eq("role", "agent"))]
    pub token_file: Option<String>,
    /// The appliance data directory as the airlockd unit names it.
    #[arg(long, default_value = "/var/lib/airlock", value_name = "DIR")]
    pub node_data: String,
    /// The address the airlockd unit serves on.
    #[arg(long, default_value = "0.0.0.0:5000", value_name = "ADDR")]
    pub listen: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Server,
    Agent,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub target: NodeTarget,
    /// Write under this directory as if it were /.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub target: NodeTarget,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The root to install into (tests use a sandbox).
    #[arg(long, default_value = "/", value_name = "DIR", hide = true)]
    pub root: PathBuf,
    /// How long to wait for the node and the workloads to become Ready.
    #[arg(long, default_value = "15m", value_parser = airlock_ui::parse_duration_ms)]
    pub timeout: u64,
    /// How often to look while waiting.
    #[arg(long, default_value = "5s", value_parser = airlock_ui::parse_duration_ms, hide = true)]
    pub poll: u64,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Print the log (newest last).
    Show {
        /// Only the last N entries.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Check hashes, chain, numbering, signatures and the signed head; names the first bad entry.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum InventoryCmd {
    /// Write a DSSE envelope, signed by the appliance key, listing every blob held.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The trust root to pin (from `airlock trust init`), verified before it is pinned.
    #[arg(long, value_name = "ROOT")]
    pub trust: PathBuf,
    /// A name (DNS name or IP address) the server certificate in DATA/tls is issued for;
    /// repeat for several. Default: localhost, 127.0.0.1, ::1 and the host name.
    #[arg(long = "tls-name", value_name = "NAME")]
    pub tls_names: Vec<String>,
    /// Keep blobs in S3-compatible object storage (s3://BUCKET/PREFIX) instead of DATA/blobs;
    /// needs --s3-endpoint and a build with the `s3` feature. Credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file.
    #[arg(long, value_name = "URL", requires = "s3_endpoint")]
    pub store: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Where the object store is.
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// The S3 endpoint (e.g. https://rgw.rack:7480).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 region (default us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<PathBuf>,
    /// Rego policy replacing the built-in one for this import.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Tolerated clock difference for expiry checks (e.g. 5m).
    #[arg(long, value_name = "DURATION", value_parser = airlock_ui::parse_duration)]
    pub clock_skew: Option<i64>,
    /// Re-hash blobs the store already holds instead of trusting them (restores blobs that
    /// `fsck` found damaged; slower).
    #[arg(long)]
    pub verify_present: bool,
    /// Who carries out this import, as the audit log and the transfer register record it
    /// (default: the user who ran sudo, else the current user).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// transfers: one row per import attempt in the period (operator, volume digest, signers,
    /// policy, scan, outcome); inventory: everything served now; changes: served names whose
    /// digest changed (previous → new); full: all of them, plus exceptions (waivers in force,
    /// quarantined volumes) and integrity (audit verify, fsck, trust root history).
    #[arg(value_enum)]
    pub kind: ReportKind,
    /// Start of the period (inclusive), YYYY-MM-DDTHH:MM:SSZ. Default: the first audit entry.
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<String>,
    /// End of the period (inclusive), YYYY-MM-DDTHH:MM:SSZ. Default: now. Give it for a
    /// report that reproduces byte for byte.
    #[arg(long, value_name = "RFC3339")]
    pub to: Option<String>,
    /// html: one self-contained printable page; json: the report's typed document; csv: the
    /// transfer register (for `inventory` and `changes`, theirs), RFC 4180; oscal (`full`
    /// only): OSCAL assessment results, one observation per import attempt and one finding per
    /// control.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Where to write the report; its signed statement goes to FILE.dsse.json.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Leave out the fsck of a `full` report (it re-hashes every blob; slow on a large store).
    /// The report then says fsck was not run.
    #[arg(long)]
    pub skip_fsck: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ReportKind {
    Transfers,
    Inventory,
    Changes,
    Full,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ReportFormat {
    Html,
    Json,
    Csv,
    Oscal,
}

#[derive(Subcommand, Debug)]
pub enum VulnCmd {
    /// One row per (image, advisory) pair, highest severity first.
    List(VulnListArgs),
}

#[derive(Args, Debug)]
pub struct VulnListArgs {
    /// Only this served image.
    #[arg(long, value_name = "IMAGE")]
    pub artifact: Option<String>,
    /// Only matches at or above this severity.
    #[arg(long, value_enum, default_value_t = MinSeverity::Unknown)]
    pub min_severity: MinSeverity,
    /// Output format (`--json` is the same as `--format json`).
    #[arg(long, value_enum, default_value_t = VulnFormat::Table)]
    pub format: VulnFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinSeverity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VulnFormat {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum SbomCmd {
    /// Print the SBOM of a served image (as signed in its bundle; the digest is checked).
    Show(SbomShowArgs),
    /// The images served with an SBOM, and the SBOM's digest.
    List,
}

#[derive(Args, Debug)]
pub struct SbomShowArgs {
    /// The image as served (`registry.example/acme/hello:v1`; `IMAGE@linux/arm64` for one
    /// platform of a multi-platform image), or a model's repository id for its ML-BOM.
    pub image: String,
    /// Which document: the CycloneDX SBOM every packed image gets, or the SPDX one that
    /// `airlock pack --sbom-spdx` adds.
    #[arg(long, value_enum, default_value_t = SbomFormat::CyclonedxJson)]
    pub format: SbomFormat,
    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbomFormat {
    CyclonedxJson,
    SpdxJson,
}

#[derive(Args, Debug)]
pub struct LineageArgs {
    /// List every imported model whose lineage names this dataset.
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    pub dataset: Option<String>,
    /// Show this model and its chain of parent models.
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, value_name = "DIR")]
    pub inbox: Option<PathBuf>,
    /// How often to look (e.g. 2s).
    #[arg(long, default_value = "2s", value_parser = airlock_ui::parse_duration_ms)]
    pub interval: u64,
    /// Poll until the inbox is empty of complete volumes, then exit (for scripts and tests).
    #[arg(long, conflicts_with = "listen")]
    pub once: bool,
    /// Serve HTTP on HOST:PORT (e.g. 0.0.0.0:5000; port 0 picks a free one, printed on stdout).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", requires = "listen")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS with the appliance's own certificate (DATA/tls/server.pem and server.key).
    #[arg(long, requires = "listen", conflicts_with = "tls_cert")]
    pub tls: bool,
    /// Require credentials for a route group: GROUP=FILE, GROUP one of oci, hf, apt, metrics
    /// (FILE: one token or bcrypt `user:hash` per line). Repeat per group.
    #[arg(long, value_name = "GROUP=FILE", requires = "listen")]
    pub auth: Vec<String>,
    /// The URL clients reach this server at (e.g. https://airlock.rack:5000), used for the
    /// absolute links the server sends; by default the request's Host.
    #[arg(long, value_name = "URL", requires = "listen")]
    pub public_url: Option<String>,
    /// Time allowed for a whole request head (also the keep-alive idle timeout).
    #[arg(long, hide = true, default_value = "30s", value_parser = airlock_ui::parse_duration_ms)]
    pub head_timeout: u64,
    /// Most connections served at once; more get 503.
    #[arg(long, hide = true, default_value_t = 1024)]
    pub max_connections: usize,
    /// Serve as a stateless replica: no data directory; the catalog comes from the snapshots
    /// the writer publishes to --store, verified with --appliance-key; blobs are read from the
    /// object store. Any number of replicas can run behind one name (docs/scale.md).
    #[arg(long, requires_all = ["store", "appliance_key", "listen"], conflicts_with_all = ["inbox", "once"])]
    pub replica: bool,
    /// The object store of a replica (s3://BUCKET/PREFIX).
    #[arg(long, value_name = "URL", requires = "replica")]
    pub store: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
    /// The appliance's public key (DATA/keys/appliance.pub): snapshots must verify against it.
    #[arg(long, value_name = "FILE", requires = "replica")]
    pub appliance_key: Option<PathBuf>,
    /// A directory holding the appliance's apt-signing.asc, to serve the apt repository from a
    /// replica (without it a replica serves no apt).
    #[arg(long, value_name = "DIR", requires = "replica")]
    pub apt_key_dir: Option<PathBuf>,
    /// Where a replica keeps the downloaded catalog snapshot (default: a new temporary
    /// directory).
    #[arg(long, value_name = "DIR", requires = "replica")]
    pub cache: Option<PathBuf>,
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
