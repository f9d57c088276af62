//! One result record per contender per scenario, and its writers: JSON lines
//! (`target-reports/results.jsonl`, every record) and one CSV per scenario
//! (`target-reports/csv/…`, the latest record of each contender). Every write
//! replaces its file atomically, so an interrupted run leaves earlier records
//! readable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Scenario;
use crate::error::{Error, Result};

/// Peak memory of one fit, by source. Each figure is above the level at the
/// fit's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemoryFigures {
    /// Peak Rust heap, from the counting global allocator (Rust contenders).
    pub alloc_peak_bytes: Option<u64>,
    /// Peak traced by Python's `tracemalloc` (Python contenders; NumPy
    /// reports its buffers there).
    pub traced_peak_bytes: Option<u64>,
    /// Peak resident memory growth (every contender).
    pub resident_peak_bytes: Option<u64>,
}

/// How a contender's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran, numbers recorded.
    Ok,
    /// Not run: unavailable here (the reason says why).
    Skipped,
    /// Ran and failed (the reason carries the error).
    Failed,
}

/// Whether a contender's inertia is within its tolerance of the scenario's best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Within tolerance.
    Pass,
    /// Outside tolerance: its numbers are not a valid result.
    Fail,
}

/// Everything recorded about one contender on one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `kmeans` (the sweep) or `kmeans-overlap` (overlapping blobs).
    pub family: String,
    /// The data's shape.
    pub scenario: Scenario,
    /// The blobs' standard deviation.
    pub blob_std: f64,
    /// The contender.
    #[serde(rename = "impl")]
    pub contender: String,
    /// How the run ended.
    pub status: Status,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// Threads every contender was given.
    pub threads: usize,
    /// Wall-clock seconds of every timed fit, in order.
    pub sample_seconds: Vec<f64>,
    /// Iterations of the fit.
    pub n_iter: Option<usize>,
    /// Squared distances computed in each pass over the data, where the
    /// contender reports its work (`rust`); absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_distances: Option<Vec<u64>>,
    /// Of those, the distances computed in `f32` (the `f64` kernel's
    /// screen), per pass; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_f32_distances: Option<Vec<u64>>,
    /// Rows of the data read in each pass, where the contender reports them
    /// (a step whose rows the bounds settle reads few); absent: all rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_rows: Option<Vec<u64>>,
    /// Inertia recomputed by us from the contender's centroids.
    pub inertia: Option<f64>,
    /// `(inertia - best) / best` over the scenario's contenders.
    pub rel_inertia_diff: Option<f64>,
    /// The tolerance the check used for this contender.
    pub inertia_tolerance: Option<f64>,
    /// The inertia check.
    pub inertia_check: Option<Check>,
    /// Adjusted Rand index against the true blobs.
    pub ari: Option<f64>,
    /// Mean silhouette on a fixed-seed subsample.
    pub silhouette: Option<f64>,
    /// Peak memory by source.
    pub memory: MemoryFigures,
    /// Versions, thread pools, stopping rules, machine.
    pub environment: BTreeMap<String, String>,
    /// Seconds since the Unix epoch when recorded.
    pub recorded_at: u64,
}

