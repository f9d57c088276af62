//! The headline numbers: per contender, speed-ups, worst inertia gap and
//! memory at the largest scenario.

use crate::data::Scenario;
use crate::impls::NAMES;
use crate::results::{Check, Record, Status};

/// One contender's headline numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ContenderSummary {
    /// The contender.
    pub contender: String,
    /// Geometric mean of `numpy time / its time` over the sweep scenarios
    /// both ran, with the number of scenarios.
    pub speedup_over_numpy: Option<(f64, usize)>,
    /// The same over scikit-learn (lloyd).
    pub speedup_over_sklearn: Option<(f64, usize)>,
    /// The largest `rel_inertia_diff` it had, and where.
    pub worst_inertia_gap: Option<(f64, String)>,
    /// Scenarios whose inertia check failed.
    pub failed_checks: usize,
    /// Scenarios skipped or failed.
    pub not_run: usize,
    /// Its largest sweep scenario that ran, with the memory figures there.
    pub largest: Option<(Scenario, Record)>,
}

fn geometric_mean_speedup(records: &[Record], name: &str, baseline: &str) -> Option<(f64, usize)> {
    let ratios: Vec<f64> = records
        .iter()
        .filter(|r| r.family == "kmeans" && r.contender == name && r.status == Status::Ok)
        .filter_map(|r| {
            let base = records.iter().find(|b| {
                b.family == r.family
                    && b.scenario == r.scenario
                    && b.contender == baseline
                    && b.status == Status::Ok
            })?;
            Some(base.median_seconds()? / r.median_seconds()?)
        })
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    (!ratios.is_empty()).then(|| {
        let mean_log = ratios.iter().map(|v| v.ln()).sum::<f64>() / ratios.len() as f64;
        (mean_log.exp(), ratios.len())
    })
}

/// The headline numbers of every contender present, in report order.
pub fn summarise(records: &[Record]) -> Vec<ContenderSummary> {
    NAMES
        .iter()
        .filter(|n| records.iter().any(|r| r.contender == **n))
        .map(|&name| {
            let own: Vec<&Record> = records.iter().filter(|r| r.contender == name).collect();
            let worst_inertia_gap = own
                .iter()
                .filter_map(|r| Some((r.rel_inertia_diff?, r.scenario_id())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let largest = own
                .iter()
                .filter(|r| r.family == "kmeans" && r.status == Status::Ok)
                .max_by_key(|r| (r.scenario.n, r.scenario.d, r.scenario.k))
                .map(|r| (r.scenario, (*r).clone()));
            ContenderSummary {
                contender: name.to_string(),
                speedup_over_numpy: geometric_mean_speedup(records, name, "numpy"),
                speedup_over_sklearn: geometric_mean_speedup(records, name, "sklearn"),
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
