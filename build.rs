//! Build facts for the report (rustc and dependency versions), and, with the
//! `python` feature, an rpath so the binaries load the libpython they were
//! linked against.
//!
//! Without that rpath the dynamic loader takes the first `libpython3.x.so` on
//! its search path, which on a machine with two installs of the same minor
//! version is silently the wrong one.

use std::process::Command;

/// Dependencies whose versions the report shows.
const REPORTED: [&str; 9] = [
    "ndarray",
    "linfa",
    "linfa-clustering",
    "rayon",
    "pyo3",
    "numpy",
    "criterion",
    "plotters",
    "ndarray-npy",
];

fn main() {
    #[cfg(feature = "python")]
    pyo3_build_config::add_libpython_rpath_link_args();

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("cargo:rustc-env=KMEANS_RUSTC_VERSION={}", version.trim());

    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if REPORTED.contains(&n.as_str()) {
                versions.push(format!("{n} {}", v.trim_matches('"')));
            }
        }
    }
    println!(
        "cargo:rustc-env=KMEANS_DEPENDENCY_VERSIONS={}",
        versions.join(", ")
    );
}