impl Record {
    /// A record with no numbers yet.
    pub fn new(
        family: &str,
        scenario: Scenario,
        blob_std: f64,
        contender: &str,
        threads: usize,
    ) -> Self {
        Record {
            family: family.to_string(),
            scenario,
            blob_std,
            contender: contender.to_string(),
            status: Status::Ok,
            reason: None,
            threads,
            sample_seconds: Vec::new(),
            n_iter: None,
            pass_distances: None,
            pass_f32_distances: None,
            pass_rows: None,
            inertia: None,
            rel_inertia_diff: None,
            inertia_tolerance: None,
            inertia_check: None,
            ari: None,
            silhouette: None,
            memory: MemoryFigures::default(),
            environment: BTreeMap::new(),
            recorded_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The median of the timed fits.
    pub fn median_seconds(&self) -> Option<f64> {
        let mut s = self.sample_seconds.clone();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let mid = s.len() / 2;
        Some(if s.len().is_multiple_of(2) {
            (s[mid - 1] + s[mid]) / 2.0
        } else {
            s[mid]
        })
    }

    /// The fastest timed fit.
    pub fn min_seconds(&self) -> Option<f64> {
        self.sample_seconds.iter().copied().reduce(f64::min)
    }

    /// The slowest timed fit.
    pub fn max_seconds(&self) -> Option<f64> {
        self.sample_seconds.iter().copied().reduce(f64::max)
    }

    /// Median seconds per iteration.
    pub fn seconds_per_iter(&self) -> Option<f64> {
        Some(self.median_seconds()? / self.n_iter.filter(|&n| n > 0)? as f64)
    }

    /// The least time the fit's work can take on the measured machine: each
    /// pass over X bound by the slower of reading what it reads of X (`bytes
    /// / read bandwidth`, all rows unless [`Self::pass_rows`] says fewer) and
    /// its arithmetic (`2 d` flops per squared distance over the FMA peak of
    /// the precision it was computed in), summed over passes. The passes
    /// are the contender's own
    /// count where it reports one ([`Self::pass_distances`]); otherwise those
    /// of a plain Lloyd fit: a validation pass, one pass of `n k` distances
    /// per iteration and a final inertia pass of `n`. `None` without floors.
    pub fn floor_seconds(&self) -> Option<f64> {
        let get = |key: &str| {
            self.environment
                .get(key)?
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0)
        };
        let (peak, bandwidth) = (
            get("floor.fma_peak_flops")?,
            get("floor.read_bytes_per_second")?,
        );
        let Scenario { n, d, k } = self.scenario;
        let pass_f32 = |i: usize| {
            self.pass_f32_distances
                .as_ref()
                .and_then(|r| r.get(i).copied())
                .unwrap_or(0)
        };
        // The f32 peak is needed only where distances were computed in f32.
        let passes = self.pass_distances.as_ref().map_or(0, Vec::len);
        let any_f32 = self
            .pass_f32_distances
            .iter()
            .flatten()
            .take(passes)
            .any(|&p| p > 0);
        let peak_f32 = if any_f32 {
            get("floor.fma_peak_flops_f32")?
        } else {
            peak
        };
        let read = |rows: u64| (rows as usize * d * 8) as f64 / bandwidth;
        let flops = |distances: u64| 2.0 * (d as f64) * distances as f64;
        let pass = |distances: u64, f32_distances: u64, rows: u64| {
            let arithmetic =
                flops(distances - f32_distances) / peak + flops(f32_distances) / peak_f32;
            read(rows).max(arithmetic)
        };
        let n_rows = n as u64;
        let pass_rows = |i: usize| self.pass_rows.as_ref().and_then(|r| r.get(i).copied());
        Some(match &self.pass_distances {
            Some(passes) => passes
                .iter()
                .enumerate()
                .map(|(i, &p)| pass(p, pass_f32(i).min(p), pass_rows(i).unwrap_or(n_rows)))
                .sum(),
            None => {
                let iterations = self.n_iter? as f64;
                pass(0, 0, n_rows)
                    + iterations * pass((n * k) as u64, 0, n_rows)
                    + pass(n_rows, 0, n_rows)
            }
        })
    }

    /// Passes over X, how many times over the rows of X they read in all
    /// (fewer than the passes where bounds settle rows), and GFLOP (2 d per
    /// squared distance), where the contender reports its work.
    pub fn work(&self) -> Option<(usize, f64, f64)> {
        let passes = self.pass_distances.as_ref()?;
        let distances: u64 = passes.iter().sum();
        let flops = 2.0 * self.scenario.d as f64 * distances as f64;
        let reads = match &self.pass_rows {
            Some(rows) => rows.iter().sum::<u64>() as f64 / self.scenario.n.max(1) as f64,
            None => passes.len() as f64,
        };
        Some((passes.len(), reads, flops / 1e9))
    }

    /// The scenario's id within its family, e.g. `kmeans/1000x2/k2`.
    pub fn scenario_id(&self) -> String {
        format!("{}/{}", self.family, self.scenario.id())
    }
}

/// The results folder: `$KMEANS_REPORT_DIR`, else `target-reports/` in the crate.
pub fn report_dir() -> PathBuf {
    match std::env::var_os("KMEANS_REPORT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target-reports"),
    }
}

