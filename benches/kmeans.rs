//! The benchmark suite: every scenario, every contender.
//!
//! Ids are `kmeans/{n}x{d}/k{k}/{impl}` (unit-spread blobs, the study's
//! sweep) and `kmeans-overlap/{n}x{d}/k{k}/{impl}` (overlapping blobs that
//! need tens of iterations). One Criterion group per scenario, one function
//! per contender, so Criterion draws a comparison per scenario.
//!
//! Per bench, outside timing: the scenario's cached data and shared initial
//! centroids are loaded once, the contender is prepared and warmed up with
//! one fit. Every timed fit is recorded by us (`iter_custom`); then one more,
//! untimed fit measures memory, and the inertia of the contender's centroids
//! is recomputed and checked against the scenario's best. Records go to
//! `target-reports/results.jsonl` and `target-reports/csv/`, and the report
//! is redrawn at the end.
//!
//! Knobs (environment or `.env`): `KMEANS_BENCH_PRESET=quick|full` (default
//! full), `KMEANS_BENCH_THREADS` (default every core).

use std::cell::RefCell;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use pythonvsrust_kmeans::alloc::CountingAllocator;
use pythonvsrust_kmeans::data::DataCache;
use pythonvsrust_kmeans::impls::{create, Contender, NAMES};
use pythonvsrust_kmeans::kmeans::DEFAULT_MAX_ITER;
use pythonvsrust_kmeans::protocol::{check_inertia, measure_untimed, panic_message, ScenarioRun};
use pythonvsrust_kmeans::report::write_report;
use pythonvsrust_kmeans::results::{append_records, report_dir, Check, Record, Status};
use pythonvsrust_kmeans::suite::{self, scenarios};
use pythonvsrust_kmeans::{environment, floor};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Preset {
    /// Ten samples, short windows: every contender and check runs (CI).
    Quick,
    /// Ten samples, longer windows: the numbers of the report.
    Full,
}

impl Preset {
    fn from_env() -> Self {
        match std::env::var("KMEANS_BENCH_PRESET").as_deref() {
            Ok("quick") => Preset::Quick,
            Ok("full") | Err(_) => Preset::Full,
            Ok(other) => {
                eprintln!("warning: unknown KMEANS_BENCH_PRESET '{other}', using full");
                Preset::Full
            }
        }
    }

    /// Sample size and windows. Ten samples (Criterion's least) keep the
    /// million-row scenarios within minutes; flat sampling (the same number
    /// of fits per sample) suits fits of milliseconds and up; fewer bootstrap
    /// resamples than Criterion's 100,000 keep its analysis from dominating
    /// short benches.
    fn configure(self, group: &mut BenchmarkGroup<WallTime>) {
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        match self {
            Preset::Quick => {
                group
                    .warm_up_time(Duration::from_millis(20))
                    .measurement_time(Duration::from_millis(100));
            }
            Preset::Full => {
                group
                    .warm_up_time(Duration::from_millis(500))
                    .measurement_time(Duration::from_secs(3));
            }
        }
    }
}

/// The filter given on the command line (`cargo bench -- FILTER`), matched
/// as Criterion matches it, so only selected scenarios load data.
struct Selection {
    filter: Option<regex::Regex>,
    exact: Option<String>,
    list: bool,
}

impl Selection {
    fn from_args() -> Self {
        const WITH_VALUE: [&str; 17] = [
            "-c",
            "--color",
            "--colour",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--format",
            "--profile-time",
            "--load-baseline",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--plotting-backend",
        ];
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut positional = None;
        let mut skip_next = false;
        for arg in &args {
            if skip_next {
                skip_next = false;
            } else if WITH_VALUE.contains(&arg.as_str())
                || [
                    "--confidence-level",
                    "--significance-level",
                    "--output-format",
                ]
                .contains(&arg.as_str())
            {
                skip_next = true;
            } else if !arg.starts_with('-') && positional.is_none() {
                positional = Some(arg.clone());
            }
        }
        let exact = args.iter().any(|a| a == "--exact");
        Selection {
            filter: positional
                .as_ref()
                .filter(|_| !exact)
                .and_then(|p| regex::Regex::new(p).ok()),
            exact: positional.filter(|_| exact),
            list: args.iter().any(|a| a == "--list"),
        }
    }

