//! Everything that depends on the instruction set, and the only place with
//! intrinsics. The instruction set is detected once ([`Isa::detect`]) and
//! chosen once per chunk of rows ([`Isa::dispatch`]); below that point the
//! code is generic over it as a type ([`Simd`]), compiled once per
//! instruction set, so the algorithm never matches on it.
//!
//! - `lanes`: the vector operations a kernel needs ([`lanes::Lanes`]), and
//!   the kernels written once against them.
//! - `avx512`, `avx2`: those operations for each float type, and the
//!   routines of one instruction set only.
//! - `portable`: plain loops for CPUs without either, and the reference
//!   versions of the distances, which the wide ones match to the bit.
//! - `carry_over`: carrying Hamerly's bounds over a step's drift sixteen
//!   rows at a time with AVX-512, eight with AVX2 (the same arithmetic as
//!   the bounds' own row-by-row code).
//! - `fma`: the multiply-add loops that measure the machine's peak.

mod avx2;
mod avx512;
mod carry_over;
mod fma;
mod lanes;
mod portable;

use std::fmt::Debug;
use std::ops::AddAssign;

pub use carry_over::{CarryOver, F32_ROUNDING, F32_SPACING_MIN, F32_TINY};
pub use fma::fma_chains;
pub use lanes::{CentroidLayout, ROWS_IN_LANES_MAX_D};
pub use portable::{squared_distance, squared_distance_and_scan, squared_norm};

/// An instruction set the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA (and AVX2): 512-bit vectors, 32 registers.
    Avx512,
    /// AVX2 with FMA: 256-bit vectors, 16 registers.
    Avx2,
    /// Whatever the target baseline gives (SSE2 on x86-64), no FMA.
    Portable,
}

impl Isa {
    /// The widest instruction set this CPU runs, capped by
    /// `KMEANS_KERNEL=portable|avx2` (for comparisons). Detected once per
    /// process.
    pub fn detect() -> Isa {
        static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            let cap = std::env::var("KMEANS_KERNEL").unwrap_or_default();
            Isa::widest().capped(&cap)
        })
    }

    /// The widest instruction set this CPU runs, whatever the cap (the
    /// machine's floors are the machine's).
    pub fn widest() -> Isa {
        static WIDEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *WIDEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("fma") && has!("avx2") {
                    return if has!("avx512f") {
                        Isa::Avx512
                    } else {
                        Isa::Avx2
                    };
                }
            }
            Isa::Portable
        })
    }

    /// This instruction set, or a narrower one named by `cap`.
    fn capped(self, cap: &str) -> Isa {
        match (self, cap) {
            (_, "portable") => Isa::Portable,
            (Isa::Avx512, "avx2") => Isa::Avx2,
            _ => self,
        }
    }

    /// Every instruction set this CPU runs, widest first, within the cap
    /// of [`Self::detect`] (for tests that compare them).
    #[cfg(test)]
    pub fn supported() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .skip_while(|isa| *isa != best)
            .collect()
    }

    /// The name results are labelled with: `avx512`, `avx2` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Elements of `F` in one vector register.
    pub fn lanes<F>(self) -> usize {
        let bytes = match self {
            Isa::Avx512 => 64,
            Isa::Avx2 => 32,
            Isa::Portable => 16,
        };
        bytes / std::mem::size_of::<F>()
    }

    /// Whether this CPU runs it.
    fn runs_here(self) -> bool {
        let rank = |isa: Isa| match isa {
            Isa::Portable => 0,
            Isa::Avx2 => 1,
            Isa::Avx512 => 2,
        };
        rank(self) <= rank(Isa::widest())
    }

    /// Runs `op` compiled for this instruction set (which the CPU must run:
    /// it comes from [`Self::detect`] or [`Self::supported`]).
    #[inline]
    pub fn dispatch<Op: WithSimd>(self, op: Op) -> Op::Output {
        assert!(self.runs_here(), "{self:?} is not supported by this CPU");
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU runs it (checked above).
            Isa::Avx512 => unsafe { avx512::Avx512::new_unchecked() }.run(op),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { avx2::Avx2::new_unchecked() }.run(op),
            _ => portable::Portable.run(op),
        }
    }
}

/// An operation compiled once per instruction set: [`Isa::dispatch`] (or
/// [`Simd::run`]) calls `run` from a function compiled for the instruction
/// set, so `run` must be `#[inline(always)]` for its body, and what it
/// inlines, to be compiled for it too.
pub trait WithSimd {
    type Output;
    fn run<S: Simd>(self, simd: S) -> Self::Output;
}

