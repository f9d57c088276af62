//! AVX-512F with FMA: the vector operations for both float types, the
//! instruction set as a type, and its own routines (`f64` distances in one
//! register, the bounds' carrying over).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::carry_over::CarryOver;
use super::lanes::{impl_kernels, impl_lanes, impl_simd, Lanes};
use super::{avx2, Isa};

impl_lanes!(Avx512F64, f64, __m512d, 8, "avx512f,fma",
zero: _mm512_setzero_pd, splat: _mm512_set1_pd, load: _mm512_loadu_pd, store: _mm512_storeu_pd,
fmadd: _mm512_fmadd_pd, min: _mm512_min_pd, max: _mm512_max_pd,
offsets: __m512i, i64, _mm512_loadu_si512,
gather: |p, offsets| { _mm512_i64gather_pd::<8>(offsets, p) },
deinterleave: |lo, hi| {
    let even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    (_mm512_permutex2var_pd(lo, even, hi), _mm512_permutex2var_pd(lo, odd, hi))
},
keep_lower: |score, index, best, best_index| {
    // The new best through a minimum, not the mask: the loop-carried
    // chain is then one short instruction.
    let lower = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(score, *best);
    *best = _mm512_min_pd(*best, score);
    *best_index = _mm512_mask_blend_pd(lower, *best_index, index);
},
horizontal_min: |v| { _mm512_reduce_min_pd(v) },
select_equal: |key, target, if_equal, otherwise| {
    let equal = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(key, _mm512_set1_pd(target));
    _mm512_mask_blend_pd(equal, otherwise, if_equal)
},
lowest_per_row: |scores, indices, out| {
    // Adjacent runs of lanes are merged, pairs, then fours, then all
    // eight, several rows to a register: the right run's lowest replaces
    // the left's where its score is lower, or equal with a lower index.
    assert!(scores.len() == 8 && indices.len() == 8 && out.len() == 8);
    macro_rules! merge {
        ($lo:expr, $hi:expr, $lo_i:expr, $hi_i:expr) => {{
            let (lo, hi, lo_i, hi_i) = ($lo, $hi, $lo_i, $hi_i);
            let tie = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(hi, lo);
            let right = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(hi, lo)
                | _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(tie, hi_i, lo_i);
            (_mm512_mask_blend_pd(right, lo, hi), _mm512_mask_blend_pd(right, lo_i, hi_i))
        }};
    }
    // Lanes 0 and 1, 2 and 3, ...: two rows a register, interleaved.
    let pairs: [(__m512d, __m512d); 4] = std::array::from_fn(|p| {
        let (a, b) = (scores[2 * p], scores[2 * p + 1]);
        let (a_i, b_i) = (indices[2 * p], indices[2 * p + 1]);
        merge!(
            _mm512_unpacklo_pd(a, b),
            _mm512_unpackhi_pd(a, b),
            _mm512_unpacklo_pd(a_i, b_i),
            _mm512_unpackhi_pd(a_i, b_i)
        )
    });
    // Lanes 0-1 and 2-3, 4-5 and 6-7: four rows a register.
    let fours: [(__m512d, __m512d); 2] = std::array::from_fn(|q| {
        let ((a, a_i), (b, b_i)) = (pairs[2 * q], pairs[2 * q + 1]);
        merge!(
            _mm512_shuffle_f64x2::<0x88>(a, b),
            _mm512_shuffle_f64x2::<0xDD>(a, b),
            _mm512_shuffle_f64x2::<0x88>(a_i, b_i),
            _mm512_shuffle_f64x2::<0xDD>(a_i, b_i)
        )
    });
    // Lanes 0-3 and 4-7: the eight rows in order.
    let ((a, a_i), (b, b_i)) = (fours[0], fours[1]);
    let (_, lowest) = merge!(
        _mm512_shuffle_f64x2::<0x88>(a, b),
        _mm512_shuffle_f64x2::<0xDD>(a, b),
        _mm512_shuffle_f64x2::<0x88>(a_i, b_i),
        _mm512_shuffle_f64x2::<0xDD>(a_i, b_i)
    );
    // SAFETY: `out` holds eight `u32`.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), _mm512_cvttpd_epu32(lowest)) }
},
wide_tiles: true);

