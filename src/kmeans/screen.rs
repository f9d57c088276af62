//! Screening `f64` rows in `f32`: the kernel run in single precision (twice
//! the lanes per vector, so half the multiply-adds), with a proven bound on
//! how far its scores can be from the double-precision kernel's.
//!
//! A row whose single-precision runner-up score is more than twice that
//! bound above its best has the same unique nearest centroid in the `f64`
//! kernel, so its label is the exact kernel's to the bit. The other rows (a
//! near tie, a magnitude `f32` cannot hold) go through the `f64` kernel.
//! The scores handed on for fresh bounds are widened by the bound: an upper
//! one for the best, a lower one for the runner-up.
//!
//! The bound, for a row `x` and centroid `c` of `d` features with `f32`'s
//! unit roundoff `u`: converting `x` and `c` to `f32` moves each product
//! `x_f c_f` by at most `2u |x_f c_f|`, the half norm `||c||^2 / 2` is
//! computed with `d + 2` roundings, and the chain of `d` fused multiply-adds
//! adds at most `d u` of the magnitudes it sums; the score `||c||^2 - 2 x.c`
//! is thus within `(2d + 5) u (||c||^2 + 2 ||x|| ||c||)` of its real value
//! (Cauchy-Schwarz bounds `sum |x_f c_f|`), plus the same in `f64`'s unit
//! roundoff for the exact kernel. [`Screen::slack`] takes three times
//! `(d + 4) (u_32 + u_64)` of that magnitude, with the largest centroid
//! norm for `||c||`, plus an absolute term for results that fall among
//! `f32`'s subnormals.

use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::ArrayView2;

use super::float::Float;
use super::kernel::PreparedCentroids;
use super::simd::{Isa, Kernels, NextRows, Simd, WithSimd};

/// Rows and centroids above this norm are not screened: `f32` holds their
/// products with room to spare for any sum of them.
const NORM_MAX: f64 = (1u64 << 40) as f64;
/// Features above this are not screened (the rounding bound's first-order
/// terms would no longer dominate).
const FEATURES_MAX: usize = 100_000;
/// Rows converted to `f32` at a time.
const BLOCK_ROWS: usize = 64;
/// `f32`'s and `f64`'s unit roundoffs.
const UNIT_ROUNDOFF_32: f64 = f32::EPSILON as f64 / 2.0;
const UNIT_ROUNDOFF_64: f64 = f64::EPSILON / 2.0;
/// Twice the spacing of `f32`'s subnormals (`2^-149`), with a factor of
/// two to spare: what rounding among them can move a result by, per
/// operation.
const SUBNORMAL_SLACK: f64 = 1.401_298_464_324_817e-45 * 4.0;

/// The `f32` copy of a step's centroids and what the bound needs of them.
#[derive(Debug)]
pub struct Screen {
    prepared: PreparedCentroids<f32>,
    /// `max_j ||c_j||`, rounded up.
    centroid_norm_max: f64,
    d: usize,
    /// Rows left undecided so far (for the count of work done).
    undecided: AtomicU64,
}

/// Whether screening pays for `k` centroids of `d` features: the `f64`
/// kernel costs `k d` multiply-adds a row and screening saves half of them,
/// but adds a conversion, a norm and a test per row; with few centroids a
/// pass waits on memory rather than on multiply-adds (measurements in
/// `docs/tuning.md`).
pub fn worthwhile(k: usize, d: usize) -> bool {
    k >= 16 && d >= 32
}

impl Screen {
    /// The screen of `(k, d)` centroids for the kernel of `isa`: `None`
    /// where it does not apply (`f32` data, no SIMD kernel, too few
    /// centroids or features to pay, magnitudes out of its range) or is
    /// switched off (`KMEANS_SCREEN=off`, for comparisons).
    pub fn new<F: Float>(centroids: ArrayView2<F>, isa: Isa) -> Option<Screen> {
        let (k, d) = centroids.dim();
        if std::mem::size_of::<F>() != 8
            || isa == Isa::Portable
            || !worthwhile(k, d)
            || d > FEATURES_MAX
            || switched_off()
        {
            return None;
        }
        let squared_max = centroids
            .rows()
            .into_iter()
            .map(|c| c.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>())
            .fold(0.0, f64::max);
        let centroid_norm_max = round_up_norm(squared_max, d);
        // NaN (a non-finite centroid) is out of range too.
        if centroid_norm_max.is_nan() || centroid_norm_max > NORM_MAX {
            return None;
        }
        let single = centroids.mapv(|v| v.as_f64() as f32);
        Some(Screen {
            prepared: PreparedCentroids::new(single.view(), isa),
            centroid_norm_max,
            d,
            undecided: AtomicU64::new(0),
        })
    }

