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
//! also gives it fresh bounds. Every bound is rounded outwards.
//!
//! Labels are therefore the plain kernel's, and since every row is still
//! added to its cluster's sum in the same order, a fit with bounds has the
//! same labels, centroids and iterations as one without, to the bit.
//!
//! The bounds can also show that a whole step would change no label
//! ([`Bounds::labels_hold`]) without reading the data: the fit then ends
//! there, one pass over X early, its inertia summed from the previous
//! step's per-cluster sums instead of the data (the same to about 1e-12,
//! relative, in `f64`).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::float::Float;
use super::kernel::{squared_distance, squared_norm, Isa, PreparedCentroids};

/// One chunk's upper and lower bounds.
pub type ChunkBounds<'a> = (&'a mut [f32], &'a mut [f32]);

/// Whether bounds can pay for themselves on `k` centroids of `d` features:
/// when scoring a row costs the kernel at least [`MIN_ROW_VECTORS`] vector
/// multiply-adds (`d * ceil(k / lanes)`). Below that, testing a row's bounds
/// costs about as much as scoring it (measured: d = 2 with k = 8 or 30, and
/// d = 10 with k = 8, run faster without).
pub fn worthwhile<F>(d: usize, k: usize) -> bool {
    d * k.div_ceil(Isa::detect().lanes::<F>()) >= MIN_ROW_VECTORS
}

/// See [`worthwhile`].
pub const MIN_ROW_VECTORS: usize = 16;

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
}

