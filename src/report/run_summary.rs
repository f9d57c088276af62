//! The end-of-run summary: per scenario the median times, our speed-up over
//! the fastest Python peer and the fastest Rust peer, and the checks; printed
//! at the end of a bench run and written as `summary.json` and `summary.md`.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use super::summary::geometric_mean;
use crate::contenders::{self, Role, Runtime};
use crate::error::Result;
use crate::results::{Check, Record, Status};

/// One contender on one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ContenderLine {
    /// The contender.
    pub contender: String,
    /// `ok`, `skipped` or `failed`.
    pub status: Status,
    /// Median, least and most of its timed fits.
    pub median_seconds: Option<f64>,
    pub min_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
    /// Its iterations.
    pub iterations: Option<usize>,
    /// The inertia check.
    pub check: Option<Check>,
    /// Why it was skipped or failed, or by how much the check failed.
    pub reason: Option<String>,
}

/// One scenario of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioLine {
    /// `kmeans/100000x50/k8`.
    pub scenario: String,
    /// Every contender that ran or tried to.
    pub contenders: Vec<ContenderLine>,
    /// Our median time over the fastest Python peer's, with that peer.
    pub over_python_peer: Option<(f64, String)>,
    /// The same over the fastest Rust peer.
    pub over_rust_peer: Option<(f64, String)>,
    /// Contenders whose inertia check failed, or that failed to run.
    pub failures: Vec<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's id (see [`crate::run::RunInfo`]).
    pub run_id: String,
    /// Its preset.
    pub preset: String,
    /// Threads (of the families that use the run's).
    pub threads: usize,
    /// The machine's CPU.
    pub machine: String,
    /// Wall-clock seconds of the run.
    pub elapsed_seconds: f64,
    /// Records made.
    pub records: usize,
    /// Geometric means of the scenarios' ratios, with how many scenarios.
    pub geomean_over_python_peer: Option<(f64, usize)>,
    pub geomean_over_rust_peer: Option<(f64, usize)>,
    /// Every scenario, in run order.
    pub scenarios: Vec<ScenarioLine>,
}

/// The name of our contender.
fn ours() -> &'static str {
    contenders::REGISTRY
        .iter()
        .find(|e| e.role == Role::Ours)
        .map_or("rust", |e| e.name)
}

/// Our median over the fastest peer's of `runtime` on `ours`'s scenario.
fn speedup(records: &[Record], ours: &Record, runtime: Runtime) -> Option<(f64, String)> {
    let mine = ours.median_seconds()?;
    records
        .iter()
        .filter(|r| r.status == Status::Ok && r.inertia_check != Some(Check::Fail))
        .filter(|r| {
            contenders::entry(&r.contender)
                .is_some_and(|e| e.role == Role::Peer && e.runtime() == runtime)
        })
        .filter_map(|r| Some((r.median_seconds()?, r.contender.clone())))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(peer, name)| (peer / mine, name))
}

impl RunSummary {
    /// The summary of `records` (one run's, in run order).
    pub fn new(
        run_id: &str,
        preset: &str,
        threads: usize,
        elapsed_seconds: f64,
        records: &[Record],
    ) -> Self {
        let mut groups: Vec<(String, Vec<&Record>)> = Vec::new();
        for r in records {
            let id = r.scenario_id();
            match groups.iter_mut().find(|(g, _)| *g == id) {
                Some((_, rs)) => rs.push(r),
                None => groups.push((id, vec![r])),
            }
        }
        let scenarios: Vec<ScenarioLine> = groups
            .into_iter()
            .map(|(scenario, rs)| {
                let all: Vec<Record> = rs.iter().map(|r| (*r).clone()).collect();
                let mine = rs
                    .iter()
                    .find(|r| r.contender == ours() && r.status == Status::Ok);
                let contenders = rs
                    .iter()
                    .map(|r| ContenderLine {
                        contender: r.contender.clone(),
                        status: r.status,
                        median_seconds: r.median_seconds(),
                        min_seconds: r.min_seconds(),
                        max_seconds: r.max_seconds(),
                        iterations: r.n_iter,
                        check: r.inertia_check,
                        reason: match (r.status, r.inertia_check) {
                            (Status::Ok, Some(Check::Fail)) => Some(format!(
                                "inertia {:.2e} above the best (tolerance {:.0e})",
                                r.rel_inertia_diff.unwrap_or(f64::NAN),
                                r.inertia_tolerance.unwrap_or(f64::NAN)
                            )),
                            _ => r.reason.clone(),
                        },
                    })
                    .collect();
                let failures = rs
                    .iter()
                    .filter(|r| r.status == Status::Failed || r.inertia_check == Some(Check::Fail))
                    .map(|r| r.contender.clone())
                    .collect();
                ScenarioLine {
                    scenario,
                    contenders,
                    over_python_peer: mine.and_then(|m| speedup(&all, m, Runtime::Python)),
                    over_rust_peer: mine.and_then(|m| speedup(&all, m, Runtime::Rust)),
                    failures,
                }
            })
            .collect();
        let machine = records
            .iter()
            .find_map(|r| r.environment.get("machine.cpu").cloned())
            .unwrap_or_else(|| "unknown".into());
        RunSummary {
            run_id: run_id.into(),
            preset: preset.into(),
            threads,
            machine,
            elapsed_seconds,
            records: records.len(),
            geomean_over_python_peer: geometric_mean(
                scenarios
                    .iter()
                    .filter_map(|s| Some(s.over_python_peer.as_ref()?.0)),
            ),
            geomean_over_rust_peer: geometric_mean(
                scenarios
                    .iter()
                    .filter_map(|s| Some(s.over_rust_peer.as_ref()?.0)),
            ),
            scenarios,
        }
    }

