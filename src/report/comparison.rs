//! Two runs compared (`report --baseline PATH`): per scenario and contender
//! the change in median fit time, called noise when the two runs' ranges of
//! timed fits overlap, and the change in our speed-up over the fastest
//! Python peer.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::html::escape;
use super::run_summary::format_seconds;
use super::summary::{geometric_mean, Comparator};
use crate::contenders::{Role, REGISTRY};
use crate::error::{Error, Result};
use crate::results::{read_records, results_path, Check, Record, Status};

/// The latest records at `path`: a results file, or a folder holding
/// `results.jsonl` (such as `target-reports/reference`).
pub(crate) fn load(path: &Path) -> Result<Vec<Record>> {
    let file: PathBuf = if path.is_dir() {
        results_path(path)
    } else {
        path.to_path_buf()
    };
    if !file.is_file() {
        return Err(Error::Report(format!(
            "no baseline results at {} (give a results.jsonl or a folder holding one)",
            file.display()
        )));
    }
    let (records, _) = read_records(&file)?;
    if records.is_empty() {
        return Err(Error::Report(format!(
            "{} holds no readable record",
            file.display()
        )));
    }
    let (records, _) = super::runs::one_preset(records);
    Ok(super::latest(&records))
}

/// How a median moved between the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every timed fit of the new run beat every fit of the old.
    Faster,
    /// Every timed fit of the new run was slower than every fit of the old.
    Slower,
    /// The ranges overlap.
    Noise,
}

/// One contender on one scenario in both runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub scenario: String,
    pub contender: String,
    /// Median, least, most: before and now.
    pub before: (f64, f64, f64),
    pub now: (f64, f64, f64),
    pub verdict: Verdict,
}

/// Our speed-up over the fastest Python peer on one scenario, before and now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RatioRow {
    pub scenario: String,
    pub before: f64,
    pub now: f64,
}

/// The comparison of the current latest records with a baseline's.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    /// What the baseline was read from.
    pub source: String,
    pub rows: Vec<Row>,
    pub ratios: Vec<RatioRow>,
    /// Benches in only one of the two runs.
    pub only_before: usize,
    pub only_now: usize,
}

/// Median, least and most of a valid result, `None` otherwise.
fn times(r: &Record) -> Option<(f64, f64, f64)> {
    if r.status != Status::Ok || r.inertia_check == Some(Check::Fail) {
        return None;
    }
    Some((r.median_seconds()?, r.min_seconds()?, r.max_seconds()?))
}

/// Our speed-up over the fastest Python peer in each scenario of `records`.
fn ratios(records: &[Record]) -> Vec<(String, f64)> {
    let ours = REGISTRY
        .iter()
        .find(|e| e.role == Role::Ours)
        .map_or("rust", |e| e.name);
    records
        .iter()
        .filter(|r| r.contender == ours && r.status == Status::Ok)
        .filter_map(|r| {
            let peer = Comparator::FastestPythonPeer.seconds(records, r)?;
            Some((r.scenario_id(), peer / r.median_seconds()?))
        })
        .collect()
}

