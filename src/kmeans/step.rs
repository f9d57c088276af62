//! One Lloyd step: every row assigned (through the bounds where there are)
//! and added to its cluster's sum, a block at a time while in cache. The
//! step runs in parallel over the fixed chunks of [`super::chunks`], each
//! chunk in a function compiled for the instruction set, and merges chunk
//! results in order.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::bounds::{Bounds, ChunkBounds, Geometry, Scratch};
use super::chunks::{chunk_rows, task_min_len, threads, BLOCK_ROWS};
use super::float::Float;
use super::guess::{self, Guess};
use super::passes::relocate_empty_clusters;
use super::screen::ScreenedCentroids;
use super::simd::{prefetch_into_l2, Isa, Kernels, NextRows, Simd, WithSimd};
use super::validate::scan;

/// What one Lloyd step produced.
#[derive(Debug, Clone)]
pub struct Step<F> {
    /// The updated centroids, `(k, n_features)`.
    pub centroids: Array2<F>,
    /// How many labels changed in this step's assignment.
    pub changed: usize,
    /// `sum_j ||new_j - old_j||^2`.
    pub shift: f64,
    /// The inertia of the step's assignment against the centroids it was
    /// made with, as [`super::passes::inertia`] computes it (same order,
    /// same bits), when asked for and no label changed: only then can the
    /// step be the fit's last (see [`block_step`]).
    pub inertia: Option<f64>,
    /// How many rows went through the distance kernel (all of them without
    /// bounds).
    pub active: usize,
    /// Rows of the data the step read: all of them, but where bounds settle
    /// rows and the sums are updated (then, each row read for a distance,
    /// counted once per read).
    pub rows_read: u64,
    /// Squared distances computed in the step's pass (row to one centroid):
    /// `k` per kernel row (twice for rows the `f32` screen sent on to the
    /// exact kernel), one per row for the inertia, one per tightened bound
    /// or guessed row, and the guesses' scores on a few features (see
    /// [`super::guess`]), as distances of `d` features.
    pub distances: u64,
    /// How many of them were computed in `f32` for `f64` data (by the
    /// screen, and the guesses).
    pub f32_distances: u64,
    /// Whether empty clusters were relocated (a second pass over the data,
    /// one distance per row).
    pub relocated: bool,
    /// The largest magnitude in the data, when the step checked it.
    pub data_max_abs: Option<f64>,
    /// Per cluster, the sum of the rows assigned to it, `(k, n_features)`
    /// row-major (after any relocation of empty clusters).
    pub sums: Vec<f64>,
    /// Per cluster, how many rows were assigned to it.
    pub counts: Vec<u64>,
    /// Per cluster, the sum of its rows' squared distances to the centroid
    /// they were assigned against, when asked for and no chunk dropped
    /// them (see [`chunk_step`]).
    pub within: Option<Vec<f64>>,
    /// Each chunk's own sums and counts, kept for the next step where it can
    /// reuse them (see [`ChunkTotal`]); empty elsewhere.
    pub chunks: Vec<ChunkTotal>,
}

/// Per-cluster sums and counts of rows, as a step leaves them.
#[derive(Debug, Clone)]
pub struct Totals {
    /// `(k, n_features)`, row-major.
    pub sums: Vec<f64>,
    pub counts: Vec<u64>,
    /// The step's [`Step::chunks`].
    pub chunks: Vec<ChunkTotal>,
}

/// One chunk's per-cluster sums (in `f64`, which holds `f32` values
/// exactly) and counts. `f32` data is summed afresh in `f32` every step, a
/// chunk at a time; a chunk in which no label changed has the same sums to
/// the bit, so a bounded step takes them from here without reading its rows.
#[derive(Debug, Clone)]
pub struct ChunkTotal {
    pub sums: Vec<f64>,
    pub counts: Vec<u64>,
    /// Labels of the chunk that changed in the step that summed it. Past
    /// [`STEADY_CHANGES`] they will likely change again, and the next step
    /// then assigns and sums the chunk a block at a time, reading each row
    /// once, rather than settling its rows first and, should one change,
    /// reading them all again to sum them.
    pub changed: usize,
}

/// See [`ChunkTotal::changed`].
const STEADY_CHANGES: usize = 2;

/// Chunk sums are kept when all of them take at most one byte in
/// `KEEP_CHUNKS_FRACTION` of the data's.
const KEEP_CHUNKS_FRACTION: usize = 16;

/// What a step does besides assigning and moving the centroids.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Check every row for NaN and infinities before the kernel sees it (the
    /// data's check rides on the step's pass).
    pub check_data: bool,
    /// Sum the assignment's inertia (the fit's final inertia, should the
    /// step change no label and so be the last).
    pub inertia: bool,
    /// Sum the squared distances per cluster (see [`Step::within`]).
    pub within: bool,
}

