//! Hamerly's bounds, kept with float slack so that skipping a row never
//! changes its label: a row is skipped only when the kernel itself, run on
//! it, would certainly pick the centroid it already has.
//!
//! For each row `i` with label `a`, `upper[i]` bounds `||x_i - c_a||` from
//! above and `lower[i]` bounds `||x_i - c_j||` (every `j != a`) from below,
//! in real arithmetic. When the centroids move by `drift_j`, the bounds follow
//! by the triangle inequality: `upper += drift_a`, `lower -= max_{j != a}
//! drift_j`. Hamerly's second test adds `half_gap_a = min_{j != a} ||c_a -
//! c_j|| / 2`: every other centroid is at least `2 half_gap_a - upper` away.
//!
//! The kernel does not compute true distances: its score `||c||^2 - 2 x.c`
//! (twice a chain of `d` fused multiply-adds started at `||c||^2 / 2`)
//! plus `||x||^2` differs from `||x - c||^2` by at most `error = (2d + 8) eps
//! (||x|| + max ||c||)^2` (with the row's own norm when fresh bounds are set,
//! the largest row norm when they are tested; the classic bound for a dot product of length
//! `d`, doubled for the portable kernel's separate multiply and add, with room
//! for the norms and the last subtraction). When every other centroid is
//! farther than the assigned one by more than twice that error in squared
//! distance (`lower^2 - upper^2 > 2 error`), the kernel's score for `a` is
//! strictly the lowest and the kernel would pick `a`, so the row is skipped.
//! Otherwise the upper bound is tightened with the row's exact distance and
//! the test retried; a row that still fails goes back to the kernel, which
//! also gives it fresh bounds. Every bound is rounded outwards; carrying the
//! stored `f32` bounds over the drift is done in `f32` arithmetic with its
//! own slack (`Geometry::carried`), sixteen rows to a register with AVX-512,
//! eight with AVX2.
//!
//! Labels are therefore the plain kernel's: a fit with bounds has the same
//! labels and iterations as one without. Its centroids and inertia agree
//! to rounding (about 1e-12, relative), because a bounded step of `f64`
//! data updates the last step's sums with the rows that change cluster
//! instead of summing every row afresh (`f32` data is summed afresh).
//!
//! The bounds can also show that a whole step would change no label
//! ([`Bounds::labels_hold`]) without reading the data: the fit then ends
//! there, one pass over X early, its inertia summed from the previous
//! step's per-cluster sums instead of the data (the same to about 1e-12,
//! relative, in `f64`). A longer fit that keeps the rows' squared norms
//! (long rows of large data) sums its inertia from them and the clusters'
//! sums in the same way, where that loses no more.

//!
//! - `geometry`: what one step needs to carry, test, tighten and set the
//!   bounds (the arithmetic, row by row; `simd::carry_over` repeats it in
//!   vectors).
//! - `scratch`: what the calls of one chunk share.

mod geometry;
mod scratch;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::chunks::{chunk_rows, task_min_len, unsettled, BLOCK_ROWS};
use super::float::Float;
use super::kernel::{Layout, PreparedCentroids};
use super::simd::{Isa, NextRows, Simd, WithSimd};

pub use geometry::Geometry;
pub use scratch::Scratch;

/// One chunk's upper and lower bounds, and its rows' kept squared norms
/// (see [`Bounds::with_norms`]; empty where none are kept).
pub type ChunkBounds<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f64]);

/// Whether bounds can pay for themselves on `n` rows of `d` features and
/// `k` centroids: when scoring a row costs the kernel at least
/// [`MIN_ROW_VECTORS`] vector operations with centroids in lanes (`d *
/// ceil(k / lanes)` multiply-adds), [`ROWS_IN_LANES_MIN_VECTORS`] with rows
/// in lanes (`k * (d + 3) / lanes`: per centroid, `d` multiply-adds, a
/// compare, a minimum and a blend), where carrying a row's bounds over
/// costs about as much as a few of them. With rows in lanes the bounds pay
/// only on many rows of `f64` data: what they save there is reading the
/// rows they settle, and `f32` data is summed afresh every step, every row
/// read (measurements in `docs/tuning.md`).
pub fn worthwhile<F>(n: usize, d: usize, k: usize) -> bool {
    let isa = Isa::detect();
    let lanes = isa.lanes::<F>();
    match Layout::choose(d, isa) {
        Layout::RowsInLanes => {
            std::mem::size_of::<F>() == 8
                && n >= ROWS_IN_LANES_MIN_ROWS
                && k * (d + 3) >= ROWS_IN_LANES_MIN_VECTORS * lanes
        }
        Layout::CentroidsInLanes => d * k.div_ceil(lanes) >= MIN_ROW_VECTORS,
    }
}

