//! Supply-chain scanner for model files and the archives they travel in.
//!
//! A model file is not passive data: `torch.load` of a pickle runs whatever the pickle says,
//! a Keras `Lambda` layer carries bytecode, a GGUF chat template is a Jinja program. This crate
//! looks at such files **without executing anything** and reports [`Finding`]s. Everything here
//! is a pure function over bytes or a [`Source`] (positioned reads), bounded in memory and time:
//! every length read from a file is checked against a limit in [`Limits`] before it is used.
//!
//! What is scanned (the type is sniffed from the content; extensions are only hints):
//! - pickles ([`pickle`]): a model of the real pickle machine (protocols 0–5, stack, memo,
//!   frames, several pickles per stream, joblib's inline arrays) with allowlist-first verdicts
//!   on every imported global ([`globals`]; the data classes of scikit-learn, SciPy, pandas,
//!   XGBoost and LightGBM and an operator's own list in [`allow`]);
//! - containers: zip ([`zip`], central directory cross-checked with local headers), tar
//!   ([`tar`]), 7z ([`sevenz`]), gzip, zlib, xz, bzip2, zstd and lzma streams, nested to
//!   [`Limits::max_depth`]; PyTorch zip and legacy files, `.npz`, `.keras`; image layers
//!   streamed as they are decompressed ([`layer`]); rar is reported as unscannable;
//! - validators: safetensors ([`safetensors`], never reads tensor data), GGUF ([`gguf`], also
//!   checks chat templates), numpy `.npy` ([`npy`]);
//! - configs: Keras JSON and HDF5 model configs, ONNX external-data paths ([`keras`], [`onnx`]);
//! - pattern rules through a [`RuleEngine`] (the `airlock-yara` crate runs YARA rules with
//!   yara-x): every leaf — a file, or an archive member that is not itself an archive — is
//!   handed to the engine after its format scanner, with its sniffed kind, so rules such as
//!   "an ELF header inside a model file" can be written. This crate has no engine of its own
//!   ([`NoRules`]), so that the format scanners build and fuzz without yara-x.
//!
//! ```no_run
//! let findings = airlock_scan::scan_path("models/".as_ref(), &airlock_scan::Limits::default())?;
//! for f in &findings {
//!     println!("{} {} {}", f.severity, f.file, f.rule);
//! }
//! # Ok::<(), airlock_scan::ScanError>(())
//! ```

pub mod allow;
mod deb;
pub mod error;
pub mod gguf;
pub mod globals;
pub mod keras;
pub mod layer;
pub mod npy;
pub mod onnx;
pub mod pickle;
pub mod safetensors;
pub mod sevenz;
mod sniff;
mod source;
pub mod tar;
pub mod zip;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use allow::{AllowList, AllowListError};
pub use error::ScanError;
pub use layer::{scan_layer, Compression};
pub use sniff::Kind;
pub use source::{FileSource, Slice, Source, SourceReader};

/// How bad a finding is. Ordered: `Info < Suspicious < Invalid < Malicious`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not a problem: e.g. a numpy object array whose pickle only rebuilds
    /// allowlisted objects (it still needs `allow_pickle=True` to load). Import policy admits
    /// it without a waiver.
    Info,
    /// Not known to be safe (an unlisted global, something that could not be scanned). Import
    /// policy admits it only with a signed waiver naming it.
    Suspicious,
    /// The file breaks its own format in a way that scanners and loaders may read differently
    /// (zip name mismatch, bad CRC, overlapping entries, bad safetensors offsets).
    Invalid,
    /// Known to run code or reach the system on load.
    Malicious,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Suspicious => "suspicious",
            Severity::Invalid => "invalid",
            Severity::Malicious => "malicious",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the scanner found. Field names match the import policy's `input.findings`
/// (`file`, `rule`, `severity`; the importer adds `artifact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The file as it was named to the scanner (path, or the name given to [`scan_reader`]).
    pub file: String,
    /// The member inside archives, outermost first, joined by `!/` (`inner.zip!/archive/data.pkl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Rule id, e.g. `pickle/denylisted-global`, `zip/name-mismatch`, `safetensors/offsets`.
    pub rule: String,
    /// The imported global (`module.name`) for pickle findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    pub severity: Severity,
    /// Human-readable explanation.
    pub detail: String,
}