    /// Labels the rows of `x` (`(out.len(), d)`, row-major) that the
    /// single-precision kernel decides, with (when `SCORES`) an upper bound
    /// on the exact kernel's best score and a lower bound on its runner-up
    /// in `scores[2 i]` and `scores[2 i + 1]`; appends the others' indices
    /// to `undecided`, leaving their entries alone. Each row's squared
    /// norm ([`Kernels::squared_norm`], which the slack needs) goes to
    /// `norms[i]` unless `norms` is empty. Runs in a function of `simd`'s
    /// own, so that the conversion and the norms vectorise as widely as the
    /// kernel. Each block's kernel asks for the block after it, the last
    /// for `next` (see [`NextRows`]).
    #[allow(clippy::too_many_arguments)]
    pub fn screen<S: Simd, F: Float, const SCORES: bool>(
        &self,
        simd: S,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        norms: &mut [f64],
        undecided: &mut Vec<usize>,
        next: NextRows<'_>,
    ) {
        simd.run(ScreenRows::<F, SCORES> {
            screen: self,
            x,
            out,
            scores,
            norms,
            undecided,
            next,
        })
    }

    /// Rows the screen has left undecided since it was made.
    pub fn undecided_rows(&self) -> u64 {
        self.undecided.load(Ordering::Relaxed)
    }

    /// [`screen`](Self::screen), inlined into one function per
    /// instruction set.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn screen_rows<S: Simd, F: Float, const SCORES: bool>(
        &self,
        simd: S,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        norms: &mut [f64],
        undecided: &mut Vec<usize>,
        next: NextRows<'_>,
    ) {
        let d = self.d;
        let before = undecided.len();
        let mut single: Vec<f32> = Vec::with_capacity(BLOCK_ROWS.min(out.len()) * d);
        let mut labels = [0u32; BLOCK_ROWS];
        let mut single_scores = [0f32; 2 * BLOCK_ROWS];
        for (b, (rows, out)) in x
            .chunks(BLOCK_ROWS * d)
            .zip(out.chunks_mut(BLOCK_ROWS))
            .enumerate()
        {
            let m = out.len();
            // Each row converted and its norm taken while it is in the
            // first-level cache (a block's rows may not all fit there).
            let kernels = F::kernels(simd);
            let mut squared_max = 0.0f64;
            single.clear();
            for (i, row) in rows.chunks_exact(d).enumerate() {
                single.extend(row.iter().map(|&v| v.as_f64() as f32));
                let norm = kernels.squared_norm(row);
                if let Some(kept) = norms.get_mut(b * BLOCK_ROWS + i) {
                    *kept = norm;
                }
                squared_max = squared_max.max(norm);
            }
            let next = x
                .chunks(BLOCK_ROWS * d)
                .nth(b + 1)
                .map_or(next, NextRows::of);
            self.prepared.assign_with_scores_in(
                simd,
                &single,
                &mut labels[..m],
                &mut single_scores[..2 * m],
                next,
            );
            // One slack for the block, from its largest row norm (one
            // square root instead of one per row).
            let slack = self.slack(squared_max);
            for i in 0..m {
                let best = f64::from(single_scores[2 * i]);
                let runner_up = f64::from(single_scores[2 * i + 1]);
                let row_index = b * BLOCK_ROWS + i;
                // False on NaN (an overflow in f32): the row is undecided.
                if runner_up - best > 2.0 * slack {
                    out[i] = labels[i];
                    if SCORES {
                        scores[2 * row_index] = F::from_f64(best + slack);
                        scores[2 * row_index + 1] = F::from_f64(runner_up - slack);
                    }
                } else {
                    undecided.push(row_index);
                }
            }
        }
        self.undecided
            .fetch_add((undecided.len() - before) as u64, Ordering::Relaxed);
    }

    /// How far a single-precision score of a row with squared norm at
    /// most `row_squared_norm` can be from the exact kernel's (infinite for
    /// rows out of range, NaN included).
    fn slack(&self, row_squared_norm: f64) -> f64 {
        let x = round_up_norm(row_squared_norm, self.d);
        if x.is_nan() || x > NORM_MAX {
            return f64::INFINITY;
        }
        let (c, d) = (self.centroid_norm_max, self.d as f64);
        let relative =
            3.0 * (d + 4.0) * (UNIT_ROUNDOFF_32 + UNIT_ROUNDOFF_64) * (c * c + 2.0 * x * c);
        let absolute = SUBNORMAL_SLACK * (2.0 * d + 4.0 + d.sqrt() * (x + c));
        relative + absolute
    }
}