impl<F: Float> Bounds<F> {
    /// Bounds for `n` rows, none of them set yet; `row_norm_max` is at least
    /// the Euclidean norm of every row (infinite when not known yet: the
    /// first assignment does not need it, and nothing is skipped until it
    /// is set).
    pub fn new(n: usize, row_norm_max: f64) -> Self {
        Bounds {
            upper: vec![0.0; n],
            lower: vec![0.0; n],
            reference: None,
            row_norm_max,
        }
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
    /// rows read) when every label holds; `None` as soon as one could change, or when more than one row
    /// in [`HOLD_KERNEL_FRACTION`] needs the kernel (the step is cheaper then).
    pub fn labels_hold(
        &self,
        centroids: ArrayView2<F>,
        x: &[F],
        labels: &[u32],
    ) -> Option<(u64, u64)> {
        let reference = self.reference.as_ref()?;
        let (k, d) = centroids.dim();
        let geometry = Geometry::new(centroids, Some(reference), self.row_norm_max);
        let motion = geometry.motion.as_ref()?;
        let standard = centroids.as_standard_layout();
        let flat = standard.as_slice().expect("standard layout is contiguous");
        let prepared = PreparedCentroids::new(centroids);
        let rows = super::chunks::chunk_rows(labels.len());
        let budget = labels.len() / HOLD_KERNEL_FRACTION;
        let (exact, kernel) = x
            .par_chunks(rows * d)
            .zip(labels.par_chunks(rows))
            .zip(self.upper.par_chunks(rows).zip(self.lower.par_chunks(rows)))
            .map(|((x, labels), (upper, lower))| {
                let (mut exact, mut kernel) = (0usize, 0usize);
                for (i, (&label, (&upper, &lower))) in
                    labels.iter().zip(upper.iter().zip(lower)).enumerate()
                {
                    let a = label as usize;
                    let (up, low) = geometry.moved(motion, a, upper, lower);
                    if geometry.certain(a, up, low) {
                        continue;
                    }
                    let row = &x[i * d..(i + 1) * d];
                    exact += 1;
                    let centroid = &flat[a * d..(a + 1) * d];
                    if geometry.certain(a, geometry.tightened(row, centroid), low) {
                        continue;
                    }
                    kernel += 1;
                    let mut nearest = [0u32];
                    prepared.assign(row, &mut nearest);
                    if nearest[0] != label || kernel > budget {
                        return None;
                    }
                }
                Some((exact, kernel))
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
        let chunks = self
            .upper
            .chunks_mut(rows)
            .zip(self.lower.chunks_mut(rows))
            .collect();
        (geometry, chunks)
    }
}

/// See [`Bounds::labels_hold`]: at most `n / HOLD_KERNEL_FRACTION` rows
/// through the kernel.
pub const HOLD_KERNEL_FRACTION: usize = 256;

/// How far each centroid moved since the bounds were set.
#[derive(Debug, Clone)]
struct Motion {
    /// `||c_j - c_j^before||`, rounded up.
    drift: Vec<f64>,
    /// `max_{j != a} drift_j` for each `a`.
    drift_of_others: Vec<f64>,
}

/// What one step needs to update and test the bounds.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// `None` before the first assignment: every row goes to the kernel.
    motion: Option<Motion>,
    /// `min_{j != a} ||c_a - c_j|| / 2`, rounded down.
    half_gap: Vec<f64>,
    /// The kernel's error bound in squared distance, for any row.
    error: f64,
    /// The same for a row of norm `r`: `error_scale * (r + centroid_norm_max)^2`.
    error_scale: f64,
    centroid_norm_max: f64,
    /// Relative widening that covers the rounding of one computed distance.
    outward: f64,
}

impl Geometry {
    fn new<F: Float>(
        centroids: ArrayView2<F>,
        before: Option<&Array2<F>>,
        row_norm_max: f64,
    ) -> Self {
        let (k, d) = centroids.dim();
        let eps = F::epsilon().as_f64();
        let outward = (2 * d + 16) as f64 * eps;
        let up = |v: f64| v * (1.0 + outward);
        let down = |v: f64| v * (1.0 - outward);
        let distance = |a: ndarray::ArrayView1<F>, b: ndarray::ArrayView1<F>| {
            a.iter()
                .zip(b)
                .map(|(&p, &q)| (p.as_f64() - q.as_f64()).powi(2))
                .sum::<f64>()
                .sqrt()
        };

        let centroid_norm_max = up(centroids
            .rows()
            .into_iter()
            .map(|c| c.iter().map(|v| v.as_f64().powi(2)).sum::<f64>().sqrt())
            .fold(0.0, f64::max));
        let error_scale = up((2 * d + 8) as f64 * eps);
        let error = error_scale * up((row_norm_max + centroid_norm_max).powi(2));

        let mut half_gap = vec![f64::INFINITY; k];
        for a in 0..k {
            for b in a + 1..k {
                let gap = down(distance(centroids.row(a), centroids.row(b))) / 2.0;
                half_gap[a] = half_gap[a].min(gap);
                half_gap[b] = half_gap[b].min(gap);
            }
        }

        let motion = before.map(|before| {
            let drift: Vec<f64> = (0..k)
                .map(|j| up(distance(centroids.row(j), before.row(j))))
                .collect();
            // The largest drift of the others: the largest, or for the
            // centroid holding it, the second largest.
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_unstable_by(|&a, &b| drift[b].total_cmp(&drift[a]));
            let largest = order.first().map_or(0.0, |&j| drift[j]);
            let second = order.get(1).map_or(0.0, |&j| drift[j]);
            let drift_of_others = (0..k)
                .map(|j| if j == order[0] { second } else { largest })
                .collect();
            Motion {
                drift,
                drift_of_others,
            }
        });
        Geometry {
            motion,
            half_gap,
            error,
            error_scale,
            centroid_norm_max,
            outward,
        }
    }

    /// A row's bounds (`upper` to its centroid `a`, `lower` to the others)
    /// carried over the centroids' drift, rounded outwards.
    fn moved(&self, motion: &Motion, a: usize, upper: f32, lower: f32) -> (f64, f64) {
        let up = (f64::from(upper) + motion.drift[a]) * (1.0 + self.outward);
        let low = (f64::from(lower) - motion.drift_of_others[a]).max(0.0);
        (up, low)
    }

    /// The exact distance from `row` to `centroid`, rounded up: a tighter
    /// upper bound.
    fn tightened<F: Float>(&self, row: &[F], centroid: &[F]) -> f64 {
        let exact = squared_distance(row, centroid);
        (exact.as_f64() * (1.0 + self.outward)).sqrt() * (1.0 + self.outward)
    }

    /// Whether the kernel certainly picks `a` for a row whose distance to
    /// `c_a` is at most `upper` and to every other centroid at least `lower`.
    fn certain(&self, a: usize, upper: f64, lower: f64) -> bool {
        let lower = lower.max(2.0 * self.half_gap[a] - upper) * (1.0 - self.outward);
        // Written so that NaN (never expected) means "not certain".
        lower > upper && (lower - upper) * (lower + upper) > 2.0 * self.error
    }

    /// Labels the rows of `x` (`(fresh.len(), d)`, row-major) into `fresh`,
    /// from their labels of the last step (`labels`) and their bounds,
    /// updating the bounds; only the rows whose label could change are run
    /// through the kernel. Returns how many rows were (each scored against
    /// every centroid) and how many single exact distances were computed.
    ///
    /// `centroids` is `(k, d)` row-major, the same centroids as `prepared`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)] // into the step's per-instruction-set functions
    pub fn assign<F: Float>(
        &self,
        prepared: &PreparedCentroids<F>,
        centroids: &[F],
        x: &[F],
        labels: &[u32],
        fresh: &mut [u32],
        upper: &mut [f32],
        lower: &mut [f32],
        scratch: &mut Scratch<F>,
    ) -> (usize, usize) {
        let n = fresh.len();
        let d = x.len() / n.max(1);
        let mut exact_distances = 0;
        scratch.pending.clear();
        match &self.motion {
            None => scratch.pending.extend(0..n),
            Some(motion) => {
                for (i, row) in x.chunks_exact(d).enumerate() {
                    let a = labels[i] as usize;
                    fresh[i] = labels[i];
                    let (mut up, low) = self.moved(motion, a, upper[i], lower[i]);
                    if !self.certain(a, up, low) {
                        up = self.tightened(row, &centroids[a * d..(a + 1) * d]);
                        exact_distances += 1;
                        if !self.certain(a, up, low) {
                            scratch.pending.push(i);
                            continue;
                        }
                    }
                    upper[i] = round_up(up * (1.0 + self.outward));
                    lower[i] = round_down(low * (1.0 - self.outward));
                }
            }
        }
        let active = scratch.pending.len();
        if active == 0 {
            return (0, exact_distances);
        }
        scratch.scores.resize(2 * n, F::zero());
        scratch.up.resize(n, 0.0);
        scratch.low.resize(n, 0.0);
        let in_place = active * 4 >= n * 3;
        if in_place {
            // Most rows are active: run the kernel on all of them in place
            // (the skipped ones get the label they have, and fresh bounds).
            let scores = &mut scratch.scores[..2 * n];
            prepared.assign_with_scores(x, fresh, scores);
            let (up, low) = (&mut scratch.up[..n], &mut scratch.low[..n]);
            self.fresh_bounds(x, scores, up, low);
            for i in 0..n {
                upper[i] = round_up(up[i]);
                lower[i] = round_down(low[i]);
            }
        } else {
            scratch.rows.clear();
            for &i in &scratch.pending {
                scratch.rows.extend_from_slice(&x[i * d..(i + 1) * d]);
            }
            let mut labels = [0u32; SUBCHUNK_CAPACITY];
            let labels = &mut labels[..active];
            let scores = &mut scratch.scores[..2 * active];
            prepared.assign_with_scores(&scratch.rows, labels, scores);
            let (up, low) = (&mut scratch.up[..active], &mut scratch.low[..active]);
            self.fresh_bounds(&scratch.rows, scores, up, low);
            for (p, &i) in scratch.pending.iter().enumerate() {
                fresh[i] = labels[p];
                upper[i] = round_up(up[p]);
                lower[i] = round_down(low[p]);
            }
        }
        (if in_place { n } else { active }, exact_distances)
    }

    /// Fresh bounds for the rows of `rows` from the kernel's best and
    /// runner-up scores (`scores[2 * i]`, `scores[2 * i + 1]`), widened for
    /// the rounding of the arithmetic: into `up`
    /// and `low`, one per row (before rounding to `f32`). Two loops, so that the second (square roots
    /// and all) is vectorised across rows.
    #[inline(always)]
    fn fresh_bounds<F: Float>(&self, rows: &[F], scores: &[F], up: &mut [f64], low: &mut [f64]) {
        let d = rows.len() / up.len().max(1);
        for (norm, row) in up.iter_mut().zip(rows.chunks_exact(d)) {
            *norm = squared_norm(row);
        }
        let centroid_reach = self.centroid_norm_max * self.centroid_norm_max;
        let (widen, narrow) = (1.0 + self.outward, 1.0 - self.outward);
        for (i, (up, low)) in up.iter_mut().zip(low.iter_mut()).enumerate() {
            let norm = *up;
            // (|x| + max |c|)^2 <= 2 (|x|^2 + max |c|^2): no square root needed.
            let error = self.error_scale * (2.0 * (norm + centroid_reach) * widen * widen * widen);
            let best = scores[2 * i].as_f64();
            let runner_up = scores[2 * i + 1].as_f64();
            *up = (norm + best + error).max(0.0).sqrt() * widen * widen;
            *low = (norm + runner_up - error).max(0.0).sqrt() * narrow * narrow;
        }
    }
}

/// The most rows [`Geometry::assign`] takes at once.
pub const SUBCHUNK_CAPACITY: usize = 64;

/// Buffers reused across calls of [`Geometry::assign`] (one per chunk).
#[derive(Debug, Default)]
pub struct Scratch<F> {
    pending: Vec<usize>,
    rows: Vec<F>,
    scores: Vec<F>,
    /// Fresh upper and lower bounds, one per row of a sub-chunk.
    up: Vec<f64>,
    low: Vec<f64>,
}

/// An `f32` not below `v` (+inf above the range; NaN stays NaN, which no
/// test trusts): widened by more than rounding to nearest can take away,
/// so that the conversion needs no branch.
fn round_up(v: f64) -> f32 {
    (v * (1.0 + F32_ROUNDING) + F32_SPACING_MIN) as f32
}

/// An `f32` not above `v` (`v >= 0`; about `f32::MAX` above the range).
fn round_down(v: f64) -> f32 {
    (v.min(f64::from(f32::MAX)) * (1.0 - F32_ROUNDING) - F32_SPACING_MIN).max(0.0) as f32
}

/// Twice `f32`'s unit roundoff: rounding to nearest moves a normal value
/// by at most half of it.
const F32_ROUNDING: f64 = f32::EPSILON as f64;
/// The spacing of subnormal `f32` values: rounding to nearest moves a tiny
/// value by at most half of it.
const F32_SPACING_MIN: f64 = 1.401_298_464_324_817e-45;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bounds_round_outwards() {
        let cases = [
            0.0,
            1e-45,
            3e-39,
            1e-30,
            0.1,
            1.0 / 3.0,
            1.0,
            2.0f64.sqrt(),
            1e10 + 0.5,
            3.4e38,
            1e300,
        ];
        for v in cases {
            assert!(f64::from(round_up(v)) >= v, "up {v:e}");
            assert!(f64::from(round_down(v)) <= v, "down {v:e}");
            assert!(round_down(v) >= 0.0);
        }
        assert_eq!(round_up(f64::INFINITY), f32::INFINITY);
        assert!(round_down(f64::INFINITY).is_finite() && round_down(f64::INFINITY) > 3.4e38);
    }
}
