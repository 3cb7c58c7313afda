//! `airlock vulndb match`: which components of an SBOM the OSV records of a directory affect,
//! on the connected side, before anything is packed. The same matcher (airlock-vuln) runs on
//! the appliance; this is the preview an engineer reads before carrying a bundle.
//! `airlock vulndb pack`: those records normalised into the one file the appliance reads.
//! Both take a directory `vulndb sync` wrote ([`super::vulndb_sync`]) or a plain directory of
//! OSV JSON files.

use std::io::Read;

use airlock_vuln::matching::Level;
use anyhow::{Context, Result};
use serde_json::json;

use super::print_json;
use crate::cli::{Cli, MinSeverity, VulndbCmd, VulndbMatchArgs};

pub fn run(cli: &Cli, c: &VulndbCmd) -> Result<u8> {
    match c {
        VulndbCmd::Match(a) => run_match(cli, a),
        VulndbCmd::Pack(a) => run_pack(cli, a),
        VulndbCmd::Sync(a) => super::vulndb_sync::run_sync(cli, a),
    }
}

fn floor(m: MinSeverity) -> Level {
    match m {
        MinSeverity::Unknown => Level::Unknown,
        MinSeverity::Low => Level::Low,
        MinSeverity::Medium => Level::Medium,
        MinSeverity::High => Level::High,
        MinSeverity::Critical => Level::Critical,
    }
}

fn run_match(cli: &Cli, a: &VulndbMatchArgs) -> Result<u8> {
    let mut bytes = Vec::new();
    std::fs::File::open(&a.sbom)
        .with_context(|| format!("opening {}", a.sbom.display()))?
        .take(airlock_vuln::db::MAX_SBOM + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", a.sbom.display()))?;
    let (components, unmatched) = airlock_vuln::db::components_of_cyclonedx(&bytes)
        .map_err(|e| anyhow::anyhow!("SBOM {}: {e}", a.sbom.display()))?;
    let (db, report) = load(
        &a.db,
        airlock_vuln::matching::Database::only_for(&components),
    )
    .with_context(|| format!("reading the OSV records in {}", a.db.display()))?;
    for r in &report.refused {
        tracing::warn!("not an OSV record: {r}");
    }
    let (matches, undecided) = airlock_vuln::db::match_all(&db, &components);
    let floor = floor(a.min_severity);
    let shown: Vec<_> = matches.iter().filter(|m| m.severity >= floor).collect();
    if cli.json {
        print_json(&json!({
            "sbom": a.sbom,
            "components": components.len(),
            "componentsNotMatchable": unmatched,
            "database": report,
            "undecided": undecided,
            "matches": shown,
        }))?;
    } else {
        for m in &shown {
            let score = m
                .cvss_score
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "-".into());
            let fixed = if m.fixed.is_empty() {
                "no fix".to_string()
            } else {
                format!("fixed in {}", m.fixed.join(", "))
            };
            say!(
                "{:<20} {:<8} {:>4}  {} {} ({})  {}",
                m.id,
                m.severity.name(),
                score,
                m.package,
                m.version,
                m.ecosystem,
                fixed
            );
        }
        say!(
            "{} match(es) in {} components ({} not matchable: no purl, or an ecosystem or release without records); {} advisories from {} files{}",
            shown.len(),
            components.len(),
            unmatched,
            report.advisories,
            report.files,
            if undecided > 0 {
                format!("; {undecided} (component, advisory) pairs could not be ordered")
            } else {
                String::new()
            }
        );
    }
    Ok(airlock_ui::exit::OK)
}