impl Comparison {
    /// Compares `now` with `before` (both the latest record per contender
    /// and scenario).
    pub fn new(source: &Path, before: &[Record], now: &[Record]) -> Self {
        let key = |r: &Record| (r.scenario_id(), r.contender.clone());
        let mut rows = Vec::new();
        let mut only_now = 0;
        for r in now {
            let Some(old) = before.iter().find(|b| key(b) == key(r)) else {
                only_now += 1;
                continue;
            };
            let (Some(b), Some(n)) = (times(old), times(r)) else {
                continue;
            };
            let verdict = if n.2 < b.1 {
                Verdict::Faster
            } else if n.1 > b.2 {
                Verdict::Slower
            } else {
                Verdict::Noise
            };
            rows.push(Row {
                scenario: r.scenario_id(),
                contender: r.contender.clone(),
                before: b,
                now: n,
                verdict,
            });
        }
        let only_before = before
            .iter()
            .filter(|b| !now.iter().any(|r| key(r) == key(b)))
            .count();
        let old_ratios = ratios(before);
        let ratios = ratios(now)
            .into_iter()
            .filter_map(|(scenario, now)| {
                let before = old_ratios.iter().find(|(s, _)| *s == scenario)?.1;
                Some(RatioRow {
                    scenario,
                    before,
                    now,
                })
            })
            .collect();
        Comparison {
            source: source.display().to_string(),
            rows,
            ratios,
            only_before,
            only_now,
        }
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// The comparison in a sentence.
    pub fn headline(&self) -> String {
        let mut line = format!(
            "against {}: {} bench(es) in both runs: {} faster and {} slower beyond noise, {} within noise",
            self.source,
            self.rows.len(),
            self.count(Verdict::Faster),
            self.count(Verdict::Slower),
            self.count(Verdict::Noise)
        );
        if let (Some(b), Some(n)) = (
            geometric_mean(self.ratios.iter().map(|r| r.before)).map(|(m, _)| m),
            geometric_mean(self.ratios.iter().map(|r| r.now)).map(|(m, _)| m),
        ) {
            let _ = write!(
                line,
                "; ours over the fastest Python peer {b:.2}x before, {n:.2}x now (geometric mean of {} scenarios)",
                self.ratios.len()
            );
        }
        line
    }

    /// The report's section.
    pub fn section(&self) -> String {
        let mut h = format!(
            "<p>{}. A change is beyond noise only when every timed fit of one run beat every fit of the other; {} bench(es) only in the baseline, {} only in this run.</p>\n",
            escape(&self.headline()),
            self.only_before,
            self.only_now
        );
        if !self.ratios.is_empty() {
            // A long list of unchanged ratios would bury the page: folded
            // beyond a screenful.
            let open = if self.ratios.len() <= 12 { " open" } else { "" };
            let _ = write!(
                h,
                "<details{open}><summary>Our speed-up over the fastest Python peer per scenario, then and now ({} scenarios)</summary>",
                self.ratios.len()
            );
            h.push_str("<table><tr><th class=\"l\">scenario</th><th>ours over the fastest Python peer: baseline</th><th>now</th><th>change</th></tr>\n");
            for r in &self.ratios {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td>{:.2}x</td><td>{:.2}x</td><td>{:+.0}%</td></tr>",
                    escape(&r.scenario),
                    r.before,
                    r.now,
                    (r.now / r.before - 1.0) * 100.0
                );
            }
            h.push_str("</table></details>\n");
        }
        h.push_str("<details><summary>Every bench in both runs</summary><table><tr><th class=\"l\">scenario</th><th class=\"l\">contender</th><th>baseline median (min-max)</th><th>now median (min-max)</th><th>change</th><th class=\"l\">verdict</th></tr>\n");
        let range = |t: (f64, f64, f64)| {
            format!(
                "{} <small>({}-{})</small>",
                format_seconds(t.0),
                format_seconds(t.1),
                format_seconds(t.2)
            )
        };
        for r in &self.rows {
            let (verdict, class) = match r.verdict {
                Verdict::Faster => ("faster", " class=\"l better\""),
                Verdict::Slower => ("slower", " class=\"l fail\""),
                Verdict::Noise => ("within noise", " class=\"l\""),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:+.0}%</td><td{class}>{verdict}</td></tr>",
                escape(&r.scenario),
                escape(&r.contender),
                range(r.before),
                range(r.now),
                (r.now.0 / r.before.0 - 1.0) * 100.0
            );
        }
        h.push_str("</table></details>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::bare_record;

    fn record(contender: &str, seconds: &[f64]) -> Record {
        bare_record(contender, (1000, 2, 2), seconds)
    }

    #[test]
    fn changes_are_called_noise_unless_the_ranges_part() {
        let before = vec![
            record("rust", &[1.0, 1.1, 1.2]),
            record("sklearn", &[10.0, 11.0, 12.0]),
            record("numpy", &[5.0]),
        ];
        let now = vec![
            record("rust", &[0.5, 0.6, 0.7]),
            record("sklearn", &[11.5, 12.5, 13.0]),
            record("linfa", &[3.0]),
        ];
        let c = Comparison::new(Path::new("reference"), &before, &now);
        let verdict = |name: &str| c.rows.iter().find(|r| r.contender == name).unwrap().verdict;
        assert_eq!(verdict("rust"), Verdict::Faster);
        assert_eq!(verdict("sklearn"), Verdict::Noise);
        assert_eq!((c.only_before, c.only_now), (1, 1));
        assert_eq!(c.ratios.len(), 1);
        assert!((c.ratios[0].before - 11.0 / 1.1).abs() < 1e-12);
        assert!((c.ratios[0].now - 12.5 / 0.6).abs() < 1e-12);
        let line = c.headline();
        assert!(
            line.contains("2 bench(es) in both runs: 1 faster and 0 slower"),
            "{line}"
        );
        let html = c.section();
        assert!(
            html.contains("within noise") && html.contains("-45%"),
            "{html}"
        );
        // Slower beyond noise.
        let slow = Comparison::new(Path::new("b"), &now, &before);
        assert_eq!(
            slow.rows
                .iter()
                .find(|r| r.contender == "rust")
                .unwrap()
                .verdict,
            Verdict::Slower
        );
    }

    #[test]
    fn a_baseline_is_a_results_file_or_a_folder_holding_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("no baseline results"));
        crate::results::append_records(dir.path(), &[record("rust", &[1.0])]).unwrap();
        assert_eq!(load(dir.path()).unwrap().len(), 1);
        assert_eq!(load(&results_path(dir.path())).unwrap().len(), 1);
    }
}
