//! YARA rules over every leaf airlock scans, through [yara-x](https://virustotal.github.io/yara-x/).
//!
//! [`RuleSet`] compiles airlock's built-in rules (`rules/builtin.yar`: EICAR, reverse shells,
//! download-and-run droppers, executables embedded in model files) together with the
//! operator's rule directories, and implements [`airlock_scan::RuleEngine`], so the scanner
//! hands it every file and every archive member that is not itself an archive, with the
//! sniffed type of the content.
//!
//! Why a crate of its own: yara-x brings wasmtime and cranelift, several minutes of compile
//! time on a small machine. Kept here, only this crate pays for it, once; the format
//! scanners in `airlock-scan` build, test and fuzz without it.
//!
//! Bounds: a leaf up to [`RuleSet::whole_limit`] bytes (16 MiB) is read into the thread's
//! buffer and scanned whole (modules, `filesize` and `uint32()` work); a larger one is scanned
//! in overlapping blocks of [`BLOCK`] bytes, so memory stays flat for multi-gigabyte files,
//! and there only string patterns count (yara-x's block mode). Each scan has a timeout; a rule that times out is a
//! suspicious finding, not a pass. Matches per pattern are capped.
//!
//! Rule files: every `*.yar` / `*.yara` file directly in a rules directory, in name order,
//! each compiled into its own namespace (the file stem), so rule names may repeat across
//! files. A rule's `meta: severity` (`malicious`, `suspicious`, `invalid`) sets the finding's
//! severity; rules without it are malicious. Findings are named `yara/<namespace>/<rule>`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_scan::{Leaf, RuleEngine, RuleHit, Severity, Source};
use sha2::{Digest as _, Sha256};

/// The built-in rule source.
pub const BUILTIN: &str = include_str!("../rules/builtin.yar");

/// Block size for leaves scanned in blocks.
pub const BLOCK: usize = 4 << 20;
/// Overlap between blocks: a string shorter than this is found even across a boundary.
pub const OVERLAP: usize = 4 << 10;
/// Default for [`RuleSet::whole_limit`]: each scanning thread keeps a buffer this large.
pub const DEFAULT_WHOLE_LIMIT: u64 = 16 << 20;
/// Per-leaf scan timeout.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// Matches kept per pattern (a finding names the first few offsets).
const MAX_MATCHES: usize = 16;

/// The version of yara-x airlock links (recorded with scan results).
pub const YARA_X_VERSION: &str = "yara-x 1.22";

/// Sets the per-leaf externals. They were defined with these types at compile time, so
/// setting them cannot fail.
macro_rules! set_globals {
    ($scanner:expr, $leaf:expr) => {{
        let _ = $scanner.set_global("airlock_model", $leaf.model);
        let _ = $scanner.set_global("airlock_kind", $leaf.kind);
        let _ = $scanner.set_global("airlock_name", $leaf.name);
    }};
}

/// One compiled rule file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleFile {
    /// The namespace its rules live in (`builtin`, or the file stem).
    pub namespace: String,
    /// Where it came from (`builtin` for the built-in rules).
    pub origin: String,
    /// `sha256:` of the file's bytes.
    pub sha256: String,
}