    /// Checks that failed and contenders that failed to run, over the run.
    pub fn failures(&self) -> usize {
        self.scenarios.iter().map(|s| s.failures.len()).sum()
    }

    /// Rows of the table: scenario, ours, fastest Python peer, ratio,
    /// fastest Rust peer, ratio, checks.
    fn rows(&self) -> Vec<[String; 7]> {
        let ours = ours();
        self.scenarios
            .iter()
            .map(|s| {
                let time = |name: &str| {
                    s.contenders
                        .iter()
                        .find(|c| c.contender == name)
                        .and_then(|c| c.median_seconds)
                        .map_or_else(|| "-".into(), format_seconds)
                };
                let peer = |p: &Option<(f64, String)>| match p {
                    Some((ratio, name)) => {
                        (format!("{name} {}", time(name)), format!("{ratio:.1}x"))
                    }
                    None => ("-".into(), "-".into()),
                };
                let (py, py_ratio) = peer(&s.over_python_peer);
                let (rs, rs_ratio) = peer(&s.over_rust_peer);
                let skipped = s
                    .contenders
                    .iter()
                    .filter(|c| c.status == Status::Skipped)
                    .count();
                let mut checks = if s.failures.is_empty() {
                    let ran = s.contenders.iter().filter(|c| c.check.is_some()).count();
                    format!("{ran} passed")
                } else {
                    format!("FAILED: {}", s.failures.join(", "))
                };
                if skipped > 0 {
                    checks.push_str(&format!(", {skipped} skipped"));
                }
                [
                    s.scenario.clone(),
                    time(ours),
                    py,
                    py_ratio,
                    rs,
                    rs_ratio,
                    checks,
                ]
            })
            .collect()
    }

    const HEADER: [&'static str; 7] = [
        "scenario",
        "ours",
        "fastest Python peer",
        "ours x",
        "fastest Rust peer",
        "ours x",
        "checks",
    ];

    /// The closing line: geometric means and failures.
    fn headline(&self) -> String {
        let mean = |m: Option<(f64, usize)>, what: &str| {
            m.map_or_else(String::new, |(v, n)| {
                format!(
                    "; ours {v:.1}x faster than the fastest {what} peer (geometric mean of {n})"
                )
            })
        };
        format!(
            "{} scenario(s), {} record(s) in {}{}{}; {}",
            self.scenarios.len(),
            self.records,
            crate::run::clock(self.elapsed_seconds),
            mean(self.geomean_over_python_peer, "Python"),
            mean(self.geomean_over_rust_peer, "Rust"),
            match self.failures() {
                0 => "every check passed".to_string(),
                n => format!("{n} FAILED (contender or inertia check)"),
            }
        )
    }

