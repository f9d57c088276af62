//! Facts about the machine and the build, recorded beside every result.

use std::collections::BTreeMap;

/// CPU model, cores, rustc, and the versions of the Rust dependencies that
/// matter to the numbers.
pub fn machine() -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    let simd: Vec<&str> = ["avx512f", "avx2", "fma", "sse4_2", "neon"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|w| w == *f))
        .collect();
    facts.insert("machine.cpu".into(), model);
    facts.insert("machine.simd".into(), simd.join(" "));
    facts.insert(
        "machine.cores".into(),
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string(),
    );
    facts.insert("machine.os".into(), std::env::consts::OS.into());
    facts.insert("build.rustc".into(), env!("KMEANS_RUSTC_VERSION").into());
    facts.insert(
        "build.crates".into(),
        env!("KMEANS_DEPENDENCY_VERSIONS").into(),
    );
    facts.insert(
        "build.profile".into(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
    );
    facts
}
