//! What the command-line programs share: the exit path and the thread knob.

use std::process::ExitCode;

/// Runs `run`; on error prints `error: …` (the whole cause chain on one line)
/// to stderr and exits with status 1. Never a panic trace.
pub fn exit_with(run: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// `outer: cause: root cause`, on one line.
pub fn one_line(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| e.to_string().replace('\n', " "))
        .collect::<Vec<_>>()
        .join(": ")
}

/// The thread count for a run: `requested`, else `$KMEANS_BENCH_THREADS`,
/// else every core.
pub fn thread_count(requested: Option<usize>) -> anyhow::Result<usize> {
    let threads = match requested {
        Some(t) => t,
        None => match std::env::var("KMEANS_BENCH_THREADS") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                anyhow::anyhow!("KMEANS_BENCH_THREADS must be a whole number, got '{v}'")
            })?,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    };
    anyhow::ensure!(threads >= 1, "the thread count must be at least 1");
    Ok(threads)
}

/// `--n N --d D --k K`: one scenario, as `generate` and `compare` take it.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ScenarioArgs {
    /// Samples.
    #[arg(long)]
    pub n: usize,
    /// Features.
    #[arg(long)]
    pub d: usize,
    /// Clusters (blob centres, and the k of the fit).
    #[arg(long)]
    pub k: usize,
}

impl ScenarioArgs {
    /// The checked scenario.
    pub fn scenario(&self) -> crate::Result<crate::data::Scenario> {
        crate::data::Scenario::new(self.n, self.d, self.k)
    }
}
