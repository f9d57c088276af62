//! The performance regression check, built to survive noisy machines.
//!
//! Absolute times move 10-40% between runs on shared machines, so a gate on
//! times alone would either cry wolf or sleep. The check compares a run's
//! records with a committed [`Baseline`] three ways:
//! - **work**, exactly: our k-means's iterations and, pass by pass, the rows
//!   it read and the distances it computed (in f64 and in f32), and its
//!   inertia to 1e-9. These do not depend on the machine's mood; a change is
//!   a regression or a deliberate change that updates the baseline in the
//!   same commit. Work is kept per kernel (AVX-512, AVX2, portable).
//! - **ratios** measured in the same run (fastest fits): ours over
//!   `rust-plain` and over scikit-learn, each above a minimum (a margin below
//!   the ratio measured when the baseline was made).
//! - **time over the machine's floor** (both measured in the same run) below
//!   a ceiling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kmeans::Pass;
use crate::results::{Record, Status};

/// Our contender, whose work is compared.
const OURS: &str = "rust";

/// The contenders our speed-up is checked against.
const RATIO_OVER: [&str; 2] = ["rust-plain", "sklearn"];

/// Relative tolerance of the inertia comparison.
pub const INERTIA_TOLERANCE: f64 = 1e-9;

/// Our work on one bench, on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkEntry {
    /// `kmeans/10000x50/k8/rust`.
    pub bench: String,
    /// `avx512`, `avx2` or `portable`.
    pub kernel: String,
    pub n_iter: usize,
    pub pass_distances: Vec<u64>,
    pub pass_f32_distances: Vec<u64>,
    pub pass_rows: Vec<u64>,
    pub inertia: f64,
}

/// Our speed-up over one contender on one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioEntry {
    /// `kmeans/10000x50/k8`.
    pub scenario: String,
    /// The contender ours is compared with.
    pub over: String,
    /// The ratio measured when the baseline was made.
    pub measured: f64,
    /// The least ratio that passes.
    pub minimum: f64,
}

/// Our time over the floor on one bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorEntry {
    pub bench: String,
    /// Time / floor measured when the baseline was made.
    pub measured: f64,
    /// The most that passes.
    pub ceiling: f64,
}

/// What a run is checked against (`benches/baseline/regressions.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// How the baseline was made, for the reader of the file.
    pub note: String,
    pub work: Vec<WorkEntry>,
    pub ratios: Vec<RatioEntry>,
    pub floors: Vec<FloorEntry>,
}

/// One line of the check's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was checked: `work kmeans/10000x50/k8/rust (avx512)`.
    pub what: String,
    pub expected: String,
    pub got: String,
    pub passed: bool,
}

/// The latest `ok` record of each bench.
fn latest(records: &[Record]) -> BTreeMap<String, &Record> {
    let mut by_bench = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        by_bench.insert(
            crate::suite::bench_id(&r.family, r.scenario, &r.contender),
            r,
        );
    }
    by_bench
}

