//! What one step needs to carry, test, tighten and set Hamerly's bounds
//! (see the module above), row by row; `simd::carry_over` repeats the
//! carrying and tightening in vectors, to the same bits.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::super::chunks::{task_min_len, unsettled, BLOCK_ROWS};
use super::super::float::Float;
use super::super::guess::Guess;
use super::super::kernel::squared_norms;
use super::super::screen::ScreenedCentroids;
use super::super::simd::{
    prefetch_into_l2, CarryOver, Isa, Kernels, NextRows, Simd, WithSimd, F32_ROUNDING,
    F32_SPACING_MIN, F32_TINY,
};
use super::scratch::{Scratch, Tightening};
use super::ChunkBounds;

/// Rows of at most this many features are tightened eight at a time by
/// [`CarryOver::rows_avx512`] with AVX-512 (gathered feature by feature),
/// four at a time by [`CarryOver::tighten_avx2`] with AVX2; longer rows,
/// and every row on other instruction sets, one by one.
pub const TIGHTEN_IN_LANES_MAX_D: usize = 8;

/// How many rows ahead [`Geometry::settle_chunk`] asks for the rows it
/// tightens (measurements in `docs/tuning.md`).
pub const TIGHTEN_AHEAD: usize = 2;

/// A block the carried bounds leave mostly unsettled goes to the kernel
/// whole, in place, once tightening has settled fewer than one row in this
/// many of those it tightened in the chunk: tightening it would still
/// leave the block to the kernel.
const BLOCK_TIGHTEN_ONE_IN: usize = 4;

/// [`Geometry::settle_chunk`] stops tightening once it has settled fewer
/// than one row in this many in the chunk. A row tightening settles spares
/// the kernel's scoring of it; one tightened in vain costs an exact
/// distance and a read of the row besides. Where the balance lies depends
/// on the kernel's cost a row and moved sharply between neighbouring
/// scenarios, so the chunk stops only where tightening settles almost
/// nothing, as in the step after bounds are set on overlapping blobs
/// (`docs/tuning.md`).
const CHUNK_TIGHTEN_ONE_IN: usize = 16;

/// How far each centroid moved since the bounds were set, and what
/// carrying the stored bounds over that drift needs, all in `f32` (the
/// bounds' own type) rounded outwards: see [`Geometry::carried`]. The
/// per-centroid terms are zero past `k`, up to 32 (two registers).
#[derive(Debug, Clone)]
struct Motion {
    /// `||c_j - c_j^before||`, rounded up.
    drift: Vec<f32>,
    /// `max_{j != a} drift_j` for each `a`, rounded up.
    others: Vec<f32>,
    /// `2 half_gap_a`, rounded down.
    gap2: Vec<f32>,
    /// `1 + max(outward, 8 u)` rounded up and `1 - max(outward, 8 u)`
    /// rounded down (`u = 2^-24`, `f32`'s unit roundoff).
    widen: f32,
    narrow: f32,
    /// `2 error (1 + 4 u)` rounded up, at least the smallest normal `f32`.
    error2: f32,
}

/// What one step needs to update and test the bounds.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// `None` before the first assignment: every row goes to the kernel.
    motion: Option<Motion>,
    /// `min_{j != a} ||c_a - c_j|| / 2`, rounded down.
    half_gap: Vec<f64>,
    /// The kernel's error bound in squared distance, for any row.
    error: f64,
    /// The same for a row of norm `r`: `error_scale * (r + centroid_norm_max)^2`.
    error_scale: f64,
    centroid_norm_max: f64,
    /// Relative widening that covers the rounding of one computed distance.
    outward: f64,
    /// With motion, the per-centroid tables of [`CarryOver`]'s tightening
    /// (see [`CarryOver::build_tables`]): the half gap, then, for rows of at
    /// most [`TIGHTEN_IN_LANES_MAX_D`] features, each feature of the
    /// centroids.
    tables: Vec<f64>,
}

impl Geometry {
    /// Whether the bounds can settle rows in this step (there was a last
    /// step): `false` sends every row to the kernel.
    pub fn settles_rows(&self) -> bool {
        self.motion.is_some()
    }

    pub fn new<F: Float>(
        centroids: ArrayView2<F>,
        before: Option<&Array2<F>>,
        row_norm_max: f64,
    ) -> Self {
        let (k, d) = centroids.dim();
        let eps = F::epsilon().as_f64();
        let outward = (2 * d + 16) as f64 * eps;
        let up = |v: f64| v * (1.0 + outward);
        let standard = centroids.as_standard_layout();
        let flat = standard.as_slice().expect("standard layout is contiguous");
        let before = before.map(|before| before.as_standard_layout());
        let before = before
            .as_ref()
            .map(|b| b.as_slice().expect("standard layout is contiguous"));
        let isa = Isa::detect();
        let (norms, moved) = isa.dispatch(CentroidDistances {
            centroids: flat,
            before,
            k,
            d,
        });
        // Square roots and rounded products keep the order of what they
        // are applied to: the nearest's root is the least root, to the bit.
        let narrow = 1.0 - outward;
        let half_gap: Vec<f64> = nearest_squared_gaps(isa, flat, k, d)
            .into_iter()
            .map(|gap| gap.sqrt() * narrow / 2.0)
            .collect();

        let centroid_norm_max = up(norms.iter().copied().fold(0.0, f64::max));
        let error_scale = up((2 * d + 8) as f64 * eps);
        let error = error_scale * up((row_norm_max + centroid_norm_max).powi(2));

        let motion = moved.map(|moved| {
            let drift: Vec<f32> = moved.iter().map(|&m| round_up(up(m))).collect();
            // The largest drift of the others: the largest, or for the
            // centroid holding it, the second largest.
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_unstable_by(|&a, &b| drift[b].total_cmp(&drift[a]));
            let largest = order.first().map_or(0.0, |&j| drift[j]);
            let second = order.get(1).map_or(0.0, |&j| drift[j]);
            let others: Vec<f32> = (0..k)
                .map(|j| if j == order[0] { second } else { largest })
                .collect();
            let gap2: Vec<f32> = half_gap.iter().map(|&g| round_down(2.0 * g)).collect();
            let padded = |mut table: Vec<f32>| {
                table.resize(k.max(32), 0.0);
                table
            };
            let slack = outward.max(8.0 * F32_UNIT_ROUNDOFF);
            Motion {
                drift: padded(drift),
                others: padded(others),
                gap2: padded(gap2),
                widen: round_up(1.0 + slack),
                narrow: round_down(1.0 - slack),
                error2: round_up(2.0 * error * (1.0 + 4.0 * F32_UNIT_ROUNDOFF))
                    .max(f32::MIN_POSITIVE),
            }
        });
        let tables = if motion.is_some() {
            let in_lanes = d <= TIGHTEN_IN_LANES_MAX_D && Isa::detect() == Isa::Avx512;
            let features = if in_lanes { d } else { 0 };
            let columns: Vec<f64> = flat[..k * features].iter().map(|v| v.as_f64()).collect();
            CarryOver::build_tables(&half_gap, &columns, features)
        } else {
            Vec::new()
        };
        Geometry {
            motion,
            half_gap,
            error,
            error_scale,
            centroid_norm_max,
            outward,
            tables,
        }
    }

