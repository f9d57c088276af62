//! The distance kernel: rows of X against all centroids.
//!
//! For each row `x` and centroid `c` it computes the half score
//! `||c||^2 / 2 - x.c` (half the squared distance less `||x||^2`, which is
//! the same for every centroid and left out, as scikit-learn does): a chain of
//! fused multiply-adds over the features, started at `||c||^2 / 2`, against
//! the negated centroid. Every layout below runs that same chain in the same
//! order, so they give the same scores and the same labels to the bit; the
//! lowest index wins a tie.
//!
//! Two layouts, chosen by shape:
//! - **Centroids in lanes** (most shapes): centroids are laid out in blocks
//!   of `C` columns, transposed (`d x C` per block, padded with zero
//!   centroids whose norm is +inf so they never win). A tile of `R` rows is
//!   multiplied against each block with `R x C` accumulators held in
//!   registers: per feature, `C / lanes` vector loads and `R` broadcasts feed
//!   `R * C / lanes` fused multiply-adds; each row's lanes are reduced once
//!   at the end.
//! - **Rows in lanes** (few features, where that reduction would cost more
//!   than the multiply-adds): each vector holds one feature of `lanes` rows,
//!   and the centroids are visited one by one with broadcasts, so the best
//!   score of every row is kept lane-wise and nothing is reduced across lanes.
//!
//! The kernels themselves are in `simd`, one per instruction set; this
//! module prepares the centroids for them and runs them on rows.

use ndarray::ArrayView2;

use super::float::Float;
#[cfg(test)]
use super::simd::WithSimd;
use super::simd::{CentroidLayout, Isa, Kernels, NextRows, Simd, ROWS_IN_LANES_MAX_D};

/// The most rows in a tile of any instruction set.
const MAX_TILE_ROWS: usize = 8;
/// Up to this many features, fewer rows than a tile are padded on the stack.
const MAX_PADDED_D: usize = 128;

/// How a kernel puts data in vector lanes (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Centroid columns in lanes, a tile of rows against each block.
    CentroidsInLanes,
    /// One feature of several rows in lanes, centroids broadcast one by one.
    RowsInLanes,
}

impl Layout {
    /// The cheaper layout for `k` centroids of `d` features on `isa`.
    ///
    /// Centroids in lanes pays, per row, a reduction across lanes and the
    /// unused lanes of its last block; rows in lanes pays a compare, a
    /// minimum and a blend per centroid and vector of rows instead, and a
    /// gather per feature: it is the faster up to [`ROWS_IN_LANES_MAX_D`]
    /// features (measurements in `docs/tuning.md`).
    pub fn choose(d: usize, isa: Isa) -> Layout {
        if isa != Isa::Portable && d <= ROWS_IN_LANES_MAX_D {
            Layout::RowsInLanes
        } else {
            Layout::CentroidsInLanes
        }
    }
}

/// Centroids laid out for the kernel of one instruction set.
#[derive(Debug)]
pub struct PreparedCentroids<F> {
    /// `blocks` of `(d, width)`, row-major, zero-padded: the negated
    /// centroids, transposed (centroids in lanes).
    blocks: Vec<F>,
    /// `||c_j||^2 / 2`, padded with +inf to a whole number of blocks.
    half_norms: Vec<F>,
    /// `j` as a float, beside each half norm (the SIMD kernels select it).
    lane_index: Vec<F>,
    /// The negated centroids, `(k, d)` row-major (rows in lanes).
    negated: Vec<F>,
    k: usize,
    d: usize,
    width: usize,
    isa: Isa,
    layout: Layout,
}

impl<F: Float> PreparedCentroids<F> {
    /// Prepares `(k, d)` centroids for the kernel of `isa` (which the CPU
    /// must support), in the layout that suits their shape.
    pub fn new(centroids: ArrayView2<F>, isa: Isa) -> Self {
        let d = centroids.ncols();
        Self::with_layout(centroids, isa, Layout::choose(d, isa))
    }