/// See [`worthwhile`].
pub const MIN_ROW_VECTORS: usize = 16;

/// See [`worthwhile`].
pub const ROWS_IN_LANES_MIN_VECTORS: usize = 8;

/// The rows a bounded step of `d` features worked on, as the suspension
/// of bounds that do not pay weighs them: the `active` rows it sent to the
/// kernel and, with rows in lanes (where scoring a row costs about what
/// tightening its bound does), the rows it tightened too: `read` counts
/// both.
pub fn rows_worked(d: usize, active: usize, read: u64) -> usize {
    match Layout::choose(d, Isa::detect()) {
        Layout::RowsInLanes => read as usize,
        Layout::CentroidsInLanes => active,
    }
}

/// See [`worthwhile`]: with rows in lanes, the fewest rows for bounds.
pub const ROWS_IN_LANES_MIN_ROWS: usize = 50_000;

/// See [`Bounds::labels_hold`]: at most `n / HOLD_KERNEL_FRACTION` rows
/// through the kernel.
pub const HOLD_KERNEL_FRACTION: usize = 256;

/// See [`Bounds::kernel_rows_many`]: at least `n / MANY_KERNEL_ROWS_FRACTION`
/// rows through the kernel.
pub const MANY_KERNEL_ROWS_FRACTION: usize = 2;

/// Per-row bounds and the centroids they refer to.
///
/// Bounds are kept in `f32` whatever the data's type, rounded outwards
/// (they only need to hold, not to be tight to the last bit): 8 bytes a row,
/// half the memory to fill for `f64` data.
#[derive(Debug, Clone)]
pub struct Bounds<F> {
    /// Above each row's distance to its assigned centroid.
    upper: Vec<f32>,
    /// Below each row's distance to every other centroid.
    lower: Vec<f32>,
    /// The centroids the bounds hold for; `None` before the first assignment.
    reference: Option<Array2<F>>,
    /// No row is longer than this (`sqrt(d)` times the largest magnitude).
    row_norm_max: f64,
    /// Rows the last step sent to the kernel; `None` until a step has
    /// tested these bounds (the step that sets them sends every row).
    kernel_rows: Option<usize>,
    /// Each row's squared norm as fresh bounds need it, NaN until a step
    /// has computed it; empty where none are kept (see
    /// [`ROW_NORMS_MIN_BYTES`]).
    norms: Vec<f64>,
}

/// Rows of at least this many bytes keep their squared norms for the
/// fresh bounds of later steps (8 bytes a row: at most a 32nd of the data),
/// in data of at least [`ROW_NORMS_MIN_DATA_BYTES`]: each setting step, and
/// each step whose rows mostly go to the kernel, would otherwise read
/// every row again for it, after the kernel.
pub const ROW_NORMS_MIN_BYTES: usize = 256;

/// See [`ROW_NORMS_MIN_BYTES`]: smaller data (in the last-level cache)
/// is fitted in a few steps, where the kept norms' allocation (a page
/// fault every 4 KB) costs more than the norms it spares.
pub const ROW_NORMS_MIN_DATA_BYTES: usize = 32 << 20;

impl<F: Float> Bounds<F> {
    /// [`Bounds::with_norms`] keeping no row norms (as the steps' tests
    /// use them).
    #[cfg(test)]
    pub fn new(n: usize, row_norm_max: f64) -> Self {
        Bounds::with_norms(n, row_norm_max, Vec::new())
    }

    /// Bounds for `n` rows, none of them set yet; `row_norm_max` is at least
    /// the Euclidean norm of every row (infinite when not known yet: the
    /// first assignment does not need it, and nothing is skipped until it
    /// is set). They keep the rows' squared norms in `norms`: NaN where not
    /// known yet, or those earlier bounds of the same data kept
    /// ([`Bounds::into_norms`]); empty keeps none.
    pub fn with_norms(n: usize, row_norm_max: f64, norms: Vec<f64>) -> Self {
        debug_assert!(norms.is_empty() || norms.len() == n);
        Bounds {
            upper: vec![0.0; n],
            lower: vec![0.0; n],
            reference: None,
            row_norm_max,
            kernel_rows: None,
            norms,
        }
    }

    /// [`Bounds::with_norms`] for rows of `d` features, keeping their
    /// squared norms where rows take [`ROW_NORMS_MIN_BYTES`] or more and the
    /// data [`ROW_NORMS_MIN_DATA_BYTES`].
    pub fn for_rows(n: usize, d: usize, row_norm_max: f64) -> Self {
        let row_bytes = d * std::mem::size_of::<F>();
        let keep = row_bytes >= ROW_NORMS_MIN_BYTES && n * row_bytes >= ROW_NORMS_MIN_DATA_BYTES;
        let norms = if keep { vec![f64::NAN; n] } else { Vec::new() };
        Bounds::with_norms(n, row_norm_max, norms)
    }

