//! The crate's error: one per layer, wrapped.
//!
//! [`KMeansError`] (parameters and fitting) and [`DataError`] (scenarios,
//! files, the cache) are the layers' own; this type adds what the protocol,
//! the results and the report can meet.

use std::path::PathBuf;

pub use crate::data::DataError;
pub use crate::kmeans::KMeansError;

/// Everything that can go wrong in this crate.
///
/// Messages are one line each, so a command can print `error: {err}` and exit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Parameters or fitting.
    #[error(transparent)]
    KMeans(#[from] KMeansError),
    /// Data, files and formats.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A record that cannot be serialised.
    #[error("{}: {error}", path.display())]
    Results {
        path: PathBuf,
        error: serde_json::Error,
    },
    /// A contender failed or is unavailable.
    #[error("{contender}: {reason}")]
    Contender { contender: String, reason: String },
    /// Drawing the report failed.
    #[error("report: {0}")]
    Report(String),
}

impl Error {
    /// An I/O error with the file it concerns (a data-layer error).
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Data(DataError::io(path, error))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
