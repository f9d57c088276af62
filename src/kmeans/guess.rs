//! The first assignment of a fit with bounds, made cheap where clusters are
//! apart: each row's nearest centroid is guessed from its first few
//! features, and the guess is kept only when Hamerly's test proves it.
//!
//! With no bounds yet, every row would go through the kernel: `k` distances
//! of `d` features. Instead a small kernel of its own scores the rows'
//! first [`FEATURES`] features against the centroids' in `f32` (a tenth of
//! the work at `d = 100`), and the row's exact distance `u` to the guessed
//! centroid `a` is computed. Every other centroid is at least `2 half_gap_a - u` away
//! (triangle inequality), so when that is farther than `u` by more than the
//! kernel's error ([`super::bounds::Geometry::confirm`]), the kernel itself
//! would pick `a`: the row keeps it, with `u` as its upper bound and `2
//! half_gap_a - u` as its lower bound. Rows not proven go through the kernel
//! as before, so labels are the kernel's either way; only the work differs.

use std::marker::PhantomData;

use ndarray::{s, ArrayView2};

use super::float::Float;
use super::kernel::Isa;
#[cfg(target_arch = "x86_64")]
use super::simd::{nearest_in_columns, Avx2F32, Avx512F32};

/// Rows are guessed from this many of their first features.
pub const FEATURES: usize = 8;

/// Guessing pays from this many features (the guess costs about
/// `FEATURES / d` of the kernel, plus one distance a row).
pub const MIN_FEATURES: usize = 32;

/// A chunk stops guessing once it has guessed this many rows and proved
/// fewer than half of them (clusters that overlap: the guesses only cost).
pub const TRIAL_ROWS: usize = 64;

/// Whether guessing is switched off (`KMEANS_GUESS=off`), to measure what
/// it saves.
pub fn switched_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("KMEANS_GUESS").is_ok_and(|v| v == "off"))
}

/// The centroids' first [`FEATURES`] features, in `f32` whatever the
/// data's type (a guess need not be exact), laid out for
/// [`nearest_in_columns`](super::simd::nearest_in_columns): rows in lanes,
/// centroids broadcast one at a time.
#[derive(Debug)]
pub struct Guess<F> {
    /// `-c_jf` for centroid `j`, feature `f < FEATURES`, row-major.
    negated: Vec<f32>,
    /// `||c_j||^2 / 2` over the first features.
    half_norms: Vec<f32>,
    isa: Isa,
    data: PhantomData<F>,
}

/// Rows a guess takes at a time (the rows of a block).
const MAX_ROWS: usize = super::bounds::SUBCHUNK_CAPACITY;

impl<F: Float> Guess<F> {
    /// The guess for `(k, d)` centroids, where it pays (`d` at least
    /// [`MIN_FEATURES`], two centroids or more).
    pub fn new(centroids: ArrayView2<F>) -> Option<Self> {
        Self::with_isa(centroids, Isa::detect())
    }

    /// [`Self::new`] for `isa`'s kernel (which the CPU must support).
    pub fn with_isa(centroids: ArrayView2<F>, isa: Isa) -> Option<Self> {
        let (k, d) = centroids.dim();
        (d >= MIN_FEATURES && k >= 2).then(|| {
            let partial = centroids.slice(s![.., ..FEATURES]);
            let negated = partial.iter().map(|&v| -(v.as_f64() as f32)).collect();
            let half_norms = partial
                .rows()
                .into_iter()
                .map(|c| {
                    c.iter()
                        .fold(0.0f32, |sum, &v| sum + (v.as_f64() as f32).powi(2))
                        / 2.0
                })
                .collect();
            Guess {
                negated,
                half_norms,
                isa,
                data: PhantomData,
            }
        })
    }

