//! Clusters a `.npy` or `.csv` file with the hand-written k-means and prints
//! one JSON object.
//!
//! `cargo run --release --example cluster -- DATA --k K [--init INIT.npy]
//! [--max-iter M] [--seed S] [--threads T] [--out CENTROIDS.npy]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use ndarray::Array2;
use ndarray_npy::WritableElement;
use pythonvsrust_kmeans::cli::{exit_with, thread_count};
use pythonvsrust_kmeans::data::{read_samples, write_npy_atomic, DataCache, Samples};
use pythonvsrust_kmeans::kmeans::{Float, Init, KMeansParams, Pruning, DEFAULT_MAX_ITER};

/// Cluster a data file with the hand-written k-means.
#[derive(Parser)]
struct Args {
    /// The data: `.npy` (float32 or float64) or `.csv`.
    data: PathBuf,
    /// Clusters.
    #[arg(long)]
    k: usize,
    /// Initial centroids (`.npy`, k x n_features); default: k-means++.
    #[arg(long)]
    init: Option<PathBuf>,
    /// The cap on Lloyd iterations.
    #[arg(long, default_value_t = DEFAULT_MAX_ITER)]
    max_iter: usize,
    /// The k-means++ seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads (default: $KMEANS_BENCH_THREADS, else every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the final centroids here (`.npy`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Bounds that skip rows whose label cannot change: where they pay
    /// (auto), in every step (always) or never (every row through the
    /// distance kernel in every step). The result is the same.
    #[arg(long, value_enum, default_value_t = PruningArg::Auto)]
    pruning: PruningArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PruningArg {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    exit_with(|| {
        let args = Args::parse();
        let samples = read_samples(&args.data)?;
        if let Some(why) = DataCache::sidecar_mismatch(&args.data) {
            eprintln!("warning: {why}");
        }
        match samples {
            Samples::F32(x) => cluster(&args, x),
            Samples::F64(x) => cluster(&args, x),
        }
    })
}

fn cluster<F: Float + WritableElement>(args: &Args, x: Array2<F>) -> anyhow::Result<()> {
    let threads = thread_count(args.threads)?;
    let mut params = KMeansParams::<F>::new(args.k)
        .max_iter(args.max_iter)
        .seed(args.seed)
        .threads(threads)
        .pruning(match args.pruning {
            PruningArg::Auto => Pruning::Auto,
            PruningArg::Always => Pruning::Always,
            PruningArg::Never => Pruning::Never,
        });
    if let Some(path) = &args.init {
        params = params.init(Init::Given(read_init(path)?));
    }
    let model = params.check()?;
    let start = Instant::now();
    let fit = model.fit(x.view())?;
    let seconds = start.elapsed().as_secs_f64();
    // Magnitudes near the float limit can leave the sum of squares itself
    // beyond f64: refuse rather than print it as null.
    anyhow::ensure!(
        fit.inertia.is_finite(),
        "the inertia (sum of squared distances) exceeds the largest f64 ({:e}): the data's magnitudes are too large to square; scale the data down",
        f64::MAX
    );
    if fit.distinct_clusters() < args.k {
        eprintln!(
            "warning: only {} distinct clusters found (k = {}): the data has fewer distinct points than k",
            fit.distinct_clusters(),
            args.k
        );
    }
    if let Some(out) = &args.out {
        write_npy_atomic(out, &fit.centroids)?;
    }
    let (n_samples, n_features) = x.dim();
    let report = serde_json::json!({
        "inertia": fit.inertia,
        "n_iter": fit.n_iter,
        "converged": fit.converged,
        "n_samples": n_samples,
        "n_features": n_features,
        "k": args.k,
        "dtype": F::NAME,
        "threads": threads,
        "seconds": seconds,
        "init_seconds": fit.seeding_seconds,
        "fit_seconds": (seconds - fit.seeding_seconds).max(0.0),
        "passes": fit.work.passes(),
        "distances_per_pass": fit.work.column(|p| p.distances),
        "f32_distances_per_pass": fit.work.column(|p| p.f32_distances),
        "rows_per_pass": fit.work.column(|p| p.rows),
    });
    println!("{report}");
    Ok(())
}

/// Reads initial centroids (`.npy` or `.csv`, either float type) in the
/// data's float type.
fn read_init<F: Float>(path: &Path) -> anyhow::Result<Array2<F>> {
    let stored = read_samples(path).context("reading --init")?;
    Ok(match stored {
        Samples::F64(init) => init.mapv(F::from_f64),
        Samples::F32(init) => init.mapv(|v| F::from_f64(v as f64)),
    })
}