impl Finding {
    /// The string a signed waiver names: `rule` or `rule:global` (`pickle/unknown-global:
    /// sklearn.linear_model._base.LinearRegression`). Import policy matches waivers on it.
    pub fn waiver_key(&self) -> String {
        match &self.global {
            Some(g) => format!("{}:{}", self.rule, g),
            None => self.rule.clone(),
        }
    }
}

/// Bounds on everything read from untrusted input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Archives nested deeper than this are reported, not opened.
    pub max_depth: usize,
    /// Largest compressed member inflated into memory for scanning.
    pub max_inflate: u64,
    /// Pickle: most opcodes per stream.
    pub max_pickle_ops: u64,
    /// Pickle: most stack + memo entries.
    pub max_pickle_items: usize,
    /// Pickle: longest string kept as a value (longer ones are skipped, not stored).
    pub max_pickle_string: usize,
    /// Most entries in one zip or tar.
    pub max_entries: usize,
    /// safetensors: largest JSON header.
    pub max_safetensors_header: u64,
    /// GGUF: most metadata keys / tensors, longest string, most array elements.
    pub max_gguf_items: u64,
    pub max_gguf_string: u64,
    pub max_gguf_array: u64,
    /// Most findings kept per file (a flood of findings is itself reported once).
    pub max_findings_per_file: usize,
    /// Image layers: members up to this size are scanned in memory, larger ones are spilled
    /// to a temporary file.
    pub max_member_in_memory: u64,
    /// Image layers: most bytes one layer may unpack to.
    pub max_layer_unpacked: u64,
    /// Globals the operator admits in pickles beyond the built-in lists (`--allow-globals`);
    /// never able to admit a denylisted one.
    pub allow: AllowList,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 6,
            max_inflate: 1 << 30,
            max_pickle_ops: 200_000_000,
            max_pickle_items: 4_000_000,
            max_pickle_string: 1 << 20,
            max_entries: 200_000,
            max_safetensors_header: 100 << 20,
            max_gguf_items: 1 << 20,
            max_gguf_string: 64 << 20,
            max_gguf_array: 1 << 24,
            max_findings_per_file: 1000,
            max_member_in_memory: 64 << 20,
            max_layer_unpacked: 64 << 30,
            allow: AllowList::empty(),
        }
    }
}

/// What a [`RuleEngine`] is told about the leaf it scans.
#[derive(Debug, Clone, Copy)]
pub struct Leaf<'a> {
    /// The innermost name: the member name inside an archive, else the file name.
    pub name: &'a str,
    /// The sniffed content type: `pickle`, `hdf5`, `safetensors`, `gguf`, `npy`, `onnx`,
    /// `json`, `unscannable` or `other`.
    pub kind: &'static str,
    /// Whether the content is a model file (pickle, HDF5, safetensors, GGUF, npy, ONNX), where
    /// executables and shell commands have no business.
    pub model: bool,
}

/// A match of a pattern rule, turned into a [`Finding`] at the leaf's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// Rule id, e.g. `yara/builtin/reverse_shell`.
    pub rule: String,
    pub severity: Severity,
    pub detail: String,
}

/// Pattern rules run over every leaf. Implemented by `airlock-yara` (YARA rules via yara-x);
/// an error is an I/O error reading the source, not a bad match.
pub trait RuleEngine: Sync {
    fn scan_leaf(&self, src: &dyn Source, leaf: &Leaf) -> std::io::Result<Vec<RuleHit>>;
}

/// No pattern rules: only the format scanners run.
pub struct NoRules;

impl RuleEngine for NoRules {
    fn scan_leaf(&self, _: &dyn Source, _: &Leaf) -> std::io::Result<Vec<RuleHit>> {
        Ok(Vec::new())
    }
}

/// Collects findings while walking one top-level file.
pub(crate) struct Ctx<'a> {
    pub limits: &'a Limits,
    pub rules: &'a dyn RuleEngine,
    pub file: String,
    pub findings: Vec<Finding>,
    truncated: bool,
}

impl<'a> Ctx<'a> {
    fn new(limits: &'a Limits, rules: &'a dyn RuleEngine, file: String) -> Self {
        Ctx {
            limits,
            rules,
            file,
            findings: Vec::new(),
            truncated: false,
        }
    }

