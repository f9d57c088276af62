//! Every contender from the same start on the same data: the exact-Lloyd ones
//! (by the registry) agree with ours on labels and inertia; those with
//! another rule stay within their tolerance, and those that run a fixed
//! iteration count run ours. The Python contenders must really run here: the
//! test reads their versions back from the embedded interpreter.

use pythonvsrust_kmeans::contenders::{
    create, python::loaded_versions, FitOutput, Rule, Runtime, REGISTRY,
};
use pythonvsrust_kmeans::data::{BlobSpec, DataCache, Scenario};
use pythonvsrust_kmeans::protocol::ScenarioRun;
use pythonvsrust_kmeans::quality::{assign_and_inertia, relative_gap};

fn fit(name: &str, run: &ScenarioRun) -> FitOutput {
    let mut contender = create(name).unwrap_or_else(|u| {
        panic!(
            "{name} is unavailable ({}); run scripts/python-env.sh first",
            u.reason
        )
    });
    contender.prepare(&run.problem_for(name).unwrap()).unwrap();
    // Where a contender checks how it runs (sklearnex: on oneDAL), an error.
    contender.inspect().unwrap();
    contender.fit().unwrap()
}

fn scenario(n: usize, d: usize, k: usize, std: f64, cache: &DataCache) -> ScenarioRun {
    let spec = BlobSpec::new(Scenario::new(n, d, k).unwrap()).with_std(std);
    ScenarioRun::load(cache, &spec, 300, 2).unwrap().0
}

#[test]
fn exact_contenders_agree_and_linfa_stays_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(dir.path());
    // Separated blobs (2 iterations) and overlapping ones (many iterations).
    // The last scenario goes through the f32 screen (at least 16 clusters and
    // 32 features) in its first step.
    for (n, d, k, std) in [
        (3000, 5, 4, 1.0),
        (4000, 2, 8, 4.0),
        (2000, 10, 30, 6.0),
        (1500, 40, 20, 8.0),
    ] {
        let run = scenario(n, d, k, std, &cache);
        let x = run.problem.x.view();
        let reference = fit("rust", &run);
        let (rust_labels, rust_inertia) = assign_and_inertia(x, reference.centroids.view());
        assert_eq!(reference.labels.as_ref(), Some(&rust_labels));
        // Without bounds: the same labels and iterations, and centroids to
        // rounding (steps with bounds update the sums with the rows that
        // change cluster instead of summing afresh).
        let plain = fit("rust-plain", &run);
        assert_eq!(plain.labels, reference.labels);
        assert_eq!(plain.n_iter, reference.n_iter);
        let scale = plain.centroids.iter().fold(1.0f64, |m, c| m.max(c.abs()));
        for (a, b) in plain.centroids.iter().zip(&reference.centroids) {
            assert!(
                (a - b).abs() <= 1e-12 * scale,
                "rust-plain centroid {a}, rust {b}"
            );
        }
        for entry in REGISTRY.iter().filter(|e| !e.name.starts_with("rust")) {
            let name = entry.name;
            let out = fit(name, &run);
            let (_, inertia) = assign_and_inertia(x, out.centroids.view());
            let gap = relative_gap(inertia, rust_inertia);
            eprintln!(
                "{name} on {n}x{d} k{k} std {std}: gap {gap:e}, {} iterations (ours {})",
                out.n_iter, reference.n_iter
            );
            match entry.rule {
                Rule::ExactLloyd => {
                    assert_eq!(
                        out.labels.as_ref(),
                        Some(&rust_labels),
                        "{name} labels, {n}x{d} k{k} std {std}"
                    );
                    assert!(
                        gap.abs() <= 1e-9,
                        "{name}: inertia gap {gap:e} on {n}x{d} k{k}"
                    );
                    // Elkan counts its iterations its own way.
                    if name != "sklearn-elkan" {
                        assert_eq!(out.n_iter, reference.n_iter, "{name} iterations");
                    }
                }
                Rule::Different { tolerance, .. } => {
                    assert!(gap <= tolerance, "{name}: gap {gap:e}");
                    assert!(out.n_iter >= 1);
                }
                Rule::FixedIterations { tolerance, .. } => {
                    assert!(gap.abs() <= tolerance, "{name}: gap {gap:e}");
                    // Ours is its cap; it may stop earlier on its own rule.
                    assert!(out.n_iter <= reference.n_iter, "{name} runs at most ours");
                    assert!(out.n_iter >= 1);
                }
            }
        }
    }
}

#[test]
fn the_pinned_python_packages_are_the_ones_loaded() {
    // Import every Python contender's module first.
    for entry in REGISTRY.iter().filter(|e| e.runtime() == Runtime::Python) {
        create(entry.name).unwrap_or_else(|u| panic!("{}: {}", entry.name, u.reason));
    }
    let versions = loaded_versions(None).expect("the Python environment is available");
    let requirements = include_str!("../src/contenders/python/requirements.txt");
    let pins: Vec<(&str, &str)> = requirements
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once("=="))
        .map(|(p, v)| (p.trim(), v.trim()))
        .collect();
    let loaded = |key: &str| {
        versions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} reported: {versions:?}"))
    };
    for package in ["numpy", "scikit-learn", "threadpoolctl"] {
        let pin = pins.iter().find(|(p, _)| *p == package).expect("pinned");
        assert_eq!(loaded(package), pin.1, "{package}");
    }
    // Every pinned package a module imported is the pinned version.
    for (key, version) in &versions {
        if let Some((_, pin)) = pins.iter().find(|(p, _)| p.eq_ignore_ascii_case(key)) {
            assert_eq!(version, pin, "{key}");
        }
    }
    assert!(loaded("python").starts_with("3."));
}

