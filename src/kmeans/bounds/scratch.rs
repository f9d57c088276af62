//! What the calls of `Geometry::assign` on one chunk share.

use super::super::chunks::BLOCK_ROWS;
use super::super::float::Float;
use super::super::guess::{Guess, Trial};
use super::super::simd::Simd;

/// What calls of `Geometry::assign` on one chunk share: a buffer for the
/// rows gathered for the kernel and one for their first features (for the
/// guess), the guesses, how they fared, and the squared distances of the
/// rows the last call proved to their centroids.
#[derive(Debug)]
pub struct Scratch<F> {
    pub(super) rows: Vec<F>,
    pub(super) first_features: Vec<f32>,
    pub(super) guesses: [u32; BLOCK_ROWS],
    pub(super) trial: Trial,
    pub(super) tightening: Tightening,
    /// The rows of the last call whose distance is in `distances`.
    pub(super) known: u64,
    pub(super) distances: [F; BLOCK_ROWS],
}

impl<F: Float> Default for Scratch<F> {
    fn default() -> Self {
        Scratch {
            rows: Vec::new(),
            first_features: Vec::new(),
            guesses: [0; BLOCK_ROWS],
            trial: Trial::default(),
            tightening: Tightening::default(),
            known: 0,
            distances: [F::zero(); BLOCK_ROWS],
        }
    }
}

impl<F: Copy> Scratch<F> {
    /// How the chunk's guesses have fared.
    pub fn trial(&mut self) -> &mut Trial {
        &mut self.trial
    }

    /// The guesses for the `rows` rows of `x` (at most
    /// [`BLOCK_ROWS`]), as [`Guess::guess`] makes them.
    #[inline]
    pub fn guesses<S: Simd>(&mut self, simd: S, guess: &Guess<F>, x: &[F], rows: usize) -> &[u32]
    where
        F: Float,
    {
        guess.guess(simd, x, &mut self.guesses[..rows], &mut self.first_features);
        &self.guesses[..rows]
    }

    /// Row `i`'s squared distance to its centroid from the last call of
    /// `Geometry::assign`, when it computed it (as
    /// `Kernels::squared_distance` does, the same bits).
    pub fn known_distance(&self, i: usize) -> Option<F> {
        (self.known >> i & 1 == 1).then(|| self.distances[i])
    }
}

/// How the chunk's tightened bounds have fared: how many rows had their
/// upper bound tightened, and how many of them it settled.
#[derive(Debug, Default)]
pub struct Tightening {
    tightened: usize,
    settled: usize,
}

impl Tightening {
    /// Whether tightening has settled at least one row in `one_in` of
    /// those it tightened (or too few were tried to tell). What pays
    /// depends on what the rows left unsettled cost: see the callers.
    pub fn pays(&self, one_in: usize) -> bool {
        self.tightened < BLOCK_ROWS || self.settled * one_in >= self.tightened
    }

    /// Records `tightened` rows tightened, `settled` of them settled.
    pub fn record(&mut self, tightened: usize, settled: usize) {
        self.tightened += tightened;
        self.settled += settled;
    }
}
