//! AVX2 with FMA: the vector operations for both float types, the
//! instruction set as a type, and the guesses' transposition of first
//! features into columns (which AVX-512 uses too).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::carry_over::CarryOver;
use super::lanes::{impl_kernels, impl_lanes, impl_simd, Lanes};
use super::{portable, Element, Isa, FIRST_FEATURES};

impl_lanes!(Avx2F64, f64, __m256d, 4, "avx2,fma",
zero: _mm256_setzero_pd, splat: _mm256_set1_pd, load: _mm256_loadu_pd, store: _mm256_storeu_pd,
fmadd: _mm256_fmadd_pd, min: _mm256_min_pd, max: _mm256_max_pd,
offsets: __m256i, i64, _mm256_loadu_si256,
gather: |p, offsets| { _mm256_i64gather_pd::<8>(p, offsets) },
deinterleave: |lo, hi| {
    // Within each 128-bit half, then the halves' 64-bit pieces in order.
    let even = _mm256_unpacklo_pd(lo, hi);
    let odd = _mm256_unpackhi_pd(lo, hi);
    (
        _mm256_permute4x64_pd::<0b11_01_10_00>(even),
        _mm256_permute4x64_pd::<0b11_01_10_00>(odd),
    )
},
keep_lower: |score, index, best, best_index| {
    let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(score, *best);
    *best = _mm256_min_pd(*best, score);
    *best_index = _mm256_blendv_pd(*best_index, index, lower);
},
horizontal_min: |v| {
    let halves = _mm256_min_pd(v, _mm256_permute2f128_pd::<1>(v, v));
    _mm256_cvtsd_f64(_mm256_min_pd(halves, _mm256_permute_pd::<0b0101>(halves)))
},
select_equal: |key, target, if_equal, otherwise| {
    let equal = _mm256_cmp_pd::<_CMP_EQ_OQ>(key, _mm256_set1_pd(target));
    _mm256_blendv_pd(otherwise, if_equal, equal)
},
lowest_per_row: |scores, indices, out| {
    // Adjacent runs of lanes are merged, pairs then all four, two rows to
    // a register: the right run's lowest replaces the left's where its
    // score is lower, or equal with a lower index.
    assert!(scores.len() == 4 && indices.len() == 4 && out.len() == 4);
    macro_rules! merge {
        ($lo:expr, $hi:expr, $lo_i:expr, $hi_i:expr) => {{
            let (lo, hi, lo_i, hi_i) = ($lo, $hi, $lo_i, $hi_i);
            let tie = _mm256_cmp_pd::<_CMP_EQ_OQ>(hi, lo);
            let lower_index = _mm256_cmp_pd::<_CMP_LT_OQ>(hi_i, lo_i);
            let right = _mm256_or_pd(
                _mm256_cmp_pd::<_CMP_LT_OQ>(hi, lo),
                _mm256_and_pd(tie, lower_index),
            );
            (_mm256_blendv_pd(lo, hi, right), _mm256_blendv_pd(lo_i, hi_i, right))
        }};
    }
    // Lanes 0 and 1, 2 and 3: two rows a register, interleaved.
    let pairs: [(__m256d, __m256d); 2] = std::array::from_fn(|p| {
        let (a, b) = (scores[2 * p], scores[2 * p + 1]);
        let (a_i, b_i) = (indices[2 * p], indices[2 * p + 1]);
        merge!(
            _mm256_unpacklo_pd(a, b),
            _mm256_unpackhi_pd(a, b),
            _mm256_unpacklo_pd(a_i, b_i),
            _mm256_unpackhi_pd(a_i, b_i)
        )
    });
    // Lanes 0-1 and 2-3: the four rows in order.
    let ((a, a_i), (b, b_i)) = (pairs[0], pairs[1]);
    let (_, lowest) = merge!(
        _mm256_permute2f128_pd::<0x20>(a, b),
        _mm256_permute2f128_pd::<0x31>(a, b),
        _mm256_permute2f128_pd::<0x20>(a_i, b_i),
        _mm256_permute2f128_pd::<0x31>(a_i, b_i)
    );
    // SAFETY: `out` holds four `u32`; centroid indices are below 2^31.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), _mm256_cvttpd_epi32(lowest)) }
});

