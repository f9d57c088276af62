//! One run of the suite as its user sees it: its id, which benches the
//! command line selects, and how long they should take.
//!
//! The bench reads Criterion's arguments here first, so a filter that
//! matches nothing or is not a valid regex is a one-line error before
//! Criterion starts, and the progress lines count the same benches
//! Criterion runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::contenders::{self, Runtime};
use crate::results::{read_records, results_path, Record};

/// The bench presets (`KMEANS_BENCH_PRESET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Short windows: every contender and check runs (CI).
    Quick,
    /// Longer windows: the numbers of the report.
    Full,
}

impl Preset {
    /// The preset named by `KMEANS_BENCH_PRESET` (default full), with a
    /// warning for an unknown name.
    pub fn from_env() -> (Self, Option<String>) {
        match std::env::var("KMEANS_BENCH_PRESET").as_deref() {
            Ok("quick") => (Preset::Quick, None),
            Ok("full") | Err(_) => (Preset::Full, None),
            Ok(other) => (
                Preset::Full,
                Some(format!("unknown KMEANS_BENCH_PRESET '{other}', using full")),
            ),
        }
    }

    /// Its name in records and ids.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Quick => "quick",
            Preset::Full => "full",
        }
    }

    /// Criterion's warm-up and measurement windows.
    pub fn windows(self) -> (Duration, Duration) {
        match self {
            Preset::Quick => (Duration::from_millis(20), Duration::from_millis(100)),
            Preset::Full => (Duration::from_millis(500), Duration::from_secs(3)),
        }
    }
}

/// What identifies one run's records: when it started, its preset, the
/// code's revision, and the name given to Criterion's `--save-baseline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// `20261203T195000Z-full-861de84` (`+dirty` after the revision when
    /// the tree had changes; no revision outside a git checkout).
    pub id: String,
    /// The preset's name.
    pub preset: String,
    /// The baseline name Criterion saves this run under, if one was given.
    pub saved_baseline: Option<String>,
}

impl RunInfo {
    /// A run starting now.
    pub fn start(preset: Preset, saved_baseline: Option<String>) -> Self {
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let compact: String = stamp
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let id = match git_revision() {
            Some(rev) => format!("{compact}-{}-{rev}", preset.name()),
            None => format!("{compact}-{}", preset.name()),
        };
        RunInfo {
            id,
            preset: preset.name().into(),
            saved_baseline,
        }
    }
}

/// The checkout's short revision, `+dirty` when tracked files changed.
fn git_revision() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short=10", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{rev}+dirty") } else { rev })
}

/// Which benches Criterion's command line selects.
#[derive(Debug, Clone)]
pub enum Filter {
    /// No filter.
    All,
    /// Ids the regex matches (Criterion's default).
    Regex(regex::Regex),
    /// The id itself (`--exact`).
    Exact(String),
    /// None (`--ignored`: the suite has no ignored bench).
    Nothing,
}

impl Filter {
    /// Whether it selects bench `id`.
    pub fn matches(&self, id: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Regex(re) => re.is_match(id),
            Filter::Exact(exact) => id == exact,
            Filter::Nothing => false,
        }
    }
}

/// The parts of Criterion's command line the suite acts on.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Which benches run.
    pub filter: Filter,
    /// The filter as typed, for messages.
    pub filter_text: Option<String>,
    /// `--list`: list ids, run nothing.
    pub list: bool,
    /// `--test`: each bench once, as a test.
    pub test: bool,
    /// `--save-baseline NAME`.
    pub save_baseline: Option<String>,
}

/// Criterion's options that take a value (as of Criterion 0.8).
const VALUED: &[&str] = &[
    "-c",
    "--color",
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
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

impl BenchArgs {
    /// Reads the arguments after the program name the way Criterion does;
    /// an invalid filter regex is an error here rather than its panic.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut filter_text = None;
        let (mut list, mut test, mut exact, mut ignored) = (false, false, false, false);
        let mut save_baseline = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            match flag.as_str() {
                "--list" => list = true,
                "--test" => test = true,
                "--exact" => exact = true,
                "--ignored" => ignored = true,
                f if VALUED.contains(&f) => {
                    let value = match inline {
                        Some(v) => Some(v),
                        None => args.next(),
                    };
                    if matches!(f, "-s" | "--save-baseline") {
                        save_baseline = value;
                    }
                }
                f if f.starts_with('-') => {}
                _ if filter_text.is_none() => filter_text = Some(arg),
                _ => {
                    return Err(format!(
                        "more than one filter: '{}' and '{arg}'",
                        filter_text.unwrap_or_default()
                    ))
                }
            }
        }
        let filter = match (&filter_text, exact, ignored) {
            (_, _, true) => Filter::Nothing,
            (None, _, _) => Filter::All,
            (Some(text), true, _) => Filter::Exact(text.clone()),
            (Some(text), false, _) => Filter::Regex(regex::Regex::new(text).map_err(|e| {
                let first = e.to_string();
                let last = first.lines().last().unwrap_or("").trim().to_string();
                format!("the filter '{text}' is not a valid regular expression: {last}")
            })?),
        };
        Ok(BenchArgs {
            filter,
            filter_text,
            list,
            test,
            save_baseline,
        })
    }
}

