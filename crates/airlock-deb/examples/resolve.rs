//! Resolves requests against `Packages` files and prints what it chose and how long each
//! step took; `scripts/bench.sh` times it.
//!
//! Usage: resolve [--arch ARCH] [--recommends] [--status FILE] [--list] [--split-only]
//!                PACKAGES... -- REQUEST...
//!
//! `--split-only` times [`airlock_deb::control::paragraphs`] alone over the files.

use std::time::Instant;

use airlock_deb::{resolve, Baseline, Index, Options, Request};

fn main() {
    if let Err(e) = run() {
        eprintln!("resolve: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut arch = "amd64".to_string();
    let mut opts = Options::default();
    let mut list = false;
    let mut split_only = false;
    let mut files = Vec::new();
    let mut requests = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--arch" => arch = args.next().ok_or("--arch needs a value")?,
            "--recommends" => opts.recommends = true,
            "--list" => list = true,
            "--split-only" => split_only = true,
            "--status" => {
                let f = args.next().ok_or("--status needs a file")?;
                let text = std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?;
                opts.baseline = Some(Baseline::parse(&text).map_err(|e| format!("{f}: {e}"))?);
            }
            "--" => {
                for r in args.by_ref() {
                    requests.push(r.parse::<Request>().map_err(|e| e.to_string())?);
                }
            }
            _ => files.push(a),
        }
    }
    if split_only {
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
            let t = Instant::now();
            let (mut n, mut fields) = (0, 0);
            for p in airlock_deb::control::paragraphs(&text) {
                let p = p.map_err(|e| format!("{f}: {e}"))?;
                n += 1;
                fields += p.fields().len();
            }
            println!(
                "{f}: {n} paragraphs, {fields} fields in {:.0?}",
                t.elapsed()
            );
        }
        return Ok(());
    }
    let start = Instant::now();
    let mut index = Index::new(&arch);
    for (n, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        index
            .add_packages(n as u32, &text)
            .map_err(|e| format!("{f}: {e}"))?;
    }
    let parsed = start.elapsed();
    let t = Instant::now();
    let res = resolve(&index, &requests, &opts).map_err(|e| e.to_string())?;
    let resolved = t.elapsed();
    if list {
        for c in &res.packages {
            let p = index.get(c.id);
            println!("{} {} ({})", p.name, p.version, c.chain.join(" -> "));
        }
    }
    let bytes: u64 = res.packages.iter().map(|c| index.get(c.id).size).sum();
    println!(
        "{} packages in index, {} chosen ({} MB); parse {:.0?}, resolve {:.0?}, total {:.0?}",
        index.len(),
        res.packages.len(),
        bytes / 1_000_000,
        parsed,
        resolved,
        start.elapsed()
    );
    Ok(())
}
