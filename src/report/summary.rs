//! The headline numbers: per contender, speed-ups, worst inertia gap and
//! memory at the largest scenario.

use crate::contenders::{names, Role, Runtime, REGISTRY};
use crate::data::Scenario;
use crate::results::{Check, Record, Status};
use crate::suite::SWEEP;

/// One contender's headline numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ContenderSummary {
    /// The contender.
    pub contender: String,
    /// Geometric mean of `baseline time / its time` over the sweep scenarios
    /// both ran, with the number of scenarios.
    pub speedup_over_baseline: Option<(f64, usize)>,
    /// The same over the fastest Python peer of each scenario.
    pub speedup_over_python_peer: Option<(f64, usize)>,
    /// The largest `rel_inertia_diff` it had, and where.
    pub worst_inertia_gap: Option<(f64, String)>,
    /// Scenarios whose inertia check failed.
    pub failed_checks: usize,
    /// Scenarios skipped or failed.
    pub not_run: usize,
    /// Its largest sweep scenario that ran, with the memory figures there.
    pub largest: Option<(Scenario, Record)>,
}

/// What a speed-up is quoted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// The registry's textbook baseline.
    Baseline,
    /// The fastest Python peer of each scenario (whichever it is there).
    FastestPythonPeer,
}

impl Comparator {
    /// Both, in report order.
    pub const ALL: [Comparator; 2] = [Comparator::Baseline, Comparator::FastestPythonPeer];

    /// Its name in titles and file names.
    pub fn label(self) -> &'static str {
        match self {
            Comparator::Baseline => REGISTRY
                .iter()
                .find(|e| e.role == Role::Baseline)
                .map_or("baseline", |e| e.name),
            Comparator::FastestPythonPeer => "the fastest Python peer",
        }
    }

    /// Its short name in file names.
    pub fn slug(self) -> &'static str {
        match self {
            Comparator::Baseline => self.label(),
            Comparator::FastestPythonPeer => "python-peer",
        }
    }

    /// Whether contender `name` counts as this comparator.
    fn includes(self, name: &str) -> bool {
        REGISTRY.iter().any(|e| {
            e.name == name
                && match self {
                    Comparator::Baseline => e.role == Role::Baseline,
                    Comparator::FastestPythonPeer => {
                        e.role == Role::Peer && e.runtime() == Runtime::Python
                    }
                }
        })
    }

    /// Its median fit time on `r`'s scenario (the fastest such contender's),
    /// from the records that ran.
    pub fn seconds(self, records: &[Record], r: &Record) -> Option<f64> {
        records
            .iter()
            .filter(|b| {
                b.family == r.family
                    && b.scenario == r.scenario
                    && b.status == Status::Ok
                    && self.includes(&b.contender)
            })
            .filter_map(Record::median_seconds)
            .reduce(f64::min)
    }
}

fn geometric_mean_speedup(
    records: &[Record],
    name: &str,
    comparator: Comparator,
) -> Option<(f64, usize)> {
    geometric_mean(
        records
            .iter()
            .filter(|r| r.family == SWEEP && r.contender == name && r.status == Status::Ok)
            .filter_map(|r| Some(comparator.seconds(records, r)? / r.median_seconds()?)),
    )
}

/// The geometric mean of the positive, finite values, with how many there
/// were (`None` without one): the mean of ratios, so 2x and 0.5x cancel.
pub(super) fn geometric_mean(values: impl Iterator<Item = f64>) -> Option<(f64, usize)> {
    let logs: Vec<f64> = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::ln)
        .collect();
    (!logs.is_empty()).then(|| {
        (
            (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
            logs.len(),
        )
    })
}

/// The headline numbers of every contender present, in report order.
pub fn summarise(records: &[Record]) -> Vec<ContenderSummary> {
    names()
        .into_iter()
        .filter(|n| records.iter().any(|r| r.contender == *n))
        .map(|name| {
            let own: Vec<&Record> = records.iter().filter(|r| r.contender == name).collect();
            let worst_inertia_gap = own
                .iter()
                .filter_map(|r| Some((r.rel_inertia_diff?, r.scenario_id())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let largest = own
                .iter()
                .filter(|r| r.family == SWEEP && r.status == Status::Ok)
                .max_by_key(|r| (r.scenario.n, r.scenario.d, r.scenario.k))
                .map(|r| (r.scenario, (*r).clone()));
            ContenderSummary {
                contender: name.to_string(),
                speedup_over_baseline: geometric_mean_speedup(records, name, Comparator::Baseline),
                speedup_over_python_peer: geometric_mean_speedup(
                    records,
                    name,
                    Comparator::FastestPythonPeer,
                ),
                worst_inertia_gap,
                failed_checks: own
                    .iter()
                    .filter(|r| r.inertia_check == Some(Check::Fail))
                    .count(),
                not_run: own.iter().filter(|r| r.status != Status::Ok).count(),
                largest,
            }
        })
        .collect()
}