/// Each chunk's sum buffers, kept from one step of a fit to the next.
///
/// A chunk's `(k, n_features)` sums can be as large as its rows (large `k`
/// and `d`); allocated afresh every step, the allocator maps them anew, and
/// each first write to one of their pages costs a page fault and, with
/// threads, an interrupt of the other cores to flush their address caches.
/// Kept, they are only zeroed, by each chunk on its own thread.
#[derive(Debug, Default)]
pub struct StepBuffers<F> {
    spares: Vec<Spare<F>>,
}

/// Sums smaller than this are allocated afresh: the allocator hands them
/// out without a fault, and a recycled small buffer may share a cache line
/// with another chunk's, written by another thread.
const SPARE_MIN_BYTES: usize = 16 << 10;

/// One chunk's buffers: the sums, and the moves (see [`ChunkSums::moved`]:
/// empty, or zero throughout).
#[derive(Debug, Default)]
struct Spare<F> {
    sums: Vec<F>,
    moved: Vec<f64>,
}

/// One chunk's share of the centroid update.
struct ChunkSums<F> {
    /// `(k, n_features)`, row-major (empty when the step updates the last
    /// step's sums instead).
    sums: Vec<F>,
    counts: Vec<u64>,
    /// What the rows that changed cluster take from their old cluster's sum
    /// and give to their new one, when the step updates the last step's
    /// sums: `(k, n_features)`, and the change in counts. Only the rows of
    /// `touched` clusters are other than zero (the merge adds those, and
    /// zeroes them again for the next step).
    moved: Vec<f64>,
    moved_counts: Vec<i64>,
    /// The clusters a row moved from or to, each once, and per cluster
    /// whether it is among them.
    touched: Vec<u32>,
    is_touched: Vec<bool>,
    /// `k` when the step updates the last step's sums (else 0).
    clusters: usize,
    changed: usize,
    /// The sum of the rows' squared distances, when the step asks for it
    /// and no label of the chunk has changed (see [`block_step`]).
    inertia: Option<f64>,
    /// Per cluster, the sum of its rows' squared distances, when the step
    /// asks for them (see [`Step::within`]); empty once the chunk has
    /// dropped them (see [`chunk_step`]).
    within: Vec<f64>,
    /// Rows whose distances the chunk did not sum, having dropped its
    /// inertia or sums of distances.
    unsummed: usize,
    active: usize,
    exact: usize,
    /// Rows guessed (see [`super::guess`]).
    guessed: usize,
    /// In a step that reuses chunk sums (see [`ChunkTotal`]), the rows
    /// the chunk read (once per read).
    reuse_reads: usize,
    max_abs: f64,
    finite: bool,
}

