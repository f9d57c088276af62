//! Peak resident memory of this process (Linux), for every contender alike.
//!
//! The kernel's high-water mark (`VmHWM`) is reset by writing `5` to
//! `/proc/self/clear_refs`; after a measured region, `VmHWM` minus the
//! resident size at its start is the region's peak resident growth. It counts
//! every allocation, Rust's, CPython's and BLAS's alike, in pages actually
//! touched; freed memory that the allocator keeps counts until it is reused.

use std::fs;

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resident bytes now.
pub fn resident_bytes() -> Option<u64> {
    status_bytes("VmRSS")
}

/// Resets the resident high-water mark; returns the resident size now.
pub fn reset_peak_resident() -> Option<u64> {
    fs::write("/proc/self/clear_refs", "5").ok()?;
    resident_bytes()
}

/// The resident high-water mark since the last reset.
pub fn peak_resident_bytes() -> Option<u64> {
    status_bytes("VmHWM")
}

/// Runs `f` and returns its result with the peak resident growth above the
/// resident size at its start (`None` where the kernel does not tell).
pub fn peak_resident_above_baseline<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    let baseline = reset_peak_resident();
    let result = f();
    let peak = peak_resident_bytes();
    let growth = match (baseline, peak) {
        (Some(b), Some(p)) => Some(p.saturating_sub(b)),
        _ => None,
    };
    (result, growth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_fresh_memory_raises_the_peak() {
        let (_, growth) = peak_resident_above_baseline(|| {
            let mut v = vec![0u8; 64 << 20];
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
        });
        let growth = growth.expect("Linux reports VmHWM");
        assert!(growth >= 60 << 20, "{growth}");
    }
}