/// The records of `path` loaded into `db`: a normalised database file, or a directory (synced
/// or plain), with the known-exploited list of a synced directory or of the file's header.
fn load(
    path: &std::path::Path,
    mut db: airlock_vuln::matching::Database,
) -> Result<(
    airlock_vuln::matching::Database,
    airlock_vuln::db::LoadReport,
)> {
    if path.is_file() {
        return load_file(path, db);
    }
    let dir = path;
    let Some(s) = super::vulndb_sync::read_sources(dir)? else {
        return Ok(airlock_vuln::db::load_dir_into(dir, db)?);
    };
    if let Some(k) = super::vulndb_sync::known_exploited(dir, &s)? {
        db.set_known_exploited(k.cves.into_keys());
    }
    super::vulndb_sync::for_each_record(dir, &s, |_, adv| db.add(adv))?;
    let mut rep = airlock_vuln::db::LoadReport {
        advisories: db.advisories,
        dropped_entries: db.dropped,
        ..Default::default()
    };
    for e in &s.exports {
        rep.files += e.counts.members;
        rep.withdrawn += e.counts.withdrawn;
        rep.refused_count += e.counts.refused;
        rep.refused.extend(
            e.counts
                .refused_named
                .iter()
                .take(20 - rep.refused.len().min(20))
                .cloned(),
        );
    }
    Ok((db, rep))
}

/// A normalised database file (header line, one record per line) read into `db`.
fn load_file(
    path: &std::path::Path,
    mut db: airlock_vuln::matching::Database,
) -> Result<(
    airlock_vuln::matching::Database,
    airlock_vuln::db::LoadReport,
)> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let read = airlock_vuln::db::read_lines_into(
        std::io::BufReader::with_capacity(1 << 20, f),
        &mut db,
        &path.display().to_string(),
    )
    .map_err(anyhow::Error::msg)?;
    let report = airlock_vuln::db::LoadReport {
        files: 1,
        advisories: db.advisories + db.skipped + read.refused,
        withdrawn: 0,
        dropped_entries: db.dropped,
        refused: vec![],
        refused_count: read.refused,
    };
    Ok((db, report))
}

/// The records of the database file, keyed by id, and its counts.
#[derive(Default)]
struct Builder {
    records: std::collections::BTreeMap<String, Vec<u8>>,
    withdrawn: usize,
    refused: usize,
    ecosystems: std::collections::BTreeMap<String, usize>,
    dropped: std::collections::BTreeMap<String, usize>,
}

impl Builder {
    fn add(&mut self, buf: &[u8], name: &dyn std::fmt::Display) -> Result<()> {
        let adv = match airlock_vuln::osv::parse(buf) {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.withdrawn += 1;
                return Ok(());
            }
            Err(e) => {
                self.refused += 1;
                tracing::warn!("{name}: {e}");
                return Ok(());
            }
        };
        let v: serde_json::Value = serde_json::from_slice(buf)?;
        for a in v["affected"].as_array().into_iter().flatten() {
            let eco = a["package"]["ecosystem"].as_str().unwrap_or("(none)");
            if airlock_vuln::version::Scheme::of_ecosystem(eco).is_none() {
                *self
                    .dropped
                    .entry(eco.chars().take(64).collect())
                    .or_default() += 1;
            }
        }
        if adv.affected.is_empty() {
            return Ok(());
        }
        for a in &adv.affected {
            *self.ecosystems.entry(a.ecosystem.clone()).or_default() += 1;
        }
        // Only the entries airlock can order are kept; the record is otherwise as published.
        let mut v = v;
        if let Some(arr) = v["affected"].as_array_mut() {
            arr.retain(|a| {
                a["package"]["ecosystem"]
                    .as_str()
                    .and_then(airlock_vuln::version::Scheme::of_ecosystem)
                    .is_some()
            });
        }
        self.records.insert(adv.id.clone(), serde_json::to_vec(&v)?);
        Ok(())
    }
}

