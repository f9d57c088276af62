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
//! own slack ([`Geometry::carried`]), sixteen rows to a register.
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
//! relative, in `f64`).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::float::Float;
use super::guess::{Guess, Record};
use super::kernel::{
    squared_distance, squared_norm, squared_norms, Isa, Layout, PreparedCentroids,
};

/// One chunk's upper and lower bounds.
pub type ChunkBounds<'a> = (&'a mut [f32], &'a mut [f32]);

/// Whether bounds can pay for themselves on `n` rows of `d` features and
/// `k` centroids: when scoring a row costs the kernel at least
/// [`MIN_ROW_VECTORS`] vector operations. Centroids in lanes costs `d *
/// ceil(k / lanes)` multiply-adds; rows in lanes costs `k * (d + 3) / lanes`
/// (per centroid, `d` multiply-adds, a compare, a minimum and a blend), and
/// there the bounds pay only on many rows. Measured (whole fits, 2 threads,
/// with and without bounds): faster without at d = 2 with k = 8, at d = 10
/// with k = 8, and at d = 2 with k = 30 up to 10000 rows; faster with at d =
/// 2 and 4 with k = 30 from 100000 rows, and at d = 10 to 100 with k = 30.
pub fn worthwhile<F>(n: usize, d: usize, k: usize) -> bool {
    let isa = Isa::detect();
    let lanes = isa.lanes::<F>();
    match Layout::choose(d, isa) {
        Layout::RowsInLanes => {
            n >= ROWS_IN_LANES_MIN_ROWS && k * (d + 3) >= MIN_ROW_VECTORS * lanes
        }
        Layout::CentroidsInLanes => d * k.div_ceil(lanes) >= MIN_ROW_VECTORS,
    }
}

/// See [`worthwhile`].
pub const MIN_ROW_VECTORS: usize = 16;

