//! Runs one scenario through the chosen contenders under the bench's
//! protocol (one warm-up, then R timed fits; no Criterion) and prints a
//! table, or one JSON object per contender per line with `--json`.
//!
//! `cargo run --release --example compare -- --n N --d D --k K [--family F]
//! [--dtype f32|f64] [--std S] [--threads T] [--impls a,b] [--runs R] [--json]`

use std::process::ExitCode;

use clap::Parser;
use pythonvsrust_kmeans::alloc::CountingAllocator;
use pythonvsrust_kmeans::cli::{exit_with, join_global_pool, thread_count, ScenarioArgs};
use pythonvsrust_kmeans::contenders::{self, Dtype};
use pythonvsrust_kmeans::data::{BlobSpec, CacheOutcome, DataCache};
use pythonvsrust_kmeans::isolated;
use pythonvsrust_kmeans::kmeans::DEFAULT_MAX_ITER;
use pythonvsrust_kmeans::protocol::{check_inertia, run_once, ScenarioRun};
use pythonvsrust_kmeans::report::format_seconds;
use pythonvsrust_kmeans::results::{Check, Record, Status};
use pythonvsrust_kmeans::suite;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// Run one scenario through every contender once.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Threads for every contender (default: $KMEANS_BENCH_THREADS, else every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Contenders to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    impls: Option<Vec<String>>,
    /// The family whose contenders and id the scenario takes.
    #[arg(long, default_value = suite::SWEEP)]
    family: String,
    /// The blobs' standard deviation (default: the family's for its
    /// scenarios, else 1).
    #[arg(long)]
    std: Option<f64>,
    /// The float type the data is handed over in (default: the family's).
    #[arg(long, value_enum)]
    dtype: Option<DtypeArg>,
    /// Timed fits per contender, after one warm-up.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    runs: u16,
    /// The cap on iterations.
    #[arg(long, default_value_t = DEFAULT_MAX_ITER)]
    max_iter: usize,
    /// One JSON object per contender per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DtypeArg {
    F32,
    F64,
}

fn main() -> ExitCode {
    // Run again as the fresh process that measures one fit's memory.
    if let Some(code) = isolated::serve_if_child() {
        return code;
    }
    exit_with(|| {
        let args = Args::parse();
        let family = suite::family(&args.family).ok_or_else(|| {
            let known: Vec<&str> = suite::FAMILIES.iter().map(|f| f.id).collect();
            anyhow::anyhow!(
                "unknown family '{}' (known: {})",
                args.family,
                known.join(", ")
            )
        })?;
        let in_family: Vec<&str> = family.contenders().map(|e| e.name).collect();
        let names: Vec<String> = args
            .impls
            .clone()
            .unwrap_or_else(|| in_family.iter().map(|s| s.to_string()).collect());
        for name in &names {
            anyhow::ensure!(
                contenders::entry(name).is_some(),
                "unknown contender '{name}' (known: {})",
                contenders::names().join(", ")
            );
            anyhow::ensure!(
                in_family.contains(&name.as_str()),
                "{name} does not run in the family {}",
                family.id
            );
        }
        let scenario = args.scenario.scenario()?;
        // The family's own spread for its scenarios, unless --std says.
        let std = args.std.unwrap_or_else(|| {
            (family.scenarios)()
                .into_iter()
                .find(|s| s.scenario == scenario)
                .map_or(1.0, |s| s.std)
        });
        let spec = BlobSpec::new(scenario).with_std(std);
        let threads = match args.threads {
            Some(t) => thread_count(Some(t))?,
            None => family.threads.map_or_else(|| thread_count(None), Ok)?,
        };
        // As the bench does: this thread one of the pool the fits run in.
        if let Err(e) = join_global_pool(threads) {
            eprintln!("warning: {e}");
        }
        let cache = DataCache::project();
        let (run, outcome) =
            ScenarioRun::load_with(&cache, &spec, family.start, args.max_iter, threads)?;
        let run = run.with_dtype(match args.dtype {
            Some(DtypeArg::F32) => Dtype::F32,
            Some(DtypeArg::F64) => Dtype::F64,
            None => family.dtype,
        });
        if let CacheOutcome::Regenerated { reason } = outcome {
            eprintln!("regenerated the cached data ({reason})");
        }
        let mut records: Vec<Record> = names
            .iter()
            .map(|name| {
                let first = isolated::first_fit_within(&run, name, cache.dir(), family.fit_budget);
                let first = match first {
                    Ok(first) => first,
                    Err(reason) => {
                        let mut record =
                            Record::new(family.id, spec.scenario, spec.std, name, threads);
                        record.status = Status::Skipped;
                        record.reason = Some(reason);
                        return record;
                    }
                };
                let mut record = run_once(name, family.id, &run, usize::from(args.runs));
                if record.status == Status::Ok {
                    isolated::measure_into(&run, cache.dir(), &mut record, first);
                }
                record
            })
            .collect();
        check_inertia(&mut records);
        if args.json {
            for r in &records {
                println!("{}", json_line(r));
            }
        } else {
            print_table(&spec, threads, &records);
        }
        Ok(())
    })
}

