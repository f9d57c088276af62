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

/// What carrying bounds over one step's drift needs (see
/// [`Geometry::carry_over`]).
struct CarryOver<'a> {
    /// Per centroid `a`: its drift, the largest drift of the others, half
    /// the gap to its nearest other centroid.
    drift: &'a [f64],
    others: &'a [f64],
    half_gap: &'a [f64],
    widen: f64,
    narrow: f64,
    error2: f64,
}

impl CarryOver<'_> {
    /// [`Geometry::carry_over_rows`], eight rows at a time.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the three slices are as long, at most 64.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_avx512(&self, labels: &[u32], upper: &mut [f32], lower: &mut [f32]) -> u64 {
        use std::arch::x86_64::*;
        let n = labels.len();
        let k = self.drift.len();
        let last = _mm512_set1_epi64((k - 1) as i64);
        let splat = _mm512_set1_pd;
        let (widen, narrow, error2) = (splat(self.widen), splat(self.narrow), splat(self.error2));
        let (zero, two) = (splat(0.0), splat(2.0));
        let (rounding, spacing) = (splat(F32_ROUNDING), splat(F32_SPACING_MIN));
        let f32_max = splat(f64::from(f32::MAX));
        // Up to 32 centroids, the per-centroid terms sit in registers and
        // are picked by permutes; beyond, they are gathered from memory.
        let in_registers = k <= 32;
        let registers = |table: &[f64]| {
            let mut padded = [0.0; 32];
            let used = table.len().min(32);
            padded[..used].copy_from_slice(&table[..used]);
            // SAFETY: `padded` holds 32 elements, four registers' worth.
            unsafe { [0, 8, 16, 24].map(|at| _mm512_loadu_pd(padded.as_ptr().add(at))) }
        };
        let tables = [self.drift, self.others, self.half_gap].map(registers);
        let lookup = |a: __m512i, table: usize, memory: &[f64]| -> __m512d {
            // SAFETY: indices are clamped below k (the table's length).
            unsafe {
                if in_registers {
                    let [t0, t1, t2, t3] = tables[table];
                    let low = _mm512_permutex2var_pd(t0, a, t1);
                    let high = _mm512_permutex2var_pd(t2, a, t3);
                    let upper_half = _mm512_test_epi64_mask(a, _mm512_set1_epi64(16));
                    _mm512_mask_blend_pd(upper_half, low, high)
                } else {
                    _mm512_i64gather_pd::<8>(a, memory.as_ptr())
                }
            }
        };
        let mut sure = 0u64;
        let mut i = 0;
        while i < n {
            let rows = (n - i).min(8);
            let lanes: __mmask16 = (1 << rows) - 1;
            // SAFETY (all below): masked loads and stores touch rows i..i + rows
            // only; gathered indices are clamped below k.
            unsafe {
                let label = _mm512_maskz_loadu_epi32(lanes, labels.as_ptr().add(i).cast());
                let a =
                    _mm512_min_epu64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(label)), last);
                let drift = lookup(a, 0, self.drift);
                let others = lookup(a, 1, self.others);
                let half_gap = lookup(a, 2, self.half_gap);
                let upper_in = _mm512_maskz_loadu_ps(lanes, upper.as_ptr().add(i));
                let lower_in = _mm512_maskz_loadu_ps(lanes, lower.as_ptr().add(i));
                let up = _mm512_mul_pd(
                    _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(upper_in)), drift),
                    widen,
                );
                let low = _mm512_max_pd(
                    _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(lower_in)), others),
                    zero,
                );
                let gap = _mm512_mul_pd(
                    _mm512_max_pd(low, _mm512_sub_pd(_mm512_mul_pd(two, half_gap), up)),
                    narrow,
                );
                let apart = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(gap, up);
                let clear = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(
                    _mm512_mul_pd(_mm512_sub_pd(gap, up), _mm512_add_pd(gap, up)),
                    error2,
                );
                sure |= u64::from(apart & clear & (lanes as u8)) << i;
                // round_up and round_down, lane-wise.
                let up_out = _mm512_add_pd(
                    _mm512_mul_pd(
                        _mm512_mul_pd(up, widen),
                        _mm512_add_pd(splat(1.0), rounding),
                    ),
                    spacing,
                );
                let low_out = _mm512_max_pd(
                    _mm512_sub_pd(
                        _mm512_mul_pd(
                            _mm512_min_pd(_mm512_mul_pd(low, narrow), f32_max),
                            _mm512_sub_pd(splat(1.0), rounding),
                        ),
                        spacing,
                    ),
                    zero,
                );
                _mm512_mask_storeu_ps(
                    upper.as_mut_ptr().add(i),
                    lanes,
                    _mm512_castps256_ps512(_mm512_cvtpd_ps(up_out)),
                );
                _mm512_mask_storeu_ps(
                    lower.as_mut_ptr().add(i),
                    lanes,
                    _mm512_castps256_ps512(_mm512_cvtpd_ps(low_out)),
                );
            }
            i += rows;
        }
        sure
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

    /// Every row's bounds carried over the drift ([`Self::moved`]) and
    /// stored rounded outwards; returns which rows [`Self::certain`] settles,
    /// bit `i` for row `i` (at most 64 rows). Eight rows at a time with
    /// AVX-512 ([`CarryOver`]), else row by row; the same arithmetic either
    /// way.
    #[inline(always)]
    fn carry_over(
        &self,
        motion: &Motion,
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> u64 {
        assert!(labels.len() <= 64 && upper.len() == labels.len() && lower.len() == labels.len());
        #[cfg(target_arch = "x86_64")]
        if Isa::detect() == Isa::Avx512 {
            // SAFETY: AVX-512F was detected; the lengths were checked above.
            return unsafe {
                self.carry_over_terms(motion)
                    .rows_avx512(labels, upper, lower)
            };
        }
        self.carry_over_rows(motion, labels, upper, lower)
    }

    /// [`Self::carry_over`], row by row.
    fn carry_over_rows(
        &self,
        motion: &Motion,
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> u64 {
        let mut sure = 0u64;
        for (i, ((&label, upper), lower)) in labels
            .iter()
            .zip(upper.iter_mut())
            .zip(lower.iter_mut())
            .enumerate()
        {
            let a = label as usize;
            let (up, low) = self.moved(motion, a, *upper, *lower);
            sure |= u64::from(self.certain(a, up, low)) << i;
            *upper = round_up(up * (1.0 + self.outward));
            *lower = round_down(low * (1.0 - self.outward));
        }
        sure
    }

    /// The terms of [`Self::moved`] and [`Self::certain`], for
    /// [`CarryOver`]'s vector code.
    fn carry_over_terms<'a>(&'a self, motion: &'a Motion) -> CarryOver<'a> {
        let k = self.half_gap.len();
        CarryOver {
            drift: &motion.drift[..k],
            others: &motion.drift_of_others[..k],
            half_gap: &self.half_gap[..k],
            widen: 1.0 + self.outward,
            narrow: 1.0 - self.outward,
            error2: 2.0 * self.error,
        }
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
                // Every row's bounds carried over the drift and tested, in a
                // loop without branches (it is vectorised); most rows end here.
                let sure = self.carry_over(motion, labels, upper, lower);
                fresh.copy_from_slice(labels);
                // The others: the exact distance to their centroid, then the
                // kernel if that does not settle them.
                for i in (0..n).filter(|&i| sure & (1 << i) == 0) {
                    let a = labels[i] as usize;
                    let row = &x[i * d..(i + 1) * d];
                    let up = self.tightened(row, &centroids[a * d..(a + 1) * d]);
                    exact_distances += 1;
                    if self.certain(a, up, f64::from(lower[i])) {
                        upper[i] = round_up(up * (1.0 + self.outward));
                    } else {
                        scratch.pending.push(i);
                    }
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
    #[cfg(target_arch = "x86_64")]
    fn carrying_bounds_over_is_the_same_row_by_row_and_eight_at_a_time() {
        use rand::{Rng, SeedableRng};
        if Isa::detect() != Isa::Avx512 {
            return; // nothing to compare the row-by-row carry-over with
        }
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(4);
        // k beyond 32 takes the gathering path; the others, permutes.
        for k in [1, 2, 5, 16, 17, 30, 32, 33, 40] {
            let d = 3;
            let before = Array2::from_shape_fn((k, d), |_| rng.gen_range(-1.0..1.0f64));
            let centroids = before.mapv(|v| v + rng.gen_range(-0.2..0.2));
            let geometry = Geometry::new(centroids.view(), Some(&before), 10.0);
            let motion = geometry.motion.as_ref().unwrap();
            let terms = geometry.carry_over_terms(motion);
            for n in [1, 7, 8, 13, 64] {
                let labels: Vec<u32> = (0..n).map(|_| rng.gen_range(0..k) as u32).collect();
                let upper: Vec<f32> = (0..n).map(|_| rng.gen_range(0.0..2.0)).collect();
                let lower: Vec<f32> = (0..n).map(|_| rng.gen_range(0.0..6.0)).collect();
                let (mut up_rows, mut low_rows) = (upper.clone(), lower.clone());
                let sure_rows =
                    geometry.carry_over_rows(motion, &labels, &mut up_rows, &mut low_rows);
                let (mut up_simd, mut low_simd) = (upper.clone(), lower.clone());
                // SAFETY: AVX-512F was detected; the slices are as long, at most 64.
                let sure_simd = unsafe { terms.rows_avx512(&labels, &mut up_simd, &mut low_simd) };
                assert_eq!(sure_rows, sure_simd, "k={k} n={n}");
                assert_eq!(up_rows, up_simd, "k={k} n={n}");
                assert_eq!(low_rows, low_simd, "k={k} n={n}");
                if n == 64 && k > 1 {
                    // Both outcomes occur.
                    assert!(
                        (1..64).contains(&sure_rows.count_ones()),
                        "k={k}: {sure_rows:b}"
                    );
                }
            }
        }
    }

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
