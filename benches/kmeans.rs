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
//! Around the benches, for the person waiting: the selected benches are
//! counted and their time estimated before the first (`run`), each is
//! announced as `[i/N]`, and the run ends with a summary per scenario
//! (`summary.md`, `summary.json`). Every record carries the run's id.
//!
//! Knobs (environment or `.env`): `KMEANS_BENCH_PRESET=quick|full` (default
//! full), `KMEANS_BENCH_THREADS` (default every core), `KMEANS_FRESH=1` (start
//! a new results file, the old one archived).

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{AxisScale, BenchmarkGroup, Criterion, PlotConfiguration, SamplingMode};
use pythonvsrust_kmeans::alloc::CountingAllocator;
use pythonvsrust_kmeans::data::DataCache;
use pythonvsrust_kmeans::isolated::{self, IsolatedPeak};
use pythonvsrust_kmeans::kmeans::DEFAULT_MAX_ITER;
use pythonvsrust_kmeans::protocol::{check_inertia, ScenarioRun, Trial};
use pythonvsrust_kmeans::report::{write_report, RunSummary};
use pythonvsrust_kmeans::results::{
    append_records, report_dir, start_fresh, Check, Record, Status,
};
use pythonvsrust_kmeans::run::{clock, BenchArgs, Estimates, Preset, Progress, RunInfo};
use pythonvsrust_kmeans::suite;
use pythonvsrust_kmeans::{environment, floor};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// Sample size and windows. Ten samples (Criterion's least) keep the
/// million-row scenarios within minutes; flat sampling (the same number of
/// fits per sample) suits fits of milliseconds and up; the summary violin is
/// logarithmic, as contenders differ by orders of magnitude.
fn configure(preset: Preset, group: &mut BenchmarkGroup<WallTime>) {
    let (warm_up, measurement) = preset.windows();
    group
        .sample_size(SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
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
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The whole suite: select, estimate, bench, record, summarise, redraw.
fn run() -> Result<(), String> {
    pythonvsrust_kmeans::cli::load_dotenv();
    let args = BenchArgs::parse(std::env::args().skip(1))?;
    let (preset, warning) = Preset::from_env();
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let threads = pythonvsrust_kmeans::cli::thread_count(None).map_err(|e| e.to_string())?;
    if let Err(e) = pythonvsrust_kmeans::cli::join_global_pool(threads) {
        eprintln!("warning: {e}");
    }
    let selected: Vec<String> = suite::scenarios()
        .into_iter()
        .flat_map(|(family, spec)| {
            family
                .contenders()
                .map(move |e| suite::bench_id(family.id, spec.scenario, e.name))
        })
        .filter(|id| args.filter.matches(id))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "no bench matches '{}' (ids are {{family}}/{{n}}x{{d}}/k{{k}}/{{impl}}, e.g. kmeans/1000x2/k2/rust; `cargo bench -- --list` lists them)",
            args.filter_text.as_deref().unwrap_or("")
        ));
    }
    let mut criterion = Criterion::default().configure_from_args();
    if args.list {
        // Criterion lists each id it is shown and runs nothing.
        for (family, spec) in suite::scenarios() {
            let mut group = criterion.benchmark_group(suite::group_id(family.id, spec.scenario));
            for entry in family.contenders() {
                group.bench_function(entry.name, |b| b.iter(|| ()));
            }
            group.finish();
        }
        return Ok(());
    }
    let cache = DataCache::project();
    let out_dir = report_dir();
    let run = RunInfo::start(preset, args.save_baseline.clone());
    if std::env::var("KMEANS_FRESH").is_ok_and(|v| v == "1") {
        if let Some(archive) = start_fresh(&out_dir, &run.id).map_err(|e| e.to_string())? {
            eprintln!(
                "KMEANS_FRESH: earlier results moved to {}",
                archive.display()
            );
        }
    }
    eprintln!("run {}", run.id);
    let floors = measure_floors(threads);
    let mut progress = {
        let estimates = Estimates::load(&out_dir, &reference_dir(), preset);
        let floor_map: BTreeMap<String, String> = floors.iter().cloned().collect();
        Progress::new(
            selected
                .iter()
                .map(|id| estimates.seconds(id, preset, &floor_map))
                .collect(),
        )
    };
    eprintln!("{}", progress.opening());
    let started = Instant::now();
    let mut run_records: Vec<Record> = Vec::new();

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
        configure(preset, &mut group);
        for entry in family.contenders() {
            let name = entry.name;
            let id = suite::bench_id(family.id, spec.scenario, name);
            let position = selected.iter().position(|s| *s == id);
            if let Some(i) = position {
                eprintln!("{}", progress.before(i, &id));
            }
            let bench_started = Instant::now();
            let slot: Slot = RefCell::new(None);
            group.bench_function(name, |b| {
                let mut slot = slot.borrow_mut();
                let trial = slot.get_or_insert_with(|| {
                    let mut record = Record::new(family.id, spec.scenario, spec.std, name, threads);
                    record.run_id = Some(run.id.clone());
                    record.saved_baseline = run.saved_baseline.clone();
                    record.environment = environment::machine();
                    record
                        .environment
                        .insert("bench.preset".into(), run.preset.clone());
                    record.environment.extend(floors.iter().cloned());
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
            let record = match slot.into_inner() {
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
                    Some(record)
                }
                Some(Err(record)) => Some(*record),
                None => None,
            };
            if let Some(mut record) = record {
                let seconds = bench_started.elapsed().as_secs_f64();
                record.wall_seconds = Some(seconds);
                if let Some(i) = position {
                    progress.after(i, seconds);
                }
                records.push(record);
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
        append_records(&out_dir, &records).map_err(|e| format!("cannot write results: {e}"))?;
        run_records.extend(records);
    }
    criterion.final_summary();
    if run_records.is_empty() {
        return Ok(());
    }
    eprintln!(
        "{} record(s) in {} after {}",
        run_records.len(),
        out_dir.join("results.jsonl").display(),
        clock(started.elapsed().as_secs_f64())
    );
    let summary = RunSummary::new(
        &run.id,
        &run.preset,
        threads,
        started.elapsed().as_secs_f64(),
        &run_records,
    );
    eprintln!("\n{}", summary.console());
    match summary.write(&out_dir) {
        Ok(()) => eprintln!("summary: {}", out_dir.join("summary.md").display()),
        Err(e) => eprintln!("error: cannot write the summary: {e}"),
    }
    redraw_report(&out_dir);
    Ok(())
}

/// The reference report's folder, whose records estimate a first run.
fn reference_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target-reports/reference")
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