/// [`Screen::screen`] as one operation.
struct ScreenRows<'a, F, const SCORES: bool> {
    screen: &'a Screen,
    x: &'a [F],
    out: &'a mut [u32],
    scores: &'a mut [F],
    norms: &'a mut [f64],
    undecided: &'a mut Vec<usize>,
    next: NextRows<'a>,
}

impl<F: Float, const SCORES: bool> WithSimd for ScreenRows<'_, F, SCORES> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) {
        self.screen.screen_rows::<S, F, SCORES>(
            simd,
            self.x,
            self.out,
            self.scores,
            self.norms,
            self.undecided,
            self.next,
        )
    }
}

/// The centroids a step assigns against: the exact kernel's layout, with
/// the `f32` screen in front where it applies. Labels are the exact
/// kernel's to the bit either way; scores of rows the screen decided are
/// bounds (an upper bound on the best, a lower bound on the runner-up)
/// rather than the kernel's.
#[derive(Debug)]
pub struct ScreenedCentroids<F> {
    exact: PreparedCentroids<F>,
    screen: Option<Screen>,
}

impl<F: Float> ScreenedCentroids<F> {
    /// `(k, d)` centroids for the kernel of `isa`, with the screen where it
    /// applies.
    pub fn new(centroids: ArrayView2<F>, isa: Isa) -> Self {
        ScreenedCentroids {
            exact: PreparedCentroids::new(centroids, isa),
            screen: Screen::new(centroids, isa),
        }
    }

    /// `(k, d)` centroids for the kernel of `isa`, without the screen.
    pub fn unscreened(centroids: ArrayView2<F>, isa: Isa) -> Self {
        ScreenedCentroids {
            exact: PreparedCentroids::new(centroids, isa),
            screen: None,
        }
    }

    /// Whether rows go through the `f32` screen first.
    pub fn is_screened(&self) -> bool {
        self.screen.is_some()
    }

    /// Rows the screen has sent on to the exact kernel since preparation.
    pub fn rescored_rows(&self) -> u64 {
        self.screen.as_ref().map_or(0, |s| s.undecided_rows())
    }

    /// Writes the nearest centroid of each row of `x` (`(out.len(), d)`,
    /// row-major) to `out`, asking for `next` meanwhile (see [`NextRows`]:
    /// a step's next block of rows).
    #[inline]
    pub fn assign_in<S: Simd>(&self, simd: S, x: &[F], out: &mut [u32], next: NextRows<'_>) {
        self.assign_rows::<S, false>(simd, x, out, &mut [], &mut [], next);
    }

    /// [`assign_in`](Self::assign_in) on the instruction set the centroids
    /// were prepared for (chosen here: for passes that are not a step's).
    pub fn assign(&self, x: &[F], out: &mut [u32]) {
        self.exact.isa().dispatch(AssignRows {
            centroids: self,
            x,
            out,
        })
    }

