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
        for (i, row) in x.chunks_exact(d).take(MAX_ROWS).enumerate() {
            let first: &[F; FEATURES] = row[..FEATURES].try_into().expect("d >= FEATURES");
            for (f, &v) in first.iter().enumerate() {
                columns[f * MAX_ROWS + i] = v.as_f64() as f32;
            }
        }
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
