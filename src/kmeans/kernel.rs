//! The distance kernel: rows of X against all centroids through
//! `||c||^2 - 2 x.c` (the `||x||^2` term is the same for every centroid and is
//! left out, as scikit-learn does).
//!
//! Centroids are laid out in blocks of `C` columns, transposed (`d x C` per
//! block, padded with zero centroids whose norm is +inf so they never win).
//! A tile of `R` rows is multiplied against each block with `R x C`
//! accumulators held in registers: per feature, `C / lanes` vector loads and
//! `R` broadcasts feed `R * C / lanes` fused multiply-adds. `R` and `C` are
//! constants, so the compiler unrolls and vectorises the tile fully.
//!
//! The same generic code is compiled three times, for AVX-512, for AVX2 with
//! FMA and for the portable baseline, and the widest the CPU supports is
//! chosen at run time. Lowest index wins a tie, in every variant.

use ndarray::ArrayView2;

use super::float::Float;

/// The instruction set a kernel was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA: 512-bit vectors, 32 registers.
    Avx512,
    /// AVX2 with FMA: 256-bit vectors, 16 registers.
    Avx2,
    /// Whatever the target baseline gives (SSE2 on x86-64), no FMA.
    Portable,
}

impl Isa {
    /// The widest instruction set this CPU runs (`KMEANS_KERNEL=portable|avx2`
    /// caps it, for comparisons). Detected once per process.
    pub fn detect() -> Isa {
        static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            let cap = std::env::var("KMEANS_KERNEL").unwrap_or_default();
            Self::widest_supported(&cap)
        })
    }

    fn widest_supported(cap: &str) -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            if cap != "portable"
                && cap != "avx2"
                && fma
                && std::arch::is_x86_feature_detected!("avx512f")
            {
                return Isa::Avx512;
            }
            if cap != "portable" && fma && std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        let _ = cap; // only x86-64 has kernels to cap
        Isa::Portable
    }

    /// Elements of `F` in one vector register.
    pub fn lanes<F>(self) -> usize {
        self.vector_bytes() / std::mem::size_of::<F>()
    }

    /// Bytes in one vector register.
    fn vector_bytes(self) -> usize {
        match self {
            Isa::Avx512 => 64,
            Isa::Avx2 => 32,
            Isa::Portable => 16,
        }
    }

    /// Rows per tile: enough accumulators to hide FMA latency, few enough
    /// to stay in registers.
    fn tile_rows(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 | Isa::Portable => 4,
        }
    }
}

/// The most rows in a tile of any instruction set.
const MAX_TILE_ROWS: usize = 8;
/// Up to this many features, fewer rows than a tile are padded on the stack.
const MAX_PADDED_D: usize = 128;

/// Centroids laid out for the kernel.
#[derive(Debug, Clone)]
pub struct PreparedCentroids<F> {
    /// `blocks` of `(d, width)`, row-major, zero-padded.
    blocks: Vec<F>,
    /// `||c_j||^2`, padded with +inf to a whole number of blocks.
    norms: Vec<F>,
    /// `j` as a float, beside each norm (the SIMD kernels select it).
    lane_index: Vec<F>,
    d: usize,
    width: usize,
    isa: Isa,
}

impl<F: Float> PreparedCentroids<F> {
    /// Prepares `(k, d)` centroids for the fastest kernel of this CPU.
    pub fn new(centroids: ArrayView2<F>) -> Self {
        Self::with_isa(centroids, Isa::detect())
    }

    /// Prepares `(k, d)` centroids for the kernel of `isa` (which the CPU must support).
    pub fn with_isa(centroids: ArrayView2<F>, isa: Isa) -> Self {
        let (k, d) = centroids.dim();
        let lanes = isa.lanes::<F>();
        // One vector of columns when k fits in it, else two per block.
        let width = if k <= lanes { lanes } else { 2 * lanes };
        let n_blocks = k.div_ceil(width);
        let mut blocks = vec![F::zero(); n_blocks * d * width];
        let mut norms = vec![F::infinity(); n_blocks * width];
        for (j, centroid) in centroids.rows().into_iter().enumerate() {
            let (b, c) = (j / width, j % width);
            for (f, &v) in centroid.iter().enumerate() {
                blocks[b * d * width + f * width + c] = v;
            }
            norms[j] = centroid.iter().fold(F::zero(), |acc, &v| acc + v * v);
        }
        let lane_index = (0..norms.len()).map(|j| F::from_f64(j as f64)).collect();
        PreparedCentroids {
            blocks,
            norms,
            lane_index,
            d,
            width,
            isa,
        }
    }

    /// The layout the SIMD kernels read: blocks, norms, lane indices, d, block width.
    pub(crate) fn layout(&self) -> (&[F], &[F], &[F], usize, usize) {
        (
            &self.blocks,
            &self.norms,
            &self.lane_index,
            self.d,
            self.width,
        )
    }

