//! The record: everything measured about one contender on one scenario.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::Scenario;
use crate::kmeans::Pass;

/// Peak memory of one fit, by source. Each figure is above the level at the
/// fit's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemoryFigures {
    /// Peak Rust heap, from the counting global allocator (Rust contenders).
    pub alloc_peak_bytes: Option<u64>,
    /// Peak traced by Python's `tracemalloc` (Python contenders; NumPy
    /// reports its buffers there).
    pub traced_peak_bytes: Option<u64>,
    /// Growth of the bench process's resident high-water mark over the fit
    /// (every contender): a diagnostic, often 0 B where earlier fits left
    /// pages to reuse.
    pub resident_peak_bytes: Option<u64>,
    /// The headline: peak resident size of one fit in a fresh process above
    /// its size just before the fit (see [`crate::isolated`]).
    #[serde(default)]
    pub process_peak_bytes: Option<u64>,
    /// That process's resident size just before the fit: the data, the
    /// prepared contender (and for Python ones the interpreter and modules).
    #[serde(default)]
    pub process_baseline_bytes: Option<u64>,
}

/// A contender's work pass by pass, where it reports it.
///
/// Stored as three per-pass lists (`pass_distances`, `pass_f32_distances`,
/// `pass_rows`), the format of every results file written so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PassColumns", into = "PassColumns")]
pub struct Passes(pub Option<Vec<Pass>>);

/// [`Passes`] as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PassColumns {
    /// Squared distances computed in each pass over the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pass_distances: Option<Vec<u64>>,
    /// Of those, the distances computed in `f32` (the `f64` kernel's
    /// screen); absent in early records: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pass_f32_distances: Option<Vec<u64>>,
    /// Rows of the data read in each pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pass_rows: Option<Vec<u64>>,
}

impl TryFrom<PassColumns> for Passes {
    type Error = String;

    fn try_from(c: PassColumns) -> Result<Self, String> {
        let Some(distances) = c.pass_distances else {
            return Ok(Passes(None));
        };
        let rows = c.pass_rows.unwrap_or_default();
        let f32_distances = c
            .pass_f32_distances
            .unwrap_or_else(|| vec![0; distances.len()]);
        if rows.len() != distances.len() || f32_distances.len() != distances.len() {
            return Err(format!(
                "per-pass lists of different lengths: {} distances, {} f32 distances, {} rows",
                distances.len(),
                f32_distances.len(),
                rows.len()
            ));
        }
        Ok(Passes(Some(
            distances
                .iter()
                .zip(&f32_distances)
                .zip(&rows)
                .map(|((&distances, &f32_distances), &rows)| Pass {
                    distances,
                    f32_distances: f32_distances.min(distances),
                    rows,
                })
                .collect(),
        )))
    }
}