    /// Each row's nearest centroid by its first [`FEATURES`] features, in
    /// `f32`, into `guesses` (each below `k`, whatever the values); `x`
    /// holds the rows, `(guesses.len(), d)` row-major (at most a block of
    /// [`super::bounds::SUBCHUNK_CAPACITY`] rows), and `buffer` is reused
    /// for their first features, laid out in columns.
    pub fn guess(&self, x: &[F], guesses: &mut [u32], buffer: &mut Vec<f32>) {
        let rows = guesses.len();
        assert!(rows <= MAX_ROWS, "a guess takes at most a block of rows");
        let d = x.len() / rows.max(1);
        // Columns a block long; lanes past the rows hold what they held.
        buffer.resize(FEATURES * MAX_ROWS, 0.0);
        let columns: &mut [f32; FEATURES * MAX_ROWS] = (&mut buffer[..FEATURES * MAX_ROWS])
            .try_into()
            .expect("sized above");
        lay_out_in_columns(self.isa, x, d, rows, columns);
        let (negated, half_norms) = (&self.negated[..], &self.half_norms[..]);
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` confirmed the instruction set; the
            // columns are `MAX_ROWS` long (a multiple of two vectors of
            // either set) and `negated` holds `k` centroids' features.
            Isa::Avx512 => unsafe { nearest_avx512(buffer, negated, half_norms, guesses) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { nearest_avx2(buffer, negated, half_norms, guesses) },
            _ => nearest_portable(buffer, negated, half_norms, guesses),
        }
    }

    /// The work of guessing `rows` rows, in distances of `d` features.
    pub fn distances(&self, rows: usize, d: usize) -> u64 {
        (rows * self.half_norms.len() * FEATURES).div_ceil(d) as u64
    }
}

/// The first [`FEATURES`] features of the `rows` rows of `x` (`d` each),
/// feature `f` of row `i` into `columns[f * MAX_ROWS + i]`, in `f32`.
fn lay_out_in_columns<F: Float>(
    isa: Isa,
    x: &[F],
    d: usize,
    rows: usize,
    columns: &mut [f32; FEATURES * MAX_ROWS],
) {
    assert!(d >= FEATURES && x.len() >= rows * d && rows <= MAX_ROWS);
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable && rows >= 8 {
        // SAFETY: AVX2 comes with either SIMD instruction set (detected);
        // the rows and columns were checked above.
        return unsafe { columns_avx2(x, d, rows, columns) };
    }
    let _ = isa;
    for (i, row) in x.chunks_exact(d).take(rows).enumerate() {
        for (f, &v) in row[..FEATURES].iter().enumerate() {
            columns[f * MAX_ROWS + i] = v.as_f64() as f32;
        }
    }
}

/// [`lay_out_in_columns`] eight rows at a time (at least eight rows; the
/// last eight overlap the ones before when `rows` is not a multiple): each
/// row's first features in one register, the eight registers transposed.
///
/// # Safety
/// The CPU must have AVX2; `x` holds `rows >= 8` rows of `d >= FEATURES`
/// elements and `rows <= MAX_ROWS`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn columns_avx2<F: Float>(
    x: &[F],
    d: usize,
    rows: usize,
    columns: &mut [f32; FEATURES * MAX_ROWS],
) {
    use std::arch::x86_64::*;
    for first in (0..rows).step_by(8) {
        let start = first.min(rows - 8);
        // SAFETY (all below): rows `start..start + 8` are in `x`, each with
        // `FEATURES` elements; `start + 8 <= MAX_ROWS`, within each column.
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
                _mm256_storeu_ps(columns.as_mut_ptr().add(f * MAX_ROWS + start), low);
                _mm256_storeu_ps(columns.as_mut_ptr().add((f + 4) * MAX_ROWS + start), high);
            }
        }
    }
}

/// A row's first eight elements as eight `f32` lanes, for
/// [`lay_out_in_columns`].
pub trait FirstEight: Sized {
    /// The eight elements from `row`, in `f32`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `row` points to eight readable elements.
    #[cfg(target_arch = "x86_64")]
    unsafe fn first_eight(row: *const Self) -> std::arch::x86_64::__m256;
}

impl FirstEight for f32 {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn first_eight(row: *const f32) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller's contract.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(row) }
    }
}

impl FirstEight for f64 {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn first_eight(row: *const f64) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's contract.
        unsafe {
            let low = _mm256_cvtpd_ps(_mm256_loadu_pd(row));
            let high = _mm256_cvtpd_ps(_mm256_loadu_pd(row.add(4)));
            _mm256_set_m128(high, low)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn nearest_avx512(columns: &[f32], negated: &[f32], half_norms: &[f32], out: &mut [u32]) {
    // SAFETY: the caller's contract; this function's features are the set's.
    unsafe {
        nearest_in_columns::<Avx512F32, FEATURES>(columns, MAX_ROWS, negated, half_norms, out)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest_avx2(columns: &[f32], negated: &[f32], half_norms: &[f32], out: &mut [u32]) {
    // SAFETY: as above.
    unsafe { nearest_in_columns::<Avx2F32, FEATURES>(columns, MAX_ROWS, negated, half_norms, out) }
}

/// [`super::simd::nearest_in_columns`] in plain loops, row by row (lowest index on
/// ties; no fused multiply-add, so near ties may go the other way: a guess
/// need not agree across instruction sets).
fn nearest_portable(columns: &[f32], negated: &[f32], half_norms: &[f32], out: &mut [u32]) {
    for (i, guess) in out.iter_mut().enumerate() {
        let mut best = (f32::INFINITY, 0);
        for (j, (centroid, &half_norm)) in
            negated.chunks_exact(FEATURES).zip(half_norms).enumerate()
        {
            let score = centroid.iter().enumerate().fold(half_norm, |acc, (f, &c)| {
                acc + columns[f * MAX_ROWS + i] * c
            });
            if score < best.0 {
                best = (score, j as u32);
            }
        }
        *guess = best.1;
    }
}

/// How a chunk's guesses have fared (see [`TRIAL_ROWS`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Record {
    /// Rows guessed so far.
    pub guessed: usize,
    /// Of them, the rows whose guess was proved and kept.
    pub proved: usize,
}

impl Record {
    /// Whether the chunk should go on guessing.
    pub fn worth_it(&self) -> bool {
        self.guessed < TRIAL_ROWS || 2 * self.proved >= self.guessed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    /// Every guess is the centroid nearest by the first features, as a
    /// brute-force search in `f64` finds it, wherever the runner-up is not
    /// within `f32` rounding; for any `k` (one centroid past a vector, odd
    /// counts), any number of rows up to a block (partial vectors), `f32`
    /// and `f64` data, on every instruction set. Ties go to the lowest
    /// index and rows with NaN get a guess below `k`.
    #[test]
    fn guesses_are_the_nearest_by_the_first_features() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        for isa in Isa::supported() {
            let mut decided = 0;
            for (k, d, rows) in [
                (2, 32, 64),
                (3, 40, 1),
                (8, 33, 17),
                (17, 100, 64),
                (30, 64, 45),
                (33, 50, 31),
            ] {
                let centroids = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0f64));
                let x: Vec<f64> = (0..rows * d).map(|_| rng.gen_range(-12.0..12.0)).collect();
                let mut ours = vec![u32::MAX; rows];
                let mut buffer = Vec::new();
                let guess = Guess::<f64>::with_isa(centroids.view(), isa).unwrap();
                guess.guess(&x, &mut ours, &mut buffer);
                // The same guesses from the same data in `f32`.
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let mut ours32 = vec![u32::MAX; rows];
                Guess::<f32>::with_isa(centroids.mapv(|v| v as f32).view(), isa)
                    .unwrap()
                    .guess(&x32, &mut ours32, &mut buffer);
                assert_eq!(ours, ours32, "{isa:?} k = {k}");
                for (i, row) in x.chunks_exact(d).enumerate() {
                    let mut by_distance: Vec<(f64, usize)> = centroids
                        .rows()
                        .into_iter()
                        .enumerate()
                        .map(|(j, c)| {
                            let distance = (0..FEATURES).map(|f| (row[f] - c[f]).powi(2)).sum();
                            (distance, j)
                        })
                        .collect();
                    by_distance.sort_by(|p, q| p.0.total_cmp(&q.0));
                    let (best, runner_up) = (by_distance[0], by_distance[1]);
                    if runner_up.0 - best.0 > 1e-3 * (1.0 + best.0) {
                        assert_eq!(ours[i], best.1 as u32, "{isa:?} k = {k}, row {i}");
                        decided += 1;
                    }
                }
            }
            assert!(decided > 100, "{isa:?}: {decided} rows decided");
            // Ties to the lowest index: two equal centroids, and rows at the
            // same distance from both.
            let k = 20;
            let mut centroids = Array2::from_shape_fn((k, 32), |_| rng.gen_range(-10.0..10.0f64));
            let copy = centroids.row(3).to_owned();
            centroids.row_mut(11).assign(&copy);
            let mut x: Vec<f64> = (0..40).flat_map(|_| centroids.row(11).to_vec()).collect();
            // A row of NaN, another of infinities.
            x[32..64].fill(f64::NAN);
            x[64..96].fill(f64::INFINITY);
            let mut ours = vec![u32::MAX; 40];
            Guess::<f64>::with_isa(centroids.view(), isa)
                .unwrap()
                .guess(&x, &mut ours, &mut Vec::new());
            assert!(ours.iter().all(|&g| g < k as u32), "{isa:?}: {ours:?}");
            assert!(
                ours.iter()
                    .enumerate()
                    .all(|(i, &g)| i == 1 || i == 2 || g == 3),
                "{isa:?}: {ours:?}"
            );
        }
    }
}
