//! The vector operations a kernel needs ([`Lanes`]) and the kernels written
//! once against them, compiled once per instruction set and float type.
//!
//! A tile of `R` rows is multiplied against a block of `V` vectors of
//! centroid columns with `R * V` accumulators in registers: per feature, `V`
//! loads and `R` broadcasts feed `R * V` fused multiply-adds. Scores update
//! per-lane bests with a minimum and their indices with a masked blend (no
//! branches); each row's lanes are reduced once, the lowest centroid index
//! winning a tie. On request the runner-up score is tracked too (per lane:
//! `second = min(second, max(best, score))`), for the bounds. The tiles of
//! 64 rows are taken block by block, so that a block of centroids is read
//! from the first-level cache by all of them.
//!
//! For few features, [`rows_in_lanes`] turns the layout around: one feature
//! of `LANES` rows per register, centroids broadcast one at a time, the same
//! per-lane bookkeeping, and no reduction across lanes at all.
//! [`nearest_in_columns`] does the same for the first-feature guesses, from
//! features already laid out in columns.

use std::mem::MaybeUninit;

use super::{Element, NextRows};

/// Rows in lanes holds every feature of a group of rows in registers: up to
/// this many features (beyond it, centroids in lanes is faster).
pub const ROWS_IN_LANES_MAX_D: usize = 4;

/// Centroids laid out for the kernels (see `kernel::PreparedCentroids`).
#[derive(Debug, Clone, Copy)]
pub struct CentroidLayout<'a, F> {
    /// Centroids in lanes: blocks of `(d, width)`, row-major, zero-padded:
    /// the negated centroids, transposed.
    pub blocks: &'a [F],
    /// `||c_j||^2 / 2`, padded with +inf to a whole number of blocks.
    pub half_norms: &'a [F],
    /// `j` as a float, beside each half norm (the kernels select it).
    pub lane_index: &'a [F],
    /// Rows in lanes: the negated centroids, `(k, d)` row-major.
    pub negated: &'a [F],
    pub k: usize,
    pub d: usize,
    /// Block width in elements.
    pub width: usize,
}

/// The vector operations a tile needs. All are `unsafe`: the caller must run
/// on a CPU with the instruction set of the implementing type.
pub trait Lanes: Copy {
    /// The element type.
    type F: Element;
    /// One register of `LANES` elements.
    type V: Copy;
    /// Element offsets for a gather, one per lane.
    type Offsets: Copy;
    /// Elements per register.
    const LANES: usize;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: Self::F) -> Self::V;
    unsafe fn load(p: *const Self::F) -> Self::V;
    unsafe fn store(p: *mut Self::F, v: Self::V);
    /// Element offsets of `LANES` rows `stride` apart; lanes past `rows`
    /// repeat the last row.
    unsafe fn row_offsets(stride: usize, rows: usize) -> Self::Offsets;
    /// One element per lane, from `p` plus each lane's offset.
    unsafe fn gather(p: *const Self::F, offsets: Self::Offsets) -> Self::V;
    /// The even and the odd elements of `lo` then `hi` (pairs laid out
    /// one after another: two features of `LANES` rows).
    unsafe fn deinterleave(lo: Self::V, hi: Self::V) -> (Self::V, Self::V);
    /// `a * b + c`, fused.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Where `score < best`, takes `score` and `index`.
    unsafe fn keep_lower(
        score: Self::V,
        index: Self::V,
        best: &mut Self::V,
        best_index: &mut Self::V,
    );
    /// Lane-wise minimum.
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum.
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// The smallest lane.
    unsafe fn horizontal_min(v: Self::V) -> Self::F;
    /// `if_equal` where `key == target`, `otherwise` elsewhere.
    unsafe fn select_equal(
        key: Self::V,
        target: Self::F,
        if_equal: Self::V,
        otherwise: Self::V,
    ) -> Self::V;
    /// Whether the type has [`Self::lowest_per_row`].
    const LOWEST_PER_ROW: bool = false;
    /// For each of `LANES` rows (`scores[r]`, lane `j` its score for the
    /// centroid `indices[r]` holds in lane `j`): the centroid of its lowest
    /// score, the lowest index of a tie, into `out[r]`. The rows reduced
    /// together, where reducing each across its lanes alone took most of
    /// a tile's time with few centroids.
    unsafe fn lowest_per_row(_scores: &[Self::V], _indices: &[Self::V], _out: &mut [u32]) {
        unreachable!("lowest_per_row: not provided here (see LOWEST_PER_ROW)")
    }
    /// Whether the type has [`Self::lowest_two_per_row`].
    const LOWEST_TWO_PER_ROW: bool = false;
    /// For each of `LANES / 2` rows (`best[r]`, `second[r]` and
    /// `indices[r]`: each lane's best score, runner-up and the best's
    /// centroid): the centroid of its lowest score, the lowest index of a
    /// tie, into `out[r]`, and that score and the runner-up (the winning
    /// lane's own runner-up or another lane's best), each doubled, into
    /// `scores[2 r]` and `scores[2 r + 1]`. [`Self::lowest_per_row`] for
    /// tiles whose rows fill half a register, keeping a runner-up.
    unsafe fn lowest_two_per_row(
        _best: &[Self::V],
        _second: &[Self::V],
        _indices: &[Self::V],
        _out: &mut [u32],
        _scores: &mut [Self::F],
    ) {
        unreachable!("lowest_two_per_row: not provided here (see LOWEST_TWO_PER_ROW)")
    }
    /// Whether [`tiles`] scores rows against many blocks in packed tiles
    /// of [`WIDE_ROWS`] rows: `2 * WIDE_ROWS` accumulators and the
    /// registers beside them fit (AVX-512's thirty-two).
    const WIDE_TILES: bool = false;
}

