//! Redraws `target-reports/index.html` and its charts from the stored results
//! (`target-reports/results.jsonl`); never runs a benchmark.
//!
//! `cargo run --release --example report [-- --dir DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pythonvsrust_kmeans::cli::exit_with;
use pythonvsrust_kmeans::report::write_report;
use pythonvsrust_kmeans::results::report_dir;

/// Redraw the report from stored results.
#[derive(Parser)]
struct Args {
    /// The results folder (default: $KMEANS_REPORT_DIR, else target-reports/).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    exit_with(|| {
        let args = Args::parse();
        let dir = args.dir.unwrap_or_else(report_dir);
        let output = write_report(&dir)?;
        for warning in &output.warnings {
            eprintln!("warning: {warning}");
        }
        println!("{}", output.index.display());
        Ok(())
    })
}
