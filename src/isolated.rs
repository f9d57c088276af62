//! Peak memory the seed's way: the peak resident set size of one fit in a
//! fresh process, above that process's resident size just before the fit.
//!
//! In the bench's own process, pages freed by earlier fits are reused, so the
//! growth of its high-water mark reads 0 B for fits that allocate hundreds of
//! megabytes. A fresh child instead loads the cached data and initial
//! centroids and prepares the contender exactly as the parent does (for a
//! Python contender: the interpreter, its imports, the array handed over),
//! reads its resident size (the baseline), resets the high-water mark
//! (`/proc/self/clear_refs`), runs one fit and reads `VmHWM`.
//!
//! The child is the calling program itself, run again with
//! [`CHILD_ENV`] set: a program that measures this way calls
//! [`serve_if_child`] first thing in `main`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::{BlobSpec, DataCache};
use crate::protocol::ScenarioRun;

/// Set (to the request, as JSON) in the environment of a measuring child.
pub const CHILD_ENV: &str = "KMEANS_ISOLATED_FIT";

/// What a child is asked to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    data_dir: PathBuf,
    spec: BlobSpec,
    contender: String,
    max_iter: usize,
    threads: usize,
}

/// What a child measured, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolatedPeak {
    /// Resident size just before the fit: data, contender, interpreter.
    pub baseline_bytes: u64,
    /// The fit's resident high-water mark above the baseline.
    pub peak_bytes: u64,
}

/// In a measuring child (see [`CHILD_ENV`]): measures, prints the figures as
/// JSON on stdout, and returns the exit code for `main` to return at once;
/// `None` in any other process.
pub fn serve_if_child() -> Option<ExitCode> {
    let request = std::env::var(CHILD_ENV).ok()?;
    Some(match measure_here(&request) {
        Ok(peak) => {
            println!(
                "{}",
                serde_json::to_string(&peak).expect("figures serialise")
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    })
}

fn measure_here(request: &str) -> Result<IsolatedPeak, String> {
    let request: Request =
        serde_json::from_str(request).map_err(|e| format!("bad request {request:?}: {e}"))?;
    let cache = DataCache::new(&request.data_dir);
    let (run, _) = ScenarioRun::load(&cache, &request.spec, request.max_iter, request.threads)
        .map_err(|e| e.to_string())?;
    let mut contender = crate::contenders::create(&request.contender).map_err(|u| u.reason)?;
    let problem = run
        .problem_for(&request.contender)
        .map_err(|e| e.to_string())?;
    contender.prepare(&problem).map_err(|e| e.to_string())?;
    drop(problem);
    let baseline = crate::memory::reset_peak_resident()
        .ok_or("this system does not report resident memory")?;
    contender.fit().map_err(|e| e.to_string())?;
    let peak = crate::memory::peak_resident_bytes()
        .ok_or("this system does not report resident memory")?;
    Ok(IsolatedPeak {
        baseline_bytes: baseline,
        peak_bytes: peak.saturating_sub(baseline),
    })
}

/// One fit of `contender` on `run` in a fresh process (the current program
/// run again), reading the data from `data_dir`'s cache; it is killed after
/// `timeout`. The error says why the child gave no figures.
pub fn measure(
    run: &ScenarioRun,
    contender: &str,
    data_dir: &Path,
    timeout: Duration,
) -> Result<IsolatedPeak, String> {
    let request = Request {
        data_dir: data_dir.to_path_buf(),
        spec: run.spec,
        contender: contender.to_string(),
        max_iter: run.problem.max_iter,
        threads: run.problem.threads,
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = Command::new(exe)
        .env(
            CHILD_ENV,
            serde_json::to_string(&request).expect("a request serialises"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the measuring process: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the measuring process was stopped after {:.0} s",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("the measuring process: {e}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if !status.success() {
        let said = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("error: "))
            .map(|l| l.trim_start_matches("error: ").to_string());
        return Err(said.unwrap_or_else(|| format!("the measuring process ended with {status}")));
    }
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("the measuring process said {line:?}: {e}"))
}

/// [`measure`] into `record`: its process figures, or the reason there are
/// none in its environment (`memory.isolated`); the other figures stay. The
/// timeout allows ten times the record's slowest fit, plus two minutes to
/// load and prepare.
pub fn measure_into(run: &ScenarioRun, data_dir: &Path, record: &mut crate::results::Record) {
    let slowest = record.max_seconds().unwrap_or(0.0);
    let timeout = Duration::from_secs_f64(120.0 + 10.0 * slowest);
    match measure(run, &record.contender, data_dir, timeout) {
        Ok(peak) => {
            record.memory.process_peak_bytes = Some(peak.peak_bytes);
            record.memory.process_baseline_bytes = Some(peak.baseline_bytes);
        }
        Err(reason) => {
            record
                .environment
                .insert("memory.isolated".into(), format!("no figures: {reason}"));
        }
    }
}