impl From<Passes> for PassColumns {
    fn from(p: Passes) -> Self {
        let Some(passes) = p.0 else {
            return PassColumns::default();
        };
        let column = |f: fn(&Pass) -> u64| Some(passes.iter().map(f).collect());
        PassColumns {
            pass_distances: column(|p| p.distances),
            pass_f32_distances: column(|p| p.f32_distances),
            pass_rows: column(|p| p.rows),
        }
    }
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
    /// The work pass by pass, where the contender reports it (`rust`);
    /// stored as the three per-pass lists `pass_distances`,
    /// `pass_f32_distances` and `pass_rows`.
    #[serde(flatten)]
    pub work: Passes,
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
    /// The run that made it (start time, preset, revision: see
    /// [`crate::run::RunInfo`]); absent in records of early runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The name Criterion saved that run under (`--save-baseline NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_baseline: Option<String>,
    /// Wall-clock seconds of the whole bench: set-up, Criterion's windows
    /// and the untimed fits (what the next run's progress estimates use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
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
            work: Passes::default(),
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
            run_id: None,
            saved_baseline: None,
            wall_seconds: None,
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
    /// / read bandwidth`, what each pass read) and
    /// its arithmetic (`2 d` flops per squared distance over the FMA peak of
    /// the precision it was computed in), summed over passes. The passes
    /// are the contender's own
    /// count where it reports one ([`Self::work`]); otherwise those
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
        // The f32 peak is needed only where distances were computed in f32.
        let any_f32 = self.work.0.iter().flatten().any(|p| p.f32_distances > 0);
        let peak_f32 = if any_f32 {
            get("floor.fma_peak_flops_f32")?
        } else {
            peak
        };
        let read = |rows: u64| (rows as usize * d * 8) as f64 / bandwidth;
        let flops = |distances: u64| 2.0 * (d as f64) * distances as f64;
        let pass = |p: Pass| {
            let arithmetic =
                flops(p.distances - p.f32_distances) / peak + flops(p.f32_distances) / peak_f32;
            read(p.rows).max(arithmetic)
        };
        let n_rows = n as u64;
        let plain = |distances: u64| Pass {
            distances,
            f32_distances: 0,
            rows: n_rows,
        };
        Some(match &self.work.0 {
            Some(passes) => passes.iter().map(|&p| pass(p)).sum(),
            None => {
                let iterations = self.n_iter? as f64;
                pass(plain(0)) + iterations * pass(plain((n * k) as u64)) + pass(plain(n_rows))
            }
        })
    }

    /// Passes over X, how many times over the rows of X they read in all
    /// (fewer than the passes where bounds settle rows), and GFLOP (2 d per
    /// squared distance), where the contender reports its work.
    pub fn work(&self) -> Option<(usize, f64, f64)> {
        let passes = self.work.0.as_ref()?;
        let distances: u64 = passes.iter().map(|p| p.distances).sum();
        let flops = 2.0 * self.scenario.d as f64 * distances as f64;
        let rows: u64 = passes.iter().map(|p| p.rows).sum();
        let reads = rows as f64 / self.scenario.n.max(1) as f64;
        Some((passes.len(), reads, flops / 1e9))
    }

    /// The scenario's id within its family, e.g. `kmeans/1000x2/k2`.
    pub fn scenario_id(&self) -> String {
        format!("{}/{}", self.family, self.scenario.id())
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::{append_records, read_records, results_path};

    /// A record of `contender` on `n x d, k` of the `kmeans` family (2
    /// threads) with these timed fits and nothing else: the start of every
    /// test's record.
    pub(crate) fn bare_record(
        contender: &str,
        (n, d, k): (usize, usize, usize),
        seconds: &[f64],
    ) -> Record {
        let scenario = Scenario::new(n, d, k).unwrap();
        let mut r = Record::new("kmeans", scenario, 1.0, contender, 2);
        r.sample_seconds = seconds.to_vec();
        r
    }

    /// A record of `contender` on 1000x2/k2 with these timed fits.
    pub(crate) fn record(contender: &str, seconds: &[f64]) -> Record {
        let mut r = bare_record(contender, (1000, 2, 2), seconds);
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
    fn work_is_stored_as_three_per_pass_lists() {
        let mut r = record("rust", &[1.0]);
        r.work = Passes(Some(vec![
            Pass {
                distances: 30,
                f32_distances: 20,
                rows: 10,
            },
            Pass {
                distances: 5,
                f32_distances: 0,
                rows: 2,
            },
        ]));
        let line = serde_json::to_string(&r).unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["pass_distances"], serde_json::json!([30, 5]));
        assert_eq!(json["pass_f32_distances"], serde_json::json!([20, 0]));
        assert_eq!(json["pass_rows"], serde_json::json!([10, 2]));
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        // Without work, none of the three keys.
        let plain = serde_json::to_string(&record("numpy", &[1.0])).unwrap();
        assert!(!plain.contains("pass_"));
        // Lists of different lengths are refused, not misread.
        let torn = line.replace("\"pass_rows\":[10,2]", "\"pass_rows\":[10]");
        assert!(serde_json::from_str::<Record>(&torn).is_err());
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
        let pass = |distances, f32_distances, rows| Pass {
            distances,
            f32_distances,
            rows,
        };
        r.work = Passes(Some(vec![pass(3000, 0, 1000), pass(1000, 0, 1000)]));
        assert_eq!(r.floor_seconds(), Some(3.0 + 2.0));
        assert_eq!(r.work(), Some((2, 2.0, 16e3 / 1e9)));
        // A bounded step that read 100 rows: its arithmetic bounds it.
        r.work = Passes(Some(vec![pass(3000, 0, 1000), pass(1000, 0, 100)]));
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
        r.work = Passes(Some(vec![pass(3000, 2000, 1000), pass(1000, 0, 100)]));
        assert_eq!(r.floor_seconds(), None);
        r.environment
            .insert("floor.fma_peak_flops_f32".into(), "8e3".into());
        assert_eq!(r.floor_seconds(), Some(2.0 + 1.0));
    }
}