/// Assigns every row of `x` (`(n, d)` row-major) to its nearest centroid,
/// writing `labels`, then moves each centroid to the mean of its rows.
///
/// With `bounds`, rows whose label cannot change skip the kernel (see
/// [`super::bounds`]); the labels are the same either way. `None` means
/// `extras.check_data` found a NaN or an infinity, and nothing was updated.
/// Empty clusters take the rows farthest from their old centroids, as in
/// scikit-learn's Lloyd; `labels` keep the assignment to the old centroids.
///
/// With bounds and `previous`, the per-cluster sums and counts of the last
/// step (whose labels `labels` hold), only the rows that change cluster are
/// read to update them (`f64` data): rows the bounds settle are not read at
/// all. The centroids then differ from a fresh summation by rounding only.
///
/// `buffers` holds the chunks' buffers that earlier steps left (of this fit
/// or any other: each step leaves them ready for the next), or none.
pub fn lloyd_step<F: Float>(
    x: &[F],
    buffers: &mut StepBuffers<F>,
    centroids: ArrayView2<F>,
    labels: &mut [u32],
    bounds: Option<&mut Bounds<F>>,
    previous: Option<&Totals>,
    extras: Extras,
) -> Option<Step<F>> {
    let n = labels.len();
    let (k, d) = centroids.dim();
    let standard = centroids.as_standard_layout();
    let flat_centroids = standard.as_slice().expect("standard layout is contiguous");
    let rows = chunk_rows(n);
    let n_chunks = n.div_ceil(rows);
    let mut bounds = bounds;
    let screen_kernel_rows = bounds.as_ref().is_none_or(|b| b.kernel_rows_many());
    // See `StepContext::gather`.
    let gather = bounds
        .as_ref()
        .is_some_and(|b| !b.kernel_rows_many() || (!b.tested() && k >= GATHER_UNTESTED_MIN_K));
    let (geometry, bound_chunks) = match bounds.as_deref_mut() {
        Some(bounds) => {
            let (geometry, chunks) = bounds.prepare(centroids, rows);
            (Some(geometry), chunks.into_iter().map(Some).collect())
        }
        None => (None, (0..n_chunks).map(|_| None).collect::<Vec<_>>()),
    };
    // The f32 screen pays where every row, or most, go through the kernel;
    // the rows bounds that settle most rows leave to it are those near a
    // boundary, which it mostly could not decide.
    let isa = Isa::detect();
    let settles = geometry.as_ref().is_some_and(Geometry::settles_rows);
    let prepared = if settles && !screen_kernel_rows {
        ScreenedCentroids::unscreened(centroids, isa)
    } else {
        ScreenedCentroids::new(centroids, isa)
    };
    // The first assignment with bounds guesses where it can (see
    // [`super::guess`]).
    let guess = geometry
        .as_ref()
        .filter(|_| !settles && !guess::switched_off())
        .and_then(|_| Guess::new(centroids));
    let label_chunks: Vec<&mut [u32]> = labels.chunks_mut(rows).collect();
    // f32 data is summed afresh in f32 (per chunk): an f64 update would
    // not reproduce those sums, and far from the origin f32's kernel is
    // coarse enough for a last-bit change in a centroid to move labels.
    // A bounded step reuses the sums of the chunks whose labels all hold.
    let single = std::mem::size_of::<F>() == 4;
    let plain_extras = !(extras.check_data || extras.inertia || extras.within);
    let keep_chunks = single
        && geometry.is_some()
        && n_chunks * k * d * 8 * KEEP_CHUNKS_FRACTION <= std::mem::size_of_val(x);
    let reused: Vec<Option<&ChunkTotal>> = match previous {
        Some(previous)
            if single && settles && plain_extras && previous.chunks.len() == n_chunks =>
        {
            let steady = |kept: &&ChunkTotal| kept.changed <= STEADY_CHANGES;
            previous
                .chunks
                .iter()
                .map(|kept| Some(kept).filter(steady))
                .collect()
        }
        _ => (0..n_chunks).map(|_| None).collect(),
    };
    let reuse = reused.iter().any(Option::is_some);
    let previous = previous.filter(|_| geometry.is_some() && !single);
    let context = StepContext {
        d,
        k,
        extras,
        incremental: previous.is_some(),
        reuse,
        prepared: &prepared,
        guess: guess.as_ref(),
        centroids: flat_centroids,
        geometry: geometry.as_ref(),
        ask_next: std::mem::size_of_val(x) >= FROM_MEMORY_MIN_BYTES,
        gather,
    };
    let chunk_sums_bytes = k * d * std::mem::size_of::<F>();
    let keep_spares = chunk_sums_bytes >= SPARE_MIN_BYTES;
    let wave = chunks_per_wave(n_chunks, chunk_sums_bytes, std::mem::size_of_val(x));
    let mut chunks = x
        .chunks(rows * d)
        .zip(label_chunks)
        .zip(bound_chunks)
        .zip(reused);

    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0u64; k];
    let mut changed = 0;
    let mut inertia = 0.0;
    let mut active = 0;
    let mut exact = 0;
    let mut guessed = 0;
    let mut reuse_reads = 0;
    let mut chunk_totals = Vec::new();
    let mut max_abs = 0.0f64;
    let mut within = vec![0.0; if extras.within { k } else { 0 }];
    let mut inertia_whole = extras.inertia;
    let mut within_whole = extras.within;
    let mut unsummed = 0;
    if let Some(previous) = previous {
        sums.copy_from_slice(&previous.sums);
        counts.copy_from_slice(&previous.counts);
    }
    // A wave of chunks at a time (see `chunks_per_wave`), each wave added
    // before the next runs: the chunks are added in order all the same.
    loop {
        let inputs: Vec<_> = chunks.by_ref().take(wave).collect();
        if inputs.is_empty() {
            break;
        }
        let spares: Vec<Spare<F>> = (0..inputs.len())
            .map(|_| buffers.spares.pop().unwrap_or_default())
            .collect();
        let partials: Vec<ChunkSums<F>> = inputs
            .into_par_iter()
            .zip(spares)
            .with_min_len(task_min_len())
            .map(|((((x_chunk, label_chunk), bound_chunk), kept), spare)| {
                let chunk = Chunk {
                    x: x_chunk,
                    labels: label_chunk,
                    bounds: bound_chunk,
                    kept,
                    spare,
                };
                isa.dispatch(ChunkStep {
                    context: &context,
                    chunk,
                })
            })
            .collect();
        for part in &partials {
            if !part.finite {
                return None;
            }
            max_abs = max_abs.max(part.max_abs);
        }
        add_chunk_sums(&mut sums, &partials);
        for mut part in partials {
            // After the chunks' sums, of which an updating step has none: each
            // element still takes the chunks in order.
            for &j in &part.touched {
                let cluster = j as usize * d..(j as usize + 1) * d;
                for (s, v) in sums[cluster.clone()]
                    .iter_mut()
                    .zip(&part.moved[cluster.clone()])
                {
                    *s += v;
                }
                part.moved[cluster].fill(0.0);
            }
            for (c, v) in counts.iter_mut().zip(&part.counts) {
                *c += v;
            }
            for (c, v) in counts.iter_mut().zip(&part.moved_counts) {
                *c = c.wrapping_add_signed(*v);
            }
            changed += part.changed;
            inertia_whole &= part.inertia.is_some();
            inertia += part.inertia.unwrap_or(0.0);
            within_whole &= !part.within.is_empty();
            for (w, v) in within.iter_mut().zip(&part.within) {
                *w += v;
            }
            unsummed += part.unsummed;
            active += part.active;
            exact += part.exact;
            guessed += part.guessed;
            reuse_reads += part.reuse_reads;
            if keep_chunks {
                chunk_totals.push(ChunkTotal {
                    sums: part.sums.iter().map(|v| v.as_f64()).collect(),
                    counts: part.counts,
                    changed: part.changed,
                });
            }
            if keep_spares {
                buffers.spares.push(Spare {
                    sums: part.sums,
                    moved: part.moved,
                });
            }
        }
    }
    // A first step's share says nothing of how well the bounds will settle.
    if let Some(bounds) = bounds.filter(|_| settles) {
        bounds.set_kernel_rows(active);
    }
    let relocated = relocate_empty_clusters(x, d, centroids, labels, &mut sums, &mut counts);
    // The guesses' scores, in `f32` whatever the data's type.
    let guess_distances = guess
        .as_ref()
        .map_or(0, |guess| guess.distances(guessed, d));

    let mut new_centroids = Array2::zeros((k, d));
    let mut shift = 0.0;
    for (j, mut centroid) in new_centroids.rows_mut().into_iter().enumerate() {
        // scikit-learn multiplies by the reciprocal; so do we, for the same bits.
        let scale = if counts[j] > 0 {
            1.0 / counts[j] as f64
        } else {
            1.0
        };
        for (f, c) in centroid.iter_mut().enumerate() {
            *c = F::from_f64(sums[j * d + f] * scale);
            let delta = c.as_f64() - centroids[[j, f]].as_f64();
            shift += delta * delta;
        }
    }
    Some(Step {
        centroids: new_centroids,
        changed,
        shift,
        inertia: inertia_whole.then_some(inertia),
        active,
        distances: (active * k + exact) as u64
            + guess_distances
            + prepared.rescored_rows() * k as u64
            + if extras.inertia || extras.within {
                (n - unsummed) as u64
            } else {
                0
            },
        rows_read: if reuse {
            (reuse_reads as u64).min(n as u64)
        } else if previous.is_some() && plain_extras {
            ((active + exact) as u64).min(n as u64)
        } else {
            n as u64
        },
        f32_distances: if prepared.is_screened() {
            (active * k) as u64
        } else {
            0
        } + if std::mem::size_of::<F>() == 8 {
            guess_distances
        } else {
            0
        },
        relocated,
        data_max_abs: extras.check_data.then_some(max_abs),
        sums,
        counts,
        within: within_whole.then_some(within),
        chunks: chunk_totals,
    })
}

