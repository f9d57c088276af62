//! Redraws `target-reports/index.html` and its charts from the stored results
//! (`target-reports/results.jsonl`); never runs a benchmark.
//!
//! `cargo run --release --example report [-- --dir DIR] [--baseline PATH]
//! [--merge PATH]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use pythonvsrust_kmeans::cli::exit_with;
use pythonvsrust_kmeans::report::write_report_with;
use pythonvsrust_kmeans::results::{append_records, read_records, report_dir, results_path};

/// Redraw the report from stored results.
#[derive(Parser)]
struct Args {
    /// The results folder (default: $KMEANS_REPORT_DIR, else target-reports/).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Earlier results to compare with: a results file, or a folder holding
    /// one (such as target-reports/reference).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Records of another run to add to this folder's results first (a
    /// results file, or a folder holding one): a study measured in parts.
    /// Records already present are not added twice.
    #[arg(long)]
    merge: Option<PathBuf>,
}

fn main() -> ExitCode {
    exit_with(|| {
        let args = Args::parse();
        let dir = args.dir.unwrap_or_else(report_dir);
        if let Some(other) = &args.merge {
            let added = merge_records(&dir, other)?;
            eprintln!("{added} record(s) merged from {}", other.display());
        }
        let output = write_report_with(&dir, args.baseline.as_deref())?;
        for warning in &output.warnings {
            eprintln!("warning: {warning}");
        }
        if let Some(line) = &output.comparison {
            eprintln!("{line}");
        }
        println!("{}", output.index.display());
        Ok(())
    })
}

/// Appends the records at `other` that `dir`'s results lack.
fn merge_records(dir: &Path, other: &Path) -> anyhow::Result<usize> {
    let file = if other.is_dir() {
        results_path(other)
    } else {
        other.to_path_buf()
    };
    let (incoming, warnings) = read_records(&file)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let existing = if results_path(dir).exists() {
        read_records(&results_path(dir))?.0
    } else {
        Vec::new()
    };
    let new: Vec<_> = incoming
        .into_iter()
        .filter(|r| !existing.contains(r))
        .collect();
    if !new.is_empty() {
        append_records(dir, &new)?;
    }
    Ok(new.len())
}