impl_lanes!(Avx2F32, f32, __m256, 8, "avx2,fma",
zero: _mm256_setzero_ps, splat: _mm256_set1_ps, load: _mm256_loadu_ps, store: _mm256_storeu_ps,
fmadd: _mm256_fmadd_ps, min: _mm256_min_ps, max: _mm256_max_ps,
offsets: __m256i, i32, _mm256_loadu_si256,
gather: |p, offsets| { _mm256_i32gather_ps::<4>(p, offsets) },
deinterleave: |lo, hi| {
    // Within each 128-bit half, then the halves' 64-bit pieces in order.
    let even = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi));
    let odd = _mm256_castps_pd(_mm256_shuffle_ps::<0b11_01_11_01>(lo, hi));
    (
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(even)),
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(odd)),
    )
},
keep_lower: |score, index, best, best_index| {
    let lower = _mm256_cmp_ps::<_CMP_LT_OQ>(score, *best);
    *best = _mm256_min_ps(*best, score);
    *best_index = _mm256_blendv_ps(*best_index, index, lower);
},
horizontal_min: |v| {
    let halves = _mm256_min_ps(v, _mm256_permute2f128_ps::<1>(v, v));
    let pairs = _mm256_min_ps(halves, _mm256_permute_ps::<0b0100_1110>(halves));
    _mm256_cvtss_f32(_mm256_min_ps(pairs, _mm256_permute_ps::<0b1011_0001>(pairs)))
},
select_equal: |key, target, if_equal, otherwise| {
    let equal = _mm256_cmp_ps::<_CMP_EQ_OQ>(key, _mm256_set1_ps(target));
    _mm256_blendv_ps(otherwise, if_equal, equal)
},
lowest_two_per_row: |best, second, indices, out, scores| {
    // (best, runner-up, index) of the lanes merged in pairs until one is
    // left a row, several rows to a register: the best by score, then
    // index (so the order of the merges does not matter), the runner-up
    // the lower of both runner-ups and the other best.
    assert!(best.len() == 4 && second.len() == 4 && indices.len() == 4);
    assert!(out.len() == 4 && scores.len() == 8);
    macro_rules! merge {
        ($lo:expr, $hi:expr) => {{
            let ((b1, s1, i1), (b2, s2, i2)) = ($lo, $hi);
            let tie = _mm256_cmp_ps::<_CMP_EQ_OQ>(b2, b1);
            let lower_index = _mm256_cmp_ps::<_CMP_LT_OQ>(i2, i1);
            let right = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_LT_OQ>(b2, b1),
                _mm256_and_ps(tie, lower_index),
            );
            (
                _mm256_blendv_ps(b1, b2, right),
                _mm256_min_ps(_mm256_min_ps(s1, s2), _mm256_max_ps(b1, b2)),
                _mm256_blendv_ps(i1, i2, right),
            )
        }};
    }
    // The same rearrangement of each of a triple's three registers.
    macro_rules! each {
        (|$x:ident, $y:ident| $e:expr, $a:expr, $b:expr) => {{
            let (a, b) = ($a, $b);
            let f = |$x: __m256, $y: __m256| $e;
            (f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
        }};
    }
    let row = |r: usize| (best[r], second[r], indices[r]);
    // Two rows a register: lanes 0-1 of a 128-bit half against 2-3.
    let pairs: [(__m256, __m256, __m256); 2] = std::array::from_fn(|p| {
        let (a, b) = (row(2 * p), row(2 * p + 1));
        merge!(
            each!(|x, y| _mm256_unpacklo_ps(x, y), a, b),
            each!(|x, y| _mm256_unpackhi_ps(x, y), a, b)
        )
    });
    // Four rows a half: a half's two 64-bit quarters.
    let as_pd = |x: __m256| _mm256_castps_pd(x);
    let (a, b) = (pairs[0], pairs[1]);
    let halves = merge!(
        each!(|x, y| _mm256_castpd_ps(_mm256_unpacklo_pd(as_pd(x), as_pd(y))), a, b),
        each!(|x, y| _mm256_castpd_ps(_mm256_unpackhi_pd(as_pd(x), as_pd(y))), a, b)
    );
    // Each half against the other: rows 0-3 in the lower half.
    let swapped = each!(|x, _y| _mm256_permute2f128_ps::<0x01>(x, x), halves, halves);
    let (b, s, i) = merge!(halves, swapped);
    let (b, s) = (_mm256_castps256_ps128(b), _mm256_castps256_ps128(s));
    let (b, s) = (_mm_add_ps(b, b), _mm_add_ps(s, s));
    // SAFETY: `out` holds four `u32` (the indices are below 2^31),
    // `scores` eight `f32`.
    unsafe {
        _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_cvttps_epi32(_mm256_castps256_ps128(i)));
        _mm_storeu_ps(scores.as_mut_ptr(), _mm_unpacklo_ps(b, s));
        _mm_storeu_ps(scores.as_mut_ptr().add(4), _mm_unpackhi_ps(b, s));
    }
});

