//! With the Python environment hidden, the Rust contenders still run and the
//! Python ones are skipped with the reason. (Its own test binary: the
//! interpreter's state is per process.)

use pythonvsrust_kmeans::contenders::{entry, names, Runtime};
use pythonvsrust_kmeans::data::{BlobSpec, DataCache, Scenario};
use pythonvsrust_kmeans::protocol::{check_inertia, run_once, ScenarioRun};
use pythonvsrust_kmeans::results::{Check, Status};

#[test]
fn python_contenders_are_skipped_and_the_rest_run() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("KMEANS_PYTHON_ENV", dir.path().join("no-such-env"));
    let cache = DataCache::new(dir.path().join("data"));
    let spec = BlobSpec::new(Scenario::new(2000, 3, 4).unwrap());
    let (run, _) = ScenarioRun::load(&cache, &spec, 300, 1).unwrap();
    let mut records: Vec<_> = names()
        .into_iter()
        .map(|n| run_once(n, "kmeans", &run, 1))
        .collect();
    check_inertia(&mut records);
    for r in &records {
        match entry(&r.contender).unwrap().runtime() {
            Runtime::Rust => {
                assert_eq!(r.status, Status::Ok, "{}: {:?}", r.contender, r.reason);
                assert_eq!(r.inertia_check, Some(Check::Pass));
                assert_eq!(r.sample_seconds.len(), 1);
            }
            Runtime::Python => {
                assert_eq!(r.status, Status::Skipped, "{}", r.contender);
                let reason = r.reason.as_deref().unwrap();
                assert!(reason.contains("no Python environment"), "{reason}");
                assert!(r.inertia.is_none());
            }
        }
    }
}
