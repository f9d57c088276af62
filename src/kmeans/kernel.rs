//! The distance kernel: rows of X against all centroids.
//!
//! For each row `x` and centroid `c` it computes the half score
//! `||c||^2 / 2 - x.c` (half the squared distance less `||x||^2`, which is
//! the same for every centroid and left out, as scikit-learn does): a chain of
//! fused multiply-adds over the features, started at `||c||^2 / 2`, against
//! the negated centroid. Every layout below runs that same chain in the same
//! order, so they give the same scores and the same labels to the bit; the
//! lowest index wins a tie.
//!
//! Two layouts, chosen by shape:
//! - **Centroids in lanes** (most shapes): centroids are laid out in blocks
//!   of `C` columns, transposed (`d x C` per block, padded with zero
//!   centroids whose norm is +inf so they never win). A tile of `R` rows is
//!   multiplied against each block with `R x C` accumulators held in
//!   registers: per feature, `C / lanes` vector loads and `R` broadcasts feed
//!   `R * C / lanes` fused multiply-adds; each row's lanes are reduced once
//!   at the end.
//! - **Rows in lanes** (few features, where that reduction would cost more
//!   than the multiply-adds): each vector holds one feature of `lanes` rows,
//!   and the centroids are visited one by one with broadcasts, so the best
//!   score of every row is kept lane-wise and nothing is reduced across lanes.
//!
//! The SIMD code is compiled for AVX-512 and for AVX2 with FMA, beside a
//! portable baseline, and the widest the CPU supports is chosen at run time.

use ndarray::ArrayView2;

use super::float::Float;
use super::screen::Screen;

/// The instruction set a kernel was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA: 512-bit vectors, 32 registers.
    Avx512,
    /// AVX2 with FMA: 256-bit vectors, 16 registers.
    Avx2,
    /// Whatever the target baseline gives (SSE2 on x86-64), no FMA.
    Portable,
}

impl Isa {
    /// The widest instruction set this CPU runs (`KMEANS_KERNEL=portable|avx2`
    /// caps it, for comparisons). Detected once per process.
    pub fn detect() -> Isa {
        static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            let cap = std::env::var("KMEANS_KERNEL").unwrap_or_default();
            Self::widest_supported(&cap)
        })
    }

    fn widest_supported(cap: &str) -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            if cap != "portable"
                && cap != "avx2"
                && fma
                && std::arch::is_x86_feature_detected!("avx512f")
            {
                return Isa::Avx512;
            }
            if cap != "portable" && fma && std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        let _ = cap; // only x86-64 has kernels to cap
        Isa::Portable
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

    /// Elements of `F` in one vector register.
    pub fn lanes<F>(self) -> usize {
        self.vector_bytes() / std::mem::size_of::<F>()
    }

    /// Bytes in one vector register.
    fn vector_bytes(self) -> usize {
        match self {
            Isa::Avx512 => 64,
            Isa::Avx2 => 32,
            Isa::Portable => 16,
        }
    }

    /// Rows per tile: enough accumulators to hide FMA latency, few enough
    /// to stay in registers.
    fn tile_rows(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 | Isa::Portable => 4,
        }
    }
}

/// The most rows in a tile of any instruction set.
const MAX_TILE_ROWS: usize = 8;
/// Up to this many features, fewer rows than a tile are padded on the stack.
const MAX_PADDED_D: usize = 128;

/// How a kernel puts data in vector lanes (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Centroid columns in lanes, a tile of rows against each block.
    CentroidsInLanes,
    /// One feature of several rows in lanes, centroids broadcast one by one.
    RowsInLanes,
}

/// Rows in lanes holds every feature of a group of rows in registers: up to
/// this many features (beyond it, centroids in lanes was faster here).
pub const ROWS_IN_LANES_MAX_D: usize = 4;

impl Layout {
    /// The cheaper layout for `k` centroids of `d` features on `isa`.
    ///
    /// Centroids in lanes pays, per row, a reduction across lanes and the
    /// unused lanes of its last block; rows in lanes pays a compare, a
    /// minimum and a blend per centroid and vector of rows instead, and a
    /// gather per feature. Measured on 100000 rows with 2 threads (whole
    /// fits, no bounds): d = 2 fits took 0.65-0.9x the time in rows in
    /// lanes (k = 2, 8, 30), d = 4 about the same, d = 8 1.2-2x longer.
    pub fn choose(d: usize, isa: Isa) -> Layout {
        if isa != Isa::Portable && d <= ROWS_IN_LANES_MAX_D {
            Layout::RowsInLanes
        } else {
            Layout::CentroidsInLanes
        }
    }
}

/// Centroids laid out for the kernel.
#[derive(Debug)]
pub struct PreparedCentroids<F> {
    /// `blocks` of `(d, width)`, row-major, zero-padded: the negated
    /// centroids, transposed (centroids in lanes).
    blocks: Vec<F>,
    /// `||c_j||^2 / 2`, padded with +inf to a whole number of blocks.
    half_norms: Vec<F>,
    /// `j` as a float, beside each half norm (the SIMD kernels select it).
    lane_index: Vec<F>,
    /// The negated centroids, `(k, d)` row-major (rows in lanes).
    negated: Vec<F>,
    k: usize,
    d: usize,
    width: usize,
    isa: Isa,
    layout: Layout,
    /// The `f32` screen rows go through first, when there is one.
    screen: Option<Box<Screen>>,
}

