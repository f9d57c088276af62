//! The passes over the data besides a step: the search for the rows empty
//! clusters take, a plain assignment, and the exact inertia. Each runs in
//! parallel over the fixed chunks of [`super::chunks`] and merges chunk
//! results in order.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::chunks::{chunk_rows, task_min_len};
use super::float::Float;
use super::screen::ScreenedCentroids;
use super::simd::{squared_distance, Isa, Kernels, Simd, WithSimd};

/// Gives each empty cluster one of the rows farthest from their current
/// centroids (farthest first, lower row index first among equals), moving the
/// row's weight out of its old cluster's sum, as scikit-learn does. Returns
/// whether there was any (the search is a pass over the data).
pub fn relocate_empty_clusters<F: Float>(
    x: &[F],
    d: usize,
    old_centroids: ArrayView2<F>,
    labels: &[u32],
    sums: &mut [f64],
    counts: &mut [u64],
) -> bool {
    let empty: Vec<usize> = (0..counts.len()).filter(|&j| counts[j] == 0).collect();
    if empty.is_empty() {
        return false;
    }
    let old_centroids = old_centroids.as_standard_layout();
    let old = old_centroids
        .as_slice()
        .expect("standard layout is contiguous");
    let distances: Vec<F> = x
        .par_chunks(d)
        .zip(labels.par_iter())
        .with_min_len(task_min_len())
        .map(|(row, &label)| {
            let j = label as usize;
            squared_distance(row, &old[j * d..(j + 1) * d])
        })
        .collect();
    let farther = |a: &usize, b: &usize| {
        distances[*b]
            .as_f64()
            .total_cmp(&distances[*a].as_f64())
            .then(a.cmp(b))
    };
    let mut order: Vec<usize> = (0..labels.len()).collect();
    let n_empty = empty.len();
    if n_empty < order.len() {
        order.select_nth_unstable_by(n_empty, farther);
    }
    order.truncate(n_empty);
    order.sort_unstable_by(farther);

    for (&new_cluster, &far) in empty.iter().zip(&order) {
        let old_cluster = labels[far] as usize;
        let row = &x[far * d..(far + 1) * d];
        for (f, &v) in row.iter().enumerate() {
            sums[old_cluster * d + f] -= v.as_f64();
            sums[new_cluster * d + f] = v.as_f64();
        }
        counts[old_cluster] -= 1;
        counts[new_cluster] = 1;
    }
    true
}

/// Assigns every row of `x` to its nearest centroid (lowest index on ties),
/// through the `f32` screen where it applies, as a step does (the labels
/// are the exact kernel's either way). Returns the pass's distances and,
/// of those, the ones computed in `f32`.
pub fn assign<F: Float>(
    x: &[F],
    d: usize,
    centroids: ArrayView2<F>,
    labels: &mut [u32],
) -> (u64, u64) {
    let prepared = ScreenedCentroids::new(centroids, Isa::detect());
    let rows = chunk_rows(labels.len());
    x.par_chunks(rows * d)
        .zip(labels.par_chunks_mut(rows))
        .with_min_len(task_min_len())
        .for_each(|(x_chunk, label_chunk)| prepared.assign(x_chunk, label_chunk));
    let scored = (labels.len() * centroids.nrows()) as u64;
    match prepared.is_screened() {
        true => (
            scored + prepared.rescored_rows() * centroids.nrows() as u64,
            scored,
        ),
        false => (scored, 0),
    }
}

/// `sum_i ||x_i - c_{labels_i}||^2`, each distance computed from the
/// difference (no cancellation), summed in `f64` in a fixed order.
pub fn inertia<F: Float>(x: &[F], d: usize, centroids: ArrayView2<F>, labels: &[u32]) -> f64 {
    let centroids = centroids.as_standard_layout();
    let flat = centroids.as_slice().expect("standard layout is contiguous");
    let rows = chunk_rows(labels.len());
    let isa = Isa::detect();
    let partials: Vec<f64> = x
        .par_chunks(rows * d)
        .zip(labels.par_chunks(rows))
        .with_min_len(task_min_len())
        .map(|(x, labels)| {
            isa.dispatch(RowsInertia {
                x,
                d,
                centroids: flat,
                labels,
            })
        })
        .collect();
    partials.into_iter().fold(0.0, |total, part| total + part)
}

/// The squared distances of rows to their centroids (`(k, d)` row-major),
/// added in row order from zero.
struct RowsInertia<'a, F> {
    x: &'a [F],
    d: usize,
    centroids: &'a [F],
    labels: &'a [u32],
}

impl<F: Float> WithSimd for RowsInertia<'_, F> {
    type Output = f64;

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> f64 {
        let (kernels, d) = (F::kernels(simd), self.d);
        // A loop, not a fold: the fold's closure was compiled apart from
        // this instruction set's function, the distance called out of line.
        let mut total = 0.0;
        for (row, &label) in self.x.chunks_exact(d).zip(self.labels) {
            let j = label as usize;
            total += kernels
                .squared_distance(row, &self.centroids[j * d..(j + 1) * d])
                .as_f64();
        }
        total
    }
}