/// The share of the data's size the chunks' sums held at once are kept
/// under, where four chunks a thread allow it (see [`chunks_per_wave`]).
const WAVE_SUMS_FRACTION: usize = 8;

/// How many chunks of a step run at once. At large `k` and `d` a chunk's
/// sums are as large as its rows: all chunks' at once would take most of
/// the data's size again. Where they would pass [`WAVE_SUMS_FRACTION`] of
/// it, the chunks run in waves, each of at least four chunks a thread (so
/// that the threads stay busy to its end) and added before the next runs.
/// The order of the sums is the chunks' whatever the waves: the same bits.
fn chunks_per_wave(n_chunks: usize, chunk_sums_bytes: usize, data_bytes: usize) -> usize {
    let fit = data_bytes / WAVE_SUMS_FRACTION / chunk_sums_bytes.max(1);
    fit.max(4 * threads()).clamp(1, n_chunks.max(1))
}

/// Elements of the sums each task of [`add_chunk_sums`] adds up.
const MERGE_BLOCK: usize = 1 << 12;

/// Adds each chunk's sums to `sums` (`(k, d)`), chunk after chunk for
/// every element: the same bits however the elements are shared out. At
/// large `k` and `d` the chunks' sums are megabytes, and they are added a
/// block of elements at a time in parallel, the block staying in cache.
fn add_chunk_sums<F: Float>(sums: &mut [f64], partials: &[ChunkSums<F>]) {
    let add = |offset: usize, block: &mut [f64]| {
        for part in partials.iter().filter(|part| !part.sums.is_empty()) {
            for (s, v) in block.iter_mut().zip(&part.sums[offset..]) {
                *s += v.as_f64();
            }
        }
    };
    if sums.len() <= MERGE_BLOCK {
        add(0, sums);
    } else {
        sums.par_chunks_mut(MERGE_BLOCK)
            .enumerate()
            .with_min_len(task_min_len())
            .for_each(|(b, block)| add(b * MERGE_BLOCK, block));
    }
}

