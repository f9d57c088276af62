//! The commands as a user runs them: output shape, and a one-line error with
//! a non-zero exit for every bad input, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An example binary built beside this test (`cargo test` builds examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str], data_dir: &Path) -> Output {
    Command::new(example(name))
        .args(args)
        .env("KMEANS_DATA_DIR", data_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Asserts a clean failure: exit 1, one `error: …` line holding `expected`.
fn assert_clean_error(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(expected),
        "expected '{expected}' in: {stderr}"
    );
}

#[test]
fn generate_then_cluster_prints_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let generated = run(
        "generate",
        &["--n", "2000", "--d", "3", "--k", "4"],
        dir.path(),
    );
    assert!(generated.status.success());
    let path = stdout(&generated);
    assert!(
        path.contains("blobs-n2000-d3-k4-") && path.ends_with(".npy"),
        "{path}"
    );
    // Same settings: same path.
    assert_eq!(
        stdout(&run(
            "generate",
            &["--n", "2000", "--d", "3", "--k", "4"],
            dir.path()
        )),
        path
    );

    let out = dir.path().join("centroids.npy");
    let clustered = run(
        "cluster",
        &[
            &path,
            "--k",
            "4",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        clustered.status.success(),
        "{}",
        String::from_utf8_lossy(&clustered.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&clustered)).unwrap();
    for key in [
        "inertia",
        "n_iter",
        "n_samples",
        "n_features",
        "k",
        "seconds",
        "init_seconds",
        "fit_seconds",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    // Seeding and iterations apart: both within the whole.
    let part = |key: &str| report[key].as_f64().unwrap();
    assert!(part("init_seconds") > 0.0, "k-means++ ran: {report}");
    assert!(part("init_seconds") + part("fit_seconds") <= part("seconds") * (1.0 + 1e-9));
    assert_eq!(report["n_samples"], 2000);
    assert_eq!(report["n_features"], 3);
    let centroids = pythonvsrust_kmeans::data::read_npy::<f64>(&out).unwrap();
    assert_eq!(centroids.dim(), (4, 3));

    // The CSV copy clusters to the same inertia from the same init.
    let csv = stdout(&run(
        "generate",
        &["--n", "2000", "--d", "3", "--k", "4", "--csv"],
        dir.path(),
    ));
    assert!(csv.ends_with(".csv"));
    let init = path.replace(".npy", ".init-s0.npy");
    let from_npy = run("cluster", &[&path, "--k", "4", "--init", &init], dir.path());
    let from_csv = run("cluster", &[&csv, "--k", "4", "--init", &init], dir.path());
    let a: serde_json::Value = serde_json::from_str(&stdout(&from_npy)).unwrap();
    let b: serde_json::Value = serde_json::from_str(&stdout(&from_csv)).unwrap();
    assert_eq!(a["inertia"], b["inertia"]);
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = stdout(&run(
        "generate",
        &["--n", "100", "--d", "2", "--k", "2"],
        dir.path(),
    ));
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    };
    let not_npy = write("foreign.npy", b"hello");
    let bytes = std::fs::read(&path).unwrap();
    let truncated = write("truncated.npy", &bytes[..bytes.len() - 16]);
    let nan_csv = write("nan.csv", b"1,2\n3,nan\n");
    let ragged = write("ragged.csv", b"1,2\n3\n");
    let wrong_init = write("init.csv", b"1,2,3\n4,5,6\n");
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![&path, "--k", "0"],
            "k (the number of clusters) must be at least 1",
        ),
        (
            vec![&path, "--k", "101"],
            "larger than the number of samples",
        ),
        (vec!["/no/such/file.npy", "--k", "2"], "no such file"),
        (vec![&dir_arg, "--k", "2"], "is a directory"),
        (vec![&not_npy, "--k", "2"], "not a readable .npy"),
        (vec![&truncated, "--k", "2"], "but the file holds"),
        (
            vec![&nan_csv, "--k", "2"],
            "data: non-finite value (NaN) at row 1, column 1",
        ),
        (vec![&ragged, "--k", "2"], "line 2"),
        (
            vec![&path, "--k", "2", "--init", &wrong_init],
            "initial centroids have shape (2, 3)",
        ),
        (vec![&path, "--k", "2", "--threads", "0"], "at least 1"),
        (vec![&path, "--k", "2", "--max-iter", "0"], "max_iter"),
    ];
    for (args, expected) in cases {
        assert_clean_error(&run("cluster", &args, dir.path()), expected);
    }
    assert_clean_error(
        &run(
            "generate",
            &["--n", "3", "--d", "2", "--k", "5"],
            dir.path(),
        ),
        "larger than the number of samples",
    );
    assert_clean_error(
        &run(
            "generate",
            &["--n", "3", "--d", "0", "--k", "1"],
            dir.path(),
        ),
        "invalid scenario",
    );
}

/// Writes `x` as `.npy` in `dir` and returns its path as a string.
fn npy(dir: &Path, name: &str, x: &ndarray::Array2<f64>) -> String {
    let path = dir.join(name);
    pythonvsrust_kmeans::data::write_npy_atomic(&path, x).unwrap();
    path.to_str().unwrap().to_string()
}

/// Rows around three centres, standard-normal-like spread, scaled by `scale`.
fn three_blobs(scale: f64) -> ndarray::Array2<f64> {
    ndarray::Array2::from_shape_fn((99, 2), |(i, j)| {
        let centre = [[0.0, 0.0], [6.0, 1.0], [-3.0, 7.0]][i % 3][j];
        let wobble = ((i * 7 + j * 13) % 11) as f64 / 5.5 - 1.0;
        (centre + wobble) * scale
    })
}

