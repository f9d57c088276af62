//! The Lloyd loop: the fit on checked parameters.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::bounds::{worthwhile, Bounds};
use super::error::{KMeansError, Result};
use super::float::Float;
use super::init::kmeans_plusplus;
use super::lloyd::{assign, inertia, lloyd_step, Extras, Totals};
use super::params::{Init, KMeans, Pruning};
use super::validate::{check_not_empty, finite_max_abs, locate_non_finite};

/// A fitted k-means.
#[derive(Debug, Clone)]
pub struct KMeansFit<F> {
    /// The final centroids, `(k, n_features)`.
    pub centroids: Array2<F>,
    /// Each sample's nearest final centroid, `(n_samples,)`.
    pub labels: Array1<u32>,
    /// `sum_i ||x_i - c_{labels_i}||^2` after the final assignment, in `f64`.
    pub inertia: f64,
    /// Lloyd iterations run (scikit-learn's `n_iter_`).
    pub n_iter: usize,
    /// Whether the fit reached a fixed point: an iteration changed no label
    /// (strict convergence) or moved no centroid, as opposed to stopping on
    /// `max_iter` or on a positive tolerance.
    pub converged: bool,
    /// What the fit computed, pass by pass (not part of the result: a fit
    /// with bounds does less work for the same answer).
    pub work: Work,
    /// Wall-clock seconds of the k-means++ seeding within the fit (0 with
    /// given centroids), so callers can tell seeding from iterations.
    pub seeding_seconds: f64,
}

impl<F: PartialEq> PartialEq for KMeansFit<F> {
    /// Same result: centroids, labels, inertia, iterations and convergence
    /// (the work done is not compared).
    fn eq(&self, other: &Self) -> bool {
        self.centroids == other.centroids
            && self.labels == other.labels
            && self.inertia.to_bits() == other.inertia.to_bits()
            && self.n_iter == other.n_iter
            && self.converged == other.converged
    }
}

/// One pass over the data: how many squared distances (row to one
/// centroid, `d` multiply-adds each) it computed (0 for passes that only
/// check or copy), how many of those in `f32` (the `f64` kernel's screen),
/// and how many rows of the data it read (all of them, but in steps where
/// bounds settle most rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pass {
    /// Squared distances computed.
    pub distances: u64,
    /// Of those, computed in `f32` for `f64` data.
    pub f32_distances: u64,
    /// Rows of the data read.
    pub rows: u64,
}

/// The work of a fit, pass by pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Every pass over the data, in order.
    pub per_pass: Vec<Pass>,
    /// Times bounds were set afresh: 0 without bounds, 1 with bounds from
    /// the first step, more where [`Pruning::Auto`] suspended them and set
    /// them again (or where the fit started over on a scaled copy of data
    /// its first step found too large or too small).
    pub bounds_set: usize,
}

impl Work {
    /// Records a pass whose distances are all in the data's type.
    fn push(&mut self, distances: u64, rows: u64) {
        self.push_pass(distances, 0, rows);
    }

    /// Records a pass, `f32_distances` of its distances in `f32`.
    fn push_pass(&mut self, distances: u64, f32_distances: u64, rows: u64) {
        self.per_pass.push(Pass {
            distances,
            f32_distances,
            rows,
        });
    }

    /// Adds work to the last pass recorded (none yet: nothing to add to).
    fn add_to_last(&mut self, distances: u64, rows: u64) {
        if let Some(last) = self.per_pass.last_mut() {
            last.distances += distances;
            last.rows += rows;
        }
    }

    /// Passes over the data.
    pub fn passes(&self) -> usize {
        self.per_pass.len()
    }

    /// Squared distances computed in all.
    pub fn distances(&self) -> u64 {
        self.per_pass.iter().map(|p| p.distances).sum()
    }

    /// One figure of every pass, in order (for example `|p| p.rows`).
    pub fn column(&self, figure: impl Fn(&Pass) -> u64) -> Vec<u64> {
        self.per_pass.iter().map(figure).collect()
    }
}

impl<F> KMeansFit<F> {
    /// How many clusters hold at least one sample. Fewer than k happens when
    /// the data has fewer distinct points than k (scikit-learn warns then).
    pub fn distinct_clusters(&self) -> usize {
        let mut seen: Vec<u32> = self.labels.to_vec();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }
}

impl<F: Float> KMeans<F> {
    /// Fits `x`, `(n_samples, n_features)`.
    ///
    /// The iteration is scikit-learn's Lloyd: assign to the nearest centroid,
    /// move centroids to their means (empty clusters take the farthest
    /// samples), stop when no label changes, when the centroid shift is within
    /// the tolerance, or after `max_iter` steps; if the loop did not converge
    /// strictly, a final assignment makes labels match the centroids.
    /// Results do not depend on the number of threads.
    pub fn fit(&self, x: ArrayView2<F>) -> Result<KMeansFit<F>> {
        match self.threads() {
            Some(threads) => rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(KMeansError::ThreadPool)?
                .install(|| self.fit_in_current_pool(x)),
            None => self.fit_in_current_pool(x),
        }
    }

    fn fit_in_current_pool(&self, x: ArrayView2<F>) -> Result<KMeansFit<F>> {
        check_not_empty(x)?;
        let (n, d) = x.dim();
        let k = self.k();
        if k > n {
            return Err(KMeansError::TooManyClusters { k, n_samples: n });
        }
        let init_max_abs = match self.init() {
            Init::Given(init) if init.ncols() != d => {
                return Err(KMeansError::InitShape {
                    got: init.dim(),
                    expected: (k, d),
                })
            }
            Init::Given(init) => finite_max_abs(init.view(), "initial centroids")?,
            Init::KMeansPlusPlus => 0.0,
        };
        // With given centroids, the data is checked in the first Lloyd step's
        // pass instead of a pass of its own. Should its magnitudes then call
        // for scaling, the fit starts over on a scaled copy.
        let fused = matches!(self.init(), Init::Given(_))
            && x.is_standard_layout()
            && Scale::needed::<F>(0.0, init_max_abs).is_none();
        let mut work = Work::default();
        if fused {
            match self.lloyd(x, init_max_abs, None, &mut work)? {
                Attempt::Fitted(fit) => return Ok(*fit),
                Attempt::NeedsScaling { data_max_abs } => {
                    return self
                        .lloyd(x, init_max_abs, Some(data_max_abs), &mut work)
                        .map(Attempt::into_fit)
                }
            }
        }
        let data_max_abs = finite_max_abs(x, "data")?;
        work.push(0, n as u64);
        self.lloyd(x, init_max_abs, Some(data_max_abs), &mut work)
            .map(Attempt::into_fit)
    }