fn json_line(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "impl": r.contender,
        "seconds": r.median_seconds(),
        "min_seconds": r.min_seconds(),
        "max_seconds": r.max_seconds(),
        "runs": r.sample_seconds.len(),
        "n_iter": r.n_iter,
        "seconds_per_iter": r.seconds_per_iter(),
        "passes": r.work().map(|w| w.0),
        "reads_of_x": r.work().map(|w| w.1),
        "gflop": r.work().map(|w| w.2),
        "inertia": r.inertia,
        "rel_inertia_diff": r.rel_inertia_diff,
        "inertia_check": r.inertia_check,
        "ari": r.ari,
        "process_peak_bytes": r.memory.process_peak_bytes,
        "process_baseline_bytes": r.memory.process_baseline_bytes,
        "memory_note": r.environment.get("memory.isolated"),
        "peak_bytes": r.memory.resident_peak_bytes,
        "alloc_peak_bytes": r.memory.alloc_peak_bytes,
        "traced_peak_bytes": r.memory.traced_peak_bytes,
        "threads": r.threads,
        "dtype": r.environment.get("data.dtype"),
        "status": r.status,
        "reason": r.reason,
    })
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| {
        format!("{:.1}", b as f64 / (1 << 20) as f64)
    })
}

fn print_table(spec: &BlobSpec, threads: usize, records: &[Record]) {
    println!(
        "scenario {} (blob std {}), {threads} thread(s), same initial centroids, stop when no label changes",
        spec.scenario, spec.std
    );
    println!(
        "{:<14} {:>8} {:>10} {:>19} {:>6} {:>11} {:>15} {:>12} {:>6} {:>7} {:>10} {:>10} {:>12} {:>9}",
        "impl",
        "status",
        "median",
        "min - max",
        "iter",
        "ms/iter",
        "passes/GFLOP",
        "inertia gap",
        "check",
        "ARI",
        "alloc MiB",
        "traced MiB",
        "peak RSS MiB",
        "base MiB"
    );
    for r in records {
        let status = match r.status {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        };
        println!(
            "{:<14} {:>8} {:>10} {:>19} {:>6} {:>11} {:>15} {:>12} {:>6} {:>7} {:>10} {:>10} {:>12} {:>9}",
            r.contender,
            status,
            r.median_seconds().map_or("-".into(), format_seconds),
            r.min_seconds()
                .zip(r.max_seconds())
                .map_or("-".into(), |(lo, hi)| format!(
                    "{} - {}",
                    format_seconds(lo),
                    format_seconds(hi)
                )),
            r.n_iter.map_or("-".into(), |n| n.to_string()),
            r.seconds_per_iter()
                .map_or("-".into(), |s| format!("{:.3}", s * 1e3)),
            r.work()
                .map_or("-".into(), |(p, _, g)| format!("{p} / {g:.3}")),
            r.rel_inertia_diff
                .map_or("-".into(), |g| format!("{g:.2e}")),
            match r.inertia_check {
                Some(Check::Pass) => "pass",
                Some(Check::Fail) => "FAIL",
                None => "-",
            },
            r.ari.map_or("-".into(), |a| format!("{a:.4}")),
            mib(r.memory.alloc_peak_bytes),
            mib(r.memory.traced_peak_bytes),
            mib(r.memory.process_peak_bytes),
            mib(r.memory.process_baseline_bytes),
        );
        if let Some(reason) = &r.reason {
            println!("    {}: {reason}", r.contender);
        }
    }
}
