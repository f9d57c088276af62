//! The data layer's errors: scenarios, files and their formats, the cache.

use std::path::PathBuf;

use crate::kmeans::KMeansError;

/// What can go wrong making, reading or writing data.
///
/// Messages are one line each, so a command can print `error: {err}` and exit.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A scenario parameter is out of range.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// A rule of the k-means parameters (k, finite values).
    #[error(transparent)]
    KMeans(#[from] KMeansError),
    /// The data is not a 2-D array.
    #[error("{}: expected a 2-D array (samples x features), got {ndim} dimension(s)", path.display())]
    NotTwoDimensional { path: PathBuf, ndim: usize },
    /// An I/O error, with the file it concerns.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A path that should be a folder names something else.
    #[error("{}: not a folder (it is a file)", path.display())]
    NotAFolder { path: PathBuf },
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
    /// A file of an unsupported kind.
    #[error("{}: unsupported file type (expected .npy or .csv)", path.display())]
    UnsupportedFile { path: PathBuf },
    /// A cached dataset that does not match its recorded checksum or shape.
    #[error("{}: cached file is corrupt: {reason}", path.display())]
    CorruptCache { path: PathBuf, reason: String },
}

impl DataError {
    /// Wraps an [`std::io::Error`] with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error,
        }
    }
}

/// The data layer's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
