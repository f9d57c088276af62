//! Carrying Hamerly's bounds over a step's drift sixteen rows at a time
//! with AVX-512 (and tightening short rows in lanes), eight at a time with
//! AVX2: the same arithmetic, in the same order, as the bounds' row-by-row
//! code (`bounds::geometry`), which defines what it computes.

#[cfg(target_arch = "x86_64")]
use super::super::chunks::unsettled;
#[cfg(target_arch = "x86_64")]
use super::Element;

/// Twice `f32`'s unit roundoff: rounding to nearest moves a normal value
/// by at most half of it.
pub const F32_ROUNDING: f64 = f32::EPSILON as f64;
/// The smallest positive `f32`, `2^-149`: twice the most that rounding a
/// subnormal result to nearest moves it.
pub const F32_TINY: f32 = f32::from_bits(1);
/// The spacing of subnormal `f32` values: rounding to nearest moves a tiny
/// value by at most half of it.
pub const F32_SPACING_MIN: f64 = 1.401_298_464_324_817e-45;

/// The `f32` per-centroid terms, in [`CarryOver::rows_avx512`]'s order.
const DRIFT: usize = 0;
const OTHERS: usize = 1;
const GAP2: usize = 2;

/// The `f64` tables of [`CarryOver::tables`]: the half gaps, then the
/// centroids' features.
const HALF_GAP: usize = 0;
const TABLES: usize = 1;

/// What carrying bounds over one step's drift needs, in the bounds' terms
/// (`bounds::geometry`): the `f32` per-centroid terms are zero past `k`, up
/// to 32 (two registers).
#[derive(Debug, Clone, Copy)]
pub struct CarryOver<'a> {
    /// Each centroid's drift, rounded up.
    pub drift: &'a [f32],
    /// For each centroid, the largest drift of the others, rounded up.
    pub others: &'a [f32],
    /// Twice each centroid's half gap, rounded down.
    pub gap2: &'a [f32],
    /// The `f32` widening, narrowing and error of the carried test.
    pub widen32: f32,
    pub narrow32: f32,
    pub error32: f32,
    /// Per-centroid `f64` tables (see [`Self::build_tables`]).
    pub tables: &'a [f64],
    pub k: usize,
    /// Features of the centroids in `tables` (0: rows are not tightened
    /// here).
    pub features: usize,
    /// The `f64` widening, narrowing and error of the tightened test.
    pub widen: f64,
    pub narrow: f64,
    pub error2: f64,
}

