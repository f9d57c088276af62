//! Failures are contained: an error inside any contender, Python exceptions
//! included, becomes a `failed` record with the error's message; the other
//! records are still written and the report still draws.

use std::sync::Arc;

use ndarray::Array2;
use pythonvsrust_kmeans::contenders::names;
use pythonvsrust_kmeans::data::{BlobSpec, DataCache, Scenario};
use pythonvsrust_kmeans::protocol::{check_inertia, run_once, ScenarioRun};
use pythonvsrust_kmeans::report::write_report;
use pythonvsrust_kmeans::results::{append_records, read_records, results_path, Status};

#[test]
fn a_contender_error_is_a_failed_record_and_everything_else_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(dir.path().join("data"));
    let spec = BlobSpec::new(Scenario::new(1000, 3, 4).unwrap());
    let (good, _) = ScenarioRun::load(&cache, &spec, 300, 1).unwrap();

    // Initial centroids with the wrong number of features: every contender
    // must refuse them, each with its own error.
    let mut broken = good.clone();
    broken.problem.init = Arc::new(Array2::zeros((4, 5)));
    let failed: Vec<_> = names()
        .into_iter()
        .map(|n| run_once(n, "kmeans", &broken, 1))
        .collect();
    for r in &failed {
        assert_eq!(r.status, Status::Failed, "{}: {:?}", r.contender, r.reason);
        let reason = r.reason.as_deref().unwrap();
        assert!(!reason.is_empty());
        if r.contender.starts_with("sklearn") || r.contender == "numpy" {
            // The Python exception's type and message come through.
            assert!(reason.contains("Error"), "{}: {reason}", r.contender);
        }
        assert!(r.sample_seconds.is_empty() && r.inertia.is_none());
    }

    let mut ok: Vec<_> = names()
        .into_iter()
        .map(|n| run_once(n, "kmeans", &good, 1))
        .collect();
    check_inertia(&mut ok);
    assert!(ok.iter().all(|r| r.status == Status::Ok), "{ok:?}");

    let out = dir.path().join("reports");
    append_records(&out, &ok).unwrap();
    append_records(&out, &failed).unwrap();
    let (records, warnings) = read_records(&results_path(&out)).unwrap();
    assert_eq!(records.len(), 2 * names().len());
    assert!(warnings.is_empty());
    // The latest record of each contender is the failed one; the report says so.
    let report = write_report(&out).unwrap();
    let html = std::fs::read_to_string(report.index).unwrap();
    assert!(html.contains("failed: "));
}
