//! The benchmark suite's matrix and id scheme: which scenarios run, with
//! which blobs, under which Criterion ids.
//!
//! Ids are `kmeans/{n}x{d}/k{k}/{impl}` for the study's sweep (unit-spread
//! blobs) and `kmeans-overlap/{n}x{d}/k{k}/{impl}` for overlapping blobs that
//! need tens of iterations; the group id is the id less its contender.

use crate::data::{BlobSpec, Scenario};

/// The unit-spread family: the study's sweep.
pub const SWEEP: &str = "kmeans";
/// The overlapping family.
pub const OVERLAP: &str = "kmeans-overlap";
/// Samples in every overlapping scenario.
pub const OVERLAP_N: usize = 100_000;

/// Overlap spread per feature count: `std = 1.5 * sqrt(d)`. Centres are
/// uniform in [-10, 10]^d, so two centres lie about `8 * sqrt(d)` apart and
/// their separation grows with `sqrt(d)`; scaling the spread the same way
/// keeps the overlap alike across d (measured: 5 to 253 Lloyd iterations).
pub fn overlap_std(d: usize) -> f64 {
    1.5 * (d as f64).sqrt()
}

/// Every scenario of the suite with its family: the 48 of the sweep, then
/// the 12 overlapping ones (n = 100000, every d and k of the sweep).
pub fn scenarios() -> Vec<(&'static str, BlobSpec)> {
    let mut all: Vec<(&str, BlobSpec)> = Scenario::sweep()
        .into_iter()
        .map(|s| (SWEEP, BlobSpec::new(s)))
        .collect();
    for d in [2, 10, 50, 100] {
        for k in [2, 8, 30] {
            let scenario = Scenario { n: OVERLAP_N, d, k };
            all.push((OVERLAP, BlobSpec::new(scenario).with_std(overlap_std(d))));
        }
    }
    all
}

/// The Criterion group of a scenario: `{family}/{n}x{d}/k{k}`.
pub fn group_id(family: &str, scenario: Scenario) -> String {
    format!("{family}/{}", scenario.id())
}

/// The Criterion id of one contender on one scenario.
pub fn bench_id(family: &str, scenario: Scenario, contender: &str) -> String {
    format!("{}/{contender}", group_id(family, scenario))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impls::NAMES;
    use std::collections::BTreeSet;

    #[test]
    fn the_matrix_is_the_sweep_plus_the_overlapping_family() {
        let all = scenarios();
        let sweep: Vec<_> = all.iter().filter(|(f, _)| *f == SWEEP).collect();
        let overlap: Vec<_> = all.iter().filter(|(f, _)| *f == OVERLAP).collect();
        assert_eq!((sweep.len(), overlap.len(), all.len()), (48, 12, 60));
        let shapes: BTreeSet<(usize, usize, usize)> = sweep
            .iter()
            .map(|(_, s)| (s.scenario.n, s.scenario.d, s.scenario.k))
            .collect();
        for n in [1_000, 10_000, 100_000, 1_000_000] {
            for d in [2, 10, 50, 100] {
                for k in [2, 8, 30] {
                    assert!(shapes.contains(&(n, d, k)), "{n}x{d}/k{k}");
                }
            }
        }
        assert!(sweep.iter().all(|(_, s)| s.std == 1.0));
        for (_, spec) in overlap {
            assert_eq!(spec.scenario.n, OVERLAP_N);
            assert_eq!(spec.std, overlap_std(spec.scenario.d));
        }
    }

    #[test]
    fn ids_follow_the_scheme_and_are_unique() {
        let pattern = regex::Regex::new(r"^kmeans(-overlap)?/\d+x\d+/k\d+/[a-z-]+$").unwrap();
        let ids: Vec<String> = scenarios()
            .into_iter()
            .flat_map(|(family, spec)| {
                NAMES
                    .iter()
                    .map(move |name| bench_id(family, spec.scenario, name))
            })
            .collect();
        assert_eq!(ids.len(), 60 * NAMES.len());
        assert!(ids.iter().all(|id| pattern.is_match(id)), "{ids:?}");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
        assert!(ids.contains(&"kmeans/100000x50/k8/rust".to_string()));
        assert!(ids.contains(&"kmeans-overlap/100000x2/k30/sklearn".to_string()));
    }
}
