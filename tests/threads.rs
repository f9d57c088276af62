//! At one thread, ours (on the calling thread) and the peers that run their
//! own thread pools (oneDAL's TBB, faiss's OpenMP) really use one core: the
//! process's CPU time over a fit is close to its wall time. (Its own test
//! binary, one test: CPU time is the whole process's.)

use std::time::Instant;

use pythonvsrust_kmeans::contenders::create;
use pythonvsrust_kmeans::data::{BlobSpec, DataCache, Scenario};
use pythonvsrust_kmeans::protocol::ScenarioRun;

/// User and system CPU time of this process, in seconds (`/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn peers_given_one_thread_use_one_core() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = DataCache::new(dir.path());
    // Overlapping blobs: tens of iterations, a fit of a fraction of a second.
    let spec = BlobSpec::new(Scenario::new(50_000, 16, 32).unwrap()).with_std(4.0);
    let (run, _) = ScenarioRun::load(&cache, &spec, 300, 1).unwrap();
    for name in ["rust", "sklearnex", "faiss"] {
        let mut contender = create(name).unwrap_or_else(|u| panic!("{name}: {}", u.reason));
        contender.prepare(&run.problem_for(name).unwrap()).unwrap();
        if name == "rust" {
            let threads = ("rust.threads".to_string(), "1".to_string());
            assert!(contender.environment().contains(&threads));
        }
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let mut fits = 0;
        while wall.elapsed().as_secs_f64() < 1.0 {
            contender.fit().unwrap();
            fits += 1;
        }
        let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
        eprintln!("{name}: {fits} fits, {cpu:.2} s of CPU in {wall:.2} s");
        // Two busy threads would give about 2; allow for tick rounding.
        assert!(
            cpu <= 1.3 * wall + 0.05,
            "{name}: {cpu:.2} s CPU in {wall:.2} s"
        );
    }
}