    /// The instruction set it was prepared for.
    pub(crate) fn isa(&self) -> Isa {
        self.isa
    }

    /// Block width in elements.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Writes the nearest centroid of each row of `x` (`(out.len(), d)`,
    /// row-major) to `out`.
    pub fn assign(&self, x: &[F], out: &mut [u32]) {
        self.assign_rows::<false>(x, out, &mut []);
    }

    /// As [`assign`](Self::assign), also writing each row's best and
    /// runner-up scores `||c_j||^2 - 2 x.c_j` (the squared distances less
    /// `||x||^2`, as the kernel computes them) to `scores[2 * i]` and
    /// `scores[2 * i + 1]`. The labels are the same as `assign`'s.
    pub fn assign_with_scores(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        debug_assert_eq!(scores.len(), 2 * out.len());
        self.assign_rows::<true>(x, out, scores);
    }

    fn assign_rows<const SCORES: bool>(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        debug_assert_eq!(x.len(), out.len() * self.d);
        let rows = self.isa.tile_rows();
        let d = self.d;
        let full = out.len() / rows * rows;
        let (x_full, x_rest) = x.split_at(full * d);
        let (out_full, out_rest) = out.split_at_mut(full);
        let split = if SCORES { 2 * full } else { 0 };
        let (scores_full, scores_rest) = scores.split_at_mut(split);
        self.assign_tiles::<SCORES>(x_full, out_full, scores_full);
        if !out_rest.is_empty() {
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
            self.assign_tiles::<SCORES>(tile, &mut labels[..rows], tile_scores);
            out_rest.copy_from_slice(&labels[skip..skip + rest]);
            if SCORES {
                scores_rest.copy_from_slice(&tile_scores[2 * skip..2 * (skip + rest)]);
            }
        }
    }

