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

use crate::contenders::Dtype;
use crate::data::{BlobSpec, DataCache, Start};
use crate::protocol::ScenarioRun;

/// Set (to the request, as JSON) in the environment of a measuring child.
pub const CHILD_ENV: &str = "KMEANS_ISOLATED_FIT";

/// What a child is asked to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    data_dir: PathBuf,
    spec: BlobSpec,
    start: Start,
    dtype: Dtype,
    contender: String,
    max_iter: usize,
    threads: usize,
    /// The longest the fit may take, in seconds: past it the child stops.
    fit_budget: Option<f64>,
}

/// The exit code of a child whose fit outlived its budget.
const OVER_BUDGET: u8 = 3;

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

/// Ends this (child) process when a fit outlives `budget`: a fit cannot be
/// interrupted from inside (linfa's, say), and the child is disposable.
fn stop_after(budget: f64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(budget));
        eprintln!("error: one fit did not finish within the budget of {budget:.0} s");
        std::process::exit(i32::from(OVER_BUDGET));
    });
}

fn measure_here(request: &str) -> Result<IsolatedPeak, String> {
    let request: Request =
        serde_json::from_str(request).map_err(|e| format!("bad request {request:?}: {e}"))?;
    let cache = DataCache::new(&request.data_dir);
    let (run, _) = ScenarioRun::load_with(
        &cache,
        &request.spec,
        request.start,
        request.max_iter,
        request.threads,
    )
    .map_err(|e| e.to_string())?;
    let run = run.with_dtype(request.dtype);
    let mut contender = crate::contenders::create(&request.contender).map_err(|u| u.reason)?;
    let problem = run
        .problem_for(&request.contender)
        .map_err(|e| e.to_string())?;
    contender.prepare(&problem).map_err(|e| e.to_string())?;
    drop(problem);
    if let Some(budget) = request.fit_budget {
        stop_after(budget);
    }
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

/// Why a measuring process gave no figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoFigures {
    /// Its fit outlived the budget it was given.
    OverBudget(String),
    /// Anything else: the reason.
    Failed(String),
}

/// One fit of `contender` on `run` in a fresh process (the current program
/// run again), reading the data from `data_dir`'s cache; the child stops a
/// fit that outlives `fit_budget`, and is killed after `timeout`.
pub fn measure(
    run: &ScenarioRun,
    contender: &str,
    data_dir: &Path,
    timeout: Duration,
    fit_budget: Option<Duration>,
) -> Result<IsolatedPeak, NoFigures> {
    use NoFigures::Failed;
    let request = Request {
        data_dir: data_dir.to_path_buf(),
        spec: run.spec,
        start: run.start,
        dtype: run.problem.dtype(),
        contender: contender.to_string(),
        max_iter: run.problem.max_iter,
        threads: run.problem.threads,
        fit_budget: fit_budget.map(|b| b.as_secs_f64()),
    };
    let exe =
        std::env::current_exe().map_err(|e| Failed(format!("cannot find this program: {e}")))?;
    let mut child = Command::new(exe)
        .env(
            CHILD_ENV,
            serde_json::to_string(&request).expect("a request serialises"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failed(format!("cannot start the measuring process: {e}")))?;
    // Drained while the child runs, so that a chatty library cannot fill a
    // pipe and stall it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failed(format!(
                    "the measuring process was stopped after {:.0} s",
                    timeout.as_secs_f64()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Failed(format!("the measuring process: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let said = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("error: "))
            .map(|l| l.trim_start_matches("error: ").to_string());
        let said = said.unwrap_or_else(|| format!("the measuring process ended with {status}"));
        return Err(if status.code() == Some(i32::from(OVER_BUDGET)) {
            NoFigures::OverBudget(said)
        } else {
            Failed(said)
        });
    }
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .map_err(|e| Failed(format!("the measuring process said {line:?}: {e}")))
}

/// For a family with a fit budget, the first fit of `contender` runs in a
/// fresh process that stops it at the budget: `Err` with the reason when it
/// did not finish within it (the contender is then skipped rather than
/// holding the suite for minutes), else the figures to keep (`None` without
/// a budget, or when the process failed otherwise: measured again later).
pub fn first_fit_within(
    run: &ScenarioRun,
    contender: &str,
    data_dir: &Path,
    fit_budget: Option<Duration>,
) -> Result<Option<IsolatedPeak>, String> {
    let Some(budget) = fit_budget else {
        return Ok(None);
    };
    let timeout = budget + Duration::from_secs(300);
    match measure(run, contender, data_dir, timeout, Some(budget)) {
        Ok(peak) => Ok(Some(peak)),
        Err(NoFigures::OverBudget(reason)) => Err(reason),
        Err(NoFigures::Failed(_)) => Ok(None),
    }
}

/// [`measure`] into `record` (or `known` figures, from
/// [`first_fit_within`]): its process figures, or the reason there are none
/// in its environment (`memory.isolated`); the other figures stay. The
/// timeout allows ten times the record's slowest fit, plus two minutes to
/// load and prepare.
pub fn measure_into(
    run: &ScenarioRun,
    data_dir: &Path,
    record: &mut crate::results::Record,
    known: Option<IsolatedPeak>,
) {
    let slowest = record.max_seconds().unwrap_or(0.0);
    let timeout = Duration::from_secs_f64(120.0 + 10.0 * slowest);
    let measured = match known {
        Some(peak) => Ok(peak),
        None => measure(run, &record.contender, data_dir, timeout, None),
    };
    match measured {
        Ok(peak) => {
            record.memory.process_peak_bytes = Some(peak.peak_bytes);
            record.memory.process_baseline_bytes = Some(peak.baseline_bytes);
        }
        Err(NoFigures::OverBudget(reason) | NoFigures::Failed(reason)) => {
            record
                .environment
                .insert("memory.isolated".into(), format!("no figures: {reason}"));
        }
    }
}
