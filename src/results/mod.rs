//! One result record per contender per scenario, and its writers: JSON lines
//! (`target-reports/results.jsonl`, every record) and one CSV per scenario
//! (`target-reports/csv/…`, the latest record of each contender): one
//! module per job. Records are appended under a lock and CSVs replaced
//! atomically, so an interrupted or concurrent run leaves every record
//! readable.

use std::path::{Path, PathBuf};

mod csv;
mod jsonl;
mod record;

pub use self::csv::{csv_path, write_csv, CSV_HEADER};
pub use self::jsonl::{append_records, read_records, start_fresh};
#[cfg(test)]
pub(crate) use self::record::tests::bare_record;
pub use self::record::{latest_per_contender, Check, MemoryFigures, Passes, Record, Status};

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