    /// A row's stored bounds (`upper` to its centroid `a`, `lower` to the
    /// others) carried over the centroids' drift, and whether they show
    /// that the kernel certainly keeps `a` (as [`Self::certain`] does, with
    /// the half gap).
    ///
    /// In `f32` arithmetic, so that [`CarryOver`] takes sixteen rows to a
    /// register, each operation rounded to nearest: every result is
    /// widened (or narrowed) by `motion.widen` (`narrow`), at least `8 u`,
    /// which covers the relative rounding of up to three operations (`u`
    /// each) in the normal range, and moved by [`F32_TINY`] (`2^-149`) away
    /// from the truth, which covers the absolute rounding of subnormal
    /// results (at most `2^-150` each). The last test's product is trusted
    /// only above `motion.error2`, itself at least the smallest normal
    /// number, so that its relative rounding (three operations) is covered
    /// by `(1 + 4 u)`. Both maxima are written as the vector instruction
    /// computes them (the second operand unless the first is greater).
    fn carried(&self, motion: &Motion, a: usize, upper: f32, lower: f32) -> (f32, f32, bool) {
        let max = |p: f32, q: f32| if p > q { p } else { q };
        let up = (upper + motion.drift[a]) * motion.widen + F32_TINY;
        let low = max((lower - motion.others[a]) * motion.narrow - F32_TINY, 0.0);
        let gap = max(low, motion.gap2[a] - up) * motion.narrow - F32_TINY;
        let sure = gap > up && (gap - up) * (gap + up) > motion.error2;
        (up, low, sure)
    }

    /// The exact distance from `row` to `centroid`, rounded up: a tighter
    /// upper bound.
    fn tightened<S: Simd, F: Float>(&self, simd: S, row: &[F], centroid: &[F]) -> f64 {
        self.distance_above(exact_squared_distance(simd, row, centroid))
    }

    /// The distance whose computed square is `squared`, rounded up (its
    /// rounding and the square root's covered by `outward`).
    fn distance_above(&self, squared: f64) -> f64 {
        (squared * (1.0 + self.outward)).sqrt() * (1.0 + self.outward)
    }