    /// Records a finding at `loc` (the member chain, empty for the file itself).
    pub fn add(
        &mut self,
        loc: &Loc,
        severity: Severity,
        rule: &str,
        global: Option<String>,
        detail: impl Into<String>,
    ) {
        if self.findings.len() >= self.limits.max_findings_per_file {
            if !self.truncated {
                self.truncated = true;
                self.findings.push(Finding {
                    file: self.file.clone(),
                    member: loc.member(),
                    rule: "scan/too-many-findings".into(),
                    global: None,
                    severity: Severity::Suspicious,
                    detail: format!(
                        "more than {} findings; the rest are not listed",
                        self.limits.max_findings_per_file
                    ),
                });
            }
            return;
        }
        let f = Finding {
            file: self.file.clone(),
            member: loc.member(),
            rule: rule.into(),
            global,
            severity,
            detail: detail.into(),
        };
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }
}

/// Where we are: the chain of archive members from the top-level file inwards.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loc {
    pub members: Vec<String>,
}

impl Loc {
    pub fn member(&self) -> Option<String> {
        if self.members.is_empty() {
            None
        } else {
            Some(self.members.join("!/"))
        }
    }
    pub fn child(&self, name: &str) -> Loc {
        let mut m = self.members.clone();
        m.push(name.to_string());
        Loc { members: m }
    }
    pub fn depth(&self) -> usize {
        self.members.len()
    }
    /// The innermost name (member name or the file name), for extension hints.
    pub fn name<'b>(&'b self, file: &'b str) -> &'b str {
        self.members.last().map(String::as_str).unwrap_or(file)
    }
}

/// Findings for a tree of files, and how many files were scanned.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Report {
    pub files: u64,
    pub findings: Vec<Finding>,
}

/// Scans a file, or every regular file under a directory (symlinks are not followed), and
/// returns the findings in path order. An unreadable path is an error; bad content is a
/// finding.
pub fn scan_path(path: &Path, limits: &Limits) -> Result<Vec<Finding>, ScanError> {
    Ok(scan_tree(path, limits)?.findings)
}

/// [`scan_path`] that also counts the files scanned.
pub fn scan_tree(path: &Path, limits: &Limits) -> Result<Report, ScanError> {
    scan_tree_with(path, limits, &NoRules)
}

/// [`scan_tree`] with pattern rules run over every leaf.
pub fn scan_tree_with(
    path: &Path,
    limits: &Limits,
    rules: &dyn RuleEngine,
) -> Result<Report, ScanError> {
    scan_tree_progress(path, limits, rules, &|_| {}, &|_| {})
}

/// [`scan_tree_with`] that reports progress: `total` once with the bytes of every file found,
/// then `done` with each file's size when it has been scanned (from several threads).
pub fn scan_tree_progress(
    path: &Path,
    limits: &Limits,
    rules: &dyn RuleEngine,
    total: &dyn Fn(u64),
    done: &(dyn Fn(u64) + Sync),
) -> Result<Report, ScanError> {
    use rayon::prelude::*;
    let mut files = Vec::new();
    walk(path, &mut files)?;
    total(files.iter().map(|(_, len)| len).sum());
    // Files are scanned in parallel; findings keep the walk's (path) order.
    let per_file: Vec<Vec<Finding>> = files
        .par_iter()
        .map(|(p, _)| {
            let io = |source| ScanError::Io {
                path: p.clone(),
                source,
            };
            let f = std::fs::File::open(p).map_err(io)?;
            let src = source::FileSource::new(f).map_err(io)?;
            let found = scan_source_with(&src, &p.display().to_string(), limits, rules);
            done(src.len());
            found.map_err(io)
        })
        .collect::<Result<_, _>>()?;
    Ok(Report {
        files: files.len() as u64,
        findings: per_file.into_iter().flatten().collect(),
    })
}

/// The regular files under `path` (or `path` itself) with their sizes, sorted by name at every
/// level; symlinks and special files are skipped.
fn walk(path: &Path, out: &mut Vec<(std::path::PathBuf, u64)>) -> Result<(), ScanError> {
    let io = |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let ft = e.file_type().map_err(io)?;
            if ft.is_dir() || ft.is_file() {
                walk(&e.path(), out)?;
            }
        }
    } else if meta.is_file() {
        out.push((path.to_path_buf(), meta.len()));
    }
    Ok(())
}