/// The JSON-lines file of all records in `dir`.
pub fn results_path(dir: &Path) -> PathBuf {
    dir.join("results.jsonl")
}

/// Reads every record; lines that do not parse (or are not UTF-8) are
/// returned as warnings with their line numbers rather than failing the
/// whole file.
pub fn read_records(path: &Path) -> Result<(Vec<Record>, Vec<String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = match std::str::from_utf8(line) {
            Ok(line) => line,
            Err(e) => {
                warnings.push(format!(
                    "{}: line {}: not UTF-8 ({e})",
                    path.display(),
                    i + 1
                ));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(e) => warnings.push(format!("{}: line {}: {e}", path.display(), i + 1)),
        }
    }
    Ok((records, warnings))
}

/// Appends records to `results.jsonl` in `dir`, then updates the CSV of each
/// scenario they touch.
///
/// Writers hold an exclusive lock on `results.lock` while they append (one
/// write of whole lines, after a newline if a torn line ends the file) and
/// update the CSVs, so runs writing to one folder at once lose nothing and
/// the CSVs agree with the records. Neither step reads the history: each CSV
/// keeps its rows of other contenders and takes the new ones.
pub fn append_records(dir: &Path, new: &[Record]) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    crate::data::create_folder(dir)?;
    let path = results_path(dir);
    let lock_path = dir.join("results.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    let mut text = String::new();
    for record in new {
        let line = serde_json::to_string(record).map_err(|e| Error::Results {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let io = |e| Error::io(&path, e);
    if file.metadata().map_err(io)?.len() > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1)).map_err(io)?;
        file.read_exact(&mut last).map_err(io)?;
        if last[0] != b'\n' {
            text.insert(0, '\n');
        }
    }
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    let mut touched: Vec<(String, Scenario)> =
        new.iter().map(|r| (r.family.clone(), r.scenario)).collect();
    touched.sort();
    touched.dedup();
    for (family, scenario) in touched {
        let rows = latest_per_contender(
            new.iter()
                .filter(|r| r.family == family && r.scenario == scenario),
        );
        merge_csv(&csv_path(dir, &family, scenario), &rows)?;
    }
    Ok(())
}

/// Rewrites a scenario's CSV with `rows` in place of the rows of the same
/// contenders, keeping the others, in registry order.
fn merge_csv(path: &Path, rows: &[&Record]) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    let contender = |line: &str| line.split(',').next().unwrap_or("").to_string();
    let mut lines: Vec<(String, String)> = existing
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| (contender(line), line.to_string()))
        .filter(|(name, _)| rows.iter().all(|r| r.contender != *name))
        .collect();
    lines.extend(rows.iter().map(|r| (r.contender.clone(), csv_row(r))));
    lines.sort_by_key(|(name, _)| (crate::contenders::position(name), name.clone()));
    if let Some(parent) = path.parent() {
        crate::data::create_folder(parent)?;
    }
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for (_, line) in lines {
        text.push_str(&line);
        text.push('\n');
    }
    crate::data::write_atomic_bytes(path, text.as_bytes())
}

/// The latest record of each contender, in [`crate::contenders::REGISTRY`] order.
pub fn latest_per_contender<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<&'a Record> {
    let mut latest: BTreeMap<&str, &Record> = BTreeMap::new();
    for r in records {
        latest.insert(&r.contender, r);
    }
    let order = crate::contenders::position;
    let mut rows: Vec<&Record> = latest.into_values().collect();
    rows.sort_by_key(|r| (order(&r.contender), r.contender.clone()));
    rows
}