    /// Every row's bounds carried over the drift and tested
    /// ([`Self::carried`]) and stored, then the upper bound of each row
    /// that is not settled tightened with its exact distance and tested
    /// again ([`Self::certain`]). Returns the rows settled, bit `i` for row
    /// `i` (at most 64 rows), and how many exact distances were computed.
    /// In vectors where the instruction set has them ([`CarryOver`]; with
    /// AVX-512 the tightening too, eight rows at a time, for rows of at most
    /// [`TIGHTEN_IN_LANES_MAX_D`] features), else row by row; the same
    /// arithmetic either way.
    ///
    /// `x` holds the rows (`(labels.len(), d)` row-major) and `centroids`
    /// the centroids (`(k, d)` row-major). With `tightening` (how tightening
    /// has fared in the chunk so far, updated here), once it has stopped
    /// paying, a block the carried bounds leave mostly unsettled is not
    /// tightened: the kernel will take it whole anyway.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn carry_over<S: Simd, F: Float>(
        &self,
        simd: S,
        motion: &Motion,
        x: &[F],
        centroids: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
        tightening: Option<&mut Tightening>,
    ) -> (u64, usize) {
        let n = labels.len();
        assert!(n <= 64 && upper.len() == n && lower.len() == n);
        assert_eq!(x.len() * self.half_gap.len(), centroids.len() * n);
        let terms = self.carry_over_terms(motion);
        match self.carry_block(simd, motion, &terms, x, labels, upper, lower) {
            (sure, Some(exact)) => (sure, exact),
            (sure, None)
                if (n - sure.count_ones() as usize) * 4 >= n * 3
                    && tightening
                        .as_ref()
                        .is_some_and(|t| !t.pays(BLOCK_TIGHTEN_ONE_IN)) =>
            {
                (sure, 0)
            }
            (carried, None) => {
                let (sure, exact) =
                    self.tighten_rows(simd, carried, x, centroids, labels, upper, lower);
                if let Some(tightening) = tightening {
                    let settled = (sure.count_ones() - carried.count_ones()) as usize;
                    tightening.record(exact, settled);
                }
                (sure, exact)
            }
        }
    }

    /// The carrying over of [`Self::carry_over`] for one block, in vectors
    /// where the instruction set has them (with AVX-512, short rows are
    /// tightened in the same call): the rows settled, and how many exact
    /// distances were computed when the rows left were tightened too
    /// (`None`: they are still to be).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn carry_block<S: Simd, F: Float>(
        &self,
        simd: S,
        motion: &Motion,
        terms: &CarryOver<'_>,
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> (u64, Option<usize>) {
        match F::kernels(simd).carry_over(terms, x, labels, upper, lower) {
            Some((sure, exact)) if terms.features > 0 => (sure, Some(exact)),
            Some((sure, _)) => (sure, None),
            None => (self.carry_over_rows(motion, labels, upper, lower), None),
        }
    }

    /// The carrying over of [`Self::carry_over`], row by row: the rows it
    /// settles.
    fn carry_over_rows(
        &self,
        motion: &Motion,
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> u64 {
        let mut sure = 0u64;
        for (i, ((&label, upper), lower)) in labels
            .iter()
            .zip(upper.iter_mut())
            .zip(lower.iter_mut())
            .enumerate()
        {
            let (up, low, settled) = self.carried(motion, label as usize, *upper, *lower);
            sure |= u64::from(settled) << i;
            (*upper, *lower) = (up, low);
        }
        sure
    }

    /// The tightening of [`Self::carry_over`], row by row, for the rows not
    /// in `sure`: the rows then settled, and how many were tightened.
    #[allow(clippy::too_many_arguments)]
    fn tighten_rows<S: Simd, F: Float>(
        &self,
        simd: S,
        mut sure: u64,
        x: &[F],
        centroids: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &[f32],
    ) -> (u64, usize) {
        let d = centroids.len() / self.half_gap.len();
        let carried = sure;
        for i in unsettled(carried, labels.len()) {
            let row = &x[i * d..(i + 1) * d];
            let settled =
                self.tighten_row(simd, row, centroids, labels[i], lower[i], &mut upper[i]);
            sure |= u64::from(settled) << i;
        }
        let exact = labels.len() - carried.count_ones() as usize;
        (sure, exact)
    }

    /// Tightens the upper bound of one row labelled `a` with its exact
    /// distance and tests it again ([`Self::certain`]): whether it settles.
    /// Without a branch on the outcome (it is unpredictable): the tightened
    /// bound is stored either way, kept only where it settles.
    #[inline(always)]
    fn tighten_row<S: Simd, F: Float>(
        &self,
        simd: S,
        row: &[F],
        centroids: &[F],
        a: u32,
        lower: f32,
        upper: &mut f32,
    ) -> bool {
        let (a, d) = (a as usize, row.len());
        let up = self.tightened(simd, row, &centroids[a * d..(a + 1) * d]);
        let settled = self.certain(a, up, f64::from(lower));
        let tight = round_up(up * (1.0 + self.outward));
        *upper = if settled { tight } else { *upper };
        settled
    }

    /// [`Self::carry_over`]'s terms, for [`CarryOver`]'s vector code.
    fn carry_over_terms<'a>(&'a self, motion: &'a Motion) -> CarryOver<'a> {
        let k = self.half_gap.len();
        CarryOver {
            drift: &motion.drift,
            others: &motion.others,
            gap2: &motion.gap2,
            widen32: motion.widen,
            narrow32: motion.narrow,
            error32: motion.error2,
            tables: &self.tables,
            k,
            features: (self.tables.len() / k.max(32)).saturating_sub(1),
            widen: 1.0 + self.outward,
            narrow: 1.0 - self.outward,
            error2: 2.0 * self.error,
        }
    }

    /// Whether the kernel certainly picks `a` for a row whose distance to
    /// `c_a` is at most `upper` and to every other centroid at least `lower`.
    fn certain(&self, a: usize, upper: f64, lower: f64) -> bool {
        self.certain_within(a, upper, lower, self.error)
    }

    /// [`Self::certain`] for a row whose kernel scores are within `error`
    /// (in squared distance) of the truth.
    fn certain_within(&self, a: usize, upper: f64, lower: f64, error: f64) -> bool {
        let lower = lower.max(2.0 * self.half_gap[a] - upper) * (1.0 - self.outward);
        // Written so that NaN (never expected) means "not certain".
        lower > upper && (lower - upper) * (lower + upper) > 2.0 * error
    }

    /// Carries the bounds of the rows of `x` (`(labels.len(), d)`,
    /// row-major, at most [`BLOCK_ROWS`] rows, labelled `labels` in
    /// the last step) over the centroids' drift and tightens those that
    /// need it ([`Self::carry_over`]): the rows whose label certainly holds
    /// (bit `i` for row `i`) and how many exact distances were computed.
    /// `None` before the first assignment (no bounds yet: every row needs
    /// the kernel). `centroids` is `(k, d)` row-major; `tightening` as for
    /// [`Self::carry_over`].
    #[inline(always)] // into the step's per-instruction-set functions
    #[allow(clippy::too_many_arguments)]
    pub fn settle<S: Simd, F: Float>(
        &self,
        simd: S,
        centroids: &[F],
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
        tightening: Option<&mut Tightening>,
    ) -> Option<(u64, usize)> {
        let motion = self.motion.as_ref()?;
        Some(self.carry_over(simd, motion, x, centroids, labels, upper, lower, tightening))
    }

    /// [`Self::settle`] for a whole chunk (`x` holds its rows, `(labels.len(),
    /// d)` row-major): every block's bounds carried first, then the rows they
    /// leave tightened in one run (until tightening stops paying in the
    /// chunk, [`CHUNK_TIGHTEN_ONE_IN`]: the rows left go to the kernel as
    /// they are), each asked for into the second-level
    /// cache [`TIGHTEN_AHEAD`] rows before it is read (rows of at most
    /// [`TIGHTEN_IN_LANES_MAX_D`] features four at a time where the
    /// instruction set has a vector version, `Kernels::tighten`, a group
    /// ahead). Those rows are scattered through memory, where the hardware
    /// prefetchers do not follow, and tightening one costs far less than
    /// waiting for it. Appends the rows
    /// left for the kernel (indices into the chunk, in order) to `pending`
    /// and returns how many exact distances were computed; `None` before the
    /// first assignment (every row needs the kernel).
    #[inline(always)] // into the step's per-instruction-set functions
    #[allow(clippy::too_many_arguments)]
    pub fn settle_chunk<S: Simd, F: Float>(
        &self,
        simd: S,
        centroids: &[F],
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
        pending: &mut Vec<u32>,
    ) -> Option<usize> {
        let motion = self.motion.as_ref()?;
        let terms = self.carry_over_terms(motion);
        let d = x.len() / labels.len().max(1);
        let start = pending.len();
        let (mut exact, mut tightened_in_lanes) = (0, false);
        let blocks = x.chunks(BLOCK_ROWS * d).zip(labels.chunks(BLOCK_ROWS)).zip(
            upper
                .chunks_mut(BLOCK_ROWS)
                .zip(lower.chunks_mut(BLOCK_ROWS)),
        );
        for (s, ((x, labels), (upper, lower))) in blocks.enumerate() {
            let (sure, tightened) = self.carry_block(simd, motion, &terms, x, labels, upper, lower);
            if let Some(tightened) = tightened {
                exact += tightened;
                tightened_in_lanes = true;
            }
            let first = s * BLOCK_ROWS;
            pending.extend(unsettled(sure, labels.len()).map(|i| (first + i) as u32));
        }
        if tightened_in_lanes {
            return Some(exact);
        }
        if d <= TIGHTEN_IN_LANES_MAX_D {
            let tightened = F::kernels(simd).tighten(
                &terms,
                x,
                d,
                centroids,
                labels,
                &mut pending[start..],
                upper,
                lower,
            );
            if let Some(kept) = tightened {
                exact += pending.len() - start;
                pending.truncate(start + kept);
                return Some(exact);
            }
        }
        let row = |i: u32| &x[i as usize * d..(i as usize + 1) * d];
        let ask = |i: u32| prefetch_into_l2(row(i).as_ptr(), std::mem::size_of_val(row(i)));
        pending[start..]
            .iter()
            .take(TIGHTEN_AHEAD)
            .for_each(|&i| ask(i));
        let mut tightening = Tightening::default();
        let mut kept = start;
        for p in start..pending.len() {
            if !tightening.pays(CHUNK_TIGHTEN_ONE_IN) {
                let left = pending.len() - p;
                pending.copy_within(p.., kept);
                kept += left;
                break;
            }
            if let Some(&ahead) = pending.get(p + TIGHTEN_AHEAD) {
                ask(ahead);
            }
            let i = pending[p];
            let (at, a) = (i as usize, labels[i as usize]);
            let settled = self.tighten_row(simd, row(i), centroids, a, lower[at], &mut upper[at]);
            tightening.record(1, usize::from(settled));
            exact += 1;
            pending[kept] = i;
            kept += usize::from(!settled);
        }
        pending.truncate(kept);
        Some(exact)
    }

    /// Runs the rows of `rows` (row-major, at most [`BLOCK_ROWS`])
    /// through the kernel, which asks for `next` meanwhile (see
    /// [`NextRows`]): their labels into `labels`, fresh bounds into `upper`
    /// and `lower`, one per row. Their squared norms come from `norms`
    /// where it holds them all, else from the screen or a pass of their
    /// own, and are kept there (unless it is empty).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn rescore<S: Simd, F: Float>(
        &self,
        simd: S,
        prepared: &ScreenedCentroids<F>,
        rows: &[F],
        next: NextRows<'_>,
        labels: &mut [u32],
        (upper, lower, norms): ChunkBounds<'_>,
    ) {
        let n = labels.len();
        let mut scores = [F::zero(); 2 * BLOCK_ROWS];
        let scores = &mut scores[..2 * n];
        let (mut up, mut low) = ([0.0; BLOCK_ROWS], [0.0; BLOCK_ROWS]);
        let (up, low) = (&mut up[..n], &mut low[..n]);
        // The rows' squared norms into `up`: kept from an earlier step,
        // or from the screen where it ran (the same bits either way).
        let kept = norms.len() == n && !norms.iter().any(|v| v.is_nan());
        if kept {
            up.copy_from_slice(norms);
        }
        let screened = prepared.assign_with_scores_in(simd, rows, labels, scores, up, next);
        if !kept && !screened {
            squared_norms(simd, rows, up);
        }
        if norms.len() == n && !kept {
            norms.copy_from_slice(up);
        }
        self.fresh_bounds(scores, up, low);
        for i in 0..n {
            upper[i] = round_up(up[i]);
            lower[i] = round_down(low[i]);
        }
    }

    /// Labels the rows of `x` (`(fresh.len(), d)`, row-major) into `fresh`,
    /// from their labels of the last step (`labels`) and their bounds,
    /// updating the bounds; only the rows whose label could change are run
    /// through the kernel. Before the first assignment, `guess` (when
    /// given, and while the chunk's guesses pay, see `guess`)
    /// labels the rows it can prove instead. Returns how many rows were
    /// run through the kernel (each scored against every centroid), how
    /// many single exact distances were computed, and how many rows were
    /// guessed. When most rows go to the kernel, it takes the whole block
    /// and asks for `next` meanwhile (see [`NextRows`]); once tightening
    /// has stopped paying in the chunk (`Tightening`), a block the carried
    /// bounds leave mostly unsettled goes there untightened.
    ///
    /// `centroids` is `(k, d)` row-major, the same centroids as `prepared`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)] // into the step's per-instruction-set functions
    pub fn assign<S: Simd, F: Float>(
        &self,
        simd: S,
        prepared: &ScreenedCentroids<F>,
        guess: Option<&Guess<F>>,
        centroids: &[F],
        (x, next): (&[F], NextRows<'_>),
        labels: &[u32],
        fresh: &mut [u32],
        (upper, lower, norms): ChunkBounds<'_>,
        scratch: &mut Scratch<F>,
    ) -> (usize, usize, usize) {
        let n = fresh.len();
        let d = x.len() / n.max(1);
        let guess = guess.filter(|_| scratch.trial.worth_it());
        scratch.known = 0;
        let tightening = Some(&mut scratch.tightening);
        let settled = self.settle(simd, centroids, x, labels, upper, lower, tightening);
        let (sure, exact, guessed) = match (settled, guess) {
            (Some((sure, exact)), _) => {
                fresh.copy_from_slice(labels);
                (sure, exact, 0)
            }
            (None, Some(guess)) => {
                let guesses = &mut scratch.guesses[..n];
                guess.guess(simd, x, guesses, &mut scratch.first_features);
                let distances = &mut scratch.distances[..n];
                let sure = self.confirm(
                    simd,
                    centroids,
                    x,
                    guesses,
                    (fresh, distances),
                    (upper, lower),
                );
                scratch.known = sure;
                scratch.trial.guessed += n;
                scratch.trial.proved += sure.count_ones() as usize;
                (sure, n, n)
            }
            (None, None) => (0, 0, 0),
        };
        let pending = n - sure.count_ones() as usize;
        if pending == 0 {
            return (0, exact, guessed);
        }
        if pending * 4 >= n * 3 {
            // Most rows need the kernel: run it on all of them in place
            // (the others get the label they have, and fresh bounds).
            self.rescore(simd, prepared, x, next, fresh, (upper, lower, norms));
            scratch.known = 0;
            return (n, exact, guessed);
        }
        let rows = &mut scratch.rows;
        rows.clear();
        for i in unsettled(sure, n) {
            rows.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        let mut fresh_labels = [0u32; BLOCK_ROWS];
        let mut fresh_upper = [0f32; BLOCK_ROWS];
        let mut fresh_lower = [0f32; BLOCK_ROWS];
        self.rescore(
            simd,
            prepared,
            rows,
            NextRows::NONE,
            &mut fresh_labels[..pending],
            (
                &mut fresh_upper[..pending],
                &mut fresh_lower[..pending],
                &mut [],
            ),
        );
        for (p, i) in unsettled(sure, n).enumerate() {
            fresh[i] = fresh_labels[p];
            upper[i] = fresh_upper[p];
            lower[i] = fresh_lower[p];
        }
        (pending, exact, guessed)
    }

    /// Keeps each row's guessed centroid (`guesses`) where Hamerly's test
    /// proves the kernel would pick it (see `guess`): its label
    /// into `fresh`, its squared distance to it into `distances` (as
    /// [`Kernels::squared_distance`] computes it), that distance
    /// (rounded up) into `upper`, and `2 half_gap - upper` into `lower`.
    /// Returns the rows proved, bit `i` for row `i` (at most 64 rows); the
    /// others are left as they are.
    #[inline(always)]
    fn confirm<S: Simd, F: Float>(
        &self,
        simd: S,
        centroids: &[F],
        x: &[F],
        guesses: &[u32],
        (fresh, distances): (&mut [u32], &mut [F]),
        (upper, lower): (&mut [f32], &mut [f32]),
    ) -> u64 {
        let d = centroids.len() / self.half_gap.len();
        let kernels = F::kernels(simd);
        let mut sure = 0;
        for (i, (row, &a)) in x.chunks_exact(d).zip(guesses).enumerate() {
            let a = a as usize;
            let centroid = &centroids[a * d..(a + 1) * d];
            let distance = kernels.squared_distance(row, centroid);
            if let Some((up, low)) = self.prove(a, distance.as_f64()) {
                fresh[i] = a as u32;
                distances[i] = distance;
                upper[i] = up;
                lower[i] = low;
                sure |= 1 << i;
            }
        }
        sure
    }

    /// Before the first assignment: whether Hamerly's test proves that the
    /// kernel would pick centroid `a` for a row whose squared distance to
    /// it is `distance` (as [`Kernels::squared_distance`] computes it), and
    /// if so the row's bounds, rounded outwards.
    #[inline(always)]
    pub fn prove(&self, a: usize, distance: f64) -> Option<(f32, f32)> {
        let (widen, narrow) = (1.0 + self.outward, 1.0 - self.outward);
        let up = self.distance_above(distance);
        // The data's magnitudes may not be known yet: the kernel's
        // error for this row, from `|x| <= |c_a| + up`.
        let reach = (up + 2.0 * self.centroid_norm_max) * widen;
        self.certain_within(a, up, 0.0, self.error_scale * reach * reach)
            .then(|| {
                (
                    round_up(up * widen),
                    round_down((2.0 * self.half_gap[a] - up) * narrow),
                )
            })
    }

    /// Fresh bounds for rows from the kernel's best and runner-up scores
    /// (`scores[2 * i]`, `scores[2 * i + 1]`) and their squared norms (in
    /// `up`, as [`squared_norms`] computes them), widened for the rounding
    /// of the arithmetic: into `up` and `low`, one per row (before rounding
    /// to `f32`). A loop apart from the norms', so that it (square roots
    /// and all) is vectorised across rows.
    #[inline(always)]
    fn fresh_bounds<F: Float>(&self, scores: &[F], up: &mut [f64], low: &mut [f64]) {
        let centroid_reach = self.centroid_norm_max * self.centroid_norm_max;
        let (widen, narrow) = (1.0 + self.outward, 1.0 - self.outward);
        for (i, (up, low)) in up.iter_mut().zip(low.iter_mut()).enumerate() {
            let norm = *up;
            // (|x| + max |c|)^2 <= 2 (|x|^2 + max |c|^2): no square root needed.
            let error = self.error_scale * (2.0 * (norm + centroid_reach) * widen * widen * widen);
            let best = scores[2 * i].as_f64();
            let runner_up = scores[2 * i + 1].as_f64();
            *up = (norm + best + error).max(0.0).sqrt() * widen * widen;
            *low = (norm + runner_up - error).max(0.0).sqrt() * narrow * narrow;
        }
    }
}

/// The distances [`Geometry::new`] needs besides the gaps, in the
/// instruction set's own function (the same bits as anywhere: the
/// distances' lanes and pairing are fixed): each centroid's norm and, with
/// `before` (the last step's centroids), how far each moved. In the data's
/// type: the geometry's `outward` covers their rounding ((d + 3) eps on a
/// squared distance, half that on its root), as it does the gaps'.
struct CentroidDistances<'a, F> {
    /// `(k, d)` row-major, as `before`.
    centroids: &'a [F],
    before: Option<&'a [F]>,
    k: usize,
    d: usize,
}