    /// The fit on checked centroids; the data is checked already when
    /// `data_max_abs` (its largest magnitude) is given, else in the first step.
    fn lloyd(
        &self,
        x: ArrayView2<F>,
        init_max_abs: f64,
        data_max_abs: Option<f64>,
        work: &mut Work,
    ) -> Result<Attempt<F>> {
        let (n, d) = x.dim();
        let k = self.k();
        // Initial centroids so far from the data that no row can be nearest
        // to them would stretch the range to scale past the float type's
        // precision; they are moved in, still beyond every row's reach (see
        // `pull_in_far_centroids`), which leaves the fit unchanged.
        let pulled_in = match (self.init(), data_max_abs) {
            (Init::Given(init), Some(m)) if Scale::needed::<F>(m, init_max_abs).is_some() => {
                pull_in_far_centroids(init.view(), m)
            }
            _ => None,
        };
        let init_max_abs = pulled_in.as_ref().map_or(init_max_abs, |(_, max)| *max);
        // Magnitudes whose squares would overflow or underflow the float type
        // are fitted on a copy scaled by a power of two (exact), and the
        // result scaled back.
        let scale = data_max_abs.and_then(|m| Scale::needed::<F>(m, init_max_abs));
        let scaled;
        let x_contiguous = match scale {
            Some(s) => {
                work.push(0, n as u64);
                scaled = x.mapv(|v| s.apply(v));
                ndarray::CowArray::from(scaled.view())
            }
            None => x.as_standard_layout(),
        };
        let flat = x_contiguous
            .as_slice()
            .expect("standard layout is contiguous");
        let seeding = std::time::Instant::now();
        let mut centroids = match self.init() {
            Init::Given(init) => {
                let init = pulled_in.as_ref().map_or(init.view(), |(c, _)| c.view());
                match scale {
                    Some(s) => init.mapv(|v| s.apply(v)),
                    None => init.as_standard_layout().into_owned(),
                }
            }
            Init::KMeansPlusPlus => {
                // One pass for the first centroid, then two per centroid:
                // score the candidates, update the nearest distances.
                let trials = 2 + (k as f64).ln().floor() as u64;
                work.push(n as u64, n as u64);
                for _ in 1..k {
                    work.push(trials * n as u64, n as u64);
                    work.push(n as u64, n as u64);
                }
                kmeans_plusplus(flat, d, k, self.seed())
            }
        };
        let seeding_seconds = match self.init() {
            Init::Given(_) => 0.0,
            Init::KMeansPlusPlus => seeding.elapsed().as_secs_f64(),
        };
        let row_norm_max = |max_abs: f64| {
            (d as f64).sqrt() * scale.map_or(max_abs, |s| s.apply(max_abs)) * (1.0 + 1e-6)
        };

        let mut labels = vec![u32::MAX; n];
        let use_bounds = match self.pruning() {
            Pruning::Auto => worthwhile::<F>(n, d, k),
            Pruning::Always => true,
            Pruning::Never => false,
        };
        let mut data_max_abs = data_max_abs;
        let mut bounds =
            use_bounds.then(|| Bounds::new(n, data_max_abs.map_or(f64::INFINITY, row_norm_max)));
        let mut suspension = Suspension::default();
        work.bounds_set += usize::from(bounds.is_some());
        let mut tol = None;
        let mut converged = false;
        let mut n_iter = 0;
        let mut final_inertia = None;
        let mut last_changed = n;
        // What the last step knew of its clusters, when it looked.
        let mut stats: Option<ClusterStats<F>> = None;
        // The last step's per-cluster sums and counts.
        let mut totals: Option<Totals> = None;
        for iteration in 0..self.max_iter() {
            // A step that would change no label ends the fit. The bounds can
            // often tell so without reading the data, and the inertia then
            // follows from the last step's per-cluster sums.
            if let (Some(bounds), Some(last), Some(sums)) =
                (bounds.as_ref(), stats.as_ref(), totals.as_ref())
            {
                if let Some((distances, rows)) = bounds.labels_hold(centroids.view(), flat, &labels)
                {
                    // Counted with the last pass: it reads a few rows only.
                    work.add_to_last(distances, rows);
                    n_iter = iteration + 1;
                    converged = true;
                    final_inertia = last.inertia_at(centroids.view(), sums);
                    break;
                }
            }
            // Bounds suspended for sending too many rows to the kernel are
            // set afresh (see `Suspension`); that step sums its rows afresh.
            // (The first step has checked the data by then.)
            let mut totals_now = totals.as_ref();
            if suspension.resumes(iteration) {
                let row_norm_max = data_max_abs.map_or(f64::INFINITY, row_norm_max);
                bounds = Some(Bounds::new(n, row_norm_max));
                totals_now = None;
                work.bounds_set += 1;
            }
            // Summing distances in a plain pass costs one per row: done where
            // the step may well be the last (the second, the usual last on
            // separated blobs, or after a step that moved at most one label
            // in 100000). A long fit instead sums its inertia once at the
            // end, as does a fit with bounds: there the sums would make the
            // step read every row, which the bounds mostly spare (100000x100,
            // k = 30: five such steps near the end each cost a pass over 80
            // MB, where the fit's other steps read 1-6% of the rows).
            let near_the_end = last_changed <= n / 100_000;
            let extras = Extras {
                check_data: iteration == 0 && data_max_abs.is_none(),
                inertia: bounds.is_none() && (iteration == 1 || near_the_end),
                // With bounds, the step after this one may be settled by
                // the bounds alone; it needs these sums for the inertia.
                within: bounds.is_some() && iteration == 0,
            };
            let previous_centroids = extras.within.then(|| centroids.clone());
            let step = lloyd_step(
                flat,
                d,
                centroids.view(),
                &mut labels,
                bounds.as_mut(),
                totals_now,
                extras,
            );
            match &step {
                Some(step) => work.push_pass(step.distances, step.f32_distances, step.rows_read),
                None => work.push(0, n as u64),
            }
            let Some(step) = step else {
                return Err(locate_non_finite(x, "data"));
            };
            if let Some(max_abs) = step.data_max_abs {
                data_max_abs = Some(max_abs);
                if Scale::needed::<F>(max_abs, init_max_abs).is_some() {
                    return Ok(Attempt::NeedsScaling {
                        data_max_abs: max_abs,
                    });
                }
                if let Some(bounds) = bounds.as_mut() {
                    bounds.set_row_norm_max(row_norm_max(max_abs));
                }
            }
            n_iter = iteration + 1;
            last_changed = step.changed;
            stats = match (previous_centroids, &step.within) {
                // Relocated clusters hold sums that are not their rows'.
                (Some(previous), Some(within)) if !step.relocated => Some(ClusterStats {
                    previous,
                    within: within.clone(),
                }),
                _ => None,
            };
            if step.relocated {
                work.push(n as u64, n as u64);
            }
            // The next step updates these sums with the rows that change
            // cluster, unless relocation put rows in clusters their labels
            // do not name.
            totals = (!step.relocated).then(|| Totals {
                sums: step.sums.clone(),
                counts: step.counts.clone(),
            });
            // Bounds that keep sending many rows to the kernel only cost.
            if self.pruning() == Pruning::Auto
                && bounds.is_some()
                && suspension.suspends(iteration, step.active, n)
            {
                bounds = None;
            }
            if step.changed == 0 {
                converged = true;
                // The labels are final; when the centroids did not move
                // either, the inertia summed in the step is the fit's.
                if step.centroids == centroids {
                    final_inertia = step.inertia;
                }
                centroids = step.centroids;
                break;
            }
            centroids = step.centroids;
            // The tolerance's scale, once the data is known to be finite.
            let tol = *tol.get_or_insert_with(|| {
                if self.tol() > 0.0 {
                    work.push(0, n as u64);
                    self.tol() * mean_variance(x)
                } else {
                    0.0
                }
            });
            if step.shift <= tol {
                // Centroids that did not move at all are a fixed point: the
                // next step would give them again (scikit-learn stops here
                // too, for example on identical rows).
                converged = step.shift == 0.0;
                break;
            }
        }
        drop(bounds);
        if !converged {
            assign(flat, d, centroids.view(), &mut labels);
            work.push((n * k) as u64, n as u64);
        }
        let mut inertia = final_inertia.unwrap_or_else(|| {
            work.push(n as u64, n as u64);
            inertia(flat, d, centroids.view(), &labels)
        });
        if let Some(s) = scale {
            let back = s.inverse();
            centroids.mapv_inplace(|v| back.apply(v));
            // Squared distances scale by the square (beyond the float range
            // the inertia is infinite: a sum too large for f64).
            inertia = back.apply(back.apply(inertia));
        }
        Ok(Attempt::Fitted(Box::new(KMeansFit {
            centroids,
            labels: Array1::from(labels),
            inertia,
            n_iter,
            converged,
            work: std::mem::take(work),
            seeding_seconds,
        })))
    }
}

