//! The hand-written k-means: exact Lloyd with scikit-learn's semantics,
//! parallel over fixed row chunks, generic over `f32` and `f64`.
//!
//! ```
//! use ndarray::array;
//! use pythonvsrust_kmeans::kmeans::{Init, KMeansParams};
//!
//! let x = array![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]];
//! let fit = KMeansParams::new(2)
//!     .init(Init::Given(array![[0.0, 0.0], [1.0, 1.0]]))
//!     .check()?
//!     .fit(x.view())?;
//! assert_eq!(fit.centroids, array![[0.25, 0.0], [0.75, 1.0]]);
//! assert_eq!(fit.inertia, 0.25);
//! # Ok::<(), pythonvsrust_kmeans::Error>(())
//! ```

mod bounds;
mod chunks;
mod error;
mod fit;
mod float;
mod guess;
mod init;
mod kernel;
mod lloyd;
mod params;
mod screen;
mod simd;
mod validate;

pub use error::KMeansError;
pub use fit::{KMeansFit, Pass, Work};
pub use float::Float;
pub use init::kmeans_plusplus;
pub use params::{Init, KMeans, KMeansParams, Pruning, DEFAULT_MAX_ITER};
pub use validate::{check_finite, check_not_empty};

use ndarray::{Array1, ArrayView2};

/// The nearest centroid of every sample (lowest index on ties) and the exact
/// inertia `sum_i ||x_i - c_{label_i}||^2` in `f64`.
///
/// This is the one function that scores every contender: quality is always
/// recomputed from returned centroids, never taken from a library's report.
pub fn assign_and_inertia<F: Float>(
    x: ArrayView2<F>,
    centroids: ArrayView2<F>,
) -> (Array1<u32>, f64) {
    let x = x.as_standard_layout();
    let flat = x.as_slice().expect("standard layout is contiguous");
    let d = x.ncols();
    let mut labels = vec![0; x.nrows()];
    lloyd::assign(flat, d, centroids, &mut labels);
    let inertia = lloyd::inertia(flat, d, centroids, &labels);
    (Array1::from(labels), inertia)
}
