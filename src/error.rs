//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate, one variant per rule.
///
/// Messages are one line each, so a command can print `error: {err}` and exit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// The data is not a 2-D array.
    #[error("{}: expected a 2-D array (samples x features), got {ndim} dimension(s)", path.display())]
    NotTwoDimensional { path: PathBuf, ndim: usize },
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
    /// A scenario parameter is out of range.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// An I/O error, with the file it concerns.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A `.npy` file that cannot be read as a 2-D float array.
    #[error("{}: not a readable .npy array: {reason}", path.display())]
    Npy { path: PathBuf, reason: String },
    /// A CSV file that cannot be read as a numeric table.
    #[error("{}: line {line}: {reason}", path.display())]
    Csv {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A path that should be a folder names something else.
    #[error("{}: not a folder (it is a file)", path.display())]
    NotAFolder { path: PathBuf },
    /// A file of an unsupported kind.
    #[error("{}: unsupported file type (expected .npy or .csv)", path.display())]
    UnsupportedFile { path: PathBuf },
    /// A cached dataset that does not match its recorded checksum or shape.
    #[error("{}: cached file is corrupt: {reason}", path.display())]
    CorruptCache { path: PathBuf, reason: String },
    /// Results could not be serialised or parsed.
    #[error("{}: {reason}", path.display())]
    Results { path: PathBuf, reason: String },
    /// The thread pool could not be built.
    #[error("cannot build the thread pool: {0}")]
    ThreadPool(String),
    /// A contender failed or is unavailable.
    #[error("{contender}: {reason}")]
    Contender { contender: String, reason: String },
    /// Drawing the report failed.
    #[error("report: {0}")]
    Report(String),
}

impl Error {
    /// Wraps an [`std::io::Error`] with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