/// Estimated wall-clock seconds of each bench, from earlier records of the
/// same bench id: a previous run in this results folder first (the same
/// preset), else the reference report's, scaled from that machine's floors
/// to this one's.
pub struct Estimates {
    /// Earlier records by bench id, newest last: (record, from the reference).
    earlier: BTreeMap<String, Record>,
}

impl Estimates {
    /// Reads `results_dir`'s records of `preset` and the reference's (both
    /// optional: a missing or unreadable file only means fewer estimates).
    pub fn load(results_dir: &Path, reference_dir: &Path, preset: Preset) -> Self {
        let mut earlier = BTreeMap::new();
        for dir in [reference_dir, results_dir] {
            let Ok((records, _)) = read_records(&results_path(dir)) else {
                continue;
            };
            for r in records {
                let same_preset = r
                    .environment
                    .get("bench.preset")
                    .is_none_or(|p| p == preset.name());
                if same_preset && r.status == crate::results::Status::Ok {
                    earlier.insert(
                        crate::suite::bench_id(&r.family, r.scenario, &r.contender),
                        r,
                    );
                }
            }
        }
        Estimates { earlier }
    }

    /// Seconds bench `id` should take under `preset` on a machine with
    /// these floors (`floor.*` keys), `None` without an earlier record.
    pub fn seconds(
        &self,
        id: &str,
        preset: Preset,
        floors: &BTreeMap<String, String>,
    ) -> Option<f64> {
        let r = self.earlier.get(id)?;
        let scale = floor_scale(&r.environment, floors);
        if let Some(wall) = r.wall_seconds {
            return Some(wall * scale);
        }
        // A record without its wall time: the fits Criterion runs in its
        // windows plus the untimed ones (warm-up, memory, traced, isolated),
        // and the set-up of a Python contender's two processes.
        let fit = r.median_seconds()? * scale;
        let (warm_up, measure) = preset.windows();
        let python = contenders::entry(&r.contender).map(|e| e.runtime()) == Some(Runtime::Python);
        let setup = if python { 3.0 } else { 0.5 };
        Some(
            setup
                + fit.max(warm_up.as_secs_f64())
                + (10.0 * fit).max(measure.as_secs_f64())
                + 4.0 * fit,
        )
    }
}

