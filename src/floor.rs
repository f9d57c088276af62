//! The machine's floors, measured in the same run as the contenders: the FMA
//! peak (a register-blocked multiply-add loop) and the read bandwidth (a
//! fused sum over a large array). Together they give the least time one
//! k-means pass over X can take: `max(bytes / bandwidth, flops / peak)`.

use std::time::Instant;

use rayon::prelude::*;

use crate::kmeans::simd::fma_chains;

/// Rounds of multiply-adds in one call of the FMA loop.
const FMA_STEPS: usize = 1 << 22;

/// The f64 FMA peak of the current rayon pool, in FLOP/s (2 per multiply-add).
pub fn fma_peak_flops() -> f64 {
    peak(|seed| fma_chains(seed, FMA_STEPS))
}

/// The f32 FMA peak of the current rayon pool, in FLOP/s: what the `f32`
/// kernel (and the `f64` kernel's `f32` screen) is bound by.
pub fn fma_peak_flops_f32() -> f64 {
    peak(|seed| fma_chains(seed as f32, FMA_STEPS))
}

/// FLOP/s of `run` on every thread of the current pool at once; `run`
/// returns a sum to keep alive and the multiply-adds it did.
fn peak(run: fn(f64) -> (f64, u64)) -> f64 {
    let threads = rayon::current_num_threads();
    let start = Instant::now();
    let (sink, multiply_adds) = (0..threads)
        .into_par_iter()
        .map(|t| run(1.0 + t as f64 * 1e-9))
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    2.0 * multiply_adds as f64 / seconds
}

/// Read bandwidth of the current rayon pool over `x`, in bytes/s: the time
/// of one fused sum over every element (the least any pass over X costs).
pub fn read_bandwidth(x: &[f64]) -> f64 {
    let start = Instant::now();
    let sum: f64 = x
        .par_chunks(1 << 16)
        .map(|chunk| {
            let mut lanes = [0.0f64; 8];
            for block in chunk.chunks_exact(8) {
                for (l, v) in lanes.iter_mut().zip(block) {
                    *l += v;
                }
            }
            lanes.iter().sum::<f64>() + chunk.chunks_exact(8).remainder().iter().sum::<f64>()
        })
        .sum();
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(sum);
    std::mem::size_of_val(x) as f64 / seconds
}
