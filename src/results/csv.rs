//! One CSV per scenario (`csv/…`): the latest record of each contender.

use std::path::{Path, PathBuf};

use super::{Check, Record};
use crate::data::Scenario;
use crate::error::{Error, Result};

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
pub const CSV_HEADER: &str = "impl,status,n,d,k,threads,samples,median_seconds,min_seconds,max_seconds,n_iter,seconds_per_iter,inertia,rel_inertia_diff,inertia_check,ari,silhouette,alloc_peak_bytes,traced_peak_bytes,resident_peak_bytes,process_peak_bytes,process_baseline_bytes,reason";

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
        opt(r.memory.process_peak_bytes),
        opt(r.memory.process_baseline_bytes),
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
    Ok(crate::data::write_atomic_bytes(path, text.as_bytes())?)
}

/// Rewrites a scenario's CSV with `rows` in place of the rows of the same
/// contenders, keeping the others, in registry order.
pub(super) fn merge_csv(path: &Path, rows: &[&Record]) -> Result<()> {
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
    Ok(crate::data::write_atomic_bytes(path, text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::append_records;
    use crate::results::record::tests::record;

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
}