impl<F: Float> PreparedCentroids<F> {
    /// Prepares `(k, d)` centroids for the fastest kernel of this CPU.
    pub fn new(centroids: ArrayView2<F>) -> Self {
        Self::with_isa(centroids, Isa::detect())
    }

    /// Prepares `(k, d)` centroids for the kernel of `isa` (which the CPU
    /// must support), in the layout that suits their shape.
    pub fn with_isa(centroids: ArrayView2<F>, isa: Isa) -> Self {
        let d = centroids.ncols();
        Self::with_layout(centroids, isa, Layout::choose(d, isa))
    }

    /// Prepares `(k, d)` centroids for the kernel of `isa` in `layout`
    /// (rows in lanes needs a SIMD `isa` and at most
    /// [`ROWS_IN_LANES_MAX_D`] features; otherwise centroids in lanes is
    /// used).
    pub fn with_layout(centroids: ArrayView2<F>, isa: Isa, layout: Layout) -> Self {
        let (k, d) = centroids.dim();
        let layout = if isa == Isa::Portable || d == 0 || d > ROWS_IN_LANES_MAX_D {
            Layout::CentroidsInLanes
        } else {
            layout
        };
        let lanes = isa.lanes::<F>();
        // One vector of columns when k fits in it, else two per block.
        let width = if k <= lanes { lanes } else { 2 * lanes };
        let n_blocks = k.div_ceil(width);
        let mut blocks = vec![F::zero(); n_blocks * d * width];
        let mut half_norms = vec![F::infinity(); n_blocks * width];
        let mut negated = Vec::with_capacity(k * d);
        for (j, centroid) in centroids.rows().into_iter().enumerate() {
            let (b, c) = (j / width, j % width);
            for (f, &v) in centroid.iter().enumerate() {
                blocks[b * d * width + f * width + c] = -v;
            }
            negated.extend(centroid.iter().map(|&v| -v));
            let norm = centroid.iter().fold(F::zero(), |acc, &v| acc + v * v);
            half_norms[j] = norm / (F::one() + F::one());
        }
        let lane_index = (0..half_norms.len())
            .map(|j| F::from_f64(j as f64))
            .collect();
        PreparedCentroids {
            blocks,
            half_norms,
            lane_index,
            negated,
            k,
            d,
            width,
            isa,
            layout,
            screen: None,
        }
    }

    /// Prepares `(k, d)` centroids as [`new`](Self::new) does, with the
    /// `f32` screen where it applies (see [`super::screen`]): labels are
    /// the same to the bit, but scores are then bounds (an upper bound on
    /// the best, a lower bound on the runner-up) rather than the kernel's.
    pub fn screened(centroids: ArrayView2<F>) -> Self {
        let mut prepared = Self::new(centroids);
        prepared.screen = Screen::new(centroids, prepared.isa).map(Box::new);
        prepared
    }

    /// The centroids-in-lanes layout: blocks, half norms, lane indices, d,
    /// block width.
    pub(crate) fn layout(&self) -> (&[F], &[F], &[F], usize, usize) {
        (
            &self.blocks,
            &self.half_norms,
            &self.lane_index,
            self.d,
            self.width,
        )
    }

    /// The rows-in-lanes layout: negated centroids `(k, d)`, their half
    /// norms and indices as floats (both `k` long at least), k, d.
    pub(crate) fn row_layout(&self) -> (&[F], &[F], &[F], usize, usize) {
        (
            &self.negated,
            &self.half_norms,
            &self.lane_index,
            self.k,
            self.d,
        )
    }

    /// The layout chosen.
    pub fn kernel_layout(&self) -> Layout {
        self.layout
    }

    /// Whether rows go through the `f32` screen first.
    pub(crate) fn is_screened(&self) -> bool {
        self.screen.is_some()
    }

    /// Rows the screen has sent on to the exact kernel since preparation.
    pub(crate) fn rescored_rows(&self) -> u64 {
        self.screen.as_ref().map_or(0, |s| s.undecided_rows())
    }

    /// The instruction set it was prepared for.
    pub(crate) fn isa(&self) -> Isa {
        self.isa
    }

    /// Block width in elements.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Writes the nearest centroid of each row of `x` (`(out.len(), d)`,
    /// row-major) to `out`.
    pub fn assign(&self, x: &[F], out: &mut [u32]) {
        self.assign_rows::<false>(x, out, &mut []);
    }

    /// As [`assign`](Self::assign), also writing each row's best and
    /// runner-up scores `||c_j||^2 - 2 x.c_j` (the squared distances less
    /// `||x||^2`, as the kernel computes them) to `scores[2 * i]` and
    /// `scores[2 * i + 1]`. The labels are the same as `assign`'s. With
    /// the `f32` screen ([`screened`](Self::screened)), a row it decided
    /// gets an upper bound on its best score and a lower bound on its
    /// runner-up instead.
    pub fn assign_with_scores(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        debug_assert_eq!(scores.len(), 2 * out.len());
        self.assign_rows::<true>(x, out, scores);
    }