    /// As [`assign_in`](Self::assign_in), with each row's best and
    /// runner-up scores (see [`PreparedCentroids::assign_with_scores_in`]),
    /// or for rows the screen decided, bounds on them. The screen computes
    /// each row's squared norm ([`Kernels::squared_norm`]) for its slack:
    /// into `norms`, one a row, and `true`, where it ran; `false` (and
    /// `norms` left alone) where it did not.
    #[inline]
    pub fn assign_with_scores_in<S: Simd>(
        &self,
        simd: S,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        norms: &mut [f64],
        next: NextRows<'_>,
    ) -> bool {
        debug_assert_eq!(scores.len(), 2 * out.len());
        debug_assert_eq!(norms.len(), out.len());
        self.assign_rows::<S, true>(simd, x, out, scores, norms, next)
    }

    /// Labels into `out` (and with `SCORES`, scores into `scores`); the
    /// rows' squared norms into `norms` (when not empty) and `true` where
    /// the screen ran.
    fn assign_rows<S: Simd, const SCORES: bool>(
        &self,
        simd: S,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        norms: &mut [f64],
        next: NextRows<'_>,
    ) -> bool {
        let Some(screen) = &self.screen else {
            if SCORES {
                self.exact.assign_with_scores_in(simd, x, out, scores, next);
            } else {
                self.exact.assign_in(simd, x, out, next);
            }
            return false;
        };
        let mut undecided = Vec::new();
        screen.screen::<S, F, SCORES>(simd, x, out, scores, norms, &mut undecided, next);
        if undecided.is_empty() {
            return true;
        }
        let d = x.len() / out.len();
        let mut rows = Vec::with_capacity(undecided.len() * d);
        for &i in &undecided {
            rows.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        let mut labels = vec![0; undecided.len()];
        if SCORES {
            let mut exact = vec![F::zero(); 2 * undecided.len()];
            self.exact
                .assign_with_scores_in(simd, &rows, &mut labels, &mut exact, NextRows::NONE);
            for (p, &i) in undecided.iter().enumerate() {
                out[i] = labels[p];
                scores[2 * i] = exact[2 * p];
                scores[2 * i + 1] = exact[2 * p + 1];
            }
        } else {
            self.exact
                .assign_in(simd, &rows, &mut labels, NextRows::NONE);
            for (p, &i) in undecided.iter().enumerate() {
                out[i] = labels[p];
            }
        }
        true
    }
}

/// [`ScreenedCentroids::assign_in`] as an operation on an instruction set.
struct AssignRows<'a, F> {
    centroids: &'a ScreenedCentroids<F>,
    x: &'a [F],
    out: &'a mut [u32],
}

impl<F: Float> WithSimd for AssignRows<'_, F> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) {
        self.centroids
            .assign_in(simd, self.x, self.out, NextRows::NONE)
    }
}

/// A norm not below the real one, from a squared norm summed in `f64`
/// over `d` features.
fn round_up_norm(squared: f64, d: usize) -> f64 {
    squared.sqrt() * (1.0 + (d + 2) as f64 * f64::EPSILON)
}