/// What every chunk of one step shares.
struct StepContext<'a, F> {
    d: usize,
    k: usize,
    extras: Extras,
    /// Update the last step's sums with the rows that change cluster.
    incremental: bool,
    /// Some chunks may take the last step's sums (`f32` data; see
    /// [`ChunkTotal`]).
    reuse: bool,
    prepared: &'a ScreenedCentroids<F>,
    /// Guesses for the first assignment with bounds.
    guess: Option<&'a Guess<F>>,
    /// The centroids assigned against, `(k, d)` row-major.
    centroids: &'a [F],
    geometry: Option<&'a Geometry>,
    /// Have the kernel ask for the next block (see [`NextRows`]) when it
    /// scores a whole block: where the rows come from memory (in the
    /// caches, the requests only cost).
    ask_next: bool,
    /// Gather the rows the bounds leave from the whole chunk for the
    /// kernel ([`chunk_step_pending`]): where the last step sent few rows
    /// there, so that the kernel gets full blocks. Where it sent many, each
    /// block takes the kernel in place instead, in the first-level cache:
    /// gathering would read most rows twice, once to tighten their bounds
    /// and once for the kernel. Bounds no step has tested yet are gathered
    /// for [`GATHER_UNTESTED_MIN_K`] centroids or more, where a kernel call
    /// on a few rows costs most.
    gather: bool,
}

/// One chunk of rows with its labels and bounds.
struct Chunk<'a, F> {
    x: &'a [F],
    labels: &'a mut [u32],
    bounds: Option<ChunkBounds<'a>>,
    /// The chunk's sums from the last step, when this step may reuse them.
    kept: Option<&'a ChunkTotal>,
    /// Buffers for the chunk's sums.
    spare: Spare<F>,
}

/// One chunk's share of a Lloyd step, as one operation for the chunk's
/// instruction set.
struct ChunkStep<'a, F> {
    context: &'a StepContext<'a, F>,
    chunk: Chunk<'a, F>,
}

impl<F: Float> WithSimd for ChunkStep<'_, F> {
    type Output = ChunkSums<F>;

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> ChunkSums<F> {
        chunk_step(simd, self.context, self.chunk)
    }
}

/// One chunk's share of a Lloyd step: assign its rows (through the bounds
/// when there are), then add them to their sums, a few rows at a time.
/// Inlined into one function per instruction set, so that everything
/// around the kernel (the data check, the bounds, the distances) is
/// vectorised as widely as the kernel.
#[inline(always)]
fn chunk_step<S: Simd, F: Float>(
    simd: S,
    context: &StepContext<'_, F>,
    mut chunk: Chunk<'_, F>,
) -> ChunkSums<F> {
    let d = context.d;
    let extras = context.extras;
    if let (Some(geometry), true, false) = (
        context.geometry.filter(|_| context.gather),
        context.incremental || chunk.kept.is_some(),
        extras.check_data || extras.inertia || extras.within,
    ) {
        return chunk_step_pending(simd, context, geometry, chunk);
    }
    let mut part = ChunkSums::new(context, chunk.spare);
    let mut scratch = Scratch::default();
    let mut fresh = [0u32; BLOCK_ROWS];
    // Assign a few rows, then add them to their sums while they are
    // still in cache: one pass over X per step.
    for (s, (x_block, labels_block)) in chunk
        .x
        .chunks(BLOCK_ROWS * d)
        .zip(chunk.labels.chunks_mut(BLOCK_ROWS))
        .enumerate()
    {
        let fresh = &mut fresh[..labels_block.len()];
        let range = s * BLOCK_ROWS..s * BLOCK_ROWS + fresh.len();
        let mut bounds = chunk.bounds.as_mut().map(|(upper, lower, norms)| {
            (
                &mut upper[range.clone()],
                &mut lower[range.clone()],
                norms.get_mut(range).unwrap_or_default(),
            )
        });
        let proved = match (context.guess, context.geometry, bounds.as_mut()) {
            (Some(guess), Some(geometry), Some((upper, lower, _))) if !context.incremental => {
                proved_rows(
                    simd,
                    context,
                    (geometry, guess),
                    (&mut part, &mut scratch),
                    x_block,
                    fresh,
                    (upper, lower),
                )
            }
            _ => 0,
        };
        // A chunk whose guesses stopped paying has rows near a boundary,
        // whose labels the next step will likely move: it drops the sums
        // of distances that would end the fit without reading the data
        // after that step (`Step::within`), which cost a distance a row.
        if !part.within.is_empty() && context.guess.is_some() && !scratch.trial().worth_it() {
            part.within = Vec::new();
        }
        let rest = proved * d;
        // The block after this one, for the kernel to ask for.
        let next_block = match context.ask_next {
            true => chunk.x.chunks(BLOCK_ROWS * d).nth(s + 1).unwrap_or(&[]),
            false => &[],
        };
        let finite = block_step(
            simd,
            context,
            (&mut part, &mut scratch),
            (&x_block[rest..], next_block),
            &labels_block[proved..],
            &mut fresh[proved..],
            bounds.map(|(upper, lower, norms)| {
                (
                    &mut upper[proved..],
                    &mut lower[proved..],
                    norms.get_mut(proved..).unwrap_or_default(),
                )
            }),
        );
        if !finite {
            part.finite = false;
            break;
        }
        // Counted in a local: `part` lives in memory, and a count kept
        // there is stored and reloaded for every row.
        let changed = labels_block
            .iter()
            .zip(fresh.iter())
            .filter(|(old, new)| old != new)
            .count();
        part.changed += changed;
        if changed > 0 {
            // As `block_step` does before its distances, here for the rows
            // proved before the kernel too: a moved label drops the inertia.
            part.inertia = None;
        }
        labels_block.copy_from_slice(fresh);
    }
    if context.reuse {
        part.reuse_reads = chunk.labels.len();
    }
    part
}