/// Scans one blob read from `reader` (read fully into memory; prefer [`scan_source`] or
/// [`scan_path`] for large files). `name` is what findings call the file; its extension is a
/// hint only.
pub fn scan_reader(
    mut reader: impl std::io::Read,
    name: &str,
    limits: &Limits,
) -> std::io::Result<Vec<Finding>> {
    let mut buf = Vec::new();
    reader.read_to_end(&mut buf)?;
    scan_bytes(&buf, name, limits)
}

/// Scans bytes already in memory.
pub fn scan_bytes(bytes: &[u8], name: &str, limits: &Limits) -> std::io::Result<Vec<Finding>> {
    scan_source(&bytes, name, limits)
}

/// Scans any positioned-read source (a file, bytes, a slice of either).
pub fn scan_source(src: &dyn Source, name: &str, limits: &Limits) -> std::io::Result<Vec<Finding>> {
    scan_source_with(src, name, limits, &NoRules)
}

/// [`scan_source`] with pattern rules run over every leaf.
pub fn scan_source_with(
    src: &dyn Source,
    name: &str,
    limits: &Limits,
    rules: &dyn RuleEngine,
) -> std::io::Result<Vec<Finding>> {
    let mut ctx = Ctx::new(limits, rules, name.to_string());
    scan_any(&mut ctx, src, &Loc::default())?;
    Ok(ctx.findings)
}