/// A rule file that does not compile, or a rules directory that cannot be read.
#[derive(Debug)]
pub enum Error {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    Compile {
        origin: String,
        message: String,
    },
    DuplicateNamespace {
        namespace: String,
        paths: (String, String),
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => {
                write!(f, "reading YARA rules {}: {source}", path.display())
            }
            Error::Compile { origin, message } => {
                write!(f, "YARA rules {origin} do not compile:\n{message}")
            }
            Error::DuplicateNamespace { namespace, paths } => write!(
                f,
                "YARA rule files {} and {} would share namespace {namespace:?}; rename one",
                paths.0, paths.1
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Compiled rules: the built-in set plus operator rule directories.
///
/// The compiled rules are leaked (`&'static`): a rule set lives as long as the process in
/// practice (one per `airlock` run), and a `'static` borrow lets each thread keep one yara-x
/// scanner and reuse it for every leaf. Creating a scanner costs about half a millisecond
/// (its WebAssembly store), which dominated the scan of an image layer of small files.
pub struct RuleSet {
    rules: &'static yara_x::Rules,
    /// Identifies this rule set for the per-thread scanner cache.
    serial: u64,
    files: Vec<RuleFile>,
    count: usize,
    /// Leaves up to this size are scanned whole; larger ones in blocks.
    pub whole_limit: u64,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("files", &self.files)
            .field("rules", &self.count)
            .finish()
    }
}

fn new_compiler<'a>() -> yara_x::Compiler<'a> {
    let mut c = yara_x::Compiler::new();
    c.define_global("airlock_model", false)
        .and_then(|c| c.define_global("airlock_kind", ""))
        .and_then(|c| c.define_global("airlock_name", ""))
        .expect("globals are valid identifiers");
    c
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// The `*.yar` / `*.yara` files directly in `dir`, sorted by name.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let p = e.path();
        let yar = matches!(p.extension().and_then(|x| x.to_str()), Some("yar" | "yara"));
        if yar && e.file_type().map_err(io)?.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// This thread's whole-mode scanner, and the serial of the rule set it was made for.
    static SCANNER: std::cell::RefCell<Option<(u64, yara_x::Scanner<'static>)>> =
        const { std::cell::RefCell::new(None) };
    /// This thread's read buffer (grows to the largest whole-mode leaf, or one block).
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest rule file read (rules are text; this bounds a mistaken path).
const MAX_RULE_FILE: u64 = 16 << 20;

impl RuleSet {
    /// The built-in rules alone.
    pub fn builtin() -> Self {
        Self::load(&[]).expect("built-in rules compile")
    }

    /// The built-in rules plus every rule file in `dirs` (a path may also name one file).
    pub fn load(dirs: &[PathBuf]) -> Result<Self, Error> {
        let mut sources: Vec<(String, String, Vec<u8>)> = vec![(
            "builtin".into(),
            "builtin".into(),
            BUILTIN.as_bytes().to_vec(),
        )];
        for d in dirs {
            let files = if d.is_dir() {
                rule_files(d)?
            } else {
                vec![d.clone()]
            };
            for p in files {
                let io = |source| Error::Io {
                    path: p.clone(),
                    source,
                };
                let f = std::fs::File::open(&p).map_err(io)?;
                let mut bytes = Vec::new();
                io::Read::read_to_end(&mut io::Read::take(f, MAX_RULE_FILE + 1), &mut bytes)
                    .map_err(io)?;
                if bytes.len() as u64 > MAX_RULE_FILE {
                    return Err(Error::Io {
                        path: p.clone(),
                        source: io::Error::other(format!(
                            "larger than {MAX_RULE_FILE} bytes; not a rule file?"
                        )),
                    });
                }
                let ns: String = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                if let Some((_, other, _)) = sources.iter().find(|(n, _, _)| *n == ns) {
                    return Err(Error::DuplicateNamespace {
                        namespace: ns,
                        paths: (other.clone(), p.display().to_string()),
                    });
                }
                sources.push((ns, p.display().to_string(), bytes));
            }
        }
        let mut compiler = new_compiler();
        let mut files = Vec::new();
        for (ns, origin, bytes) in &sources {
            let text = std::str::from_utf8(bytes).map_err(|e| Error::Compile {
                origin: origin.clone(),
                message: format!("not UTF-8: {e}"),
            })?;
            compiler.new_namespace(ns);
            compiler
                .add_source(yara_x::SourceCode::from(text).with_origin(origin.as_str()))
                .map_err(|e| Error::Compile {
                    origin: origin.clone(),
                    message: e.to_string(),
                })?;
            files.push(RuleFile {
                namespace: ns.clone(),
                origin: origin.clone(),
                sha256: sha256(bytes),
            });
        }
        let rules: &'static yara_x::Rules = Box::leak(Box::new(compiler.build()));
        let count = rules.iter().len();
        Ok(RuleSet {
            rules,
            serial: NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            files,
            count,
            whole_limit: DEFAULT_WHOLE_LIMIT,
        })
    }

    /// The rule files compiled in, built-in first.
    pub fn files(&self) -> &[RuleFile] {
        &self.files
    }

    /// How many rules.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// One digest for the whole rule set: what scan results record, so an auditor can tell
    /// which rules a bundle was scanned with.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        for f in &self.files {
            h.update(f.namespace.as_bytes());
            h.update([0]);
            h.update(f.sha256.as_bytes());
            h.update([0]);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// Scans bytes already in memory (whole mode), with this thread's scanner.
    pub fn scan_bytes(&self, data: &[u8], leaf: &Leaf) -> Vec<RuleHit> {
        SCANNER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot
                .as_ref()
                .is_none_or(|(serial, _)| *serial != self.serial)
            {
                let mut s = yara_x::Scanner::new(self.rules);
                s.set_timeout(TIMEOUT).max_matches_per_pattern(MAX_MATCHES);
                *slot = Some((self.serial, s));
            }
            let (_, s) = slot.as_mut().expect("set above");
            set_globals!(s, leaf);
            match s.scan(data) {
                Ok(r) => hits(r.matching_rules()),
                Err(e) => vec![scan_failed(e)],
            }
        })
    }

    /// Scans a source too large to hold: blocks of [`BLOCK`] bytes overlapping by [`OVERLAP`].
    fn scan_blocks(&self, src: &dyn Source, leaf: &Leaf) -> io::Result<Vec<RuleHit>> {
        let mut s = yara_x::blocks::Scanner::new(self.rules);
        s.set_timeout(TIMEOUT).max_matches_per_pattern(MAX_MATCHES);
        set_globals!(s, leaf);
        let len = src.len();
        let mut off = 0u64;
        let failed = BUF.with(|b| -> io::Result<Option<RuleHit>> {
            let mut buf = b.borrow_mut();
            if buf.len() < BLOCK {
                buf.resize(BLOCK, 0);
            }
            while off < len {
                let n = ((len - off) as usize).min(BLOCK);
                src.read_at(off, &mut buf[..n])?;
                if let Err(e) = s.scan(off as usize, &buf[..n]) {
                    return Ok(Some(scan_failed(e)));
                }
                if off + n as u64 >= len {
                    break;
                }
                off += (n - OVERLAP) as u64;
            }
            Ok(None)
        })?;
        if let Some(hit) = failed {
            return Ok(vec![hit]);
        }
        Ok(match s.finish() {
            Ok(r) => hits(r.matching_rules()),
            Err(e) => vec![scan_failed(e)],
        })
    }
}

fn scan_failed(e: yara_x::ScanError) -> RuleHit {
    RuleHit {
        rule: "yara/scan-failed".into(),
        severity: Severity::Suspicious,
        detail: format!("the YARA scan did not finish: {e}"),
    }
}

fn severity_of(rule: &yara_x::Rule) -> Severity {
    for (k, v) in rule.metadata() {
        if k == "severity" {
            if let yara_x::MetaValue::String(s) = v {
                return match s.to_ascii_lowercase().as_str() {
                    "suspicious" | "low" | "medium" | "info" | "warning" => Severity::Suspicious,
                    "invalid" => Severity::Invalid,
                    _ => Severity::Malicious,
                };
            }
        }
    }
    Severity::Malicious
}

fn hits<'a, 'r: 'a>(rules: impl Iterator<Item = yara_x::Rule<'a, 'r>>) -> Vec<RuleHit> {
    let mut out = Vec::new();
    for r in rules {
        let description = r.metadata().find_map(|(k, v)| match (k, v) {
            ("description", yara_x::MetaValue::String(s)) => Some(s.to_string()),
            _ => None,
        });
        let mut at: Vec<String> = Vec::new();
        for p in r.patterns() {
            let offs: Vec<String> = p
                .matches()
                .take(3)
                .map(|m| m.range().start.to_string())
                .collect();
            if !offs.is_empty() {
                at.push(format!("{} at {}", p.identifier(), offs.join(",")));
            }
        }
        let mut detail = description.unwrap_or_else(|| "YARA rule matched".into());
        if !at.is_empty() {
            detail.push_str(&format!(" ({})", at.join("; ")));
        }
        out.push(RuleHit {
            rule: format!("yara/{}/{}", r.namespace(), r.identifier()),
            severity: severity_of(&r),
            detail,
        });
    }
    out
}

impl RuleEngine for RuleSet {
    fn scan_leaf(&self, src: &dyn Source, leaf: &Leaf) -> io::Result<Vec<RuleHit>> {
        if let Some(bytes) = src.as_bytes() {
            if bytes.len() as u64 <= self.whole_limit {
                return Ok(self.scan_bytes(bytes, leaf));
            }
        }
        if src.len() > self.whole_limit {
            return self.scan_blocks(src, leaf);
        }
        let len = src.len() as usize;
        // The thread's read buffer: reading every leaf into fresh pages made the kernel's page
        // faults cost more than the scan itself (0.47 s of system time for 768 MiB).
        BUF.with(|b| {
            let mut b = b.borrow_mut();
            if b.len() < len {
                b.resize(len, 0);
            }
            src.read_at(0, &mut b[..len])?;
            Ok(self.scan_bytes(&b[..len], leaf))
        })
    }
}
