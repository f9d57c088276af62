//! The report's SVG charts, drawn with plotters' SVG backend (text is left to
//! the browser's fonts, so no font library is needed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::summary::Comparator;
use crate::contenders::{names, position, Role};
use crate::error::{Error, Result};
use crate::results::{Record, Status};
use crate::suite::SWEEP;

/// Where a chart belongs on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Time,
    Speedup,
    Memory,
    Overlap,
    Scaling,
    Float32,
    Quantisation,
    Quality,
}

/// A chart written to disk.
#[derive(Debug, Clone)]
pub struct Chart {
    pub path: PathBuf,
    pub title: String,
    pub section: Section,
}

/// The palette, taken in registry order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(217, 72, 15),
    RGBColor(250, 160, 100),
    RGBColor(112, 72, 232),
    RGBColor(28, 126, 214),
    RGBColor(43, 138, 62),
    RGBColor(148, 216, 45),
    RGBColor(214, 51, 108),
    RGBColor(240, 180, 0),
    RGBColor(16, 152, 173),
    RGBColor(120, 85, 60),
];

/// One colour per contender, the same in every chart: its registry
/// position's in the palette (grey for a name not in the registry).
pub fn colour(contender: &str) -> RGBColor {
    PALETTE
        .get(position(contender))
        .copied()
        .unwrap_or(RGBColor(90, 90, 90))
}

fn report_error(e: impl std::fmt::Display) -> Error {
    Error::Report(e.to_string())
}

/// A series: a contender's (x, y) points.
struct Series {
    name: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// One panel of a line chart.
struct Panel {
    caption: String,
    series: Vec<Series>,
}

fn log_range(values: impl Iterator<Item = f64>) -> Option<std::ops::Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (lo.is_finite() && hi > 0.0).then(|| lo / 1.6..hi * 1.6)
}

/// A grid of log-log line panels under one legend strip (so no legend
/// covers data); `y_format` labels the y axis with its unit.
fn line_panels(
    path: &Path,
    title: &str,
    panels: &[Panel],
    cols: usize,
    x_desc: &str,
    y_desc: &str,
    y_format: &dyn Fn(f64) -> String,
) -> Result<()> {
    const LEGEND: u32 = 30;
    let rows = panels.len().div_ceil(cols);
    let size = (380 * cols as u32, 300 * rows as u32 + 40 + LEGEND);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(report_error)?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(report_error)?;
    let (legend, root) = root.split_vertically(LEGEND);
    let mut seen: Vec<(&str, RGBColor)> = Vec::new();
    for s in panels.iter().flat_map(|p| &p.series) {
        if !seen.iter().any(|(name, _)| *name == s.name) {
            seen.push((s.name.as_str(), s.colour));
        }
    }
    let mut x = 20i32;
    for (name, c) in seen {
        legend
            .draw(&PathElement::new(
                vec![(x, 15), (x + 18, 15)],
                c.stroke_width(3),
            ))
            .map_err(report_error)?;
        legend
            .draw(&Text::new(
                name.to_string(),
                (x + 24, 8),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(report_error)?;
        x += 40 + 7 * name.chars().count() as i32;
    }
    let areas = root.split_evenly((rows, cols));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let xs = log_range(
            panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0)),
        );
        let ys = log_range(
            panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
        );
        let (Some(xs), Some(ys)) = (xs, ys) else {
            continue;
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.caption, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(62)
            .build_cartesian_2d(xs.log_scale(), ys.log_scale())
            .map_err(report_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(6)
            .y_labels(6)
            .light_line_style(WHITE.mix(0.0))
            .x_label_formatter(&|v| format_count(*v))
            .y_label_formatter(&|v| y_format(*v))
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(report_error)?;
        for s in &panel.series {
            let c = s.colour;
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .map_err(report_error)?;
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(report_error)?;
        }
    }
    root.present().map_err(report_error)
}

/// One panel of a heatmap: rows x columns of optional values.
struct Heat {
    caption: String,
    row_desc: String,
    col_desc: String,
    row_labels: Vec<String>,
    col_labels: Vec<String>,
    cells: Vec<Vec<Option<f64>>>,
}

/// A row of heatmap panels; `fill` colours a value, `text` labels it.
fn heat_panels(
    path: &Path,
    title: &str,
    panels: &[Heat],
    fill: &dyn Fn(f64) -> RGBColor,
    text: &dyn Fn(f64) -> String,
) -> Result<()> {
    let cols = panels.len().max(1);
    // Wide enough for the title at 20 px (about 10 px a character) and for
    // every panel's columns; tall enough for its rows.
    let columns: u32 = panels
        .iter()
        .map(|p| (72 * p.col_labels.len() as u32 + 110).max(360))
        .sum();
    let rows = panels.iter().map(|p| p.row_labels.len()).max().unwrap_or(1) as u32;
    let width = columns.max(10 * title.chars().count() as u32 + 40);
    let height = (34 * rows + 130).max(330);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(report_error)?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(report_error)?;
    for (heat, area) in panels.iter().zip(root.split_evenly((1, cols)).iter()) {
        let (nr, nc) = (heat.row_labels.len(), heat.col_labels.len());
        let mut chart = ChartBuilder::on(area)
            .caption(&heat.caption, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..nc as f64, 0.0..nr as f64)
            .map_err(report_error)?;
        let col_labels = heat.col_labels.clone();
        let row_labels = heat.row_labels.clone();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&heat.col_desc)
            .y_desc(&heat.row_desc)
            .x_labels(nc * 2 + 1)
            .y_labels(nr * 2 + 1)
            .x_label_formatter(&move |v| cell_label(*v, &col_labels))
            .y_label_formatter(&move |v| cell_label(*v, &row_labels))
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(report_error)?;
        for (r, row) in heat.cells.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let (colour, label) = match value {
                    Some(v) => (fill(*v), text(*v)),
                    None => (RGBColor(235, 235, 235), "–".to_string()),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        colour.filled(),
                    )))
                    .map_err(report_error)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        label,
                        (x + 0.5, y + 0.5),
                        ("sans-serif", 12).into_font().color(&BLACK).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            ),
                        ),
                    )))
                    .map_err(report_error)?;
            }
        }
    }
    root.present().map_err(report_error)
}