    /// The rows' kept squared norms, for the next bounds of the same data.
    pub fn into_norms(self) -> Vec<f64> {
        self.norms
    }

    /// Whether the last step sent at least one row in
    /// [`MANY_KERNEL_ROWS_FRACTION`] to the kernel: not only rows near a
    /// boundary then (with many centroids, Hamerly's one lower bound can
    /// settle none), so the next step's kernel rows are worth screening in
    /// `f32` as a plain pass's are. True too before any step has tested
    /// the bounds.
    pub fn kernel_rows_many(&self) -> bool {
        self.kernel_rows
            .is_none_or(|rows| rows * MANY_KERNEL_ROWS_FRACTION >= self.upper.len())
    }

    /// Whether a step has tested these bounds since they were set.
    pub fn tested(&self) -> bool {
        self.kernel_rows.is_some()
    }

    /// Records how many rows the step just run sent to the kernel.
    pub fn set_kernel_rows(&mut self, rows: usize) {
        self.kernel_rows = Some(rows);
    }

    /// Sets the bound on row norms, once the data's magnitudes are known.
    pub fn set_row_norm_max(&mut self, row_norm_max: f64) {
        self.row_norm_max = row_norm_max;
    }

    /// Whether a Lloyd step against `centroids` would leave every label as
    /// it is, decided from the bounds (set by the last step) without
    /// changing them: rows the bounds cannot settle get their exact distance
    /// to their centroid and, failing that, the kernel, reading only those
    /// rows of `x` (`(labels.len(), d)`, row-major). `Some((distances,
    /// rows))` (the single distances computed, `k` per kernel row, and the
    /// rows read) when every label holds; `None` as soon as one could
    /// change, or when more than one row in [`HOLD_KERNEL_FRACTION`] needs
    /// the kernel (the step is cheaper then).
    pub fn labels_hold(
        &self,
        centroids: ArrayView2<F>,
        x: &[F],
        labels: &[u32],
    ) -> Option<(u64, u64)> {
        let reference = self.reference.as_ref()?;
        let (k, d) = centroids.dim();
        let geometry = Geometry::new(centroids, Some(reference), self.row_norm_max);
        if !geometry.settles_rows() {
            return None;
        }
        let standard = centroids.as_standard_layout();
        let flat = standard.as_slice().expect("standard layout is contiguous");
        let prepared = PreparedCentroids::new(centroids, Isa::detect());
        let rows = chunk_rows(labels.len());
        let budget = labels.len() / HOLD_KERNEL_FRACTION;
        let (exact, kernel) = x
            .par_chunks(rows * d)
            .zip(labels.par_chunks(rows))
            .zip(self.upper.par_chunks(rows).zip(self.lower.par_chunks(rows)))
            .with_min_len(task_min_len())
            .map(|((x, labels), (upper, lower))| {
                prepared.isa().dispatch(HoldChunk {
                    geometry: &geometry,
                    prepared: &prepared,
                    centroids: flat,
                    x,
                    labels,
                    bounds: (upper, lower),
                    budget,
                })
            })
            .try_reduce(|| (0, 0), |a, b| Some((a.0 + b.0, a.1 + b.1)))?;
        if kernel > budget {
            return None;
        }
        Some(((exact + kernel * k) as u64, (exact + kernel) as u64))
    }

    /// The geometry of `centroids` (about to be assigned against), with the
    /// drift since the bounds were set, and the row bounds to update, split
    /// into chunks of `rows`. The bounds then refer to `centroids`.
    pub fn prepare(
        &mut self,
        centroids: ArrayView2<F>,
        rows: usize,
    ) -> (Geometry, Vec<ChunkBounds<'_>>) {
        let geometry = Geometry::new(centroids, self.reference.as_ref(), self.row_norm_max);
        self.reference = Some(centroids.to_owned());
        // Where no norms are kept, an empty slice for each chunk.
        let norms = self
            .norms
            .chunks_mut(rows)
            .chain(std::iter::repeat_with(|| &mut [][..]));
        let chunks = self
            .upper
            .chunks_mut(rows)
            .zip(self.lower.chunks_mut(rows))
            .zip(norms)
            .map(|((upper, lower), norms)| (upper, lower, norms))
            .collect();
        (geometry, chunks)
    }
}