/// Before the first assignment with bounds: the rows of a block whose
/// guessed centroid Hamerly's test proves ([`Geometry::prove`]), from the
/// first until one is not proved (or not finite), which [`block_step`]
/// takes from there with the rest of the block; rows are summed in order
/// either way. The block's rows are guessed together ([`Guess::guess`]);
/// then, row by row, the row's distance to its guess is computed (and the
/// row checked, when the step checks the data) in one loop, and a proved
/// row is added to its sum while it is in the first-level cache. Meanwhile
/// the next block is asked for, a row's worth of lines per row, into the
/// second-level cache, so that memory delivers it while this block is
/// computed (see [`prefetch_next_block`]). Returns how many rows it
/// assigned; `fresh`, `upper` and `lower` hold theirs.
#[inline(always)]
fn proved_rows<S: Simd, F: Float>(
    simd: S,
    context: &StepContext<'_, F>,
    (geometry, guess): (&Geometry, &Guess<F>),
    (part, scratch): (&mut ChunkSums<F>, &mut Scratch<F>),
    x: &[F],
    fresh: &mut [u32],
    (upper, lower): (&mut [f32], &mut [f32]),
) -> usize {
    if !scratch.trial().worth_it() {
        return 0;
    }
    let (d, extras, kernels) = (context.d, context.extras, F::kernels(simd));
    let guesses = scratch.guesses(simd, guess, x, fresh.len());
    let mut proved = 0;
    for (i, (row, &a)) in x.chunks_exact(d).zip(guesses).enumerate() {
        prefetch_next_block(x, i, d);
        let a = a as usize;
        let centroid = &context.centroids[a * d..(a + 1) * d];
        let distance = if extras.check_data {
            let (distance, max_abs, finite) = kernels.squared_distance_and_scan(row, centroid);
            if !finite {
                break;
            }
            part.max_abs = part.max_abs.max(max_abs);
            distance
        } else {
            kernels.squared_distance(row, centroid)
        };
        let Some((up, low)) = geometry.prove(a, distance.as_f64()) else {
            break;
        };
        fresh[i] = a as u32;
        upper[i] = up;
        lower[i] = low;
        for (s, &v) in part.sums[a * d..(a + 1) * d].iter_mut().zip(row) {
            *s += v;
        }
        part.counts[a] += 1;
        // In row order, as `inertia` sums.
        if let Some(inertia) = part.inertia.as_mut() {
            *inertia += distance.as_f64();
        }
        if let Some(within) = part.within.get_mut(a) {
            *within += distance.as_f64();
        }
        proved += 1;
    }
    let trial = scratch.trial();
    trial.guessed += proved;
    trial.proved += proved;
    part.exact += proved;
    part.guessed += proved;
    proved
}

/// Asks for row `i` of the block after `block` (`d` features a row: the
/// rows that follow it in memory) into the second-level cache. Computing
/// on a block while the next streams in hides the arithmetic behind the
/// read, where reading each block first left memory idle during the
/// arithmetic (the second-level cache and one block ahead measured best:
/// `docs/tuning.md`). Asking for lines past the data is harmless: a
/// prefetch never faults.
#[inline(always)]
fn prefetch_next_block<F>(block: &[F], i: usize, d: usize) {
    let row = block.as_ptr().wrapping_add(block.len() + i * d);
    prefetch_into_l2(row, d * std::mem::size_of::<F>());
}

