//! The protocol every contender runs under: one problem per scenario (the
//! cached data and shared initial centroids), fits prepared outside timing,
//! memory measured on an extra untimed fit, and quality recomputed by us.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ndarray::{Array1, ArrayView2};

use crate::contenders::{Contender, Dtype, FitOutput, Problem, Rule, Runtime};
use crate::data::{BlobSpec, CacheOutcome, DataCache, Start};
use crate::error::Result;
use crate::quality::{adjusted_rand_index, assign_and_inertia, sampled_silhouette};
use crate::results::MemoryFigures;

/// The k-means++ seed of the shared initial centroids.
pub const INIT_SEED: u64 = 0;
/// Rows in the silhouette subsample.
pub const SILHOUETTE_SAMPLES: usize = 1000;
/// The silhouette subsample's seed.
pub const SILHOUETTE_SEED: u64 = 0;

/// A scenario ready to run: the problem every contender gets, and the truth.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// What generated the data.
    pub spec: BlobSpec,
    /// How the shared initial centroids were chosen.
    pub start: Start,
    /// Data, initial centroids, cap on iterations, threads.
    pub problem: Problem,
    /// The blob each sample came from.
    pub true_labels: Arc<Array1<u32>>,
    /// The iterations our exact Lloyd fit needs, computed once when a
    /// contender with a fixed iteration count first asks.
    exact_iterations: OnceLock<std::result::Result<usize, String>>,
}

impl ScenarioRun {
    /// Loads (or generates) the data of `spec` and its shared k-means++
    /// initial centroids.
    pub fn load(
        cache: &DataCache,
        spec: &BlobSpec,
        max_iter: usize,
        threads: usize,
    ) -> Result<(Self, CacheOutcome)> {
        Self::load_with(cache, spec, Start::KMeansPlusPlus, max_iter, threads)
    }

    /// [`ScenarioRun::load`] with initial centroids chosen by `start`.
    pub fn load_with(
        cache: &DataCache,
        spec: &BlobSpec,
        start: Start,
        max_iter: usize,
        threads: usize,
    ) -> Result<(Self, CacheOutcome)> {
        let (blobs, outcome) = cache.load_or_generate(spec)?;
        let init = cache.initial_centroids(&blobs, start, INIT_SEED)?;
        let run = ScenarioRun {
            spec: *spec,
            start,
            problem: Problem {
                x: Arc::new(blobs.x),
                init: Arc::new(init),
                max_iter,
                threads,
                fixed_iterations: None,
                x32: None,
            },
            true_labels: Arc::new(blobs.labels),
            exact_iterations: OnceLock::new(),
        };
        Ok((run, outcome))
    }

    /// The same scenario with its data handed over as `dtype`: for float32,
    /// the data cast once (the initial centroids are cast by each contender;
    /// inertia stays recomputed in f64 on the f64 data).
    pub fn with_dtype(mut self, dtype: Dtype) -> Self {
        self.problem.x32 = match dtype {
            Dtype::F32 => Some(Arc::new(self.problem.x.mapv(|v| v as f32))),
            Dtype::F64 => None,
        };
        self
    }

    /// The problem as contender `name` gets it: with the exact iteration
    /// count where its rule runs a fixed number (computed once per scenario,
    /// outside timing, by our k-means from the same start).
    pub fn problem_for(&self, name: &str) -> Result<Problem> {
        let mut problem = self.problem.clone();
        if let Some(Rule::FixedIterations { .. }) = crate::contenders::entry(name).map(|e| e.rule) {
            let iterations = self
                .exact_iterations
                .get_or_init(|| exact_iterations(&self.problem).map_err(|e| e.to_string()))
                .clone()
                .map_err(|reason| crate::contenders::contender_error(name, reason))?;
            problem.fixed_iterations = Some(iterations);
        }
        Ok(problem)
    }
}

/// The iterations exact Lloyd needs on `problem` (no label changed, or the cap).
fn exact_iterations(problem: &Problem) -> Result<usize> {
    problem.validate()?;
    let fit = crate::kmeans::KMeansParams::new(problem.init.nrows())
        .init(crate::kmeans::Init::Given(problem.init.as_ref().clone()))
        .max_iter(problem.max_iter)
        .threads(problem.threads)
        .check()?
        .fit(problem.x.view())?;
    Ok(fit.n_iter)
}