/// One chunk of [`Bounds::labels_hold`]: whether its labels hold, with the
/// exact distances and kernel rows it took (`None`: one could change, or
/// the kernel rows passed the budget).
struct HoldChunk<'a, F> {
    geometry: &'a Geometry,
    prepared: &'a PreparedCentroids<F>,
    /// `(k, d)` row-major.
    centroids: &'a [F],
    x: &'a [F],
    labels: &'a [u32],
    bounds: (&'a [f32], &'a [f32]),
    budget: usize,
}

impl<F: Float> WithSimd for HoldChunk<'_, F> {
    type Output = Option<(usize, usize)>;

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> Self::Output {
        let (upper, lower) = self.bounds;
        let d = self.x.len() / self.labels.len().max(1);
        let (mut exact, mut kernel) = (0usize, 0usize);
        let blocks = self
            .labels
            .chunks(BLOCK_ROWS)
            .zip(upper.chunks(BLOCK_ROWS))
            .zip(lower.chunks(BLOCK_ROWS));
        for (b, ((labels, upper), lower)) in blocks.enumerate() {
            let n = labels.len();
            let x = &self.x[b * BLOCK_ROWS * d..][..n * d];
            // Carried (and tightened) as a step would, on copies: the
            // bounds stay as the last step set them.
            let mut carried = [[0f32; BLOCK_ROWS]; 2];
            carried[0][..n].copy_from_slice(upper);
            carried[1][..n].copy_from_slice(lower);
            let [up, low] = &mut carried;
            let (sure, tightened) = self
                .geometry
                .settle(
                    simd,
                    self.centroids,
                    x,
                    labels,
                    &mut up[..n],
                    &mut low[..n],
                    None,
                )
                .expect("the geometry settles rows");
            exact += tightened;
            for i in unsettled(sure, n) {
                kernel += 1;
                let mut nearest = [0u32];
                self.prepared
                    .assign_in(simd, &x[i * d..(i + 1) * d], &mut nearest, NextRows::NONE);
                if nearest[0] != labels[i] || kernel > self.budget {
                    return None;
                }
            }
        }
        Some((exact, kernel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tightened_rows_count_as_work_where_the_kernel_is_cheap() {
        let isa = Isa::detect();
        for d in [1, 2, 4, 5, 10, 100] {
            let expected = match Layout::choose(d, isa) {
                Layout::RowsInLanes => 700,
                Layout::CentroidsInLanes => 300,
            };
            assert_eq!(rows_worked(d, 300, 700), expected, "d={d}");
        }
    }

    #[test]
    fn bounds_are_kept_where_a_row_costs_the_kernel_enough() {
        // Centroids in lanes: d * ceil(k / lanes) vector multiply-adds.
        assert!(worthwhile::<f64>(1000, 10, 30));
        assert!(worthwhile::<f64>(1000, 100, 2));
        assert!(!worthwhile::<f64>(1_000_000, 10, 8) || Isa::detect().lanes::<f64>() < 8);
        if Layout::choose(2, Isa::detect()) == Layout::RowsInLanes {
            // Rows in lanes, 8 f64 lanes with AVX-512 (4 with AVX2):
            // k (d + 3) / lanes >= 8 from 50000 rows.
            let lanes = Isa::detect().lanes::<f64>();
            let enough = |d: usize, k: usize| k * (d + 3) >= ROWS_IN_LANES_MIN_VECTORS * lanes;
            for (n, d, k) in [
                (100_000, 2, 30),
                (49_999, 2, 30),
                (1_000_000, 2, 8),
                (50_000, 4, 30),
            ] {
                assert_eq!(
                    worthwhile::<f64>(n, d, k),
                    n >= ROWS_IN_LANES_MIN_ROWS && enough(d, k),
                    "n={n} d={d} k={k}"
                );
            }
            if lanes == 8 {
                assert!(worthwhile::<f64>(100_000, 2, 30));
                assert!(!worthwhile::<f64>(10_000, 2, 30));
                assert!(!worthwhile::<f64>(1_000_000, 2, 8));
            }
            if lanes == 4 {
                assert!(worthwhile::<f64>(100_000, 2, 8));
                assert!(worthwhile::<f64>(100_000, 4, 8));
                assert!(!worthwhile::<f64>(1_000_000, 2, 2));
            }
            // f32 data is summed afresh every step: nothing to save.
            for (n, d, k) in [(100_000, 2, 30), (1_000_000, 4, 1000)] {
                assert!(!worthwhile::<f32>(n, d, k), "n={n} d={d} k={k}");
            }
        }
        // With centroids in lanes, f32 as f64 (per its lanes).
        assert!(worthwhile::<f32>(100_000, 10, 30));
        assert!(worthwhile::<f32>(1000, 100, 30));
    }
}
