//! The regression check as CI runs it: the committed baseline against the
//! run it was made from passes; that run doctored (our times ten times
//! longer, one more pass, an inertia off by 1e-6) fails, each with its own
//! line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn committed(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/baseline")
        .join(file)
}

fn check(results: &Path) -> Output {
    Command::new(example("regressions"))
        .arg("--results")
        .arg(results)
        .arg("--baseline")
        .arg(committed("regressions.json"))
        .output()
        .unwrap()
}

/// The committed run with `doctor` applied to our records.
fn doctored(dir: &Path, doctor: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let text = std::fs::read_to_string(committed("results.jsonl")).unwrap();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record["impl"] == "rust" {
            doctor(&mut record);
        }
        out.push_str(&record.to_string());
        out.push('\n');
    }
    let path = dir.join("results.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

fn failures(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_committed_run_passes_against_its_baseline() {
    let output = check(&committed("results.jsonl"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(failures(&output).is_empty());
    // Work, ratios and floors were all checked.
    for kind in [
        "work kmeans/",
        " ours over rust-plain",
        " ours over sklearn",
        " time / floor",
    ] {
        assert!(stdout.contains(kind), "{kind} unchecked:\n{stdout}");
    }
}

#[test]
fn doctored_runs_fail() {
    let dir = tempfile::tempdir().unwrap();
    // Ten times: the ratios and time / floor ceilings are the baseline
    // machine's with room, and the committed run (remade with our work on
    // whatever machine changed it) may sit several times inside them.
    let slower = doctored(dir.path(), |r| {
        let times: Vec<f64> = r["sample_seconds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap() * 10.0)
            .collect();
        r["sample_seconds"] = serde_json::json!(times);
    });
    let output = check(&slower);
    assert_eq!(output.status.code(), Some(1));
    let failed = failures(&output);
    assert!(
        failed.iter().any(|l| l.contains("ours over sklearn")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|l| l.contains("time / floor")),
        "{failed:?}"
    );

    let longer = doctored(dir.path(), |r| {
        for key in ["pass_distances", "pass_f32_distances", "pass_rows"] {
            r[key].as_array_mut().unwrap().push(serde_json::json!(0));
        }
    });
    let output = check(&longer);
    assert_eq!(output.status.code(), Some(1));
    let failed = failures(&output);
    assert!(
        !failed.is_empty() && failed.iter().all(|l| l.contains("passes")),
        "{failed:?}"
    );

    let off = doctored(dir.path(), |r| {
        let inertia = r["inertia"].as_f64().unwrap();
        r["inertia"] = serde_json::json!(inertia * (1.0 + 1e-6));
    });
    let output = check(&off);
    assert_eq!(output.status.code(), Some(1));
    let failed = failures(&output);
    assert!(
        !failed.is_empty() && failed.iter().all(|l| l.contains("inertia")),
        "{failed:?}"
    );
}

#[test]
fn a_missing_or_foreign_baseline_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.json");
    std::fs::write(&foreign, "[1, 2]").unwrap();
    let output = Command::new(example("regressions"))
        .arg("--results")
        .arg(committed("results.jsonl"))
        .arg("--baseline")
        .arg(&foreign)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: ") && stderr.contains("not a regression baseline"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