    /// Prepares `(k, d)` centroids for the kernel of `isa` in `layout`
    /// (rows in lanes needs a SIMD `isa` and at most
    /// [`ROWS_IN_LANES_MAX_D`] features; otherwise centroids in lanes is
    /// used).
    pub fn with_layout(centroids: ArrayView2<F>, isa: Isa, layout: Layout) -> Self {
        let (k, d) = centroids.dim();
        let layout = if isa == Isa::Portable || d == 0 || d > ROWS_IN_LANES_MAX_D {
            Layout::CentroidsInLanes
        } else {
            layout
        };
        let lanes = isa.lanes::<F>();
        // One vector of columns when k fits in it, else two per block.
        let width = if k <= lanes { lanes } else { 2 * lanes };
        let n_blocks = k.div_ceil(width);
        let mut blocks = vec![F::zero(); n_blocks * d * width];
        let mut half_norms = vec![F::infinity(); n_blocks * width];
        let mut negated = Vec::with_capacity(k * d);
        for (j, centroid) in centroids.rows().into_iter().enumerate() {
            let (b, c) = (j / width, j % width);
            for (f, &v) in centroid.iter().enumerate() {
                blocks[b * d * width + f * width + c] = -v;
            }
            negated.extend(centroid.iter().map(|&v| -v));
            let norm = centroid.iter().fold(F::zero(), |acc, &v| acc + v * v);
            half_norms[j] = norm / (F::one() + F::one());
        }
        let lane_index = (0..half_norms.len())
            .map(|j| F::from_f64(j as f64))
            .collect();
        PreparedCentroids {
            blocks,
            half_norms,
            lane_index,
            negated,
            k,
            d,
            width,
            isa,
            layout,
        }
    }

    /// The layout as the kernels take it.
    fn view(&self) -> CentroidLayout<'_, F> {
        CentroidLayout {
            blocks: &self.blocks,
            half_norms: &self.half_norms,
            lane_index: &self.lane_index,
            negated: &self.negated,
            k: self.k,
            d: self.d,
            width: self.width,
        }
    }

    /// The layout chosen.
    #[cfg(test)]
    pub fn kernel_layout(&self) -> Layout {
        self.layout
    }

    /// The instruction set it was prepared for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Writes the nearest centroid of each row of `x` (`(out.len(), d)`,
    /// row-major) to `out`, on the instruction set of `simd` (the one the
    /// centroids were prepared for), asking for `next` meanwhile (see
    /// [`NextRows`]; the rows-in-lanes layout, for few features, asks for
    /// nothing).
    #[inline]
    pub fn assign_in<S: Simd>(&self, simd: S, x: &[F], out: &mut [u32], next: NextRows<'_>) {
        self.assign_rows::<S, false>(simd, x, out, &mut [], next);
    }

    /// As [`assign_in`](Self::assign_in), also writing each row's best and
    /// runner-up scores `||c_j||^2 - 2 x.c_j` (the squared distances less
    /// `||x||^2`, as the kernel computes them) to `scores[2 * i]` and
    /// `scores[2 * i + 1]`. The labels are the same as `assign_in`'s.
    #[inline]
    pub fn assign_with_scores_in<S: Simd>(
        &self,
        simd: S,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        next: NextRows<'_>,
    ) {
        debug_assert_eq!(scores.len(), 2 * out.len());
        self.assign_rows::<S, true>(simd, x, out, scores, next);
    }

    /// [`assign_in`](Self::assign_in) on the instruction set the centroids
    /// were prepared for.
    #[cfg(test)]
    pub fn assign(&self, x: &[F], out: &mut [u32]) {
        self.isa.dispatch(Assign {
            prepared: self,
            x,
            out,
            scores: None,
        })
    }

    /// [`assign_with_scores_in`](Self::assign_with_scores_in) on the
    /// instruction set the centroids were prepared for.
    #[cfg(test)]
    pub fn assign_with_scores(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        self.isa.dispatch(Assign {
            prepared: self,
            x,
            out,
            scores: Some(scores),
        })
    }

    fn assign_rows<S: Simd, const SCORES: bool>(
        &self,
        simd: S,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        next: NextRows<'_>,
    ) {
        debug_assert_eq!(S::ISA, self.isa);
        debug_assert_eq!(x.len(), out.len() * self.d);
        let kernels = F::kernels(simd);
        if self.layout == Layout::RowsInLanes {
            return kernels.rows_in_lanes::<SCORES>(&self.view(), x, out, scores);
        }
        let rows = S::TILE_ROWS;
        let d = self.d;
        let full = out.len() / rows * rows;
        let (x_full, x_rest) = x.split_at(full * d);
        let (out_full, out_rest) = out.split_at_mut(full);
        let split = if SCORES { 2 * full } else { 0 };
        let (scores_full, scores_rest) = scores.split_at_mut(split);
        kernels.tiles::<SCORES>(&self.view(), x_full, out_full, scores_full, next);
        if out_rest.is_empty() {
            return;
        }
        // The last rows as one whole tile (each row's result depends on
        // that row alone): the tile ending at the last row, overlapping
        // rows already done, or with fewer rows than a tile, the rows
        // padded with copies of the first.
        let rest = out_rest.len();
        // Filled only when padding is needed.
        let mut stack: [F; MAX_TILE_ROWS * MAX_PADDED_D];
        let mut heap: Vec<F>;
        let (tile, skip): (&[F], usize) = if full > 0 {
            (&x[x.len() - rows * d..], rows - rest)
        } else {
            let padded: &mut [F] = if d <= MAX_PADDED_D {
                stack = [F::zero(); MAX_TILE_ROWS * MAX_PADDED_D];
                &mut stack[..rows * d]
            } else {
                heap = vec![F::zero(); rows * d];
                &mut heap
            };
            for (r, row) in padded.chunks_exact_mut(d).enumerate() {
                let source = if r < rest { r } else { 0 };
                row.copy_from_slice(&x_rest[source * d..(source + 1) * d]);
            }
            (padded, 0)
        };
        let mut labels = [0u32; MAX_TILE_ROWS];
        let mut tile_scores = [F::zero(); 2 * MAX_TILE_ROWS];
        let tile_scores = if SCORES {
            &mut tile_scores[..2 * rows]
        } else {
            &mut tile_scores[..0]
        };
        kernels.tiles::<SCORES>(
            &self.view(),
            tile,
            &mut labels[..rows],
            tile_scores,
            NextRows::NONE,
        );
        out_rest.copy_from_slice(&labels[skip..skip + rest]);
        if SCORES {
            scores_rest.copy_from_slice(&tile_scores[2 * skip..2 * (skip + rest)]);
        }
    }
}

