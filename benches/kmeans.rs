//! The benchmark suite: every family's scenarios, every contender that runs
//! in it.
//!
//! Ids are `{family}/{n}x{d}/k{k}/{impl}`, built from the family table
//! (`suite::FAMILIES`) and the contender registry (`contenders::REGISTRY`).
//! One Criterion group per scenario, one function per contender, so
//! Criterion draws a comparison per scenario.
//!
//! Each bench is one [`Trial`] of the protocol, started the first time
//! Criterion runs it (filtered-out and listed benches create nothing): the
//! scenario's cached data and shared initial centroids are loaded once, the
//! contender prepared and warmed up; every timed fit is recorded by us
//! (`iter_custom`); then the untimed memory fit, quality and the check, and
//! one fit in a fresh process for the peak RSS (`isolated`). Records go to
//! `target-reports/results.jsonl` and `target-reports/csv/`, and the report
//! is redrawn at the end.
//!
//! Knobs (environment or `.env`): `KMEANS_BENCH_PRESET=quick|full` (default
//! full), `KMEANS_BENCH_THREADS` (default every core).

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use pythonvsrust_kmeans::alloc::CountingAllocator;
use pythonvsrust_kmeans::data::DataCache;
use pythonvsrust_kmeans::isolated::{self, IsolatedPeak};
use pythonvsrust_kmeans::kmeans::DEFAULT_MAX_ITER;
use pythonvsrust_kmeans::protocol::{check_inertia, ScenarioRun, Trial};
use pythonvsrust_kmeans::report::write_report;
use pythonvsrust_kmeans::results::{append_records, report_dir, Check, Record, Status};
use pythonvsrust_kmeans::suite;
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
        group.sample_size(SAMPLES).sampling_mode(SamplingMode::Flat);
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

/// Samples per bench: Criterion's least, which keeps the million-row
/// scenarios within minutes.
const SAMPLES: usize = 10;

/// One bench's trial, started the first time Criterion runs the bench (so
/// filtered-out and listed benches create nothing), or the failed record of
/// a scenario whose data could not be loaded.
type Slot<'a> = RefCell<Option<Result<(Trial<'a>, Option<IsolatedPeak>), Box<Record>>>>;

fn main() {
    // Run again as the fresh process that measures one fit's memory.
    if let Some(code) = pythonvsrust_kmeans::isolated::serve_if_child() {
        std::process::exit(i32::from(code != std::process::ExitCode::SUCCESS));
    }
    pythonvsrust_kmeans::cli::load_dotenv();
    let preset = Preset::from_env();
    let threads = match pythonvsrust_kmeans::cli::thread_count(None) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    let cache = DataCache::project();
    let out_dir = report_dir();
    let started = Instant::now();
    let mut recorded = 0;
    let floors: OnceCell<Vec<(String, String)>> = OnceCell::new();

    for (family, spec) in suite::scenarios() {
        let group_id = suite::group_id(family.id, spec.scenario);
        let threads = family.threads.unwrap_or(threads);
        let scenario_run: OnceCell<Result<ScenarioRun, String>> = OnceCell::new();
        let load = || {
            scenario_run.get_or_init(|| {
                eprintln!(
                    "{group_id}: loading data (generated once, then cached under {})",
                    cache.dir().display()
                );
                let (run, outcome) =
                    ScenarioRun::load_with(&cache, &spec, family.start, DEFAULT_MAX_ITER, threads)
                        .map_err(|e| e.to_string())?;
                eprintln!("{group_id}: data {outcome:?}");
                Ok(run.with_dtype(family.dtype))
            })
        };
        let mut records = Vec::new();
        let mut group = criterion.benchmark_group(&group_id);
        preset.configure(&mut group);
        for entry in family.contenders() {
            let name = entry.name;
            let slot: Slot = RefCell::new(None);
            group.bench_function(name, |b| {
                let mut slot = slot.borrow_mut();
                let trial = slot.get_or_insert_with(|| {
                    let mut record = Record::new(family.id, spec.scenario, spec.std, name, threads);
                    record.environment = environment::machine();
                    record
                        .environment
                        .insert("bench.preset".into(), format!("{preset:?}").to_lowercase());
                    record.environment.extend(
                        floors
                            .get_or_init(|| measure_floors(threads))
                            .iter()
                            .cloned(),
                    );
                    let run = match load() {
                        Ok(run) => run,
                        Err(reason) => {
                            record.status = Status::Failed;
                            record.reason = Some(reason.clone());
                            eprintln!("{group_id}/{name}: FAILED: {reason}");
                            return Err(Box::new(record));
                        }
                    };
                    let first =
                        match isolated::first_fit_within(run, name, cache.dir(), family.fit_budget)
                        {
                            Ok(first) => first,
                            Err(reason) => {
                                eprintln!("{group_id}/{name}: SKIPPED: {reason}");
                                record.status = Status::Skipped;
                                record.reason = Some(reason);
                                return Err(Box::new(record));
                            }
                        };
                    let trial = Trial::start(run, record);
                    let r = trial.record();
                    if r.status != Status::Ok {
                        let what = if r.status == Status::Skipped {
                            "SKIPPED"
                        } else {
                            "FAILED"
                        };
                        eprintln!(
                            "{group_id}/{name}: {what}: {}",
                            r.reason.as_deref().unwrap_or("")
                        );
                    }
                    Ok((trial, first))
                });
                b.iter_custom(|fits| match trial {
                    Ok((trial, _)) => trial.time(fits),
                    Err(_) => Duration::from_nanos(1),
                });
            });
            match slot.into_inner() {
                Some(Ok((trial, first))) => {
                    let run = trial.run();
                    let mut record = trial.finish(SAMPLES);
                    if record.status == Status::Ok {
                        isolated::measure_into(run, cache.dir(), &mut record, first);
                    }
                    if record.status == Status::Failed {
                        eprintln!(
                            "{group_id}/{name}: FAILED: {}",
                            record.reason.as_deref().unwrap_or("")
                        );
                    }
                    records.push(record);
                }
                Some(Err(record)) => records.push(*record),
                None => {}
            }
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
