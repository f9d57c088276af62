//! The first assignment of a fit with bounds, made cheap where clusters are
//! apart: each row's nearest centroid is guessed from its first few
//! features, and the guess is kept only when Hamerly's test proves it.
//!
//! With no bounds yet, every row would go through the kernel: `k` distances
//! of `d` features. Instead a small kernel of its own scores the rows'
//! first [`FIRST_FEATURES`] features against the centroids' in `f32` (a tenth of
//! the work at `d = 100`), and the row's exact distance `u` to the guessed
//! centroid `a` is computed. Every other centroid is at least `2 half_gap_a - u` away
//! (triangle inequality), so when that is farther than `u` by more than the
//! kernel's error (the bounds' `prove`), the kernel itself
//! would pick `a`: the row keeps it, with `u` as its upper bound and `2
//! half_gap_a - u` as its lower bound. Rows not proven go through the kernel
//! as before, so labels are the kernel's either way; only the work differs.

use std::marker::PhantomData;

use ndarray::{s, ArrayView2};

use super::chunks::BLOCK_ROWS;
use super::float::Float;
use super::simd::{Kernels, Simd, FIRST_FEATURES};

/// Guessing pays from this many features (the guess costs about
/// `FIRST_FEATURES / d` of the kernel, plus one distance a row).
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

/// The centroids' first [`FIRST_FEATURES`] features, in `f32` whatever the
/// data's type (a guess need not be exact), laid out for
/// [`Simd::nearest_in_columns`]: rows in lanes, centroids broadcast one at
/// a time.
#[derive(Debug)]
pub struct Guess<F> {
    /// `-c_jf` for centroid `j`, feature `f < FIRST_FEATURES`, row-major.
    negated: Vec<f32>,
    /// `||c_j||^2 / 2` over the first features.
    half_norms: Vec<f32>,
    data: PhantomData<F>,
}

impl<F: Float> Guess<F> {
    /// The guess for `(k, d)` centroids, where it pays (`d` at least
    /// [`MIN_FEATURES`], two centroids or more).
    pub fn new(centroids: ArrayView2<F>) -> Option<Self> {
        let (k, d) = centroids.dim();
        (d >= MIN_FEATURES && k >= 2).then(|| {
            let partial = centroids.slice(s![.., ..FIRST_FEATURES]);
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
                data: PhantomData,
            }
        })
    }

    /// Each row's nearest centroid by its first [`FIRST_FEATURES`]
    /// features, in `f32`, into `guesses` (each below `k`, whatever the
    /// values); `x` holds the rows, `(guesses.len(), d)` row-major (at most
    /// a block of [`BLOCK_ROWS`] rows), and `buffer` is reused for their
    /// first features, laid out in columns.
    #[inline]
    pub fn guess<S: Simd>(&self, simd: S, x: &[F], guesses: &mut [u32], buffer: &mut Vec<f32>) {
        let rows = guesses.len();
        assert!(rows <= BLOCK_ROWS, "a guess takes at most a block of rows");
        let d = x.len() / rows.max(1);
        // Columns a block long; lanes past the rows hold what they held.
        buffer.resize(FIRST_FEATURES * BLOCK_ROWS, 0.0);
        F::kernels(simd).first_features_in_columns::<BLOCK_ROWS>(x, d, rows, buffer);
        simd.nearest_in_columns::<FIRST_FEATURES, BLOCK_ROWS>(
            buffer,
            &self.negated,
            &self.half_norms,
            guesses,
        );
    }

    /// The work of guessing `rows` rows, in distances of `d` features.
    pub fn distances(&self, rows: usize, d: usize) -> u64 {
        (rows * self.half_norms.len() * FIRST_FEATURES).div_ceil(d) as u64
    }
}

/// How a chunk's guesses have fared (see [`TRIAL_ROWS`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Trial {
    /// Rows guessed so far.
    pub guessed: usize,
    /// Of them, the rows whose guess was proved and kept.
    pub proved: usize,
}

impl Trial {
    /// Whether the chunk should go on guessing.
    pub fn worth_it(&self) -> bool {
        self.guessed < TRIAL_ROWS || 2 * self.proved >= self.guessed
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::{Isa, WithSimd};
    use super::*;
    use ndarray::Array2;

    /// [`Guess::guess`] on one instruction set.
    struct Guessing<'a, F> {
        guess: &'a Guess<F>,
        x: &'a [F],
        guesses: &'a mut [u32],
        buffer: &'a mut Vec<f32>,
    }

    impl<F: Float> WithSimd for Guessing<'_, F> {
        type Output = ();

        fn run<S: Simd>(self, simd: S) {
            self.guess.guess(simd, self.x, self.guesses, self.buffer)
        }
    }

    fn guess_on<F: Float>(isa: Isa, guess: &Guess<F>, x: &[F], guesses: &mut [u32]) {
        let mut buffer = Vec::new();
        isa.dispatch(Guessing {
            guess,
            x,
            guesses,
            buffer: &mut buffer,
        })
    }
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
                let guess = Guess::<f64>::new(centroids.view()).unwrap();
                guess_on(isa, &guess, &x, &mut ours);
                // The same guesses from the same data in `f32`.
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let mut ours32 = vec![u32::MAX; rows];
                let guess32 = Guess::<f32>::new(centroids.mapv(|v| v as f32).view()).unwrap();
                guess_on(isa, &guess32, &x32, &mut ours32);
                assert_eq!(ours, ours32, "{isa:?} k = {k}");
                for (i, row) in x.chunks_exact(d).enumerate() {
                    let mut by_distance: Vec<(f64, usize)> = centroids
                        .rows()
                        .into_iter()
                        .enumerate()
                        .map(|(j, c)| {
                            let distance =
                                (0..FIRST_FEATURES).map(|f| (row[f] - c[f]).powi(2)).sum();
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
            let guess = Guess::<f64>::new(centroids.view()).unwrap();
            guess_on(isa, &guess, &x, &mut ours);
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
