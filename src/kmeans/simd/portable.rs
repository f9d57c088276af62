//! The portable kernels (plain loops, which the compiler vectorises as the
//! target baseline allows, without fused multiply-adds), and the reference
//! distances: eight interleaved partial sums, which the wide versions
//! reproduce to the bit.

use super::lanes::{check_tiles, CentroidLayout};
use super::{Element, Isa, Kernels, NextRows, Simd, WithSimd, FIRST_FEATURES};

/// The target baseline: no vector extensions beyond it.
#[derive(Debug, Clone, Copy)]
pub struct Portable;

impl Simd for Portable {
    const ISA: Isa = Isa::Portable;
    const TILE_ROWS: usize = 4;

    #[inline(always)]
    fn run<Op: WithSimd>(self, op: Op) -> Op::Output {
        op.run(self)
    }

    #[inline(always)]
    fn nearest_in_columns<const D: usize, const STRIDE: usize>(
        self,
        columns: &[f32],
        negated: &[f32],
        half_norms: &[f32],
        out: &mut [u32],
    ) {
        nearest_in_columns::<D>(columns, STRIDE, negated, half_norms, out)
    }
}

impl<F: Element> Kernels<F> for Portable {
    fn tiles<const SCORES: bool>(
        self,
        centroids: &CentroidLayout<'_, F>,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        _next: NextRows<'_>,
    ) {
        // Asks for nothing: the portable tiles are for comparisons and for
        // CPUs without the vector kernels.
        let lanes = Isa::Portable.lanes::<F>();
        check_tiles(centroids, x, out, scores, SCORES, Self::TILE_ROWS, lanes);
        match centroids.width {
            2 => portable_tiles::<F, 4, 2, SCORES>(centroids, x, out, scores),
            4 => portable_tiles::<F, 4, 4, SCORES>(centroids, x, out, scores),
            8 => portable_tiles::<F, 4, 8, SCORES>(centroids, x, out, scores),
            w => unreachable!("portable block width {w} is not prepared"),
        }
    }

    fn rows_in_lanes<const SCORES: bool>(
        self,
        _: &CentroidLayout<'_, F>,
        _: &[F],
        _: &mut [u32],
        _: &mut [F],
    ) {
        unreachable!("rows in lanes is never chosen for the portable kernel")
    }

    fn first_features_in_columns<const STRIDE: usize>(
        self,
        x: &[F],
        d: usize,
        rows: usize,
        columns: &mut [f32],
    ) {
        first_features_in_columns::<F, STRIDE>(x, d, rows, columns)
    }

    fn add_rows(self, x: &[F], labels: &[u32], sums: &mut [F], counts: &mut [u64], d: usize) {
        add_rows(x, labels, sums, counts, d)
    }
}

/// The first [`FIRST_FEATURES`] features of the `rows` rows of `x` (`d`
/// each), feature `f` of row `i` into `columns[f * STRIDE + i]`, in `f32`.
pub fn first_features_in_columns<F: Element, const STRIDE: usize>(
    x: &[F],
    d: usize,
    rows: usize,
    columns: &mut [f32],
) {
    for (i, row) in x.chunks_exact(d).take(rows).enumerate() {
        for (f, &v) in row[..FIRST_FEATURES].iter().enumerate() {
            columns[f * STRIDE + i] = v.as_f64() as f32;
        }
    }
}

/// The portable tiles: plain loops the compiler vectorises as the target
/// baseline allows (no FMA).
fn portable_tiles<F: Element, const R: usize, const C: usize, const SCORES: bool>(
    p: &CentroidLayout<'_, F>,
    x: &[F],
    out: &mut [u32],
    scores: &mut [F],
) {
    let d = p.d;
    for (t, (rows, labels)) in x
        .chunks_exact(R * d)
        .zip(out.chunks_exact_mut(R))
        .enumerate()
    {
        let mut best = [F::infinity(); R];
        let mut second = [F::infinity(); R];
        let mut best_j = [0u32; R];
        for (b, (block, half_norms)) in p
            .blocks
            .chunks_exact(d * C)
            .zip(p.half_norms.chunks_exact(C))
            .enumerate()
        {
            // Each chain starts at the half norm (see the module documentation).
            let mut acc = [[F::zero(); C]; R];
            for row in acc.iter_mut() {
                row.copy_from_slice(half_norms);
            }
            for (f, column) in block.chunks_exact(C).enumerate() {
                for r in 0..R {
                    let xv = rows[r * d + f];
                    for c in 0..C {
                        acc[r][c] = xv * column[c] + acc[r][c];
                    }
                }
            }
            for (r, scores) in acc.iter().enumerate() {
                for (c, &score) in scores.iter().enumerate() {
                    if score < best[r] {
                        second[r] = best[r];
                        best[r] = score;
                        best_j[r] = (b * C + c) as u32;
                    } else if SCORES && score < second[r] {
                        second[r] = score;
                    }
                }
            }
        }
        labels.copy_from_slice(&best_j);
        if SCORES {
            for r in 0..R {
                scores[2 * (t * R + r)] = best[r] + best[r];
                scores[2 * (t * R + r) + 1] = second[r] + second[r];
            }
        }
    }
}

