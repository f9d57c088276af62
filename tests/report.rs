//! The report from a fixture results file: every chart written, each with a
//! series for every contender present, only existing files referenced, a
//! failed inertia check flagged; missing or partial results handled.

use std::path::Path;

use pythonvsrust_kmeans::data::Scenario;
use pythonvsrust_kmeans::protocol::check_inertia;
use pythonvsrust_kmeans::report::{write_report, write_report_with};
use pythonvsrust_kmeans::results::{append_records, Record, Status};

const CONTENDERS: [&str; 5] = ["rust", "linfa", "numpy", "sklearn", "sklearn-elkan"];

fn fixture(dir: &Path, contenders: &[&str]) {
    let mut all = Vec::new();
    for (family, ns, ks, std) in [
        ("kmeans", vec![1000, 10000, 100000], vec![2, 30], 1.0),
        ("kmeans-overlap", vec![100000], vec![2, 30], 3.0),
        ("kmeans-t1", vec![10000], vec![2, 30], 1.0),
        ("kmeans-f32", vec![10000], vec![2, 30], 1.0),
        ("kmeans-vq", vec![100000], vec![256, 1024], 2.0),
    ] {
        for &n in &ns {
            for d in [2, 50] {
                for &k in &ks {
                    let mut scenario_records: Vec<Record> = contenders
                        .iter()
                        .enumerate()
                        .map(|(i, name)| {
                            let mut r = Record::new(family, Scenario { n, d, k }, std, name, 2);
                            // One thread: 1.8 times the time of two.
                            let slower = match family {
                                "kmeans-t1" => 1.8,
                                "kmeans-f32" => 0.5,
                                _ => 1.0,
                            };
                            let seconds = 1e-7 * (n * d * k) as f64 * (i + 1) as f64 * slower;
                            r.sample_seconds = vec![seconds, seconds * 1.1, seconds * 0.9];
                            r.n_iter = Some(2 + i);
                            // sklearn-elkan lands far off on one scenario: a failed check.
                            let off = *name == "sklearn-elkan" && n == 10000 && d == 50 && k == 30;
                            r.inertia = Some(1000.0 * if off { 1.5 } else { 1.0 });
                            r.ari = Some(1.0);
                            r.silhouette = Some(0.7);
                            if name.starts_with("sklearn") || *name == "numpy" {
                                r.memory.traced_peak_bytes = Some((n * d * 8) as u64);
                            } else {
                                r.memory.alloc_peak_bytes = Some((n * 4) as u64);
                            }
                            r.memory.resident_peak_bytes = Some((n * d * 8) as u64);
                            r.memory.process_peak_bytes = Some((n * d * 8) as u64);
                            r.environment
                                .insert("machine.cpu".into(), "Test CPU".into());
                            r
                        })
                        .collect();
                    check_inertia(&mut scenario_records);
                    all.extend(scenario_records);
                }
            }
        }
    }
    let mut skipped = Record::new(
        "kmeans",
        Scenario {
            n: 1000,
            d: 2,
            k: 2,
        },
        1.0,
        "numpy",
        2,
    );
    skipped.status = Status::Skipped;
    skipped.reason = Some("no Python environment".into());
    if !contenders.contains(&"numpy") {
        all.push(skipped);
    }
    append_records(dir, &all).unwrap();
}

/// Every `src="…"` and `href="…"` of the page.
fn references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            refs.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    refs
}