impl_simd!(Avx2, Isa::Avx2, "avx2,fma", Avx2F32, tile_rows: 4, "AVX2 with FMA");

/// The guesses' transposition, for both float types (AVX-512 too).
macro_rules! first_features {
    ($f:ty) => {
        #[inline(always)]
        fn first_features_in_columns<const STRIDE: usize>(
            self,
            x: &[$f],
            d: usize,
            rows: usize,
            columns: &mut [f32],
        ) {
            // SAFETY: `self` proves AVX2.
            unsafe { super::avx2::first_features_in_columns::<_, STRIDE>(x, d, rows, columns) }
        }
    };
}

pub(super) use first_features;

/// The bounds' carrying over, eight rows at a time, and their tightening,
/// four rows at a time (`terms.features` is 0 for this instruction set: the
/// carrying over leaves the tightening to the chunk).
macro_rules! carry_over {
    ($f:ty) => {
        #[inline(always)]
        fn carry_over(
            self,
            terms: &CarryOver<'_>,
            x: &[$f],
            labels: &[u32],
            upper: &mut [f32],
            lower: &mut [f32],
        ) -> Option<(u64, usize)> {
            let n = labels.len();
            assert_eq!(
                terms.features, 0,
                "carrying bounds over: no tables of features"
            );
            terms.check(x.len(), n, upper.len(), lower.len());
            // SAFETY: `self` proves AVX2; the lengths were checked.
            let sure = unsafe { terms.carry_avx2(labels, upper, lower) };
            Some((sure, n - sure.count_ones() as usize))
        }

        #[inline(always)]
        fn tighten(
            self,
            terms: &CarryOver<'_>,
            x: &[$f],
            d: usize,
            centroids: &[$f],
            labels: &[u32],
            pending: &mut [u32],
            upper: &mut [f32],
            lower: &[f32],
        ) -> Option<usize> {
            // SAFETY: `self` proves AVX2.
            Some(unsafe { terms.tighten_avx2(x, d, centroids, labels, pending, upper, lower) })
        }
    };
}

impl_kernels!(Avx2, f32, Avx2F32, "avx2,fma", rows: 4, groups: 2, {
    first_features!(f32);
    carry_over!(f32);
});
impl_kernels!(Avx2, f64, Avx2F64, "avx2,fma", rows: 4, groups: 2, {
    first_features!(f64);
    carry_over!(f64);
});