fn kernel(r: &Record) -> String {
    r.environment
        .get("rust.kernel")
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

fn work_entry(bench: &str, r: &Record) -> Option<WorkEntry> {
    let passes: &Vec<Pass> = r.work.0.as_ref()?;
    Some(WorkEntry {
        bench: bench.to_string(),
        kernel: kernel(r),
        n_iter: r.n_iter?,
        pass_distances: passes.iter().map(|p| p.distances).collect(),
        pass_f32_distances: passes.iter().map(|p| p.f32_distances).collect(),
        pass_rows: passes.iter().map(|p| p.rows).collect(),
        inertia: r.inertia?,
    })
}

/// Our fastest fit over `over`'s on `ours`'s scenario. The fastest, not the
/// median: on a shared machine a neighbour only ever adds time, so the
/// fastest fit of each is the steadiest figure of what the code can do.
fn ratio(by_bench: &BTreeMap<String, &Record>, ours: &Record, over: &str) -> Option<f64> {
    let other = by_bench.get(&crate::suite::bench_id(&ours.family, ours.scenario, over))?;
    Some(other.min_seconds()? / ours.min_seconds()?)
}

/// Our fastest fit over the least time its work can take.
fn time_over_floor(r: &Record) -> Option<f64> {
    Some(r.min_seconds()? / r.floor_seconds()?)
}

impl Baseline {
    /// Adds a run's records: our work on its kernel (replacing that
    /// kernel's entry, keeping the others); unless `work_only`, ratios and
    /// floors, each merged with an entry already there as the least ratio
    /// and the greatest time / floor of the runs given (a baseline is made
    /// from several runs, so one lucky run does not set the bar), with the
    /// minimum `margin` times the ratio and the ceiling `headroom` times
    /// the figure.
    pub fn update(
        mut self,
        records: &[Record],
        margin: f64,
        headroom: f64,
        work_only: bool,
    ) -> Baseline {
        let by_bench = latest(records);
        for (bench, r) in by_bench.iter().filter(|(_, r)| r.contender == OURS) {
            if let Some(entry) = work_entry(bench, r) {
                self.work
                    .retain(|w| !(w.bench == entry.bench && w.kernel == entry.kernel));
                self.work.push(entry);
            }
            if work_only {
                continue;
            }
            let scenario = r.scenario_id();
            for over in RATIO_OVER {
                if let Some(now) = ratio(&by_bench, r, over) {
                    let same = |e: &RatioEntry| e.scenario == scenario && e.over == over;
                    let measured = self
                        .ratios
                        .iter()
                        .find(|e| same(e))
                        .map_or(now, |e| e.measured.min(now));
                    self.ratios.retain(|e| !same(e));
                    self.ratios.push(RatioEntry {
                        scenario: scenario.clone(),
                        over: over.to_string(),
                        measured,
                        minimum: measured * margin,
                    });
                }
            }
            if let Some(now) = time_over_floor(r) {
                let measured = self
                    .floors
                    .iter()
                    .find(|f| f.bench == *bench)
                    .map_or(now, |f| f.measured.max(now));
                self.floors.retain(|f| f.bench != *bench);
                self.floors.push(FloorEntry {
                    bench: bench.clone(),
                    measured,
                    ceiling: measured * headroom,
                });
            }
        }
        self.work
            .sort_by(|a, b| (&a.bench, &a.kernel).cmp(&(&b.bench, &b.kernel)));
        self.ratios
            .sort_by(|a, b| (&a.scenario, &a.over).cmp(&(&b.scenario, &b.over)));
        self.floors.sort_by(|a, b| a.bench.cmp(&b.bench));
        self
    }

    /// Checks a run's records: every entry of the baseline gives a finding,
    /// and one the run did not measure fails (a check that skips is no
    /// check). Work is held to the entry of the run's kernel, else (a
    /// machine with a kernel the baseline was not made on) to another
    /// kernel's, which the finding names.
    pub fn check(&self, records: &[Record]) -> Vec<Finding> {
        let by_bench = latest(records);
        let mut findings = Vec::new();
        let missing = |what: String, expected: String| Finding {
            what,
            expected,
            got: "not measured in this run".into(),
            passed: false,
        };
        // Work is kept per kernel; the kernels are built to agree (the same
        // bits, the same bound tests), so a run on a kernel the baseline
        // lacks is compared with another kernel's entry, and says so.
        for (bench, r) in by_bench.iter().filter(|(_, r)| r.contender == OURS) {
            let own = kernel(r);
            let entries: Vec<&WorkEntry> = self.work.iter().filter(|w| w.bench == *bench).collect();
            let Some(expected) = entries
                .iter()
                .find(|w| w.kernel == own)
                .or_else(|| entries.first())
            else {
                continue;
            };
            let mut what = format!("work {bench} ({own})");
            if expected.kernel != own {
                what = format!("work {bench} ({own}, against {}'s entry)", expected.kernel);
            }
            findings.push(match work_entry(bench, r) {
                Some(got) => compare_work(what, expected, &got),
                None => missing(what, "its work per pass".into()),
            });
        }
        let ran: std::collections::BTreeSet<&str> = by_bench
            .iter()
            .filter(|(_, r)| r.contender == OURS)
            .map(|(b, _)| b.as_str())
            .collect();
        let mut benches: Vec<&str> = self.work.iter().map(|w| w.bench.as_str()).collect();
        benches.dedup();
        for bench in benches.into_iter().filter(|b| !ran.contains(b)) {
            findings.push(missing(format!("work {bench}"), "our work on it".into()));
        }
        for e in &self.ratios {
            let what = format!("{} ours over {}", e.scenario, e.over);
            let expected = format!(">= {:.2}x (measured {:.2}x)", e.minimum, e.measured);
            let ours = by_bench.get(&format!("{}/{OURS}", e.scenario));
            match ours.and_then(|r| ratio(&by_bench, r, &e.over)) {
                Some(v) => findings.push(Finding {
                    what,
                    expected,
                    got: format!("{v:.2}x"),
                    passed: v >= e.minimum,
                }),
                None => findings.push(missing(what, expected)),
            }
        }
        for f in &self.floors {
            let what = format!("{} time / floor", f.bench);
            let expected = format!("<= {:.2} (measured {:.2})", f.ceiling, f.measured);
            match by_bench.get(&f.bench).and_then(|r| time_over_floor(r)) {
                Some(v) => findings.push(Finding {
                    what,
                    expected,
                    got: format!("{v:.2}"),
                    passed: v <= f.ceiling,
                }),
                None => findings.push(missing(what, expected)),
            }
        }
        findings
    }
}

/// Exact work, inertia within [`INERTIA_TOLERANCE`].
fn compare_work(what: String, expected: &WorkEntry, got: &WorkEntry) -> Finding {
    let mut differences = Vec::new();
    if got.n_iter != expected.n_iter {
        differences.push(format!(
            "{} iterations, not {}",
            got.n_iter, expected.n_iter
        ));
    }
    if got.pass_rows.len() != expected.pass_rows.len() {
        differences.push(format!(
            "{} passes, not {}",
            got.pass_rows.len(),
            expected.pass_rows.len()
        ));
    }
    for (name, a, b) in [
        ("rows read", &got.pass_rows, &expected.pass_rows),
        ("distances", &got.pass_distances, &expected.pass_distances),
        (
            "f32 distances",
            &got.pass_f32_distances,
            &expected.pass_f32_distances,
        ),
    ] {
        let (sum_a, sum_b): (u64, u64) = (a.iter().sum(), b.iter().sum());
        if a != b {
            let first = a.iter().zip(b).position(|(x, y)| x != y);
            differences.push(match first {
                Some(i) => format!(
                    "{name} differ from pass {} ({} in all, not {sum_b})",
                    i + 1,
                    sum_a
                ),
                None => format!("{name}: {sum_a} in all, not {sum_b}"),
            });
        }
    }
    let gap =
        (got.inertia - expected.inertia).abs() / expected.inertia.abs().max(f64::MIN_POSITIVE);
    if gap.is_nan() || gap > INERTIA_TOLERANCE {
        differences.push(format!(
            "inertia {:.12e}, not {:.12e} ({gap:.1e} apart)",
            got.inertia, expected.inertia
        ));
    }
    Finding {
        what,
        expected: format!(
            "{} iterations, {} passes, {} rows read",
            expected.n_iter,
            expected.pass_rows.len(),
            expected.pass_rows.iter().sum::<u64>()
        ),
        got: if differences.is_empty() {
            "the same".into()
        } else {
            differences.join("; ")
        },
        passed: differences.is_empty(),
    }
}

/// The findings as a table, failures first marked.
pub fn table(findings: &[Finding]) -> String {
    let width = |f: fn(&Finding) -> &str| findings.iter().map(|x| f(x).len()).max().unwrap_or(0);
    let (w1, w2) = (width(|f| &f.what), width(|f| &f.expected));
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:<6} {:<w1$}  {:<w2$}  {}\n",
            if f.passed { "ok" } else { "FAIL" },
            f.what,
            f.expected,
            f.got
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::bare_record;
    use crate::results::Passes;

    fn record(contender: &str, seconds: f64) -> Record {
        let mut r = bare_record(contender, (10000, 50, 8), &[seconds; 5]);
        r.n_iter = Some(3);
        r.inertia = Some(5.0e5);
        r.environment.insert("rust.kernel".into(), "avx512".into());
        r.environment
            .insert("floor.fma_peak_flops".into(), "1e11".into());
        r.environment
            .insert("floor.read_bytes_per_second".into(), "4e10".into());
        if contender == OURS {
            let pass = |distances, rows| Pass {
                distances,
                f32_distances: 0,
                rows,
            };
            r.work = Passes(Some(vec![pass(80_000, 10_000), pass(5_000, 400)]));
        }
        r
    }

    fn run() -> Vec<Record> {
        vec![
            record("rust", 0.001),
            record("rust-plain", 0.003),
            record("sklearn", 0.02),
        ]
    }

    #[test]
    fn a_run_passes_against_its_own_baseline_and_fails_when_doctored() {
        let baseline = Baseline::default().update(&run(), 0.6, 2.5, false);
        assert_eq!(baseline.work.len(), 1);
        assert_eq!(baseline.ratios.len(), 2);
        assert_eq!(baseline.floors.len(), 1);
        assert!(
            baseline.check(&run()).iter().all(|f| f.passed),
            "{}",
            table(&baseline.check(&run()))
        );

        let failed = |records: Vec<Record>| -> Vec<String> {
            baseline
                .check(&records)
                .into_iter()
                .filter(|f| !f.passed)
                .map(|f| f.what)
                .collect()
        };
        // Our times tripled: both ratios and the floor fail.
        let mut slow = run();
        slow[0].sample_seconds = vec![0.003; 5];
        assert_eq!(failed(slow).len(), 3);
        // One more pass.
        let mut longer = run();
        if let Some(p) = longer[0].work.0.as_mut() {
            p.push(Pass {
                distances: 10,
                f32_distances: 0,
                rows: 10,
            });
        }
        assert_eq!(
            failed(longer),
            vec!["work kmeans/10000x50/k8/rust (avx512)"]
        );
        // Inertia off by 1e-6.
        let mut off = run();
        off[0].inertia = Some(5.0e5 * (1.0 + 1e-6));
        assert_eq!(failed(off), vec!["work kmeans/10000x50/k8/rust (avx512)"]);
        // A bench the run did not measure fails.
        assert_eq!(failed(run()[1..].to_vec()).len(), 4);
        // A kernel the baseline lacks is held to another kernel's work.
        let mut other = run();
        other[0]
            .environment
            .insert("rust.kernel".into(), "avx2".into());
        let findings = baseline.check(&other);
        assert!(findings.iter().all(|f| f.passed));
        assert!(findings
            .iter()
            .any(|f| f.what.contains("(avx2, against avx512's entry)")));
        if let Some(p) = other[0].work.0.as_mut() {
            p[1].rows += 1;
        }
        assert_eq!(failed(other).len(), 1);
    }

    #[test]
    fn updating_keeps_other_kernels_and_the_least_ratio_of_the_runs() {
        let first = Baseline::default().update(&run(), 0.6, 2.5, false);
        let mut avx2 = run();
        avx2[0]
            .environment
            .insert("rust.kernel".into(), "avx2".into());
        // A run on another kernel, for its work only: ratios untouched.
        avx2[0].sample_seconds = vec![0.002; 5];
        let both = first.clone().update(&avx2, 0.6, 2.5, true);
        assert_eq!(both.work.len(), 2);
        assert_eq!(both.ratios, first.ratios);
        // A second run of the same kernel where ours was slower: its lower
        // ratios and higher time / floor set the bar.
        let mut slower = run();
        slower[0].sample_seconds = vec![0.002; 5];
        let merged = first.clone().update(&slower, 0.6, 2.5, false);
        assert_eq!(merged.work.len(), 1);
        let plain = merged
            .ratios
            .iter()
            .find(|e| e.over == "rust-plain")
            .unwrap();
        assert!((plain.measured - 1.5).abs() < 1e-12 && (plain.minimum - 0.9).abs() < 1e-12);
        assert!((merged.floors[0].measured - 2.0 * first.floors[0].measured).abs() < 1e-9);
    }
}