/// [`PreparedCentroids::assign`] (or with scores) as one operation.
#[cfg(test)]
struct Assign<'a, F> {
    prepared: &'a PreparedCentroids<F>,
    x: &'a [F],
    out: &'a mut [u32],
    scores: Option<&'a mut [F]>,
}

#[cfg(test)]
impl<F: Float> WithSimd for Assign<'_, F> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) {
        match self.scores {
            Some(scores) => {
                self.prepared
                    .assign_with_scores_in(simd, self.x, self.out, scores, NextRows::NONE)
            }
            None => self
                .prepared
                .assign_in(simd, self.x, self.out, NextRows::NONE),
        }
    }
}

/// The squared norm of each row of `rows` (`(norms.len(), d)` row-major)
/// into `norms`, as [`Kernels::squared_norm`] computes it: rows of fewer
/// than eight features with their count known to the compiler, so that
/// the loop runs across rows in vectors.
#[inline(always)]
pub fn squared_norms<F: Float, S: Simd>(simd: S, rows: &[F], norms: &mut [f64]) {
    #[inline(always)]
    fn short<F: Float, const D: usize>(rows: &[F], norms: &mut [f64]) {
        for (norm, row) in norms.iter_mut().zip(rows.chunks_exact(D)) {
            // Term by term from zero: `squared_norm`'s tail, its eight
            // partial sums being zero.
            *norm = row
                .iter()
                .fold(0.0, |sum, &v| sum + v.as_f64() * v.as_f64());
        }
    }
    let d = rows.len() / norms.len().max(1);
    match d {
        1 => short::<F, 1>(rows, norms),
        2 => short::<F, 2>(rows, norms),
        3 => short::<F, 3>(rows, norms),
        4 => short::<F, 4>(rows, norms),
        5 => short::<F, 5>(rows, norms),
        6 => short::<F, 6>(rows, norms),
        7 => short::<F, 7>(rows, norms),
        _ => {
            let kernels = F::kernels(simd);
            for (norm, row) in norms.iter_mut().zip(rows.chunks_exact(d.max(1))) {
                *norm = kernels.squared_norm(row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::squared_distance;
    use super::*;
    use ndarray::{array, Array2};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Every instruction set of this CPU in both layouts (rows in lanes
    /// where the shape allows it).
    fn variants() -> Vec<(Isa, Layout)> {
        Isa::supported()
            .into_iter()
            .flat_map(|isa| [(isa, Layout::CentroidsInLanes), (isa, Layout::RowsInLanes)])
            .collect()
    }

    #[test]
    fn nearest_is_the_closest_centroid_and_ties_go_to_the_lowest_index() {
        let centroids = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]];
        for (isa, layout) in variants() {
            let prepared = PreparedCentroids::with_layout(centroids.view(), isa, layout);
            let x = [0.1, 0.2, 1.9, 0.2, -1.0, 5.0, 1.0, -3.0, 1.0, 1.0];
            let mut out = [9u32; 5];
            prepared.assign(&x, &mut out);
            // (1, -3) is as far from 0 as from 1; (1, 1) from all three: 0 wins.
            assert_eq!(out, [0, 1, 2, 0, 0], "{isa:?} {layout:?}");
        }
    }

    #[test]
    fn a_centroid_repeated_across_lanes_vectors_and_blocks_goes_to_its_first_copy() {
        // Centroid j is centroid j % period: every row ties between copies
        // in the same lane or in other lanes, in other vectors of a block
        // and in other blocks.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let (n, k) = (61, 45);
        for (d, period) in [(1, 4), (3, 5), (10, 4), (10, 8), (33, 3), (33, 16)] {
            let distinct = Array2::from_shape_fn((period, d), |_| rng.gen_range(-5.0..5.0f64));
            let c = Array2::from_shape_fn((k, d), |(j, f)| distinct[[j % period, f]]);
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
            let first = PreparedCentroids::with_layout(
                distinct.view(),
                Isa::Portable,
                Layout::CentroidsInLanes,
            );
            let mut expected = vec![0u32; n];
            first.assign(x.as_slice().unwrap(), &mut expected);
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c.view(), isa, layout);
                let mut labels = vec![u32::MAX; n];
                let mut scores = vec![0.0; 2 * n];
                prepared.assign_with_scores(x.as_slice().unwrap(), &mut labels, &mut scores);
                let what = format!("{isa:?} {layout:?} d={d} period={period}");
                assert_eq!(labels, expected, "{what}");
                for i in 0..n {
                    // The runner-up is the winner's own copy.
                    assert_eq!(scores[2 * i], scores[2 * i + 1], "{what}");
                }
            }
        }
    }

    #[test]
    fn every_variant_and_width_matches_brute_force() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for (n, d, k) in [
            (37, 3, 2),
            (101, 5, 7),
            (64, 16, 9),
            (53, 2, 30),
            (29, 33, 17),
            (70, 1, 65),
            // Centroids beyond the first-level cache: tiles in groups.
            (45, 40, 300),
            // Packed tiles with AVX-512: sixteen blocks or more and 64
            // features or more, in both types.
            (130, 64, 500),
        ] {
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-5.0..5.0f64));
            let expected: Vec<u32> = x
                .rows()
                .into_iter()
                .map(|row| {
                    let mut best = (f64::INFINITY, 0);
                    for (j, cj) in c.rows().into_iter().enumerate() {
                        let dist =
                            squared_distance(row.as_slice().unwrap(), cj.as_slice().unwrap());
                        if dist < best.0 {
                            best = (dist, j as u32);
                        }
                    }
                    best.1
                })
                .collect();
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c.view(), isa, layout);
                let mut out = vec![0u32; n];
                prepared.assign(x.as_slice().unwrap(), &mut out);
                assert_eq!(out, expected, "{isa:?} {layout:?} n={n} d={d} k={k}");
                let x32 = x.mapv(|v| v as f32);
                let c32 = c.mapv(|v| v as f32);
                let prepared = PreparedCentroids::with_layout(c32.view(), isa, layout);
                prepared.assign(x32.as_slice().unwrap(), &mut out);
                let agree = out.iter().zip(&expected).filter(|(a, b)| a == b).count();
                assert!(agree >= n - 1, "f32 {isa:?}: {agree}/{n}");
            }
        }
    }

    #[test]
    fn rows_scored_together_or_one_by_one_give_the_same_bits() {
        // Many tiles in one call are scored block by block, a group of
        // tiles at a time: each row's result must not depend on the rows
        // beside it, whether the call holds a partial group, one group or
        // several.
        fn check<F: Float>(x: &[F], c: ArrayView2<F>, what: &str) {
            let (k, d) = c.dim();
            let n = x.len() / d;
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c, isa, layout);
                let (mut labels, mut scores) = (vec![0u32; n], vec![F::zero(); 2 * n]);
                prepared.assign_with_scores(x, &mut labels, &mut scores);
                for (i, row) in x.chunks_exact(d).enumerate() {
                    let (mut label, mut score) = ([0u32], [F::zero(); 2]);
                    prepared.assign_with_scores(row, &mut label, &mut score);
                    let bits = |s: &[F]| s.iter().map(|v| v.as_f64().to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        label[0], labels[i],
                        "{what} {isa:?} {layout:?} k={k} row {i}"
                    );
                    assert_eq!(
                        bits(&score),
                        bits(&scores[2 * i..2 * i + 2]),
                        "{what} row {i}"
                    );
                }
            }
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for (n, d, k) in [
            (300, 7, 40),
            (129, 33, 300),
            (65, 12, 17),
            (16, 5, 64),
            (129, 64, 500),
        ] {
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-5.0..5.0f64));
            check(x.as_slice().unwrap(), c.view(), "f64");
            let (x32, c32) = (x.mapv(|v| v as f32), c.mapv(|v| v as f32));
            check(x32.as_slice().unwrap(), c32.view(), "f32");
        }
    }

    /// [`PreparedCentroids::assign_with_scores_in`] on the
    /// instruction set the centroids were prepared for.
    struct AssignAsking<'a> {
        prepared: &'a PreparedCentroids<f64>,
        x: &'a [f64],
        next: NextRows<'a>,
    }

    impl WithSimd for AssignAsking<'_> {
        /// The labels, and the scores' bits.
        type Output = (Vec<u32>, Vec<u64>);

        fn run<S: Simd>(self, simd: S) -> Self::Output {
            let n = self.x.len() / self.prepared.d;
            let (mut labels, mut scores) = (vec![0u32; n], vec![0.0; 2 * n]);
            self.prepared
                .assign_with_scores_in(simd, self.x, &mut labels, &mut scores, self.next);
            (labels, scores.iter().map(|s| s.to_bits()).collect())
        }
    }

    #[test]
    fn asking_for_the_next_rows_changes_no_result() {
        // The requests are hints to the caches, spread through the
        // multiply-adds: whatever they ask for (more lines than the tiles
        // have rounds, fewer, a start mid-line), the labels and scores are
        // those of a call that asks for nothing.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let other: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        for (n, d, k) in [(64, 10, 8), (200, 33, 300), (17, 5, 3)] {
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-5.0..5.0f64));
            let x = x.as_slice().unwrap();
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c.view(), isa, layout);
                let run = |next| {
                    isa.dispatch(AssignAsking {
                        prepared: &prepared,
                        x,
                        next,
                    })
                };
                let plain = run(NextRows::NONE);
                for next in [&other[..], &other[1..3], &other[3..]] {
                    assert_eq!(run(NextRows::of(next)), plain, "{isa:?} {layout:?} k={k}");
                }
            }
        }
    }

    #[test]
    fn scores_are_the_best_and_runner_up_of_every_variant() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        for (n, d, k) in [
            (37, 3, 1),
            (41, 2, 2),
            (64, 16, 9),
            (53, 2, 30),
            (29, 33, 17),
            (70, 1, 65),
            (45, 40, 300),
            (120, 64, 260),
        ] {
            // Small integers: many exact ties between centroids.
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-3..=3) as f64);
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-3..=3) as f64);
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c.view(), isa, layout);
                let mut plain = vec![0u32; n];
                prepared.assign(x.as_slice().unwrap(), &mut plain);
                let mut labels = vec![0u32; n];
                let mut scores = vec![0.0; 2 * n];
                prepared.assign_with_scores(x.as_slice().unwrap(), &mut labels, &mut scores);
                assert_eq!(labels, plain, "{isa:?} n={n} d={d} k={k}");
                for (i, row) in x.rows().into_iter().enumerate() {
                    let norm: f64 = row.iter().map(|v| v * v).sum();
                    let mut distances: Vec<(f64, u32)> = c
                        .rows()
                        .into_iter()
                        .enumerate()
                        .map(|(j, cj)| {
                            let dist =
                                squared_distance(row.as_slice().unwrap(), cj.as_slice().unwrap());
                            (dist - norm, j as u32)
                        })
                        .collect();
                    distances.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    // Integers: the kernel's scores are exact.
                    assert_eq!(labels[i], distances[0].1, "{isa:?} row {i}");
                    assert_eq!(scores[2 * i], distances[0].0, "{isa:?} row {i}");
                    let runner_up = distances.get(1).map_or(f64::INFINITY, |s| s.0);
                    assert_eq!(scores[2 * i + 1], runner_up, "{isa:?} row {i} k={k}");
                }
            }
        }
    }

    #[test]
    fn both_layouts_give_the_same_labels_and_scores_to_the_bit() {
        fn check<F: Float>(x: &[F], c: ArrayView2<F>, what: &str) {
            let n = x.len() / c.ncols();
            for isa in Isa::supported()
                .into_iter()
                .filter(|&isa| isa != Isa::Portable)
            {
                let mut results = [Layout::CentroidsInLanes, Layout::RowsInLanes]
                    .map(|layout| {
                        let prepared = PreparedCentroids::with_layout(c, isa, layout);
                        assert_eq!(prepared.kernel_layout(), layout);
                        let mut labels = vec![0u32; n];
                        let mut scores = vec![F::zero(); 2 * n];
                        prepared.assign_with_scores(x, &mut labels, &mut scores);
                        let mut plain = vec![0u32; n];
                        prepared.assign(x, &mut plain);
                        assert_eq!(plain, labels, "{what} {isa:?} {layout:?}");
                        (labels, scores)
                    })
                    .into_iter();
                let (centroids, rows) = (results.next().unwrap(), results.next().unwrap());
                assert_eq!(centroids.0, rows.0, "labels {what} {isa:?}");
                let bits = |s: &[F]| s.iter().map(|v| v.as_f64().to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&centroids.1), bits(&rows.1), "scores {what} {isa:?}");
            }
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for d in 1..=ROWS_IN_LANES_MAX_D {
            for n in [1, 7, 8, 17, 33, 64, 100] {
                for k in [1, 2, 9, 30, 65] {
                    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
                    let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-5.0..5.0f64));
                    let what = format!("n={n} d={d} k={k}");
                    check(x.as_slice().unwrap(), c.view(), &format!("f64 {what}"));
                    let (x, c) = (x.mapv(|v| v as f32), c.mapv(|v| v as f32));
                    check(x.as_slice().unwrap(), c.view(), &format!("f32 {what}"));
                }
            }
        }
    }

    /// The squared distance, norm and scanned distance of `a` and `b` as
    /// one instruction set's kernels compute them.
    struct Distances<'a, F> {
        a: &'a [F],
        b: &'a [F],
    }

    impl<F: Float> WithSimd for Distances<'_, F> {
        type Output = (F, f64, (F, f64, bool));

        #[inline(always)]
        fn run<S: Simd>(self, simd: S) -> Self::Output {
            let kernels = F::kernels(simd);
            (
                kernels.squared_distance(self.a, self.b),
                kernels.squared_norm(self.a),
                kernels.squared_distance_and_scan(self.a, self.b),
            )
        }
    }

    fn distances<F: Float>(isa: Isa, a: &[F], b: &[F]) -> (F, f64, (F, f64, bool)) {
        isa.dispatch(Distances { a, b })
    }

    /// [`squared_norms`] on one instruction set.
    struct Norms<'a> {
        rows: &'a [f64],
        norms: &'a mut [f64],
    }

    impl WithSimd for Norms<'_> {
        type Output = ();

        #[inline(always)]
        fn run<S: Simd>(self, simd: S) {
            squared_norms(simd, self.rows, self.norms)
        }
    }

    #[test]
    fn squared_distance_is_exact_on_small_integers() {
        assert_eq!(squared_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]), 25.0);
    }

    #[test]
    fn wide_distances_and_norms_are_the_portable_ones_to_the_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for len in 0..=41 {
            for scale in [1e-150, 1e-3, 1.0, 1e7, 1e150] {
                let a: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                let b: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                for isa in Isa::supported() {
                    let (wide, wide_norm, _) = distances(isa, &a, &b);
                    let plain = squared_distance(&a, &b);
                    assert_eq!(wide.to_bits(), plain.to_bits(), "{isa:?}, {len}, {scale}");
                    let (wide, plain) = (wide_norm, super::super::simd::squared_norm(&a));
                    assert_eq!(wide.to_bits(), plain.to_bits(), "{isa:?}, {len}, {scale}");
                }
            }
        }
    }

    #[test]
    fn distances_with_the_scan_are_the_distances_and_the_scan_to_the_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for len in 0..=41 {
            for scale in [1e-150, 1.0, 1e150] {
                let b: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                let clean: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                let mut cases = vec![clean.clone()];
                // A NaN or an infinity in the vectors or in the tail.
                for (i, bad) in [
                    (0, f64::NAN),
                    (len / 2, f64::INFINITY),
                    (len.max(1) - 1, f64::NAN),
                ] {
                    if i < len {
                        let mut a = clean.clone();
                        a[i] = bad;
                        cases.push(a);
                    }
                }
                for a in &cases {
                    let (max_abs, finite) = super::super::validate::scan(a);
                    for isa in Isa::supported() {
                        let (plain, _, (distance, max, all_finite)) = distances(isa, a, &b);
                        let what = format!("{isa:?}, {len}, {scale}, {a:?}");
                        assert!(distance.to_bits() == plain.to_bits() || !finite, "{what}");
                        assert_eq!(
                            (max.to_bits(), all_finite),
                            (max_abs.to_bits(), finite),
                            "{what}"
                        );
                    }
                    let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                    let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                    let (_, _, (distance, max, all_finite)) = distances(Isa::detect(), &a32, &b32);
                    let (max_abs, finite) = super::super::validate::scan(&a32);
                    let plain = squared_distance(&a32, &b32);
                    assert!(
                        distance.to_bits() == plain.to_bits() || !finite,
                        "f32 {len} {scale}"
                    );
                    assert_eq!(
                        (max.to_bits(), all_finite),
                        (max_abs.to_bits(), finite),
                        "f32 {len} {scale}"
                    );
                }
            }
        }
    }

    #[test]
    fn norms_of_many_rows_are_each_rows_norm_to_the_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(10);
        for d in 1..=17 {
            for scale in [1e-150, 1.0, 1e150] {
                let rows: Vec<f64> = (0..13 * d)
                    .map(|_| rng.gen_range(-1.0..1.0) * scale)
                    .collect();
                for isa in Isa::supported() {
                    let mut norms = vec![0.0; 13];
                    isa.dispatch(Norms {
                        rows: &rows,
                        norms: &mut norms,
                    });
                    for (norm, row) in norms.iter().zip(rows.chunks_exact(d)) {
                        let one = distances(isa, row, row).1;
                        assert_eq!(norm.to_bits(), one.to_bits(), "{isa:?}, {d}, {scale}");
                    }
                }
            }
        }
        // Short rows: the eight partial sums are zero, the tail is the sum.
        let row = [0.1f64, 0.2, 0.3];
        let tail: f64 = row.iter().map(|v| v * v).sum();
        let norm = super::super::simd::squared_norm(&row);
        assert_eq!(norm.to_bits(), ((0.0 + 0.0) + tail).to_bits());
    }
}