macro_rules! impl_lanes {
    ($name:ident, $f:ty, $v:ty, $lanes:expr, $feature:literal,
     zero: $zero:ident, splat: $splat:ident, load: $load:ident, store: $store:ident,
     fmadd: $fmadd:ident, min: $min:ident, max: $max:ident,
     offsets: $offsets:ty, $offset:ty, $offsets_load:ident,
     gather: |$gp:ident, $go:ident| $gather:block,
     deinterleave: |$dl:ident, $dh:ident| $deinterleave:block,
     keep_lower: |$s:ident, $i:ident, $b:ident, $bi:ident| $keep:block,
     horizontal_min: |$hv:ident| $hmin:block,
     select_equal: |$ek:ident, $et:ident, $ey:ident, $en:ident| $eq:block
     $(, lowest_per_row: |$ls:ident, $li:ident, $lo:ident| $lowest:block)?
     $(, lowest_two_per_row: |$tb:ident, $ts:ident, $ti:ident, $to:ident, $tc:ident|
         $lowest_two:block)?
     $(, wide_tiles: $wide:expr)?) => {
        /// Marker for this instruction set and float type.
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl Lanes for $name {
            type F = $f;
            type V = $v;
            type Offsets = $offsets;
            const LANES: usize = $lanes;
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn zero() -> $v {
                $zero()
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn splat(x: $f) -> $v {
                $splat(x)
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn load(p: *const $f) -> $v {
                // SAFETY: the caller passes a pointer to LANES readable elements.
                unsafe { $load(p) }
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn store(p: *mut $f, v: $v) {
                // SAFETY: the caller passes a pointer to LANES writable elements.
                unsafe { $store(p, v) }
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn row_offsets(stride: usize, rows: usize) -> $offsets {
                let mut offsets = [0 as $offset; $lanes];
                for (lane, offset) in offsets.iter_mut().enumerate() {
                    *offset = (lane.min(rows - 1) * stride) as $offset;
                }
                // SAFETY: `offsets` is exactly one register wide.
                unsafe { $offsets_load(offsets.as_ptr().cast()) }
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn gather($gp: *const $f, $go: $offsets) -> $v {
                // SAFETY: the caller passes offsets of readable elements.
                unsafe { $gather }
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn deinterleave($dl: $v, $dh: $v) -> ($v, $v) {
                $deinterleave
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn fmadd(a: $v, b: $v, c: $v) -> $v {
                $fmadd(a, b, c)
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn keep_lower($s: $v, $i: $v, $b: &mut $v, $bi: &mut $v) {
                $keep
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn min(a: $v, b: $v) -> $v {
                $min(a, b)
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn max(a: $v, b: $v) -> $v {
                $max(a, b)
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn horizontal_min($hv: $v) -> $f {
                $hmin
            }
            #[inline]
            #[target_feature(enable = $feature)]
            unsafe fn select_equal($ek: $v, $et: $f, $ey: $v, $en: $v) -> $v {
                $eq
            }
            $(
                const LOWEST_PER_ROW: bool = true;
                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn lowest_per_row($ls: &[$v], $li: &[$v], $lo: &mut [u32]) {
                    $lowest
                }
            )?
            $(
                const LOWEST_TWO_PER_ROW: bool = true;
                #[inline]
                #[target_feature(enable = $feature)]
                unsafe fn lowest_two_per_row(
                    $tb: &[$v],
                    $ts: &[$v],
                    $ti: &[$v],
                    $to: &mut [u32],
                    $tc: &mut [$f],
                ) {
                    $lowest_two
                }
            )?
            $(
                const WIDE_TILES: bool = $wide;
            )?
        }
    };
}

pub(super) use impl_lanes;

/// The kernels of one instruction set for one float type: `$lanes`'s
/// tiles (`$rows` rows) and rows in lanes (`$groups` vectors of rows at a
/// time), each in a function compiled for `$features`, behind checks of
/// their layout contracts; `$extra` adds the instruction set's own
/// routines.
macro_rules! impl_kernels {
    ($simd:ty, $f:ty, $lanes:ty, $features:literal, rows: $rows:literal, groups: $groups:literal,
     { $($extra:tt)* }) => {
        const _: () = {
            use super::lanes::{check_rows_in_lanes, check_tiles, CentroidLayout, Lanes};
            use super::NextRows;

            #[target_feature(enable = $features)]
            unsafe fn tiles<const V: usize, const SCORES: bool, const ASK: bool>(
                centroids: &CentroidLayout<'_, $f>,
                x: &[$f],
                out: &mut [u32],
                scores: &mut [$f],
                next: NextRows<'_>,
            ) {
                // SAFETY: this function's features are the kernel's; the
                // caller checked the layout.
                unsafe {
                    super::lanes::tiles::<$lanes, $rows, V, SCORES, ASK>(
                        centroids, x, out, scores, next,
                    )
                }
            }

            #[target_feature(enable = $features)]
            unsafe fn rows_in_lanes<const SCORES: bool>(
                centroids: &CentroidLayout<'_, $f>,
                x: &[$f],
                out: &mut [u32],
                scores: &mut [$f],
            ) {
                // SAFETY: as above.
                unsafe {
                    super::lanes::rows_in_lanes::<$lanes, $groups, SCORES>(centroids, x, out, scores)
                }
            }

            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn add_rows(
                x: &[$f],
                labels: &[u32],
                sums: &mut [$f],
                counts: &mut [u64],
                d: usize,
            ) {
                super::portable::add_rows(x, labels, sums, counts, d)
            }

            impl super::Kernels<$f> for $simd {
                #[inline(always)]
                fn add_rows(
                    self,
                    x: &[$f],
                    labels: &[u32],
                    sums: &mut [$f],
                    counts: &mut [u64],
                    d: usize,
                ) {
                    // SAFETY: `self` proves the CPU runs the features.
                    unsafe { add_rows(x, labels, sums, counts, d) }
                }

                #[inline(always)]
                fn tiles<const SCORES: bool>(
                    self,
                    centroids: &CentroidLayout<'_, $f>,
                    x: &[$f],
                    out: &mut [u32],
                    scores: &mut [$f],
                    next: NextRows<'_>,
                ) {
                    let lanes = <$lanes as Lanes>::LANES;
                    check_tiles(centroids, x, out, scores, SCORES, $rows, lanes);
                    // SAFETY: `self` proves the CPU runs the features; the
                    // layout was checked.
                    unsafe {
                        // Compiled apart for nothing to ask for (data in
                        // the caches), which then runs as if asking did not
                        // exist.
                        let (c, o, s, n) = (centroids, out, scores, next);
                        match (centroids.width == lanes, next.lines() > 0) {
                            (true, false) => tiles::<1, SCORES, false>(c, x, o, s, n),
                            (true, true) => tiles::<1, SCORES, true>(c, x, o, s, n),
                            (false, false) => tiles::<2, SCORES, false>(c, x, o, s, n),
                            (false, true) => tiles::<2, SCORES, true>(c, x, o, s, n),
                        }
                    }
                }

                #[inline(always)]
                fn rows_in_lanes<const SCORES: bool>(
                    self,
                    centroids: &CentroidLayout<'_, $f>,
                    x: &[$f],
                    out: &mut [u32],
                    scores: &mut [$f],
                ) {
                    check_rows_in_lanes(centroids, x, out, scores, SCORES);
                    // SAFETY: as above.
                    unsafe { rows_in_lanes::<SCORES>(centroids, x, out, scores) }
                }

                $($extra)*
            }
        };
    };
}

pub(super) use impl_kernels;

/// An instruction set as a type: the token `$simd` (proof that the CPU
/// runs `$features`), its entry for [`WithSimd`] operations and its guess
/// kernel on `$f32_lanes`, in functions compiled for `$features`.
macro_rules! impl_simd {
    ($simd:ident, $isa:expr, $features:literal, $f32_lanes:ty, tile_rows: $rows:literal,
     $what:literal) => {
        #[doc = concat!($what, "; a value is proof that the CPU runs them.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $simd(());

        impl $simd {
            /// # Safety
            #[doc = concat!("The CPU must run ", $what, ".")]
            pub unsafe fn new_unchecked() -> Self {
                $simd(())
            }
        }

        const _: () = {
            use super::lanes::{check_columns, Lanes};
            use super::{Simd, WithSimd};

            #[target_feature(enable = $features)]
            unsafe fn run<Op: WithSimd>(simd: $simd, op: Op) -> Op::Output {
                op.run(simd)
            }

            #[target_feature(enable = $features)]
            unsafe fn nearest_in_columns<const D: usize, const STRIDE: usize>(
                columns: &[f32],
                negated: &[f32],
                half_norms: &[f32],
                out: &mut [u32],
            ) {
                // SAFETY: this function's features are the kernel's; the
                // caller checked the layout.
                unsafe {
                    super::lanes::nearest_in_columns::<$f32_lanes, D>(
                        columns, STRIDE, negated, half_norms, out,
                    )
                }
            }

            impl Simd for $simd {
                const ISA: super::Isa = $isa;
                const TILE_ROWS: usize = $rows;

                #[inline(always)]
                fn run<Op: WithSimd>(self, op: Op) -> Op::Output {
                    // SAFETY: `self` proves the CPU runs the features.
                    unsafe { run(self, op) }
                }

                #[inline(always)]
                fn nearest_in_columns<const D: usize, const STRIDE: usize>(
                    self,
                    columns: &[f32],
                    negated: &[f32],
                    half_norms: &[f32],
                    out: &mut [u32],
                ) {
                    let lanes = <$f32_lanes as Lanes>::LANES;
                    check_columns::<D>(columns, STRIDE, negated, half_norms, out, lanes);
                    // SAFETY: `self` proves the features; the layout was
                    // checked.
                    unsafe { nearest_in_columns::<D, STRIDE>(columns, negated, half_norms, out) }
                }
            }
        };
    };
}

pub(super) use impl_simd;

/// Panics unless the arguments of [`tiles`] meet its contract: whole
/// tiles of `rows` rows, blocks one or two vectors of `lanes` wide.
#[inline(always)]
pub fn check_tiles<F>(
    centroids: &CentroidLayout<'_, F>,
    x: &[F],
    out: &[u32],
    scores: &[F],
    with_scores: bool,
    rows: usize,
    lanes: usize,
) {
    let c = centroids;
    let padded = c.half_norms.len();
    assert!(
        (c.width == lanes || c.width == 2 * lanes)
            && padded.is_multiple_of(c.width)
            && c.lane_index.len() == padded
            && c.blocks.len() == padded * c.d
            && x.len() == out.len() * c.d
            && out.len().is_multiple_of(rows)
            && (!with_scores || scores.len() == 2 * out.len()),
        "the tiles' arguments do not match their layout"
    );
}

/// Panics unless the arguments of [`rows_in_lanes`] meet its contract.
#[inline(always)]
pub fn check_rows_in_lanes<F>(
    centroids: &CentroidLayout<'_, F>,
    x: &[F],
    out: &[u32],
    scores: &[F],
    with_scores: bool,
) {
    let c = centroids;
    assert!(
        (1..=ROWS_IN_LANES_MAX_D).contains(&c.d)
            && c.negated.len() >= c.k * c.d
            && c.half_norms.len() >= c.k
            && c.lane_index.len() >= c.k
            && x.len() == out.len() * c.d
            && (!with_scores || scores.len() == 2 * out.len()),
        "rows in lanes: arguments do not match the layout"
    );
}

/// Panics unless the arguments of [`nearest_in_columns`] meet its contract
/// for vectors of `lanes`.
#[inline(always)]
pub fn check_columns<const D: usize>(
    columns: &[f32],
    stride: usize,
    negated: &[f32],
    half_norms: &[f32],
    out: &[u32],
    lanes: usize,
) {
    assert!(
        stride.is_multiple_of(2 * lanes)
            && stride >= out.len()
            && columns.len() >= D * stride
            && negated.len() >= half_norms.len() * D,
        "nearest in columns: arguments do not match the layout"
    );
}

/// Every whole tile of `R` rows of `x`: the nearest centroid of each row
/// and, when `SCORES`, its best and runner-up scores (`||c||^2 - 2 x.c`) as
/// `scores[2 * i]` and `scores[2 * i + 1]`. The lines of `next` are asked
/// for evenly through the multiply-adds. Against many blocks, where the
/// type allows, most rows go in taller tiles, packed ([`wide_tiles`]).
///
/// # Safety
/// The CPU must support `L`'s instruction set; `p` must be laid out with
/// blocks `V * L::LANES` wide; `x.len() == out.len() * d` with `out.len()` a
/// multiple of `R`; when `SCORES`, `scores.len() == 2 * out.len()`.
#[inline(always)]
pub unsafe fn tiles<
    L: Lanes,
    const R: usize,
    const V: usize,
    const SCORES: bool,
    const ASK: bool,
>(
    p: &CentroidLayout<'_, L::F>,
    x: &[L::F],
    out: &mut [u32],
    scores: &mut [L::F],
    next: NextRows<'_>,
) {
    let (half_norms, d, width) = (p.half_norms, p.d, p.width);
    debug_assert_eq!(width, V * L::LANES);
    debug_assert_eq!(x.len(), out.len() * d);
    debug_assert_eq!(out.len() % R, 0);
    debug_assert!(!SCORES || scores.len() == 2 * out.len());
    let n_blocks = half_norms.len() / width;
    // The tiles' states are written by the first block and read after it.
    assert!(n_blocks > 0, "tiles: no centroids");
    // Against many blocks, whole groups of rows go in packed tiles, the
    // rows left (whole tiles of `R`) row after row.
    let wide_rows = match L::WIDE_TILES
        && V == 2
        && n_blocks >= WIDE_MIN_BLOCKS
        && d >= WIDE_MIN_D
        && WIDE_GROUP_ROWS.is_multiple_of(R)
    {
        true => out.len() / WIDE_GROUP_ROWS * WIDE_GROUP_ROWS,
        false => 0,
    };
    // One line of `next` every `every` rounds of a tile's features.
    let lines = next.lines();
    let every = (n_blocks * ((out.len() - wide_rows) / R + wide_rows / WIDE_ROWS) * d)
        .checked_div(lines)
        .map_or(usize::MAX, |e| e.max(1));
    let mut asker = Asker {
        next,
        lines,
        line: 0,
        every,
        countdown: every,
    };
    let (out_wide, out) = out.split_at_mut(wide_rows);
    let (scores_wide, scores) = match SCORES {
        true => scores.split_at_mut(2 * wide_rows),
        false => (&mut [][..], scores),
    };
    let (x_wide, x) = x.split_at(wide_rows * d);
    // SAFETY: the caller's CPU runs `L`'s instruction set; the rows and
    // centroids are as the contract says, the packed rows whole groups.
    unsafe {
        if wide_rows > 0 {
            wide_tiles::<L, V, SCORES, ASK>(p, x_wide, out_wide, scores_wide, &mut asker);
        }
        row_tiles::<L, R, V, SCORES, ASK>(p, x, out, scores, &mut asker);
    }
}

/// Rows of a packed tile (see [`Lanes::WIDE_TILES`]): two vectors of
/// centroids take 28 accumulators of AVX-512's 32 registers.
const WIDE_ROWS: usize = 14;
/// Rows of packed tiles taken at a time: four tiles, and a whole number of
/// AVX-512's eight-row tiles, so that the rows left are whole tiles too.
const WIDE_GROUP_ROWS: usize = 4 * WIDE_ROWS;
/// Blocks of centroids, and features, from which rows go in packed tiles:
/// packing a group's rows, and merging each tile's scores into its state
/// after every block, pay for themselves over enough multiply-adds.
const WIDE_MIN_BLOCKS: usize = 16;
const WIDE_MIN_D: usize = 64;
/// Up to this many features a group's packed rows are kept on the stack
/// (57 KB of `f64`).
const WIDE_STACK_D: usize = 128;

/// [`tiles`] for whole groups of [`WIDE_GROUP_ROWS`] rows in tiles of
/// [`WIDE_ROWS`]: each group's rows are first packed feature after feature
/// (`f * WIDE_ROWS + r` within a tile), so that a feature's broadcasts come
/// from one place at fixed offsets, and more rows share each load of the
/// centroids than an eight-row tile's. The chains of multiply-adds are the
/// same: so are the scores and labels.
///
/// # Safety
/// As [`tiles`], with `out.len()` a multiple of [`WIDE_GROUP_ROWS`].
#[inline(always)]
unsafe fn wide_tiles<L: Lanes, const V: usize, const SCORES: bool, const ASK: bool>(
    p: &CentroidLayout<'_, L::F>,
    x: &[L::F],
    out: &mut [u32],
    scores: &mut [L::F],
    asker: &mut Asker<'_>,
) {
    const TILES: usize = WIDE_GROUP_ROWS / WIDE_ROWS;
    let (d, width) = (p.d, p.width);
    let n_blocks = p.half_norms.len() / width;
    // SAFETY: the caller's CPU runs `L`'s instruction set.
    let (infinity, zero) = unsafe { infinity_and_zero::<L>() };
    // A group's packed rows: on the stack up to `WIDE_STACK_D` features (a
    // call scores one block of rows at most, and the kernel is called for
    // every block: not an allocation each time), else on the heap.
    let mut on_stack = MaybeUninit::<[L::F; WIDE_GROUP_ROWS * WIDE_STACK_D]>::uninit();
    let mut on_heap = Vec::new();
    let packed: *mut L::F = if d <= WIDE_STACK_D {
        on_stack.as_mut_ptr().cast()
    } else {
        on_heap.resize(WIDE_GROUP_ROWS * d, <L::F as Element>::from_f64(0.0));
        on_heap.as_mut_ptr()
    };
    for (group, (rows, out)) in x
        .chunks_exact(WIDE_GROUP_ROWS * d)
        .zip(out.chunks_exact_mut(WIDE_GROUP_ROWS))
        .enumerate()
    {
        for (t, tile) in rows.chunks_exact(WIDE_ROWS * d).enumerate() {
            for (r, row) in tile.chunks_exact(d).enumerate() {
                for (f, &v) in row.iter().enumerate() {
                    // SAFETY: within the group's `WIDE_GROUP_ROWS * d`
                    // elements; every one is written before it is read.
                    unsafe { packed.add(t * WIDE_ROWS * d + f * WIDE_ROWS + r).write(v) };
                }
            }
        }
        let mut states: [TileState<L::V, WIDE_ROWS>; TILES] =
            std::array::from_fn(|_| TileState::fresh(infinity, zero));
        for b in 0..n_blocks {
            // SAFETY: block `b` is within the layout; tile `t` of the
            // group holds `WIDE_ROWS * d` packed elements.
            unsafe {
                let (block, half_norm, index) = centroid_block::<L, V>(p, b);
                for (t, state) in states.iter_mut().enumerate() {
                    let rows = packed.add(t * WIDE_ROWS * d).cast_const();
                    let acc = score_tile::<L, WIDE_ROWS, V, ASK, true>(
                        block, half_norm, rows, d, width, asker,
                    );
                    keep_scores::<L, WIDE_ROWS, V, SCORES>(&acc, &index, state);
                }
            }
        }
        let scores = match SCORES {
            true => &mut scores[2 * group * WIDE_GROUP_ROWS..2 * (group + 1) * WIDE_GROUP_ROWS],
            false => &mut [][..],
        };
        for (t, state) in states.iter().enumerate() {
            // SAFETY: the caller's CPU runs `L`'s instruction set; `out`
            // and `scores` hold the group's rows.
            unsafe { finish_tile::<L, WIDE_ROWS, SCORES>(state, t, infinity, out, scores) };
        }
    }
}

/// [`tiles`] for rows in tiles of `R`, each row's features one after
/// another.
///
/// # Safety
/// As [`tiles`].
#[inline(always)]
unsafe fn row_tiles<
    L: Lanes,
    const R: usize,
    const V: usize,
    const SCORES: bool,
    const ASK: bool,
>(
    p: &CentroidLayout<'_, L::F>,
    x: &[L::F],
    out: &mut [u32],
    scores: &mut [L::F],
    asker: &mut Asker<'_>,
) {
    let (d, width) = (p.d, p.width);
    let n_blocks = p.half_norms.len() / width;
    let n_tiles = out.len() / R;
    // SAFETY: the caller's CPU runs `L`'s instruction set.
    let (infinity, zero) = unsafe { infinity_and_zero::<L>() };
    // SAFETY (all the pointer arithmetic below): tile `t` holds R rows of d
    // elements from `t * R * d`; block `b` holds `d * width` elements from
    // `b * d * width`; `half_norms` and `lane_index` hold `n_blocks *
    // width` elements.
    let block_at = |b: usize| unsafe { centroid_block::<L, V>(p, b) };
    let fresh = || TileState::fresh(infinity, zero);
    if n_blocks == 1 {
        // One block: each tile's state stays in registers, from its
        // scores to its rows' labels, and the block's half norms and
        // indices across all tiles (the loop below loads them for each
        // tile: slower here, `docs/tuning.md`).
        let (block, half_norm, index) = block_at(0);
        for t in 0..n_tiles {
            // SAFETY: as above.
            unsafe {
                let rows = x.as_ptr().add(t * R * d);
                let acc =
                    score_tile::<L, R, V, ASK, false>(block, half_norm, rows, d, width, asker);
                if V == 1 && R == L::LANES && !SCORES && L::LOWEST_PER_ROW {
                    // Each lane holds one centroid: its score is the best.
                    let best: [L::V; R] = std::array::from_fn(|r| acc[r][0]);
                    L::lowest_per_row(&best, &[index[0]; R], &mut out[t * R..(t + 1) * R]);
                    continue;
                }
                let mut state = fresh();
                keep_scores::<L, R, V, SCORES>(&acc, &index, &mut state);
                finish_tile::<L, R, SCORES>(&state, t, infinity, out, scores);
            }
        }
        return;
    }
    if n_blocks * d * width * std::mem::size_of::<L::F>() <= TILE_BY_TILE_MAX_BYTES {
        // Centroids that fit in the first-level cache: each tile against
        // every block in turn, its state kept in registers throughout.
        for t in 0..n_tiles {
            let mut state = fresh();
            // SAFETY: as above.
            unsafe {
                let rows = x.as_ptr().add(t * R * d);
                for b in 0..n_blocks {
                    let (block, half_norm, index) = block_at(b);
                    let acc =
                        score_tile::<L, R, V, ASK, false>(block, half_norm, rows, d, width, asker);
                    keep_scores::<L, R, V, SCORES>(&acc, &index, &mut state);
                }
                finish_tile::<L, R, SCORES>(&state, t, infinity, out, scores);
            }
        }
        return;
    }
    // Beyond that, the tiles of up to `GROUP_ROWS` rows at a time, block by
    // block: one block of centroids stays in the first-level cache while
    // every tile of the group is scored against it, where scoring each
    // tile against every block streamed all the centroids through it once
    // per tile.
    let per_group = (GROUP_ROWS / R).clamp(1, MAX_GROUP_TILES);
    for first in (0..n_tiles).step_by(per_group) {
        let group = per_group.min(n_tiles - first);
        // Written by the first block, not filled ahead: filling every
        // tile's state for each group cost as much as scoring a block of
        // few features and centroids.
        let mut states = MaybeUninit::<[TileState<L::V, R>; MAX_GROUP_TILES]>::uninit();
        let states = states.as_mut_ptr().cast::<TileState<L::V, R>>();
        // SAFETY: as above; the states of tiles `g < group <=
        // MAX_GROUP_TILES` are written by block 0 before they are read.
        unsafe {
            for b in 0..n_blocks {
                let (block, half_norm, index) = block_at(b);
                for g in 0..group {
                    let rows = x.as_ptr().add((first + g) * R * d);
                    let acc =
                        score_tile::<L, R, V, ASK, false>(block, half_norm, rows, d, width, asker);
                    let mut state = if b == 0 {
                        fresh()
                    } else {
                        states.add(g).read()
                    };
                    keep_scores::<L, R, V, SCORES>(&acc, &index, &mut state);
                    states.add(g).write(state);
                }
            }
            for g in 0..group {
                // Every block wrote it (there is at least one).
                let state = states.add(g).read();
                finish_tile::<L, R, SCORES>(&state, first + g, infinity, out, scores);
            }
        }
    }
}

/// Block `b` of the centroids: where its columns start, its half norms
/// and its lanes' centroid indices.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `p` must hold block `b`,
/// `V * L::LANES` wide.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices over register arrays, unrolled
unsafe fn centroid_block<L: Lanes, const V: usize>(
    p: &CentroidLayout<'_, L::F>,
    b: usize,
) -> (*const L::F, [L::V; V], [L::V; V]) {
    let (width, d) = (p.width, p.d);
    let mut half_norm = [L::zero(); V];
    let mut index = [L::zero(); V];
    // SAFETY: block `b` is within the layout, by the contract.
    unsafe {
        for v in 0..V {
            half_norm[v] = L::load(p.half_norms.as_ptr().add(b * width + v * L::LANES));
            index[v] = L::load(p.lane_index.as_ptr().add(b * width + v * L::LANES));
        }
        (p.blocks.as_ptr().add(b * d * width), half_norm, index)
    }
}

/// Where [`tiles`] stands in asking for the lines of the next rows: one
/// line every `every` rounds of a tile's features.
struct Asker<'a> {
    next: NextRows<'a>,
    lines: usize,
    line: usize,
    every: usize,
    countdown: usize,
}

impl Asker<'_> {
    /// One round of a tile's features: asks for the next line when due.
    #[inline(always)]
    fn round(&mut self) {
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.every;
            if self.line < self.lines {
                self.next.ask(self.line);
                self.line += 1;
            }
        }
    }
}

/// The scores of one tile of `R` rows (`rows`, `d` features each, row
/// after row; when `PACKED`, feature after feature: `f * R + r`) against
/// one block of centroids (`width` lanes a feature from `block`), started
/// at the block's half norms: `half_norm - x.c` lane by lane, a chain of
/// `d` multiply-adds per lane.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `rows` must hold `R * d`
/// elements and `block` `d * width`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices over register arrays, unrolled
unsafe fn score_tile<
    L: Lanes,
    const R: usize,
    const V: usize,
    const ASK: bool,
    const PACKED: bool,
>(
    block: *const L::F,
    half_norm: [L::V; V],
    rows: *const L::F,
    d: usize,
    width: usize,
    asker: &mut Asker<'_>,
) -> [[L::V; V]; R] {
    let mut acc = [half_norm; R];
    for f in 0..d {
        if ASK {
            asker.round();
        }
        // SAFETY: within `block` and `rows`, by the contract.
        unsafe {
            let column = block.add(f * width);
            let mut c = [L::zero(); V];
            for v in 0..V {
                c[v] = L::load(column.add(v * L::LANES));
            }
            for r in 0..R {
                let xv = match PACKED {
                    true => L::splat(*rows.add(f * R + r)),
                    false => L::splat(*rows.add(r * d + f)),
                };
                for v in 0..V {
                    acc[r][v] = L::fmadd(xv, c[v], acc[r][v]);
                }
            }
        }
    }
    acc
}

/// Keeps a tile's scores against one block in its state: each lane's best
/// and its centroid index (`index`) and, when `SCORES`, its runner-up.
/// Each lane sees its centroids in increasing index order (block by block,
/// vector by vector), so keeping only a strictly lower score keeps the
/// lowest index of a tie.
///
/// # Safety
/// The CPU must support `L`'s instruction set.
#[inline(always)]
unsafe fn keep_scores<L: Lanes, const R: usize, const V: usize, const SCORES: bool>(
    acc: &[[L::V; V]; R],
    index: &[L::V; V],
    state: &mut TileState<L::V, R>,
) {
    let TileState {
        best,
        second,
        best_index,
    } = state;
    for v in 0..V {
        for r in 0..R {
            let score = acc[r][v];
            // SAFETY: the caller's CPU runs `L`'s instruction set.
            unsafe {
                if SCORES {
                    second[r] = L::min(second[r], L::max(best[r], score));
                }
                L::keep_lower(score, index[v], &mut best[r], &mut best_index[r]);
            }
        }
    }
}

/// The labels of tile `t` from its state after every block, into `out`,
/// and when `SCORES` each row's best and runner-up scores into `scores`.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `out` must hold tile `t`'s
/// rows (and `scores` twice as many, when `SCORES`).
#[inline(always)]
unsafe fn finish_tile<L: Lanes, const R: usize, const SCORES: bool>(
    state: &TileState<L::V, R>,
    t: usize,
    infinity: L::V,
    out: &mut [u32],
    scores: &mut [L::F],
) {
    let rows = t * R..(t + 1) * R;
    if R == L::LANES && !SCORES && L::LOWEST_PER_ROW {
        // SAFETY: the caller's CPU runs `L`'s instruction set.
        unsafe { L::lowest_per_row(&state.best, &state.best_index, &mut out[rows]) };
        return;
    }
    if 2 * R == L::LANES && L::LOWEST_TWO_PER_ROW {
        // Without `SCORES` the runner-ups are not kept: written aside.
        let mut aside = [<L::F as Element>::from_f64(0.0); 2 * MAX_TILE_ROWS];
        let scores = match SCORES {
            true => &mut scores[2 * rows.start..2 * rows.end],
            false => &mut aside[..2 * R],
        };
        let (best, second, index) = (&state.best, &state.second, &state.best_index);
        // SAFETY: the caller's CPU runs `L`'s instruction set.
        unsafe { L::lowest_two_per_row(best, second, index, &mut out[rows], scores) };
        return;
    }
    for r in 0..R {
        // SAFETY: the caller's CPU runs `L`'s instruction set.
        unsafe {
            // The lowest score, then the lowest index among the lanes
            // holding it (ties go to the lowest centroid index).
            let (best, second, best_index) = (state.best[r], state.second[r], state.best_index[r]);
            let target = L::horizontal_min(best);
            let index = L::select_equal(best, target, best_index, infinity);
            let winner = L::horizontal_min(index);
            out[t * R + r] = <L::F as Element>::as_f64(winner) as u32;
            if SCORES {
                // The runner-up: the winner's lane offers its own second
                // best, every other lane its best.
                let runner_up = L::select_equal(best_index, winner, second, best);
                let i = t * R + r;
                let runner_up = L::horizontal_min(runner_up);
                scores[2 * i] = target + target;
                scores[2 * i + 1] = runner_up + runner_up;
            }
        }
    }
}

/// A tile's state between blocks, per row: each lane's best score so far,
/// its runner-up and the best's centroid index.
struct TileState<V, const R: usize> {
    best: [V; R],
    second: [V; R],
    best_index: [V; R],
}

impl<V: Copy, const R: usize> TileState<V, R> {
    /// Before any block: every score `infinity`, every index `zero`.
    #[inline(always)]
    fn fresh(infinity: V, zero: V) -> Self {
        TileState {
            best: [infinity; R],
            second: [infinity; R],
            best_index: [zero; R],
        }
    }
}

/// `+inf` and zero in every lane: a fresh tile state's scores and indices.
///
/// # Safety
/// The CPU must support `L`'s instruction set.
#[inline(always)]
unsafe fn infinity_and_zero<L: Lanes>() -> (L::V, L::V) {
    // SAFETY: the caller's CPU runs `L`'s instruction set.
    unsafe {
        (
            L::splat(<L::F as Element>::from_f64(f64::INFINITY)),
            L::zero(),
        )
    }
}

/// Centroids of at most this many bytes (all blocks) stay in the
/// first-level cache of current CPUs (32 KiB and more) while each tile is
/// scored against every block: the groups of [`GROUP_ROWS`], which keep
/// one block there for many tiles, would only move the tiles' states
/// through memory between blocks (measurements in `docs/tuning.md`).
const TILE_BY_TILE_MAX_BYTES: usize = 32 << 10;

/// How many rows [`tiles`] scores against one block of centroids before
/// the next block (the step's blocks of rows), in at most
/// [`MAX_GROUP_TILES`] tiles (sixteen of AVX2's four rows; AVX-512's
/// eight-row tiles use half of its state arrays).
const GROUP_ROWS: usize = 64;
const MAX_GROUP_TILES: usize = 16;

/// The most rows of a tile (AVX-512's eight).
const MAX_TILE_ROWS: usize = 8;

/// Rows in lanes, for any number of rows: each vector holds one feature of
/// `L::LANES` rows (gathered), and every centroid is scored against `G`
/// such vectors at a time through broadcasts of its coordinates, the best
/// (and on request runner-up) kept lane-wise; no reduction across lanes.
/// Each row's chain of operations is the centroids-in-lanes tile's, so the
/// results are the same to the bit.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `x.len() == out.len() * d`
/// with `1 <= d <= ROWS_IN_LANES_MAX_D`; when `SCORES`, `scores.len() == 2 *
/// out.len()`.
#[inline(always)]
pub unsafe fn rows_in_lanes<L: Lanes, const G: usize, const SCORES: bool>(
    p: &CentroidLayout<'_, L::F>,
    x: &[L::F],
    out: &mut [u32],
    scores: &mut [L::F],
) {
    // The features live in registers: one instantiation per feature count.
    macro_rules! with_d {
        ($($d:literal)*) => {
            match p.d {
                // SAFETY: the caller's contract, with `d` as the constant.
                $($d => unsafe { rows_in_lanes_d::<L, G, $d, SCORES>(p, x, out, scores) },)*
                d => unreachable!("rows in lanes is not prepared for d = {d}"),
            }
        };
    }
    with_d!(1 2 3 4);
}

/// [`rows_in_lanes`] for `D` features.
#[inline(always)]
unsafe fn rows_in_lanes_d<L: Lanes, const G: usize, const D: usize, const SCORES: bool>(
    p: &CentroidLayout<'_, L::F>,
    x: &[L::F],
    out: &mut [u32],
    scores: &mut [L::F],
) {
    let n = out.len();
    let group = G * L::LANES;
    let mut start = 0;
    while start < n {
        // Whole groups, then the rest a vector of rows at a time.
        let rows = if n - start >= group {
            group
        } else {
            (n - start).min(L::LANES)
        };
        let end = start + rows;
        let scores = if SCORES {
            &mut scores[2 * start..2 * end]
        } else {
            &mut []
        };
        let (x, out) = (&x[start * D..end * D], &mut out[start..end]);
        // SAFETY: the slices hold `rows` rows; the caller vouches for the rest.
        unsafe {
            if rows == group {
                row_group::<L, G, D, SCORES>(p, x, out, scores);
            } else {
                row_group::<L, 1, D, SCORES>(p, x, out, scores);
            }
        }
        start = end;
    }
}

/// One group of at most `G * L::LANES` rows of `D` features (see
/// [`rows_in_lanes`]); lanes past the last row repeat it and are not
/// written out.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices over register arrays, unrolled
unsafe fn row_group<L: Lanes, const G: usize, const D: usize, const SCORES: bool>(
    p: &CentroidLayout<'_, L::F>,
    x: &[L::F],
    out: &mut [u32],
    scores: &mut [L::F],
) {
    let (negated, half_norms, lane_index, k, d) = (p.negated, p.half_norms, p.lane_index, p.k, p.d);
    let rows = out.len();
    debug_assert!(d == D && D <= ROWS_IN_LANES_MAX_D && rows <= G * L::LANES);
    // SAFETY (all below): lanes read rows below `rows` only (the offsets
    // repeat the last row), centroid `j < k` has `D` coordinates from
    // `j * D`, and `half_norms`, `lane_index` hold at least `k` elements.
    unsafe {
        let mut features = [[L::zero(); G]; D];
        for g in 0..G {
            let in_vector = rows.saturating_sub(g * L::LANES).clamp(1, L::LANES);
            if D <= 2 && in_vector == L::LANES {
                // Whole vectors of one or two features: plain loads.
                let base = x.as_ptr().add(g * L::LANES * D);
                if D == 1 {
                    features[0][g] = L::load(base);
                } else {
                    let (even, odd) = L::deinterleave(L::load(base), L::load(base.add(L::LANES)));
                    features[0][g] = even;
                    features[D - 1][g] = odd;
                }
                continue;
            }
            let first = (g * L::LANES).min(rows - 1);
            let offsets = L::row_offsets(D, in_vector);
            let base = x.as_ptr().add(first * D);
            for f in 0..D {
                features[f][g] = L::gather(base.add(f), offsets);
            }
        }
        let infinity = L::splat(<L::F as Element>::from_f64(f64::INFINITY));
        let mut best = [infinity; G];
        let mut second = [infinity; G];
        let mut best_index = [L::zero(); G];
        for j in 0..k {
            let centroid = negated.as_ptr().add(j * D);
            let mut acc = [L::splat(*half_norms.get_unchecked(j)); G];
            for f in 0..D {
                let c = L::splat(*centroid.add(f));
                for g in 0..G {
                    acc[g] = L::fmadd(features[f][g], c, acc[g]);
                }
            }
            let index = L::splat(*lane_index.get_unchecked(j));
            for g in 0..G {
                if SCORES {
                    second[g] = L::min(second[g], L::max(best[g], acc[g]));
                }
                L::keep_lower(acc[g], index, &mut best[g], &mut best_index[g]);
            }
        }
        let mut lane_values = [<L::F as Element>::from_f64(0.0); 16];
        for g in 0..G {
            let lanes = rows.saturating_sub(g * L::LANES).min(L::LANES);
            let first = g * L::LANES;
            L::store(lane_values.as_mut_ptr(), best_index[g]);
            for l in 0..lanes {
                out[first + l] = <L::F as Element>::as_f64(lane_values[l]) as u32;
            }
            if SCORES {
                L::store(lane_values.as_mut_ptr(), best[g]);
                for l in 0..lanes {
                    scores[2 * (first + l)] = lane_values[l] + lane_values[l];
                }
                L::store(lane_values.as_mut_ptr(), second[g]);
                for l in 0..lanes {
                    scores[2 * (first + l) + 1] = lane_values[l] + lane_values[l];
                }
            }
        }
    }
}

/// The nearest of `k` centroids to each of `out.len()` rows by their first
/// `D` features, rows in lanes as in [`rows_in_lanes`], for the guesses of
/// the guesses: feature `f` of row `i` is `columns[f * stride + i]`
/// (already laid out in columns, so that no gather is needed), and
/// `negated[j * D + f]` is `-c_jf`, `half_norms[j]` is `||c_j||^2 / 2`, `k =
/// half_norms.len()`. Each centroid's score `||c_j||^2 / 2 - x.c_j` is a
/// chain of `D` fused multiply-adds; two centroids and `2 L::LANES` rows go
/// at a time, so that four chains are in flight. Lowest index on ties; rows
/// with NaN get centroid 0.
///
/// # Safety
/// The CPU must support `L`'s instruction set; `stride` is a multiple of `2
/// L::LANES`, at least `out.len()`, and `columns` holds `D * stride`
/// elements; `negated` holds `k * D`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices over register arrays, unrolled
pub unsafe fn nearest_in_columns<L: Lanes, const D: usize>(
    columns: &[L::F],
    stride: usize,
    negated: &[L::F],
    half_norms: &[L::F],
    out: &mut [u32],
) {
    let k = half_norms.len();
    debug_assert!(stride.is_multiple_of(2 * L::LANES) && stride >= out.len());
    debug_assert!(columns.len() >= D * stride && negated.len() >= k * D);
    let from = |v: f64| <L::F as Element>::from_f64(v);
    for first in (0..out.len()).step_by(2 * L::LANES) {
        // SAFETY (all below): rows `first..first + 2 LANES` lie within
        // `stride`, so every column read is in `columns`; centroid `j < k`
        // has `D` coordinates from `j * D`.
        unsafe {
            let mut features = [[L::zero(); 2]; D];
            for f in 0..D {
                for g in 0..2 {
                    features[f][g] =
                        L::load(columns.as_ptr().add(f * stride + first + g * L::LANES));
                }
            }
            let infinity = L::splat(from(f64::INFINITY));
            let (mut best, mut best_index) = ([infinity; 2], [L::zero(); 2]);
            for j in (0..k).step_by(2) {
                // Two centroids at a time, their chains independent (the
                // last one twice when `k` is odd: its score is not below
                // itself, so nothing changes).
                let pair = [j, (j + 1).min(k - 1)];
                let scores = [
                    centroid_scores::<L, D>(&features, negated, half_norms, pair[0]),
                    centroid_scores::<L, D>(&features, negated, half_norms, pair[1]),
                ];
                for (score, &c) in scores.iter().zip(&pair) {
                    let index = L::splat(from(c as f64));
                    for g in 0..2 {
                        L::keep_lower(score[g], index, &mut best[g], &mut best_index[g]);
                    }
                }
            }
            let mut lane_values = [from(0.0); 16];
            for g in 0..2 {
                let start = first + g * L::LANES;
                let lanes = out.len().saturating_sub(start).min(L::LANES);
                L::store(lane_values.as_mut_ptr(), best_index[g]);
                for l in 0..lanes {
                    out[start + l] = <L::F as Element>::as_f64(lane_values[l]) as u32;
                }
            }
        }
    }
}

/// Centroid `j`'s scores for the rows of `features` (see
/// [`nearest_in_columns`]): one chain of `D` fused multiply-adds a vector.
///
/// # Safety
/// As for [`nearest_in_columns`], with `j < k`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices over register arrays, unrolled
unsafe fn centroid_scores<L: Lanes, const D: usize>(
    features: &[[L::V; 2]; D],
    negated: &[L::F],
    half_norms: &[L::F],
    j: usize,
) -> [L::V; 2] {
    // SAFETY: centroid `j < k` has `D` coordinates from `j * D`.
    unsafe {
        let centroid = negated.as_ptr().add(j * D);
        let mut acc = [L::splat(*half_norms.get_unchecked(j)); 2];
        for f in 0..D {
            let c = L::splat(*centroid.add(f));
            for g in 0..2 {
                acc[g] = L::fmadd(features[f][g], c, acc[g]);
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Element, Isa, Kernels, Simd, WithSimd};
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A layout of `k` centroids of `d` features, `width` wide, for the
    /// checks (the values do not matter).
    fn layout(k: usize, d: usize, width: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let padded = k.div_ceil(width) * width;
        (vec![0.0; padded * d], vec![0.0; padded], vec![0.0; k * d])
    }

    /// The tiles of the instruction set `isa`, on a layout whose width
    /// is `width`.
    struct Tiles {
        width: usize,
        rows: usize,
    }

    impl WithSimd for Tiles {
        type Output = ();

        fn run<S: Simd>(self, simd: S) {
            let (k, d) = (3, 2);
            let (blocks, half_norms, negated) = layout(k, d, self.width);
            let centroids = CentroidLayout {
                blocks: &blocks,
                half_norms: &half_norms,
                lane_index: &half_norms,
                negated: &negated,
                k,
                d,
                width: self.width,
            };
            let x = vec![0.0; self.rows * d];
            let mut out = vec![0; self.rows];
            f64::kernels(simd).tiles::<false>(&centroids, &x, &mut out, &mut [], NextRows::NONE);
        }
    }

    /// `Lanes::lowest_per_row` on `L` (`LANES` rows of `LANES` lanes)
    /// against a row-by-row search, on scores with many ties and infinite
    /// (padded) lanes, with increasing indices shared by the rows and with
    /// each row's own in any order.
    #[cfg(target_arch = "x86_64")]
    fn lowest_per_row_is_each_rows_first_lowest_lane<L: Lanes<F = f64>>() {
        assert!(L::LOWEST_PER_ROW);
        let lanes = L::LANES;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut next = || rng.gen::<u32>() as usize;
        for case in 0..2000 {
            let scores: Vec<Vec<f64>> = (0..lanes)
                .map(|_| {
                    (0..lanes)
                        .map(|_| match next() % 7 {
                            0 => f64::INFINITY,
                            v => (v % (2 + case % 4)) as f64 - 1.5,
                        })
                        .collect()
                })
                .collect();
            // Increasing centroid indices, not always the lane numbers.
            let mut index = vec![0.0f64; lanes];
            for j in 1..lanes {
                index[j] = index[j - 1] + 1.0 + (next() % 3) as f64 * (case % 2) as f64;
            }
            let expected: Vec<u32> = scores
                .iter()
                .map(|row| {
                    let lowest = (0..lanes).fold(0, |b, j| if row[j] < row[b] { j } else { b });
                    index[lowest] as u32
                })
                .collect();
            let mut out = vec![0u32; lanes];
            // SAFETY: the caller checked the instruction set; every pointer
            // holds `lanes` elements.
            unsafe {
                let rows: Vec<_> = scores.iter().map(|r| L::load(r.as_ptr())).collect();
                let index = vec![L::load(index.as_ptr()); lanes];
                L::lowest_per_row(&rows, &index, &mut out);
            }
            assert_eq!(out, expected, "case {case}: {scores:?}, {index:?}");
            // Indices in any order, row by row (several blocks and vectors
            // of centroids): the lowest score, then the lowest index.
            let indices: Vec<Vec<f64>> = (0..lanes)
                .map(|_| (0..lanes).map(|_| (next() % (2 * lanes)) as f64).collect())
                .collect();
            let expected: Vec<u32> = scores
                .iter()
                .zip(&indices)
                .map(|(row, index)| {
                    let better = |j: usize, b: usize| {
                        row[j] < row[b] || (row[j] == row[b] && index[j] < index[b])
                    };
                    let lowest = (0..lanes).fold(0, |b, j| if better(j, b) { j } else { b });
                    index[lowest] as u32
                })
                .collect();
            // SAFETY: as above.
            unsafe {
                let rows: Vec<_> = scores.iter().map(|r| L::load(r.as_ptr())).collect();
                let index: Vec<_> = indices.iter().map(|i| L::load(i.as_ptr())).collect();
                L::lowest_per_row(&rows, &index, &mut out);
            }
            assert_eq!(out, expected, "case {case}: {scores:?}, {indices:?}");
        }
    }

    /// `Lanes::lowest_two_per_row` on `L` (`LANES / 2` rows) against the
    /// row-by-row reduction of `finish_tile`: the lowest score, the lowest
    /// index among the lanes holding it, and the runner-up (the winning
    /// lane's own, or another lane's best), on scores with many ties,
    /// infinite (padded) lanes and each row's lane indices in any order.
    #[cfg(target_arch = "x86_64")]
    fn lowest_two_per_row_is_the_row_by_row_reduction<L: Lanes<F = f32>>() {
        assert!(L::LOWEST_TWO_PER_ROW);
        let (lanes, rows) = (L::LANES, L::LANES / 2);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut next = || rng.gen::<u32>() as usize;
        for case in 0..2000 {
            let (mut best, mut second, mut indices) = (vec![], vec![], vec![]);
            for _ in 0..rows {
                let (mut b, mut s, mut i) = (vec![], vec![], vec![]);
                for lane in 0..lanes {
                    if next() % 6 == 0 {
                        // A padded lane: never updated.
                        b.push(f32::INFINITY);
                        s.push(f32::INFINITY);
                        i.push(0.0);
                        continue;
                    }
                    let score = (next() % (2 + case % 5)) as f32 - 1.5;
                    let runner_up = match next() % 4 {
                        0 => f32::INFINITY,
                        gap => score + (gap - 1) as f32,
                    };
                    // Distinct indices, in no order.
                    let index = ((lane * 7 + case) % lanes + lanes * (next() % 3)) as f32;
                    b.push(score);
                    s.push(runner_up);
                    i.push(index);
                }
                best.push(b);
                second.push(s);
                indices.push(i);
            }
            let mut expected_out = vec![];
            let mut expected_scores = vec![];
            for r in 0..rows {
                let target = best[r].iter().copied().fold(f32::INFINITY, f32::min);
                let winner = (0..lanes)
                    .filter(|&j| best[r][j] == target)
                    .map(|j| indices[r][j])
                    .fold(f32::INFINITY, f32::min);
                let runner_up = (0..lanes)
                    .map(|j| match indices[r][j] == winner {
                        true => second[r][j],
                        false => best[r][j],
                    })
                    .fold(f32::INFINITY, f32::min);
                expected_out.push(winner as u32);
                expected_scores.extend([target + target, runner_up + runner_up]);
            }
            let (mut out, mut scores) = (vec![0u32; rows], vec![0f32; 2 * rows]);
            // SAFETY: the caller checked the instruction set; every pointer
            // holds `lanes` elements.
            unsafe {
                let load = |v: &Vec<Vec<f32>>| v.iter().map(|r| L::load(r.as_ptr())).collect();
                let (b, s, i): (Vec<_>, Vec<_>, Vec<_>) =
                    (load(&best), load(&second), load(&indices));
                L::lowest_two_per_row(&b, &s, &i, &mut out, &mut scores);
            }
            let what = format!("case {case}: {best:?} {second:?} {indices:?}");
            assert_eq!(out, expected_out, "{what}");
            assert_eq!(scores, expected_scores, "{what}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn rows_reduced_together_keep_each_rows_first_lowest_lane() {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            lowest_per_row_is_each_rows_first_lowest_lane::<super::super::avx2::Avx2F64>();
            lowest_two_per_row_is_the_row_by_row_reduction::<super::super::avx2::Avx2F32>();
        }
        if std::is_x86_feature_detected!("avx512f") {
            lowest_per_row_is_each_rows_first_lowest_lane::<super::super::avx512::Avx512F64>();
            lowest_two_per_row_is_the_row_by_row_reduction::<super::super::avx512::Avx512F32>();
        }
    }

    #[test]
    fn tiles_run_on_a_layout_that_matches() {
        for isa in Isa::supported() {
            let lanes = isa.lanes::<f64>();
            let rows = match isa {
                Isa::Avx512 => 8,
                _ => 4,
            };
            isa.dispatch(Tiles { width: lanes, rows });
            isa.dispatch(Tiles {
                width: 2 * lanes,
                rows: 2 * rows,
            });
        }
    }

    #[test]
    #[should_panic(expected = "the tiles' arguments do not match their layout")]
    fn tiles_refuse_a_layout_of_another_width() {
        let isa = Isa::detect();
        isa.dispatch(Tiles {
            width: 3 * isa.lanes::<f64>(),
            rows: 8,
        });
    }

    #[test]
    #[should_panic(expected = "the tiles' arguments do not match their layout")]
    fn tiles_refuse_a_partial_tile() {
        let isa = Isa::detect();
        isa.dispatch(Tiles {
            width: isa.lanes::<f64>(),
            rows: 3,
        });
    }

    /// `add_rows` of the instruction set on `x` (rows of `d`), against a
    /// loop that adds row by row, feature by feature.
    struct AddRows<F> {
        x: Vec<F>,
        labels: Vec<u32>,
        k: usize,
        d: usize,
    }

    impl<F: Element> WithSimd for AddRows<F> {
        type Output = ();

        fn run<S: Simd>(self, simd: S) {
            let (k, d) = (self.k, self.d);
            // Sums that start away from zero, so each addition rounds.
            let start: Vec<F> = (0..k * d)
                .map(|i| F::from_f64(0.1 * i as f64 + 1e3))
                .collect();
            let (mut sums, mut counts) = (start.clone(), vec![0u64; k]);
            F::kernels(simd).add_rows(&self.x, &self.labels, &mut sums, &mut counts, d);
            let (mut expected, mut expected_counts) = (start, vec![0u64; k]);
            for (row, &j) in self.x.chunks_exact(d).zip(&self.labels) {
                let j = j as usize;
                for f in 0..d {
                    expected[j * d + f] += row[f];
                }
                expected_counts[j] += 1;
            }
            let bits = |v: &[F]| v.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&sums), bits(&expected), "{:?}, d = {d}", S::ISA);
            assert_eq!(counts, expected_counts, "{:?}, d = {d}", S::ISA);
        }
    }

    #[test]
    fn add_rows_adds_each_row_in_order_on_every_isa() {
        let (n, k) = (37, 5);
        for d in 1..=20 {
            let x: Vec<f64> = (0..n * d)
                .map(|i| ((i * 7919) % 1013) as f64 / 7.0 - 70.0)
                .collect();
            let labels: Vec<u32> = (0..n).map(|i| ((i * 31) % k) as u32).collect();
            for isa in Isa::supported() {
                let x32 = x.iter().map(|&v| v as f32).collect();
                isa.dispatch(AddRows {
                    x: x.clone(),
                    labels: labels.clone(),
                    k,
                    d,
                });
                isa.dispatch(AddRows {
                    x: x32,
                    labels: labels.clone(),
                    k,
                    d,
                });
            }
        }
    }

    #[test]
    fn the_kernel_cap_only_narrows() {
        assert_eq!(Isa::Avx512.capped("avx2"), Isa::Avx2);
        assert_eq!(Isa::Avx512.capped("portable"), Isa::Portable);
        assert_eq!(Isa::Avx2.capped("avx2"), Isa::Avx2);
        assert_eq!(Isa::Avx2.capped("avx512"), Isa::Avx2);
        assert_eq!(Isa::Portable.capped("avx2"), Isa::Portable);
        assert_eq!(Isa::Avx2.capped(""), Isa::Avx2);
        assert!(Isa::supported().contains(&Isa::Portable));
    }
}
