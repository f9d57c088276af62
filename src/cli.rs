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

/// Makes the calling thread one of rayon's global pool of `threads`
/// threads, as OpenMP's calling thread is one of its team: a Rust contender
/// fitting with that many threads from this thread then runs there, instead
/// of being handed to a pool of its own and waited for (tens of
/// microseconds a fit). Must come before anything starts the global pool;
/// the thread stays in it for good.
pub fn join_global_pool(threads: usize) -> anyhow::Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .use_current_thread()
        .build_global()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot make this thread one of rayon's global pool ({e}); Rust contenders hand each fit to a pool of their own"
            )
        })
}

/// Threads per core beyond which a thread count is refused: more only
/// oversubscribes, and thousands of threads hang the machine.
pub const MAX_THREADS_PER_CORE: usize = 16;

/// The thread count for a run: `requested`, else `$KMEANS_BENCH_THREADS`,
/// else every core; at least 1 and at most [`MAX_THREADS_PER_CORE`] per core.
pub fn thread_count(requested: Option<usize>) -> anyhow::Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match requested {
        Some(t) => t,
        None => match std::env::var("KMEANS_BENCH_THREADS") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                anyhow::anyhow!("KMEANS_BENCH_THREADS must be a whole number, got '{v}'")
            })?,
            _ => cores,
        },
    };
    anyhow::ensure!(threads >= 1, "the thread count must be at least 1");
    let most = MAX_THREADS_PER_CORE * cores;
    anyhow::ensure!(
        threads <= most,
        "{threads} threads is more than {MAX_THREADS_PER_CORE} per core ({cores} core(s) here: at most {most})"
    );
    Ok(threads)
}

/// Loads `.env` from the current folder or the nearest parent that has one,
/// printing a warning for each line skipped (see [`apply_dotenv`]).
pub fn load_dotenv() {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    if let Some(path) = cwd
        .ancestors()
        .map(|d| d.join(".env"))
        .find(|p| p.is_file())
    {
        for warning in apply_dotenv(&path) {
            eprintln!("warning: {warning}");
        }
    }
}

/// Sets the settings of the `.env` file at `path` that the environment does
/// not set already. A line that does not parse is skipped, named by its
/// number in the returned warnings, and the lines after it still count.
pub fn apply_dotenv(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let items = match dotenvy::from_path_iter(path) {
        Ok(items) => items,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let mut warnings = Vec::new();
    for item in items {
        match item {
            Ok((key, value)) => {
                if std::env::var_os(&key).is_none() {
                    std::env::set_var(key, value);
                }
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let number = text
                    .lines()
                    .position(|l| l.trim_end() == line.trim_end())
                    .map_or("?".to_string(), |i| (i + 1).to_string());
                warnings.push(format!(
                    "{}: line {number} skipped, it does not parse as KEY=value: {}",
                    path.display(),
                    line.trim_end()
                ));
            }
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
    warnings
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
    pub fn scenario(&self) -> Result<crate::data::Scenario, crate::data::DataError> {
        crate::data::Scenario::new(self.n, self.d, self.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_dotenv_line_is_named_and_the_later_lines_still_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "KMEANS_TEST_FIRST=1\nthis line is broken\nKMEANS_TEST_LATER=quick\n",
        )
        .unwrap();
        let warnings = apply_dotenv(&path);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("line 2"), "{warnings:?}");
        assert_eq!(std::env::var("KMEANS_TEST_FIRST").unwrap(), "1");
        assert_eq!(std::env::var("KMEANS_TEST_LATER").unwrap(), "quick");
    }

    #[test]
    fn thread_counts_are_bounded() {
        assert!(thread_count(Some(0)).is_err());
        assert_eq!(thread_count(Some(1)).unwrap(), 1);
        let err = thread_count(Some(100_000)).unwrap_err().to_string();
        assert!(err.contains("per core"), "{err}");
    }
}
