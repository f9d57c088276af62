//! The report: SVG charts (drawn with plotters) in one HTML page, from the
//! stored results only. It never runs a benchmark.
//!
//! `write_report(dir)` reads `dir/results.jsonl`, keeps the latest record of
//! each contender in each scenario (of full-preset runs when there are any),
//! and writes `dir/index.html` with its charts beside it under
//! `dir/charts/`; `write_report_with` adds a comparison with earlier results.

mod charts;
mod comparison;
mod html;
mod run_summary;
mod runs;
mod summary;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::Scenario;
use crate::error::{Error, Result};
use crate::results::{latest_per_contender, read_records, results_path, Record};

pub use run_summary::{format_seconds, RunSummary};
pub use summary::{summarise, ContenderSummary};

/// What a report run wrote.
#[derive(Debug, Clone)]
pub struct ReportOutput {
    /// The page.
    pub index: PathBuf,
    /// Every chart written.
    pub charts: Vec<PathBuf>,
    /// Problems with the stored results that did not stop the report.
    pub warnings: Vec<String>,
    /// The comparison with a baseline, in a sentence, when one was asked for.
    pub comparison: Option<String>,
}

/// The latest record of each contender in each (family, scenario).
pub(crate) fn latest(records: &[Record]) -> Vec<Record> {
    let mut by_scenario: BTreeMap<(String, Scenario), Vec<&Record>> = BTreeMap::new();
    for r in records {
        by_scenario
            .entry((r.family.clone(), r.scenario))
            .or_default()
            .push(r);
    }
    by_scenario
        .into_values()
        .flat_map(|rs| latest_per_contender(rs.into_iter()).into_iter().cloned())
        .collect()
}

/// Draws the report in `dir` from `dir/results.jsonl`.
pub fn write_report(dir: &Path) -> Result<ReportOutput> {
    write_report_with(dir, None)
}

/// Draws the report, with a comparison against the results at `baseline`
/// (a results file, or a folder holding `results.jsonl`) when given.
pub fn write_report_with(dir: &Path, baseline: Option<&Path>) -> Result<ReportOutput> {
    let path = results_path(dir);
    if !path.exists() {
        return Err(Error::Report(format!(
            "no results at {} yet: run `cargo bench` (or `cargo bench -- kmeans/10000x10`) first",
            path.display()
        )));
    }
    let (records, mut warnings) = read_records(&path)?;
    if records.is_empty() {
        return Err(Error::Report(format!(
            "{} holds no readable record",
            path.display()
        )));
    }
    let (records, left_out) = runs::one_preset(records);
    if left_out > 0 {
        warnings.push(format!(
            "{left_out} record(s) of quick-preset runs left out: this report shows full-preset runs only"
        ));
    }
    let latest = latest(&records);
    let comparison = match baseline {
        Some(path) => Some(comparison::Comparison::new(
            path,
            &comparison::load(path)?,
            &latest,
        )),
        None => None,
    };
    let chart_dir = dir.join("charts");
    crate::data::create_folder(&chart_dir)?;
    let drawn = charts::draw_all(&chart_dir, &latest, &mut warnings)?;
    remove_stale_charts(&chart_dir, &drawn, &mut warnings);
    let index = dir.join("index.html");
    let page = html::page(dir, &latest, &drawn, &warnings, comparison.as_ref());
    crate::data::write_atomic_bytes(&index, page.as_bytes())?;
    Ok(ReportOutput {
        index,
        charts: drawn.into_iter().map(|c| c.path).collect(),
        warnings,
        comparison: comparison.map(|c| c.headline()),
    })
}

/// Removes the SVGs in `chart_dir` this report did not draw (charts of an
/// earlier report whose data or layout has changed), so the folder holds
/// only what the page shows.
fn remove_stale_charts(chart_dir: &Path, drawn: &[charts::Chart], warnings: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(chart_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale =
            path.extension().is_some_and(|e| e == "svg") && !drawn.iter().any(|c| c.path == path);
        if stale {
            if let Err(e) = std::fs::remove_file(&path) {
                warnings.push(format!(
                    "cannot remove the stale chart {}: {e}",
                    path.display()
                ));
            }
        }
    }
}