impl<F: Float> WithSimd for CentroidDistances<'_, F> {
    type Output = (Vec<f64>, Option<Vec<f64>>);

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> Self::Output {
        let (k, d, kernels) = (self.k, self.d, F::kernels(simd));
        let row = |j: usize| &self.centroids[j * d..(j + 1) * d];
        let norms = (0..k)
            .map(|j| kernels.squared_norm(row(j)).sqrt())
            .collect();
        let moved = self.before.map(|before| {
            (0..k)
                .map(|j| {
                    let before = &before[j * d..(j + 1) * d];
                    kernels.squared_distance(row(j), before).as_f64().sqrt()
                })
                .collect()
        });
        (norms, moved)
    }
}

/// Multiply-adds of centroid pairs one task of [`nearest_squared_gaps`]
/// takes at least: fewer pairs are scanned on the calling thread.
const GAP_TASK_MULTIPLY_ADDS: usize = 1 << 18;

/// `min_{b != a} ||c_a - c_b||^2` for each of the `k` centroids (`(k, d)`
/// row-major; +inf for a lone centroid), each pair's distance computed
/// once. At large `k` these `k^2 / 2` distances cost as much as a bounded
/// step's rows, so they are shared among threads: rows `a` and `k - 1 - a`
/// of the triangle hold `k - 1` pairs together, tasks take such folds, and
/// their minima merge exactly in any order.
fn nearest_squared_gaps<F: Float>(isa: Isa, centroids: &[F], k: usize, d: usize) -> Vec<f64> {
    let folds = k.div_ceil(2);
    let per_task = GAP_TASK_MULTIPLY_ADDS
        .div_ceil(k.saturating_sub(1).max(1) * d.max(1))
        .max(1);
    let gaps_of = |range: std::ops::Range<usize>| {
        isa.dispatch(GapFolds {
            centroids,
            k,
            d,
            folds: range,
        })
    };
    if folds <= per_task {
        return gaps_of(0..folds);
    }
    let ranges: Vec<_> = (0..folds)
        .step_by(per_task)
        .map(|first| first..(first + per_task).min(folds))
        .collect();
    ranges
        .into_par_iter()
        .with_min_len(task_min_len())
        .map(gaps_of)
        .reduce_with(|mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                *a = a.min(b);
            }
            a
        })
        .unwrap_or_else(|| vec![f64::INFINITY; k])
}

