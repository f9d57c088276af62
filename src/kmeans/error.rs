//! The k-means layer's errors: one variant per rule a parameter or an input
//! can break.

/// What can go wrong checking parameters or fitting.
///
/// Messages are one line each, so a command can print `error: {err}` and exit.
#[derive(Debug, thiserror::Error)]
pub enum KMeansError {
    /// The number of clusters is zero.
    #[error("k (the number of clusters) must be at least 1")]
    ZeroClusters,
    /// More clusters were asked for than there are samples.
    #[error("k = {k} is larger than the number of samples ({n_samples})")]
    TooManyClusters { k: usize, n_samples: usize },
    /// `max_iter` is zero.
    #[error("max_iter must be at least 1")]
    ZeroMaxIter,
    /// The tolerance is negative or not finite.
    #[error("tol must be a finite number >= 0, got {0}")]
    BadTolerance(f64),
    /// The thread count is zero.
    #[error("threads must be at least 1")]
    ZeroThreads,
    /// The data has no rows or no columns.
    #[error("the data is empty ({n_samples} samples x {n_features} features)")]
    EmptyData { n_samples: usize, n_features: usize },
    /// A value is NaN or infinite.
    #[error("{what}: non-finite value ({value}) at row {row}, column {column}")]
    NonFinite {
        what: &'static str,
        row: usize,
        column: usize,
        value: f64,
    },
    /// Given initial centroids do not fit the data or k.
    #[error("initial centroids have shape {got:?}, expected {expected:?} (k x n_features)")]
    InitShape {
        got: (usize, usize),
        expected: (usize, usize),
    },
    /// The thread pool could not be built.
    #[error("cannot build the thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}

/// The k-means layer's result type.
pub type Result<T, E = KMeansError> = std::result::Result<T, E>;