/// `csv/{n}x{d}-k{k}.csv` for the sweep, `csv/{family}-{n}x{d}-k{k}.csv` otherwise.
pub fn csv_path(dir: &Path, family: &str, scenario: Scenario) -> PathBuf {
    let stem = format!("{}x{}-k{}", scenario.n, scenario.d, scenario.k);
    let name = if family == "kmeans" {
        stem
    } else {
        format!("{family}-{stem}")
    };
    dir.join("csv").join(format!("{name}.csv"))
}

/// The CSV columns, units in their names.
pub const CSV_HEADER: &str = "impl,status,n,d,k,threads,samples,median_seconds,min_seconds,max_seconds,n_iter,seconds_per_iter,inertia,rel_inertia_diff,inertia_check,ari,silhouette,alloc_peak_bytes,traced_peak_bytes,resident_peak_bytes,reason";

fn csv_row(r: &Record) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let check = r
        .inertia_check
        .map(|c| if c == Check::Pass { "pass" } else { "FAIL" });
    let reason = r.reason.as_deref().unwrap_or("").replace('"', "'");
    [
        r.contender.clone(),
        status,
        r.scenario.n.to_string(),
        r.scenario.d.to_string(),
        r.scenario.k.to_string(),
        r.threads.to_string(),
        r.sample_seconds.len().to_string(),
        opt(r.median_seconds()),
        opt(r.min_seconds()),
        opt(r.max_seconds()),
        opt(r.n_iter),
        opt(r.seconds_per_iter()),
        opt(r.inertia),
        opt(r.rel_inertia_diff),
        opt(check),
        opt(r.ari),
        opt(r.silhouette),
        opt(r.memory.alloc_peak_bytes),
        opt(r.memory.traced_peak_bytes),
        opt(r.memory.resident_peak_bytes),
        format!("\"{reason}\""),
    ]
    .join(",")
}