impl_lanes!(Avx512F32, f32, __m512, 16, "avx512f,fma",
zero: _mm512_setzero_ps, splat: _mm512_set1_ps, load: _mm512_loadu_ps, store: _mm512_storeu_ps,
fmadd: _mm512_fmadd_ps, min: _mm512_min_ps, max: _mm512_max_ps,
offsets: __m512i, i32, _mm512_loadu_si512,
gather: |p, offsets| { _mm512_i32gather_ps::<4>(offsets, p) },
deinterleave: |lo, hi| {
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    (_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi))
},
keep_lower: |score, index, best, best_index| {
    // The new best through a minimum, not the mask: the loop-carried
    // chain is then one short instruction.
    let lower = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(score, *best);
    *best = _mm512_min_ps(*best, score);
    *best_index = _mm512_mask_blend_ps(lower, *best_index, index);
},
horizontal_min: |v| { _mm512_reduce_min_ps(v) },
select_equal: |key, target, if_equal, otherwise| {
    let equal = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(key, _mm512_set1_ps(target));
    _mm512_mask_blend_ps(equal, otherwise, if_equal)
},
lowest_two_per_row: |best, second, indices, out, scores| {
    // (best, runner-up, index) of the lanes merged in pairs until one is
    // left a row, several rows to a register: the best by score, then
    // index (so the order of the merges does not matter), the runner-up
    // the lower of both runner-ups and the other best.
    assert!(best.len() == 8 && second.len() == 8 && indices.len() == 8);
    assert!(out.len() == 8 && scores.len() == 16);
    macro_rules! merge {
        ($lo:expr, $hi:expr) => {{
            let ((b1, s1, i1), (b2, s2, i2)) = ($lo, $hi);
            let tie = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(b2, b1);
            let right = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(b2, b1)
                | _mm512_mask_cmp_ps_mask::<_CMP_LT_OQ>(tie, i2, i1);
            (
                _mm512_mask_blend_ps(right, b1, b2),
                _mm512_min_ps(_mm512_min_ps(s1, s2), _mm512_max_ps(b1, b2)),
                _mm512_mask_blend_ps(right, i1, i2),
            )
        }};
    }
    // The same rearrangement of each of a triple's three registers.
    macro_rules! each {
        (|$x:ident, $y:ident| $e:expr, $a:expr, $b:expr) => {{
            let (a, b) = ($a, $b);
            let f = |$x: __m512, $y: __m512| $e;
            (f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
        }};
    }
    let row = |r: usize| (best[r], second[r], indices[r]);
    // Two rows a register: lanes 0-1 of a 128-bit chunk against 2-3.
    let pairs: [(__m512, __m512, __m512); 4] = std::array::from_fn(|p| {
        let (a, b) = (row(2 * p), row(2 * p + 1));
        merge!(
            each!(|x, y| _mm512_unpacklo_ps(x, y), a, b),
            each!(|x, y| _mm512_unpackhi_ps(x, y), a, b)
        )
    });
    // Four rows a register: a chunk's two 64-bit halves.
    let as_pd = |x: __m512| _mm512_castps_pd(x);
    let fours: [(__m512, __m512, __m512); 2] = std::array::from_fn(|q| {
        let (a, b) = (pairs[2 * q], pairs[2 * q + 1]);
        merge!(
            each!(|x, y| _mm512_castpd_ps(_mm512_unpacklo_pd(as_pd(x), as_pd(y))), a, b),
            each!(|x, y| _mm512_castpd_ps(_mm512_unpackhi_pd(as_pd(x), as_pd(y))), a, b)
        )
    });
    // Rows 0-3 twice, then rows 4-7 twice: chunks 0 and 2 against 1 and 3.
    let (a, b) = (fours[0], fours[1]);
    let twice = merge!(
        each!(|x, y| _mm512_shuffle_f32x4::<0x88>(x, y), a, b),
        each!(|x, y| _mm512_shuffle_f32x4::<0xDD>(x, y), a, b)
    );
    // Each chunk against its neighbour, then chunks 0 and 2: rows 0-7.
    let once = merge!(twice, each!(|x, _y| _mm512_shuffle_f32x4::<0xB1>(x, x), twice, twice));
    let (b, s, i) = each!(|x, _y| _mm512_shuffle_f32x4::<0x08>(x, x), once, once);
    let pairs_of = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    let doubled = _mm512_permutex2var_ps(_mm512_add_ps(b, b), pairs_of, _mm512_add_ps(s, s));
    // SAFETY: `out` holds eight `u32`, `scores` sixteen `f32`.
    unsafe {
        _mm256_storeu_si256(out.as_mut_ptr().cast(), _mm512_castsi512_si256(_mm512_cvttps_epu32(i)));
        _mm512_storeu_ps(scores.as_mut_ptr(), doubled);
    }
},
wide_tiles: true);

impl_simd!(
    Avx512,
    Isa::Avx512,
    "avx512f,avx2,fma",
    Avx512F32,
    tile_rows: 8,
    "AVX-512F with FMA (and AVX2)"
);

/// Both float types share the guesses' transposition (AVX2, which comes
/// with AVX-512 here) and the bounds' carrying over.
macro_rules! shared {
    ($f:ty) => {
        avx2::first_features!($f);

        #[inline(always)]
        fn carry_over(
            self,
            terms: &CarryOver<'_>,
            x: &[$f],
            labels: &[u32],
            upper: &mut [f32],
            lower: &mut [f32],
        ) -> Option<(u64, usize)> {
            terms.check(x.len(), labels.len(), upper.len(), lower.len());
            // SAFETY: `self` proves AVX-512F; the lengths were checked.
            Some(unsafe { terms.rows_avx512(x, labels, upper, lower) })
        }
    };
}

