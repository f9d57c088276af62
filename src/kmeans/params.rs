//! Checked parameters: a builder of plain setters, and [`KMeansParams::check`]
//! that turns it into [`KMeans`], the only type that can fit.

use std::sync::{Arc, OnceLock};

use ndarray::Array2;

use super::error::{KMeansError, Result};
use super::float::Float;

/// The default cap on Lloyd iterations (scikit-learn's).
pub const DEFAULT_MAX_ITER: usize = 300;

/// How the first centroids are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Init<F> {
    /// Greedy k-means++ (scikit-learn's: `2 + ln k` local trials), seeded.
    KMeansPlusPlus,
    /// These centroids, `(k, n_features)`.
    Given(Array2<F>),
}

/// Whether a fit keeps Hamerly's bounds to skip rows whose label cannot
/// change. Labels and iterations are the same in every case; centroids and
/// inertia agree to rounding (bounded steps update the sums with the rows
/// that change cluster instead of summing every row afresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pruning {
    /// Where they can pay (see `bounds::worthwhile`: enough work per
    /// row, and for few features many rows), suspended while steps send
    /// more than a third of the rows to the kernel (with few features, to
    /// the kernel or to be tightened), and set again later (after ever
    /// longer waits, should they still not pay).
    #[default]
    Auto,
    /// In every step.
    Always,
    /// Never: every row through the distance kernel in every step.
    Never,
}

/// Unchecked k-means parameters; call [`check`](Self::check) to fit with them.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams<F> {
    k: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
    threads: Option<usize>,
    init: Init<F>,
    pruning: Pruning,
}

impl<F: Float> KMeansParams<F> {
    /// Parameters for `k` clusters with the defaults: at most 300 iterations,
    /// `tol = 0` (stop when no label changes), seed 0, k-means++ init, the
    /// current rayon pool, [`Pruning::Auto`].
    pub fn new(k: usize) -> Self {
        KMeansParams {
            k,
            max_iter: DEFAULT_MAX_ITER,
            tol: 0.0,
            seed: 0,
            threads: None,
            init: Init::KMeansPlusPlus,
            pruning: Pruning::Auto,
        }
    }

    /// The cap on Lloyd iterations.
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Stop also when the squared centroid shift summed over clusters is at
    /// most `tol` times the mean per-feature variance of the data (the rule of
    /// scikit-learn). `0` stops only when no label changes.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// The seed of the k-means++ init.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Run in a pool of this many threads instead of the current rayon pool
    /// (built at the model's first fit, and kept for the next ones), or on
    /// the calling thread for one thread and for small data (see
    /// [`KMeans::fit`]).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// How to choose the first centroids.
    pub fn init(mut self, init: Init<F>) -> Self {
        self.init = init;
        self
    }

    /// Whether to keep Hamerly's bounds and skip the rows whose label cannot
    /// change. Labels and iterations are the same either way (see [`Pruning`]).
    pub fn pruning(mut self, pruning: Pruning) -> Self {
        self.pruning = pruning;
        self
    }

    /// Checks every rule that does not depend on the data.
    pub fn check(self) -> Result<KMeans<F>> {
        if self.k == 0 {
            return Err(KMeansError::ZeroClusters);
        }
        if self.max_iter == 0 {
            return Err(KMeansError::ZeroMaxIter);
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(KMeansError::BadTolerance(self.tol));
        }
        if self.threads == Some(0) {
            return Err(KMeansError::ZeroThreads);
        }
        if let Init::Given(centroids) = &self.init {
            if centroids.nrows() != self.k {
                return Err(KMeansError::InitShape {
                    got: centroids.dim(),
                    expected: (self.k, centroids.ncols()),
                });
            }
            super::validate::check_finite(centroids.view(), "initial centroids")?;
        }
        Ok(KMeans {
            params: self,
            pool: OwnPool::default(),
        })
    }
}

/// Checked k-means parameters. Fit with [`KMeans::fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans<F> {
    params: KMeansParams<F>,
    /// The pool of [`KMeansParams::threads`], once a fit has built it.
    pool: OwnPool,
}

/// The pool a model with a thread count of its own runs in, built at its
/// first fit and kept for the next ones (and clones made after): building
/// a pool takes longer than a small fit. Not a parameter: models compare
/// equal whatever their pools.
#[derive(Debug, Clone, Default)]
struct OwnPool(OnceLock<Arc<rayon::ThreadPool>>);

impl PartialEq for OwnPool {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<F: Float> KMeans<F> {
    /// The number of clusters.
    pub fn k(&self) -> usize {
        self.params.k
    }
    /// The cap on iterations.
    pub fn max_iter(&self) -> usize {
        self.params.max_iter
    }
    /// The relative tolerance (0: stop when no label changes).
    pub fn tol(&self) -> f64 {
        self.params.tol
    }
    /// The k-means++ seed.
    pub fn seed(&self) -> u64 {
        self.params.seed
    }
    /// The thread count, if a pool of its own was asked for.
    pub fn threads(&self) -> Option<usize> {
        self.params.threads
    }
    /// The init rule.
    pub fn init(&self) -> &Init<F> {
        &self.params.init
    }
    /// Whether bounds skip rows whose label cannot change.
    pub fn pruning(&self) -> Pruning {
        self.params.pruning
    }
    /// Whether a fit (or [`KMeans::start_threads`]) has built the model's pool.
    #[cfg(test)]
    pub(super) fn pool_built(&self) -> bool {
        self.pool.0.get().is_some()
    }

    /// The pool of `threads` threads this model fits in, built on first use.
    pub(super) fn own_pool(&self, threads: usize) -> Result<&rayon::ThreadPool> {
        if let Some(pool) = self.pool.0.get() {
            return Ok(pool);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        Ok(self.pool.0.get_or_init(|| Arc::new(pool)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zero_clusters_is_rejected() {
        assert!(matches!(
            KMeansParams::<f64>::new(0).check(),
            Err(KMeansError::ZeroClusters)
        ));
    }

    #[test]
    fn zero_max_iter_is_rejected() {
        assert!(matches!(
            KMeansParams::<f64>::new(2).max_iter(0).check(),
            Err(KMeansError::ZeroMaxIter)
        ));
    }

    #[test]
    fn negative_or_nan_tolerance_is_rejected() {
        for tol in [-1e-3, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                KMeansParams::<f64>::new(2).tol(tol).check(),
                Err(KMeansError::BadTolerance(_))
            ));
        }
    }

    #[test]
    fn zero_threads_is_rejected() {
        assert!(matches!(
            KMeansParams::<f64>::new(2).threads(0).check(),
            Err(KMeansError::ZeroThreads)
        ));
    }

    #[test]
    fn init_with_wrong_row_count_is_rejected() {
        let init = Init::Given(array![[0.0, 0.0]]);
        assert!(matches!(
            KMeansParams::<f64>::new(2).init(init).check(),
            Err(KMeansError::InitShape {
                got: (1, 2),
                expected: (2, 2)
            })
        ));
    }

    #[test]
    fn non_finite_init_is_rejected() {
        let init = Init::Given(array![[0.0, 0.0], [f64::NAN, 1.0]]);
        assert!(matches!(
            KMeansParams::<f64>::new(2).init(init).check(),
            Err(KMeansError::NonFinite {
                row: 1,
                column: 0,
                ..
            })
        ));
    }
}
