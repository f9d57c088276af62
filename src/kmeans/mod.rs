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
//! # Ok::<(), pythonvsrust_kmeans::kmeans::KMeansError>(())
//! ```
//!
//! # Semantics
//! From the same initial centroids it gives scikit-learn's labels and
//! inertia: assignment by `||c||^2 - 2 x.c` with the lowest index winning
//! ties, centroids as means, empty clusters moved to the samples farthest
//! from their centroids, stop when no label changes (or the centroid shift
//! is within `tol` times the mean feature variance), and a final assignment
//! when it stopped for another reason. It runs in the input's float type end
//! to end. Magnitudes whose squares would overflow or underflow are fitted
//! on a copy scaled by a power of two (exactly); initial centroids too far
//! out for any row to choose are first moved in, which changes nothing.
//!
//! # The files, bottom up
//! Each module uses only those above it in this list.
//! - `error`, `chunks`: the error rules; the fixed row chunks (at most 64,
//!   depending only on n, merged in order, so results do not depend on
//!   threads) and their blocks of 64 rows, and whether a fit's chunks run
//!   in a pool or one after another on the calling thread (small data, one
//!   thread).
//! - `simd`: everything that depends on the instruction set (AVX-512, AVX2
//!   with FMA, portable), detected once, capped by
//!   `KMEANS_KERNEL=avx2|portable` for comparisons, and chosen once per
//!   chunk: the kernels' vector code and the reference distances. The only
//!   place with intrinsics.
//! - `float`, `validate`, `params`: the float trait (sealed: its kernels
//!   come with it), the data's checks, the checked builder
//!   ([`KMeansParams`] -> [`KMeans`]).
//! - `kernel`: squared distances of rows against all centroids, with the
//!   centroids laid out for the instruction set. Two layouts with the same
//!   chain of fused multiply-adds per row and centroid, so the same bits:
//!   centroids in lanes for most shapes, rows in lanes for d <= 4, where
//!   reducing across lanes would cost more than the multiply-adds.
//! - `screen`: for `f64` data with at least 16 centroids and 32 features,
//!   rows the kernel gets in a pass that sends it every row, or most, are
//!   first scored in `f32` (twice the lanes). A proven bound on the
//!   gap between the `f32` and `f64` scores decides a row when its
//!   runner-up is clear of it; near ties and magnitudes `f32` cannot hold
//!   go through the `f64` kernel, so labels are the `f64` kernel's to the
//!   bit. `KMEANS_SCREEN=off` switches it off.
//! - `guess`: with bounds and at least 32 features, the first step guesses
//!   each row's centroid from its first 8 features and keeps the guess only
//!   where Hamerly's test proves the kernel would pick it; the rest go to
//!   the kernel. `KMEANS_GUESS=off` switches it off.
//! - `bounds`: Hamerly's upper and lower bounds per row (`f32`, rounded
//!   outwards, moved by each centroid's drift with its own slack). A row is
//!   skipped only when the kernel, rounding error included, would certainly
//!   give it its label; others are tightened with an exact distance and,
//!   failing that, sent to the kernel. In a bounded step only rows that
//!   change cluster move weight between the sums, so settled rows are not
//!   read. Used where scoring a row costs the kernel enough to pay
//!   (`Pruning::Auto`); suspended, not dropped, while steps keep sending most
//!   rows to the kernel (overlapping blobs), and set again later.
//! - `init`, `passes`, `step`: k-means++, the passes besides a step (plain
//!   assignment, inertia, the rows empty clusters take), and one Lloyd step:
//!   every row assigned and added to its cluster's sum while in cache, the
//!   next block prefetched meanwhile (by the kernel, between its
//!   multiply-adds, where the data is beyond the caches).
//! - `suspension`, `fit`: when bounds are suspended and set again; the loop:
//!   relocation, the stopping rules, scaling, and the inertia (from the last
//!   step's per-cluster sums when the bounds show no label would change, so
//!   a fit that converges in two steps reads the data once; from the rows'
//!   squared norms the bounds keep and the clusters' sums in a longer fit,
//!   where the subtraction keeps its digits). [`Work`]
//!   counts every pass's distances and rows, which the report divides by
//!   the machine's floors.
//!
//! Measured effects of each idea are in `docs/tuning.md`.

mod bounds;
mod chunks;
mod error;
mod fit;
mod float;
mod guess;
mod init;
mod kernel;
mod params;
mod passes;
mod screen;
pub(crate) mod simd;
mod step;
mod suspension;
#[cfg(test)]
mod tests;
mod validate;

/// The instruction set the kernels run in on this machine (`avx512`,
/// `avx2` or `portable`): results are the same bits on each, but the work
/// the bounds save may differ, so work is compared per kernel.
pub fn kernel_name() -> &'static str {
    simd::Isa::detect().name()
}

pub use chunks::in_pool_of;
pub use error::KMeansError;
pub use fit::{KMeansFit, Pass, Work, CALLING_THREAD_MAX_ROWS};
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
    passes::assign(flat, d, centroids, &mut labels);
    let inertia = passes::inertia(flat, d, centroids, &labels);
    (Array1::from(labels), inertia)
}