/// Assigns the rows of `x` (at most a block), with `bounds` when the step
/// has them, and adds them to their sums, their new labels into `fresh`
/// (`labels` holds the last step's). A kernel that scores the whole block
/// asks for `next` (the block after `x`) meanwhile. `false` when the step
/// checks the data and these rows are not all finite.
#[inline(always)]
fn block_step<S: Simd, F: Float>(
    simd: S,
    context: &StepContext<'_, F>,
    (part, scratch): (&mut ChunkSums<F>, &mut Scratch<F>),
    (x, next): (&[F], &[F]),
    labels: &[u32],
    fresh: &mut [u32],
    bounds: Option<ChunkBounds<'_>>,
) -> bool {
    let d = context.d;
    if fresh.is_empty() {
        return true;
    }
    if context.extras.check_data {
        let (max_abs, finite) = scan(x);
        part.max_abs = part.max_abs.max(max_abs);
        if !finite {
            return false;
        }
    }
    match (context.geometry, bounds) {
        (Some(geometry), Some((upper, lower, norms))) => {
            let (active, exact, guessed) = geometry.assign(
                simd,
                context.prepared,
                context.guess,
                context.centroids,
                (x, NextRows::of(next)),
                labels,
                fresh,
                (upper, lower, norms),
                scratch,
            );
            part.active += active;
            part.exact += exact;
            part.guessed += guessed;
        }
        _ => {
            context
                .prepared
                .assign_in(simd, x, fresh, NextRows::of(next));
            part.active += fresh.len();
        }
    }
    if context.incremental {
        for (i, (&old, &new)) in labels.iter().zip(fresh.iter()).enumerate() {
            if old != new {
                part.move_row(&x[i * d..(i + 1) * d], old, new);
            }
        }
    } else {
        F::kernels(simd).add_rows(x, fresh, &mut part.sums, &mut part.counts, d);
    }
    // A step that changes a label is not the fit's last, and its inertia
    // goes unused: the chunk drops it, and with it a distance a row.
    if part.inertia.is_some() && labels != fresh {
        part.inertia = None;
    }
    if part.inertia.is_some() || !part.within.is_empty() {
        let (centroids, kernels) = (context.centroids, F::kernels(simd));
        // Summed in a local, which stays in a register: `part.inertia` is
        // stored and reloaded around the stores into `within` otherwise.
        let mut inertia = part.inertia.unwrap_or(0.0);
        for (i, (row, &j)) in x.chunks_exact(d).zip(fresh.iter()).enumerate() {
            let j = j as usize;
            let distance = scratch
                .known_distance(i)
                .unwrap_or_else(|| kernels.squared_distance(row, &centroids[j * d..(j + 1) * d]));
            // In row order, as `inertia` sums.
            inertia += distance.as_f64();
            if let Some(within) = part.within.get_mut(j) {
                *within += distance.as_f64();
            }
        }
        if let Some(total) = part.inertia.as_mut() {
            *total = inertia;
        }
    } else if context.extras.inertia || context.extras.within {
        part.unsummed += fresh.len();
    }
    true
}

/// See [`StepContext::gather`] (measurements in `docs/tuning.md`).
const GATHER_UNTESTED_MIN_K: usize = 16;

/// Data of at least this many bytes is beyond the last-level cache of
/// current CPUs: every pass reads its rows from memory, where the kernel
/// would wait on them (measurements in `docs/tuning.md`).
const FROM_MEMORY_MIN_BYTES: usize = 32 << 20;