/// The normalised database file: a header line, then one OSV record per line, sorted by id.
/// From a synced directory the header also names every source (URL, retrieval time, size,
/// SHA-256, ETag, record counts) and carries the known-exploited CVEs.
fn build(dir: &std::path::Path, out: &std::path::Path, built: &str) -> Result<serde_json::Value> {
    use std::io::Write as _;
    let mut b = Builder::default();
    let synced = super::vulndb_sync::read_sources(dir)?;
    let files;
    let mut extra = serde_json::Map::new();
    if let Some(s) = &synced {
        let mut err = None;
        super::vulndb_sync::for_each_record(dir, s, |buf, adv| {
            if err.is_none() {
                err = b.add(buf, &adv.id).err();
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        files = s.exports.iter().map(|e| e.counts.members).sum::<usize>();
        extra.insert("synced".into(), json!(s.synced));
        extra.insert("sources".into(), super::vulndb_sync::header_sources(s));
        if let Some(k) = super::vulndb_sync::known_exploited(dir, s)? {
            let ks = s.known_exploited.as_ref().expect("read above");
            extra.insert(
                "knownExploited".into(),
                json!({"url": ks.url, "retrieved": ks.retrieved, "sha256": ks.sha256,
                       "catalogVersion": k.catalog_version, "dateReleased": k.date_released,
                       "count": k.cves.len(), "cves": k.cves.keys().collect::<Vec<_>>()}),
            );
        }
    } else {
        let paths = airlock_vuln::db::json_files(dir)
            .with_context(|| format!("reading {}", dir.display()))?;
        for p in &paths {
            let mut buf = Vec::new();
            std::fs::File::open(p)?
                .take(airlock_vuln::osv::MAX_RECORD as u64 + 1)
                .read_to_end(&mut buf)?;
            b.add(&buf, &p.display())?;
        }
        files = paths.len();
    }
    let mut header = json!({
        "_type": "airlock-vulndb/v1",
        "built": built,
        "source": dir.display().to_string(),
        "files": files,
        "records": b.records.len(),
        "withdrawn": b.withdrawn,
        "refused": b.refused,
        "ecosystems": b.ecosystems,
        "droppedEcosystems": b.dropped,
    });
    header.as_object_mut().expect("object").extend(extra);
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    serde_json::to_writer(&mut w, &header)?;
    w.write_all(b"\n")?;
    for r in b.records.values() {
        w.write_all(r)?;
        w.write_all(b"\n")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(header)
}

pub fn run_pack(cli: &Cli, a: &crate::cli::VulndbPackArgs) -> Result<u8> {
    use clap::Parser as _;
    let t = airlock_core::time::now_checked()?;
    let built = airlock_core::time::format_rfc3339(t);
    // A private working directory, removed however this ends.
    struct Work(std::path::PathBuf);
    impl Drop for Work {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let tmp =
        Work(std::env::temp_dir().join(format!("airlock-vulndb-{}-{}", std::process::id(), t)));
    std::fs::create_dir(&tmp.0).with_context(|| format!("creating {}", tmp.0.display()))?;
    let file = tmp.0.join("vulndb.jsonl");
    let header = build(&a.dir, &file, &built)?;
    tracing::info!(
        records = header["records"].as_u64(),
        "vulnerability database built"
    );
    let (digest, _) = airlock_store::hash_file(&file)?;
    if let Some(keep) = &a.keep_db {
        std::fs::copy(&file, keep).with_context(|| format!("writing {}", keep.display()))?;
    }
    let version = built.replace([':', '-'], "");
    let manifest = tmp.0.join("vulndb.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: airlock/v1\nkind: Bundle\nmetadata: {{name: vulndb, version: \"{version}\", channel: vulndb}}\nspec:\n  files:\n    - name: vulndb\n      path: ./vulndb.jsonl\n      sha256: \"{}\"\n",
            digest.hex()
        ),
    )?;
    let mut argv: Vec<std::ffi::OsString> = vec!["airlock".into()];
    if cli.json {
        argv.push("--json".into());
    }
    argv.extend(["pack".into(), manifest.into_os_string()]);
    for k in &a.keys {
        argv.extend(["--key".into(), k.clone().into_os_string()]);
    }
    argv.extend([
        "--out".into(),
        a.out.clone().into_os_string(),
        "--expires".into(),
        a.expires.clone().into(),
        "--no-sbom".into(),
    ]);
    if let Some(s) = a.sequence {
        argv.extend(["--sequence".into(), s.to_string().into()]);
    }
    let inner = crate::cli::Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let crate::cli::Command::Pack(p) = &inner.command else {
        unreachable!("argv names pack")
    };
    let code = super::pack::run(&inner, p)?;
    if !cli.json {
        say!(
            "vulnerability database: {} records ({} withdrawn, {} refused), ecosystems {}",
            header["records"],
            header["withdrawn"],
            header["refused"],
            header["ecosystems"]
        );
        if let Some(k) = header.get("knownExploited") {
            say!(
                "known-exploited: {} CVEs (catalog {})",
                k["count"],
                k["catalogVersion"].as_str().unwrap_or("")
            );
        }
    }
    Ok(code)
}