/// Sniffs `src` and hands it to the matching scanner. Recursion point for archive members.
pub(crate) fn scan_any(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> std::io::Result<()> {
    let mut head = vec![0u8; src.len().min(4096) as usize];
    src.read_at(0, &mut head)?;
    let name = loc.name(&ctx.file).to_string();
    let kind = sniff::sniff(&head, src.len(), &name);
    let is_archive = matches!(
        kind,
        Kind::Zip | Kind::Tar | Kind::Gzip | Kind::Zlib | Kind::SevenZ | Kind::Compressed(_)
    );
    if is_archive && loc.depth() >= ctx.limits.max_depth {
        ctx.add(
            loc,
            Severity::Suspicious,
            "archive/too-deep",
            None,
            format!(
                "archive nested more than {} levels deep is not opened",
                ctx.limits.max_depth
            ),
        );
        return Ok(());
    }
    if airlock_deb::is_deb(&head) {
        deb::scan(ctx, src, loc);
    }
    match kind {
        Kind::Zip => return zip::scan(ctx, src, loc),
        Kind::Tar => return tar::scan(ctx, src, loc),
        Kind::Gzip => return scan_stream(ctx, src, loc, "gzip"),
        Kind::Compressed(codec) => return scan_stream(ctx, src, loc, codec),
        Kind::SevenZ => return sevenz::scan(ctx, src, loc),
        Kind::Zlib => {
            if scan_zlib(ctx, src, loc)? {
                return Ok(());
            }
        }
        Kind::Unscannable(what) => {
            ctx.add(
                loc,
                Severity::Suspicious,
                "archive/unscannable",
                None,
                format!("{what} content cannot be scanned; unpack it and scan the contents"),
            );
        }
        // Validated tensor files: the rules see the header and metadata, not the tensor
        // bytes (proven to be exactly the declared tensors, and only ever read as numbers).
        Kind::Safetensors | Kind::Gguf => {
            let data_start = if kind == Kind::Safetensors {
                safetensors::scan(ctx, src, loc)
            } else {
                gguf::scan(ctx, src, loc)
            };
            if let Some(head) = data_start.and_then(|end| Slice::new(src, 0, end)) {
                return run_rules(ctx, &head, loc, kind, &name);
            }
        }
        Kind::Npy => npy::scan(ctx, src, loc)?,
        Kind::Hdf5 => keras::scan_hdf5(ctx, src, loc)?,
        Kind::Onnx => onnx::scan(ctx, src, loc)?,
        Kind::Pickle { strict } => {
            if !pickle::scan(ctx, src, loc, strict) {
                // Text that starts with an opcode byte: not a model file to the rules.
                return run_rules(ctx, src, loc, Kind::Other, &name);
            }
        }
        Kind::Json => keras::scan_json(ctx, src, loc)?,
        Kind::Other => {}
    }
    run_rules(ctx, src, loc, kind, &name)
}

/// Hands a leaf to the rule engine and records its hits.
fn run_rules(
    ctx: &mut Ctx,
    src: &dyn Source,
    loc: &Loc,
    kind: Kind,
    name: &str,
) -> std::io::Result<()> {
    let leaf = Leaf {
        name,
        kind: kind.name(),
        model: kind.is_model(),
    };
    for hit in ctx.rules.scan_leaf(src, &leaf)? {
        ctx.add(loc, hit.severity, &hit.rule, None, hit.detail);
    }
    Ok(())
}

/// A raw zlib stream (joblib `compress=`): inflated (bounded) and scanned when it inflates
/// cleanly (returns true); bytes that merely start like a zlib header return false and are
/// treated as a leaf.
fn scan_zlib(ctx: &mut Ctx, src: &dyn Source, loc: &Loc) -> std::io::Result<bool> {
    use std::io::Read;
    let mut dec =
        flate2::read::ZlibDecoder::new(SourceReader::new(src)).take(ctx.limits.max_inflate + 1);
    let mut buf = Vec::new();
    if dec.read_to_end(&mut buf).is_err() {
        return Ok(false);
    }
    if buf.len() as u64 > ctx.limits.max_inflate {
        ctx.add(
            loc,
            Severity::Suspicious,
            "archive/too-large",
            None,
            format!(
                "zlib content larger than {} bytes is not scanned",
                ctx.limits.max_inflate
            ),
        );
        return Ok(true);
    }
    let name = format!(
        "{}.inflated",
        loc.name(&ctx.file).rsplit('/').next().unwrap_or("")
    );
    scan_any(ctx, &buf.as_slice(), &loc.child(&name))?;
    Ok(true)
}

/// Memory limit for xz/lzma dictionaries (KiB): 7-Zip's largest preset uses 64 MiB, `-9e`
/// of xz 64 MiB; a header asking for more is refused before anything is allocated.
pub(crate) const DICT_LIMIT_KB: u32 = 256 * 1024;

/// A single compressed stream (gzip, zstd, xz, bzip2, lzma): inflated into memory up to
/// [`Limits::max_inflate`] and scanned as what it holds (a `.pkl.xz` is a pickle, a `.tar.zst`
/// a tar). A stream that does not decode is an `invalid` finding.
fn scan_stream(ctx: &mut Ctx, src: &dyn Source, loc: &Loc, codec: &str) -> std::io::Result<()> {
    use std::io::Read;
    let name = loc.name(&ctx.file);
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let inner_name = [
        (".tgz", ".tar"),
        (".txz", ".tar"),
        (".tbz2", ".tar"),
        (".tzst", ".tar"),
        (".gz", ""),
        (".xz", ""),
        (".bz2", ""),
        (".zst", ""),
        (".lzma", ""),
    ]
    .iter()
    .find_map(|(ext, repl)| base.strip_suffix(ext).map(|s| format!("{s}{repl}")))
    .unwrap_or_else(|| format!("{base}.{codec}-decoded"));
    let rd = SourceReader::new(src);
    let dec: Box<dyn Read> = match codec {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(rd)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(rd)?),
        "xz" => Box::new(lzma_rust2::XzReader::new_mem_limit(rd, true, DICT_LIMIT_KB)),
        "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(rd)),
        _ => match lzma_rust2::LzmaReader::new_mem_limit(rd, DICT_LIMIT_KB, None) {
            Ok(r) => Box::new(r),
            Err(e) => {
                ctx.add(
                    loc,
                    Severity::Invalid,
                    &format!("{codec}/corrupt"),
                    None,
                    format!("{codec} stream does not decode: {e}"),
                );
                return Ok(());
            }
        },
    };
    let mut buf = Vec::new();
    if let Err(e) = dec.take(ctx.limits.max_inflate + 1).read_to_end(&mut buf) {
        ctx.add(
            loc,
            Severity::Invalid,
            &format!("{codec}/corrupt"),
            None,
            format!("{codec} stream is corrupt: {e}"),
        );
        return Ok(());
    }
    if buf.len() as u64 > ctx.limits.max_inflate {
        ctx.add(
            loc,
            Severity::Suspicious,
            "archive/too-large",
            None,
            format!(
                "{codec} content larger than {} bytes is not scanned",
                ctx.limits.max_inflate
            ),
        );
        return Ok(());
    }
    scan_any(ctx, &buf.as_slice(), &loc.child(&inner_name))
}
