//! Checks a run's results against the committed regression baseline (our
//! work exactly, our speed-ups over `rust-plain` and scikit-learn measured in
//! the same run, time over the machine's floor); exits 1 with a table of what
//! regressed. With `--write-baseline`, updates the baseline from the run
//! instead (entries of other kernels are kept).
//!
//! `cargo run --release --example regressions -- --results FILE --baseline FILE
//! [--write-baseline [--margin 0.5] [--headroom 2.5] [--work-only]]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pythonvsrust_kmeans::cli::exit_with;
use pythonvsrust_kmeans::regressions::{table, Baseline};
use pythonvsrust_kmeans::results::{read_records, results_path};

/// Check a run against the regression baseline.
#[derive(Parser)]
struct Args {
    /// The run's results: a results.jsonl, or a folder holding one.
    #[arg(long)]
    results: PathBuf,
    /// The baseline file (benches/baseline/regressions.json).
    #[arg(long)]
    baseline: PathBuf,
    /// Update the baseline from the run instead of checking it.
    #[arg(long)]
    write_baseline: bool,
    /// With --write-baseline: the least passing ratio, as a share of the
    /// ratio measured now.
    #[arg(long, default_value_t = 0.5)]
    margin: f64,
    /// With --write-baseline: the most passing time / floor, as a multiple
    /// of the one measured now.
    #[arg(long, default_value_t = 2.5)]
    headroom: f64,
    /// With --write-baseline: take only our work from this run (a run on a
    /// narrower kernel, whose times say nothing of the machine's best).
    #[arg(long)]
    work_only: bool,
}

/// What a baseline's note says once its work was remade alone.
const WORK_REMADE: &str = "Our work was remade since by `bash scripts/regressions.sh --write-work` (each kernel, the ratios and time / floor kept); the committed run is that script's run on the widest kernel.";

fn main() -> ExitCode {
    let mut regressed = false;
    let code = exit_with(|| {
        let args = Args::parse();
        anyhow::ensure!(
            args.margin > 0.0 && args.margin <= 1.0,
            "--margin must be in (0, 1], not {}",
            args.margin
        );
        anyhow::ensure!(
            args.headroom >= 1.0 && args.headroom.is_finite(),
            "--headroom must be at least 1, not {}",
            args.headroom
        );
        let file = if args.results.is_dir() {
            results_path(&args.results)
        } else {
            args.results.clone()
        };
        let (records, warnings) = read_records(&file)?;
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        anyhow::ensure!(!records.is_empty(), "{} holds no record", file.display());
        if args.write_baseline {
            let old = if args.baseline.exists() {
                read_baseline(&args.baseline)?
            } else {
                Baseline::default()
            };
            // Work alone over a baseline that has its ratios keeps them,
            // and its note says so (`--write-work`).
            let work_over_ratios = args.work_only && !old.ratios.is_empty();
            let mut new = old.update(&records, args.margin, args.headroom, args.work_only);
            if !work_over_ratios {
                new.note = format!(
                    "Made by `bash scripts/regressions.sh --write-baseline`: our work from a quick run of the CI subset on each kernel; ratios and time / floor from three runs on the widest kernel (the least ratio and the greatest time / floor of the three). Ratio minimums are {} of that ratio, time / floor ceilings {} times that figure.",
                    args.margin, args.headroom
                );
            } else if !new.note.contains(WORK_REMADE) {
                new.note = format!("{} {WORK_REMADE}", new.note);
            }
            let json = serde_json::to_string_pretty(&new)? + "\n";
            pythonvsrust_kmeans::data::write_atomic_bytes(&args.baseline, json.as_bytes())?;
            println!(
                "{}: {} work entries, {} ratios, {} floors",
                args.baseline.display(),
                new.work.len(),
                new.ratios.len(),
                new.floors.len()
            );
            return Ok(());
        }
        let baseline = read_baseline(&args.baseline)?;
        let findings = baseline.check(&records);
        print!("{}", table(&findings));
        let failed = findings.iter().filter(|f| !f.passed).count();
        println!(
            "{} of {} checks passed against {}",
            findings.len() - failed,
            findings.len(),
            args.baseline.display()
        );
        regressed = failed > 0;
        Ok(())
    });
    if regressed {
        ExitCode::FAILURE
    } else {
        code
    }
}

fn read_baseline(path: &Path) -> anyhow::Result<Baseline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the baseline {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a regression baseline", path.display()))
}