    fn selects(&self, id: &str) -> bool {
        match (&self.filter, &self.exact) {
            (Some(re), _) => re.is_match(id),
            (_, Some(exact)) => exact == id,
            _ => true,
        }
    }
}

/// The scenarios in run order: the sweep, then the overlapping family.
/// One contender's state inside its bench: created, prepared and warmed up
/// on the first call, then timed; every `iter_custom` call's mean fit time.
struct BenchState {
    contender: Box<dyn Contender>,
    calls: Vec<(u64, Duration)>,
    error: Option<String>,
}

fn main() {
    dotenvy::dotenv().ok();
    let preset = Preset::from_env();
    let threads = match pythonvsrust_kmeans::cli::thread_count(None) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let selection = Selection::from_args();
    let mut criterion = Criterion::default().configure_from_args();
    let cache = DataCache::project();
    let out_dir = report_dir();
    let started = Instant::now();
    let mut recorded = 0;
    let mut floors: Option<Vec<(String, String)>> = None;

    for (family, spec) in scenarios() {
        let group_id = suite::group_id(family, spec.scenario);
        let selected: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|name| selection.selects(&format!("{group_id}/{name}")))
            .collect();
        if selected.is_empty() {
            continue;
        }
        let scenario_run: RefCell<Option<ScenarioRun>> = RefCell::new(None);
        let load = || -> Result<(), String> {
            if scenario_run.borrow().is_none() {
                eprintln!(
                    "{group_id}: loading data (generated once, then cached under {})",
                    cache.dir().display()
                );
                let (run, outcome) = ScenarioRun::load(&cache, &spec, DEFAULT_MAX_ITER, threads)
                    .map_err(|e| e.to_string())?;
                eprintln!("{group_id}: data {:?}", outcome);
                *scenario_run.borrow_mut() = Some(run);
            }
            Ok(())
        };
        if floors.is_none() && !selection.list {
            floors = Some(measure_floors(threads));
        }
        let mut records = Vec::new();
        let mut group = criterion.benchmark_group(&group_id);
        preset.configure(&mut group);
        for name in selected {
            let mut record = Record::new(family, spec.scenario, spec.std, name, threads);
            record.environment = environment::machine();
            record
                .environment
                .insert("bench.preset".into(), format!("{preset:?}").to_lowercase());
            record.environment.extend(floors.iter().flatten().cloned());
            let contender = match create(name) {
                Ok(c) => c,
                Err(unavailable) => {
                    if !selection.list {
                        eprintln!("{group_id}/{name}: SKIPPED: {}", unavailable.reason);
                        record.status = Status::Skipped;
                        record.reason = Some(unavailable.reason);
                        records.push(record);
                    }
                    continue;
                }
            };
            let state: RefCell<Option<BenchState>> = RefCell::new(None);
            let mut pending = Some(contender);
            group.bench_function(name, |b| {
                if state.borrow().is_none() {
                    let mut contender = pending.take().expect("the contender is set up once");
                    let setup = load().and_then(|()| {
                        let binding = scenario_run.borrow();
                        let run = binding.as_ref().expect("loaded");
                        contained(|| {
                            contender.prepare(&run.problem)?;
                            contender.fit().map(|_| ())
                        })
                    });
                    *state.borrow_mut() = Some(BenchState {
                        contender,
                        calls: Vec::new(),
                        error: setup.err(),
                    });
                }
                let mut guard = state.borrow_mut();
                let s = guard.as_mut().expect("set up above");
                b.iter_custom(|iters| {
                    if s.error.is_some() {
                        return Duration::from_nanos(1);
                    }
                    let start = Instant::now();
                    for _ in 0..iters {
                        if let Err(e) = contained(|| s.contender.fit().map(|_| ())) {
                            s.error = Some(e);
                            break;
                        }
                    }
                    let elapsed = start.elapsed();
                    s.calls.push((iters, elapsed));
                    elapsed
                });
            });
            let Some(mut s) = state.into_inner() else {
                continue;
            };
            // Criterion calls the routine for warm-up first, then once per
            // sample: the last `sample_size` calls are the measurement.
            let measured = &s.calls[s.calls.len().saturating_sub(10)..];
            record.sample_seconds = measured
                .iter()
                .map(|(iters, d)| d.as_secs_f64() / *iters as f64)
                .collect();
            record.environment.insert(
                "bench.fits_per_sample".into(),
                measured
                    .iter()
                    .map(|(i, _)| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            let untimed = match &s.error {
                Some(e) => Err(e.clone()),
                None => {
                    let binding = scenario_run.borrow();
                    let run = binding.as_ref().expect("loaded");
                    contained(|| measure_untimed(s.contender.as_mut(), run, &mut record))
                }
            };
            if let Err(e) = untimed {
                eprintln!("{group_id}/{name}: FAILED: {e}");
                record.status = Status::Failed;
                record.reason = Some(e);
                record.sample_seconds.clear();
            }
            records.push(record);
        }
        group.finish();
        if records.is_empty() {
            continue;
        }
        check_inertia(&mut records);
        for r in &records {
            if r.inertia_check == Some(Check::Fail) {
                eprintln!(
                    "{group_id}/{}: INERTIA CHECK FAILED: {:.3e} above the best (tolerance {:.0e})",
                    r.contender,
                    r.rel_inertia_diff.unwrap_or(f64::NAN),
                    r.inertia_tolerance.unwrap_or(f64::NAN)
                );
            }
        }
        if let Err(e) = append_records(&out_dir, &records) {
            eprintln!("error: cannot write results: {e}");
            std::process::exit(1);
        }
        recorded += records.len();
    }
    criterion.final_summary();
    if recorded > 0 {
        eprintln!(
            "{recorded} record(s) in {} after {:.0} s",
            out_dir.join("results.jsonl").display(),
            started.elapsed().as_secs_f64()
        );
        redraw_report(&out_dir);
    }
}

/// The machine's floors in a pool of `threads`: FMA peaks (f64 and f32) and read bandwidth
/// (over 512 MiB, beyond any cache), measured five times, the best kept (the
/// machine is shared: a busy neighbour lowers a single measurement).
fn measure_floors(threads: usize) -> Vec<(String, String)> {
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("warning: no floors measured: {e}");
            return Vec::new();
        }
    };
    let buffer = vec![1.0f64; 64 << 20];
    let (peak, peak_f32, bandwidth) = pool.install(|| {
        (0..5).fold((0.0f64, 0.0f64, 0.0f64), |(p, p32, b), _| {
            (
                p.max(floor::fma_peak_flops()),
                p32.max(floor::fma_peak_flops_f32()),
                b.max(floor::read_bandwidth(&buffer)),
            )
        })
    });
    eprintln!(
        "floors ({threads} threads): FMA peak {:.1} GFLOP/s in f64, {:.1} in f32, read bandwidth {:.1} GB/s",
        peak / 1e9,
        peak_f32 / 1e9,
        bandwidth / 1e9
    );
    vec![
        ("floor.fma_peak_flops".into(), format!("{peak:.4e}")),
        ("floor.fma_peak_flops_f32".into(), format!("{peak_f32:.4e}")),
        (
            "floor.read_bytes_per_second".into(),
            format!("{bandwidth:.4e}"),
        ),
    ]
}

/// Runs `f`, turning its error or a panic inside a library into a message.
fn contained(f: impl FnOnce() -> pythonvsrust_kmeans::Result<()>) -> Result<(), String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => Err(format!("panicked: {}", panic_message(&panic))),
    }
}

/// Redraws the report from all stored results.
fn redraw_report(dir: &Path) {
    match write_report(dir) {
        Ok(output) => {
            for warning in &output.warnings {
                eprintln!("report warning: {warning}");
            }
            eprintln!("report: {}", output.index.display());
        }
        Err(e) => eprintln!("error: cannot draw the report: {e}"),
    }
}