/// When [`Pruning::Auto`] suspends bounds that do not pay, and when it sets
/// them afresh. Measured on overlapping blobs of 100000 rows (d = 10 to
/// 100, k = 8 and 30), a step with bounds costs 1.25 to 1.5 plain steps
/// when every row goes to the kernel, about one when a third (d = 10) to a
/// half (d = 100) do, and half of one when a tenth do at d = 100. Early
/// steps of a fit move the centroids most and often send every row to the
/// kernel, later ones few (there, every row for the first 2 to 10 steps,
/// then 10-20%). So bounds are suspended, not dropped, after
/// [`Self::PATIENCE`] steps in a row that sent more than a third of the
/// rows to the kernel ([`Self::PATIENCE_AGAIN`] once set again); they are
/// set again (in a step that costs 1.1 to 1.8 plain ones) after
/// [`Self::FIRST_WAIT`] steps, and each time they are suspended again the
/// wait doubles: a fit where they never pay sets them a handful of times.
#[derive(Debug, Clone, Copy)]
struct Suspension {
    /// The step that set the bounds (afresh: it sends every row to the
    /// kernel, or has its rows guessed).
    set_at: usize,
    /// Steps in a row, since then, that sent too many rows to the kernel.
    failures: usize,
    /// The step that sets them again, while suspended.
    resume_at: Option<usize>,
    /// Steps to wait at the next suspension.
    wait: usize,
}

impl Default for Suspension {
    fn default() -> Self {
        Suspension {
            set_at: 0,
            failures: 0,
            resume_at: None,
            wait: Self::FIRST_WAIT,
        }
    }
}

impl Suspension {
    /// Steps in a row that send too many rows to the kernel before the
    /// bounds of the first step are suspended.
    const PATIENCE: usize = 3;
    /// The same for bounds set again: the large early moves are over.
    const PATIENCE_AGAIN: usize = 1;
    /// Steps without bounds after the first suspension.
    const FIRST_WAIT: usize = 2;

    /// Whether step `iteration` sets suspended bounds afresh.
    fn resumes(&mut self, iteration: usize) -> bool {
        if self.resume_at != Some(iteration) {
            return false;
        }
        self.resume_at = None;
        self.set_at = iteration;
        self.failures = 0;
        true
    }

    /// Whether the bounds are to be suspended after step `iteration`, which
    /// ran with them and sent `active` of its `n` rows to the kernel.
    fn suspends(&mut self, iteration: usize, active: usize, n: usize) -> bool {
        if iteration == self.set_at {
            return false;
        }
        self.failures = if active * 3 > n { self.failures + 1 } else { 0 };
        let patience = if self.set_at == 0 {
            Self::PATIENCE
        } else {
            Self::PATIENCE_AGAIN
        };
        if self.failures < patience {
            return false;
        }
        self.resume_at = Some(iteration + 1 + self.wait);
        self.wait *= 2;
        true
    }
}

/// A step's view of its clusters: with the step's [`Totals`], enough for
/// the inertia of its labels against any centroids, without the data.
struct ClusterStats<F> {
    /// The centroids the step assigned against, `(k, n_features)`.
    previous: Array2<F>,
    /// Per cluster, `sum ||x_i - previous_j||^2` over its rows.
    within: Vec<f64>,
}

impl<F: Float> ClusterStats<F> {
    /// `sum_i ||x_i - c_{label_i}||^2` for the step's labels and `centroids`,
    /// given the step's `totals`, through `sum ||x - c||^2 = within - 2 (c -
    /// p).(sum x - n p) + n ||c - p||^2` with `p` the centroids assigned
    /// against. `None` when the
    /// rounding of that sum could exceed 1e-12 of it (a centroid that moved
    /// far compared with its cluster's spread, or far from the origin): the
    /// inertia is then summed from the data.
    fn inertia_at(&self, centroids: ArrayView2<F>, totals: &Totals) -> Option<f64> {
        let d = centroids.ncols();
        let (mut total, mut magnitude) = (0.0, 0.0);
        for (j, (centroid, previous)) in centroids
            .rows()
            .into_iter()
            .zip(self.previous.rows())
            .enumerate()
        {
            let n = totals.counts[j] as f64;
            let (mut cross, mut moved, mut reach) = (0.0, 0.0, 0.0);
            for (f, (c, p)) in centroid.iter().zip(previous).enumerate() {
                let (delta, p) = (c.as_f64() - p.as_f64(), p.as_f64());
                let sum = totals.sums[j * d + f];
                cross += delta * (sum - n * p);
                moved += delta * delta;
                reach += delta.abs() * (sum.abs() + n * p.abs());
            }
            total += self.within[j] - 2.0 * cross + n * moved;
            magnitude += self.within[j] + 4.0 * n * moved + 2.0 * reach;
        }
        let rounding = (d + 8) as f64 * f64::EPSILON * magnitude;
        (total > 0.0 && rounding <= 1e-12 * total || magnitude == 0.0).then_some(total)
    }
}

/// How one run of the Lloyd loop ended.
enum Attempt<F> {
    Fitted(Box<KMeansFit<F>>),
    /// The data, checked in the first step, needs a scaled copy.
    NeedsScaling {
        data_max_abs: f64,
    },
}

impl<F> Attempt<F> {
    /// The fit of a run that was given checked data (and so cannot ask for
    /// scaling).
    fn into_fit(self) -> KMeansFit<F> {
        match self {
            Attempt::Fitted(fit) => *fit,
            Attempt::NeedsScaling { .. } => {
                unreachable!("scaling is decided before the loop on checked data")
            }
        }
    }
}

/// Above this magnitude (or below its reciprocal) squared distances could
/// overflow (or underflow) the float type: `sqrt(MAX) / 2^24`, leaving room
/// for sums over features and samples.
fn safe_magnitude<F: Float>() -> f64 {
    F::max_value().as_f64().sqrt() / (1u64 << 24) as f64
}

/// Scaling by a power of two, held as its exponent: subnormal data needs
/// factors beyond the float range (2^1063 for values near 1e-320), which are
/// applied in two exact halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scale {
    exponent: i32,
}

impl Scale {
    /// The scale bringing the data near 1 when its magnitudes, or those of
    /// the initial centroids beside it, are outside the safe range (too large
    /// or, for the data, too small); `None` otherwise.
    fn needed<F: Float>(data_max_abs: f64, init_max_abs: f64) -> Option<Scale> {
        let safe = safe_magnitude::<F>();
        let max_abs = data_max_abs.max(init_max_abs);
        let tiny = |m: f64| m > 0.0 && m < 1.0 / safe;
        (max_abs > safe || tiny(max_abs) || tiny(data_max_abs)).then(|| Scale {
            exponent: -(max_abs.log2().floor() as i32),
        })
    }

    /// The scale that undoes this one.
    fn inverse(self) -> Scale {
        Scale {
            exponent: -self.exponent,
        }
    }

    /// `v * 2^exponent`, rounded once (only the second half can round).
    fn apply<F: Float>(self, v: F) -> F {
        let first = self.exponent / 2;
        let second = self.exponent - first;
        F::from_f64(v.as_f64() * 2f64.powi(first) * 2f64.powi(second))
    }
}

