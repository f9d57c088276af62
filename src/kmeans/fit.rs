//! The Lloyd loop: the fit on checked parameters.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::bounds::{rows_worked, worthwhile, Bounds};
use super::chunks::{in_pool_of, on_calling_thread};
use super::error::{KMeansError, Result};
use super::float::Float;
use super::init::kmeans_plusplus;
use super::params::{Init, KMeans, Pruning};
use super::passes::{assign, inertia};
use super::step::{lloyd_step, Extras, StepBuffers, Totals};
use super::suspension::Suspension;
use super::validate::{check_not_empty, finite_max_abs, locate_non_finite};

/// Data of at most this many rows (two chunks) is fitted on the calling
/// thread rather than handed to a pool (see [`KMeans::fit`]): handing such
/// a fit over and waking the caller after cost more than the second thread
/// saved, up to 100 features and 30 clusters (measurements in
/// `docs/tuning.md`).
pub const CALLING_THREAD_MAX_ROWS: usize = 1024;

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
    ///
    /// A model with a thread count of its own ([`threads`]) fits in its
    /// pool, or in the caller's when that is a rayon pool of as many threads
    /// (a pool the caller is one of, as OpenMP's calling thread is of its
    /// team, spares the hand-off); one without fits in the current rayon
    /// pool. Fits where one thread is asked for or `x` has at most
    /// [`CALLING_THREAD_MAX_ROWS`] rows (and the caller is in no pool, for a
    /// model without a thread count) run on the calling thread.
    ///
    /// [`threads`]: super::KMeansParams::threads
    pub fn fit(&self, x: ArrayView2<F>) -> Result<KMeansFit<F>> {
        let small = x.nrows() <= CALLING_THREAD_MAX_ROWS;
        match self.threads() {
            Some(threads) if threads == 1 || small => {
                on_calling_thread(|| self.fit_in_current_pool(x))
            }
            Some(threads) if in_pool_of(threads) => self.fit_in_current_pool(x),
            Some(threads) => self
                .own_pool(threads)?
                .install(|| self.fit_in_current_pool(x)),
            None if small && rayon::current_thread_index().is_none() => {
                on_calling_thread(|| self.fit_in_current_pool(x))
            }
            None => self.fit_in_current_pool(x),
        }
    }

    /// Starts the threads this model's fits from this thread use, which its
    /// first fit would start otherwise: its pool (unless the caller's pool
    /// serves), and rayon's global pool, whose size a fit on the calling
    /// thread reads (it runs no task there). For callers that time or
    /// measure fits.
    pub fn start_threads(&self) -> Result<()> {
        if let Some(threads) = self.threads().filter(|&t| !in_pool_of(t)) {
            self.own_pool(threads)?;
        }
        rayon::current_num_threads();
        Ok(())
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
                kmeans_plusplus(x_contiguous.view(), k, self.seed())
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
        let mut bounds = use_bounds
            .then(|| Bounds::for_rows(n, d, data_max_abs.map_or(f64::INFINITY, row_norm_max)));
        // The rows' squared norms the bounds kept, while they are suspended.
        let mut row_norms = Vec::new();
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
        let mut buffers = StepBuffers::default();
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
            if suspension.resumes(iteration, last_changed, n) {
                let row_norm_max = data_max_abs.map_or(f64::INFINITY, row_norm_max);
                let norms = std::mem::take(&mut row_norms);
                bounds = Some(Bounds::with_norms(n, row_norm_max, norms));
                totals_now = None;
                work.bounds_set += 1;
            }
            // Summing distances in a plain pass costs one per row: done where
            // the step may well be the last (the second, the usual last on
            // separated blobs, or after a step that moved at most one label
            // in 100000), and only until a label moves (see `Step::inertia`).
            // A long fit instead sums its inertia once at the end, as does a
            // fit with bounds: there the sums would make the step read every
            // row, which the bounds mostly spare.
            let near_the_end = last_changed <= n / 100_000;
            let extras = Extras {
                check_data: iteration == 0 && data_max_abs.is_none(),
                inertia: bounds.is_none() && (iteration == 1 || near_the_end),
                // With bounds, the step after this one may be settled by
                // the bounds alone; it needs these sums for the inertia
                // (which the step drops where its guesses fail).
                within: bounds.is_some() && iteration == 0,
            };
            let previous_centroids = extras.within.then(|| centroids.clone());
            let step = lloyd_step(
                flat,
                &mut buffers,
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
            let Some(mut step) = step else {
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
                chunks: std::mem::take(&mut step.chunks),
            });
            // Bounds that keep sending many rows to the kernel only cost.
            let worked = rows_worked(d, step.active, step.rows_read);
            if self.pruning() == Pruning::Auto
                && bounds.is_some()
                && suspension.suspends(iteration, worked, n)
            {
                row_norms = bounds.take().map_or_else(Vec::new, Bounds::into_norms);
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
        // The rows' squared norms the bounds kept, set or suspended.
        let kept_norms = bounds.map_or(row_norms, Bounds::into_norms);
        if !converged {
            let (distances, f32_distances) = assign(flat, d, centroids.view(), &mut labels);
            work.push_pass(distances, f32_distances, n as u64);
        }
        // A converged fit's labels are those of the last step's sums.
        let from_norms = || {
            let totals = totals.as_ref().filter(|_| converged)?;
            inertia_from_norms(&kept_norms, &labels, centroids.view(), totals)
        };
        let mut inertia = final_inertia.or_else(from_norms).unwrap_or_else(|| {
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

/// A step's view of its clusters: with the step's [`Totals`], enough for
/// the inertia of its labels against any centroids, without the data.
pub(super) struct ClusterStats<F> {
    /// The centroids the step assigned against, `(k, n_features)`.
    pub(super) previous: Array2<F>,
    /// Per cluster, `sum ||x_i - previous_j||^2` over its rows.
    pub(super) within: Vec<f64>,
}

impl<F: Float> ClusterStats<F> {
    /// `sum_i ||x_i - c_{label_i}||^2` for the step's labels and `centroids`,
    /// given the step's `totals`, through `sum ||x - c||^2 = within - 2 (c -
    /// p).(sum x - n p) + n ||c - p||^2` with `p` the centroids assigned
    /// against. `None` when the
    /// rounding of that sum could exceed 1e-12 of it (a centroid that moved
    /// far compared with its cluster's spread, or far from the origin): the
    /// inertia is then summed from the data.
    pub(super) fn inertia_at(&self, centroids: ArrayView2<F>, totals: &Totals) -> Option<f64> {
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

/// `sum_i ||x_i - c_{label_i}||^2` without the data, from the rows' kept
/// squared norms (`norms`, NaN where not known) and the per-cluster sums and
/// counts of the same labels: `sum_j q_j - 2 c_j.s_j + n_j ||c_j||^2`, with
/// `q_j` the sum of cluster `j`'s squared norms. `None` for `f32` data
/// (whose sums carry `f32`'s rounding), where a norm is not known, or where
/// the rounding of that sum could exceed 1e-12 of it (data far from the
/// origin compared with its spread): the inertia is then summed from the
/// data.
pub(super) fn inertia_from_norms<F: Float>(
    norms: &[f64],
    labels: &[u32],
    centroids: ArrayView2<F>,
    totals: &Totals,
) -> Option<f64> {
    if std::mem::size_of::<F>() != 8 || norms.len() != labels.len() {
        return None;
    }
    let (k, d) = centroids.dim();
    let mut squares = vec![0.0; k];
    for (&norm, &j) in norms.iter().zip(labels) {
        squares[j as usize] += norm;
    }
    let (mut total, mut magnitude) = (0.0, 0.0);
    for (j, centroid) in centroids.rows().into_iter().enumerate() {
        let n = totals.counts[j] as f64;
        let (mut cross, mut reach, mut square) = (0.0, 0.0, 0.0);
        for (&c, &sum) in centroid.iter().zip(&totals.sums[j * d..(j + 1) * d]) {
            let c = c.as_f64();
            cross += c * sum;
            reach += (c * sum).abs();
            square += c * c;
        }
        total += squares[j] - 2.0 * cross + n * square;
        magnitude += squares[j] + 2.0 * reach + n * square;
    }
    // Each cluster's sums run over its rows: their rounding grows with
    // the square root of the rows as well as with the features.
    let terms = d as f64 + 8.0 + (labels.len() as f64).sqrt();
    let rounding = terms * f64::EPSILON * magnitude;
    (total > 0.0 && rounding <= 1e-12 * total || magnitude == 0.0).then_some(total)
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
