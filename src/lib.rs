//! # pythonvsrust-kmeans
//!
//! A benchmark of k-means implementations in Rust and Python under one fair
//! protocol: the same data, the same initial centroids, the same stopping rule
//! and the same threads for every contender.
//!
//! - [`data`]: seeded Gaussian blobs, cached under `data/`, and `.npy`/CSV I/O.
//! - [`kmeans`]: the hand-written k-means (exact Lloyd, scikit-learn semantics).

pub mod alloc;
pub mod cli;
pub mod contenders;
pub mod data;
pub mod environment;
pub mod error;
pub mod floor;
pub mod isolated;
pub mod kmeans;
pub mod memory;
pub mod protocol;
pub mod quality;
pub mod regressions;
pub mod report;
pub mod results;
pub mod run;
pub mod suite;

pub use error::{Error, Result};