/// Initial centroids moved in from beyond every row's reach, with the new
/// largest magnitude, when any lie there; `None` otherwise.
///
/// A centroid whose largest coordinate exceeds `t = 2 (sqrt(d) + 1) (m + c)`
/// (m: the data's largest magnitude, c: the smallest centroid's) is farther
/// from every row than the smallest centroid is, so it is nearest to none,
/// its cluster is empty after the first assignment and it is relocated to
/// the farthest samples, whatever its position was. Moved along its own
/// direction to magnitude `2 t`, it stays beyond reach, so the fit is the
/// same, but the range to scale now fits the float type's precision (a
/// centroid at 1e200 beside data near 1 would otherwise scale the data's
/// squares into underflow).
fn pull_in_far_centroids<F: Float>(
    init: ArrayView2<F>,
    data_max_abs: f64,
) -> Option<(Array2<F>, f64)> {
    let max_abs: Vec<f64> = init
        .rows()
        .into_iter()
        .map(|row| row.iter().fold(0.0f64, |m, v| m.max(v.as_f64().abs())))
        .collect();
    let smallest = max_abs.iter().copied().fold(f64::INFINITY, f64::min);
    let d = init.ncols() as f64;
    let reach = 2.0 * (d.sqrt() + 1.0) * (data_max_abs + smallest);
    // All rows and the smallest centroid at the origin: any positive reach.
    let reach = if reach > 0.0 { reach } else { 1.0 };
    if max_abs.iter().all(|&m| m <= reach) {
        return None;
    }
    let mut moved = init.to_owned();
    for (mut row, &m) in moved.rows_mut().into_iter().zip(&max_abs) {
        if m > reach {
            row.mapv_inplace(|v| F::from_f64(v.as_f64() / m * (2.0 * reach)));
        }
    }
    let new_max = max_abs
        .iter()
        .map(|&m| if m > reach { 2.0 * reach } else { m })
        .fold(0.0, f64::max);
    Some((moved, new_max))
}