/// The folds `folds` of [`nearest_squared_gaps`]: for rows `a` and `k - 1 -
/// a` of each, the squared distance to every later centroid, kept as the
/// least for both centroids of the pair.
struct GapFolds<'a, F> {
    centroids: &'a [F],
    k: usize,
    d: usize,
    folds: std::ops::Range<usize>,
}

impl<F: Float> WithSimd for GapFolds<'_, F> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> Vec<f64> {
        let (k, d, kernels) = (self.k, self.d, F::kernels(simd));
        let row = |j: usize| &self.centroids[j * d..(j + 1) * d];
        let mut gaps = vec![f64::INFINITY; k];
        for fold in self.folds {
            let mirror = k - 1 - fold;
            for a in [fold, mirror]
                .into_iter()
                .take(if fold == mirror { 1 } else { 2 })
            {
                for b in a + 1..k {
                    let gap = kernels.squared_distance(row(a), row(b)).as_f64();
                    gaps[a] = gaps[a].min(gap);
                    gaps[b] = gaps[b].min(gap);
                }
            }
        }
        gaps
    }
}

/// The squared distance that tightens a bound: feature by feature in `f64`
/// for rows of at most [`TIGHTEN_IN_LANES_MAX_D`] features (as
/// [`CarryOver`] computes it, lane-wise), [`Kernels::squared_distance`] for
/// longer rows.
fn exact_squared_distance<S: Simd, F: Float>(simd: S, row: &[F], centroid: &[F]) -> f64 {
    if row.len() <= TIGHTEN_IN_LANES_MAX_D {
        row.iter().zip(centroid).fold(0.0, |sum, (&p, &q)| {
            let diff = p.as_f64() - q.as_f64();
            sum + diff * diff
        })
    } else {
        F::kernels(simd).squared_distance(row, centroid).as_f64()
    }
}
/// An `f32` not below `v` (+inf above the range; NaN stays NaN, which no
/// test trusts): widened by more than rounding to nearest can take away,
/// so that the conversion needs no branch.
fn round_up(v: f64) -> f32 {
    (v * (1.0 + F32_ROUNDING) + F32_SPACING_MIN) as f32
}

/// An `f32` not above `v` (`v >= 0`; about `f32::MAX` above the range).
fn round_down(v: f64) -> f32 {
    (v.min(f64::from(f32::MAX)) * (1.0 - F32_ROUNDING) - F32_SPACING_MIN).max(0.0) as f32
}

/// `f32`'s unit roundoff `u`, `2^-24`.
const F32_UNIT_ROUNDOFF: f64 = F32_ROUNDING / 2.0;

#[cfg(test)]
mod tests {
    use super::super::super::kernel::PreparedCentroids;
    use super::super::super::simd::{squared_distance, Element, Isa, WithSimd};
    use super::*;

    /// Carries random bounds over a random drift, row by row and with
    /// `Geometry::carry_over` (in vectors on AVX-512 and AVX2), and checks
    /// that both give the same bits; returns how many rows were settled
    /// by the drift test alone, how many after tightening, and how many
    /// were tightened.
    #[cfg(target_arch = "x86_64")]
    fn carry_over_both_ways<F: Float>(k: usize, d: usize, n: usize, seed: u64) -> [u32; 3] {
        Isa::detect().dispatch(BothWays::<F> {
            shape: (k, d, n),
            seed,
            float: std::marker::PhantomData,
        })
    }

    #[cfg(target_arch = "x86_64")]
    struct BothWays<F> {
        shape: (usize, usize, usize),
        seed: u64,
        float: std::marker::PhantomData<F>,
    }

    #[cfg(target_arch = "x86_64")]
    impl<F: Float> WithSimd for BothWays<F> {
        type Output = [u32; 3];

        fn run<S: Simd>(self, simd: S) -> [u32; 3] {
            let ((k, d, n), seed) = (self.shape, self.seed);
            carry_over_both_ways_on::<S, F>(simd, k, d, n, seed)
        }
    }