#[test]
fn every_chart_is_written_with_every_contender_and_only_existing_files_are_linked() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &CONTENDERS);
    let output = write_report(dir.path()).unwrap();
    let names: Vec<String> = output
        .charts
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "fit-time.svg",
        "time-per-iteration.svg",
        "memory.svg",
        "memory-heatmap.svg",
        "overlap-fit-time.svg",
        "overlap-time-per-iteration.svg",
        "speedup-rust-over-numpy.svg",
        "speedup-rust-over-python-peer.svg",
        "scaling.svg",
        "silhouette.svg",
        "float32.svg",
        "vq-fit-time.svg",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    // One thread took 1.8 times the sweep's time in the fixture: every cell.
    let scaling = std::fs::read_to_string(dir.path().join("charts/scaling.svg")).unwrap();
    assert!(scaling.contains("1.80x"), "the scaling chart's cells");
    // Float32 took half the time: a 2x speed-up.
    let float32 = std::fs::read_to_string(dir.path().join("charts/float32.svg")).unwrap();
    assert!(float32.contains("2.00x"), "the float32 chart's cells");
    for chart in &output.charts {
        let svg = std::fs::read_to_string(chart).unwrap();
        assert!(svg.starts_with("<svg"), "{}", chart.display());
        let name = chart.file_name().unwrap().to_string_lossy();
        if [
            "fit-time.svg",
            "time-per-iteration.svg",
            "overlap-fit-time.svg",
            "memory-heatmap.svg",
            "vq-fit-time.svg",
            "scaling.svg",
        ]
        .contains(&name.as_ref())
        {
            // plotters writes each text element's content on a line of its own.
            let texts: Vec<&str> = svg.lines().map(str::trim).collect();
            for contender in CONTENDERS {
                assert!(
                    texts
                        .iter()
                        .any(|t| *t == contender || t.starts_with(&format!("{contender}, "))),
                    "{name} lacks {contender}"
                );
            }
        }
    }
    let html = std::fs::read_to_string(&output.index).unwrap();
    // A chart of an earlier report that this one does not draw is removed.
    let stale = dir.path().join("charts/speedup-linfa-over-numpy.svg");
    std::fs::write(&stale, "<svg/>").unwrap();
    write_report(dir.path()).unwrap();
    assert!(!stale.exists(), "a stale chart stays beside the page");
    // Speed-up heatmaps for ours only.
    assert!(
        !names.iter().any(|n| n.starts_with("speedup-linfa")),
        "{names:?}"
    );
    for reference in references(&html) {
        match reference.strip_prefix('#') {
            Some(anchor) => assert!(
                html.contains(&format!("id=\"{anchor}\"")),
                "the contents link #{anchor}, which no heading carries"
            ),
            None => assert!(
                dir.path().join(&reference).exists(),
                "the page links {reference}, which does not exist"
            ),
        }
    }
    // Times carry their unit; none reads 0.0000.
    assert!(!html.contains("0.0000<"), "a time without its unit");
    assert!(
        html.contains(" ms<") || html.contains(" us<"),
        "times in their unit"
    );
    // Every run and how much of the suite it covers.
    assert!(html.contains("Runs covered") && html.contains("untagged"));
    assert!(html.contains(" of 48</td>"), "sweep coverage");
    assert!(html.contains("<details>"), "long lists collapsed");
    // The failed check is flagged in the quality table and the summary.
    assert!(html.contains("FAILED"));
    assert!(html.contains("class=\"fail\""));
    // The summary's speed-ups come from the fixture's times: rust is 3x numpy everywhere.
    assert!(html.contains("3.00x"), "rust over numpy");
    assert!(html.contains("Test CPU"));
}

#[test]
fn partial_results_give_a_report_of_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["rust", "linfa"]);
    let output = write_report(dir.path()).unwrap();
    assert!(
        output
            .warnings
            .iter()
            .any(|w| w.contains("no numpy results")),
        "{:?}",
        output.warnings
    );
    let html = std::fs::read_to_string(&output.index).unwrap();
    assert!(html.contains("skipped: no Python environment"));
    assert!(output.charts.iter().all(|c| c.exists()));
}

#[test]
fn missing_or_unreadable_results_give_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("no results") && err.contains("cargo bench"),
        "{err}"
    );
    std::fs::write(dir.path().join("results.jsonl"), "not json\n").unwrap();
    let err = write_report(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no readable record"), "{err}");
}

#[test]
fn quick_runs_stay_out_of_a_full_report_and_a_baseline_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &CONTENDERS);
    let baseline = tempfile::tempdir().unwrap();
    fixture(baseline.path(), &CONTENDERS);
    // A later quick run of one scenario, its times halved.
    let mut quick = Record::new(
        "kmeans",
        Scenario {
            n: 1000,
            d: 2,
            k: 2,
        },
        1.0,
        "rust",
        2,
    );
    quick.sample_seconds = vec![1e-9];
    quick.run_id = Some("20261203T120000Z-quick-abc".into());
    quick
        .environment
        .insert("bench.preset".into(), "quick".into());
    append_records(dir.path(), &[quick]).unwrap();
    let output =
        write_report_with(dir.path(), Some(&baseline.path().join("results.jsonl"))).unwrap();
    assert!(
        output
            .warnings
            .iter()
            .any(|w| w.contains("1 record(s) of quick-preset runs left out")),
        "{:?}",
        output.warnings
    );
    let html = std::fs::read_to_string(&output.index).unwrap();
    assert!(
        !html.contains("20261203T120000Z-quick-abc"),
        "the quick run is not drawn"
    );
    // The same results against themselves: all within noise, ratios unchanged.
    let line = output.comparison.unwrap();
    assert!(
        line.contains("0 faster and 0 slower beyond noise"),
        "{line}"
    );
    assert!(html.contains("id=\"comparison\"") && html.contains("within noise"));
    // A baseline that is not there is a clear error.
    let err = write_report_with(dir.path(), Some(Path::new("/nonexistent/reference")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no baseline results"), "{err}");
}
