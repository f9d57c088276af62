//! Multiply-add loops at the machine's peak, for its floors: independent
//! chains of multiply-adds, one vector register each, as many as hide the
//! latency while leaving registers for the two factors (a chain per
//! register and none left over makes the compiler spill), or plain arrays
//! without vectors.

use super::{Element, Isa};

/// `steps` rounds of `v = v * a + b` in every lane of the chains of the
/// widest instruction set of the CPU, whatever the kernel's cap (without
/// FMA: a multiply and an add each). Returns the lanes' sum (to keep them
/// alive) and the multiply-adds done.
pub fn fma_chains<F: Element>(seed: F, steps: usize) -> (f64, u64) {
    // Factors that keep the chains finite and normal for any step count.
    let (a, b) = if std::mem::size_of::<F>() == 8 {
        (F::from_f64(0.999_999_9), F::from_f64(1e-9))
    } else {
        (F::from_f64(0.999_9), F::from_f64(1e-6))
    };
    let (a, b) = (std::hint::black_box(a), std::hint::black_box(b));
    let lanes = Isa::widest().lanes::<F>() as u64;
    match Isa::widest() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `widest` detected the features.
        Isa::Avx512 => (
            unsafe { x86::avx512(seed, a, b, steps) },
            24 * lanes * steps as u64,
        ),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => (
            unsafe { x86::avx2(seed, a, b, steps) },
            12 * lanes * steps as u64,
        ),
        _ => (plain(seed, a, b, steps), 256 * steps as u64),
    }
}

/// [`fma_chains`] in plain arrays: 256 chains.
fn plain<F: Element>(seed: F, a: F, b: F, steps: usize) -> f64 {
    let mut acc = [[seed; 8]; 32];
    for _ in 0..steps {
        for chain in acc.iter_mut() {
            for v in chain.iter_mut() {
                *v = *v * a + b;
            }
        }
    }
    acc.iter().flatten().map(|v| v.as_f64()).sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::avx2::{Avx2F32, Avx2F64};
    use super::super::avx512::{Avx512F32, Avx512F64};
    use super::super::lanes::Lanes;
    use super::super::Element;

    /// `C` chains of one register each, `steps` multiply-adds per lane.
    ///
    /// # Safety
    /// The CPU must support `L`'s instruction set.
    #[inline(always)]
    unsafe fn chains<L: Lanes, const C: usize>(seed: L::F, a: L::F, b: L::F, steps: usize) -> f64 {
        // SAFETY (all below): the caller's contract; stores write one
        // register into a 16-element array.
        unsafe {
            let (a, b) = (L::splat(a), L::splat(b));
            let mut acc = [L::splat(seed); C];
            for _ in 0..steps {
                for v in acc.iter_mut() {
                    *v = L::fmadd(*v, a, b);
                }
            }
            let mut lanes = [seed; 16];
            let mut total = 0.0;
            for v in acc {
                L::store(lanes.as_mut_ptr(), v);
                total += lanes[..L::LANES].iter().map(|l| l.as_f64()).sum::<f64>();
            }
            total
        }
    }

    /// 24 chains of one 512-bit register each (of 32).
    ///
    /// # Safety
    /// The CPU must run AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn avx512<F: Element>(seed: F, a: F, b: F, steps: usize) -> f64 {
        // SAFETY: this function's features; `F` is `f32` or `f64`.
        unsafe {
            if std::mem::size_of::<F>() == 8 {
                let f = |v: F| v.as_f64();
                chains::<Avx512F64, 24>(f(seed), f(a), f(b), steps)
            } else {
                let f = |v: F| v.as_f64() as f32;
                chains::<Avx512F32, 24>(f(seed), f(a), f(b), steps)
            }
        }
    }

    /// 12 chains of one 256-bit register each (of 16).
    ///
    /// # Safety
    /// The CPU must run AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<F: Element>(seed: F, a: F, b: F, steps: usize) -> f64 {
        // SAFETY: as above.
        unsafe {
            if std::mem::size_of::<F>() == 8 {
                let f = |v: F| v.as_f64();
                chains::<Avx2F64, 12>(f(seed), f(a), f(b), steps)
            } else {
                let f = |v: F| v.as_f64() as f32;
                chains::<Avx2F32, 12>(f(seed), f(a), f(b), steps)
            }
        }
    }
}