/// The mean over features of each feature's (population) variance, the scale
/// scikit-learn gives its tolerance.
fn mean_variance<F: Float>(x: ArrayView2<F>) -> f64 {
    let n = x.nrows() as f64;
    let total: f64 = x
        .axis_iter(Axis(1))
        .map(|column| {
            let mean = column.iter().map(|v| v.as_f64()).sum::<f64>() / n;
            column
                .iter()
                .map(|v| (v.as_f64() - mean).powi(2))
                .sum::<f64>()
                / n
        })
        .sum();
    total / x.ncols() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::KMeansParams;
    use ndarray::{array, Array2};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn fit_from<F: Float>(x: &Array2<F>, init: Array2<F>) -> KMeansFit<F> {
        KMeansParams::new(init.nrows())
            .init(Init::Given(init))
            .check()
            .unwrap()
            .fit(x.view())
            .unwrap()
    }

    /// Textbook Lloyd with nothing clever: full distances, sequential sums.
    fn brute_force(
        x: &Array2<f64>,
        mut centroids: Array2<f64>,
        max_iter: usize,
    ) -> (Vec<u32>, Array2<f64>, usize) {
        let (n, d) = x.dim();
        let k = centroids.nrows();
        let mut labels = vec![u32::MAX; n];
        for iteration in 0..max_iter {
            let mut changed = false;
            for i in 0..n {
                let mut best = (f64::INFINITY, 0);
                for j in 0..k {
                    let dist: f64 = (0..d)
                        .map(|f| (x[[i, f]] - centroids[[j, f]]).powi(2))
                        .sum();
                    if dist < best.0 {
                        best = (dist, j);
                    }
                }
                changed |= labels[i] != best.1 as u32;
                labels[i] = best.1 as u32;
            }
            let mut sums = Array2::<f64>::zeros((k, d));
            let mut counts = vec![0usize; k];
            for i in 0..n {
                let j = labels[i] as usize;
                counts[j] += 1;
                for f in 0..d {
                    sums[[j, f]] += x[[i, f]];
                }
            }
            for j in 0..k {
                assert!(counts[j] > 0, "the brute force has no empty-cluster rule");
                for f in 0..d {
                    centroids[[j, f]] = sums[[j, f]] / counts[j] as f64;
                }
            }
            if !changed {
                return (labels, centroids, iteration + 1);
            }
        }
        panic!("brute force did not converge");
    }

    fn init_of(x: &Array2<f64>, k: usize) -> Array2<f64> {
        Array2::from_shape_fn((k, x.ncols()), |(j, f)| x[[j * 7, f]])
    }

    fn random_blobs(n: usize, d: usize, k: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
        let x = Array2::from_shape_fn((n, d), |(i, f)| {
            centres[[i % k, f]] + rng.gen_range(-3.0..3.0)
        });
        let init = init_of(&x, k);
        (x, init)
    }

    #[test]
    fn known_answer() {
        let x = array![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]];
        let fit = fit_from(&x, array![[0.0, 0.0], [1.0, 1.0]]);
        assert_eq!(fit.centroids, array![[0.25, 0.0], [0.75, 1.0]]);
        assert_eq!(fit.labels.to_vec(), vec![0, 0, 1, 1]);
        assert_eq!(fit.inertia, 0.25);
        assert_eq!(fit.n_iter, 2);
        assert!(fit.converged);
        // Two passes: the first step's also checks the data and scores 4
        // rows x 2 centroids; the second's also sums the final inertia (one
        // distance per row). Too little work per row for bounds.
        assert_eq!(fit.work.column(|p| p.distances), [8, 12]);
        assert_eq!(fit.work.column(|p| p.rows), [4, 4]);
    }

    #[test]
    fn matches_brute_force_lloyd() {
        // (2000, 32, 20) runs through the f32 screen (`screen.rs`).
        for (seed, (n, d, k)) in [
            (2000, 2, 5),
            (1500, 7, 3),
            (3000, 16, 8),
            (700, 1, 4),
            (2000, 32, 20),
        ]
        .into_iter()
        .enumerate()
        {
            let (x, init) = random_blobs(n, d, k, seed as u64);
            let (labels, centroids, n_iter) = brute_force(&x, init.clone(), 300);
            let fit = fit_from(&x, init);
            assert_eq!(fit.labels.to_vec(), labels, "labels, scenario {seed}");
            assert_eq!(fit.n_iter, n_iter);
            for (a, b) in fit.centroids.iter().zip(&centroids) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
            let reference: f64 = (0..n)
                .map(|i| {
                    (0..d)
                        .map(|f| (x[[i, f]] - centroids[[labels[i] as usize, f]]).powi(2))
                        .sum::<f64>()
                })
                .sum();
            assert!((fit.inertia - reference).abs() <= 1e-12 * reference);
        }
    }

    #[test]
    fn distances_the_screen_computes_in_f32_are_counted_apart() {
        let (n, d, k) = (2000, 32, 20);
        // No clusters: no row is proved by a guess (see `super::guess`),
        // every row of the first step goes through the kernel.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-10.0..10.0));
        let init = init_of(&x, k);
        let fit = fit_from(&x, init.clone());
        let work = &fit.work;

        let screened = super::super::kernel::Isa::detect() != super::super::kernel::Isa::Portable
            && !super::super::screen::switched_off();
        // The first step scores every row in f32 (then some again in f64),
        // plus one distance per row for its per-cluster sums, and the
        // guesses it tried before giving up (in f32, on a few features);
        // f32 data and plain passes have none in f32.
        let first = work.per_pass[0].f32_distances;
        let screen = if screened { (n * k) as u64 } else { 0 };
        let guesses_at_most = (n * k * super::super::guess::FEATURES / d) as u64;
        assert!(
            first >= screen && first <= screen + guesses_at_most,
            "{first}"
        );
        assert!(work.per_pass[0].distances >= (n * k + n) as u64);
        let f32_fit = fit_from(&x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        assert!(f32_fit.work.per_pass.iter().all(|p| p.f32_distances == 0));
    }

    fn fit_with_bounds<F: Float>(x: &Array2<F>, init: &Array2<F>, bounds: bool) -> KMeansFit<F> {
        fit_pruned(
            x,
            init,
            if bounds {
                Pruning::Always
            } else {
                Pruning::Never
            },
        )
    }

    fn fit_pruned<F: Float>(x: &Array2<F>, init: &Array2<F>, pruning: Pruning) -> KMeansFit<F> {
        KMeansParams::new(init.nrows())
            .init(Init::Given(init.clone()))
            .pruning(pruning)
            .check()
            .unwrap()
            .fit(x.view())
            .unwrap()
    }

    /// The same fit with and without bounds: labels, iterations and
    /// convergence to the bit, centroids and inertia within `tolerance`
    /// (relative; with bounds, sums are updated rather than summed afresh,
    /// and a fit whose last step the bounds settled alone sums its inertia
    /// from per-cluster sums). Returns whether the bounds saved a pass.
    fn assert_same_fit<F: Float>(
        with: &KMeansFit<F>,
        without: &KMeansFit<F>,
        tolerance: f64,
        what: &str,
    ) -> bool {
        assert_eq!(with.labels, without.labels, "labels, {what}");
        // Bounds update the sums with the rows that change cluster instead
        // of summing afresh: the centroids agree to rounding.
        let scale = without
            .centroids
            .iter()
            .fold(1.0f64, |m, c| m.max(c.as_f64().abs()));
        for (a, b) in with.centroids.iter().zip(&without.centroids) {
            let gap = (a.as_f64() - b.as_f64()).abs();
            assert!(gap <= tolerance * scale, "centroids {a} and {b}, {what}");
        }
        assert_eq!(with.n_iter, without.n_iter, "iterations, {what}");
        assert_eq!(with.converged, without.converged, "convergence, {what}");
        let gap = (with.inertia - without.inertia).abs() / without.inertia.max(f64::MIN_POSITIVE);
        assert!(
            gap <= tolerance,
            "inertia {} with bounds, {} without ({gap:e}), {what}",
            with.inertia,
            without.inertia
        );
        with.work.passes() < without.work.passes()
    }

    /// `n` rows around `k` centres in `[-10, 10]^d` (row `i` around centre
    /// `i % k`, uniform noise within `spread`), optionally rounded to a grid
    /// of step 4 (duplicates and exact ties): the centres and the rows.
    fn noisy_blobs(
        rng: &mut Xoshiro256PlusPlus,
        (n, d, k): (usize, usize, usize),
        spread: f64,
        on_grid: bool,
    ) -> (Array2<f64>, Array2<f64>) {
        let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
        let mut x = Array2::from_shape_fn((n, d), |(i, f)| {
            centres[[i % k, f]] + rng.gen_range(-spread..spread)
        });
        if on_grid {
            x.mapv_inplace(|v: f64| (v / 4.0).round());
        }
        (centres, x)
    }

    /// A fit with bounds reads every row only in its first steps and for
    /// its final inertia: steps near the end (after one that moved at most
    /// a label in 100000) do not sum their inertia, which would make them
    /// read every row, as a plain fit's steps do anyway.
    #[test]
    fn a_fit_with_bounds_reads_every_row_only_where_it_must() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(41);
        let (centres, x) = noisy_blobs(&mut rng, (100_000, 2, 12), 6.0, false);
        let init = centres.mapv(|v| v + rng.gen_range(-3.0..3.0));
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        assert!(with.converged && with.n_iter > 20, "{} steps", with.n_iter);
        assert_same_fit(&with, &without, 1e-12, "overlapping blobs");
        // The first two steps send (nearly) every row to the kernel or to
        // be tightened; after them, only the final inertia reads them all.
        let n = x.nrows() as u64;
        let rows = &with.work.column(|p| p.rows);
        assert_eq!(rows.len(), with.n_iter + 1, "{rows:?}");
        assert_eq!(rows.last(), Some(&n), "{rows:?}");
        assert!(rows[2..rows.len() - 1].iter().all(|&r| r < n), "{rows:?}");
        assert!(without.work.per_pass.iter().all(|p| p.rows == n));
        let (_, inertia) = crate::kmeans::assign_and_inertia(x.view(), with.centroids.view());
        assert_eq!(inertia.to_bits(), with.inertia.to_bits());
    }

    /// Fits of many features start by guessing (see `super::guess`): the
    /// same fits as without bounds, separated or not, with duplicates, ties
    /// and empty clusters; on separated blobs the first pass proves most
    /// guesses and scores few rows against every centroid.
    #[test]
    fn guessed_first_assignments_give_the_same_fits() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
        let mut cheap_first_passes = 0;
        for case in 0..12 {
            let n = rng.gen_range(300..2500);
            let d = rng.gen_range(super::super::guess::MIN_FEATURES..70);
            let k = rng.gen_range(2..32);
            let spread = [0.5, 3.0, 12.0][case % 3];
            let (centres, x) = noisy_blobs(&mut rng, (n, d, k), spread, case % 4 == 1);
            // Near the centres (the guesses can be proved), or rows of the
            // data (some clusters without a centroid near).
            let mut init = if case % 3 == 0 {
                centres.mapv(|v| v + rng.gen_range(-0.5..0.5))
            } else {
                Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]])
            };
            if case % 4 == 2 {
                // A centroid nowhere near the data: an empty cluster to relocate.
                init.row_mut(k - 1).fill(1e3);
            }
            if case % 4 == 3 {
                // Two centroids in one place: every row near them is a tie.
                let first = init.row(0).to_owned();
                init.row_mut(1).assign(&first);
            }
            let what = format!("case {case}: n={n} d={d} k={k} spread={spread}");
            let with = fit_with_bounds(&x, &init, true);
            let without = fit_with_bounds(&x, &init, false);
            assert_same_fit(&with, &without, 1e-12, &format!("f64 {what}"));
            // The first pass: k distances a row without the guess.
            if with.work.per_pass[0].distances < (n * k / 2) as u64 {
                cheap_first_passes += 1;
            }
            let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
            let with = fit_with_bounds(&x32, &init32, true);
            let without = fit_with_bounds(&x32, &init32, false);
            assert_same_fit(&with, &without, 1e-6, &format!("f32 {what}"));
        }
        assert!(cheap_first_passes >= 3, "{cheap_first_passes}");
    }

    #[test]
    fn bounds_give_the_same_fits() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
        let mut settled = 0;
        for case in 0..24 {
            let n = rng.gen_range(1..3000);
            let d = rng.gen_range(1..24);
            let k = rng.gen_range(1..40).min(n);
            let spread = [0.5, 3.0, 8.0][case % 3];
            let (_, x) = noisy_blobs(&mut rng, (n, d, k), spread, case % 4 == 1);
            let mut init = Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]]);
            if case % 4 == 2 && k > 1 {
                // A centroid nowhere near the data: an empty cluster to relocate.
                init.row_mut(k - 1).fill(1e3);
            }
            let what = format!("case {case}: n={n} d={d} k={k}");
            let with = fit_with_bounds(&x, &init, true);
            let without = fit_with_bounds(&x, &init, false);
            settled += assert_same_fit(&with, &without, 1e-12, &format!("f64 {what}")) as usize;
            let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
            let with = fit_with_bounds(&x32, &init32, true);
            let without = fit_with_bounds(&x32, &init32, false);
            assert_same_fit(&with, &without, 1e-6, &format!("f32 {what}"));
        }
        assert!(
            settled >= 2,
            "fits whose last step the bounds settled: {settled}"
        );
    }

    /// Replays `Suspension` over a fit of `steps` steps whose bounded steps
    /// send `active(step)` of 100 rows to the kernel: the steps that ran
    /// with bounds, and those that set them.
    fn replay(steps: usize, active: impl Fn(usize) -> usize) -> (Vec<usize>, Vec<usize>) {
        let mut suspension = Suspension::default();
        let (mut bounded, mut set) = (vec![], vec![0]);
        let mut with_bounds = true;
        for step in 0..steps {
            if suspension.resumes(step) {
                assert!(!with_bounds);
                with_bounds = true;
                set.push(step);
            }
            if with_bounds {
                bounded.push(step);
                with_bounds = !suspension.suspends(step, active(step), 100);
            }
        }
        (bounded, set)
    }

    #[test]
    fn bounds_that_do_not_pay_are_suspended_and_tried_again_ever_later() {
        // Bounds that never pay: the step that sets them, `PATIENCE` steps
        // (`PATIENCE_AGAIN` once set again), then a wait that doubles.
        let (bounded, set) = replay(200, |_| 100);
        let (mut expected_set, mut expected_bounded) = (vec![0], vec![]);
        let mut wait = Suspension::FIRST_WAIT;
        let mut patience = Suspension::PATIENCE;
        while let Some(&last) = expected_set.last() {
            expected_bounded.extend(last..=last + patience);
            let next = last + patience + 1 + wait;
            if next >= 200 {
                break;
            }
            expected_set.push(next);
            (wait, patience) = (wait * 2, Suspension::PATIENCE_AGAIN);
        }
        assert_eq!(set, expected_set);
        assert!(set.len() <= 8, "{set:?}");
        assert_eq!(bounded, expected_bounded);
        // A third of the rows is not too many; one step in `PATIENCE` that
        // sends few rows keeps the bounds.
        assert_eq!(replay(50, |_| 33).0.len(), 50);
        let patience = Suspension::PATIENCE;
        let (bounded, set) = replay(50, |step| if step % patience == 0 { 10 } else { 90 });
        assert_eq!((bounded.len(), set), (50, vec![0]));
        // Suspended by the first steps' large moves, set again once, and
        // kept once they pay.
        let resumed = patience + 1 + Suspension::FIRST_WAIT;
        let (bounded, set) = replay(60, |step| if step <= resumed { 100 } else { 20 });
        assert_eq!(set, vec![0, resumed]);
        assert_eq!(bounded.len(), patience + 1 + (60 - resumed));
    }

    /// Fits of overlapping blobs, where the first steps send most rows to
    /// the kernel and later ones fewer: `Pruning::Auto` suspends the bounds
    /// and sets them again, with the same fit as without bounds.
    #[test]
    fn suspended_bounds_give_the_same_fits() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
        let mut resumed = 0;
        for case in 0..6 {
            let (n, d, k) = (rng.gen_range(2000..4000), rng.gen_range(16..40), 8);
            let (_, x) = noisy_blobs(&mut rng, (n, d, k), 15.0, case % 3 == 1);
            let init = Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]]);
            let auto = fit_pruned(&x, &init, Pruning::Auto);
            let never = fit_pruned(&x, &init, Pruning::Never);
            let what = format!(
                "case {case}: n={n} d={d} k={k}, bounds set {} times",
                auto.work.bounds_set
            );
            assert_same_fit(&auto, &never, 1e-12, &format!("f64 {what}"));
            assert_eq!(never.work.bounds_set, 0);
            resumed += usize::from(auto.work.bounds_set > 1);
            let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
            let auto = fit_pruned(&x32, &init32, Pruning::Auto);
            let never = fit_pruned(&x32, &init32, Pruning::Never);
            assert_same_fit(&auto, &never, 1e-6, &format!("f32 {what}"));
            resumed += usize::from(auto.work.bounds_set > 1);
        }
        assert!(resumed >= 4, "{resumed}");
    }

    #[test]
    fn inertia_from_cluster_sums_matches_the_data_or_declines() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
        let (n, d, k) = (3000, 7, 5);
        let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0));
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % k).collect();
        let stats_for = |previous: Array2<f64>| {
            let mut within = vec![0.0; k];
            let mut sums = vec![0.0; k * d];
            let mut counts = vec![0u64; k];
            for (i, row) in x.rows().into_iter().enumerate() {
                let j = labels[i];
                within[j] += (&row - &previous.row(j)).mapv(|v| v * v).sum();
                for f in 0..d {
                    sums[j * d + f] += row[f];
                }
                counts[j] += 1;
            }
            (ClusterStats { previous, within }, Totals { sums, counts })
        };
        let means = |totals: &Totals| {
            Array2::from_shape_fn((k, d), |(j, f)| {
                totals.sums[j * d + f] / totals.counts[j] as f64
            })
        };
        let direct = |c: &Array2<f64>| -> f64 {
            x.rows()
                .into_iter()
                .enumerate()
                .map(|(i, row)| (&row - &c.row(labels[i])).mapv(|v| v * v).sum())
                .sum()
        };
        // Centroids that moved about as far as the clusters' spread.
        let previous = Array2::from_shape_fn((k, d), |_| rng.gen_range(-2.0..2.0));
        let (stats, totals) = stats_for(previous);
        let c = means(&totals);
        let from_sums = stats
            .inertia_at(c.view(), &totals)
            .expect("well conditioned");
        let exact = direct(&c);
        assert!(
            (from_sums - exact).abs() <= 1e-12 * exact,
            "{from_sums} vs {exact}"
        );
        // Any centroids, not only the means.
        let shifted = c.mapv(|v| v + 0.25);
        let from_sums = stats
            .inertia_at(shifted.view(), &totals)
            .expect("well conditioned");
        assert!((from_sums - direct(&shifted)).abs() <= 1e-12 * direct(&shifted));
        // Centroids that start a million away: the subtraction would lose
        // the digits, so the data must be summed instead.
        let (stats, totals) = stats_for(Array2::from_elem((k, d), 1e6));
        assert_eq!(stats.inertia_at(means(&totals).view(), &totals), None);
    }

    #[test]
    fn bounds_settle_the_last_step_of_separated_blobs_without_reading_the_data() {
        // Tight blobs, one initial centroid in each: the second step changes
        // nothing, and the bounds can tell.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let (n, d, k) = (20_000, 8, 5);
        let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
        let x = Array2::from_shape_fn((n, d), |(i, f)| {
            centres[[i % k, f]] + rng.gen_range(-0.5..0.5)
        });
        let init = Array2::from_shape_fn((k, d), |(j, f)| x[[j, f]]);
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        assert_same_fit(&with, &without, 1e-12, "separated blobs");
        assert_eq!((with.n_iter, with.converged), (2, true));
        // One pass (the first step, which also checks the data) instead of two.
        assert_eq!(with.work.passes(), 1);
        assert_eq!(without.work.passes(), 2);
        let (labels, exact) = crate::kmeans::assign_and_inertia(x.view(), with.centroids.view());
        assert_eq!(labels, with.labels);
        assert!((with.inertia - exact).abs() <= 1e-12 * exact);
        // f32 runs in f32: the per-cluster sums carry its rounding.
        let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        let with = fit_with_bounds(&x32, &init32, true);
        assert_eq!(with.work.passes(), 1);
        let (_, exact) = crate::kmeans::assign_and_inertia(x32.view(), with.centroids.view());
        assert!((with.inertia - exact).abs() <= 1e-6 * exact);
    }

    #[test]
    fn bounds_hold_far_from_the_origin() {
        // Norms dwarf the distances: the kernel's cancellation error is large
        // (in f32 especially) and the bounds must account for it.
        let (x, init) = random_blobs(3000, 3, 6, 31);
        for offset in [1e3, 1e5] {
            let x = x.mapv(|v| v + offset);
            let init = init.mapv(|v| v + offset);
            let what = format!("offset {offset}");
            let with = fit_with_bounds(&x, &init, true);
            let without = fit_with_bounds(&x, &init, false);
            assert_same_fit(&with, &without, 1e-12, &what);
            let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
            let with = fit_with_bounds(&x32, &init32, true);
            let without = fit_with_bounds(&x32, &init32, false);
            assert_same_fit(&with, &without, 1e-6, &format!("f32, {what}"));
        }
    }

    #[test]
    fn bounds_skip_most_rows_once_clusters_settle() {
        let (x, init) = random_blobs(20_000, 4, 8, 5);
        let flat = x.as_slice().unwrap();
        let mut labels = vec![u32::MAX; x.nrows()];
        let mut bounds = Bounds::new(x.nrows(), 2.0 * 13.0);
        let mut centroids = init;
        let mut active = Vec::new();
        for _ in 0..6 {
            let step = lloyd_step(
                flat,
                4,
                centroids.view(),
                &mut labels,
                Some(&mut bounds),
                None,
                Extras::default(),
            )
            .unwrap();
            active.push(step.active);
            centroids = step.centroids;
        }
        assert_eq!(active[0], x.nrows(), "the first step runs every row");
        assert!(
            active[5] * 10 < x.nrows(),
            "rows through the kernel per step: {active:?}"
        );
        let with = fit_with_bounds(&x, &init_of(&x, 8), true);
        let without = fit_with_bounds(&x, &init_of(&x, 8), false);
        assert_same_fit(&with, &without, 1e-12, "settling blobs");
        assert_eq!(with.work.passes(), without.work.passes());
        assert!(with.work.distances() * 2 < without.work.distances());
    }

    #[test]
    fn empty_cluster_takes_the_farthest_point() {
        // Centroid 2 is far from everything and gets no point in the first
        // assignment; scikit-learn moves it to the point farthest from its
        // centroid, here (10, 0) (distance 9.5^2 from centroid 1).
        let x = array![[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [10.0, 0.0]];
        let init = array![[0.0, 0.0], [0.5, 0.0], [100.0, 100.0]];
        let fit = fit_from(&x, init);
        assert_eq!(fit.labels.to_vec(), vec![0, 0, 1, 2]);
        assert_eq!(fit.centroids, array![[0.05, 0.0], [1.0, 0.0], [10.0, 0.0]]);
        assert!((fit.inertia - 0.005).abs() < 1e-15);
    }

    #[test]
    fn results_do_not_depend_on_threads_or_repeat_runs() {
        let (x, _) = random_blobs(20_000, 5, 6, 11);
        let fit = |threads| {
            KMeansParams::new(6)
                .seed(5)
                .threads(threads)
                .check()
                .unwrap()
                .fit(x.view())
                .unwrap()
        };
        let one = fit(1);
        assert_eq!(one, fit(2));
        assert_eq!(one, fit(3));
        assert_eq!(one, fit(1));
    }

    #[test]
    fn f32_and_f64_agree_on_labels() {
        let (x, init) = random_blobs(5000, 4, 5, 3);
        let fit64 = fit_from(&x, init.clone());
        let fit32 = KMeansParams::new(5)
            .init(Init::Given(init.mapv(|v| v as f32)))
            .check()
            .unwrap()
            .fit(x.mapv(|v| v as f32).view())
            .unwrap();
        assert_eq!(fit32.labels, fit64.labels);
        assert!((fit32.inertia - fit64.inertia).abs() <= 1e-5 * fit64.inertia);
    }

    #[test]
    fn max_iter_stops_early_and_reassigns() {
        let (x, init) = random_blobs(3000, 2, 8, 4);
        let fit = KMeansParams::new(8)
            .init(Init::Given(init))
            .max_iter(1)
            .check()
            .unwrap()
            .fit(x.view())
            .unwrap();
        assert_eq!(fit.n_iter, 1);
        assert!(!fit.converged);
        // Labels match the final centroids after the last assignment.
        let (labels, inertia) = crate::kmeans::assign_and_inertia(x.view(), fit.centroids.view());
        assert_eq!(labels, fit.labels);
        assert_eq!(inertia, fit.inertia);
    }

    #[test]
    fn converged_inertia_from_the_last_step_is_the_separate_pass() {
        let (x, init) = random_blobs(5000, 3, 6, 12);
        let fit = fit_from(&x, init);
        assert!(fit.converged);
        let (labels, inertia) = crate::kmeans::assign_and_inertia(x.view(), fit.centroids.view());
        assert_eq!(labels, fit.labels);
        assert_eq!(inertia.to_bits(), fit.inertia.to_bits());
    }

    #[test]
    fn fortran_order_input_gives_the_same_fit() {
        let (x, init) = random_blobs(1000, 3, 4, 9);
        let fortran = x.t().as_standard_layout().into_owned().reversed_axes();
        assert!(!fortran.is_standard_layout());
        assert_eq!(
            fit_from(&x, init.clone()),
            fit_from(&fortran.to_owned(), init)
        );
    }

    #[test]
    fn data_errors() {
        let model = KMeansParams::<f64>::new(3).check().unwrap();
        assert!(matches!(
            model.fit(Array2::zeros((0, 2)).view()),
            Err(KMeansError::EmptyData { .. })
        ));
        assert!(matches!(
            model.fit(Array2::zeros((2, 2)).view()),
            Err(KMeansError::TooManyClusters { k: 3, n_samples: 2 })
        ));
        let mut x = Array2::<f64>::zeros((5, 2));
        x[[3, 1]] = f64::NAN;
        assert!(matches!(
            model.fit(x.view()),
            Err(KMeansError::NonFinite {
                row: 3,
                column: 1,
                ..
            })
        ));
        let wrong_width = KMeansParams::new(2)
            .init(Init::Given(Array2::<f64>::zeros((2, 3))))
            .check()
            .unwrap();
        assert!(matches!(
            wrong_width.fit(Array2::zeros((5, 2)).view()),
            Err(KMeansError::InitShape {
                got: (2, 3),
                expected: (2, 2)
            })
        ));
    }

    #[test]
    fn non_finite_data_is_found_in_the_first_step_with_given_centroids() {
        non_finite_data_is_found_in(random_blobs(5000, 3, 4, 2));
    }

    /// The same where the first step guesses (d >= 32): separated blobs,
    /// whose rows before the bad one are proved and summed row by row.
    #[test]
    fn non_finite_data_is_found_where_the_first_step_guesses() {
        let (x, init) = random_blobs(5000, 40, 4, 2);
        let means = fit_with_bounds(&x, &init, true).centroids;
        // From the means, the first pass proves the guesses: fewer
        // distances than the kernel's k a row (one a row, the guesses'
        // scores, and one a row for the per-cluster sums).
        let fit = fit_with_bounds(&x, &means, true);
        assert!(fit.work.per_pass[0].distances < 5000 * 4, "{:?}", fit.work);
        // The step's check finds the data's largest magnitude in the rows
        // it proves (the bounds' error depends on it).
        let step = lloyd_step(
            x.as_slice().unwrap(),
            40,
            means.view(),
            &mut vec![u32::MAX; 5000],
            Some(&mut Bounds::new(5000, f64::INFINITY)),
            None,
            Extras {
                check_data: true,
                ..Extras::default()
            },
        )
        .unwrap();
        assert_eq!(step.active, 0);
        let max_abs = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_eq!(step.data_max_abs, Some(max_abs));
        non_finite_data_is_found_in((x, means));
    }

    fn non_finite_data_is_found_in((x, init): (Array2<f64>, Array2<f64>)) {
        let (n, d) = x.dim();
        let k = init.nrows();
        for (row, column, value) in [
            (0, 0, f64::NAN),
            (2777, 2, f64::INFINITY),
            (n - 1, d - 1, f64::NAN),
            (130, d / 2, f64::NEG_INFINITY),
        ] {
            let mut bad = x.clone();
            bad[[row, column]] = value;
            for pruning in [Pruning::Always, Pruning::Never] {
                let err = KMeansParams::new(k)
                    .init(Init::Given(init.clone()))
                    .pruning(pruning)
                    .check()
                    .unwrap()
                    .fit(bad.view())
                    .unwrap_err();
                assert!(
                    matches!(err, KMeansError::NonFinite { what: "data", row: r, column: c, .. } if r == row && c == column),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn tolerance_stops_on_small_shifts() {
        let (x, init) = random_blobs(4000, 2, 8, 8);
        let exact = fit_from(&x, init.clone());
        let loose = KMeansParams::new(8)
            .init(Init::Given(init))
            .tol(1e-1)
            .check()
            .unwrap()
            .fit(x.view())
            .unwrap();
        assert!(loose.n_iter <= exact.n_iter);
        assert!(loose.inertia >= exact.inertia * (1.0 - 1e-12));
    }

    #[test]
    fn identical_points_give_a_valid_fit_with_one_distinct_cluster() {
        let x = Array2::from_elem((50, 3), 2.5);
        let fit = KMeansParams::new(4).check().unwrap().fit(x.view()).unwrap();
        assert_eq!(fit.inertia, 0.0);
        assert!(fit.centroids.iter().all(|&v| v == 2.5));
        assert_eq!(fit.distinct_clusters(), 1);
        // The centroids did not move: the tolerance rule (shift <= 0) ends
        // the loop after one step, as in scikit-learn.
        assert_eq!(fit.n_iter, 1);
        assert!(fit.converged, "unmoved centroids are a fixed point");
    }

    #[test]
    fn fewer_distinct_points_than_k() {
        let x = array![[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]];
        let fit = KMeansParams::new(3).check().unwrap().fit(x.view()).unwrap();
        assert_eq!(fit.inertia, 0.0);
        assert_eq!(fit.distinct_clusters(), 2);
    }

    #[test]
    fn k_equal_to_n_and_a_single_sample() {
        let x = array![[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]];
        let fit = KMeansParams::new(3).check().unwrap().fit(x.view()).unwrap();
        assert_eq!(fit.inertia, 0.0);
        assert_eq!(fit.distinct_clusters(), 3);
        let one = array![[7.0, -1.0]];
        let fit = KMeansParams::new(1)
            .check()
            .unwrap()
            .fit(one.view())
            .unwrap();
        assert_eq!(fit.centroids, one);
        assert_eq!(fit.inertia, 0.0);
        assert_eq!(fit.n_iter, 1);
        assert!(fit.converged);
    }

    #[test]
    fn huge_and_tiny_magnitudes_neither_overflow_nor_underflow() {
        let (x, init) = random_blobs(2000, 3, 4, 21);
        let reference = fit_from(&x, init.clone());
        for scale in [1e150, 1e-150, 1e300, 1e-300] {
            let fit = fit_from(&x.mapv(|v| v * scale), init.mapv(|v| v * scale));
            assert_eq!(fit.labels, reference.labels, "scale {scale}");
            // The inertia itself is representable at 1e150 and 1e-150 (not at 1e300).
            let expected = reference.inertia * scale * scale;
            if expected.is_normal() {
                assert!(
                    (fit.inertia - expected).abs() <= 1e-9 * expected,
                    "scale {scale}"
                );
            }
            for (a, b) in fit.centroids.iter().zip(&reference.centroids) {
                assert!(
                    (a / scale - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "scale {scale}"
                );
            }
        }
        // f32 overflows far sooner: 1e20 squared is past f32::MAX.
        let x32 = x.mapv(|v| (v * 1e20) as f32);
        let fit = KMeansParams::new(4)
            .init(Init::Given(init.mapv(|v| (v * 1e20) as f32)))
            .check()
            .unwrap()
            .fit(x32.view())
            .unwrap();
        assert_eq!(fit.labels, reference.labels);
        assert!(fit.inertia.is_finite());
    }

    #[test]
    fn subnormal_data_gives_the_fit_of_the_same_data_scaled_up() {
        let (x, init) = random_blobs(600, 3, 4, 31);
        let reference = fit_from(&x, init.clone());
        // Near 1e-320 an f64 keeps a few bits: compare with the reference fit
        // of the very values held, scaled up exactly.
        let tiny = 2f64.powi(-1066);
        let x_tiny = x.mapv(|v| v * tiny);
        let init_tiny = init.mapv(|v| v * tiny);
        assert!(x_tiny.iter().all(|v| *v == 0.0 || v.is_subnormal()));
        let held = fit_from(&x_tiny.mapv(|v| v / tiny), init_tiny.mapv(|v| v / tiny));
        let fit = fit_from(&x_tiny, init_tiny);
        assert!(fit.centroids.iter().all(|v| v.is_finite()));
        assert_eq!(fit.labels, held.labels);
        assert_eq!(fit.n_iter, held.n_iter);
        for (a, b) in fit.centroids.iter().zip(&held.centroids) {
            assert_eq!(*a, b * tiny, "centroids are the held fit's, scaled back");
        }
        assert_eq!(fit.inertia, 0.0, "1e-640 rounds to zero in f64");
        assert!(
            held.labels
                .iter()
                .zip(&reference.labels)
                .filter(|(a, b)| a != b)
                .count()
                < 60
        );
        // f32 subnormals (1e-42) likewise.
        let tiny32 = 2f64.powi(-140);
        let x32 = x.mapv(|v| (v * tiny32) as f32);
        let init32 = init.mapv(|v| (v * tiny32) as f32);
        let held32 = fit_from(
            &x32.mapv(|v| (v as f64 / tiny32) as f32),
            init32.mapv(|v| (v as f64 / tiny32) as f32),
        );
        let fit32 = fit_from(&x32, init32);
        assert!(fit32.centroids.iter().all(|v| v.is_finite()));
        assert_eq!(fit32.labels, held32.labels);
        assert!(fit32.inertia.is_finite() && fit32.inertia > 0.0);
    }

    #[test]
    fn a_centroid_beyond_reach_gives_the_same_fit_wherever_it_lies() {
        let (x, init) = random_blobs(900, 4, 5, 41);
        // Centroid 2 lies so far out that no row can be nearest to it: its
        // cluster is empty at once and takes the farthest sample, wherever
        // it was. At 1e6 the fit needs no scaling.
        let direction = ndarray::array![0.6, -0.8, 0.3, 0.1];
        let at = |distance: f64| {
            let mut moved = init.clone();
            moved.row_mut(2).assign(&direction.mapv(|v| v * distance));
            moved
        };
        let reference = fit_from(&x, at(1e6));
        assert!(reference.n_iter > 2);
        for distance in [1e160, 1e200, 1e300, -1e300, f64::MAX / 2.0] {
            let fit = fit_from(&x, at(distance));
            assert_eq!(fit.labels, reference.labels, "at {distance:e}");
            assert_eq!(fit.n_iter, reference.n_iter, "at {distance:e}");
            assert!(fit.converged);
            let gap = (fit.inertia - reference.inertia).abs() / reference.inertia;
            assert!(gap <= 1e-12, "inertia off by {gap:e} at {distance:e}");
            for (a, b) in fit.centroids.iter().zip(&reference.centroids) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "at {distance:e}");
            }
        }
        // Data near 1e-300 with a centroid at 1: the same, scaled.
        let small = 2f64.powi(-1000);
        let mut far = init.mapv(|v| v * small);
        far.row_mut(2).assign(&direction);
        let fit = fit_from(&x.mapv(|v| v * small), far);
        assert_eq!(fit.labels, reference.labels);
        assert_eq!(fit.n_iter, reference.n_iter);
        for (a, b) in fit.centroids.iter().zip(&reference.centroids) {
            assert!((a / small - b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
    }

    #[test]
    fn an_inertia_beyond_the_float_range_is_infinite_not_nan() {
        let (x, init) = random_blobs(500, 3, 4, 51);
        let reference = fit_from(&x, init.clone());
        let fit = fit_from(&x.mapv(|v| v * 1e300), init.mapv(|v| v * 1e300));
        assert_eq!(fit.labels, reference.labels);
        assert!(fit.centroids.iter().all(|v| v.is_finite()));
        assert_eq!(fit.inertia, f64::INFINITY);
    }
}