/// How much slower this machine should be than the one that made `then`:
/// the geometric mean of the FMA peak and read bandwidth ratios (1 when
/// either side lacks them).
fn floor_scale(then: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> f64 {
    let ratio = |key: &str| {
        let get =
            |m: &BTreeMap<String, String>| m.get(key)?.parse::<f64>().ok().filter(|v| *v > 0.0);
        Some(get(then)? / get(now)?)
    };
    match (
        ratio("floor.fma_peak_flops"),
        ratio("floor.read_bytes_per_second"),
    ) {
        (Some(a), Some(b)) => (a * b).sqrt().clamp(0.1, 10.0),
        _ => 1.0,
    }
}

/// The `[i/N]` lines: what runs next, its estimate, the time spent and an
/// estimate of the time left, corrected by how the estimates have fared.
pub struct Progress {
    estimates: Vec<Option<f64>>,
    started: std::time::Instant,
    done: usize,
    /// Estimated seconds of the benches done that had an estimate, and the
    /// seconds they took.
    estimated_done: f64,
    actual_done: f64,
}

impl Progress {
    /// Progress over benches with these estimates.
    pub fn new(estimates: Vec<Option<f64>>) -> Self {
        Progress {
            estimates,
            started: std::time::Instant::now(),
            done: 0,
            estimated_done: 0.0,
            actual_done: 0.0,
        }
    }

    /// The opening line: how many benches and how long they should take.
    pub fn opening(&self) -> String {
        let total = self.estimates.len();
        let known: Vec<f64> = self.estimates.iter().flatten().copied().collect();
        if known.is_empty() {
            return format!("{total} bench(es) selected; no earlier record to estimate their time");
        }
        let sum: f64 = known.iter().sum();
        let mut line = format!("{total} bench(es) selected, estimated {}", clock(sum));
        if known.len() < total {
            let _ = std::fmt::Write::write_fmt(
                &mut line,
                format_args!(" for the {} with an earlier record", known.len()),
            );
        }
        line
    }

    /// The line before bench `i` (0-based) of `id`.
    pub fn before(&self, i: usize, id: &str) -> String {
        let estimate = self.estimates.get(i).copied().flatten();
        let each = estimate.map_or_else(|| "~?".into(), |s| format!("~{}", short(s)));
        let factor = if self.estimated_done > 5.0 {
            (self.actual_done / self.estimated_done).clamp(0.25, 4.0)
        } else {
            1.0
        };
        let rest = &self.estimates[i.min(self.estimates.len())..];
        let left = if rest.iter().any(Option::is_some) {
            clock(rest.iter().flatten().sum::<f64>() * factor)
        } else {
            "?".into()
        };
        format!(
            "[{}/{}] {id}  {each}  (elapsed {}, ~{left} left)",
            i + 1,
            self.estimates.len(),
            clock(self.started.elapsed().as_secs_f64()),
        )
    }

    /// Bench `i` took `seconds`.
    pub fn after(&mut self, i: usize, seconds: f64) {
        self.done += 1;
        if let Some(Some(e)) = self.estimates.get(i) {
            self.estimated_done += e;
            self.actual_done += seconds;
        }
    }
}

/// `1:05:09` or `2:10`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `40 s`, `3 min`, `0.4 s`.
fn short(seconds: f64) -> String {
    if seconds >= 120.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds >= 10.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{seconds:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchArgs, String> {
        BenchArgs::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_filter_is_read_as_criterion_reads_it() {
        let a = parse(&["--bench", "kmeans/100000x50"]).unwrap();
        assert!(a.filter.matches("kmeans/100000x50/k8/rust"));
        assert!(!a.filter.matches("kmeans/10000x50/k8/rust"));
        assert!(!a.list);
        // Values of options are not taken for the filter.
        let a = parse(&["--save-baseline", "before", "--sample-size=20", "k30/rust$"]).unwrap();
        assert_eq!(a.save_baseline.as_deref(), Some("before"));
        assert!(a.filter.matches("kmeans/1000x2/k30/rust"));
        assert!(!a.filter.matches("kmeans/1000x2/k30/rust-plain"));
        let a = parse(&["--exact", "kmeans/1000x2/k2/rust", "--list"]).unwrap();
        assert!(a.list);
        assert!(a.filter.matches("kmeans/1000x2/k2/rust"));
        assert!(!a.filter.matches("kmeans/1000x2/k2/rust-plain"));
        assert!(matches!(parse(&[]).unwrap().filter, Filter::All));
        assert!(matches!(
            parse(&["--ignored"]).unwrap().filter,
            Filter::Nothing
        ));
    }

    #[test]
    fn an_invalid_filter_is_one_line() {
        let e = parse(&["kmeans/(100"]).unwrap_err();
        assert!(
            e.contains("kmeans/(100") && e.contains("not a valid regular expression"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn run_ids_say_when_and_which_preset() {
        let run = RunInfo::start(Preset::Quick, Some("main".into()));
        let stamp = run.id.split('-').next().unwrap();
        assert_eq!(stamp.len(), "20261203T195000Z".len(), "{}", run.id);
        assert!(stamp.ends_with('Z') && stamp.contains('T'));
        assert!(run.id.contains("-quick"));
        assert_eq!(run.preset, "quick");
    }

    #[test]
    fn estimates_come_from_earlier_records_scaled_by_the_floors() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = crate::data::Scenario::new(1000, 2, 2).unwrap();
        let mut r = Record::new("kmeans", scenario, 1.0, "rust", 2);
        r.sample_seconds = vec![1.0, 1.0, 1.0];
        r.environment.insert("bench.preset".into(), "full".into());
        r.environment
            .insert("floor.fma_peak_flops".into(), "4e10".into());
        r.environment
            .insert("floor.read_bytes_per_second".into(), "4e10".into());
        crate::results::append_records(dir.path(), &[r]).unwrap();
        let none = tempfile::tempdir().unwrap();
        let estimates = Estimates::load(none.path(), dir.path(), Preset::Full);
        let id = "kmeans/1000x2/k2/rust";
        let mut floors = BTreeMap::new();
        // No floors here: unscaled. 0.5 set-up, 1 warm-up, 10 timed, 4 more.
        assert_eq!(estimates.seconds(id, Preset::Full, &floors), Some(15.5));
        // A machine half as fast on both counts: twice the fit time.
        floors.insert("floor.fma_peak_flops".into(), "2e10".into());
        floors.insert("floor.read_bytes_per_second".into(), "2e10".into());
        assert_eq!(
            estimates.seconds(id, Preset::Full, &floors),
            Some(0.5 + 30.0)
        );
        assert_eq!(
            estimates.seconds("kmeans/1000x2/k2/numpy", Preset::Full, &floors),
            None
        );
        // Quick-preset records do not estimate a full run.
        let quick = Estimates::load(none.path(), dir.path(), Preset::Quick);
        assert_eq!(quick.seconds(id, Preset::Quick, &floors), None);
    }

    #[test]
    fn progress_lines_count_and_correct_their_estimate() {
        let mut p = Progress::new(vec![Some(10.0), None, Some(30.0)]);
        assert!(p
            .opening()
            .contains("3 bench(es) selected, estimated 0:40 for the 2"));
        let line = p.before(0, "kmeans/1000x2/k2/rust");
        assert!(
            line.starts_with("[1/3] kmeans/1000x2/k2/rust  ~10 s  (elapsed 0:00, ~0:40 left)"),
            "{line}"
        );
        // The first bench took twice its estimate: what is left doubles.
        p.after(0, 20.0);
        assert!(
            p.before(1, "x").ends_with("~1:00 left)"),
            "{}",
            p.before(1, "x")
        );
        assert!(p.before(1, "x").contains("~?"));
        assert_eq!(clock(3909.0), "1:05:09");
    }
}