/// [`chunk_step`] for a step that updates or reuses the last step's sums and
/// has no extras: the bounds settle most rows a block at a time, the others
/// are gathered from the whole chunk and run through the kernel together
/// (a block's worth of consecutive ones where they lie).
/// With `f64` data only the rows that change cluster are read again, to
/// move their weight between sums; with `f32` data the chunk keeps the last
/// step's sums when no label changed, else sums its rows afresh. Rows the
/// bounds settle cost no more than their bounds, but in that last case.
#[inline(always)]
fn chunk_step_pending<S: Simd, F: Float>(
    simd: S,
    context: &StepContext<'_, F>,
    geometry: &Geometry,
    chunk: Chunk<'_, F>,
) -> ChunkSums<F> {
    let d = context.d;
    let mut part = ChunkSums::new(context, chunk.spare);
    let (upper, lower, _) = chunk.bounds.expect("a step with a geometry has bounds");
    let mut pending: Vec<u32> = Vec::with_capacity(chunk.labels.len());
    let settled = geometry.settle_chunk(
        simd,
        context.centroids,
        chunk.x,
        chunk.labels,
        upper,
        lower,
        &mut pending,
    );
    match settled {
        Some(exact) => part.exact += exact,
        None => pending.extend(0..chunk.labels.len() as u32),
    }
    let mut gathered = Vec::with_capacity(BLOCK_ROWS * d);
    let mut fresh = [0u32; BLOCK_ROWS];
    let mut fresh_upper = [0f32; BLOCK_ROWS];
    let mut fresh_lower = [0f32; BLOCK_ROWS];
    for batch in pending.chunks(BLOCK_ROWS) {
        let m = batch.len();
        // A batch of consecutive rows (bounds that settle few) is scored
        // where it lies, the block after it asked for meanwhile, as in a
        // step without bounds; others are gathered. `pending` is in order.
        let first = batch[0] as usize;
        let run = batch[m - 1] as usize - first + 1 == m;
        let rows: &[F] = if run {
            &chunk.x[first * d..(first + m) * d]
        } else {
            gathered.clear();
            for &i in batch {
                let i = i as usize;
                gathered.extend_from_slice(&chunk.x[i * d..(i + 1) * d]);
            }
            &gathered
        };
        let next = match run && context.ask_next {
            true => {
                let after = &chunk.x[(first + m) * d..];
                NextRows::of(&after[..after.len().min(BLOCK_ROWS * d)])
            }
            false => NextRows::NONE,
        };
        geometry.rescore(
            simd,
            context.prepared,
            rows,
            next,
            &mut fresh[..m],
            (&mut fresh_upper[..m], &mut fresh_lower[..m], &mut []),
        );
        for (p, &i) in batch.iter().enumerate() {
            let i = i as usize;
            upper[i] = fresh_upper[p];
            lower[i] = fresh_lower[p];
            let (old, new) = (chunk.labels[i], fresh[p]);
            if old != new {
                if context.incremental {
                    part.move_row(&rows[p * d..(p + 1) * d], old, new);
                }
                chunk.labels[i] = new;
                part.changed += 1;
            }
        }
    }
    part.active = pending.len();
    if let Some(kept) = chunk.kept {
        part.reuse_reads = part.active + part.exact;
        if part.changed == 0 {
            part.sums.clear();
            part.sums.extend(kept.sums.iter().map(|&v| F::from_f64(v)));
            part.counts.clone_from(&kept.counts);
        } else {
            // In blocks, as a step without bounds sums them: the same bits.
            let kernels = F::kernels(simd);
            for (x_block, labels_block) in chunk
                .x
                .chunks(BLOCK_ROWS * d)
                .zip(chunk.labels.chunks(BLOCK_ROWS))
            {
                kernels.add_rows(x_block, labels_block, &mut part.sums, &mut part.counts, d);
            }
            part.reuse_reads += chunk.labels.len();
        }
    }
    part
}

impl<F: Float> ChunkSums<F> {
    /// Nothing summed yet, for a step of `context`, in `spare`'s buffers.
    fn new(context: &StepContext<'_, F>, spare: Spare<F>) -> Self {
        let (d, k) = (context.d, context.k);
        let (full, incremental) = if context.incremental { (0, k) } else { (k, 0) };
        let Spare {
            mut sums,
            mut moved,
        } = spare;
        // A step either sums its rows or updates the last step's sums: the
        // buffer it does not use is let go, not kept beside the other.
        match context.incremental {
            false => {
                sums.clear();
                sums.resize(full * d, F::zero());
                moved = Vec::new();
            }
            true => {
                sums = Vec::new();
                if moved.len() != incremental * d {
                    moved.clear();
                }
            }
        }
        ChunkSums {
            sums,
            counts: vec![0; full],
            // Made when the first row moves: in most bounded steps, most
            // chunks move none.
            moved,
            moved_counts: Vec::new(),
            touched: Vec::new(),
            is_touched: Vec::new(),
            clusters: incremental,
            changed: 0,
            inertia: context.extras.inertia.then_some(0.0),
            within: vec![0.0; if context.extras.within { k } else { 0 }],
            unsummed: 0,
            active: 0,
            exact: 0,
            guessed: 0,
            reuse_reads: 0,
            max_abs: 0.0,
            finite: true,
        }
    }

    /// Moves `row`'s weight from cluster `old` to cluster `new` (a step
    /// that updates the last step's sums; `old != new`). Inlined into the
    /// chunk's step, so that it runs in the step's vectors.
    #[inline(always)]
    fn move_row(&mut self, row: &[F], old: u32, new: u32) {
        let d = row.len();
        if self.moved_counts.is_empty() {
            self.moved.resize(self.clusters * d, 0.0);
            self.moved_counts = vec![0; self.clusters];
            self.is_touched = vec![false; self.clusters];
        }
        for j in [old, new] {
            if !self.is_touched[j as usize] {
                self.is_touched[j as usize] = true;
                self.touched.push(j);
            }
        }
        let (old, new) = (old as usize, new as usize);
        // Two clusters' rows, one after the other: each element takes the
        // same operation as feature by feature.
        for (m, &v) in self.moved[old * d..(old + 1) * d].iter_mut().zip(row) {
            *m -= v.as_f64();
        }
        for (m, &v) in self.moved[new * d..(new + 1) * d].iter_mut().zip(row) {
            *m += v.as_f64();
        }
        self.moved_counts[old] -= 1;
        self.moved_counts[new] += 1;
    }
}