/// Writes one scenario's rows as CSV, atomically.
pub fn write_csv(path: &Path, rows: &[&Record]) -> Result<()> {
    if let Some(parent) = path.parent() {
        crate::data::create_folder(parent)?;
    }
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(&csv_row(r));
        text.push('\n');
    }
    crate::data::write_atomic_bytes(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(contender: &str, seconds: &[f64]) -> Record {
        let mut r = Record::new(
            "kmeans",
            Scenario::new(1000, 2, 2).unwrap(),
            1.0,
            contender,
            2,
        );
        r.sample_seconds = seconds.to_vec();
        r.n_iter = Some(4);
        r.inertia = Some(123.5);
        r.rel_inertia_diff = Some(0.0);
        r.inertia_check = Some(Check::Pass);
        r.memory.alloc_peak_bytes = Some(4096);
        r.environment.insert("numpy".into(), "2.4.6".into());
        r
    }

    #[test]
    fn record_round_trips_through_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let a = record("rust", &[0.5, 0.1, 0.3]);
        let b = record("numpy", &[1.0]);
        append_records(dir.path(), std::slice::from_ref(&a)).unwrap();
        append_records(dir.path(), std::slice::from_ref(&b)).unwrap();
        let (records, warnings) = read_records(&results_path(dir.path())).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(records, vec![a.clone(), b]);
        assert_eq!(a.median_seconds(), Some(0.3));
        assert_eq!(a.min_seconds(), Some(0.1));
        assert_eq!(a.seconds_per_iter(), Some(0.3 / 4.0));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["impl"], "rust");
        assert_eq!(json["status"], "ok");
    }

    #[test]
    fn the_floor_reads_only_the_rows_each_pass_read() {
        // 1000 x 2 rows of f64: 16 kB a pass; 8e3 B/s and 4e3 flop/s make
        // a full pass 2 s to read, and 1000 distances (4000 flops) 1 s.
        let mut r = record("rust", &[10.0]);
        r.environment
            .insert("floor.fma_peak_flops".into(), "4e3".into());
        r.environment
            .insert("floor.read_bytes_per_second".into(), "8e3".into());
        r.pass_distances = Some(vec![3000, 1000]);
        assert_eq!(r.floor_seconds(), Some(3.0 + 2.0));
        assert_eq!(r.work(), Some((2, 2.0, 16e3 / 1e9)));
        // A bounded step that read 100 rows: its arithmetic bounds it.
        r.pass_rows = Some(vec![1000, 100]);
        assert_eq!(r.floor_seconds(), Some(3.0 + 1.0));
        assert_eq!(r.work(), Some((2, 1.1, 16e3 / 1e9)));
        // Without a count of its own, a contender is given a plain Lloyd
        // fit's: a check, 4 full distance passes (2000 distances, 2 s each)
        // and an inertia pass.
        let mut plain = record("numpy", &[10.0]);
        plain.environment = r.environment.clone();
        assert_eq!(plain.floor_seconds(), Some(2.0 + 4.0 * 2.0 + 2.0));
        // Distances computed in f32 count at the f32 peak, which is then
        // required: 2000 of the first pass's 3000 at twice the f64 peak take
        // 1 s instead of 2.
        r.pass_f32_distances = Some(vec![2000, 0]);
        assert_eq!(r.floor_seconds(), None);
        r.environment
            .insert("floor.fma_peak_flops_f32".into(), "8e3".into());
        assert_eq!(r.floor_seconds(), Some(2.0 + 1.0));
    }

    #[test]
    fn csv_has_the_header_and_one_row_per_contender() {
        let dir = tempfile::tempdir().unwrap();
        append_records(
            dir.path(),
            &[record("numpy", &[1.0]), record("rust", &[0.2])],
        )
        .unwrap();
        // A newer rust record replaces the older one in the CSV.
        append_records(dir.path(), &[record("rust", &[0.1])]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("csv/1000x2-k2.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("rust,ok,1000,2,2,2,1,0.1,0.1,0.1,4,0.025,123.5,0,pass,"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("numpy,ok,"));
        assert_eq!(lines[1].split(',').count(), CSV_HEADER.split(',').count());
    }

    #[test]
    fn a_torn_last_line_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        append_records(dir.path(), &[record("rust", &[0.2])]).unwrap();
        let path = results_path(dir.path());
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"family\": \"kmea");
        std::fs::write(&path, text).unwrap();
        let (records, warnings) = read_records(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("line 2"));
        // Appending again keeps the good record and the new one.
        append_records(dir.path(), &[record("numpy", &[1.0])]).unwrap();
        assert_eq!(read_records(&path).unwrap().0.len(), 2);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        append_records(dir.path(), &[record("rust", &[0.2])]).unwrap();
        let path = results_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"family\": \"k\xffmeans\"}\n");
        std::fs::write(&path, bytes).unwrap();
        append_records(dir.path(), &[record("numpy", &[1.0])]).unwrap();
        let (records, warnings) = read_records(&path).unwrap();
        assert_eq!(records.len(), 2, "both good records are kept");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("line 2") && warnings[0].contains("not UTF-8"));
    }

    #[test]
    fn concurrent_writers_lose_no_record_and_the_csv_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "rust",
            "rust-plain",
            "linfa",
            "numpy",
            "sklearn",
            "sklearn-elkan",
        ];
        std::thread::scope(|scope| {
            for (w, name) in names.iter().enumerate() {
                let dir = dir.path();
                scope.spawn(move || {
                    for i in 0..20 {
                        let seconds = (w * 100 + i) as f64;
                        append_records(dir, &[record(name, &[seconds]), record(name, &[seconds])])
                            .unwrap();
                    }
                });
            }
        });
        let (records, warnings) = read_records(&results_path(dir.path())).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(records.len(), names.len() * 20 * 2);
        // The CSV holds the latest record of every contender.
        let csv = std::fs::read_to_string(csv_path(
            dir.path(),
            "kmeans",
            Scenario::new(1000, 2, 2).unwrap(),
        ))
        .unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len(), names.len());
        for (w, name) in names.iter().enumerate() {
            let row = rows
                .iter()
                .find(|r| r.starts_with(&format!("{name},")))
                .unwrap();
            let last = format!(",{},", (w * 100 + 19) as f64);
            assert!(row.contains(&last), "{row} should hold {last}");
        }
    }
}
