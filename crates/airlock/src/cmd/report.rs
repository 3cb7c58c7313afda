//! `airlock report`: the bill of lading for volumes handed over (see [`crate::lading`]).
//!
//! Every volume is opened and authenticated first (signed manifest against the trust root,
//! expiry, label, `index.json`, frame index; all of one bundle, no volume twice); only then is
//! each file hashed, from the same open file, in bounded chunks. The first failure stops the
//! command before anything is written; the document goes to a temporary file beside `--out`
//! that is renamed into place, so a failed run leaves no document behind.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use airlock_bundle::reader::{Authenticated, Volume};
use airlock_bundle::BundleError;
use airlock_core::text::escape;
use airlock_core::time::now_checked;
use airlock_core::Sha256;
use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::{Cli, ReportArgs, ReportFormat};
use crate::lading::{self, GivenVolume};

/// A volume that authenticated: its open file, for hashing.
struct Opened {
    path: PathBuf,
    file: File,
    len: u64,
    number: u32,
}

pub fn run(cli: &Cli, a: &ReportArgs) -> Result<u8> {
    let root = super::load_root(&a.trust)?;
    let now = now_checked()?;
    let out_id = file_id(&a.out);
    // The facts of the lowest-numbered volume given (every volume carries the same signed
    // statement, but the signatures around it are not covered by the bundle id, so the order
    // the volumes are named in must not choose them).
    let mut head: Option<(u32, Authenticated, Vec<u8>, lading::Signing)> = None;
    let mut numbers = BTreeSet::new();
    let mut opened = Vec::new();
    for path in &a.volumes {
        let file = File::open(path).with_context(|| format!("{}: open volume", path.display()))?;
        if out_id.is_some() && out_id == file_id(path) {
            bail!(
                "{}: is also --out {}; the bill of lading would replace the volume",
                path.display(),
                a.out.display()
            );
        }
        let handle = file
            .try_clone()
            .with_context(|| format!("{}: open volume", path.display()))?;
        let vol = Volume::from_file(path, handle)?;
        let auth = vol.authenticate(&root, now, a.clock_skew)?;
        let number = vol.label.volume;
        if let Some((_, first, _, _)) = &head {
            if first.bundle_id != auth.bundle_id {
                return Err(BundleError::MixedBundles {
                    volume: path.clone(),
                    expected: first.bundle_id,
                    found: auth.bundle_id,
                }
                .into());
            }
        }
        if !numbers.insert(number) {
            return Err(BundleError::DuplicateVolume {
                volume: path.clone(),
                number,
            }
            .into());
        }
        opened.push(Opened {
            path: path.clone(),
            file,
            len: vol.file_len(),
            number,
        });
        if head.as_ref().is_none_or(|h| number < h.0) {
            let signing = lading::signing(&vol.envelope, &root, &auth.signers);
            head = Some((number, auth, vol.index_json.clone(), signing));
        }
    }
    let Some((_, auth, index_json, signing)) = head else {
        bail!("no volume given");
    };

    let bar = airlock_ui::Bar::bytes("hashing", opened.iter().map(|o| o.len).sum());
    let mut given = Vec::with_capacity(opened.len());
    for o in &opened {
        given.push(GivenVolume {
            file: o
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| o.path.display().to_string()),
            volume: o.number,
            size: o.len,
            sha256: hash_volume(o, &bar)?,
        });
    }
    bar.finish();

    let doc = lading::build(
        auth.manifest(),
        auth.bundle_id,
        &index_json,
        signing,
        &given,
    );
    let bytes = match a.format {
        ReportFormat::Html => doc.html(),
        ReportFormat::Json => doc.json(),
    };
    write_atomically(&a.out, &bytes)?;
    let sha256 = Sha256::digest(&bytes).hex();
    let format = match a.format {
        ReportFormat::Html => "html",
        ReportFormat::Json => "json",
    };

    if cli.json {
        let mut vols: Vec<(&Opened, &GivenVolume)> = opened.iter().zip(&given).collect();
        vols.sort_by_key(|(o, _)| o.number);
        super::print_json(&json!({
            "out": a.out,
            "format": format,
            "sha256": sha256,
            "bundle": doc.bundle.id,
            "name": doc.bundle.name,
            "version": doc.bundle.version,
            "volumes": vols.iter().map(|(o, g)| json!({
                "path": o.path, "volume": g.volume, "size": g.size, "sha256": g.sha256,
            })).collect::<Vec<_>>(),
            "complete": doc.complete,
            "missingVolumes": doc.missing_volumes,
        }))?;
    } else {
        let missing = if doc.complete {
            String::new()
        } else {
            format!(
                ", INCOMPLETE: volume {} missing",
                doc.missing_volumes
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        say!(
            "wrote {} (bill of lading, {format}, sha256 {sha256}): {} {}, {} of {} volume(s){missing}",
            a.out.display(),
            escape(&doc.bundle.name),
            escape(&doc.bundle.version),
            doc.volumes.len(),
            doc.bundle.volumes
        );
    }
    Ok(airlock_ui::exit::OK)
}

/// SHA-256 of the whole volume file, read from the handle that was authenticated (so a file swapped at the path meanwhile is not the one hashed). The file must
/// still have the length it had when it was opened.
fn hash_volume(o: &Opened, bar: &airlock_ui::Bar) -> Result<String> {
    use airlock_bundle::Progress as _;
    let (digest, len) = airlock_store::hash_open_file(&o.file, |n| bar.advance(n))
        .with_context(|| format!("{}: hashing the volume", o.path.display()))?;
    if len != o.len {
        bail!(
            "{}: the file changed size while it was read ({} bytes when opened, {len} read)",
            o.path.display(),
            o.len
        );
    }
    Ok(digest.hex())
}

/// Device and inode of an existing file, to tell that two paths name the same file.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Writes `bytes` to a temporary file beside `out`, then renames it to `out`.
fn write_atomically(out: &Path, bytes: &[u8]) -> Result<()> {
    let name = out
        .file_name()
        .with_context(|| format!("--out {}: not a file name", out.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", out.display()));
    }
    Ok(())
}