/// `KMEANS_SCREEN=off` switches screening off (read once per process).
pub(crate) fn switched_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("KMEANS_SCREEN").is_ok_and(|v| v == "off"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Screens, or assigns through [`ScreenedCentroids`], on one
    /// instruction set.
    enum Op<'a> {
        Screen(&'a Screen, &'a mut Vec<usize>),
        Assign(&'a ScreenedCentroids<f64>),
    }

    struct Run<'a> {
        op: Op<'a>,
        x: &'a [f64],
        out: &'a mut [u32],
        scores: Option<&'a mut [f64]>,
    }

    impl WithSimd for Run<'_> {
        type Output = ();

        fn run<S: Simd>(self, simd: S) {
            match (self.op, self.scores) {
                (Op::Screen(screen, undecided), Some(scores)) => screen.screen::<S, f64, true>(
                    simd,
                    self.x,
                    self.out,
                    scores,
                    &mut [],
                    undecided,
                    NextRows::NONE,
                ),
                (Op::Screen(screen, undecided), None) => screen.screen::<S, f64, false>(
                    simd,
                    self.x,
                    self.out,
                    &mut [],
                    &mut [],
                    undecided,
                    NextRows::NONE,
                ),
                (Op::Assign(c), Some(scores)) => {
                    // The norms the screen hands out are those the fresh
                    // bounds would compute, to the bit.
                    let n = self.out.len();
                    let mut norms = vec![f64::NAN; n];
                    let screened = c.assign_with_scores_in(
                        simd,
                        self.x,
                        self.out,
                        scores,
                        &mut norms,
                        NextRows::NONE,
                    );
                    assert_eq!(screened, c.is_screened());
                    if screened {
                        let mut expected = vec![0.0; n];
                        crate::kmeans::kernel::squared_norms(simd, self.x, &mut expected);
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&norms), bits(&expected));
                    }
                }
                (Op::Assign(c), None) => c.assign_in(simd, self.x, self.out, NextRows::NONE),
            }
        }
    }
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// The SIMD instruction sets of this CPU (screening needs one).
    fn simd_isas() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .skip_while(|isa| *isa != best)
            .collect()
    }

    /// Screens `x` against `c` on `isa` and checks every decided row
    /// against the exact kernel: the same label, an upper bound on its
    /// best score, a lower bound on its runner-up. Returns the rows left
    /// undecided (`None`: no screen for these centroids).
    fn screened_rows(x: &Array2<f64>, c: &Array2<f64>, isa: Isa) -> Option<Vec<usize>> {
        let screen = Screen::new(c.view(), isa)?;
        let exact = PreparedCentroids::new(c.view(), isa);
        let n = x.nrows();
        let flat = x.as_slice().unwrap();
        let (mut labels, mut scores) = (vec![0; n], vec![0.0; 2 * n]);
        exact.assign_with_scores(flat, &mut labels, &mut scores);
        let (mut screened, mut bounds) = (vec![u32::MAX; n], vec![f64::NAN; 2 * n]);
        let mut undecided = Vec::new();
        isa.dispatch(Run {
            op: Op::Screen(&screen, &mut undecided),
            x: flat,
            out: &mut screened,
            scores: Some(&mut bounds),
        });
        for i in 0..n {
            if undecided.contains(&i) {
                assert_eq!(
                    screened[i],
                    u32::MAX,
                    "row {i}: undecided rows are left alone"
                );
                continue;
            }
            assert_eq!(screened[i], labels[i], "row {i} ({isa:?})");
            assert!(bounds[2 * i] >= scores[2 * i], "row {i}: best");
            assert!(bounds[2 * i + 1] <= scores[2 * i + 1], "row {i}: runner-up");
        }
        Some(undecided)
    }

    fn blobs(rng: &mut Xoshiro256PlusPlus, n: usize, c: &Array2<f64>, spread: f64) -> Array2<f64> {
        let (k, d) = c.dim();
        let mut x = Array2::zeros((n, d));
        for mut row in x.rows_mut() {
            let j = rng.gen_range(0..k);
            for (f, v) in row.iter_mut().enumerate() {
                *v = c[[j, f]] + rng.gen_range(-spread..spread);
            }
        }
        x
    }

    #[test]
    fn screened_labels_are_the_exact_kernels_and_most_rows_are_decided() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for isa in simd_isas() {
            for (n, d, k) in [(300, 32, 20), (257, 40, 16), (130, 100, 30), (65, 64, 40)] {
                let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
                let x = blobs(&mut rng, n, &c, 3.0);
                let undecided = screened_rows(&x, &c, isa).expect("a screen for this shape");
                assert!(
                    undecided.len() * 20 <= n,
                    "{n}x{d}, k = {k}: {}",
                    undecided.len()
                );
            }
        }
    }

    #[test]
    fn near_ties_and_duplicate_centroids_go_to_the_exact_kernel() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let (k, d) = (20, 32);
        for isa in simd_isas() {
            let mut c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
            // Centroid 7 is centroid 2 again: their rows tie exactly.
            let twin = c.row(2).to_owned();
            c.row_mut(7).assign(&twin);
            let mut x = blobs(&mut rng, 200, &c, 2.0);
            // Rows halfway between a centroid and its nearest other one,
            // nudged by less than f32 can tell apart.
            for i in 0..100 {
                let a = rng.gen_range(0..k);
                let gap = |b: usize| (0..d).map(|f| (c[[a, f]] - c[[b, f]]).powi(2)).sum::<f64>();
                let b = (0..k)
                    .filter(|&b| gap(b) > 0.0)
                    .min_by(|&p, &q| gap(p).total_cmp(&gap(q)))
                    .unwrap();
                let nudge = rng.gen_range(-1e-9..1e-9);
                for f in 0..d {
                    x[[i, f]] = 0.5 * (c[[a, f]] + c[[b, f]]) + nudge;
                }
            }
            let undecided = screened_rows(&x, &c, isa).unwrap();
            let exact = PreparedCentroids::new(c.view(), isa);
            let (mut labels, mut scores) = (vec![0; x.nrows()], vec![0.0; 2 * x.nrows()]);
            exact.assign_with_scores(x.as_slice().unwrap(), &mut labels, &mut scores);
            let mut ties = 0;
            for (i, &label) in labels.iter().enumerate() {
                if label == 2 {
                    assert!(undecided.contains(&i), "row {i} ties centroids 2 and 7");
                }
                if scores[2 * i + 1] - scores[2 * i] < 1e-6 {
                    ties += 1;
                    assert!(undecided.contains(&i), "row {i} is a near tie");
                }
            }
            assert!(ties >= 50, "{ties} near ties");
        }
    }

    #[test]
    fn magnitudes_f32_cannot_hold_are_never_decided_wrongly() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (k, d) = (16, 40);
        for isa in simd_isas() {
            for scale in [
                1e-30,
                1e-19,
                1e-21,
                3e-22,
                1e-22,
                2f64.powi(-100),
                1e-5,
                1e5,
                1e9,
            ] {
                let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0) * scale);
                let x = blobs(&mut rng, 150, &c, 3.0 * scale);
                let undecided = screened_rows(&x, &c, isa).expect("centroids in range");
                if scale == 1e-30 {
                    // Products underflow f32 altogether: nothing is decided.
                    assert_eq!(undecided.len(), x.nrows());
                }
            }
            // Centroids beyond the range: no screen at all.
            let far = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0) * 1e30);
            assert!(Screen::new(far.view(), isa).is_none());
            // Rows beyond it (and non-finite ones) are undecided.
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
            let mut x = blobs(&mut rng, 130, &c, 3.0);
            x[[3, 5]] = 1e30;
            x[[70, 0]] = f64::INFINITY;
            x[[129, 39]] = f64::NAN;
            let undecided = screened_rows(&x, &c, isa).unwrap();
            for i in [3, 70, 129] {
                assert!(undecided.contains(&i), "row {i}");
            }
        }
    }

    #[test]
    fn screened_preparation_gives_the_exact_labels_and_bracketing_scores() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let (k, d) = (30, 50);
        let mut c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
        let twin = c.row(0).to_owned();
        c.row_mut(1).assign(&twin);
        let x = blobs(&mut rng, 301, &c, 4.0);
        let flat = x.as_slice().unwrap();
        let exact = PreparedCentroids::new(c.view(), Isa::detect());
        let screened = ScreenedCentroids::new(c.view(), Isa::detect());
        assert_eq!(
            screened.is_screened(),
            Isa::detect() != Isa::Portable && !switched_off()
        );
        let (mut labels, mut scores) = (vec![0; 301], vec![0.0; 602]);
        exact.assign_with_scores(flat, &mut labels, &mut scores);
        let (mut got, mut bounds) = (vec![0; 301], vec![0.0; 602]);
        Isa::detect().dispatch(Run {
            op: Op::Assign(&screened),
            x: flat,
            out: &mut got,
            scores: Some(&mut bounds),
        });
        assert_eq!(got, labels);
        for i in 0..301 {
            assert!(bounds[2 * i] >= scores[2 * i]);
            assert!(bounds[2 * i + 1] <= scores[2 * i + 1]);
        }
        let mut plain = vec![0; 301];
        Isa::detect().dispatch(Run {
            op: Op::Assign(&screened),
            x: flat,
            out: &mut plain,
            scores: None,
        });
        assert_eq!(plain, labels);
    }

    #[test]
    fn screening_pays_only_with_enough_centroids_and_features() {
        assert!(worthwhile(30, 100));
        assert!(worthwhile(16, 32));
        assert!(!worthwhile(8, 100));
        assert!(!worthwhile(15, 1000));
        assert!(!worthwhile(30, 10));
    }
}