/// The first [`FIRST_FEATURES`] features of the `rows` rows of `x` into
/// columns `STRIDE` apart, in `f32` (see [`super::Kernels`]), eight rows at
/// a time where there are eight.
///
/// # Safety
/// The CPU must have AVX2.
#[inline(always)]
pub unsafe fn first_features_in_columns<F: FirstEight, const STRIDE: usize>(
    x: &[F],
    d: usize,
    rows: usize,
    columns: &mut [f32],
) {
    assert!(
        d >= FIRST_FEATURES
            && x.len() >= rows * d
            && rows <= STRIDE
            && columns.len() >= FIRST_FEATURES * STRIDE,
        "first features: arguments do not match the layout"
    );
    if rows < 8 {
        return portable::first_features_in_columns::<F, STRIDE>(x, d, rows, columns);
    }
    // SAFETY: the caller vouches for AVX2; the lengths were checked.
    unsafe { columns_avx2::<F, STRIDE>(x, d, rows, columns) }
}

/// [`first_features_in_columns`] eight rows at a time (at least eight
/// rows; the last eight overlap the ones before when `rows` is not a
/// multiple): each row's first features in one register, the eight
/// registers transposed.
///
/// # Safety
/// The CPU must have AVX2; `x` holds `rows >= 8` rows of `d >=
/// FIRST_FEATURES` elements, `rows <= STRIDE` and `columns` holds
/// `FIRST_FEATURES * STRIDE` elements.
#[target_feature(enable = "avx2")]
unsafe fn columns_avx2<F: FirstEight, const STRIDE: usize>(
    x: &[F],
    d: usize,
    rows: usize,
    columns: &mut [f32],
) {
    for first in (0..rows).step_by(8) {
        let start = first.min(rows - 8);
        // SAFETY (all below): rows `start..start + 8` are in `x`, each with
        // `FIRST_FEATURES` elements; `start + 8 <= STRIDE`, within each column.
        unsafe {
            let mut c = [_mm256_setzero_ps(); 8];
            for (r, c) in c.iter_mut().enumerate() {
                *c = F::first_eight(x.as_ptr().add((start + r) * d));
            }
            // The classic 8x8 transpose: pairs, then quads, then halves.
            let t = [
                _mm256_unpacklo_ps(c[0], c[1]),
                _mm256_unpackhi_ps(c[0], c[1]),
                _mm256_unpacklo_ps(c[2], c[3]),
                _mm256_unpackhi_ps(c[2], c[3]),
                _mm256_unpacklo_ps(c[4], c[5]),
                _mm256_unpackhi_ps(c[4], c[5]),
                _mm256_unpacklo_ps(c[6], c[7]),
                _mm256_unpackhi_ps(c[6], c[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            for f in 0..4 {
                let low = _mm256_permute2f128_ps::<0x20>(u[f], u[f + 4]);
                let high = _mm256_permute2f128_ps::<0x31>(u[f], u[f + 4]);
                _mm256_storeu_ps(columns.as_mut_ptr().add(f * STRIDE + start), low);
                _mm256_storeu_ps(columns.as_mut_ptr().add((f + 4) * STRIDE + start), high);
            }
        }
    }
}

/// A row's first eight elements as eight `f32` lanes, for
/// [`columns_avx2`].
pub trait FirstEight: Element {
    /// The eight elements from `row`, in `f32`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `row` points to eight readable elements.
    unsafe fn first_eight(row: *const Self) -> __m256;
}

impl FirstEight for f32 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn first_eight(row: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(row) }
    }
}

impl FirstEight for f64 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn first_eight(row: *const f64) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe {
            let low = _mm256_cvtpd_ps(_mm256_loadu_pd(row));
            let high = _mm256_cvtpd_ps(_mm256_loadu_pd(row.add(4)));
            _mm256_set_m128(high, low)
        }
    }
}
