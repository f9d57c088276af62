//! Which runs a report covers, so runs are never mixed silently: records of
//! quick-preset runs stay out of a report that has full-preset ones, and the
//! page lists every run it draws from and how much of the suite it covers.

use std::collections::{BTreeMap, BTreeSet};

use crate::data::Scenario;
use crate::results::{Record, Status};
use crate::suite::FAMILIES;

/// The preset a record was made under (`full` for records that predate the
/// key: only the bench made records then, and its default was full).
pub(crate) fn preset(r: &Record) -> &str {
    r.environment
        .get("bench.preset")
        .map_or("full", String::as_str)
}

/// The records of full-preset runs when there are any (with how many
/// quick-preset records were left out), else all of them.
pub(crate) fn one_preset(records: Vec<Record>) -> (Vec<Record>, usize) {
    if records.iter().all(|r| preset(r) == "quick") {
        return (records, 0);
    }
    let before = records.len();
    let full: Vec<Record> = records
        .into_iter()
        .filter(|r| preset(r) != "quick")
        .collect();
    let left_out = before - full.len();
    (full, left_out)
}

/// One run among the records a report shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunLine {
    /// Its id, or `untagged` for records made before runs had ids.
    pub id: String,
    pub preset: String,
    /// Its name under Criterion's `--save-baseline`, if given.
    pub saved_baseline: Option<String>,
    /// Records it contributes, and the first and last time it recorded.
    pub records: usize,
    pub first: u64,
    pub last: u64,
}

/// The runs behind `latest`, oldest first.
pub(crate) fn runs(latest: &[Record]) -> Vec<RunLine> {
    let mut by_id: BTreeMap<String, RunLine> = BTreeMap::new();
    for r in latest {
        let id = r.run_id.clone().unwrap_or_else(|| "untagged".into());
        let line = by_id.entry(id.clone()).or_insert_with(|| RunLine {
            id,
            preset: preset(r).to_string(),
            saved_baseline: r.saved_baseline.clone(),
            records: 0,
            first: r.recorded_at,
            last: r.recorded_at,
        });
        line.records += 1;
        line.first = line.first.min(r.recorded_at);
        line.last = line.last.max(r.recorded_at);
    }
    let mut lines: Vec<RunLine> = by_id.into_values().collect();
    lines.sort_by_key(|l| l.first);
    lines
}

/// Per family of the suite: scenarios with at least one contender that
/// ran, of the family's scenarios; benches (scenario and contender) that
/// ran, of those the family has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Coverage {
    pub family: &'static str,
    pub scenarios: (usize, usize),
    pub benches: (usize, usize),
}

/// How much of the suite `latest` covers, family by family.
pub(crate) fn coverage(latest: &[Record]) -> Vec<Coverage> {
    FAMILIES
        .iter()
        .map(|family| {
            let scenarios: Vec<Scenario> =
                (family.scenarios)().iter().map(|s| s.scenario).collect();
            let names: BTreeSet<&str> = family.contenders().map(|e| e.name).collect();
            let ran: Vec<&Record> = latest
                .iter()
                .filter(|r| {
                    r.family == family.id
                        && r.status == Status::Ok
                        && scenarios.contains(&r.scenario)
                        && names.contains(r.contender.as_str())
                })
                .collect();
            let covered: BTreeSet<Scenario> = ran.iter().map(|r| r.scenario).collect();
            Coverage {
                family: family.id,
                scenarios: (covered.len(), scenarios.len()),
                benches: (ran.len(), scenarios.len() * names.len()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::bare_record;

    fn record(contender: &str, preset: &str, run: Option<&str>, at: u64) -> Record {
        let mut r = bare_record(contender, (1000, 2, 2), &[]);
        r.environment.insert("bench.preset".into(), preset.into());
        r.run_id = run.map(str::to_string);
        r.recorded_at = at;
        r
    }

    #[test]
    fn quick_records_stay_out_of_a_full_report() {
        let records = vec![
            record("rust", "full", Some("a"), 10),
            record("rust", "quick", Some("b"), 20),
            record("numpy", "full", None, 5),
        ];
        let (kept, left_out) = one_preset(records.clone());
        assert_eq!(left_out, 1);
        assert!(kept.iter().all(|r| preset(r) == "full"));
        // Quick records alone are a quick report, not an empty one.
        let (kept, left_out) = one_preset(vec![records[1].clone()]);
        assert_eq!((kept.len(), left_out), (1, 0));
        let lines = runs(&[records[0].clone(), records[2].clone()]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].id, "untagged");
        assert_eq!(lines[1].id, "a");
        assert_eq!(lines[1].records, 1);
    }

    #[test]
    fn coverage_counts_scenarios_and_benches_of_each_family() {
        let records = vec![
            record("rust", "full", None, 0),
            record("numpy", "full", None, 0),
        ];
        let sweep = coverage(&records)
            .into_iter()
            .find(|c| c.family == "kmeans")
            .unwrap();
        let total = crate::suite::family("kmeans")
            .map(|f| (f.scenarios)().len())
            .unwrap();
        assert_eq!(sweep.scenarios, (1, total));
        assert_eq!(sweep.benches.0, 2);
        assert_eq!(sweep.benches.1, total * crate::contenders::REGISTRY.len());
    }
}
