//! `airlockd lineage`: which imported models name a dataset, or one model's chain of parents.

use airlock_ui::exit;
use anyhow::Result;
use serde_json::Value;

use super::{open_reader, print_json};
use crate::cli::{Cli, LineageArgs};

pub fn run(cli: &Cli, args: &LineageArgs) -> Result<u8> {
    let a = open_reader(cli)?;
    let rows = match (&args.dataset, &args.model) {
        (Some(d), _) => a.models_using_dataset(d)?,
        (_, Some(m)) => a.model_chain(m)?,
        _ => unreachable!("clap requires one"),
    };
    if cli.json {
        print_json(&rows)?;
    } else if let Some(d) = &args.dataset {
        print_users(d, &rows)?;
    } else {
        print_chain(&rows)?;
    }
    Ok(exit::OK)
}

/// `--dataset`: one line per model that names the dataset.
fn print_users(dataset: &str, rows: &[Value]) -> Result<()> {
    if rows.is_empty() {
        say!("no imported model names dataset {dataset}");
    }
    for r in rows {
        say!(
            "{}  {}  dataset {} {}",
            r["model"].as_str().unwrap_or(""),
            r["digest"].as_str().unwrap_or(""),
            r["dataset"]["name"].as_str().unwrap_or(""),
            r["dataset"]["version"]
                .as_str()
                .or(r["dataset"]["digest"].as_str())
                .unwrap_or("")
        );
    }
    Ok(())
}

/// `--model`: the model, then each parent indented one step further.
fn print_chain(rows: &[Value]) -> Result<()> {
    for (i, r) in rows.iter().enumerate() {
        let pad = "  ".repeat(i);
        match r["note"].as_str() {
            Some(n) => say!("{pad}{}: {n}", r["model"].as_str().unwrap_or("")),
            None => {
                let ds: Vec<String> = r["lineage"]["datasets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| d["name"].as_str().unwrap_or("").to_string())
                    .collect();
                say!(
                    "{pad}{} {}{}",
                    r["model"].as_str().unwrap_or(""),
                    r["digest"].as_str().unwrap_or(""),
                    if ds.is_empty() {
                        String::new()
                    } else {
                        format!(" (datasets: {})", ds.join(", "))
                    }
                );
            }
        }
    }
    Ok(())
}
