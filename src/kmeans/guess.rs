//! The first assignment of a fit with bounds, made cheap where clusters are
//! apart: each row's nearest centroid is guessed from its first few
//! features, and the guess is kept only when Hamerly's test proves it.
//!
//! With no bounds yet, every row would go through the kernel: `k` distances
//! of `d` features. Instead the kernel scores the rows' first
//! [`FEATURES`] features against the centroids' (a tenth of the work at
//! `d = 100`), and the row's exact distance `u` to the guessed centroid `a`
//! is computed. Every other centroid is at least `2 half_gap_a - u` away
//! (triangle inequality), so when that is farther than `u` by more than the
//! kernel's error ([`super::bounds::Geometry::confirm`]), the kernel itself
//! would pick `a`: the row keeps it, with `u` as its upper bound and `2
//! half_gap_a - u` as its lower bound. Rows not proven go through the kernel
//! as before, so labels are the kernel's either way; only the work differs.

use std::marker::PhantomData;

use ndarray::{s, ArrayView2};

use super::float::Float;
use super::kernel::PreparedCentroids;

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
/// data's type (a guess need not be exact), prepared for the kernel.
#[derive(Debug)]
pub struct Guess<F> {
    partial: PreparedCentroids<f32>,
    k: usize,
    data: PhantomData<F>,
}

impl<F: Float> Guess<F> {
    /// The guess for `(k, d)` centroids, where it pays (`d` at least
    /// [`MIN_FEATURES`], two centroids or more).
    pub fn new(centroids: ArrayView2<F>) -> Option<Self> {
        let (k, d) = centroids.dim();
        (d >= MIN_FEATURES && k >= 2).then(|| {
            let partial = centroids
                .slice(s![.., ..FEATURES])
                .mapv(|v| v.as_f64() as f32);
            Guess {
                partial: PreparedCentroids::new(partial.view()),
                k,
                data: PhantomData,
            }
        })
    }

    /// Each row's nearest centroid by its first [`FEATURES`] features, in
    /// `f32`, into `guesses` (each below `k`, whatever the magnitudes);
    /// `x` holds the rows, `(guesses.len(), d)` row-major, and `buffer` is
    /// reused for their first features.
    pub fn guess(&self, x: &[F], guesses: &mut [u32], buffer: &mut Vec<f32>) {
        let d = x.len() / guesses.len().max(1);
        buffer.clear();
        for row in x.chunks_exact(d) {
            buffer.extend(row[..FEATURES].iter().map(|v| v.as_f64() as f32));
        }
        self.partial.assign(buffer, guesses);
        let last = self.k as u32 - 1;
        for guess in guesses.iter_mut() {
            *guess = (*guess).min(last);
        }
    }

    /// The work of guessing `rows` rows, in distances of `d` features.
    pub fn distances(&self, rows: usize, d: usize) -> u64 {
        (rows * self.k * FEATURES).div_ceil(d) as u64
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