    /// Adds each row of `x` to the sum of its cluster: `sums[labels[i]] += x[i]`
    /// (`sums` is `(k, d)`, row-major), with the widest vectors the CPU has.
    pub fn add_rows(&self, x: &[F], labels: &[u32], sums: &mut [F]) {
        #[cfg(target_arch = "x86_64")]
        match self.isa {
            // SAFETY: `Isa::detect` confirmed the features before choosing the ISA.
            Isa::Avx512 => return unsafe { add_rows_avx512(x, labels, sums, self.d) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { add_rows_avx2(x, labels, sums, self.d) },
            Isa::Portable => {}
        }
        add_rows(x, labels, sums, self.d)
    }

    /// Whole tiles only.
    fn assign_tiles<const SCORES: bool>(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        if F::simd_tiles::<SCORES>(self, x, out, scores) {
            return;
        }
        match self.width {
            2 => portable_tiles::<F, 4, 2, SCORES>(self, x, out, scores),
            4 => portable_tiles::<F, 4, 4, SCORES>(self, x, out, scores),
            8 => portable_tiles::<F, 4, 8, SCORES>(self, x, out, scores),
            w => unreachable!("portable block width {w} is not prepared"),
        }
    }
}

#[inline(always)]
fn add_rows<F: Float>(x: &[F], labels: &[u32], sums: &mut [F], d: usize) {
    for (row, &j) in x.chunks_exact(d).zip(labels) {
        let j = j as usize;
        for (s, &v) in sums[j * d..(j + 1) * d].iter_mut().zip(row) {
            *s += v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_rows_avx512<F: Float>(x: &[F], labels: &[u32], sums: &mut [F], d: usize) {
    add_rows(x, labels, sums, d)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_rows_avx2<F: Float>(x: &[F], labels: &[u32], sums: &mut [F], d: usize) {
    add_rows(x, labels, sums, d)
}

/// The SIMD kernels of a float type, where the CPU has them.
pub trait SimdTiles: Sized {
    /// Runs the SIMD tiles for `p`'s instruction set (with runner-up scores
    /// when `SCORES`); `false` when there are none (the portable kernel then
    /// runs).
    fn simd_tiles<const SCORES: bool>(
        p: &PreparedCentroids<Self>,
        x: &[Self],
        out: &mut [u32],
        scores: &mut [Self],
    ) -> bool;
}

macro_rules! simd_tiles {
    ($f:ty, $avx512:ident, $avx2:ident, $avx512_fn:ident, $avx2_fn:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn $avx512_fn<const V: usize, const SCORES: bool>(
            p: &PreparedCentroids<$f>,
            x: &[$f],
            out: &mut [u32],
            scores: &mut [$f],
        ) {
            // SAFETY: this function's own target features are the kernel's.
            unsafe { super::simd::tiles::<super::simd::$avx512, 8, V, SCORES>(p, x, out, scores) }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2_fn<const V: usize, const SCORES: bool>(
            p: &PreparedCentroids<$f>,
            x: &[$f],
            out: &mut [u32],
            scores: &mut [$f],
        ) {
            // SAFETY: as above.
            unsafe { super::simd::tiles::<super::simd::$avx2, 4, V, SCORES>(p, x, out, scores) }
        }

        impl SimdTiles for $f {
            #[allow(unreachable_code, unused_variables)]
            fn simd_tiles<const SCORES: bool>(
                p: &PreparedCentroids<$f>,
                x: &[$f],
                out: &mut [u32],
                scores: &mut [$f],
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    use super::simd::Lanes;
                    // SAFETY: `Isa::detect` chose the instruction set only
                    // after `is_x86_feature_detected!` confirmed it, and the
                    // centroids were laid out for it.
                    unsafe {
                        match (p.isa(), p.width()) {
                            (Isa::Avx512, w) if w == super::simd::$avx512::LANES => {
                                $avx512_fn::<1, SCORES>(p, x, out, scores)
                            }
                            (Isa::Avx512, _) => $avx512_fn::<2, SCORES>(p, x, out, scores),
                            (Isa::Avx2, w) if w == super::simd::$avx2::LANES => {
                                $avx2_fn::<1, SCORES>(p, x, out, scores)
                            }
                            (Isa::Avx2, _) => $avx2_fn::<2, SCORES>(p, x, out, scores),
                            (Isa::Portable, _) => return false,
                        }
                    }
                    return true;
                }
                false
            }
        }
    };
}

simd_tiles!(f64, Avx512F64, Avx2F64, avx512_f64, avx2_f64);
simd_tiles!(f32, Avx512F32, Avx2F32, avx512_f32, avx2_f32);

/// The portable tiles: plain loops the compiler vectorises as the target
/// baseline allows (no FMA).
fn portable_tiles<F: Float, const R: usize, const C: usize, const SCORES: bool>(
    p: &PreparedCentroids<F>,
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
        for (b, (block, norms)) in p
            .blocks
            .chunks_exact(d * C)
            .zip(p.norms.chunks_exact(C))
            .enumerate()
        {
            let mut acc = [[F::zero(); C]; R];
            for (f, column) in block.chunks_exact(C).enumerate() {
                for r in 0..R {
                    let xv = rows[r * d + f];
                    for c in 0..C {
                        acc[r][c] = xv * column[c] + acc[r][c];
                    }
                }
            }
            for r in 0..R {
                for c in 0..C {
                    let score = norms[c] - (acc[r][c] + acc[r][c]);
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
                scores[2 * (t * R + r)] = best[r];
                scores[2 * (t * R + r) + 1] = second[r];
            }
        }
    }
}

/// `||a||^2` in `f64`, summed in eight interleaved partial sums (so the
/// loop vectorises and is not bound by the latency of one chain of
/// additions).
#[inline]
pub fn squared_norm<F: Float>(a: &[F]) -> f64 {
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
#[inline]
pub fn squared_distance<F: Float>(a: &[F], b: &[F]) -> F {
    let mut lanes = [F::zero(); 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: F = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&p, &q)| (p - q) * (p - q))
        .fold(F::zero(), |acc, v| acc + v);
    for (p, q) in a_chunks.zip(b_chunks) {
        for l in 0..8 {
            let diff = p[l] - q[l];
            lanes[l] += diff * diff;
        }
    }
    let quads = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    (quads[0] + quads[2]) + (quads[1] + quads[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn supported() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .skip_while(|isa| *isa != best)
            .collect()
    }

    #[test]
    fn nearest_is_the_closest_centroid_and_ties_go_to_the_lowest_index() {
        let centroids = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]];
        for isa in supported() {
            let prepared = PreparedCentroids::with_isa(centroids.view(), isa);
            let x = [0.1, 0.2, 1.9, 0.2, -1.0, 5.0, 1.0, -3.0, 1.0, 1.0];
            let mut out = [9u32; 5];
            prepared.assign(&x, &mut out);
            // (1, -3) is as far from 0 as from 1; (1, 1) from all three: 0 wins.
            assert_eq!(out, [0, 1, 2, 0, 0], "{isa:?}");
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
            for isa in supported() {
                let prepared = PreparedCentroids::with_isa(c.view(), isa);
                let mut out = vec![0u32; n];
                prepared.assign(x.as_slice().unwrap(), &mut out);
                assert_eq!(out, expected, "{isa:?} n={n} d={d} k={k}");
                let x32 = x.mapv(|v| v as f32);
                let prepared = PreparedCentroids::with_isa(c.mapv(|v| v as f32).view(), isa);
                prepared.assign(x32.as_slice().unwrap(), &mut out);
                let agree = out.iter().zip(&expected).filter(|(a, b)| a == b).count();
                assert!(agree >= n - 1, "f32 {isa:?}: {agree}/{n}");
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
        ] {
            // Small integers: many exact ties between centroids.
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-3..=3) as f64);
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-3..=3) as f64);
            for isa in supported() {
                let prepared = PreparedCentroids::with_isa(c.view(), isa);
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
    fn squared_distance_is_exact_on_small_integers() {
        assert_eq!(squared_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]), 25.0);
    }
}
