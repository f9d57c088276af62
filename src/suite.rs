//! The benchmark suite's families and id scheme: which scenarios run, with
//! which blobs, which contenders, under which Criterion ids.
//!
//! Ids are `{family}/{n}x{d}/k{k}/{impl}`; the group id is the id less its
//! contender. A new family is one entry of [`FAMILIES`].

use std::time::Duration;

use crate::contenders::{Dtype, Entry, REGISTRY};
use crate::data::{BlobSpec, Scenario, Start};

/// A family of scenarios: its id prefix, its scenarios (with their data
/// settings), how they start, the threads and the contenders that run in it.
pub struct Family {
    /// The id prefix.
    pub id: &'static str,
    /// What it shows, in a sentence (for `--list` readers and the report).
    pub about: &'static str,
    /// Its scenarios, in run order.
    pub scenarios: fn() -> Vec<BlobSpec>,
    /// How the shared initial centroids are chosen.
    pub start: Start,
    /// Threads for every contender; `None`: the run's (`KMEANS_BENCH_THREADS`).
    pub threads: Option<usize>,
    /// The float type the data is handed over in.
    pub dtype: Dtype,
    /// The longest one fit may take: a contender whose warm-up fit takes
    /// longer is recorded as skipped, with the time of that fit.
    pub fit_budget: Option<Duration>,
    /// Whether a contender runs in it.
    pub runs: fn(&Entry) -> bool,
}

impl Family {
    /// The contenders that run in this family, in registry order.
    pub fn contenders(&self) -> impl Iterator<Item = &'static Entry> + '_ {
        REGISTRY.iter().filter(|e| (self.runs)(e))
    }
}

/// Every family, in run order.
pub static FAMILIES: &[Family] = &[
    Family {
        id: "kmeans",
        about: "the study's sweep: unit-spread blobs, n in 1e3..1e6, d in 2..100, k in 2..30",
        scenarios: sweep,
        start: Start::KMeansPlusPlus,
        threads: None,
        dtype: Dtype::F64,
        fit_budget: None,
        runs: |_| true,
    },
    Family {
        id: "kmeans-overlap",
        about: "overlapping blobs (spread 1.5 sqrt(d)) at n = 100000 that need tens of iterations",
        scenarios: overlapping,
        start: Start::KMeansPlusPlus,
        threads: None,
        dtype: Dtype::F64,
        fit_budget: None,
        runs: |_| true,
    },
    Family {
        id: "kmeans-t1",
        about:
            "one thread, on sweep scenarios from small to large, few to many features and clusters",
        scenarios: one_thread,
        start: Start::KMeansPlusPlus,
        threads: Some(1),
        dtype: Dtype::F64,
        fit_budget: None,
        runs: |_| true,
    },
    Family {
        id: "kmeans-f32",
        about: "float32 data (the sweep's blobs cast once) for every contender that computes in it",
        scenarios: float32,
        start: Start::KMeansPlusPlus,
        threads: None,
        dtype: Dtype::F32,
        fit_budget: None,
        runs: |e| e.dtypes.contains(&Dtype::F32),
    },
    Family {
        id: "kmeans-vq",
        about: "vector quantisation: k = 256 and 1024, overlapping blobs, random rows as the start",
        scenarios: quantisation,
        start: Start::RandomRows,
        threads: None,
        dtype: Dtype::F64,
        fit_budget: Some(Duration::from_secs(VQ_FIT_BUDGET_SECONDS)),
        runs: |_| true,
    },
];

/// The longest one fit of the vector-quantisation family may take.
pub const VQ_FIT_BUDGET_SECONDS: u64 = 60;

/// The sweep family's id, which the report's headline figures are drawn from.
pub const SWEEP: &str = "kmeans";

/// Samples in every overlapping scenario.
pub const OVERLAP_N: usize = 100_000;

/// Overlap spread per feature count: `std = 1.5 * sqrt(d)`. Centres are
/// uniform in [-10, 10]^d, so two centres lie about `8 * sqrt(d)` apart and
/// their separation grows with `sqrt(d)`; scaling the spread the same way
/// keeps the overlap alike across d (5 to 253 Lloyd iterations).
pub fn overlap_std(d: usize) -> f64 {
    1.5 * (d as f64).sqrt()
}

/// The 48 scenarios of the sweep, unit spread.
fn sweep() -> Vec<BlobSpec> {
    Scenario::sweep().into_iter().map(BlobSpec::new).collect()
}

/// The 12 overlapping scenarios: n = 100000, every d and k of the sweep.
fn overlapping() -> Vec<BlobSpec> {
    let mut all = Vec::new();
    for d in [2, 10, 50, 100] {
        for k in [2, 8, 30] {
            let scenario = Scenario { n: OVERLAP_N, d, k };
            all.push(BlobSpec::new(scenario).with_std(overlap_std(d)));
        }
    }
    all
}

/// The one-thread family: the sweep's blobs (so data and starts are shared
/// with it) at 10000 x 10, k = 8 (small, 2 iterations), 100000 x 2, k = 30
/// (few features, many clusters, 239 iterations), 100000 x 50, k = 8 (many
/// features) and 100000 x 100, k = 30 (many of both, 84 iterations).
fn one_thread() -> Vec<BlobSpec> {
    blobs(
        &[
            (10_000, 10, 8),
            (100_000, 2, 30),
            (100_000, 50, 8),
            (100_000, 100, 30),
        ],
        |_| 1.0,
    )
}