/// [`Simd::nearest_in_columns`] in plain loops, row by row (lowest index on
/// ties; no fused multiply-add, so near ties may go the other way: a guess
/// need not agree across instruction sets).
fn nearest_in_columns<const D: usize>(
    columns: &[f32],
    stride: usize,
    negated: &[f32],
    half_norms: &[f32],
    out: &mut [u32],
) {
    for (i, guess) in out.iter_mut().enumerate() {
        let mut best = (f32::INFINITY, 0);
        for (j, (centroid, &half_norm)) in negated.chunks_exact(D).zip(half_norms).enumerate() {
            let score = centroid
                .iter()
                .enumerate()
                .fold(half_norm, |acc, (f, &c)| acc + columns[f * stride + i] * c);
            if score < best.0 {
                best = (score, j as u32);
            }
        }
        *guess = best.1;
    }
}

/// `||a||^2` in `f64`, summed in eight interleaved partial sums (so the
/// loop vectorises and is not bound by the latency of one chain of
/// additions).
#[inline(always)] // into the caller's instruction set
pub fn squared_norm<F: Element>(a: &[F]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = a.chunks_exact(8);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| v.as_f64() * v.as_f64())
        .sum();
    for chunk in chunks {
        for l in 0..8 {
            let v = chunk[l].as_f64();
            lanes[l] += v * v;
        }
    }
    ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
        + tail
}

/// `||a - b||^2`, summed in eight interleaved partial sums (so the loop
/// vectorises and is not bound by the latency of one chain of additions),
/// combined pairwise.
#[inline(always)] // into the caller's instruction set
pub fn squared_distance<F: Element>(a: &[F], b: &[F]) -> F {
    distance_lanes::<F, false>(a, b).0
}

/// [`squared_distance`] (the same bits) with, in the same loop, what the
/// data's check finds in `a`: its largest magnitude and whether every
/// value is finite.
#[inline(always)] // into the caller's instruction set
pub fn squared_distance_and_scan<F: Element>(a: &[F], b: &[F]) -> (F, f64, bool) {
    let (distance, max, finite) = distance_lanes::<F, true>(a, b);
    (distance, max.as_f64(), finite)
}

/// [`squared_distance`], and with `SCAN` the scan of
/// [`squared_distance_and_scan`] in the same loop (else zero and `true`).
#[inline(always)]
fn distance_lanes<F: Element, const SCAN: bool>(a: &[F], b: &[F]) -> (F, F, bool) {
    let mut lanes = [F::zero(); 8];
    let mut max = [F::zero(); 8];
    let mut finite = [true; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let (mut tail, mut tail_max, mut tail_finite) = (F::zero(), F::zero(), true);
    for (&p, &q) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        tail += (p - q) * (p - q);
        if SCAN {
            let m = p.abs();
            tail_max = if m > tail_max { m } else { tail_max };
            tail_finite &= m <= F::max_value();
        }
    }
    for (p, q) in a_chunks.zip(b_chunks) {
        for l in 0..8 {
            let diff = p[l] - q[l];
            lanes[l] += diff * diff;
            if SCAN {
                let m = p[l].abs();
                max[l] = if m > max[l] { m } else { max[l] };
                // False for NaN and infinities alike.
                finite[l] &= m <= F::max_value();
            }
        }
    }
    let quads = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    let max = max.iter().fold(tail_max, |m, &v| if v > m { v } else { m });
    (
        (quads[0] + quads[2]) + (quads[1] + quads[3]) + tail,
        max,
        tail_finite && finite.iter().all(|&f| f),
    )
}

/// Adds each row of `x` to the sum of its cluster and counts it:
/// `sums[labels[i]] += x[i]`, `counts[labels[i]] += 1` (`sums` is `(k,
/// d)`, row-major), in row order.
#[inline(always)]
pub fn add_rows<F: Element>(x: &[F], labels: &[u32], sums: &mut [F], counts: &mut [u64], d: usize) {
    // Up to 16 features: the row's length as a constant, so that each row
    // is added in a few whole vectors, without a loop or a scalar tail.
    macro_rules! constant_d {
        ($($d:literal)*) => {
            match d {
                $($d => return add_rows_d::<F, $d>(x, labels, sums, counts),)*
                _ => {}
            }
        };
    }
    constant_d!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    for (row, &j) in x.chunks_exact(d).zip(labels) {
        let j = j as usize;
        for (s, &v) in sums[j * d..(j + 1) * d].iter_mut().zip(row) {
            *s += v;
        }
        counts[j] += 1;
    }
}

#[inline(always)]
fn add_rows_d<F: Element, const D: usize>(
    x: &[F],
    labels: &[u32],
    sums: &mut [F],
    counts: &mut [u64],
) {
    for (row, &j) in x.chunks_exact(D).zip(labels) {
        let j = j as usize;
        let sum = &mut sums[j * D..(j + 1) * D];
        for f in 0..D {
            sum[f] += row[f];
        }
        counts[j] += 1;
    }
}
