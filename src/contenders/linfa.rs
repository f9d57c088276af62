//! `linfa`: `linfa-clustering`'s `KMeans`.
//!
//! From the same initial centroids with `n_runs = 1`. Two differences remain
//! and are measured rather than hidden:
//! - its update counts the old centroid as one more member of its cluster
//!   (m_k-means), so it follows a slightly different path;
//! - it stops when the L2 distance between old and new centroids falls below
//!   a tolerance that must be positive; we give it the smallest positive
//!   `f64`, so it stops when the centroids no longer move.
//!
//! linfa does not report its iteration count; a distance wrapper counts the
//! centroid-to-centroid distance it computes once per iteration.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use linfa_nn::distance::{Distance, L2Dist};
use ndarray::{Array2, ArrayView, ArrayView2, Dimension};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{contender_error, pool_name, thread_pool, Contender, FitOutput, Problem, Rule};
use crate::error::Result;

/// linfa's rule: m_k-means from the same start. On the study's blobs the
/// inertia gap measured stays below 1e-3 relative (see the parity test), so
/// 1e-2 flags a real regression without flagging the known difference.
pub(super) const RULE: Rule = Rule::Different {
    tolerance: 1e-2,
    note: "moves each centroid to the mean of its members and its old position (m_k-means) and stops on a centroid shift below the smallest positive tolerance it accepts",
};

/// linfa's tolerance: the smallest it accepts (it must be > 0), in the
/// data's float type (this is the f64 one, for the record).
const TOLERANCE: f64 = f64::MIN_POSITIVE;

/// L2 distance that counts the calls on whole centroid matrices (one per
/// linfa iteration).
#[derive(Debug, Clone, Default)]
struct CountingL2 {
    matrix_calls: Arc<AtomicUsize>,
}

impl<F: linfa::Float> Distance<F> for CountingL2 {
    #[inline]
    fn distance<D: Dimension>(&self, a: ArrayView<F, D>, b: ArrayView<F, D>) -> F {
        if a.ndim() == 2 {
            self.matrix_calls.fetch_add(1, Ordering::Relaxed);
        }
        L2Dist.distance(a, b)
    }
    #[inline]
    fn rdistance<D: Dimension>(&self, a: ArrayView<F, D>, b: ArrayView<F, D>) -> F {
        L2Dist.rdistance(a, b)
    }
    #[inline]
    fn rdist_to_dist(&self, rdist: F) -> F {
        L2Dist.rdist_to_dist(rdist)
    }
    #[inline]
    fn dist_to_rdist(&self, dist: F) -> F {
        L2Dist.dist_to_rdist(dist)
    }
}

/// One linfa fit of `x` from `init` in `pool`, or in the caller's pool
/// where there is none: its centroids and iterations.
fn fit_in<F: linfa::Float>(
    x: ArrayView2<F>,
    init: Array2<F>,
    problem: &Problem,
    pool: Option<&rayon::ThreadPool>,
) -> Result<(Array2<F>, usize)> {
    let distance = CountingL2::default();
    let calls = distance.matrix_calls.clone();
    let params = KMeans::params_with(init.nrows(), Xoshiro256PlusPlus::seed_from_u64(0), distance)
        .n_runs(1)
        .max_n_iterations(problem.max_iter as u64)
        .tolerance(F::min_positive_value())
        .init_method(KMeansInit::Precomputed(init));
    let dataset = DatasetBase::from(x);
    let model = match pool {
        Some(pool) => pool.install(|| params.fit(&dataset)),
        None => params.fit(&dataset),
    }
    .map_err(|e| contender_error("linfa", e))?;
    Ok((model.centroids().clone(), calls.load(Ordering::Relaxed)))
}

/// linfa's k-means in a rayon pool of the problem's size: the caller's
/// where it has that many threads (as ours), else one of its own (decided
/// in `prepare`, on the thread that fits).
#[derive(Default)]
pub struct LinfaKMeans {
    prepared: Option<(Problem, Option<rayon::ThreadPool>)>,
}

impl Contender for LinfaKMeans {
    fn name(&self) -> &'static str {
        "linfa"
    }

    fn prepare(&mut self, problem: &Problem) -> Result<()> {
        // linfa asserts (panics) on a mismatched init: check first.
        problem.validate()?;
        let pool = match crate::kmeans::in_pool_of(problem.threads) {
            true => None,
            false => Some(thread_pool(problem.threads)?),
        };
        self.prepared = Some((problem.clone(), pool));
        Ok(())
    }

    fn fit(&mut self) -> Result<FitOutput> {
        let (problem, pool) = self
            .prepared
            .as_ref()
            .ok_or_else(|| contender_error("linfa", "fit before prepare"))?;
        let (centroids, n_iter) = match &problem.x32 {
            Some(x32) => {
                let init = problem.init.mapv(|v| v as f32);
                let (c, n) = fit_in(x32.view(), init, problem, pool.as_ref())?;
                (c.mapv(f64::from), n)
            }
            None => fit_in(
                problem.x.view(),
                problem.init.as_ref().clone(),
                problem,
                pool.as_ref(),
            )?,
        };
        Ok(FitOutput {
            centroids,
            labels: None,
            n_iter,
            work: None,
        })
    }

    fn environment(&self) -> Vec<(String, String)> {
        let threads = self.prepared.as_ref().map_or(0, |(p, _)| p.threads);
        vec![
            ("linfa.version".into(), "linfa-clustering 0.8.1".into()),
            ("linfa.threads".into(), threads.to_string()),
            ("linfa.pool".into(), pool_name(threads)),
            (
                "linfa.stopping_rule".into(),
                format!("centroid L2 shift < {TOLERANCE:e}; m_k-means update (old centroid counts as a member)"),
            ),
        ]
    }
}