    /// A drift of random centroids (a step's geometry, the centroids after
    /// it) and `n` rows labelled at random, each near its centroid, with an
    /// upper bound some way above its distance (so that tightening settles
    /// some of them) and, every fourth row, a lower bound within a few
    /// units of `f32`'s last place of where the drift test flips, every
    /// fourth another of where the test of the tightened bound flips (to
    /// tell the arithmetic apart).
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::type_complexity)]
    fn drifted_rows<S: Simd, F: Float>(
        simd: S,
        (k, d, n): (usize, usize, usize),
        seed: u64,
    ) -> (Geometry, Array2<F>, Vec<F>, Vec<u32>, Vec<f32>, Vec<f32>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let before = Array2::from_shape_fn((k, d), |_| F::from_f64(rng.gen_range(-1.0..1.0)));
        let centroids = before.mapv(|v| v + F::from_f64(rng.gen_range(-0.1..0.1)));
        let flat = centroids.as_slice().unwrap();
        let geometry = Geometry::new(centroids.view(), Some(&before), 10.0);
        let motion = geometry.motion.as_ref().unwrap();
        let labels: Vec<u32> = (0..n).map(|_| rng.gen_range(0..k) as u32).collect();
        let x: Vec<F> = labels
            .iter()
            .flat_map(|&a| flat[a as usize * d..(a as usize + 1) * d].to_vec())
            .map(|v| v + F::from_f64(rng.gen_range(-0.2..0.2)))
            .collect();
        let exact: Vec<f64> = (0..n)
            .map(|i| {
                let a = labels[i] as usize;
                exact_squared_distance(simd, &x[i * d..(i + 1) * d], &flat[a * d..(a + 1) * d])
            })
            .collect();
        let upper: Vec<f32> = exact
            .iter()
            .map(|e| (e.sqrt() + rng.gen_range(0.0..0.3)) as f32)
            .collect();
        let lower: Vec<f32> = (0..n)
            .map(|i| {
                let a = labels[i] as usize;
                let edge = match i % 4 {
                    0 | 2 => return rng.gen_range(0.0..1.5),
                    // Where the drift test flips.
                    1 => f64::from(upper[i] + motion.drift[a] + motion.others[a]),
                    // Where the test of the tightened bound flips.
                    _ => exact[i].sqrt() + f64::from(motion.others[a]),
                };
                (edge * (1.0 + rng.gen_range(-2e-6..2e-6))) as f32
            })
            .collect();
        (geometry, centroids, x, labels, upper, lower)
    }

    #[cfg(target_arch = "x86_64")]
    fn carry_over_both_ways_on<S: Simd, F: Float>(
        simd: S,
        k: usize,
        d: usize,
        n: usize,
        seed: u64,
    ) -> [u32; 3] {
        let (geometry, centroids, x, labels, upper, lower) =
            drifted_rows::<S, F>(simd, (k, d, n), seed);
        let flat = centroids.as_slice().unwrap();
        let motion = geometry.motion.as_ref().unwrap();
        let (mut up_rows, mut low_rows) = (upper.clone(), lower.clone());
        let carried = geometry.carry_over_rows(motion, &labels, &mut up_rows, &mut low_rows);
        let (sure_rows, exact_rows) =
            geometry.tighten_rows(simd, carried, &x, flat, &labels, &mut up_rows, &low_rows);
        let (mut up_any, mut low_any) = (upper.clone(), lower.clone());
        let (sure_any, exact_any) = geometry.carry_over(
            simd,
            motion,
            &x,
            flat,
            &labels,
            &mut up_any,
            &mut low_any,
            None,
        );
        let case = format!("k={k} d={d} n={n}");
        assert_eq!(sure_rows, sure_any, "{case}");
        assert_eq!(exact_rows, exact_any, "{case}");
        assert_eq!(up_rows, up_any, "{case}");
        assert_eq!(low_rows, low_any, "{case}");
        [
            carried.count_ones(),
            sure_rows.count_ones(),
            exact_rows as u32,
        ]
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn carrying_bounds_over_is_the_same_row_by_row_and_in_vectors() {
        if Isa::detect() == Isa::Portable {
            return; // nothing to compare the row-by-row carry-over with
        }
        let (mut totals, mut rows) = ([0; 3], 0);
        // k beyond 32 takes the gathering path, the others permutes. Rows
        // of more than 8 features (every row on AVX2) are tightened row by
        // row on either path.
        for k in [1, 2, 5, 16, 17, 30, 32, 33, 40] {
            for d in [1, 2, 3, 4, 8, 9] {
                for n in [1, 7, 8, 13, 64] {
                    let seed = (k * 100 + d * 10 + n) as u64;
                    let counts = carry_over_both_ways::<f64>(k, d, n, seed);
                    carry_over_both_ways::<f32>(k, d, n, seed);
                    for (total, count) in totals.iter_mut().zip(counts) {
                        *total += count;
                    }
                    rows += n as u32;
                }
            }
        }
        // Every outcome occurs: rows settled by the drift test, by the
        // tightened bound, and rows tightened in vain (left to the kernel).
        let [carried, settled, tightened] = totals;
        assert!(
            carried > 0 && settled > carried && tightened > settled - carried,
            "{totals:?}"
        );
        assert!(settled < rows, "{totals:?} of {rows}");
    }

    /// `Geometry::settle_chunk` against `Geometry::settle` block by block,
    /// on this machine's instruction set: the same rows left for the
    /// kernel, in order, the same exact distances and the same bounds to the
    /// bit; returns how many rows were left for the kernel and how many
    /// tightened.
    #[cfg(target_arch = "x86_64")]
    fn settle_chunk_on<S: Simd, F: Float>(simd: S, shape: (usize, usize, usize)) -> [usize; 2] {
        let seed = (shape.0 * 10_000 + shape.1 * 1000 + shape.2) as u64;
        let (geometry, centroids, x, labels, upper, lower) =
            drifted_rows::<S, F>(simd, shape, seed);
        let (flat, d) = (centroids.as_slice().unwrap(), shape.1);
        let (mut up_blocks, mut low_blocks) = (upper.clone(), lower.clone());
        let (mut pending_blocks, mut exact_blocks) = (Vec::new(), 0);
        let blocks = x.chunks(BLOCK_ROWS * d).zip(labels.chunks(BLOCK_ROWS)).zip(
            up_blocks
                .chunks_mut(BLOCK_ROWS)
                .zip(low_blocks.chunks_mut(BLOCK_ROWS)),
        );
        for (s, ((x, labels), (up, low))) in blocks.enumerate() {
            let (sure, exact) = geometry
                .settle(simd, flat, x, labels, up, low, None)
                .unwrap();
            exact_blocks += exact;
            let first = s * BLOCK_ROWS;
            pending_blocks.extend(unsettled(sure, labels.len()).map(|i| (first + i) as u32));
        }
        let (mut up_chunk, mut low_chunk) = (upper, lower);
        // Rows already pending stay as they are.
        let mut pending = vec![u32::MAX];
        let exact = geometry
            .settle_chunk(
                simd,
                flat,
                &x,
                &labels,
                &mut up_chunk,
                &mut low_chunk,
                &mut pending,
            )
            .unwrap();
        let case = format!("{} {shape:?}", std::any::type_name::<F>());
        assert_eq!(pending[0], u32::MAX, "{case}");
        assert_eq!(pending[1..], pending_blocks, "{case}");
        assert_eq!(exact, exact_blocks, "{case}");
        assert_eq!(up_chunk, up_blocks, "{case}");
        assert_eq!(low_chunk, low_blocks, "{case}");
        [pending_blocks.len(), exact]
    }

    #[cfg(target_arch = "x86_64")]
    struct WholeChunk<F> {
        shape: (usize, usize, usize),
        float: std::marker::PhantomData<F>,
    }

    #[cfg(target_arch = "x86_64")]
    impl<F: Float> WithSimd for WholeChunk<F> {
        type Output = [usize; 2];

        fn run<S: Simd>(self, simd: S) -> [usize; 2] {
            settle_chunk_on::<S, F>(simd, self.shape)
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn settling_a_chunk_is_settling_its_blocks() {
        let (mut pending, mut tightened, mut rows) = (0, 0, 0);
        // Rows short enough to tighten in lanes (on AVX-512) or four at a
        // time (on AVX2), and longer; chunks of one block, of whole blocks
        // and with a partial last one.
        for k in [2, 17, 40] {
            for d in [1, 3, 8, 9, 40] {
                for n in [1, 64, 150] {
                    let shape = (k, d, n);
                    let float = std::marker::PhantomData;
                    let [p, t] = Isa::detect().dispatch(WholeChunk::<f64> { shape, float });
                    let float = std::marker::PhantomData;
                    Isa::detect().dispatch(WholeChunk::<f32> { shape, float });
                    (pending, tightened, rows) = (pending + p, tightened + t, rows + n);
                }
            }
        }
        // Rows settled without tightening, settled by it and left to the
        // kernel after it all occur.
        assert!(0 < pending && pending < tightened && tightened < rows);
    }

    /// See [`a_chunk_stops_tightening_where_it_settles_nothing`].
    #[cfg(target_arch = "x86_64")]
    struct Hopeless;

    #[cfg(target_arch = "x86_64")]
    impl WithSimd for Hopeless {
        type Output = ();

        fn run<S: Simd>(self, simd: S) {
            use rand::{Rng, SeedableRng};
            let (k, d, n) = (17, 40, 300);
            let (geometry, centroids, _, labels, mut upper, _) =
                drifted_rows::<S, f64>(simd, (k, d, n), 5);
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(6);
            let x: Vec<f64> = (0..n * d).map(|_| rng.gen_range(-10.0..10.0)).collect();
            let flat = centroids.as_slice().unwrap();
            let exact: Vec<f64> = (0..n)
                .map(|i| {
                    let a = labels[i] as usize;
                    exact_squared_distance(simd, &x[i * d..(i + 1) * d], &flat[a * d..(a + 1) * d])
                })
                .collect();
            for (up, e) in upper.iter_mut().zip(&exact) {
                *up = (e.sqrt() * 1.01) as f32;
            }
            let mut lower = vec![0.0f32; n];
            let mut pending = vec![u32::MAX];
            let computed = geometry
                .settle_chunk(
                    simd,
                    flat,
                    &x,
                    &labels,
                    &mut upper,
                    &mut lower,
                    &mut pending,
                )
                .unwrap();
            assert_eq!(computed, BLOCK_ROWS);
            assert_eq!(pending[0], u32::MAX);
            assert_eq!(pending[1..], (0..n as u32).collect::<Vec<_>>());
            for i in 0..n {
                assert!(f64::from(upper[i]) >= exact[i].sqrt(), "row {i}");
                assert!(lower[i] <= 0.0, "row {i}");
            }
        }
    }

    /// A chunk whose carried bounds settle nothing and where tightening
    /// settles nothing either (rows far from their centroids, no lower
    /// bound): `settle_chunk` tightens the first [`BLOCK_ROWS`] rows only,
    /// leaves every row to the kernel, in order, and the bounds it did not
    /// tighten still hold.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_chunk_stops_tightening_where_it_settles_nothing() {
        Isa::detect().dispatch(Hopeless);
    }

    /// `Geometry::carried` in `f32` against the same formulas in `f64`
    /// (exact for these inputs to about 1e-16): the carried upper bound is
    /// never below the real one, the lower never above, and a row it
    /// settles is settled in real arithmetic too; over magnitudes from
    /// subnormal to near `f32::MAX`.
    #[test]
    fn carried_bounds_hold_in_real_arithmetic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let geometry = Geometry::new(ndarray::array![[0.0f64], [1.0]].view(), None, 1.0);
        let slack = 8.0 * F32_UNIT_ROUNDOFF;
        let magnitude = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
            let exponent = rng.gen_range(-149.0..127.0f64);
            (2f64.powf(exponent) * rng.gen_range(1.0..2.0)) as f32
        };
        let (mut settled, mut cases) = (0, 0);
        for _ in 0..200_000 {
            let scale = magnitude(&mut rng);
            let near = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus, f: f64| {
                (f64::from(scale) * f * rng.gen_range(0.5..1.5)) as f32
            };
            let (upper, drift) = (near(&mut rng, 1.0), near(&mut rng, 0.01));
            let (lower, others) = (near(&mut rng, 1.3), near(&mut rng, 0.01));
            let gap2 = near(&mut rng, 2.5);
            let error2 = (magnitude(&mut rng) * rng.gen_range(0.0..1.0)).max(f32::MIN_POSITIVE);
            let motion = Motion {
                drift: vec![drift],
                others: vec![others],
                gap2: vec![gap2],
                widen: round_up(1.0 + slack),
                narrow: round_down(1.0 - slack),
                error2,
            };
            let (up, low, sure) = geometry.carried(&motion, 0, upper, lower);
            let real_up = f64::from(upper) + f64::from(drift);
            let real_low = (f64::from(lower) - f64::from(others)).max(0.0);
            let tolerance = 1.0 + 1e-12;
            assert!(
                f64::from(up) * tolerance >= real_up,
                "{upper} {drift}: {up}"
            );
            assert!(
                f64::from(low) <= real_low * tolerance,
                "{lower} {others}: {low}"
            );
            if sure {
                let gap = real_low.max(f64::from(gap2) - real_up);
                let twice_error = f64::from(error2) / (1.0 + 4.0 * F32_UNIT_ROUNDOFF);
                assert!(gap > real_up, "{upper} {drift} {lower} {others} {gap2}");
                assert!(
                    (gap - real_up) * (gap + real_up) * tolerance > twice_error,
                    "{upper} {drift} {lower} {others} {gap2} {error2}"
                );
                settled += 1;
            }
            cases += 1;
        }
        // Both outcomes occur.
        assert!(settled > 0 && settled < cases, "{settled} of {cases}");
    }

    /// [`Geometry::confirm`] on one instruction set, with the distance the
    /// inertia would sum for each row to its guess.
    struct Confirm<'a> {
        geometry: &'a Geometry,
        centroids: &'a [f64],
        x: &'a [f64],
        guesses: &'a [u32],
        fresh: &'a mut [u32],
        distances: &'a mut [f64],
        upper: &'a mut [f32],
        lower: &'a mut [f32],
    }

    impl WithSimd for Confirm<'_> {
        type Output = (u64, Vec<f64>);

        fn run<S: Simd>(self, simd: S) -> (u64, Vec<f64>) {
            let sure = self.geometry.confirm(
                simd,
                self.centroids,
                self.x,
                self.guesses,
                (self.fresh, self.distances),
                (self.upper, self.lower),
            );
            let d = self.x.len() / self.guesses.len();
            let kernels = f64::kernels(simd);
            let summed = self
                .x
                .chunks_exact(d)
                .zip(self.guesses)
                .map(|(row, &a)| {
                    let a = a as usize;
                    kernels.squared_distance(row, &self.centroids[a * d..(a + 1) * d])
                })
                .collect();
            (sure, summed)
        }
    }

    /// Guesses (see `super::super::guess`) are kept only where the kernel
    /// picks the same centroid, with bounds that hold; never for a row at a
    /// tie (a midpoint, or near a duplicated centroid) or far beyond the
    /// centroids.
    #[test]
    fn guesses_are_kept_only_where_the_kernel_picks_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(31);
        let (mut kept, mut rows_seen, mut ties) = (0, 0, 0);
        // Far from the origin, the kernel's rounding (`||c||^2 - 2 x.c`)
        // decides near ties, and the bounds must allow for it.
        for (k, d, offset) in [(12, 40, 0.0), (2, 33, 0.0), (30, 100, 0.0), (12, 40, 1e5)] {
            let mut centroids =
                Array2::from_shape_fn((k, d), |_| offset + rng.gen_range(-1.0..1.0));
            if k > 2 {
                // A duplicated centroid: rows near it are ties.
                let first = centroids.row(0).to_owned();
                centroids.row_mut(k - 1).assign(&first);
            }
            let flat = centroids.as_slice().unwrap();
            let centroid = |j: usize| &flat[j * d..(j + 1) * d];
            // Magnitudes not known yet, as in a fit's first step.
            let geometry = Geometry::new(centroids.view(), None, f64::INFINITY);
            let prepared = PreparedCentroids::new(centroids.view(), Isa::detect());
            for sub in 0..8 {
                let n = 64;
                let (mut tie_rows, mut far_rows) = (0u64, 0u64);
                let x: Vec<f64> = (0..n)
                    .flat_map(|i| {
                        let a = rng.gen_range(0..k);
                        let row: Vec<f64> = match i % 4 {
                            0 | 1 => centroid(a)
                                .iter()
                                .map(|v| v + rng.gen_range(-0.05..0.05))
                                .collect(),
                            2 => {
                                // The midpoint of a centroid and its
                                // nearest other (no centroid is nearer to
                                // it), to rounding: a tie, or nudged by 1e-9
                                // (decidable, well above the kernel's error).
                                let b = (0..k)
                                    .filter(|&b| b != a)
                                    .min_by(|&p, &q| {
                                        let to =
                                            |j: usize| squared_distance(centroid(a), centroid(j));
                                        to(p).total_cmp(&to(q))
                                    })
                                    .unwrap();
                                let nudge = if i % 8 == 2 {
                                    0.0
                                } else {
                                    10f64.powi(-rng.gen_range(5..14))
                                };
                                tie_rows |= u64::from(nudge == 0.0) << i;
                                centroid(a)
                                    .iter()
                                    .zip(centroid(b))
                                    .map(|(p, q)| (p + q) / 2.0 + (p - q) * nudge)
                                    .collect()
                            }
                            _ => {
                                far_rows |= 1 << i;
                                centroid(a).iter().map(|v| (v - offset) * 1e6).collect()
                            }
                        };
                        row
                    })
                    .collect();
                let mut labels = vec![0u32; n];
                prepared.assign(&x, &mut labels);
                // Half the guesses the kernel's, half at random.
                let guesses: Vec<u32> = labels
                    .iter()
                    .map(|&l| {
                        if rng.gen_bool(0.5) {
                            l
                        } else {
                            rng.gen_range(0..k) as u32
                        }
                    })
                    .collect();
                let mut fresh = vec![u32::MAX; n];
                let mut distances = vec![-1.0; n];
                let (mut upper, mut lower) = (vec![-1.0f32; n], vec![-1.0f32; n]);
                let (sure, summed) = Isa::detect().dispatch(Confirm {
                    geometry: &geometry,
                    centroids: flat,
                    x: &x,
                    guesses: &guesses,
                    fresh: &mut fresh,
                    distances: &mut distances,
                    upper: &mut upper,
                    lower: &mut lower,
                });
                let case = format!("k={k} d={d} offset={offset} sub={sub}");
                assert_eq!(sure & (tie_rows | far_rows), 0, "{case}");
                for i in 0..n {
                    if sure >> i & 1 == 0 {
                        assert_eq!(
                            (fresh[i], distances[i], upper[i], lower[i]),
                            (u32::MAX, -1.0, -1.0, -1.0)
                        );
                        continue;
                    }
                    let row = &x[i * d..(i + 1) * d];
                    assert_eq!(fresh[i], labels[i], "{case}, row {i}");
                    let a = labels[i] as usize;
                    // The distance the inertia sums, to the bit.
                    assert_eq!(
                        distances[i].to_bits(),
                        summed[i].to_bits(),
                        "{case}, row {i}"
                    );
                    let distance = |j: usize| {
                        row.iter()
                            .zip(centroid(j))
                            .map(|(p, q)| (p - q) * (p - q))
                            .sum::<f64>()
                            .sqrt()
                    };
                    assert!(
                        f64::from(upper[i]) >= distance(a) * (1.0 - 1e-12),
                        "{case}, row {i}"
                    );
                    for j in (0..k).filter(|&j| j != a) {
                        assert!(
                            f64::from(lower[i]) <= distance(j) * (1.0 + 1e-12),
                            "{case}, row {i}"
                        );
                    }
                    kept += 1;
                }
                rows_seen += n;
                ties += tie_rows.count_ones();
            }
        }
        // Rows near a centroid, guessed right, are kept; ties never.
        assert!(
            kept > rows_seen / 8 && kept < rows_seen / 2,
            "{kept} of {rows_seen}"
        );
        assert!(ties > 50, "{ties}");
    }

    #[test]
    fn centroid_distances_are_the_same_bits_on_every_instruction_set() {
        use rand::{Rng, SeedableRng};
        fn check<F: Float>(k: usize, d: usize, seed: u64) {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let before = Array2::from_shape_fn((k, d), |_| F::from_f64(rng.gen_range(-5.0..5.0)));
            let after = before.mapv(|v| v + F::from_f64(rng.gen_range(-0.5..0.5)));
            let (after, before) = (after.as_slice().unwrap(), before.as_slice().unwrap());
            let op = || CentroidDistances {
                centroids: after,
                before: Some(before),
                k,
                d,
            };
            let portable = Isa::Portable.dispatch(op());
            let gaps = nearest_squared_gaps(Isa::Portable, after, k, d);
            // Against the definitions, one by one (the half gap as the
            // geometry takes it: the least of the pairs' narrowed roots).
            let row = |c: &[F], j: usize| c[j * d..(j + 1) * d].to_vec();
            let distance = |a: &[F], b: &[F]| squared_distance(a, b).as_f64().sqrt();
            let narrow = 1.0 - 1e-12;
            for (j, gap) in gaps.iter().enumerate() {
                let half_gap = (0..k)
                    .filter(|&b| b != j)
                    .map(|b| {
                        let (first, second) = (j.min(b), j.max(b));
                        distance(&row(after, first), &row(after, second)) * narrow / 2.0
                    })
                    .fold(f64::INFINITY, f64::min);
                let got = gap.sqrt() * narrow / 2.0;
                assert_eq!(got.to_bits(), half_gap.to_bits(), "k={k} d={d} j={j}");
                let moved = distance(&row(after, j), &row(before, j));
                assert_eq!(portable.1.as_ref().unwrap()[j].to_bits(), moved.to_bits());
            }
            for isa in Isa::supported() {
                assert_eq!(isa.dispatch(op()), portable, "{isa:?} k={k} d={d}");
                let same = nearest_squared_gaps(isa, after, k, d);
                assert_eq!(same, gaps, "{isa:?} k={k} d={d}");
            }
        }
        // The last shapes take several tasks (odd and even k).
        for (k, d) in [
            (1usize, 1usize),
            (2, 3),
            (5, 8),
            (30, 17),
            (64, 100),
            (601, 8),
            (300, 30),
        ] {
            assert_eq!(
                k.div_ceil(2) > GAP_TASK_MULTIPLY_ADDS.div_ceil((k - 1).max(1) * d),
                k > 64,
                "k={k} d={d}: one task up to k = 64, several beyond"
            );
            check::<f64>(k, d, (k * d) as u64);
            check::<f32>(k, d, (k * d) as u64 + 1);
        }
    }

    #[test]
    fn stored_bounds_round_outwards() {
        let cases = [
            0.0,
            1e-45,
            3e-39,
            1e-30,
            0.1,
            1.0 / 3.0,
            1.0,
            2.0f64.sqrt(),
            1e10 + 0.5,
            3.4e38,
            1e300,
        ];
        for v in cases {
            assert!(f64::from(round_up(v)) >= v, "up {v:e}");
            assert!(f64::from(round_down(v)) <= v, "down {v:e}");
            assert!(round_down(v) >= 0.0);
        }
        assert_eq!(round_up(f64::INFINITY), f32::INFINITY);
        assert!(round_down(f64::INFINITY).is_finite() && round_down(f64::INFINITY) > 3.4e38);
    }
}