/// See [`worthwhile`]: with rows in lanes, the fewest rows for bounds.
pub const ROWS_IN_LANES_MIN_ROWS: usize = 50_000;

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
                let blocks = labels
                    .chunks(SUBCHUNK_CAPACITY)
                    .zip(upper.chunks(SUBCHUNK_CAPACITY))
                    .zip(lower.chunks(SUBCHUNK_CAPACITY));
                for (b, ((labels, upper), lower)) in blocks.enumerate() {
                    let n = labels.len();
                    let x = &x[b * SUBCHUNK_CAPACITY * d..][..n * d];
                    // Carried (and tightened) as a step would, on copies:
                    // the bounds stay as the last step set them.
                    let mut carried = [[0f32; SUBCHUNK_CAPACITY]; 2];
                    carried[0][..n].copy_from_slice(upper);
                    carried[1][..n].copy_from_slice(lower);
                    let [up, low] = &mut carried;
                    let (sure, tightened) =
                        geometry.carry_over(motion, x, flat, labels, &mut up[..n], &mut low[..n]);
                    exact += tightened;
                    for i in unsettled(sure, n) {
                        kernel += 1;
                        let mut nearest = [0u32];
                        prepared.assign(&x[i * d..(i + 1) * d], &mut nearest);
                        if nearest[0] != labels[i] || kernel > budget {
                            return None;
                        }
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
/// [`Geometry::carry_over`]), laid out for [`CarryOver::rows_avx512`].
struct CarryOver<'a> {
    motion: &'a Motion,
    /// [`Geometry::tables`].
    tables: &'a [f64],
    k: usize,
    /// Features of the centroids in `tables` (0: rows are not tightened here).
    features: usize,
    widen: f64,
    narrow: f64,
    error2: f64,
}

impl CarryOver<'_> {
    /// [`Geometry::carry_over_rows`] sixteen rows at a time then, when the
    /// tables hold the centroids, [`Geometry::tighten_rows`] for the rows
    /// left, gathered eight at a time (when a tenth to a quarter of the
    /// rows need it, as in most steps of 100000x2 with k = 30, tightening
    /// each half of sixteen rows that held one took about 15% more of the
    /// whole fit's time): the rows that are settled (bit `i` for row `i`)
    /// and how many exact distances were computed. `x` holds the rows, `(labels.len(),
    /// d)` row-major, with `d = self.features` (unused when that is 0).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the three slices are as long, at most 64,
    /// and `x` holds `labels.len() * self.features` elements.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_avx512<F: Float>(
        &self,
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> (u64, usize) {
        use std::arch::x86_64::*;
        let n = labels.len();
        let (k, d) = (self.k, self.features);
        let motion = self.motion;
        let stride = k.max(32);
        // Up to 32 centroids, a per-centroid term is picked from registers
        // by permutes; beyond, it is gathered from memory.
        let in_registers = k <= 32;
        let terms = [&motion.drift, &motion.others, &motion.gap2];
        // SAFETY: each table holds at least 32 elements (zero past k).
        let registers = terms.map(|t| unsafe {
            [
                _mm512_loadu_ps(t.as_ptr()),
                _mm512_loadu_ps(t.as_ptr().add(16)),
            ]
        });
        let lookup32 = |a: __m512i, table: usize| -> __m512 {
            if in_registers {
                let [t0, t1] = registers[table];
                _mm512_permutex2var_ps(t0, a, t1)
            } else {
                // SAFETY: indices are clamped below k, within the table.
                unsafe { _mm512_i32gather_ps::<4>(a, terms[table].as_ptr()) }
            }
        };
        let lookup64 = |a: __m512i, table: usize| -> __m512d {
            // SAFETY: each table has `stride >= max(k, 32)` elements;
            // indices are clamped below k.
            unsafe {
                let t = self.tables.as_ptr().add(table * stride);
                if in_registers {
                    let low =
                        _mm512_permutex2var_pd(_mm512_loadu_pd(t), a, _mm512_loadu_pd(t.add(8)));
                    let high = _mm512_permutex2var_pd(
                        _mm512_loadu_pd(t.add(16)),
                        a,
                        _mm512_loadu_pd(t.add(24)),
                    );
                    let upper_half = _mm512_test_epi64_mask(a, _mm512_set1_epi64(16));
                    _mm512_mask_blend_pd(upper_half, low, high)
                } else {
                    _mm512_i64gather_pd::<8>(a, t)
                }
            }
        };
        let splat = _mm512_set1_pd;
        let (widen, narrow, error2) = (splat(self.widen), splat(self.narrow), splat(self.error2));
        let (zero, two) = (splat(0.0), splat(2.0));
        let (rounding, spacing) = (splat(F32_ROUNDING), splat(F32_SPACING_MIN));
        let splat32 = _mm512_set1_ps;
        let (widen32, narrow32, error32) = (
            splat32(motion.widen),
            splat32(motion.narrow),
            splat32(motion.error2),
        );
        let (tiny, zero32) = (splat32(F32_TINY), _mm512_setzero_ps());
        let last = _mm512_set1_epi32((k - 1) as i32);
        // Whether the kernel certainly keeps each lane's label, for a
        // tightened upper bound (see `Geometry::certain`).
        let certain = |up: __m512d, low: __m512d, half_gap: __m512d| -> __mmask8 {
            let gap = _mm512_mul_pd(
                _mm512_max_pd(low, _mm512_sub_pd(_mm512_mul_pd(two, half_gap), up)),
                narrow,
            );
            let apart = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(gap, up);
            let clear = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(
                _mm512_mul_pd(_mm512_sub_pd(gap, up), _mm512_add_pd(gap, up)),
                error2,
            );
            apart & clear
        };
        // `round_up(up * widen)`, lane-wise, as `f32`.
        let stored_up = |up: __m512d| -> __m256 {
            _mm512_cvtpd_ps(_mm512_add_pd(
                _mm512_mul_pd(
                    _mm512_mul_pd(up, widen),
                    _mm512_add_pd(splat(1.0), rounding),
                ),
                spacing,
            ))
        };
        // Sixteen 32-bit lanes, masked only when some are past the end
        // (masked stores are slow on some CPUs).
        let load = |p: *const f32, lanes: __mmask16| -> __m512 {
            // SAFETY: the caller's mask covers elements in bounds only.
            unsafe {
                if lanes == 0xffff {
                    _mm512_loadu_ps(p)
                } else {
                    _mm512_maskz_loadu_ps(lanes, p)
                }
            }
        };
        let store = |p: *mut f32, lanes: __mmask16, v: __m512| {
            // SAFETY: as above.
            unsafe {
                if lanes == 0xffff {
                    _mm512_storeu_ps(p, v)
                } else {
                    _mm512_mask_storeu_ps(p, lanes, v)
                }
            }
        };
        if d > 0 {
            // The rows are read only where they need tightening, gathered
            // out of order: asked for in order first, while the bounds
            // are carried, so memory delivers them before they are needed
            // where X is beyond the caches.
            for offset in (0..std::mem::size_of_val(x)).step_by(64) {
                // SAFETY: within `x`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().cast::<i8>().add(offset)) };
            }
        }
        let mut sure = 0u64;
        // The rows the carried bounds leave unsettled, bit `i` for row `i`.
        let mut todo = 0u64;
        let mut i = 0;
        while i < n {
            let rows = (n - i).min(16);
            let lanes = ((1u32 << rows) - 1) as __mmask16;
            // SAFETY (all below): masked loads and stores touch rows
            // i..i + rows only; table indices are clamped below k.
            unsafe {
                let label = _mm512_castps_si512(load(labels.as_ptr().add(i).cast(), lanes));
                let a = _mm512_min_epu32(label, last);
                // `Geometry::carried`, lane-wise in the same order.
                let up = _mm512_add_ps(
                    _mm512_mul_ps(
                        _mm512_add_ps(load(upper.as_ptr().add(i), lanes), lookup32(a, DRIFT)),
                        widen32,
                    ),
                    tiny,
                );
                let low = _mm512_max_ps(
                    _mm512_sub_ps(
                        _mm512_mul_ps(
                            _mm512_sub_ps(load(lower.as_ptr().add(i), lanes), lookup32(a, OTHERS)),
                            narrow32,
                        ),
                        tiny,
                    ),
                    zero32,
                );
                let gap = _mm512_sub_ps(
                    _mm512_mul_ps(
                        _mm512_max_ps(low, _mm512_sub_ps(lookup32(a, GAP2), up)),
                        narrow32,
                    ),
                    tiny,
                );
                let settled = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(gap, up)
                    & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(
                        _mm512_mul_ps(_mm512_sub_ps(gap, up), _mm512_add_ps(gap, up)),
                        error32,
                    )
                    & lanes;
                todo |= u64::from(lanes & !settled) << i;
                store(upper.as_mut_ptr().add(i), lanes, up);
                store(lower.as_mut_ptr().add(i), lanes, low);
                sure |= u64::from(settled) << i;
            }
            i += rows;
        }
        let exact = todo.count_ones() as usize;
        if d == 0 {
            return (sure, exact);
        }
        // The unsettled rows, eight at a time, gathered: their upper bounds
        // tightened with the exact distance to their centroid, feature by
        // feature in f64 (as `exact_squared_distance`), and tested again.
        let mut index = [0i64; 64];
        let mut count = 0;
        for i in unsettled(!todo, n) {
            index[count] = i as i64;
            count += 1;
        }
        for group in index[..count].chunks(8) {
            let lanes = ((1u32 << group.len()) - 1) as __mmask8;
            // SAFETY (all below): gathers and scatters are masked to the
            // group's rows, each below `n`, and their features below `n d`;
            // table indices are clamped below k.
            unsafe {
                let row = _mm512_maskz_loadu_epi64(lanes, group.as_ptr());
                let label = _mm512_mask_i64gather_epi32::<4>(
                    _mm256_setzero_si256(),
                    lanes,
                    row,
                    labels.as_ptr().cast(),
                );
                let a =
                    _mm512_cvtepu32_epi64(_mm256_min_epu32(label, _mm512_castsi512_si256(last)));
                let low = _mm512_cvtps_pd(_mm512_mask_i64gather_ps::<4>(
                    _mm256_setzero_ps(),
                    lanes,
                    row,
                    lower.as_ptr(),
                ));
                let start = _mm512_mullox_epi64(row, _mm512_set1_epi64(d as i64));
                let mut sum = zero;
                for f in 0..d {
                    let at = _mm512_add_epi64(start, _mm512_set1_epi64(f as i64));
                    let value = if std::mem::size_of::<F>() == 8 {
                        _mm512_mask_i64gather_pd::<8>(zero, lanes, at, x.as_ptr().cast())
                    } else {
                        _mm512_cvtps_pd(_mm512_mask_i64gather_ps::<4>(
                            _mm256_setzero_ps(),
                            lanes,
                            at,
                            x.as_ptr().cast(),
                        ))
                    };
                    let diff = _mm512_sub_pd(value, lookup64(a, TABLES + f));
                    sum = _mm512_add_pd(sum, _mm512_mul_pd(diff, diff));
                }
                let tight = _mm512_mul_pd(_mm512_sqrt_pd(_mm512_mul_pd(sum, widen)), widen);
                let tightened = certain(tight, low, lookup64(a, HALF_GAP)) & lanes;
                _mm512_mask_i64scatter_ps::<4>(
                    upper.as_mut_ptr(),
                    tightened,
                    row,
                    stored_up(tight),
                );
                for lane in unsettled(!u64::from(tightened), group.len()) {
                    sure |= 1 << group[lane];
                }
            }
        }
        (sure, exact)
    }
}

