//! The machine's floors, measured in the same run as the contenders: the FMA
//! peak (a register-blocked multiply-add loop) and the read bandwidth (a
//! fused sum over a large array). Together they give the least time one
//! k-means pass over X can take: `max(bytes / bandwidth, flops / peak)`.

use std::time::Instant;

use rayon::prelude::*;

/// Multiply-adds per lane in one call of the FMA loop.
const FMA_STEPS: usize = 1 << 22;

/// The f64 FMA peak of the current rayon pool, in FLOP/s (2 per multiply-add).
pub fn fma_peak_flops() -> f64 {
    // 32 independent 8-wide accumulators x FMA_STEPS steps x 2 flops.
    peak(fma_loop, FMA_STEPS * 32 * 8 * 2)
}

/// The f32 FMA peak of the current rayon pool, in FLOP/s: what the `f32`
/// kernel (and the `f64` kernel's `f32` screen) is bound by.
pub fn fma_peak_flops_f32() -> f64 {
    // 32 independent 16-wide accumulators x FMA_STEPS steps x 2 flops.
    peak(fma_loop_f32, FMA_STEPS * 32 * 16 * 2)
}

/// FLOP/s of `run` on every thread of the current pool at once, each call
/// doing `flops`.
fn peak(run: fn(f64) -> f64, flops: usize) -> f64 {
    let threads = rayon::current_num_threads();
    let start = Instant::now();
    let sink: f64 = (0..threads)
        .into_par_iter()
        .map(|t| run(1.0 + t as f64 * 1e-9))
        .sum();
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    (threads * flops) as f64 / seconds
}

/// As [`fma_loop`] in `f32`: 32 chains of 16 lanes (one 512-bit register
/// each), or of two 256-bit registers with AVX2, else plain loops.
fn fma_loop_f32(seed: f64) -> f64 {
    match fma_vectors() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `fma_vectors` detected the features.
        FmaVectors::Avx512 => return unsafe { fma_loop_f32_avx512(seed as f32) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        FmaVectors::Avx2 => return unsafe { fma_loop_f32_avx2(seed as f32) },
        _ => {}
    }
    let mut acc = [[seed as f32; 16]; 32];
    let (a, b) = (
        std::hint::black_box(0.999_9f32),
        std::hint::black_box(1e-6f32),
    );
    for _ in 0..FMA_STEPS {
        for chain in acc.iter_mut() {
            for v in chain.iter_mut() {
                *v = *v * a + b;
            }
        }
    }
    acc.iter().flatten().map(|&v| f64::from(v)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn fma_loop_f32_avx512(seed: f32) -> f64 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(std::hint::black_box(0.999_9));
    let b = _mm512_set1_ps(std::hint::black_box(1e-6));
    let mut acc = [_mm512_set1_ps(seed); 32];
    for _ in 0..FMA_STEPS {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    acc.iter()
        .map(|v| f64::from(_mm512_reduce_add_ps(*v)))
        .sum()
}

/// 16 chains of one 256-bit register each, four times as many steps: the
/// same number of lane multiply-adds as the AVX-512 loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_f32_avx2(seed: f32) -> f64 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(std::hint::black_box(0.999_9));
    let b = _mm256_set1_ps(std::hint::black_box(1e-6));
    let mut acc = [_mm256_set1_ps(seed); 16];
    for _ in 0..FMA_STEPS * 4 {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    let mut total = 0.0;
    for v in acc {
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        total += lanes.iter().map(|&l| f64::from(l)).sum::<f64>();
    }
    total
}

/// `FMA_STEPS` steps of 32 independent 8-lane multiply-adds: enough
/// independent chains to hide FMA latency on any current core.
fn fma_loop(seed: f64) -> f64 {
    match fma_vectors() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `fma_vectors` detected the features.
        FmaVectors::Avx512 => unsafe { fma_loop_avx512(seed) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        FmaVectors::Avx2 => unsafe { fma_loop_avx2(seed) },
        _ => fma_loop_generic(seed),
    }
}

/// The widest vectors with FMA this CPU has (the floors are the machine's:
/// no cap applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum FmaVectors {
    Avx512,
    Avx2,
    None,
}

fn fma_vectors() -> FmaVectors {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            return FmaVectors::Avx512;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            return FmaVectors::Avx2;
        }
    }
    FmaVectors::None
}

/// 32 chains of one 512-bit register each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn fma_loop_avx512(seed: f64) -> f64 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_pd(std::hint::black_box(0.999_999_9));
    let b = _mm512_set1_pd(std::hint::black_box(1e-9));
    let mut acc = [_mm512_set1_pd(seed); 32];
    for _ in 0..FMA_STEPS {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_pd(*v, a, b);
        }
    }
    acc.iter().map(|v| _mm512_reduce_add_pd(*v)).sum()
}

/// 16 chains of one 256-bit register each, four times as many steps: the
/// same number of lane multiply-adds as the AVX-512 loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(seed: f64) -> f64 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_pd(std::hint::black_box(0.999_999_9));
    let b = _mm256_set1_pd(std::hint::black_box(1e-9));
    let mut acc = [_mm256_set1_pd(seed); 16];
    for _ in 0..FMA_STEPS * 4 {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_pd(*v, a, b);
        }
    }
    let mut lanes = [0.0; 4];
    let mut total = 0.0;
    for v in acc {
        _mm256_storeu_pd(lanes.as_mut_ptr(), v);
        total += lanes.iter().sum::<f64>();
    }
    total
}

/// Without FMA: a multiply and an add per step, counted as two flops.
fn fma_loop_generic(seed: f64) -> f64 {
    let mut acc = [[seed; 8]; 32];
    let (a, b) = (
        std::hint::black_box(0.999_999_9),
        std::hint::black_box(1e-9),
    );
    for _ in 0..FMA_STEPS {
        for chain in acc.iter_mut() {
            for v in chain.iter_mut() {
                *v = *v * a + b;
            }
        }
    }
    acc.iter().flatten().sum()
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
