//! With scikit-learn missing from the Python environment, only the contenders
//! that import it are skipped (with the reason); NumPy, faiss and the Rust
//! contenders still run. (Its own test binary: the interpreter's state is per
//! process.)

use std::path::Path;

use pythonvsrust_kmeans::contenders::{names, python::environment_dir};
use pythonvsrust_kmeans::data::{BlobSpec, DataCache, Scenario};
use pythonvsrust_kmeans::protocol::{check_inertia, run_once, ScenarioRun};
use pythonvsrust_kmeans::results::{Check, Status};

/// A copy of the project environment (links to its packages) without
/// scikit-learn.
fn environment_without_sklearn(real: &Path, copy: &Path) {
    std::fs::create_dir_all(copy).unwrap();
    std::fs::copy(real.join("pyvenv.cfg"), copy.join("pyvenv.cfg")).unwrap();
    let lib = std::fs::read_dir(real.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("python3")
        })
        .expect("lib/python3.x");
    let site = copy
        .join("lib")
        .join(lib.file_name().unwrap())
        .join("site-packages");
    std::fs::create_dir_all(&site).unwrap();
    for entry in std::fs::read_dir(lib.join("site-packages")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("sklearn") && !name.starts_with("scikit_learn") {
            std::os::unix::fs::symlink(&path, site.join(&name)).unwrap();
        }
    }
}

#[test]
fn a_missing_package_skips_only_the_contenders_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    environment_without_sklearn(&environment_dir(), &env);
    std::env::set_var("KMEANS_PYTHON_ENV", &env);
    let cache = DataCache::new(dir.path().join("data"));
    let spec = BlobSpec::new(Scenario::new(2000, 3, 4).unwrap());
    let (run, _) = ScenarioRun::load(&cache, &spec, 300, 1).unwrap();
    let mut records: Vec<_> = names()
        .into_iter()
        .map(|n| run_once(n, "kmeans", &run, 1))
        .collect();
    check_inertia(&mut records);
    for r in &records {
        if r.contender.starts_with("sklearn") {
            assert_eq!(r.status, Status::Skipped, "{}", r.contender);
            let reason = r.reason.as_deref().unwrap();
            assert!(reason.contains("sklearn"), "{}: {reason}", r.contender);
        } else {
            assert_eq!(r.status, Status::Ok, "{}: {:?}", r.contender, r.reason);
            assert_eq!(r.inertia_check, Some(Check::Pass), "{}", r.contender);
        }
    }
}
