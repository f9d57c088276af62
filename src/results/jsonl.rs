//! The JSON-lines file of every record (`results.jsonl`): appended under a
//! lock, read line by line.

use std::path::Path;

use super::csv::{csv_path, merge_csv};
use super::{latest_per_contender, results_path, Record};
use crate::data::Scenario;
use crate::error::{Error, Result};

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

/// Takes the writers' exclusive lock on `dir/results.lock`, held until the
/// returned file is dropped.
fn lock_results(dir: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join("results.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    Ok(lock)
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
    let _lock = lock_results(dir)?;
    let mut text = String::new();
    for record in new {
        let line = serde_json::to_string(record).map_err(|error| Error::Results {
            path: path.clone(),
            error,
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

/// Starts a new results file in `dir` (`KMEANS_FRESH=1`): under the
/// writers' lock, `results.jsonl` and `csv/` move to `archive/{stamp}/`,
/// kept whole, so the next records begin a file of their own. Returns the
/// archive folder, `None` when there was nothing to move.
pub fn start_fresh(dir: &Path, stamp: &str) -> Result<Option<std::path::PathBuf>> {
    let path = results_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let _lock = lock_results(dir)?;
    let archive = dir.join("archive").join(stamp);
    crate::data::create_folder(&archive)?;
    let moved = archive.join("results.jsonl");
    std::fs::rename(&path, &moved).map_err(|e| Error::io(&path, e))?;
    let csv = dir.join("csv");
    if csv.is_dir() {
        let to = archive.join("csv");
        std::fs::rename(&csv, &to).map_err(|e| Error::io(&csv, e))?;
    }
    Ok(Some(archive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::record::tests::record;

    #[test]
    fn a_fresh_start_archives_the_old_results_whole() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(start_fresh(dir.path(), "run-0").unwrap(), None);
        append_records(dir.path(), &[record("rust", &[0.2])]).unwrap();
        let archive = start_fresh(dir.path(), "run-1").unwrap().unwrap();
        assert!(!results_path(dir.path()).exists());
        assert!(!dir.path().join("csv").exists());
        assert_eq!(read_records(&results_path(&archive)).unwrap().0.len(), 1);
        assert!(archive.join("csv").is_dir());
        append_records(dir.path(), &[record("numpy", &[1.0])]).unwrap();
        let (records, _) = read_records(&results_path(dir.path())).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].contender, "numpy");
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