/// The `f32` per-centroid terms of [`Motion`], in [`CarryOver`]'s order.
const DRIFT: usize = 0;
const OTHERS: usize = 1;
const GAP2: usize = 2;

/// The `f64` tables of [`Geometry::tables`]: the half gaps, then the
/// centroids' features.
const HALF_GAP: usize = 0;
const TABLES: usize = 1;

/// Rows of at most this many features are tightened eight at a time by
/// [`CarryOver::rows_avx512`] (gathered feature by feature); longer rows
/// one by one.
pub const TIGHTEN_IN_LANES_MAX_D: usize = 8;

/// See [`Bounds::labels_hold`]: at most `n / HOLD_KERNEL_FRACTION` rows
/// through the kernel.
pub const HOLD_KERNEL_FRACTION: usize = 256;

/// How far each centroid moved since the bounds were set, and what
/// carrying the stored bounds over that drift needs, all in `f32` (the
/// bounds' own type) rounded outwards: see [`Geometry::carried`]. The
/// per-centroid terms are zero past `k`, up to 32 (two registers).
#[derive(Debug, Clone)]
struct Motion {
    /// `||c_j - c_j^before||`, rounded up.
    drift: Vec<f32>,
    /// `max_{j != a} drift_j` for each `a`, rounded up.
    others: Vec<f32>,
    /// `2 half_gap_a`, rounded down.
    gap2: Vec<f32>,
    /// `1 + max(outward, 8 u)` rounded up and `1 - max(outward, 8 u)`
    /// rounded down (`u = 2^-24`, `f32`'s unit roundoff).
    widen: f32,
    narrow: f32,
    /// `2 error (1 + 4 u)` rounded up, at least the smallest normal `f32`.
    error2: f32,
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
    /// With motion, per-centroid `f64` tables of `max(k, 32)` elements each
    /// (zero past `k`) for [`CarryOver`]'s tightening: the half gap, then,
    /// for rows of at most [`TIGHTEN_IN_LANES_MAX_D`] features, each feature
    /// of the centroids.
    tables: Vec<f64>,
}

impl Geometry {
    /// Whether the bounds can settle rows in this step (there was a last
    /// step): `false` sends every row to the kernel.
    pub fn settles_rows(&self) -> bool {
        self.motion.is_some()
    }

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
        // In the data's type, vectorised: `outward` covers its rounding
        // ((d + 3) eps on a squared distance, half that on its root).
        let distance = |a: &[F], b: &[F]| squared_distance(a, b).as_f64().sqrt();
        let standard = centroids.as_standard_layout();
        let flat = standard.as_slice().expect("standard layout is contiguous");
        let row = |j: usize| &flat[j * d..(j + 1) * d];

        let centroid_norm_max = up((0..k)
            .map(|j| squared_norm(row(j)).sqrt())
            .fold(0.0, f64::max));
        let error_scale = up((2 * d + 8) as f64 * eps);
        let error = error_scale * up((row_norm_max + centroid_norm_max).powi(2));

        let mut half_gap = vec![f64::INFINITY; k];
        for a in 0..k {
            for b in a + 1..k {
                let gap = down(distance(row(a), row(b))) / 2.0;
                half_gap[a] = half_gap[a].min(gap);
                half_gap[b] = half_gap[b].min(gap);
            }
        }