    fn assign_rows<const SCORES: bool>(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        let Some(screen) = &self.screen else {
            return self.assign_exact::<SCORES>(x, out, scores);
        };
        let mut undecided = Vec::new();
        screen.screen::<F, SCORES>(x, out, scores, &mut undecided);
        if undecided.is_empty() {
            return;
        }
        let d = self.d;
        let mut rows = Vec::with_capacity(undecided.len() * d);
        for &i in &undecided {
            rows.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        let mut labels = vec![0; undecided.len()];
        let mut exact = vec![F::zero(); if SCORES { 2 * undecided.len() } else { 0 }];
        self.assign_exact::<SCORES>(&rows, &mut labels, &mut exact);
        for (p, &i) in undecided.iter().enumerate() {
            out[i] = labels[p];
            if SCORES {
                scores[2 * i] = exact[2 * p];
                scores[2 * i + 1] = exact[2 * p + 1];
            }
        }
    }

    /// [`assign_rows`](Self::assign_rows) in the `f64` (or `f32`) kernel
    /// alone.
    fn assign_exact<const SCORES: bool>(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        debug_assert_eq!(x.len(), out.len() * self.d);
        if self.layout == Layout::RowsInLanes
            && F::simd_rows_in_lanes::<SCORES>(self, x, out, scores)
        {
            return;
        }
        let rows = self.isa.tile_rows();
        let d = self.d;
        let full = out.len() / rows * rows;
        let (x_full, x_rest) = x.split_at(full * d);
        let (out_full, out_rest) = out.split_at_mut(full);
        let split = if SCORES { 2 * full } else { 0 };
        let (scores_full, scores_rest) = scores.split_at_mut(split);
        self.assign_tiles::<SCORES>(x_full, out_full, scores_full);
        if !out_rest.is_empty() {
            // The last rows as one whole tile (each row's result depends on
            // that row alone): the tile ending at the last row, overlapping
            // rows already done, or with fewer rows than a tile, the rows
            // padded with copies of the first.
            let rest = out_rest.len();
            // Filled only when padding is needed.
            let mut stack: [F; MAX_TILE_ROWS * MAX_PADDED_D];
            let mut heap: Vec<F>;
            let (tile, skip): (&[F], usize) = if full > 0 {
                (&x[x.len() - rows * d..], rows - rest)
            } else {
                let padded: &mut [F] = if d <= MAX_PADDED_D {
                    stack = [F::zero(); MAX_TILE_ROWS * MAX_PADDED_D];
                    &mut stack[..rows * d]
                } else {
                    heap = vec![F::zero(); rows * d];
                    &mut heap
                };
                for (r, row) in padded.chunks_exact_mut(d).enumerate() {
                    let source = if r < rest { r } else { 0 };
                    row.copy_from_slice(&x_rest[source * d..(source + 1) * d]);
                }
                (padded, 0)
            };
            let mut labels = [0u32; MAX_TILE_ROWS];
            let mut tile_scores = [F::zero(); 2 * MAX_TILE_ROWS];
            let tile_scores = if SCORES {
                &mut tile_scores[..2 * rows]
            } else {
                &mut tile_scores[..0]
            };
            self.assign_tiles::<SCORES>(tile, &mut labels[..rows], tile_scores);
            out_rest.copy_from_slice(&labels[skip..skip + rest]);
            if SCORES {
                scores_rest.copy_from_slice(&tile_scores[2 * skip..2 * (skip + rest)]);
            }
        }
    }

    /// Adds each row of `x` to the sum of its cluster and counts it:
    /// `sums[labels[i]] += x[i]`, `counts[labels[i]] += 1` (`sums` is `(k,
    /// d)`, row-major), in row order, with the widest vectors the CPU has.
    pub fn add_rows(&self, x: &[F], labels: &[u32], sums: &mut [F], counts: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        match self.isa {
            // SAFETY: `Isa::detect` confirmed the features before choosing the ISA.
            Isa::Avx512 => return unsafe { add_rows_avx512(x, labels, sums, counts, self.d) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { add_rows_avx2(x, labels, sums, counts, self.d) },
            Isa::Portable => {}
        }
        add_rows(x, labels, sums, counts, self.d)
    }

    /// Whole tiles only.
    fn assign_tiles<const SCORES: bool>(&self, x: &[F], out: &mut [u32], scores: &mut [F]) {
        if F::simd_tiles::<SCORES>(self, x, out, scores) {
            return;
        }
        match self.width {
            2 => portable_tiles::<F, 4, 2, SCORES>(self, x, out, scores),
            4 => portable_tiles::<F, 4, 4, SCORES>(self, x, out, scores),
            8 => portable_tiles::<F, 4, 8, SCORES>(self, x, out, scores),
            w => unreachable!("portable block width {w} is not prepared"),
        }
    }
}

#[inline(always)]
fn add_rows<F: Float>(x: &[F], labels: &[u32], sums: &mut [F], counts: &mut [u64], d: usize) {
    // Few features: the row's length as a constant, so nothing loops per row.
    match d {
        1 => add_rows_d::<F, 1>(x, labels, sums, counts),
        2 => add_rows_d::<F, 2>(x, labels, sums, counts),
        3 => add_rows_d::<F, 3>(x, labels, sums, counts),
        4 => add_rows_d::<F, 4>(x, labels, sums, counts),
        _ => {
            for (row, &j) in x.chunks_exact(d).zip(labels) {
                let j = j as usize;
                for (s, &v) in sums[j * d..(j + 1) * d].iter_mut().zip(row) {
                    *s += v;
                }
                counts[j] += 1;
            }
        }
    }
}

#[inline(always)]
fn add_rows_d<F: Float, const D: usize>(
    x: &[F],
    labels: &[u32],
    sums: &mut [F],
    counts: &mut [u64],
) {
    for (row, &j) in x.chunks_exact(D).zip(labels) {
        let j = j as usize;
        let sum = &mut sums[j * D..(j + 1) * D];
        for f in 0..D {
            sum[f] += row[f];
        }
        counts[j] += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_rows_avx512<F: Float>(
    x: &[F],
    labels: &[u32],
    sums: &mut [F],
    counts: &mut [u64],
    d: usize,
) {
    add_rows(x, labels, sums, counts, d)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_rows_avx2<F: Float>(
    x: &[F],
    labels: &[u32],
    sums: &mut [F],
    counts: &mut [u64],
    d: usize,
) {
    add_rows(x, labels, sums, counts, d)
}

/// The SIMD kernels of a float type, where the CPU has them.
pub trait SimdTiles: Sized {
    /// Runs the SIMD tiles for `p`'s instruction set (with runner-up scores
    /// when `SCORES`); `false` when there are none (the portable kernel then
    /// runs).
    fn simd_tiles<const SCORES: bool>(
        p: &PreparedCentroids<Self>,
        x: &[Self],
        out: &mut [u32],
        scores: &mut [Self],
    ) -> bool;

    /// Runs the rows-in-lanes kernel for `p`'s instruction set on any
    /// number of rows; `false` when there is none.
    fn simd_rows_in_lanes<const SCORES: bool>(
        p: &PreparedCentroids<Self>,
        x: &[Self],
        out: &mut [u32],
        scores: &mut [Self],
    ) -> bool;
}

macro_rules! simd_tiles {
    ($f:ty, $avx512:ident, $avx2:ident, $avx512_fn:ident, $avx2_fn:ident,
     $avx512_rows_fn:ident, $avx2_rows_fn:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn $avx512_rows_fn<const SCORES: bool>(
            p: &PreparedCentroids<$f>,
            x: &[$f],
            out: &mut [u32],
            scores: &mut [$f],
        ) {
            // SAFETY: this function's own target features are the kernel's.
            unsafe {
                super::simd::rows_in_lanes::<super::simd::$avx512, 4, SCORES>(p, x, out, scores)
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2_rows_fn<const SCORES: bool>(
            p: &PreparedCentroids<$f>,
            x: &[$f],
            out: &mut [u32],
            scores: &mut [$f],
        ) {
            // SAFETY: as above.
            unsafe {
                super::simd::rows_in_lanes::<super::simd::$avx2, 2, SCORES>(p, x, out, scores)
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn $avx512_fn<const V: usize, const SCORES: bool>(
            p: &PreparedCentroids<$f>,
            x: &[$f],
            out: &mut [u32],
            scores: &mut [$f],
        ) {
            // SAFETY: this function's own target features are the kernel's.
            unsafe { super::simd::tiles::<super::simd::$avx512, 8, V, SCORES>(p, x, out, scores) }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2_fn<const V: usize, const SCORES: bool>(
            p: &PreparedCentroids<$f>,
            x: &[$f],
            out: &mut [u32],
            scores: &mut [$f],
        ) {
            // SAFETY: as above.
            unsafe { super::simd::tiles::<super::simd::$avx2, 4, V, SCORES>(p, x, out, scores) }
        }

        impl SimdTiles for $f {
            #[allow(unreachable_code, unused_variables)]
            fn simd_tiles<const SCORES: bool>(
                p: &PreparedCentroids<$f>,
                x: &[$f],
                out: &mut [u32],
                scores: &mut [$f],
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    use super::simd::Lanes;
                    // SAFETY: `Isa::detect` chose the instruction set only
                    // after `is_x86_feature_detected!` confirmed it, and the
                    // centroids were laid out for it.
                    unsafe {
                        match (p.isa(), p.width()) {
                            (Isa::Avx512, w) if w == super::simd::$avx512::LANES => {
                                $avx512_fn::<1, SCORES>(p, x, out, scores)
                            }
                            (Isa::Avx512, _) => $avx512_fn::<2, SCORES>(p, x, out, scores),
                            (Isa::Avx2, w) if w == super::simd::$avx2::LANES => {
                                $avx2_fn::<1, SCORES>(p, x, out, scores)
                            }
                            (Isa::Avx2, _) => $avx2_fn::<2, SCORES>(p, x, out, scores),
                            (Isa::Portable, _) => return false,
                        }
                    }
                    return true;
                }
                false
            }

            #[allow(unreachable_code, unused_variables)]
            fn simd_rows_in_lanes<const SCORES: bool>(
                p: &PreparedCentroids<$f>,
                x: &[$f],
                out: &mut [u32],
                scores: &mut [$f],
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY: as for `simd_tiles`; `with_layout` chose rows in
                    // lanes only for a SIMD instruction set and few features.
                    unsafe {
                        match p.isa() {
                            Isa::Avx512 => $avx512_rows_fn::<SCORES>(p, x, out, scores),
                            Isa::Avx2 => $avx2_rows_fn::<SCORES>(p, x, out, scores),
                            Isa::Portable => return false,
                        }
                    }
                    return true;
                }
                false
            }
        }
    };
}

simd_tiles!(
    f64,
    Avx512F64,
    Avx2F64,
    avx512_f64,
    avx2_f64,
    avx512_rows_f64,
    avx2_rows_f64
);
simd_tiles!(
    f32,
    Avx512F32,
    Avx2F32,
    avx512_f32,
    avx2_f32,
    avx512_rows_f32,
    avx2_rows_f32
);

/// The portable tiles: plain loops the compiler vectorises as the target
/// baseline allows (no FMA).
fn portable_tiles<F: Float, const R: usize, const C: usize, const SCORES: bool>(
    p: &PreparedCentroids<F>,
    x: &[F],
    out: &mut [u32],
    scores: &mut [F],
) {
    let d = p.d;
    for (t, (rows, labels)) in x
        .chunks_exact(R * d)
        .zip(out.chunks_exact_mut(R))
        .enumerate()
    {
        let mut best = [F::infinity(); R];
        let mut second = [F::infinity(); R];
        let mut best_j = [0u32; R];
        for (b, (block, half_norms)) in p
            .blocks
            .chunks_exact(d * C)
            .zip(p.half_norms.chunks_exact(C))
            .enumerate()
        {
            // Each chain starts at the half norm (see the module documentation).
            let mut acc = [[F::zero(); C]; R];
            for row in acc.iter_mut() {
                row.copy_from_slice(half_norms);
            }
            for (f, column) in block.chunks_exact(C).enumerate() {
                for r in 0..R {
                    let xv = rows[r * d + f];
                    for c in 0..C {
                        acc[r][c] = xv * column[c] + acc[r][c];
                    }
                }
            }
            for (r, scores) in acc.iter().enumerate() {
                for (c, &score) in scores.iter().enumerate() {
                    if score < best[r] {
                        second[r] = best[r];
                        best[r] = score;
                        best_j[r] = (b * C + c) as u32;
                    } else if SCORES && score < second[r] {
                        second[r] = score;
                    }
                }
            }
        }
        labels.copy_from_slice(&best_j);
        if SCORES {
            for r in 0..R {
                scores[2 * (t * R + r)] = best[r] + best[r];
                scores[2 * (t * R + r) + 1] = second[r] + second[r];
            }
        }
    }
}

/// `||a||^2` in `f64`, summed in eight interleaved partial sums (so the
/// loop vectorises and is not bound by the latency of one chain of
/// additions).
#[inline]
pub fn squared_norm<F: Float>(a: &[F]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = a.chunks_exact(8);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| v.as_f64() * v.as_f64())
        .sum();
    for chunk in chunks {
        for l in 0..8 {
            let v = chunk[l].as_f64();
            lanes[l] += v * v;
        }
    }
    ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
        + tail
}

/// The squared norm of each row of `rows` (`(norms.len(), d)` row-major)
/// into `norms`, as [`WideDistances::squared_norm_on`] computes it: rows of
/// fewer than eight features with their count known to the compiler, so
/// that the loop runs across rows in vectors.
#[inline(always)]
pub fn squared_norms<F: Float>(isa: Isa, rows: &[F], norms: &mut [f64]) {
    #[inline(always)]
    fn short<F: Float, const D: usize>(rows: &[F], norms: &mut [f64]) {
        for (norm, row) in norms.iter_mut().zip(rows.chunks_exact(D)) {
            // Term by term from zero: `squared_norm`'s tail, its eight
            // partial sums being zero.
            *norm = row
                .iter()
                .fold(0.0, |sum, &v| sum + v.as_f64() * v.as_f64());
        }
    }
    let d = rows.len() / norms.len().max(1);
    match d {
        1 => short::<F, 1>(rows, norms),
        2 => short::<F, 2>(rows, norms),
        3 => short::<F, 3>(rows, norms),
        4 => short::<F, 4>(rows, norms),
        5 => short::<F, 5>(rows, norms),
        6 => short::<F, 6>(rows, norms),
        7 => short::<F, 7>(rows, norms),
        _ => {
            for (norm, row) in norms.iter_mut().zip(rows.chunks_exact(d.max(1))) {
                *norm = F::squared_norm_on(isa, row);
            }
        }
    }
}

/// `||a - b||^2`, summed in eight interleaved partial sums (so the loop
/// vectorises and is not bound by the latency of one chain of additions),
/// combined pairwise.
#[inline]
pub fn squared_distance<F: Float>(a: &[F], b: &[F]) -> F {
    distance_lanes::<F, false>(a, b).0
}

/// [`squared_distance`] (the same bits) with, in the same loop, what
/// [`super::validate::scan`] finds in `a`: its largest magnitude and
/// whether every value is finite.
#[inline]
pub fn squared_distance_and_scan<F: Float>(a: &[F], b: &[F]) -> (F, f64, bool) {
    let (distance, max, finite) = distance_lanes::<F, true>(a, b);
    (distance, max.as_f64(), finite)
}

/// [`squared_distance`], and with `SCAN` the scan of
/// [`squared_distance_and_scan`] in the same loop (else zero and `true`).
#[inline(always)]
fn distance_lanes<F: Float, const SCAN: bool>(a: &[F], b: &[F]) -> (F, F, bool) {
    let mut lanes = [F::zero(); 8];
    let mut max = [F::zero(); 8];
    let mut finite = [true; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let (mut tail, mut tail_max, mut tail_finite) = (F::zero(), F::zero(), true);
    for (&p, &q) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        tail += (p - q) * (p - q);
        if SCAN {
            let m = p.abs();
            tail_max = if m > tail_max { m } else { tail_max };
            tail_finite &= m <= F::max_value();
        }
    }
    for (p, q) in a_chunks.zip(b_chunks) {
        for l in 0..8 {
            let diff = p[l] - q[l];
            lanes[l] += diff * diff;
            if SCAN {
                let m = p[l].abs();
                max[l] = if m > max[l] { m } else { max[l] };
                // False for NaN and infinities alike.
                finite[l] &= m <= F::max_value();
            }
        }
    }
    let quads = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    let max = max.iter().fold(tail_max, |m, &v| if v > m { v } else { m });
    (
        (quads[0] + quads[2]) + (quads[1] + quads[3]) + tail,
        max,
        tail_finite && finite.iter().all(|&f| f),
    )
}

/// [`squared_norm`] and [`squared_distance`] in the widest vectors of an
/// instruction set, to the same bits: the compiler vectorises the portable
/// versions' eight partial sums as four two-lane vectors; for `f64` on
/// AVX-512 they are one register here.
pub trait WideDistances: Sized {
    /// [`squared_distance`] as `isa` computes it best.
    fn squared_distance_on(isa: Isa, a: &[Self], b: &[Self]) -> Self;
    /// [`squared_norm`] as `isa` computes it best.
    fn squared_norm_on(isa: Isa, a: &[Self]) -> f64;
    /// [`squared_distance_and_scan`] as `isa` computes it best (the
    /// distance's bits are [`Self::squared_distance_on`]'s).
    fn squared_distance_and_scan_on(isa: Isa, a: &[Self], b: &[Self]) -> (Self, f64, bool);
}

impl WideDistances for f32 {
    #[inline(always)]
    fn squared_distance_on(_: Isa, a: &[f32], b: &[f32]) -> f32 {
        squared_distance(a, b)
    }
    #[inline(always)]
    fn squared_norm_on(_: Isa, a: &[f32]) -> f64 {
        squared_norm(a)
    }
    #[inline(always)]
    fn squared_distance_and_scan_on(_: Isa, a: &[f32], b: &[f32]) -> (f32, f64, bool) {
        squared_distance_and_scan(a, b)
    }
}

impl WideDistances for f64 {
    #[inline(always)]
    fn squared_distance_on(isa: Isa, a: &[f64], b: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        // Rows shorter than a register are no faster in one.
        if isa == Isa::Avx512 && a.len() >= 8 {
            // SAFETY: `Isa::detect` confirmed AVX-512F.
            return unsafe { wide::squared_distance(a, b) };
        }
        let _ = isa;
        squared_distance(a, b)
    }
    #[inline(always)]
    fn squared_norm_on(isa: Isa, a: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 && a.len() >= 8 {
            // SAFETY: `Isa::detect` confirmed AVX-512F.
            return unsafe { wide::squared_norm(a) };
        }
        let _ = isa;
        squared_norm(a)
    }
    #[inline(always)]
    fn squared_distance_and_scan_on(isa: Isa, a: &[f64], b: &[f64]) -> (f64, f64, bool) {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 && a.len() >= 8 {
            // SAFETY: `Isa::detect` confirmed AVX-512F.
            return unsafe { wide::squared_distance_and_scan(a, b) };
        }
        let _ = isa;
        squared_distance_and_scan(a, b)
    }
}

/// The AVX-512 `f64` versions: the eight partial sums in one register,
/// combined as the portable versions combine them.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    /// `(l0 + l4 + l2 + l6) + (l1 + l5 + l3 + l7)`, paired as the portable
    /// versions pair them: `(q0 + q2) + (q1 + q3)` with `q_i = l_i + l_{i+4}`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn combine(lanes: __m512d) -> f64 {
        let quads = _mm256_add_pd(
            _mm512_castpd512_pd256(lanes),
            _mm512_extractf64x4_pd::<1>(lanes),
        );
        let pairs = _mm_add_pd(
            _mm256_castpd256_pd128(quads),
            _mm256_extractf128_pd::<1>(quads),
        );
        _mm_cvtsd_f64(pairs) + _mm_cvtsd_f64(_mm_unpackhi_pd(pairs, pairs))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
        distance_lanes::<false>(a, b).0
    }

    /// [`squared_distance`] with [`super::squared_distance_and_scan`]'s
    /// scan of `a`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn squared_distance_and_scan(a: &[f64], b: &[f64]) -> (f64, f64, bool) {
        distance_lanes::<true>(a, b)
    }

    /// [`squared_distance`], and with `SCAN` the scan of `a` in the same
    /// loop (else zero and `true`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn distance_lanes<const SCAN: bool>(a: &[f64], b: &[f64]) -> (f64, f64, bool) {
        let whole = a.len().min(b.len()) / 8 * 8;
        let mut lanes = _mm512_setzero_pd();
        let mut max = _mm512_setzero_pd();
        let mut finite: __mmask8 = 0xff;
        let largest = _mm512_set1_pd(f64::MAX);
        for i in (0..whole).step_by(8) {
            // SAFETY: `i + 8 <= whole <= a.len(), b.len()`.
            let (p, q) = unsafe {
                (
                    _mm512_loadu_pd(a.as_ptr().add(i)),
                    _mm512_loadu_pd(b.as_ptr().add(i)),
                )
            };
            let diff = _mm512_sub_pd(p, q);
            lanes = _mm512_add_pd(lanes, _mm512_mul_pd(diff, diff));
            if SCAN {
                let m = _mm512_abs_pd(p);
                // The second operand where either is NaN, as `scan` keeps it.
                max = _mm512_max_pd(m, max);
                // False for NaN and infinities alike.
                finite &= _mm512_cmp_pd_mask::<_CMP_LE_OQ>(m, largest);
            }
        }
        let (mut tail, mut tail_max, mut tail_finite) = (0.0, 0.0f64, true);
        for (&p, &q) in a[whole..].iter().zip(&b[whole..]) {
            tail += (p - q) * (p - q);
            if SCAN {
                let m = p.abs();
                tail_max = if m > tail_max { m } else { tail_max };
                tail_finite &= m <= f64::MAX;
            }
        }
        (
            combine(lanes) + tail,
            _mm512_reduce_max_pd(max).max(tail_max),
            tail_finite && finite == 0xff,
        )
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn squared_norm(a: &[f64]) -> f64 {
        let whole = a.len() / 8 * 8;
        let mut lanes = _mm512_setzero_pd();
        for i in (0..whole).step_by(8) {
            // SAFETY: `i + 8 <= whole <= a.len()`.
            let v = unsafe { _mm512_loadu_pd(a.as_ptr().add(i)) };
            lanes = _mm512_add_pd(lanes, _mm512_mul_pd(v, v));
        }
        let tail: f64 = a[whole..].iter().map(|&v| v * v).sum();
        combine(lanes) + tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Every instruction set of this CPU in both layouts (rows in lanes
    /// where the shape allows it).
    fn variants() -> Vec<(Isa, Layout)> {
        Isa::supported()
            .into_iter()
            .flat_map(|isa| [(isa, Layout::CentroidsInLanes), (isa, Layout::RowsInLanes)])
            .collect()
    }

    #[test]
    fn nearest_is_the_closest_centroid_and_ties_go_to_the_lowest_index() {
        let centroids = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]];
        for (isa, layout) in variants() {
            let prepared = PreparedCentroids::with_layout(centroids.view(), isa, layout);
            let x = [0.1, 0.2, 1.9, 0.2, -1.0, 5.0, 1.0, -3.0, 1.0, 1.0];
            let mut out = [9u32; 5];
            prepared.assign(&x, &mut out);
            // (1, -3) is as far from 0 as from 1; (1, 1) from all three: 0 wins.
            assert_eq!(out, [0, 1, 2, 0, 0], "{isa:?} {layout:?}");
        }
    }

    #[test]
    fn every_variant_and_width_matches_brute_force() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for (n, d, k) in [
            (37, 3, 2),
            (101, 5, 7),
            (64, 16, 9),
            (53, 2, 30),
            (29, 33, 17),
            (70, 1, 65),
        ] {
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-5.0..5.0f64));
            let expected: Vec<u32> = x
                .rows()
                .into_iter()
                .map(|row| {
                    let mut best = (f64::INFINITY, 0);
                    for (j, cj) in c.rows().into_iter().enumerate() {
                        let dist =
                            squared_distance(row.as_slice().unwrap(), cj.as_slice().unwrap());
                        if dist < best.0 {
                            best = (dist, j as u32);
                        }
                    }
                    best.1
                })
                .collect();
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c.view(), isa, layout);
                let mut out = vec![0u32; n];
                prepared.assign(x.as_slice().unwrap(), &mut out);
                assert_eq!(out, expected, "{isa:?} {layout:?} n={n} d={d} k={k}");
                let x32 = x.mapv(|v| v as f32);
                let c32 = c.mapv(|v| v as f32);
                let prepared = PreparedCentroids::with_layout(c32.view(), isa, layout);
                prepared.assign(x32.as_slice().unwrap(), &mut out);
                let agree = out.iter().zip(&expected).filter(|(a, b)| a == b).count();
                assert!(agree >= n - 1, "f32 {isa:?}: {agree}/{n}");
            }
        }
    }

    #[test]
    fn scores_are_the_best_and_runner_up_of_every_variant() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        for (n, d, k) in [
            (37, 3, 1),
            (41, 2, 2),
            (64, 16, 9),
            (53, 2, 30),
            (29, 33, 17),
            (70, 1, 65),
        ] {
            // Small integers: many exact ties between centroids.
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-3..=3) as f64);
            let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-3..=3) as f64);
            for (isa, layout) in variants() {
                let prepared = PreparedCentroids::with_layout(c.view(), isa, layout);
                let mut plain = vec![0u32; n];
                prepared.assign(x.as_slice().unwrap(), &mut plain);
                let mut labels = vec![0u32; n];
                let mut scores = vec![0.0; 2 * n];
                prepared.assign_with_scores(x.as_slice().unwrap(), &mut labels, &mut scores);
                assert_eq!(labels, plain, "{isa:?} n={n} d={d} k={k}");
                for (i, row) in x.rows().into_iter().enumerate() {
                    let norm: f64 = row.iter().map(|v| v * v).sum();
                    let mut distances: Vec<(f64, u32)> = c
                        .rows()
                        .into_iter()
                        .enumerate()
                        .map(|(j, cj)| {
                            let dist =
                                squared_distance(row.as_slice().unwrap(), cj.as_slice().unwrap());
                            (dist - norm, j as u32)
                        })
                        .collect();
                    distances.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    // Integers: the kernel's scores are exact.
                    assert_eq!(labels[i], distances[0].1, "{isa:?} row {i}");
                    assert_eq!(scores[2 * i], distances[0].0, "{isa:?} row {i}");
                    let runner_up = distances.get(1).map_or(f64::INFINITY, |s| s.0);
                    assert_eq!(scores[2 * i + 1], runner_up, "{isa:?} row {i} k={k}");
                }
            }
        }
    }

    #[test]
    fn both_layouts_give_the_same_labels_and_scores_to_the_bit() {
        fn check<F: Float>(x: &[F], c: ArrayView2<F>, what: &str) {
            let n = x.len() / c.ncols();
            for isa in Isa::supported()
                .into_iter()
                .filter(|&isa| isa != Isa::Portable)
            {
                let mut results = [Layout::CentroidsInLanes, Layout::RowsInLanes]
                    .map(|layout| {
                        let prepared = PreparedCentroids::with_layout(c, isa, layout);
                        assert_eq!(prepared.kernel_layout(), layout);
                        let mut labels = vec![0u32; n];
                        let mut scores = vec![F::zero(); 2 * n];
                        prepared.assign_with_scores(x, &mut labels, &mut scores);
                        let mut plain = vec![0u32; n];
                        prepared.assign(x, &mut plain);
                        assert_eq!(plain, labels, "{what} {isa:?} {layout:?}");
                        (labels, scores)
                    })
                    .into_iter();
                let (centroids, rows) = (results.next().unwrap(), results.next().unwrap());
                assert_eq!(centroids.0, rows.0, "labels {what} {isa:?}");
                let bits = |s: &[F]| s.iter().map(|v| v.as_f64().to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&centroids.1), bits(&rows.1), "scores {what} {isa:?}");
            }
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for d in 1..=ROWS_IN_LANES_MAX_D {
            for n in [1, 7, 8, 17, 33, 64, 100] {
                for k in [1, 2, 9, 30, 65] {
                    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0f64));
                    let c = Array2::from_shape_fn((k, d), |_| rng.gen_range(-5.0..5.0f64));
                    let what = format!("n={n} d={d} k={k}");
                    check(x.as_slice().unwrap(), c.view(), &format!("f64 {what}"));
                    let (x, c) = (x.mapv(|v| v as f32), c.mapv(|v| v as f32));
                    check(x.as_slice().unwrap(), c.view(), &format!("f32 {what}"));
                }
            }
        }
    }

    #[test]
    fn squared_distance_is_exact_on_small_integers() {
        assert_eq!(squared_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]), 25.0);
    }

    #[test]
    fn wide_distances_and_norms_are_the_portable_ones_to_the_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for len in 0..=41 {
            for scale in [1e-150, 1e-3, 1.0, 1e7, 1e150] {
                let a: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                let b: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                for isa in Isa::supported() {
                    let (wide, plain) = (
                        f64::squared_distance_on(isa, &a, &b),
                        squared_distance(&a, &b),
                    );
                    assert_eq!(wide.to_bits(), plain.to_bits(), "{isa:?}, {len}, {scale}");
                    let (wide, plain) = (f64::squared_norm_on(isa, &a), squared_norm(&a));
                    assert_eq!(wide.to_bits(), plain.to_bits(), "{isa:?}, {len}, {scale}");
                }
            }
        }
    }

    #[test]
    fn distances_with_the_scan_are_the_distances_and_the_scan_to_the_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        for len in 0..=41 {
            for scale in [1e-150, 1.0, 1e150] {
                let b: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                let clean: Vec<f64> = (0..len).map(|_| rng.gen_range(-1.0..1.0) * scale).collect();
                let mut cases = vec![clean.clone()];
                // A NaN or an infinity in the vectors or in the tail.
                for (i, bad) in [
                    (0, f64::NAN),
                    (len / 2, f64::INFINITY),
                    (len.max(1) - 1, f64::NAN),
                ] {
                    if i < len {
                        let mut a = clean.clone();
                        a[i] = bad;
                        cases.push(a);
                    }
                }
                for a in &cases {
                    let (max_abs, finite) = super::super::validate::scan(a);
                    for isa in Isa::supported() {
                        let (distance, max, all_finite) =
                            f64::squared_distance_and_scan_on(isa, a, &b);
                        let what = format!("{isa:?}, {len}, {scale}, {a:?}");
                        let plain = f64::squared_distance_on(isa, a, &b);
                        assert!(distance.to_bits() == plain.to_bits() || !finite, "{what}");
                        assert_eq!(
                            (max.to_bits(), all_finite),
                            (max_abs.to_bits(), finite),
                            "{what}"
                        );
                    }
                    let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                    let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                    let (distance, max, all_finite) =
                        f32::squared_distance_and_scan_on(Isa::detect(), &a32, &b32);
                    let (max_abs, finite) = super::super::validate::scan(&a32);
                    let plain = squared_distance(&a32, &b32);
                    assert!(
                        distance.to_bits() == plain.to_bits() || !finite,
                        "f32 {len} {scale}"
                    );
                    assert_eq!(
                        (max.to_bits(), all_finite),
                        (max_abs.to_bits(), finite),
                        "f32 {len} {scale}"
                    );
                }
            }
        }
    }

    #[test]
    fn norms_of_many_rows_are_each_rows_norm_to_the_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(10);
        for d in 1..=17 {
            for scale in [1e-150, 1.0, 1e150] {
                let rows: Vec<f64> = (0..13 * d)
                    .map(|_| rng.gen_range(-1.0..1.0) * scale)
                    .collect();
                for isa in Isa::supported() {
                    let mut norms = vec![0.0; 13];
                    squared_norms(isa, &rows, &mut norms);
                    for (norm, row) in norms.iter().zip(rows.chunks_exact(d)) {
                        let one = f64::squared_norm_on(isa, row);
                        assert_eq!(norm.to_bits(), one.to_bits(), "{isa:?}, {d}, {scale}");
                    }
                }
            }
        }
        // Short rows: the eight partial sums are zero, the tail is the sum.
        let row = [0.1f64, 0.2, 0.3];
        let tail: f64 = row.iter().map(|v| v * v).sum();
        assert_eq!(squared_norm(&row).to_bits(), ((0.0 + 0.0) + tail).to_bits());
    }
}