    /// The table for the console, columns aligned.
    pub fn console(&self) -> String {
        let rows = self.rows();
        let mut widths = Self::HEADER.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = format!(
            "summary of run {} ({} preset, {} threads)\n",
            self.run_id, self.preset, self.threads
        );
        let line = |cells: Vec<&str>, out: &mut String| {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 || i == 6 {
                    let _ = write!(out, "{cell:<w$}  ");
                } else {
                    let _ = write!(out, "{cell:>w$}  ");
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(Self::HEADER.to_vec(), &mut out);
        for row in &rows {
            line(row.iter().map(String::as_str).collect(), &mut out);
        }
        out.push_str(&self.headline());
        out.push('\n');
        out
    }

    /// The same as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Run {}\n\n{} preset, {} threads, {}\n\n{}\n\n| {} |\n|{}\n",
            self.run_id,
            self.preset,
            self.threads,
            self.machine,
            self.headline(),
            Self::HEADER.join(" | "),
            "---|".repeat(Self::HEADER.len())
        );
        for row in self.rows() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let reasons: Vec<String> = self
            .scenarios
            .iter()
            .flat_map(|s| {
                s.contenders.iter().filter_map(move |c| {
                    Some(format!(
                        "- {}/{}: {}",
                        s.scenario,
                        c.contender,
                        c.reason.as_ref()?
                    ))
                })
            })
            .collect();
        if !reasons.is_empty() {
            let _ = write!(
                out,
                "\nSkipped, failed or flagged:\n\n{}\n",
                reasons.join("\n")
            );
        }
        out
    }

    /// Writes `summary.json` and `summary.md` in `dir` (each replaced whole).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|error| crate::Error::Results {
            path: dir.join("summary.json"),
            error,
        })?;
        crate::data::write_atomic_bytes(&dir.join("summary.json"), json.as_bytes())?;
        crate::data::write_atomic_bytes(&dir.join("summary.md"), self.markdown().as_bytes())?;
        Ok(())
    }
}

/// `46 us`, `2.9 ms`, `1.42 s`: never `0.0000`.
pub fn format_seconds(s: f64) -> String {
    let three = |v: f64, unit: &str| {
        if v >= 100.0 {
            format!("{v:.0} {unit}")
        } else if v >= 10.0 {
            format!("{v:.1} {unit}")
        } else {
            format!("{v:.2} {unit}")
        }
    };
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        three(s, "s")
    } else if s >= 1e-3 {
        three(s * 1e3, "ms")
    } else {
        three(s * 1e6, "us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::bare_record;

    fn record(contender: &str, seconds: f64, check: Check) -> Record {
        let fits = [seconds, seconds * 2.0, seconds / 2.0];
        let mut r = bare_record(contender, (1000, 2, 2), &fits);
        r.inertia_check = Some(check);
        r
    }

    #[test]
    fn the_summary_gives_ratios_over_the_fastest_peers_and_the_failures() {
        let records = vec![
            record("rust", 0.001, Check::Pass),
            record("linfa", 0.004, Check::Pass),
            record("sklearn", 0.010, Check::Pass),
            record("sklearnex", 0.005, Check::Pass),
            // The fastest, but wrong: not a peer to beat.
            record("faiss", 0.002, Check::Fail),
        ];
        let s = RunSummary::new("run-1", "quick", 2, 65.0, &records);
        let line = &s.scenarios[0];
        assert_eq!(line.over_python_peer, Some((5.0, "sklearnex".into())));
        assert_eq!(line.over_rust_peer, Some((4.0, "linfa".into())));
        assert_eq!(line.failures, vec!["faiss".to_string()]);
        let (mean, count) = s.geomean_over_python_peer.unwrap();
        assert!(
            (mean - 5.0).abs() < 1e-12 && count == 1,
            "{mean} over {count}"
        );
        let text = s.console();
        assert!(
            text.contains("sklearnex 5.00 ms") && text.contains("5.0x"),
            "{text}"
        );
        assert!(
            text.contains("FAILED: faiss") && text.contains("1 FAILED"),
            "{text}"
        );
        assert!(text.contains("1:05"), "{text}");
        let md = s.markdown();
        assert!(
            md.starts_with("# Run run-1") && md.contains("| kmeans/1000x2/k2 | 1.00 ms |"),
            "{md}"
        );
        assert!(md.contains("kmeans/1000x2/k2/faiss: inertia"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        s.write(dir.path()).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(json["run_id"], "run-1");
        assert_eq!(json["scenarios"][0]["over_python_peer"][0], 5.0);
    }

    #[test]
    fn times_read_in_their_unit() {
        assert_eq!(format_seconds(4.6e-5), "46.0 us");
        assert_eq!(format_seconds(0.0029), "2.90 ms");
        assert_eq!(format_seconds(1.42), "1.42 s");
        assert_eq!(format_seconds(182.0), "182 s");
    }
}