        let motion = before.map(|before| {
            let before = before.as_standard_layout();
            let before = before.as_slice().expect("standard layout is contiguous");
            let drift: Vec<f32> = (0..k)
                .map(|j| round_up(up(distance(row(j), &before[j * d..(j + 1) * d]))))
                .collect();
            // The largest drift of the others: the largest, or for the
            // centroid holding it, the second largest.
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_unstable_by(|&a, &b| drift[b].total_cmp(&drift[a]));
            let largest = order.first().map_or(0.0, |&j| drift[j]);
            let second = order.get(1).map_or(0.0, |&j| drift[j]);
            let others: Vec<f32> = (0..k)
                .map(|j| if j == order[0] { second } else { largest })
                .collect();
            let gap2: Vec<f32> = half_gap.iter().map(|&g| round_down(2.0 * g)).collect();
            let padded = |mut table: Vec<f32>| {
                table.resize(k.max(32), 0.0);
                table
            };
            let slack = outward.max(8.0 * F32_UNIT_ROUNDOFF);
            Motion {
                drift: padded(drift),
                others: padded(others),
                gap2: padded(gap2),
                widen: round_up(1.0 + slack),
                narrow: round_down(1.0 - slack),
                error2: round_up(2.0 * error * (1.0 + 4.0 * F32_UNIT_ROUNDOFF))
                    .max(f32::MIN_POSITIVE),
            }
        });
        let tables = if motion.is_some() {
            let stride = k.max(32);
            let features = if d <= TIGHTEN_IN_LANES_MAX_D { d } else { 0 };
            let mut tables = vec![0.0; (TABLES + features) * stride];
            tables[HALF_GAP * stride..][..k].copy_from_slice(&half_gap);
            for (f, row) in tables[TABLES * stride..]
                .chunks_exact_mut(stride)
                .enumerate()
            {
                for (slot, &v) in row.iter_mut().zip(centroids.column(f)) {
                    *slot = v.as_f64();
                }
            }
            tables
        } else {
            Vec::new()
        };
        Geometry {
            motion,
            half_gap,
            error,
            error_scale,
            centroid_norm_max,
            outward,
            tables,
        }
    }

    /// A row's stored bounds (`upper` to its centroid `a`, `lower` to the
    /// others) carried over the centroids' drift, and whether they show
    /// that the kernel certainly keeps `a` (as [`Self::certain`] does, with
    /// the half gap).
    ///
    /// In `f32` arithmetic, so that [`CarryOver`] takes sixteen rows to a
    /// register, each operation rounded to nearest: every result is
    /// widened (or narrowed) by `motion.widen` (`narrow`), at least `8 u`,
    /// which covers the relative rounding of up to three operations (`u`
    /// each) in the normal range, and moved by [`F32_TINY`] (`2^-149`) away
    /// from the truth, which covers the absolute rounding of subnormal
    /// results (at most `2^-150` each). The last test's product is trusted
    /// only above `motion.error2`, itself at least the smallest normal
    /// number, so that its relative rounding (three operations) is covered
    /// by `(1 + 4 u)`. Both maxima are written as the vector instruction
    /// computes them (the second operand unless the first is greater).
    fn carried(&self, motion: &Motion, a: usize, upper: f32, lower: f32) -> (f32, f32, bool) {
        let max = |p: f32, q: f32| if p > q { p } else { q };
        let up = (upper + motion.drift[a]) * motion.widen + F32_TINY;
        let low = max((lower - motion.others[a]) * motion.narrow - F32_TINY, 0.0);
        let gap = max(low, motion.gap2[a] - up) * motion.narrow - F32_TINY;
        let sure = gap > up && (gap - up) * (gap + up) > motion.error2;
        (up, low, sure)
    }

    /// The exact distance from `row` to `centroid`, rounded up: a tighter
    /// upper bound.
    fn tightened<F: Float>(&self, row: &[F], centroid: &[F]) -> f64 {
        self.distance_above(exact_squared_distance(row, centroid))
    }

    /// The distance whose computed square is `squared`, rounded up (its
    /// rounding and the square root's covered by `outward`).
    fn distance_above(&self, squared: f64) -> f64 {
        (squared * (1.0 + self.outward)).sqrt() * (1.0 + self.outward)
    }

    /// Every row's bounds carried over the drift and tested
    /// ([`Self::carried`]) and stored, then the upper bound of each row
    /// that is not settled tightened with its exact distance and tested
    /// again ([`Self::certain`]). Returns the rows settled, bit `i` for row
    /// `i` (at most 64 rows), and how many exact distances were computed.
    /// Sixteen rows at a time with AVX-512 ([`CarryOver`]; the tightening
    /// eight at a time for rows of at most [`TIGHTEN_IN_LANES_MAX_D`]
    /// features), else row by row; the same arithmetic either way.
    ///
    /// `x` holds the rows (`(labels.len(), d)` row-major) and `centroids`
    /// the centroids (`(k, d)` row-major).
    #[inline(always)]
    fn carry_over<F: Float>(
        &self,
        motion: &Motion,
        x: &[F],
        centroids: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> (u64, usize) {
        assert!(labels.len() <= 64 && upper.len() == labels.len() && lower.len() == labels.len());
        assert_eq!(
            x.len() * self.half_gap.len(),
            centroids.len() * labels.len()
        );
        #[cfg(target_arch = "x86_64")]
        if Isa::detect() == Isa::Avx512 {
            let terms = self.carry_over_terms(motion);
            // SAFETY: AVX-512F was detected; the lengths were checked above
            // (`x` holds `labels.len()` rows of `terms.features` features
            // when that is not 0).
            let (sure, exact) = unsafe { terms.rows_avx512(x, labels, upper, lower) };
            if terms.features > 0 || labels.is_empty() {
                return (sure, exact);
            }
            return self.tighten_rows(sure, x, centroids, labels, upper, lower);
        }
        let sure = self.carry_over_rows(motion, labels, upper, lower);
        self.tighten_rows(sure, x, centroids, labels, upper, lower)
    }

    /// The carrying over of [`Self::carry_over`], row by row: the rows it
    /// settles.
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
            let (up, low, settled) = self.carried(motion, label as usize, *upper, *lower);
            sure |= u64::from(settled) << i;
            (*upper, *lower) = (up, low);
        }
        sure
    }

    /// The tightening of [`Self::carry_over`], row by row, for the rows not
    /// in `sure`: the rows then settled, and how many were tightened.
    fn tighten_rows<F: Float>(
        &self,
        mut sure: u64,
        x: &[F],
        centroids: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &[f32],
    ) -> (u64, usize) {
        let d = centroids.len() / self.half_gap.len();
        let carried = sure;
        // Without branches on the outcome (it is unpredictable): the
        // tightened bound is stored either way, kept only where it settles.
        for i in unsettled(carried, labels.len()) {
            let a = labels[i] as usize;
            let up = self.tightened(&x[i * d..(i + 1) * d], &centroids[a * d..(a + 1) * d]);
            let settled = self.certain(a, up, f64::from(lower[i]));
            let tight = round_up(up * (1.0 + self.outward));
            upper[i] = if settled { tight } else { upper[i] };
            sure |= u64::from(settled) << i;
        }
        let exact = labels.len() - carried.count_ones() as usize;
        (sure, exact)
    }

    /// [`Self::carry_over`]'s terms, for [`CarryOver`]'s vector code.
    fn carry_over_terms<'a>(&'a self, motion: &'a Motion) -> CarryOver<'a> {
        let k = self.half_gap.len();
        CarryOver {
            motion,
            tables: &self.tables,
            k,
            features: self.tables.len() / k.max(32) - TABLES,
            widen: 1.0 + self.outward,
            narrow: 1.0 - self.outward,
            error2: 2.0 * self.error,
        }
    }

    /// Whether the kernel certainly picks `a` for a row whose distance to
    /// `c_a` is at most `upper` and to every other centroid at least `lower`.
    fn certain(&self, a: usize, upper: f64, lower: f64) -> bool {
        self.certain_within(a, upper, lower, self.error)
    }

    /// [`Self::certain`] for a row whose kernel scores are within `error`
    /// (in squared distance) of the truth.
    fn certain_within(&self, a: usize, upper: f64, lower: f64, error: f64) -> bool {
        let lower = lower.max(2.0 * self.half_gap[a] - upper) * (1.0 - self.outward);
        // Written so that NaN (never expected) means "not certain".
        lower > upper && (lower - upper) * (lower + upper) > 2.0 * error
    }

    /// Carries the bounds of the rows of `x` (`(labels.len(), d)`,
    /// row-major, at most [`SUBCHUNK_CAPACITY`] rows, labelled `labels` in
    /// the last step) over the centroids' drift and tightens those that
    /// need it ([`Self::carry_over`]): the rows whose label certainly holds
    /// (bit `i` for row `i`) and how many exact distances were computed.
    /// `None` before the first assignment (no bounds yet: every row needs
    /// the kernel). `centroids` is `(k, d)` row-major.
    #[inline(always)] // into the step's per-instruction-set functions
    pub fn settle<F: Float>(
        &self,
        centroids: &[F],
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> Option<(u64, usize)> {
        let motion = self.motion.as_ref()?;
        Some(self.carry_over(motion, x, centroids, labels, upper, lower))
    }

    /// Runs the rows of `rows` (row-major, at most [`SUBCHUNK_CAPACITY`])
    /// through the kernel: their labels into `labels`, fresh bounds into
    /// `upper` and `lower`, one per row.
    #[inline(always)]
    pub fn rescore<F: Float>(
        &self,
        prepared: &PreparedCentroids<F>,
        rows: &[F],
        labels: &mut [u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) {
        let n = labels.len();
        let mut scores = [F::zero(); 2 * SUBCHUNK_CAPACITY];
        let scores = &mut scores[..2 * n];
        prepared.assign_with_scores(rows, labels, scores);
        let (mut up, mut low) = ([0.0; SUBCHUNK_CAPACITY], [0.0; SUBCHUNK_CAPACITY]);
        let (up, low) = (&mut up[..n], &mut low[..n]);
        self.fresh_bounds(prepared.isa(), rows, scores, up, low);
        for i in 0..n {
            upper[i] = round_up(up[i]);
            lower[i] = round_down(low[i]);
        }
    }

    /// Labels the rows of `x` (`(fresh.len(), d)`, row-major) into `fresh`,
    /// from their labels of the last step (`labels`) and their bounds,
    /// updating the bounds; only the rows whose label could change are run
    /// through the kernel. Before the first assignment, `guess` (when
    /// given, and while the chunk's guesses pay, see [`super::guess`])
    /// labels the rows it can prove instead. Returns how many rows were
    /// run through the kernel (each scored against every centroid), how
    /// many single exact distances were computed, and how many rows were
    /// guessed.
    ///
    /// `centroids` is `(k, d)` row-major, the same centroids as `prepared`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)] // into the step's per-instruction-set functions
    pub fn assign<F: Float>(
        &self,
        prepared: &PreparedCentroids<F>,
        guess: Option<&Guess<F>>,
        centroids: &[F],
        x: &[F],
        labels: &[u32],
        fresh: &mut [u32],
        upper: &mut [f32],
        lower: &mut [f32],
        scratch: &mut Scratch<F>,
    ) -> (usize, usize, usize) {
        let n = fresh.len();
        let d = x.len() / n.max(1);
        let guess = guess.filter(|_| scratch.record.worth_it());
        scratch.known = 0;
        let (sure, exact, guessed) = match (self.settle(centroids, x, labels, upper, lower), guess)
        {
            (Some((sure, exact)), _) => {
                fresh.copy_from_slice(labels);
                (sure, exact, 0)
            }
            (None, Some(guess)) => {
                let guesses = &mut scratch.guesses[..n];
                guess.guess(x, guesses, &mut scratch.first_features);
                let distances = &mut scratch.distances[..n];
                let sure = self.confirm(
                    prepared.isa(),
                    centroids,
                    x,
                    guesses,
                    (fresh, distances),
                    (upper, lower),
                );
                scratch.known = sure;
                scratch.record.guessed += n;
                scratch.record.proved += sure.count_ones() as usize;
                (sure, n, n)
            }
            (None, None) => (0, 0, 0),
        };
        let pending = n - sure.count_ones() as usize;
        if pending == 0 {
            return (0, exact, guessed);
        }
        if pending * 4 >= n * 3 {
            // Most rows need the kernel: run it on all of them in place
            // (the others get the label they have, and fresh bounds).
            self.rescore(prepared, x, fresh, upper, lower);
            scratch.known = 0;
            return (n, exact, guessed);
        }
        let rows = &mut scratch.rows;
        rows.clear();
        for i in unsettled(sure, n) {
            rows.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        let mut fresh_labels = [0u32; SUBCHUNK_CAPACITY];
        let mut fresh_upper = [0f32; SUBCHUNK_CAPACITY];
        let mut fresh_lower = [0f32; SUBCHUNK_CAPACITY];
        self.rescore(
            prepared,
            rows,
            &mut fresh_labels[..pending],
            &mut fresh_upper[..pending],
            &mut fresh_lower[..pending],
        );
        for (p, i) in unsettled(sure, n).enumerate() {
            fresh[i] = fresh_labels[p];
            upper[i] = fresh_upper[p];
            lower[i] = fresh_lower[p];
        }
        (pending, exact, guessed)
    }

    /// Keeps each row's guessed centroid (`guesses`) where Hamerly's test
    /// proves the kernel would pick it (see [`super::guess`]): its label
    /// into `fresh`, its squared distance to it into `distances` (as
    /// [`super::kernel::WideDistances::squared_distance_on`] computes it), that distance
    /// (rounded up) into `upper`, and `2 half_gap - upper` into `lower`.
    /// Returns the rows proved, bit `i` for row `i` (at most 64 rows); the
    /// others are left as they are.
    #[inline(always)]
    fn confirm<F: Float>(
        &self,
        isa: Isa,
        centroids: &[F],
        x: &[F],
        guesses: &[u32],
        (fresh, distances): (&mut [u32], &mut [F]),
        (upper, lower): (&mut [f32], &mut [f32]),
    ) -> u64 {
        let d = centroids.len() / self.half_gap.len();
        let mut sure = 0;
        for (i, (row, &a)) in x.chunks_exact(d).zip(guesses).enumerate() {
            let a = a as usize;
            let centroid = &centroids[a * d..(a + 1) * d];
            let distance = F::squared_distance_on(isa, row, centroid);
            if let Some((up, low)) = self.prove(a, distance.as_f64()) {
                fresh[i] = a as u32;
                distances[i] = distance;
                upper[i] = up;
                lower[i] = low;
                sure |= 1 << i;
            }
        }
        sure
    }

    /// Before the first assignment: whether Hamerly's test proves that the
    /// kernel would pick centroid `a` for a row whose squared distance to
    /// it is `distance` (as [`super::kernel::WideDistances::squared_distance_on`]
    /// computes it), and if so the row's bounds, rounded outwards.
    #[inline(always)]
    pub fn prove(&self, a: usize, distance: f64) -> Option<(f32, f32)> {
        let (widen, narrow) = (1.0 + self.outward, 1.0 - self.outward);
        let up = self.distance_above(distance);
        // The data's magnitudes may not be known yet: the kernel's
        // error for this row, from `|x| <= |c_a| + up`.
        let reach = (up + 2.0 * self.centroid_norm_max) * widen;
        self.certain_within(a, up, 0.0, self.error_scale * reach * reach)
            .then(|| {
                (
                    round_up(up * widen),
                    round_down((2.0 * self.half_gap[a] - up) * narrow),
                )
            })
    }

    /// Fresh bounds for the rows of `rows` from the kernel's best and
    /// runner-up scores (`scores[2 * i]`, `scores[2 * i + 1]`), widened for
    /// the rounding of the arithmetic: into `up`
    /// and `low`, one per row (before rounding to `f32`). Two loops, so that the second (square roots
    /// and all) is vectorised across rows.
    #[inline(always)]
    fn fresh_bounds<F: Float>(
        &self,
        isa: Isa,
        rows: &[F],
        scores: &[F],
        up: &mut [f64],
        low: &mut [f64],
    ) {
        squared_norms(isa, rows, up);
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

/// The squared distance that tightens a bound: feature by feature in `f64`
/// for rows of at most [`TIGHTEN_IN_LANES_MAX_D`] features (as
/// [`CarryOver::rows_avx512`] computes it, lane-wise), the kernel module's
/// [`squared_distance`] for longer rows (in the widest vectors the CPU has,
/// the same bits).
fn exact_squared_distance<F: Float>(row: &[F], centroid: &[F]) -> f64 {
    if row.len() <= TIGHTEN_IN_LANES_MAX_D {
        row.iter().zip(centroid).fold(0.0, |sum, (&p, &q)| {
            let diff = p.as_f64() - q.as_f64();
            sum + diff * diff
        })
    } else {
        F::squared_distance_on(Isa::detect(), row, centroid).as_f64()
    }
}

/// The rows among the first `n` whose bit in `settled` is clear, in order.
pub fn unsettled(settled: u64, n: usize) -> impl Iterator<Item = usize> {
    let rows = if n >= 64 { u64::MAX } else { (1 << n) - 1 };
    let mut left = !settled & rows;
    std::iter::from_fn(move || {
        (left != 0).then(|| {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            i
        })
    })
}

/// The most rows [`Geometry::assign`] takes at once.
pub const SUBCHUNK_CAPACITY: usize = 64;

/// What calls of [`Geometry::assign`] on one chunk share: a buffer for the
/// rows gathered for the kernel and one for their first features (for the
/// guess), the guesses, how they fared, and the squared distances of the
/// rows the last call proved to their centroids.
#[derive(Debug)]
pub struct Scratch<F> {
    rows: Vec<F>,
    first_features: Vec<f32>,
    guesses: [u32; SUBCHUNK_CAPACITY],
    record: Record,
    /// The rows of the last call whose distance is in `distances`.
    known: u64,
    distances: [F; SUBCHUNK_CAPACITY],
}

impl<F: Float> Default for Scratch<F> {
    fn default() -> Self {
        Scratch {
            rows: Vec::new(),
            first_features: Vec::new(),
            guesses: [0; SUBCHUNK_CAPACITY],
            record: Record::default(),
            known: 0,
            distances: [F::zero(); SUBCHUNK_CAPACITY],
        }
    }
}

impl<F: Copy> Scratch<F> {
    /// How the chunk's guesses have fared.
    pub fn record(&mut self) -> &mut Record {
        &mut self.record
    }

    /// The guesses for the `rows` rows of `x` (at most
    /// [`SUBCHUNK_CAPACITY`]), as [`Guess::guess`] makes them.
    pub fn guesses(&mut self, guess: &Guess<F>, x: &[F], rows: usize) -> &[u32]
    where
        F: Float,
    {
        guess.guess(x, &mut self.guesses[..rows], &mut self.first_features);
        &self.guesses[..rows]
    }

    /// Row `i`'s squared distance to its centroid from the last call of
    /// [`Geometry::assign`], when it computed it (as
    /// [`super::kernel::WideDistances::squared_distance_on`] does, the same bits).
    pub fn known_distance(&self, i: usize) -> Option<F> {
        (self.known >> i & 1 == 1).then(|| self.distances[i])
    }
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
/// `f32`'s unit roundoff `u`, `2^-24`.
const F32_UNIT_ROUNDOFF: f64 = F32_ROUNDING / 2.0;
/// The smallest positive `f32`, `2^-149`: twice the most that rounding a
/// subnormal result to nearest moves it.
const F32_TINY: f32 = f32::from_bits(1);
/// The spacing of subnormal `f32` values: rounding to nearest moves a tiny
/// value by at most half of it.
const F32_SPACING_MIN: f64 = 1.401_298_464_324_817e-45;

#[cfg(test)]
mod tests {
    use super::*;

    /// Carries random bounds over a random drift, row by row and with
    /// `Geometry::carry_over` (in vectors on AVX-512), and checks
    /// that both give the same bits; returns how many rows were settled
    /// by the drift test alone, how many after tightening, and how many
    /// were tightened.
    #[cfg(target_arch = "x86_64")]
    fn carry_over_both_ways<F: Float>(k: usize, d: usize, n: usize, seed: u64) -> [u32; 3] {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let before = Array2::from_shape_fn((k, d), |_| F::from_f64(rng.gen_range(-1.0..1.0)));
        let centroids = before.mapv(|v| v + F::from_f64(rng.gen_range(-0.1..0.1)));
        let flat = centroids.as_slice().unwrap();
        let geometry = Geometry::new(centroids.view(), Some(&before), 10.0);
        let motion = geometry.motion.as_ref().unwrap();
        let labels: Vec<u32> = (0..n).map(|_| rng.gen_range(0..k) as u32).collect();
        // Rows near their centroid, with an upper bound some way above
        // their distance, so that tightening settles some of them.
        let x: Vec<F> = labels
            .iter()
            .flat_map(|&a| flat[a as usize * d..(a as usize + 1) * d].to_vec())
            .map(|v| v + F::from_f64(rng.gen_range(-0.2..0.2)))
            .collect();
        let upper: Vec<f32> = (0..n)
            .map(|i| {
                let a = labels[i] as usize;
                let exact =
                    exact_squared_distance(&x[i * d..(i + 1) * d], &flat[a * d..(a + 1) * d]);
                (exact.sqrt() + rng.gen_range(0.0..0.3)) as f32
            })
            .collect();
        // Every other row's lower bound within a few units of f32's last
        // place of where the drift test flips, to tell the arithmetic apart.
        let lower: Vec<f32> = (0..n)
            .map(|i| {
                let a = labels[i] as usize;
                let edge = upper[i] + motion.drift[a] + motion.others[a];
                if i % 2 == 0 {
                    rng.gen_range(0.0..1.5)
                } else {
                    (f64::from(edge) * (1.0 + rng.gen_range(-2e-6..2e-6))) as f32
                }
            })
            .collect();

        let (mut up_rows, mut low_rows) = (upper.clone(), lower.clone());
        let carried = geometry.carry_over_rows(motion, &labels, &mut up_rows, &mut low_rows);
        let (sure_rows, exact_rows) =
            geometry.tighten_rows(carried, &x, flat, &labels, &mut up_rows, &low_rows);
        let (mut up_any, mut low_any) = (upper.clone(), lower.clone());
        let (sure_any, exact_any) =
            geometry.carry_over(motion, &x, flat, &labels, &mut up_any, &mut low_any);
        let case = format!("k={k} d={d} n={n}");
        assert_eq!(sure_rows, sure_any, "{case}");
        assert_eq!(exact_rows, exact_any, "{case}");
        assert_eq!(up_rows, up_any, "{case}");
        assert_eq!(low_rows, low_any, "{case}");
        [
            carried.count_ones(),
            sure_rows.count_ones(),
            exact_rows as u32,
        ]
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn carrying_bounds_over_is_the_same_row_by_row_and_in_vectors() {
        if Isa::detect() != Isa::Avx512 {
            return; // nothing to compare the row-by-row carry-over with
        }
        let (mut totals, mut rows) = ([0; 3], 0);
        // k beyond 32 takes the gathering path; the others, permutes. Rows
        // of more than 8 features are tightened row by row on either path.
        for k in [1, 2, 5, 16, 17, 30, 32, 33, 40] {
            for d in [1, 2, 3, 4, 8, 9] {
                for n in [1, 7, 8, 13, 64] {
                    let seed = (k * 100 + d * 10 + n) as u64;
                    let counts = carry_over_both_ways::<f64>(k, d, n, seed);
                    carry_over_both_ways::<f32>(k, d, n, seed);
                    for (total, count) in totals.iter_mut().zip(counts) {
                        *total += count;
                    }
                    rows += n as u32;
                }
            }
        }
        // Every outcome occurs: rows settled by the drift test, by the
        // tightened bound, and rows tightened in vain (left to the kernel).
        let [carried, settled, tightened] = totals;
        assert!(
            carried > 0 && settled > carried && tightened > settled - carried,
            "{totals:?}"
        );
        assert!(settled < rows, "{totals:?} of {rows}");
    }

    /// `Geometry::carried` in `f32` against the same formulas in `f64`
    /// (exact for these inputs to about 1e-16): the carried upper bound is
    /// never below the real one, the lower never above, and a row it
    /// settles is settled in real arithmetic too; over magnitudes from
    /// subnormal to near `f32::MAX`.
    #[test]
    fn carried_bounds_hold_in_real_arithmetic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let geometry = Geometry::new(ndarray::array![[0.0f64], [1.0]].view(), None, 1.0);
        let slack = 8.0 * F32_UNIT_ROUNDOFF;
        let magnitude = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
            let exponent = rng.gen_range(-149.0..127.0f64);
            (2f64.powf(exponent) * rng.gen_range(1.0..2.0)) as f32
        };
        let (mut settled, mut cases) = (0, 0);
        for _ in 0..200_000 {
            let scale = magnitude(&mut rng);
            let near = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus, f: f64| {
                (f64::from(scale) * f * rng.gen_range(0.5..1.5)) as f32
            };
            let (upper, drift) = (near(&mut rng, 1.0), near(&mut rng, 0.01));
            let (lower, others) = (near(&mut rng, 1.3), near(&mut rng, 0.01));
            let gap2 = near(&mut rng, 2.5);
            let error2 = (magnitude(&mut rng) * rng.gen_range(0.0..1.0)).max(f32::MIN_POSITIVE);
            let motion = Motion {
                drift: vec![drift],
                others: vec![others],
                gap2: vec![gap2],
                widen: round_up(1.0 + slack),
                narrow: round_down(1.0 - slack),
                error2,
            };
            let (up, low, sure) = geometry.carried(&motion, 0, upper, lower);
            let real_up = f64::from(upper) + f64::from(drift);
            let real_low = (f64::from(lower) - f64::from(others)).max(0.0);
            let tolerance = 1.0 + 1e-12;
            assert!(
                f64::from(up) * tolerance >= real_up,
                "{upper} {drift}: {up}"
            );
            assert!(
                f64::from(low) <= real_low * tolerance,
                "{lower} {others}: {low}"
            );
            if sure {
                let gap = real_low.max(f64::from(gap2) - real_up);
                let twice_error = f64::from(error2) / (1.0 + 4.0 * F32_UNIT_ROUNDOFF);
                assert!(gap > real_up, "{upper} {drift} {lower} {others} {gap2}");
                assert!(
                    (gap - real_up) * (gap + real_up) * tolerance > twice_error,
                    "{upper} {drift} {lower} {others} {gap2} {error2}"
                );
                settled += 1;
            }
            cases += 1;
        }
        // Both outcomes occur.
        assert!(settled > 0 && settled < cases, "{settled} of {cases}");
    }

    /// Guesses (see `super::super::guess`) are kept only where the kernel
    /// picks the same centroid, with bounds that hold; never for a row at a
    /// tie (a midpoint, or near a duplicated centroid) or far beyond the
    /// centroids.
    #[test]
    fn guesses_are_kept_only_where_the_kernel_picks_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(31);
        let (mut kept, mut rows_seen, mut ties) = (0, 0, 0);
        // Far from the origin, the kernel's rounding (`||c||^2 - 2 x.c`)
        // decides near ties, and the bounds must allow for it.
        for (k, d, offset) in [(12, 40, 0.0), (2, 33, 0.0), (30, 100, 0.0), (12, 40, 1e5)] {
            let mut centroids =
                Array2::from_shape_fn((k, d), |_| offset + rng.gen_range(-1.0..1.0));
            if k > 2 {
                // A duplicated centroid: rows near it are ties.
                let first = centroids.row(0).to_owned();
                centroids.row_mut(k - 1).assign(&first);
            }
            let flat = centroids.as_slice().unwrap();
            let centroid = |j: usize| &flat[j * d..(j + 1) * d];
            // Magnitudes not known yet, as in a fit's first step.
            let geometry = Geometry::new(centroids.view(), None, f64::INFINITY);
            let prepared = PreparedCentroids::new(centroids.view());
            for sub in 0..8 {
                let n = 64;
                let (mut tie_rows, mut far_rows) = (0u64, 0u64);
                let x: Vec<f64> = (0..n)
                    .flat_map(|i| {
                        let a = rng.gen_range(0..k);
                        let row: Vec<f64> = match i % 4 {
                            0 | 1 => centroid(a)
                                .iter()
                                .map(|v| v + rng.gen_range(-0.05..0.05))
                                .collect(),
                            2 => {
                                // The midpoint of a centroid and its
                                // nearest other (no centroid is nearer to
                                // it), to rounding: a tie, or nudged by 1e-9
                                // (decidable, well above the kernel's error).
                                let b = (0..k)
                                    .filter(|&b| b != a)
                                    .min_by(|&p, &q| {
                                        let to =
                                            |j: usize| squared_distance(centroid(a), centroid(j));
                                        to(p).total_cmp(&to(q))
                                    })
                                    .unwrap();
                                let nudge = if i % 8 == 2 {
                                    0.0
                                } else {
                                    10f64.powi(-rng.gen_range(5..14))
                                };
                                tie_rows |= u64::from(nudge == 0.0) << i;
                                centroid(a)
                                    .iter()
                                    .zip(centroid(b))
                                    .map(|(p, q)| (p + q) / 2.0 + (p - q) * nudge)
                                    .collect()
                            }
                            _ => {
                                far_rows |= 1 << i;
                                centroid(a).iter().map(|v| (v - offset) * 1e6).collect()
                            }
                        };
                        row
                    })
                    .collect();
                let mut labels = vec![0u32; n];
                prepared.assign(&x, &mut labels);
                // Half the guesses the kernel's, half at random.
                let guesses: Vec<u32> = labels
                    .iter()
                    .map(|&l| {
                        if rng.gen_bool(0.5) {
                            l
                        } else {
                            rng.gen_range(0..k) as u32
                        }
                    })
                    .collect();
                let mut fresh = vec![u32::MAX; n];
                let mut distances = vec![-1.0; n];
                let (mut upper, mut lower) = (vec![-1.0f32; n], vec![-1.0f32; n]);
                let isa = Isa::detect();
                let sure = geometry.confirm(
                    isa,
                    flat,
                    &x,
                    &guesses,
                    (&mut fresh, &mut distances),
                    (&mut upper, &mut lower),
                );
                let case = format!("k={k} d={d} offset={offset} sub={sub}");
                assert_eq!(sure & (tie_rows | far_rows), 0, "{case}");
                for i in 0..n {
                    if sure >> i & 1 == 0 {
                        assert_eq!(
                            (fresh[i], distances[i], upper[i], lower[i]),
                            (u32::MAX, -1.0, -1.0, -1.0)
                        );
                        continue;
                    }
                    let row = &x[i * d..(i + 1) * d];
                    assert_eq!(fresh[i], labels[i], "{case}, row {i}");
                    let a = labels[i] as usize;
                    // The distance the inertia sums, to the bit.
                    let summed = <f64 as super::super::kernel::WideDistances>::squared_distance_on(
                        isa,
                        row,
                        centroid(a),
                    );
                    assert_eq!(distances[i].to_bits(), summed.to_bits(), "{case}, row {i}");
                    let distance = |j: usize| {
                        row.iter()
                            .zip(centroid(j))
                            .map(|(p, q)| (p - q) * (p - q))
                            .sum::<f64>()
                            .sqrt()
                    };
                    assert!(
                        f64::from(upper[i]) >= distance(a) * (1.0 - 1e-12),
                        "{case}, row {i}"
                    );
                    for j in (0..k).filter(|&j| j != a) {
                        assert!(
                            f64::from(lower[i]) <= distance(j) * (1.0 + 1e-12),
                            "{case}, row {i}"
                        );
                    }
                    kept += 1;
                }
                rows_seen += n;
                ties += tie_rows.count_ones();
            }
        }
        // Rows near a centroid, guessed right, are kept; ties never.
        assert!(
            kept > rows_seen / 8 && kept < rows_seen / 2,
            "{kept} of {rows_seen}"
        );
        assert!(ties > 50, "{ties}");
    }

    #[test]
    fn bounds_are_kept_where_a_row_costs_the_kernel_enough() {
        // Centroids in lanes: d * ceil(k / lanes) vector multiply-adds.
        assert!(worthwhile::<f64>(1000, 10, 30));
        assert!(worthwhile::<f64>(1000, 100, 2));
        assert!(!worthwhile::<f64>(1_000_000, 10, 8) || Isa::detect().lanes::<f64>() < 8);
        if Layout::choose(2, Isa::detect()) == Layout::RowsInLanes {
            // Rows in lanes, 8 f64 lanes with AVX-512: k (d + 3) / 8 >= 16
            // from 50000 rows.
            let lanes = Isa::detect().lanes::<f64>();
            let enough = |d: usize, k: usize| k * (d + 3) >= MIN_ROW_VECTORS * lanes;
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