#[test]
fn the_textbook_numpy_module_runs_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(dir.path());
    let run = scenario(1000, 3, 3, 1.0, &cache);
    let spec = run.spec;
    let data = cache.samples_path(&spec);
    let init = cache.init_path(&spec, pythonvsrust_kmeans::protocol::INIT_SEED);
    let python = pythonvsrust_kmeans::contenders::python::environment_dir().join("bin/python");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/contenders/python/numpy_kmeans.py"
    );
    let output = std::process::Command::new(python)
        .args([script, data.to_str().unwrap(), init.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let reference = fit("rust", &run);
    let (_, inertia) = assign_and_inertia(run.problem.x.view(), reference.centroids.view());
    let gap = relative_gap(report["inertia"].as_f64().unwrap(), inertia).abs();
    assert!(gap <= 1e-9, "{gap:e}");
    assert_eq!(
        report["n_iter"].as_u64().unwrap() as usize,
        reference.n_iter
    );
}

#[test]
fn a_far_initial_centroid_gives_scikit_learns_fit() {
    use std::sync::Arc;
    // Rows near three centres; one initial centroid far beyond them, where
    // its squared distances overflow f64: no row can choose it, its cluster
    // empties and takes the farthest sample.
    let x = ndarray::Array2::from_shape_fn((600, 3), |(i, j)| {
        let centre = [[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 1.0]][i % 3][j];
        centre + ((i * 31 + j * 17) % 23) as f64 / 11.5 - 1.0
    });
    for far in [1e160, 1e200, 1e300] {
        let mut init = x.slice(ndarray::s![0..4, ..]).to_owned();
        init.row_mut(3).fill(far);
        let problem = pythonvsrust_kmeans::contenders::Problem {
            x: Arc::new(x.clone()),
            init: Arc::new(init),
            max_iter: 300,
            threads: 2,
            fixed_iterations: None,
            x32: None,
        };
        let fit = |name: &str| {
            let mut contender = create(name).unwrap_or_else(|u| panic!("{name}: {}", u.reason));
            contender.prepare(&problem).unwrap();
            contender.fit().unwrap()
        };
        let ours = fit("rust");
        let theirs = fit("sklearn");
        assert_eq!(
            ours.labels, theirs.labels,
            "labels with a centroid at {far:e}"
        );
        assert_eq!(ours.n_iter, theirs.n_iter, "iterations at {far:e}");
        let (_, a) = assign_and_inertia(x.view(), ours.centroids.view());
        let (_, b) = assign_and_inertia(x.view(), theirs.centroids.view());
        let gap = relative_gap(a, b).abs();
        assert!(gap <= 1e-12, "inertia gap {gap:e} at {far:e}");
    }
}

#[test]
fn on_float32_data_every_contender_stays_within_its_float32_tolerance() {
    use pythonvsrust_kmeans::contenders::Dtype;
    let dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(dir.path());
    let run = scenario(4000, 8, 6, 2.0, &cache).with_dtype(Dtype::F32);
    let x = run.problem.x.view();
    let ours = fit("rust", &run);
    let (_, reference) = assign_and_inertia(x, ours.centroids.view());
    for entry in REGISTRY.iter().filter(|e| e.dtypes.contains(&Dtype::F32)) {
        let out = fit(entry.name, &run);
        let (_, inertia) = assign_and_inertia(x, out.centroids.view());
        let gap = relative_gap(inertia, reference).abs();
        let tolerance = pythonvsrust_kmeans::suite::inertia_tolerance("kmeans-f32", entry.name);
        eprintln!(
            "{}: float32 gap {gap:e} (tolerance {tolerance:e})",
            entry.name
        );
        assert!(gap <= tolerance, "{}: gap {gap:e}", entry.name);
    }
}

#[test]
fn peers_report_what_their_inspection_found() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(dir.path());
    let run = scenario(3000, 5, 4, 1.0, &cache);
    for (name, key) in [
        ("sklearnex", "sklearnex.path"),
        ("faiss", "faiss.empty_cluster_splits"),
    ] {
        let mut contender = create(name).unwrap_or_else(|u| panic!("{name}: {}", u.reason));
        contender.prepare(&run.problem_for(name).unwrap()).unwrap();
        let found = |c: &dyn pythonvsrust_kmeans::contenders::Contender| {
            c.environment().into_iter().find(|(k, _)| k == key)
        };
        // Prepared, not yet inspected: no fit has run, nothing found.
        assert_eq!(found(contender.as_ref()), None, "{name}");
        contender.inspect().unwrap();
        let (_, value) = found(contender.as_ref()).unwrap_or_else(|| panic!("{name}: no {key}"));
        match name {
            "sklearnex" => assert!(value.starts_with("oneDAL"), "{value}"),
            _ => assert!(value.parse::<usize>().is_ok(), "{value}"),
        }
    }
}
