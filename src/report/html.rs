//! The report page.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::charts::{format_bytes, Chart, Section};
use super::comparison::Comparison;
use super::run_summary::format_seconds;
use super::runs::{coverage, runs};
use super::summary::{summarise, Comparator};
use crate::results::{Check, Record, Status};

/// Text made safe inside HTML.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".into())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}td.fail{background:#ffc9c9;font-weight:bold}td.skip{color:#888}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}figure{margin:1.5em 0}figcaption{font-size:14px;color:#555}
.note{background:#fff9db;padding:0.6em 1em;border-left:4px solid #fab005}td.better{background:#d3f9d8}
nav ol{columns:2;font-size:14px}summary{cursor:pointer;color:#1864ab}h3{margin-top:1.5em}";

/// The page's sections in order: anchor and heading.
const CHART_SECTIONS: [(Section, &str, &str); 7] = [
    (Section::Time, "time", "Fit time and time per iteration"),
    (Section::Speedup, "speedup", "Speed-ups of ours"),
    (Section::Memory, "memory", "Peak memory"),
    (
        Section::Overlap,
        "overlap",
        "Overlapping blobs (tens of iterations)",
    ),
    (Section::Scaling, "scaling", "One thread against all"),
    (Section::Float32, "float32", "Float32 data"),
    (Section::Quantisation, "vq", "Vector quantisation (large k)"),
];

/// The whole page, linking only files that exist.
pub fn page(
    dir: &Path,
    records: &[Record],
    charts: &[Chart],
    warnings: &[String],
    comparison: Option<&Comparison>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>k-means: Rust and Python compared</title><style>{STYLE}</style></head><body>\n<h1>k-means in Rust and Python: runtime, memory and quality</h1>\n"
    );
    let mut contents: Vec<(&str, &str)> = vec![("protocol", "Protocol"), ("runs", "Runs covered")];
    if comparison.is_some() {
        contents.push(("comparison", "Compared with a baseline"));
    }
    contents.push(("summary", "Summary"));
    for (section, anchor, heading) in CHART_SECTIONS {
        if charts.iter().any(|c| c.section == section) {
            contents.push((anchor, heading));
        }
    }
    contents.extend([
        ("quality", "Quality (silhouette)"),
        ("scenarios", "Per scenario: time, iterations and quality"),
        ("environment", "Environment"),
        ("raw", "Raw numbers and Criterion's reports"),
    ]);
    h.push_str("<nav><ol>");
    for (anchor, heading) in &contents {
        let _ = write!(h, "<li><a href=\"#{anchor}\">{heading}</a></li>");
    }
    h.push_str("</ol></nav>\n<h2 id=\"protocol\">Protocol</h2>\n");
    protocol(&mut h, records);
    if !warnings.is_empty() {
        h.push_str("<div class=\"note\"><b>Warnings about the stored results</b><ul>");
        for w in warnings {
            let _ = write!(h, "<li>{}</li>", escape(w));
        }
        h.push_str("</ul></div>\n");
    }
    runs_covered(&mut h, records);
    if let Some(c) = comparison {
        h.push_str("<h2 id=\"comparison\">Compared with a baseline</h2>\n");
        h.push_str(&c.section());
    }
    summary(&mut h, records);
    for (section, anchor, heading) in CHART_SECTIONS {
        let in_section: Vec<&Chart> = charts.iter().filter(|c| c.section == section).collect();
        if in_section.is_empty() {
            continue;
        }
        let _ = writeln!(h, "<h2 id=\"{anchor}\">{heading}</h2>");
        match section {
            Section::Memory => h.push_str("<p>The headline is the peak resident set size of one fit in a fresh process, above that process's size just before the fit (which holds the data, the prepared contender and, for Python ones, the interpreter and modules). Beside it, by source: the Rust allocator's peak (Rust contenders; blind to CPython's and NumPy's buffers) and Python's <code>tracemalloc</code> peak (Python contenders; blind to buffers C code mallocs). The bench process's own high-water growth is a diagnostic only: pages earlier fits freed are reused, so it often reads 0.</p>\n"),
            Section::Speedup => h.push_str("<p>Speed-up heatmaps are drawn for ours only; every contender's geometric means are in the summary and its times in the per-scenario tables.</p>\n"),
            _ => {}
        }
        for chart in in_section {
            figure(&mut h, chart);
        }
    }
    h.push_str("<h2 id=\"quality\">Quality (silhouette)</h2>\n");
    match charts.iter().find(|c| c.section == Section::Quality) {
        Some(chart) => {
            h.push_str("<p>Mean silhouette on a fixed-seed subsample of 1000 samples, from each contender's labels (1 is compact, well-separated clusters; near 0, overlapping ones). Exact-Lloyd contenders from the same start agree; a differing cell marks another path.</p>\n");
            figure(&mut h, chart);
        }
        None => h.push_str("<p>No silhouette recorded.</p>\n"),
    }
    quality(&mut h, records);
    environment(&mut h, records);
    links(&mut h, dir, records);
    h.push_str("</body></html>\n");
    h
}

/// A chart as a figure, its title as caption and alternative text.
fn figure(h: &mut String, chart: &Chart) {
    let name = chart
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(
        h,
        "<figure><img src=\"charts/{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
        escape(&name),
        escape(&chart.title),
        escape(&chart.title)
    );
}

/// The runs the page draws from and how much of the suite they cover.
fn runs_covered(h: &mut String, records: &[Record]) {
    h.push_str("<h2 id=\"runs\">Runs covered</h2>\n<table><tr><th class=\"l\">run</th><th class=\"l\">preset</th><th class=\"l\">saved as</th><th>records shown</th><th class=\"l\">from</th><th class=\"l\">to</th></tr>\n");
    for run in runs(records) {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&run.id),
            escape(&run.preset),
            escape(run.saved_baseline.as_deref().unwrap_or("–")),
            run.records,
            utc(run.first),
            utc(run.last)
        );
    }
    h.push_str("</table>\n<table><tr><th class=\"l\">family</th><th>scenarios run</th><th>benches run (scenario x contender)</th></tr>\n");
    for c in coverage(records) {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{} of {}</td><td>{} of {}</td></tr>",
            c.family, c.scenarios.0, c.scenarios.1, c.benches.0, c.benches.1
        );
    }
    h.push_str("</table>\n");
}