#[test]
fn extreme_magnitudes_give_finite_answers_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("centroids.npy");
    // Subnormal data: finite centroids, no false "fewer distinct points".
    let tiny = npy(dir.path(), "tiny.npy", &three_blobs(1e-320));
    let init = npy(
        dir.path(),
        "tiny-init.npy",
        &three_blobs(1e-320).slice(ndarray::s![0..3, ..]).to_owned(),
    );
    let output = run(
        "cluster",
        &[
            &tiny,
            "--k",
            "3",
            "--init",
            &init,
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("fewer distinct"));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(report["inertia"].is_number(), "{report}");
    let centroids: ndarray::Array2<f64> = pythonvsrust_kmeans::data::read_npy(&out).unwrap();
    assert!(centroids.iter().all(|v| v.is_finite()));
    // Squares beyond f64: refused in one line, nothing written.
    let huge = npy(dir.path(), "huge.npy", &three_blobs(1e300));
    let refused = dir.path().join("refused.npy");
    let output = run(
        "cluster",
        &[&huge, "--k", "3", "--out", refused.to_str().unwrap()],
        dir.path(),
    );
    assert_clean_error(&output, "exceeds the largest f64");
    assert!(!refused.exists());
}

#[test]
fn identical_rows_converge_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let same = npy(
        dir.path(),
        "same.npy",
        &ndarray::Array2::from_elem((10, 2), 1.0),
    );
    let init = npy(
        dir.path(),
        "same-init.npy",
        &ndarray::Array2::from_elem((3, 2), 1.0),
    );
    let output = run("cluster", &[&same, "--k", "3", "--init", &init], dir.path());
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["n_iter"], 1);
    assert_eq!(report["converged"], true);
}

#[test]
fn absurd_knobs_and_paths_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = npy(dir.path(), "x.npy", &three_blobs(1.0));
    assert_clean_error(
        &run(
            "cluster",
            &[&data, "--k", "3", "--threads", "100000"],
            dir.path(),
        ),
        "threads is more than",
    );
    let output = Command::new(example("cluster"))
        .args([&data, "--k", "3"])
        .env("KMEANS_BENCH_THREADS", "100000")
        .output()
        .unwrap();
    assert_clean_error(&output, "threads is more than");
    // KMEANS_DATA_DIR naming a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    assert_clean_error(
        &run("generate", &["--n", "100", "--d", "2", "--k", "2"], &file),
        "not a folder",
    );
}

#[test]
fn a_changed_cached_file_is_used_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = stdout(&run(
        "generate",
        &["--n", "300", "--d", "2", "--k", "3"],
        dir.path(),
    ));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let output = run("cluster", &[&path, "--k", "3"], dir.path());
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("checksum"),
        "{stderr}"
    );
}

#[test]
fn compare_measures_each_fit_in_a_fresh_process() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        "compare",
        &[
            "--n",
            "20000",
            "--d",
            "10",
            "--k",
            "8",
            "--impls",
            "rust,numpy,sklearnex,faiss",
            "--runs",
            "3",
            "--json",
        ],
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let name = row["impl"].as_str().unwrap();
        if row["status"] == "skipped" {
            continue;
        }
        // Three timed fits: their median between their least and most.
        assert_eq!(row["runs"], 3, "{row}");
        let time = |key: &str| row[key].as_f64().unwrap();
        assert!(time("min_seconds") <= time("seconds") && time("seconds") <= time("max_seconds"));
        let peak = row["process_peak_bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("{row}"));
        let baseline = row["process_baseline_bytes"].as_u64().unwrap();
        // The baseline holds the 1.6 MB of data at least.
        assert!(baseline > 20_000 * 10 * 8, "{name}: baseline {baseline}");
        assert!(peak > 0, "{name}: {row}");
        if name == "numpy" {
            // Its n x k matrix of scores at least.
            assert!(peak >= 20_000 * 8 * 8, "numpy peak {peak}");
        }
    }
    // A child given a request it cannot read fails in one line.
    let output = Command::new(example("compare"))
        .env(pythonvsrust_kmeans::isolated::CHILD_ENV, "not json")
        .output()
        .unwrap();
    assert_clean_error(&output, "bad request");
}

#[test]
fn report_merges_a_run_measured_apart_once() {
    use pythonvsrust_kmeans::data::Scenario;
    use pythonvsrust_kmeans::results::{append_records, read_records, results_path, Record};
    let (main, part) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let record = |contender: &str| {
        let mut r = Record::new(
            "kmeans",
            Scenario::new(1000, 2, 2).unwrap(),
            1.0,
            contender,
            2,
        );
        r.sample_seconds = vec![0.001, 0.002];
        r.run_id = Some("20261203T000000Z-full".into());
        r.recorded_at = 1_764_720_000;
        r
    };
    append_records(main.path(), &[record("rust")]).unwrap();
    append_records(part.path(), &[record("numpy"), record("rust")]).unwrap();
    for _ in 0..2 {
        let output = run(
            "report",
            &[
                "--dir",
                main.path().to_str().unwrap(),
                "--merge",
                part.path().to_str().unwrap(),
            ],
            main.path(),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (records, _) = read_records(&results_path(main.path())).unwrap();
    assert_eq!(records.len(), 2, "numpy added once, rust not twice");
}