/// One untimed fit measuring resident and allocator peaks, then, for Python
/// contenders, one more under `tracemalloc` (which slows what it traces).
pub fn measure_memory(contender: &mut dyn Contender) -> Result<(FitOutput, MemoryFigures)> {
    let ((fit, alloc_peak), resident_peak) = crate::memory::peak_resident_above_baseline(|| {
        crate::alloc::peak_above_baseline(|| contender.fit())
    });
    let fit = fit?;
    let in_python =
        crate::contenders::entry(contender.name()).map(|e| e.runtime()) == Some(Runtime::Python);
    let traced_peak = contender.traced_peak_bytes()?;
    Ok((
        fit,
        MemoryFigures {
            alloc_peak_bytes: if in_python { None } else { alloc_peak },
            traced_peak_bytes: traced_peak,
            resident_peak_bytes: resident_peak,
            ..MemoryFigures::default()
        },
    ))
}

/// Quality of a fit, recomputed from its centroids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// `sum_i min_j ||x_i - c_j||^2`.
    pub inertia: f64,
    /// Adjusted Rand index of the nearest-centroid labels against the truth.
    pub ari: f64,
    /// Mean silhouette on a fixed-seed subsample.
    pub silhouette: Option<f64>,
}

/// Scores `centroids` on `x`: inertia and labels by our own assignment.
pub fn quality(
    x: ArrayView2<f64>,
    true_labels: &Array1<u32>,
    centroids: ArrayView2<f64>,
) -> Quality {
    let (labels, inertia) = assign_and_inertia(x, centroids);
    Quality {
        inertia,
        ari: adjusted_rand_index(true_labels.view(), labels.view()),
        silhouette: sampled_silhouette(x, labels.view(), SILHOUETTE_SAMPLES, SILHOUETTE_SEED),
    }
}

/// Fills `rel_inertia_diff` and the inertia check of every record of one
/// scenario. The reference is the lowest inertia among the exact-Lloyd
/// contenders (see [`Rule::makes_reference`]); a contender passes when its
/// inertia is at most its rule's tolerance above the reference (a different
/// rule landing lower is not a failure, and shows as a negative difference).
pub fn check_inertia(records: &mut [crate::results::Record]) {
    use crate::results::Check;
    let makes_reference =
        |name: &str| crate::contenders::entry(name).is_some_and(|e| e.rule.makes_reference());
    let reference = records
        .iter()
        .filter(|r| makes_reference(&r.contender))
        .filter_map(|r| r.inertia)
        .reduce(f64::min)
        .or_else(|| records.iter().filter_map(|r| r.inertia).reduce(f64::min));
    let Some(reference) = reference else { return };
    for r in records.iter_mut() {
        if let Some(inertia) = r.inertia {
            let gap = crate::quality::relative_gap(inertia, reference);
            let tolerance = crate::suite::inertia_tolerance(&r.family, &r.contender);
            r.rel_inertia_diff = Some(gap);
            r.inertia_tolerance = Some(tolerance);
            r.inertia_check = Some(if gap <= tolerance {
                Check::Pass
            } else {
                Check::Fail
            });
        }
    }
}

/// The untimed part of a contender's run: a memory fit, then quality of its
/// centroids and its environment, into `record`.
pub fn measure_untimed(
    contender: &mut dyn Contender,
    run: &ScenarioRun,
    record: &mut crate::results::Record,
) -> Result<()> {
    let (fit, memory) = measure_memory(contender)?;
    let quality = quality(run.problem.x.view(), &run.true_labels, fit.centroids.view());
    record.n_iter = Some(fit.n_iter);
    record.work = crate::results::Passes(fit.work.clone());
    record.inertia = Some(quality.inertia);
    record.ari = Some(quality.ari);
    record.silhouette = quality.silhouette;
    record.memory = memory;
    record.environment.extend(contender.environment());
    Ok(())
}

/// One contender on one scenario under the protocol, from its creation to
/// its record: the one runner of the bench and `compare`.
///
/// [`Trial::start`] creates the contender, prepares it, lets it inspect
/// itself and warms it up with one fit; [`Trial::time`] times fits (the
/// caller decides how many, and when: Criterion or a plain loop);
/// [`Trial::finish`] runs the untimed memory fit, scores the centroids and
/// returns the record. An unavailable contender gives a `skipped` record, an
/// error or a panic inside a library a `failed` one; the other contenders
/// still run.
pub struct Trial<'a> {
    run: &'a ScenarioRun,
    contender: Option<Box<dyn Contender>>,
    record: crate::results::Record,
    /// Every timing call: fits timed and their total time.
    calls: Vec<(u64, Duration)>,
}