/// An instruction set as a type: a value is proof that the CPU runs it.
pub trait Simd: Kernels<f32> + Kernels<f64> + Send + Sync + Debug + 'static {
    /// The instruction set.
    const ISA: Isa;
    /// Rows per tile of the centroids-in-lanes kernel: enough accumulators
    /// to hide the multiply-add latency, few enough to stay in registers.
    const TILE_ROWS: usize;

    /// Runs `op` in a function compiled for this instruction set.
    fn run<Op: WithSimd>(self, op: Op) -> Op::Output;

    /// The nearest of `k` centroids to each of `out.len()` rows by their
    /// first `D` features, in `f32`, for the guesses: feature `f` of row `i`
    /// is `columns[f * STRIDE + i]`, `negated[j * D + f]` is `-c_jf`,
    /// `half_norms[j]` is `||c_j||^2 / 2` (`k = half_norms.len()`). Lowest
    /// index on ties; rows with NaN get centroid 0. `STRIDE` is a multiple
    /// of 32, at least `out.len()`; `columns` holds `D * STRIDE` elements.
    fn nearest_in_columns<const D: usize, const STRIDE: usize>(
        self,
        columns: &[f32],
        negated: &[f32],
        half_norms: &[f32],
        out: &mut [u32],
    );
}

/// The kernels of one instruction set for one float type.
pub trait Kernels<F: Element>: Copy {
    /// The nearest centroid of each row of `x` (whole tiles of
    /// [`Simd::TILE_ROWS`] rows, `d` features each) in the centroids-in-lanes
    /// layout and, when `SCORES`, its best and runner-up scores
    /// (`||c||^2 - 2 x.c`) as `scores[2 i]` and `scores[2 i + 1]`.
    /// Meanwhile it asks for `next` (see [`NextRows`]).
    fn tiles<const SCORES: bool>(
        self,
        centroids: &CentroidLayout<'_, F>,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
        next: NextRows<'_>,
    );

    /// As [`Self::tiles`] in the rows-in-lanes layout, for any number of
    /// rows of at most [`ROWS_IN_LANES_MAX_D`] features (never chosen for
    /// the portable kernel).
    fn rows_in_lanes<const SCORES: bool>(
        self,
        centroids: &CentroidLayout<'_, F>,
        x: &[F],
        out: &mut [u32],
        scores: &mut [F],
    );

    /// Adds each row of `x` (`d` features) to the sum of its cluster and
    /// counts it: `sums[labels[i]] += x[i]`, `counts[labels[i]] += 1`
    /// (`sums` is `(k, d)`, row-major), in row order: the portable loop, in
    /// a function of the instruction set's own (so it vectorises as widely
    /// and stays apart from its caller).
    fn add_rows(self, x: &[F], labels: &[u32], sums: &mut [F], counts: &mut [u64], d: usize);

    /// [`squared_distance`], to the same bits.
    #[inline(always)]
    fn squared_distance(self, a: &[F], b: &[F]) -> F {
        squared_distance(a, b)
    }

    /// [`squared_norm`], to the same bits.
    #[inline(always)]
    fn squared_norm(self, a: &[F]) -> f64 {
        squared_norm(a)
    }

    /// [`squared_distance_and_scan`], to the same bits.
    #[inline(always)]
    fn squared_distance_and_scan(self, a: &[F], b: &[F]) -> (F, f64, bool) {
        squared_distance_and_scan(a, b)
    }

    /// The first [`FIRST_FEATURES`] features of the `rows` rows of `x`
    /// (`d >= FIRST_FEATURES` each), feature `f` of row `i` into
    /// `columns[f * STRIDE + i]`, in `f32`.
    fn first_features_in_columns<const STRIDE: usize>(
        self,
        x: &[F],
        d: usize,
        rows: usize,
        columns: &mut [f32],
    );