/// Labels cell centres (x.5) with their names; other ticks stay empty.
fn cell_label(v: f64, labels: &[String]) -> String {
    let i = v - 0.5;
    if (i - i.round()).abs() < 1e-9 && i >= 0.0 {
        labels.get(i.round() as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// `1000` -> `1k`, `1000000` -> `1M`.
pub fn format_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

/// Bytes as `12.3 MiB`.
pub fn format_bytes(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1 << 20) as f64 {
        format!("{:.1} MiB", b / (1 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.0} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

fn ok(records: &[Record], family: &str) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.family == family && r.status == Status::Ok)
        .cloned()
        .collect()
}

fn contenders_in(records: &[Record]) -> Vec<String> {
    names()
        .into_iter()
        .filter(|n| records.iter().any(|r| r.contender == *n))
        .map(|n| n.to_string())
        .collect()
}

/// Panels of `value` against `x`, one per (d, k) (or per k), a series per contender.
fn panels_by(
    records: &[Record],
    group: impl Fn(&Record) -> (usize, usize),
    caption: impl Fn((usize, usize)) -> String,
    x: impl Fn(&Record) -> f64,
    value: impl Fn(&Record) -> Option<f64>,
) -> Vec<Panel> {
    let keys: BTreeSet<(usize, usize)> = records.iter().map(&group).collect();
    keys.into_iter()
        .map(|key| Panel {
            caption: caption(key),
            series: contenders_in(records)
                .into_iter()
                .filter_map(|name| {
                    let mut points: Vec<(f64, f64)> = records
                        .iter()
                        .filter(|r| r.contender == name && group(r) == key)
                        .filter_map(|r| Some((x(r), value(r)?)))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (!points.is_empty()).then(|| Series {
                        colour: colour(&name),
                        name,
                        points,
                    })
                })
                .collect(),
        })
        .collect()
}

/// Draws every chart the results allow; returns what was written.
pub fn draw_all(dir: &Path, records: &[Record], warnings: &mut Vec<String>) -> Result<Vec<Chart>> {
    let mut charts = Vec::new();
    let sweep = ok(records, SWEEP);
    let add = |charts: &mut Vec<Chart>, name: &str, title: &str, section: Section| {
        charts.push(Chart {
            path: dir.join(name),
            title: title.to_string(),
            section,
        });
    };

    if !sweep.is_empty() {
        time_charts(
            dir,
            &sweep,
            &TimeAxes {
                file_prefix: "",
                title_suffix: "",
                x_desc: "samples n",
                against: "samples",
                group: &|r| (r.scenario.d, r.scenario.k),
                caption: &|(d, k)| format!("d = {d}, k = {k}"),
                x: &|r| r.scenario.n as f64,
                section: Section::Time,
            },
            &mut charts,
        )?;

        for comparator in Comparator::ALL {
            let baseline = comparator.label();
            if !sweep
                .iter()
                .any(|r| comparator.seconds(&sweep, r).is_some())
            {
                warnings.push(format!(
                    "no {baseline} results: no speed-up over {baseline} drawn"
                ));
                continue;
            }
            for name in contenders_in(&sweep)
                .into_iter()
                .filter(|n| crate::contenders::entry(n).is_some_and(|e| e.role == Role::Ours))
            {
                let heats = speedup_heats(&sweep, &name, comparator);
                let file = format!("speedup-{name}-over-{}.svg", comparator.slug());
                let title = format!(
                    "Speed-up of {name} over {baseline} (median fit time ratio; > 1 is faster)"
                );
                heat_panels(&dir.join(&file), &title, &heats, &speedup_colour, &|v| {
                    format!("{v:.2}x")
                })?;
                add(&mut charts, &file, &title, Section::Speedup);
            }
        }

        let (d_max, k_max) = sweep
            .iter()
            .map(|r| (r.scenario.d, r.scenario.k))
            .max()
            .expect("non-empty");
        let memory = memory_panels(&sweep, d_max, k_max);
        let title =
            format!("Peak memory of one fit against samples (d = {d_max}, k = {k_max}), by source");
        line_panels(
            &dir.join("memory.svg"),
            &title,
            &memory,
            3,
            "samples n",
            "bytes above the fit's start",
            &format_bytes,
        )?;
        add(&mut charts, "memory.svg", &title, Section::Memory);

        let heats: Vec<Heat> = contenders_in(&sweep)
            .into_iter()
            .map(|name| {
                grid(&sweep, &name, k_max, |r| {
                    r.memory.process_peak_bytes.map(|b| b as f64)
                })
            })
            .collect();
        let title = format!(
            "Peak resident memory of one fit in a fresh process, above its size before the fit (k = {k_max}), per contender"
        );
        heat_panels(
            &dir.join("memory-heatmap.svg"),
            &title,
            &heats,
            &memory_colour,
            &|v| format_bytes(v),
        )?;
        add(&mut charts, "memory-heatmap.svg", &title, Section::Memory);
    }

    let overlap = ok(records, "kmeans-overlap");
    if !overlap.is_empty() {
        time_charts(
            dir,
            &overlap,
            &TimeAxes {
                file_prefix: "overlap-",
                title_suffix: " (overlapping blobs)",
                x_desc: "features d",
                against: "features",
                group: &|r| (r.scenario.n, r.scenario.k),
                caption: &|(n, k)| format!("n = {}, k = {k}", format_count(n as f64)),
                x: &|r| r.scenario.d as f64,
                section: Section::Overlap,
            },
            &mut charts,
        )?;
    }

    let one_thread = ok(records, "kmeans-t1");
    if !one_thread.is_empty() {
        let title = "Speed-up from one thread to all (median fit time at one thread over the sweep's at its thread count)";
        let heat = against_sweep(
            &one_thread,
            &ok(records, SWEEP),
            "1 thread against",
            |one, all| one / all,
        );
        heat_panels(
            &dir.join("scaling.svg"),
            title,
            &[heat],
            &speedup_colour,
            &|v| format!("{v:.2}x"),
        )?;
        add(&mut charts, "scaling.svg", title, Section::Scaling);
    }

    let float32 = ok(records, "kmeans-f32");
    if !float32.is_empty() {
        let title = "Float32 against float64: median fit time on f64 data over the same fit on the data cast to f32";
        let heat = against_sweep(&float32, &ok(records, SWEEP), "f32, threads", |f32, f64| {
            f64 / f32
        });
        heat_panels(
            &dir.join("float32.svg"),
            title,
            &[heat],
            &speedup_colour,
            &|v| format!("{v:.2}x"),
        )?;
        add(&mut charts, "float32.svg", title, Section::Float32);
    }

    let quantisation = ok(records, "kmeans-vq");
    if !quantisation.is_empty() {
        time_charts(
            dir,
            &quantisation,
            &TimeAxes {
                file_prefix: "vq-",
                title_suffix: " (vector quantisation)",
                x_desc: "clusters k",
                against: "clusters",
                group: &|r| (r.scenario.n, r.scenario.d),
                caption: &|(n, d)| format!("n = {}, d = {d}", format_count(n as f64)),
                x: &|r| r.scenario.k as f64,
                section: Section::Quantisation,
            },
            &mut charts,
        )?;
    }
    if let Some(heat) = silhouettes(&sweep) {
        let title = "Silhouette of each contender's labels (fixed-seed subsample of 1000 samples)";
        heat_panels(
            &dir.join("silhouette.svg"),
            title,
            &[heat],
            &|v| speedup_colour(10f64.powf(2.0 * v)),
            &|v| format!("{v:.2}"),
        )?;
        add(&mut charts, "silhouette.svg", title, Section::Quality);
    }
    Ok(charts)
}

/// A contender per row, a sweep scenario per column, at the sweep's
/// n = 100000 (or its largest n), each cell the silhouette.
fn silhouettes(sweep: &[Record]) -> Option<Heat> {
    let scored: Vec<&Record> = sweep.iter().filter(|r| r.silhouette.is_some()).collect();
    let ns: BTreeSet<usize> = scored.iter().map(|r| r.scenario.n).collect();
    let n = if ns.contains(&100_000) {
        100_000
    } else {
        *ns.last()?
    };
    let scenarios: BTreeSet<(usize, usize)> = scored
        .iter()
        .filter(|r| r.scenario.n == n)
        .map(|r| (r.scenario.d, r.scenario.k))
        .collect();
    let names: Vec<String> = contenders_in(sweep)
        .into_iter()
        .filter(|name| scored.iter().any(|r| r.contender == *name))
        .collect();
    let cells = names
        .iter()
        .map(|name| {
            scenarios
                .iter()
                .map(|&(d, k)| {
                    scored
                        .iter()
                        .find(|r| {
                            r.contender == *name
                                && r.scenario.n == n
                                && r.scenario.d == d
                                && r.scenario.k == k
                        })?
                        .silhouette
                })
                .collect()
        })
        .collect();
    Some(Heat {
        caption: format!("n = {}", format_count(n as f64)),
        row_desc: "contender".into(),
        col_desc: "features d, clusters k".into(),
        row_labels: names,
        col_labels: scenarios
            .iter()
            .map(|(d, k)| format!("d{d} k{k}"))
            .collect(),
        cells,
    })
}

/// One panel: a row per contender, a column per scenario of a family that
/// reruns sweep scenarios another way, each cell `ratio(family median,
/// sweep median)`, empty where the two were measured on different machines.
fn against_sweep<'a>(
    family: &'a [Record],
    sweep: &'a [Record],
    caption: &str,
    ratio: fn(f64, f64) -> f64,
) -> Heat {
    let scenarios: BTreeSet<crate::data::Scenario> = family.iter().map(|r| r.scenario).collect();
    let names = contenders_in(family);
    let find = |records: &'a [Record], name: &str, s: crate::data::Scenario| {
        records
            .iter()
            .find(|r| r.contender == name && r.scenario == s)
    };
    // Two times are compared only when measured on the same kind of
    // machine: a reference measured in parts may hold runs of two.
    let machine = |r: &Record| {
        (
            r.environment.get("machine.cpu").cloned(),
            r.environment.get("machine.simd").cloned(),
        )
    };
    let cells = names
        .iter()
        .map(|name| {
            scenarios
                .iter()
                .map(|&s| {
                    let (a, b) = (find(family, name, s)?, find(sweep, name, s)?);
                    if machine(a) != machine(b) {
                        return None;
                    }
                    Some(ratio(a.median_seconds()?, b.median_seconds()?))
                })
                .collect()
        })
        .collect();
    let threads: BTreeSet<usize> = sweep.iter().map(|r| r.threads).collect();
    Heat {
        caption: format!(
            "{caption} {}",
            threads
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        row_desc: "contender".into(),
        col_desc: "scenario".into(),
        row_labels: names,
        col_labels: scenarios.iter().map(|s| s.id()).collect(),
        cells,
    }
}

/// How a family's time charts are laid out.
struct TimeAxes<'a> {
    file_prefix: &'a str,
    title_suffix: &'a str,
    x_desc: &'a str,
    against: &'a str,
    group: &'a dyn Fn(&Record) -> (usize, usize),
    caption: &'a dyn Fn((usize, usize)) -> String,
    x: &'a dyn Fn(&Record) -> f64,
    section: Section,
}

/// What a chart plots of a record.
type Measure<T> = fn(&Record) -> Option<T>;

/// Fit time and time per iteration, one panel per group, a series per contender.
fn time_charts(
    dir: &Path,
    records: &[Record],
    axes: &TimeAxes,
    charts: &mut Vec<Chart>,
) -> Result<()> {
    let measures: [(&str, &str, &str, Measure<f64>); 2] = [
        ("fit-time", "Fit time (median)", "fit time", |r| {
            r.median_seconds()
        }),
        (
            "time-per-iteration",
            "Time per iteration (median fit time / iterations)",
            "time per iteration",
            |r| r.seconds_per_iter(),
        ),
    ];
    for (file, what, y_desc, value) in measures {
        let panels = panels_by(records, axes.group, axes.caption, axes.x, value);
        let name = format!("{}{file}.svg", axes.file_prefix);
        let title = format!("{what} against {}{}", axes.against, axes.title_suffix);
        line_panels(
            &dir.join(&name),
            &title,
            &panels,
            3,
            axes.x_desc,
            y_desc,
            &super::run_summary::format_seconds,
        )?;
        charts.push(Chart {
            path: dir.join(name),
            title,
            section: axes.section,
        });
    }
    Ok(())
}

/// Memory panels: one per contender, a series per measuring source.
fn memory_panels(records: &[Record], d: usize, k: usize) -> Vec<Panel> {
    let at = |r: &&Record| r.scenario.d == d && r.scenario.k == k;
    let sources: [(&str, RGBColor, Measure<u64>); 4] = [
        ("peak RSS of a fresh process", RGBColor(20, 20, 20), |r| {
            r.memory.process_peak_bytes
        }),
        ("Rust allocator peak", RGBColor(217, 72, 15), |r| {
            r.memory.alloc_peak_bytes
        }),
        ("tracemalloc peak", RGBColor(28, 126, 214), |r| {
            r.memory.traced_peak_bytes
        }),
        (
            "bench process's VmHWM growth (diagnostic)",
            RGBColor(170, 170, 170),
            |r| r.memory.resident_peak_bytes,
        ),
    ];
    contenders_in(records)
        .into_iter()
        .map(|name| Panel {
            caption: name.clone(),
            series: sources
                .iter()
                .filter_map(|(label, c, get)| {
                    let mut points: Vec<(f64, f64)> = records
                        .iter()
                        .filter(at)
                        .filter(|r| r.contender == name)
                        .filter_map(|r| Some((r.scenario.n as f64, get(r)? as f64)))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (!points.is_empty()).then(|| Series {
                        name: label.to_string(),
                        colour: *c,
                        points,
                    })
                })
                .collect(),
        })
        .collect()
}

/// An n x d grid of one contender's values at `k`.
fn grid(records: &[Record], name: &str, k: usize, value: impl Fn(&Record) -> Option<f64>) -> Heat {
    let ns: BTreeSet<usize> = records.iter().map(|r| r.scenario.n).collect();
    let ds: BTreeSet<usize> = records.iter().map(|r| r.scenario.d).collect();
    let cells = ns
        .iter()
        .map(|&n| {
            ds.iter()
                .map(|&d| {
                    records
                        .iter()
                        .find(|r| {
                            r.contender == name
                                && r.scenario.n == n
                                && r.scenario.d == d
                                && r.scenario.k == k
                        })
                        .and_then(&value)
                })
                .collect()
        })
        .collect();
    Heat {
        caption: format!("{name}, k = {k}"),
        row_desc: "samples n".into(),
        col_desc: "features d".into(),
        row_labels: ns.iter().map(|&n| format_count(n as f64)).collect(),
        col_labels: ds.iter().map(|d| d.to_string()).collect(),
        cells,
    }
}

/// One heatmap per k of `name`'s speed-up over `baseline`.
fn speedup_heats(records: &[Record], name: &str, comparator: Comparator) -> Vec<Heat> {
    let ks: BTreeSet<usize> = records.iter().map(|r| r.scenario.k).collect();
    ks.into_iter()
        .map(|k| {
            grid(records, name, k, |r| {
                Some(comparator.seconds(records, r)? / r.median_seconds()?)
            })
        })
        .collect()
}

/// Red below 1x, white at 1x, green above, saturating at 100x either way.
fn speedup_colour(v: f64) -> RGBColor {
    let t = (v.log10() / 2.0).clamp(-1.0, 1.0);
    let fade = |full: u8, t: f64| (255.0 - (255.0 - full as f64) * t) as u8;
    if t >= 0.0 {
        RGBColor(fade(46, t), fade(160, t), fade(67, t))
    } else {
        RGBColor(fade(224, -t), fade(49, -t), fade(49, -t))
    }
}

/// Light to dark blue over 1 MiB .. 10 GiB (log).
fn memory_colour(bytes: f64) -> RGBColor {
    let t = ((bytes.max(1.0).log2() - 20.0) / 14.0).clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t) as u8;
    RGBColor(mix(231.0, 24.0), mix(245.0, 100.0), mix(255.0, 171.0))
}