/// The float32 family: the sweep's blobs and starts, cast, at 10000 x 10,
/// k = 8, 100000 x 2, k = 30, 100000 x 50, k = 8, 100000 x 100, k = 30 and
/// 1000000 x 100, k = 30 (where reading the data bounds a fit).
fn float32() -> Vec<BlobSpec> {
    blobs(
        &[
            (10_000, 10, 8),
            (100_000, 2, 30),
            (100_000, 50, 8),
            (100_000, 100, 30),
            (1_000_000, 100, 30),
        ],
        |_| 1.0,
    )
}

/// The relative inertia tolerance of exact-Lloyd contenders on float32
/// data: sums of squares rounded to float32's 24 bits differ between
/// implementations that sum in different orders, and a label that flips on
/// such a tie sends a fit down a nearby path.
pub const F32_INERTIA_TOLERANCE: f64 = 1e-4;

/// The inertia tolerance of `contender` in family `family`: its rule's, or
/// float32's where the family hands over float32 and that is looser.
pub fn inertia_tolerance(family: &str, contender: &str) -> f64 {
    let rule = crate::contenders::inertia_tolerance(contender);
    match self::family(family).map(|f| f.dtype) {
        Some(Dtype::F32) => rule.max(F32_INERTIA_TOLERANCE),
        _ => rule,
    }
}

/// The spread of the vector-quantisation blobs: `0.5 sqrt(d)`, so that many
/// centres overlap and a fit takes tens of iterations.
pub fn quantisation_std(d: usize) -> f64 {
    0.5 * (d as f64).sqrt()
}

/// The vector-quantisation family: a small scenario (CI's), then n = 100000
/// with d = 32 and 128, k = 256 and 1024.
fn quantisation() -> Vec<BlobSpec> {
    blobs(
        &[
            (20_000, 32, 256),
            (100_000, 32, 256),
            (100_000, 32, 1024),
            (100_000, 128, 256),
            (100_000, 128, 1024),
        ],
        quantisation_std,
    )
}

/// Blobs of these `(n, d, k)` shapes, spread `std(d)`.
fn blobs(shapes: &[(usize, usize, usize)], std: fn(usize) -> f64) -> Vec<BlobSpec> {
    shapes
        .iter()
        .map(|&(n, d, k)| BlobSpec::new(Scenario { n, d, k }).with_std(std(d)))
        .collect()
}

/// The family called `id`.
pub fn family(id: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.id == id)
}

/// Every scenario of the suite with its family, in run order.
pub fn scenarios() -> Vec<(&'static Family, BlobSpec)> {
    FAMILIES
        .iter()
        .flat_map(|f| (f.scenarios)().into_iter().map(move |spec| (f, spec)))
        .collect()
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
    use std::collections::BTreeSet;

    #[test]
    fn the_matrix_is_the_sweep_plus_its_families() {
        let all = scenarios();
        let of = |id: &str| -> Vec<_> { all.iter().filter(|(f, _)| f.id == id).collect() };
        let (sweep, overlap) = (of(SWEEP), of("kmeans-overlap"));
        let (t1, vq, f32) = (of("kmeans-t1"), of("kmeans-vq"), of("kmeans-f32"));
        assert_eq!(f32.len(), 5);
        for (family, spec) in &f32 {
            assert_eq!(family.dtype, Dtype::F32);
            assert!(sweep.iter().any(|(_, s)| s == spec));
        }
        assert_eq!(
            (sweep.len(), overlap.len(), t1.len(), vq.len(), all.len()),
            (48, 12, 4, 5, 74)
        );
        // One thread shares the sweep's data; quantisation starts from rows.
        for (family, spec) in &t1 {
            assert_eq!(family.threads, Some(1));
            assert!(sweep.iter().any(|(_, s)| s == spec));
        }
        for (family, spec) in &vq {
            assert_eq!(family.start, Start::RandomRows);
            assert!(spec.scenario.k >= 256);
            assert_eq!(spec.std, quantisation_std(spec.scenario.d));
        }
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
        let pattern =
            regex::Regex::new(r"^kmeans(-overlap|-t1|-vq|-f32)?/\d+x\d+/k\d+/[a-z-]+$").unwrap();
        let ids: Vec<String> = scenarios()
            .into_iter()
            .flat_map(|(family, spec)| {
                family
                    .contenders()
                    .map(move |e| bench_id(family.id, spec.scenario, e.name))
            })
            .collect();
        assert_eq!(ids.len(), 74 * REGISTRY.len());
        assert!(ids.iter().all(|id| pattern.is_match(id)), "{ids:?}");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
        assert!(ids.contains(&"kmeans/100000x50/k8/rust".to_string()));
        assert!(ids.contains(&"kmeans-overlap/100000x2/k30/sklearn".to_string()));
        assert!(ids.contains(&"kmeans-t1/100000x100/k30/faiss".to_string()));
        assert!(ids.contains(&"kmeans-vq/100000x128/k1024/sklearnex".to_string()));
    }
}