impl_kernels!(Avx512, f32, Avx512F32, "avx512f,fma", rows: 8, groups: 4, { shared!(f32); });

impl_kernels!(Avx512, f64, Avx512F64, "avx512f,fma", rows: 8, groups: 4, {
    shared!(f64);

    #[inline(always)]
    fn squared_distance(self, a: &[f64], b: &[f64]) -> f64 {
        // Rows shorter than a register are no faster in one.
        if a.len() < 8 {
            return super::squared_distance(a, b);
        }
        // SAFETY: `self` proves AVX-512F.
        unsafe { wide_squared_distance(a, b) }
    }

    #[inline(always)]
    fn squared_norm(self, a: &[f64]) -> f64 {
        if a.len() < 8 {
            return super::squared_norm(a);
        }
        // SAFETY: as above.
        unsafe { wide_squared_norm(a) }
    }

    #[inline(always)]
    fn squared_distance_and_scan(self, a: &[f64], b: &[f64]) -> (f64, f64, bool) {
        if a.len() < 8 {
            return super::squared_distance_and_scan(a, b);
        }
        // SAFETY: as above.
        unsafe { wide_squared_distance_and_scan(a, b) }
    }
});

/// `(l0 + l4 + l2 + l6) + (l1 + l5 + l3 + l7)`, paired as the portable
/// versions pair them: `(q0 + q2) + (q1 + q3)` with `q_i = l_i + l_{i+4}`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn combine(lanes: __m512d) -> f64 {
    let quads = _mm256_add_pd(
        _mm512_castpd512_pd256(lanes),
        _mm512_extractf64x4_pd::<1>(lanes),
    );
    let pairs = _mm_add_pd(
        _mm256_castpd256_pd128(quads),
        _mm256_extractf128_pd::<1>(quads),
    );
    _mm_cvtsd_f64(pairs) + _mm_cvtsd_f64(_mm_unpackhi_pd(pairs, pairs))
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn wide_squared_distance(a: &[f64], b: &[f64]) -> f64 {
    distance_lanes::<false>(a, b).0
}

/// [`wide_squared_distance`] with [`super::squared_distance_and_scan`]'s
/// scan of `a`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn wide_squared_distance_and_scan(a: &[f64], b: &[f64]) -> (f64, f64, bool) {
    distance_lanes::<true>(a, b)
}

/// [`wide_squared_distance`], and with `SCAN` the scan of `a` in the same
/// loop (else zero and `true`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn distance_lanes<const SCAN: bool>(a: &[f64], b: &[f64]) -> (f64, f64, bool) {
    // Plain index loops over lengths fixed up front: the per-row cost of
    // iterator adapters (a stepped range, a zipped tail) showed where rows
    // are short.
    let len = a.len().min(b.len());
    let whole = len / 8 * 8;
    let mut lanes = _mm512_setzero_pd();
    let mut max = _mm512_setzero_pd();
    let mut finite: __mmask8 = 0xff;
    let largest = _mm512_set1_pd(f64::MAX);
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 8 <= whole <= a.len(), b.len()`.
        let (p, q) = unsafe {
            (
                _mm512_loadu_pd(a.as_ptr().add(i)),
                _mm512_loadu_pd(b.as_ptr().add(i)),
            )
        };
        let diff = _mm512_sub_pd(p, q);
        lanes = _mm512_add_pd(lanes, _mm512_mul_pd(diff, diff));
        if SCAN {
            let m = _mm512_abs_pd(p);
            // The second operand where either is NaN, as `scan` keeps it.
            max = _mm512_max_pd(m, max);
            // False for NaN and infinities alike.
            finite &= _mm512_cmp_pd_mask::<_CMP_LE_OQ>(m, largest);
        }
        i += 8;
    }
    let (mut tail, mut tail_max, mut tail_finite) = (0.0, 0.0f64, true);
    for i in whole..len {
        // SAFETY: `i < len <= a.len(), b.len()`.
        let (p, q) = unsafe { (*a.get_unchecked(i), *b.get_unchecked(i)) };
        tail += (p - q) * (p - q);
        if SCAN {
            let m = p.abs();
            tail_max = if m > tail_max { m } else { tail_max };
            tail_finite &= m <= f64::MAX;
        }
    }
    (
        combine(lanes) + tail,
        _mm512_reduce_max_pd(max).max(tail_max),
        tail_finite && finite == 0xff,
    )
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn wide_squared_norm(a: &[f64]) -> f64 {
    let whole = a.len() / 8 * 8;
    let mut lanes = _mm512_setzero_pd();
    for i in (0..whole).step_by(8) {
        // SAFETY: `i + 8 <= whole <= a.len()`.
        let v = unsafe { _mm512_loadu_pd(a.as_ptr().add(i)) };
        lanes = _mm512_add_pd(lanes, _mm512_mul_pd(v, v));
    }
    let tail: f64 = a[whole..].iter().map(|&v| v * v).sum();
    combine(lanes) + tail
}
