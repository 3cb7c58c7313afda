//! `airlockd sbom list|show`: the SBOMs bundles carried for the images this appliance serves,
//! and the ML-BOMs of its models (`sbom:MODEL`, found by the same name rule).
//!
//! `airlock pack` attaches an SBOM to every image it packs: an OCI artifact named
//! `sbom:IMAGE` (CycloneDX) or `spdx:IMAGE` (SPDX), whose one layer is the document and whose
//! `subject` is the image manifest; the bundle manifest lists it, so it was signed and its
//! digest verified at import like any artifact. These commands read it from the catalog and
//! the store on a read-only open, re-checking each blob against its digest as it is read.

use std::io::Write;

use airlock_appliance::vuln::{sbom_document as document, sboms};
use airlock_ui::exit;
use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{open_reader, print_json};
use crate::cli::{Cli, SbomCmd, SbomFormat, SbomShowArgs};

pub fn run(cli: &Cli, c: &SbomCmd) -> Result<u8> {
    match c {
        SbomCmd::List => list(cli),
        SbomCmd::Show(a) => show(cli, a),
    }
}

fn list(cli: &Cli) -> Result<u8> {
    let a = open_reader(cli)?;
    let rows = sboms(&a)?;
    if cli.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, image, d)| {
                let format = if *p == "sbom:" {
                    "cyclonedx-json"
                } else {
                    "spdx-json"
                };
                json!({"image": image, "format": format, "digest": d})
            })
            .collect();
        print_json(&v)?;
    } else if rows.is_empty() {
        say!("no served image has an SBOM");
    } else {
        for (p, image, d) in &rows {
            let f = if *p == "sbom:" { "cyclonedx" } else { "spdx" };
            say!("{image}  {f}  {d}");
        }
    }
    Ok(exit::OK)
}

fn show(cli: &Cli, s: &SbomShowArgs) -> Result<u8> {
    let a = open_reader(cli)?;
    let prefix = match s.format {
        SbomFormat::CyclonedxJson => "sbom:",
        SbomFormat::SpdxJson => "spdx:",
    };
    let rows = sboms(&a)?;
    let Some((_, _, digest)) = rows
        .iter()
        .find(|(p, image, _)| *p == prefix && *image == s.image)
    else {
        let mut with: Vec<&str> = rows
            .iter()
            .filter(|(p, _, _)| *p == prefix)
            .map(|(_, i, _)| i.as_str())
            .collect();
        with.dedup();
        bail!(
            "no {} SBOM is served for {:?}; images with one: {}",
            if prefix == "sbom:" {
                "CycloneDX"
            } else {
                "SPDX (packed with --sbom-spdx)"
            },
            s.image,
            if with.is_empty() {
                "none".to_string()
            } else {
                with.join(", ")
            }
        );
    };
    let doc = document(&a, digest)?;
    match &s.out {
        Some(p) => std::fs::write(p, &doc).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().lock().write_all(&doc)?,
    }
    Ok(exit::OK)
}