impl CarryOver<'_> {
    /// The per-centroid `f64` tables [`Self::tables`] reads: the half gaps,
    /// then, when `features > 0`, each of the `features` features of the
    /// `(k, features)` row-major centroids, each table `max(k, 32)` long,
    /// zero past `k`.
    pub fn build_tables(half_gap: &[f64], centroids: &[f64], features: usize) -> Vec<f64> {
        let k = half_gap.len();
        let stride = k.max(32);
        let mut tables = vec![0.0; (TABLES + features) * stride];
        tables[HALF_GAP * stride..][..k].copy_from_slice(half_gap);
        for f in 0..features {
            for j in 0..k {
                tables[(TABLES + f) * stride + j] = centroids[j * features + f];
            }
        }
        tables
    }

    /// Panics unless a block's arguments meet the vector versions' safety
    /// contract: `n <= 64` rows with as many bounds, `x` holding `n`
    /// rows of `self.features` features (when tightened here), and every
    /// table as long as it says.
    pub fn check(&self, x_len: usize, n: usize, upper_len: usize, lower_len: usize) {
        let stride = self.k.max(32);
        assert!(
            n <= 64
                && upper_len == n
                && lower_len == n
                && (self.features == 0 || x_len == n * self.features)
                && self.drift.len() >= stride
                && self.others.len() >= stride
                && self.gap2.len() >= stride
                && self.tables.len() >= (1 + self.features) * stride,
            "carrying bounds over: arguments do not match"
        );
    }

    /// The bounds' row-by-row carrying over, eight rows at a time, without
    /// tightening: the rows that are settled (bit `i` for row `i`). Up to
    /// 32 centroids, a per-centroid term is picked by permutes of its
    /// table's eight-lane quarters and blends; beyond, it is gathered from
    /// memory (gathers are slow: their latency held up every row).
    ///
    /// # Safety
    /// The CPU must have AVX2; the three slices are as long, at most 64.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub unsafe fn carry_avx2(&self, labels: &[u32], upper: &mut [f32], lower: &mut [f32]) -> u64 {
        use std::arch::x86_64::*;
        let n = labels.len();
        let last = _mm256_set1_epi32((self.k - 1) as i32);
        let splat = _mm256_set1_ps;
        let (widen, narrow, error) = (
            splat(self.widen32),
            splat(self.narrow32),
            splat(self.error32),
        );
        let (tiny, zero) = (splat(F32_TINY), _mm256_setzero_ps());
        let k = self.k;
        let lookup = |a: __m256i, table: &[f32]| -> __m256 {
            // SAFETY: each table holds at least 32 elements (zero past k);
            // indices are clamped below k.
            unsafe {
                let quarter = |q: usize| {
                    _mm256_permutevar8x32_ps(_mm256_loadu_ps(table.as_ptr().add(8 * q)), a)
                };
                // Bits 3 and 4 of each index, as the sign the blends read.
                let bit3 = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(a));
                let bit4 = _mm256_castsi256_ps(_mm256_slli_epi32::<27>(a));
                match k {
                    0..=8 => quarter(0),
                    9..=16 => _mm256_blendv_ps(quarter(0), quarter(1), bit3),
                    17..=32 => _mm256_blendv_ps(
                        _mm256_blendv_ps(quarter(0), quarter(1), bit3),
                        _mm256_blendv_ps(quarter(2), quarter(3), bit3),
                        bit4,
                    ),
                    _ => _mm256_i32gather_ps::<4>(table.as_ptr(), a),
                }
            }
        };
        // The bounds' `carried` for the eight rows at `label`, `up` and
        // `low`, lane-wise in the same order: their bounds stored back, the
        // rows settled (bit `i` for lane `i`).
        let carry = |label: *const u32, up: *mut f32, low: *mut f32| -> u32 {
            // SAFETY: the caller passes eight elements at each pointer.
            unsafe {
                let a = _mm256_min_epu32(_mm256_loadu_si256(label.cast()), last);
                let carried_up = _mm256_add_ps(
                    _mm256_mul_ps(
                        _mm256_add_ps(_mm256_loadu_ps(up), lookup(a, self.drift)),
                        widen,
                    ),
                    tiny,
                );
                let carried_low = _mm256_max_ps(
                    _mm256_sub_ps(
                        _mm256_mul_ps(
                            _mm256_sub_ps(_mm256_loadu_ps(low), lookup(a, self.others)),
                            narrow,
                        ),
                        tiny,
                    ),
                    zero,
                );
                let gap = _mm256_sub_ps(
                    _mm256_mul_ps(
                        _mm256_max_ps(carried_low, _mm256_sub_ps(lookup(a, self.gap2), carried_up)),
                        narrow,
                    ),
                    tiny,
                );
                let settled = _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(gap, carried_up),
                    _mm256_cmp_ps::<_CMP_GT_OQ>(
                        _mm256_mul_ps(
                            _mm256_sub_ps(gap, carried_up),
                            _mm256_add_ps(gap, carried_up),
                        ),
                        error,
                    ),
                );
                _mm256_storeu_ps(up, carried_up);
                _mm256_storeu_ps(low, carried_low);
                _mm256_movemask_ps(settled) as u32
            }
        };
        let mut sure = 0u64;
        let whole = n / 8 * 8;
        for i in (0..whole).step_by(8) {
            let settled = carry(
                labels[i..i + 8].as_ptr(),
                upper[i..i + 8].as_mut_ptr(),
                lower[i..i + 8].as_mut_ptr(),
            );
            sure |= u64::from(settled) << i;
        }
        if whole < n {
            // The last rows, fewer than eight, through eight-lane copies.
            let rows = n - whole;
            let (mut label, mut up, mut low) = ([0u32; 8], [0f32; 8], [0f32; 8]);
            label[..rows].copy_from_slice(&labels[whole..]);
            up[..rows].copy_from_slice(&upper[whole..]);
            low[..rows].copy_from_slice(&lower[whole..]);
            let settled = carry(label.as_ptr(), up.as_mut_ptr(), low.as_mut_ptr());
            upper[whole..].copy_from_slice(&up[..rows]);
            lower[whole..].copy_from_slice(&low[..rows]);
            sure |= u64::from(settled & ((1 << rows) - 1)) << whole;
        }
        sure
    }

    /// The bounds' row-by-row tightening (`Geometry::tighten_row`) of the
    /// rows `pending` names (indices into `labels`, `upper`, `lower` and the
    /// rows of `x`, `(labels.len(), d)` row-major), four at a time: each
    /// upper bound tightened with the exact distance to its centroid
    /// (`centroids`, `(k, d)` row-major), feature by feature in `f64`, and
    /// tested again, the tightened bound stored where the row then settles.
    /// The rows left unsettled are moved to the front of `pending`, in
    /// order; returns how many. Each group asks for the next group's rows
    /// while it works: they are scattered through `x`.
    ///
    /// # Safety
    /// The CPU must have AVX2 (the indexing below is checked).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tighten_avx2<F: Element>(
        &self,
        x: &[F],
        d: usize,
        centroids: &[F],
        labels: &[u32],
        pending: &mut [u32],
        upper: &mut [f32],
        lower: &[f32],
    ) -> usize {
        use std::arch::x86_64::*;
        let half_gap = &self.tables[HALF_GAP * self.k.max(32)..][..self.k];
        let splat = _mm256_set1_pd;
        let (widen, narrow, error2) = (splat(self.widen), splat(self.narrow), splat(self.error2));
        let (two, round_up, spacing) = (
            splat(2.0),
            splat(1.0 + F32_ROUNDING),
            splat(F32_SPACING_MIN),
        );
        let lanes = |at: [usize; 4], value: &dyn Fn(usize) -> f64| {
            _mm256_setr_pd(value(at[0]), value(at[1]), value(at[2]), value(at[3]))
        };
        let ask = |i: u32| {
            super::prefetch_into_l2(x[i as usize * d..].as_ptr(), d * std::mem::size_of::<F>())
        };
        pending.iter().take(4).for_each(|&i| ask(i));
        let mut kept = 0;
        for start in (0..pending.len()).step_by(4) {
            let m = (pending.len() - start).min(4);
            // Short groups repeat their last row; only `m` lanes are kept.
            let rows: [usize; 4] = std::array::from_fn(|l| pending[start + l.min(m - 1)] as usize);
            pending[start + m..].iter().take(4).for_each(|&i| ask(i));
            let a = rows.map(|i| (labels[i] as usize).min(self.k - 1));
            // The bounds' exact distance: from zero, feature by feature.
            let mut sum = _mm256_setzero_pd();
            for f in 0..d {
                let row = lanes(rows, &|i| x[i * d + f].as_f64());
                let centroid = lanes(a, &|j| centroids[j * d + f].as_f64());
                let diff = _mm256_sub_pd(row, centroid);
                sum = _mm256_add_pd(sum, _mm256_mul_pd(diff, diff));
            }
            // `distance_above`, then `certain` against the old lower bound.
            let up = _mm256_mul_pd(_mm256_sqrt_pd(_mm256_mul_pd(sum, widen)), widen);
            let low = lanes(rows, &|i| f64::from(lower[i]));
            let half_gap = lanes(a, &|j| half_gap[j]);
            let gap = _mm256_mul_pd(
                _mm256_max_pd(low, _mm256_sub_pd(_mm256_mul_pd(two, half_gap), up)),
                narrow,
            );
            let settled = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(gap, up),
                _mm256_cmp_pd::<_CMP_GT_OQ>(
                    _mm256_mul_pd(_mm256_sub_pd(gap, up), _mm256_add_pd(gap, up)),
                    error2,
                ),
            );
            let settled = _mm256_movemask_pd(settled) as u32;
            // `round_up(up * widen)` as `f32`.
            let tight = _mm256_cvtpd_ps(_mm256_add_pd(
                _mm256_mul_pd(_mm256_mul_pd(up, widen), round_up),
                spacing,
            ));
            let mut stored = [0f32; 4];
            // SAFETY: `stored` holds four elements.
            unsafe { _mm_storeu_ps(stored.as_mut_ptr(), tight) };
            for (lane, &i) in rows.iter().enumerate().take(m) {
                if settled >> lane & 1 == 1 {
                    upper[i] = stored[lane];
                } else {
                    pending[kept] = i as u32;
                    kept += 1;
                }
            }
        }
        kept
    }

    /// The bounds' row-by-row carrying over sixteen rows at a time then,
    /// when the tables hold the centroids, their tightening for the rows
    /// left, gathered eight at a time (only those rows: usually a few of
    /// sixteen need it): the rows that are settled (bit `i` for row `i`)
    /// and how many exact distances were computed. `x` holds the rows,
    /// `(labels.len(), d)` row-major, with `d = self.features` (unused when
    /// that is 0).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the three slices are as long, at most 64,
    /// and `x` holds `labels.len() * self.features` elements.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rows_avx512<F: Element>(
        &self,
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> (u64, usize) {
        use std::arch::x86_64::*;
        let n = labels.len();
        let (k, d) = (self.k, self.features);
        let stride = k.max(32);
        // Up to 32 centroids, a per-centroid term is picked from registers
        // by permutes; beyond, it is gathered from memory.
        let in_registers = k <= 32;
        let terms = [self.drift, self.others, self.gap2];
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
            splat32(self.widen32),
            splat32(self.narrow32),
            splat32(self.error32),
        );
        let (tiny, zero32) = (splat32(F32_TINY), _mm512_setzero_ps());
        let last = _mm512_set1_epi32((k - 1) as i32);
        // Whether the kernel certainly keeps each lane's label, for a
        // tightened upper bound (the bounds' `certain`).
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
                // The bounds' `carried`, lane-wise in the same order.
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
        // feature in f64 (as the bounds' exact distance), and tested again.
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