impl<'a> Trial<'a> {
    /// Starts `record.contender` on `run`; `record` holds the scenario and
    /// any environment the caller adds.
    pub fn start(run: &'a ScenarioRun, mut record: crate::results::Record) -> Self {
        use crate::results::Status;
        record
            .environment
            .insert("data.dtype".into(), run.problem.dtype().name().into());
        let contender = match crate::contenders::create(&record.contender) {
            Ok(mut contender) => {
                let name = record.contender.clone();
                match contained(|| {
                    contender.prepare(&run.problem_for(&name)?)?;
                    contender.inspect()?;
                    contender.fit().map(|_| ())
                }) {
                    Ok(()) => Some(contender),
                    Err(reason) => {
                        record.status = Status::Failed;
                        record.reason = Some(reason);
                        None
                    }
                }
            }
            Err(unavailable) => {
                record.status = Status::Skipped;
                record.reason = Some(unavailable.reason);
                None
            }
        };
        Trial {
            run,
            contender,
            record,
            calls: Vec::new(),
        }
    }

    /// The scenario this trial runs.
    pub fn run(&self) -> &'a ScenarioRun {
        self.run
    }

    /// The record so far (its status says whether the contender runs).
    pub fn record(&self) -> &crate::results::Record {
        &self.record
    }

    /// Times `fits` fits in a row and returns their total time; a failure
    /// stops the trial (and returns a nominal nanosecond, so a harness that
    /// insists on a time gets one; the record says failed).
    pub fn time(&mut self, fits: u64) -> Duration {
        let Some(contender) = self.contender.as_mut() else {
            return Duration::from_nanos(1);
        };
        let start = Instant::now();
        let mut outcome = Ok(());
        for _ in 0..fits {
            outcome = contained(|| contender.fit().map(|_| ()));
            if outcome.is_err() {
                break;
            }
        }
        let elapsed = start.elapsed();
        match outcome {
            Ok(()) => self.calls.push((fits, elapsed)),
            Err(reason) => self.fail(reason),
        }
        elapsed
    }

    fn fail(&mut self, reason: String) {
        self.contender = None;
        self.record.status = crate::results::Status::Failed;
        self.record.reason = Some(reason);
        self.record.sample_seconds.clear();
    }

    /// The record: the mean fit time of each of the last `samples` timing
    /// calls as its samples (with the fits per call), then the untimed part.
    pub fn finish(mut self, samples: usize) -> crate::results::Record {
        let Some(mut contender) = self.contender.take() else {
            return self.record;
        };
        let measured = &self.calls[self.calls.len().saturating_sub(samples)..];
        self.record.sample_seconds = measured
            .iter()
            .map(|(fits, d)| d.as_secs_f64() / *fits as f64)
            .collect();
        self.record.environment.insert(
            "bench.fits_per_sample".into(),
            measured
                .iter()
                .map(|(fits, _)| fits.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        );
        let run = self.run;
        let record = &mut self.record;
        if let Err(reason) = contained(|| measure_untimed(contender.as_mut(), run, record)) {
            self.fail(reason);
        }
        self.record
    }
}

/// Runs `f`, turning its error or a panic inside a library into a message.
fn contained(f: impl FnOnce() -> Result<()>) -> std::result::Result<(), String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => Err(format!("panicked: {}", panic_message(&panic))),
    }
}

/// Runs contender `name` on `run` under the protocol with `timed` fits
/// after the warm-up, each its own sample: [`Trial`] in a plain loop.
pub fn run_once(
    name: &str,
    family: &str,
    run: &ScenarioRun,
    timed: usize,
) -> crate::results::Record {
    let record = crate::results::Record::new(
        family,
        run.spec.scenario,
        run.spec.std,
        name,
        run.problem.threads,
    );
    let mut trial = Trial::start(run, record);
    for _ in 0..timed {
        trial.time(1);
    }
    trial.finish(timed)
}

/// The message of a caught panic.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