    /// Carries the bounds of up to 64 rows over a step's drift and, when
    /// `terms.features > 0` (AVX-512 only), tightens those left unsettled,
    /// where this instruction set has a vector version of [`CarryOver`]'s
    /// arithmetic: the rows settled and the exact distances computed (with
    /// no tightening, the rows left to tighten). `None` where the caller's
    /// row-by-row code is the one.
    #[inline(always)]
    fn carry_over(
        self,
        terms: &CarryOver<'_>,
        x: &[F],
        labels: &[u32],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> Option<(u64, usize)> {
        let _ = (terms, x, labels, upper, lower);
        None
    }

    /// Tightens the upper bounds of the rows `pending` names (rows of
    /// `d <= TIGHTEN_IN_LANES_MAX_D` features) and tests them again, where
    /// this instruction set has a vector version of the bounds' arithmetic
    /// ([`CarryOver::tighten_avx2`]): the rows left unsettled moved to the
    /// front of `pending`, and how many. `None` where the caller's
    /// row-by-row code is the one.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn tighten(
        self,
        terms: &CarryOver<'_>,
        x: &[F],
        d: usize,
        centroids: &[F],
        labels: &[u32],
        pending: &mut [u32],
        upper: &mut [f32],
        lower: &[f32],
    ) -> Option<usize> {
        let _ = (terms, x, d, centroids, labels, pending, upper, lower);
        None
    }
}

/// The first assignment's guesses look at this many of a row's first
/// features.
pub const FIRST_FEATURES: usize = 8;

/// `f32` or `f64`, with their kernels on every instruction set.
pub trait Element: num_traits::Float + AddAssign + Default + Send + Sync + Debug + 'static {
    /// Widens (or keeps) the value as `f64`.
    fn as_f64(self) -> f64;
    /// Converts from `f64`, rounding to nearest for `f32`.
    fn from_f64(value: f64) -> Self;
    /// `simd`'s kernels for this type.
    fn kernels<S: Simd>(simd: S) -> impl Kernels<Self>;
}

impl Element for f32 {
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    #[inline(always)]
    fn kernels<S: Simd>(simd: S) -> impl Kernels<f32> {
        simd
    }
}

impl Element for f64 {
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value
    }
    #[inline(always)]
    fn kernels<S: Simd>(simd: S) -> impl Kernels<f64> {
        simd
    }
}

/// The rows a step reads after the ones a kernel scores, asked for into the
/// second-level cache a line at a time between the kernel's multiply-adds:
/// memory then delivers them while the kernel computes, where the rows were
/// otherwise read only once it was done (the hardware prefetchers follow
/// reads, and the kernel reads none of these).
#[derive(Debug, Clone, Copy)]
pub struct NextRows<'a> {
    bytes: &'a [u8],
}

impl NextRows<'static> {
    /// Nothing to ask for.
    pub const NONE: Self = NextRows { bytes: &[] };
}

impl<'a> NextRows<'a> {
    /// These rows.
    pub fn of<F: Element>(rows: &'a [F]) -> Self {
        // SAFETY: the elements are floats (no padding, any byte is
        // initialised), and the bytes borrow `rows` for as long.
        let bytes = unsafe {
            std::slice::from_raw_parts(rows.as_ptr().cast::<u8>(), std::mem::size_of_val(rows))
        };
        NextRows { bytes }
    }

    /// Cache lines the rows span (their start rounded down to a line).
    pub fn lines(self) -> usize {
        if self.bytes.is_empty() {
            return 0;
        }
        let start = self.bytes.as_ptr() as usize % 64;
        (start + self.bytes.len()).div_ceil(64)
    }

    /// Asks for line `line` of [`lines`](Self::lines).
    #[inline(always)]
    pub fn ask(self, line: usize) {
        prefetch_into_l2(self.bytes.as_ptr().wrapping_add(line * 64), 1);
    }
}

/// Asks for the cache line at `p` (and, for `bytes > 64`, the lines after
/// it) into the second-level cache. A prefetch never faults, whatever the
/// address.
#[inline(always)]
pub fn prefetch_into_l2<T>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        for line in (0..bytes).step_by(64) {
            // SAFETY: a prefetch reads nothing and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

#[cfg(test)]
mod tests {
    use super::NextRows;

    #[test]
    fn next_rows_span_the_lines_they_touch() {
        #[repr(align(64))]
        struct Lines([f64; 32]);
        let rows = Lines([0.0; 32]);
        let rows = &rows.0;
        assert_eq!(NextRows::NONE.lines(), 0);
        assert_eq!(NextRows::of(&rows[..0]).lines(), 0);
        assert_eq!(NextRows::of(&rows[4..4]).lines(), 0);
        assert_eq!(NextRows::of(&rows[..1]).lines(), 1);
        assert_eq!(NextRows::of(&rows[..8]).lines(), 1);
        assert_eq!(NextRows::of(&rows[..9]).lines(), 2);
        // From mid-line: the first line and the ones after.
        assert_eq!(NextRows::of(&rows[7..9]).lines(), 2);
        assert_eq!(NextRows::of(&rows[4..28]).lines(), 4);
        assert_eq!(NextRows::of(&rows[..]).lines(), 4);
    }
}