/// What each contender that does not follow exact Lloyd (or is there for
/// another reason) does differently, from the registry.
fn rule_notes() -> String {
    use crate::contenders::{Role, REGISTRY};
    REGISTRY
        .iter()
        .filter_map(|e| {
            let note = match (e.rule.note(), e.role) {
                (Some(note), _) => {
                    format!("{note} (inertia checked at {:.0e})", e.rule.tolerance())
                }
                (None, Role::Ablation) => {
                    "ours with a feature switched off, shown to measure what it buys".into()
                }
                _ => return None,
            };
            Some(format!("<b>{}</b>: {}", escape(e.name), escape(&note)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn protocol(h: &mut String, records: &[Record]) {
    let threads: std::collections::BTreeSet<usize> = records.iter().map(|r| r.threads).collect();
    let threads: Vec<String> = threads.iter().map(|t| t.to_string()).collect();
    let _ = write!(
        h,
        "<p>Every contender got <b>the same data</b> (seeded Gaussian blobs, C order; f64, or cast once to f32 in the float32 family), <b>the same initial centroids</b> (greedy k-means++, seed 0, cached beside the data; in the vector-quantisation family k random rows, as k-means++ at such k costs more than the fits), <b>the same stopping rule</b> (at most 300 iterations, stop when no label changes) and <b>the same threads</b> ({}; the Rust rayon pools and NumPy's and scikit-learn's OpenMP/BLAS pools through threadpoolctl). Only <code>fit</code> is timed: data is loaded and handed over, modules imported and one warm-up fit run before timing. Figures are medians of the timed fits; minimum and maximum are in the tables and CSV files. Inertia is recomputed by us from each contender's centroids.</p>\n<p class=\"note\">Where a peer cannot follow the protocol it is measured, not hidden: {}. scikit-learn copies and centres the data inside <code>fit</code>, which is part of its timed cost. Exact-Lloyd contenders are checked against the best exact inertia of the scenario at {:.0e}; the others are kept out of that reference and checked at their own tolerance (in the tables).</p>\n",
        threads.join(", "),
        rule_notes(),
        crate::contenders::EXACT_INERTIA_TOLERANCE
    );
    let times = records.iter().map(|r| r.recorded_at);
    if let (Some(first), Some(last)) = (times.clone().min(), times.max()) {
        let _ = writeln!(
            h,
            "<p>{} records (the latest of each contender per scenario), recorded between {} and {}; {}</p>",
            records.len(),
            utc(first),
            utc(last),
            provenance(records)
        );
    }
}

/// Whether the contenders compared in one scenario ran in one process, one
/// after another, or come from runs merged later (and on which machines).
fn provenance(records: &[Record]) -> String {
    use std::collections::{BTreeMap, BTreeSet};
    let mut runs: BTreeMap<(&str, String), BTreeSet<Option<&str>>> = BTreeMap::new();
    for r in records {
        runs.entry((r.family.as_str(), r.scenario.id()))
            .or_default()
            .insert(r.run_id.as_deref());
    }
    let merged = runs.values().filter(|ids| ids.len() > 1).count();
    let machines: BTreeSet<String> = records
        .iter()
        .map(|r| {
            let fact = |key: &str| r.environment.get(key).map_or("?", String::as_str);
            format!("{} ({})", fact("machine.cpu"), fact("machine.simd"))
        })
        .collect();
    let machines = match machines.len() {
        1 => format!(
            "all on one machine, {}",
            machines.iter().next().expect("one")
        ),
        n => format!(
            "on {n} machines: {}",
            machines.into_iter().collect::<Vec<_>>().join("; ")
        ),
    };
    if merged == 0 {
        format!("contenders compared in one scenario ran in the same process, one after another; {machines}.")
    } else {
        format!(
            "contenders compared in one scenario ran in the same process, one after another, except in {merged} of the {} scenarios, whose records come from more than one run (merged with <code>report --merge</code>; each record's run is in <code>results.jsonl</code>); {machines}.",
            runs.len()
        )
    }
}

/// Seconds since the Unix epoch as an RFC 3339 UTC time.
fn utc(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn summary(h: &mut String, records: &[Record]) {
    let _ = write!(h, "<h2 id=\"summary\">Summary</h2>\n<table><tr><th class=\"l\">contender</th><th>speed-up over {}<br>(geometric mean)</th><th>speed-up over the fastest Python peer<br>(geometric mean, per scenario)</th><th>worst inertia gap</th><th>failed checks</th><th>skipped/failed</th><th class=\"l\">largest scenario</th><th>peak RSS there<br>(fresh process)</th><th>allocator / tracemalloc peak there</th></tr>\n", Comparator::Baseline.label());
    for s in summarise(records) {
        let speedup = |v: Option<(f64, usize)>| {
            opt(v, |(x, n)| {
                format!("{x:.2}x <small>({n} scenarios)</small>")
            })
        };
        let (largest, resident, own) = match &s.largest {
            Some((scenario, r)) => (
                scenario.id(),
                opt(r.memory.process_peak_bytes, |b| format_bytes(b as f64)),
                opt(
                    r.memory.alloc_peak_bytes.or(r.memory.traced_peak_bytes),
                    |b| format_bytes(b as f64),
                ),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let fail = if s.failed_checks > 0 {
            " class=\"fail\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td{fail}>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.contender),
            speedup(s.speedup_over_baseline),
            speedup(s.speedup_over_python_peer),
            opt(s.worst_inertia_gap.as_ref(), |(g, at)| format!("{g:.1e} <small>({})</small>", escape(at))),
            s.failed_checks,
            s.not_run,
            escape(&largest),
            resident,
            own
        );
    }
    h.push_str("</table>\n");
}

fn quality(h: &mut String, records: &[Record]) {
    h.push_str("<h2 id=\"scenarios\">Per scenario: time, iterations and quality</h2>\n<p>Inertia gap: relative to the lowest inertia of the exact-Lloyd contenders in the scenario. ARI: adjusted Rand index against the true blobs. Silhouette: on a fixed-seed subsample of 1000 samples. Work: passes over X, how many times over its rows they read in all, and GFLOP (2 d flops per squared distance), as the contender counts them (reported by <code>rust</code> and <code>rust-plain</code>; with its bounds <code>rust</code> scores far fewer distances than a plain Lloyd fit and, where they settle most rows, reads few of them). Time / floor: the median fit time over the least time that work can take on this machine, from the FMA peak and read bandwidth measured in the same run: each pass over X bound by the slower of reading what it reads of X and its arithmetic (at the FMA peak of the precision it ran in: the distances <code>rust</code>'s f32 screen computes for f64 data count at the f32 peak), summed over passes (reads of labels and bounds are not counted). Contenders that do not report their work are given a plain Lloyd fit's: a validation pass, one full distance pass per iteration, a final inertia pass. Flagged cells failed the inertia check: their times are not valid results.</p>\n");
    for family in crate::suite::FAMILIES {
        let rows: Vec<&Record> = records.iter().filter(|r| r.family == family.id).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h3 id=\"scenarios-{id}\">{id}</h3><p>{}</p>",
            escape(family.about),
            id = family.id
        );
        scenario_table(h, &rows);
    }
    let others: Vec<&Record> = records
        .iter()
        .filter(|r| crate::suite::family(&r.family).is_none())
        .collect();
    if !others.is_empty() {
        h.push_str("<h3>Families no longer in the suite</h3>\n");
        scenario_table(h, &others);
    }
}

/// One family's rows of the per-scenario table.
fn scenario_table(h: &mut String, records: &[&Record]) {
    h.push_str("<table><tr><th class=\"l\">scenario</th><th class=\"l\">contender</th><th class=\"l\">status</th><th>median</th><th>min</th><th>max</th><th>iterations</th><th>per iteration</th><th>work</th><th>time / floor</th><th>inertia gap</th><th>ARI</th><th>silhouette</th></tr>\n");
    let mut previous = String::new();
    for r in records {
        let status = match r.status {
            Status::Ok => "ok".to_string(),
            Status::Skipped => format!("skipped: {}", r.reason.as_deref().unwrap_or("")),
            Status::Failed => format!("failed: {}", r.reason.as_deref().unwrap_or("")),
        };
        let gap_class = match r.inertia_check {
            Some(Check::Fail) => " class=\"fail\"",
            _ => "",
        };
        let status_class = if r.status == Status::Ok {
            "l"
        } else {
            "l skip"
        };
        // The scenario once per group of rows.
        let id = r.scenario_id();
        let shown = if id == previous {
            String::new()
        } else {
            escape(&id)
        };
        previous = id;
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{shown}</td><td class=\"l\">{}</td><td class=\"{status_class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{gap_class}>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.contender),
            escape(&status),
            opt(r.median_seconds(), format_seconds),
            opt(r.min_seconds(), format_seconds),
            opt(r.max_seconds(), format_seconds),
            opt(r.n_iter, |n| n.to_string()),
            opt(r.seconds_per_iter(), format_seconds),
            opt(r.work(), |(passes, reads, gflop)| format!(
                "{passes} passes (X read {reads:.1} times), {gflop:.3} GFLOP"
            )),
            opt(r.median_seconds().zip(r.floor_seconds()), |(s, f)| format!(
                "{:.1}x",
                s / f
            )),
            opt(r.rel_inertia_diff, |g| {
                let mark = if r.inertia_check == Some(Check::Fail) { " FAILED" } else { "" };
                format!("{g:.1e}{mark}")
            }),
            opt(r.ari, |a| format!("{a:.4}")),
            opt(r.silhouette, |s| format!("{s:.4}")),
        );
    }
    h.push_str("</table>\n");
}

fn environment(h: &mut String, records: &[Record]) {
    let mut facts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for r in records {
        for (k, v) in &r.environment {
            *facts.entry(k).or_default().entry(v).or_default() += 1;
        }
    }
    let _ = write!(h, "<h2 id=\"environment\">Environment</h2>\n<details><summary>{} facts: versions, thread pools, machine, floors (values that differ between records show how many records had each)</summary><table><tr><th class=\"l\">fact</th><th class=\"l\">value (records)</th></tr>\n", facts.len());
    for (k, values) in facts {
        let shown: Vec<String> = values
            .iter()
            .map(|(v, n)| {
                if values.len() > 1 {
                    format!("{} ({n})", escape(v))
                } else {
                    escape(v)
                }
            })
            .collect();
        let value = if shown.len() > 3 {
            format!(
                "<details><summary>{} values</summary>{}</details>",
                shown.len(),
                shown.join("<br>")
            )
        } else {
            shown.join("<br>")
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{value}</td></tr>",
            escape(k),
        );
    }
    h.push_str("</table></details>\n");
}

fn links(h: &mut String, dir: &Path, records: &[Record]) {
    let mut scenarios: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r.scenario_id(),
                crate::results::csv_path(Path::new(""), &r.family, r.scenario)
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect();
    scenarios.dedup();
    let criterion = dir.parent().map(|p| p.join("target/criterion"));
    h.push_str("<h2 id=\"raw\">Raw numbers and Criterion's reports</h2>\n<ul>\n");
    if dir.join("results.jsonl").exists() {
        h.push_str("<li><a href=\"results.jsonl\">results.jsonl</a>: every record, every timed sample</li>\n");
    }
    for (id, csv) in scenarios {
        let mut line = format!("<li>{}", escape(&id));
        if dir.join(&csv).exists() {
            let _ = write!(line, ": <a href=\"{}\">CSV</a>", escape(&csv));
        }
        let criterion_dir = id.replace('/', "_");
        if let Some(root) = &criterion {
            if root.join(&criterion_dir).join("report/index.html").exists() {
                let _ = write!(
                    line,
                    ", <a href=\"../target/criterion/{}/report/index.html\">Criterion</a>",
                    escape(&criterion_dir)
                );
            }
        }
        line.push_str("</li>\n");
        h.push_str(&line);
    }
    h.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::provenance;
    use crate::results::bare_record;

    #[test]
    fn provenance_names_merged_scenarios_and_every_machine() {
        let record = |contender: &str, scenario, run: &str, cpu: &str| {
            let mut r = bare_record(contender, scenario, &[0.001]);
            r.run_id = Some(run.into());
            r.environment.insert("machine.cpu".into(), cpu.into());
            r.environment
                .insert("machine.simd".into(), "avx2 fma".into());
            r
        };
        let one_run = [
            record("rust", (1000, 2, 2), "a", "EPYC"),
            record("numpy", (1000, 2, 2), "a", "EPYC"),
        ];
        assert_eq!(
            provenance(&one_run),
            "contenders compared in one scenario ran in the same process, one after another; \
             all on one machine, EPYC (avx2 fma)."
        );
        let merged = [
            record("rust", (1000, 2, 2), "a", "EPYC"),
            record("numpy", (1000, 2, 2), "b", "EPYC"),
            record("rust", (1000, 2, 8), "b", "Xeon"),
        ];
        let text = provenance(&merged);
        assert!(text.contains("except in 1 of the 2 scenarios"), "{text}");
        assert!(
            text.ends_with("on 2 machines: EPYC (avx2 fma); Xeon (avx2 fma)."),
            "{text}"
        );
    }
}
