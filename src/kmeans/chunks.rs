//! A fixed partition of the rows into chunks, so that results do not depend on
//! the thread count, and of chunks into blocks of [`BLOCK_ROWS`].
//!
//! Floating-point sums depend on their order. Every parallel pass splits the
//! rows at the same boundaries (a function of `n_samples` only), computes one
//! partial result per chunk, and merges the partials in chunk order. Any
//! thread count then gives bit-identical centroids, potentials and inertia.

/// The fewest rows in a chunk; smaller data runs in one chunk.
const MIN_CHUNK_ROWS: usize = 512;

/// The most chunks a pass of a fit is split into. Each chunk costs a task,
/// its partial sums and its buffers, whatever its rows, which shows where
/// the bounds leave little work a row; sixty-four still gives each of a few
/// threads many chunks to balance (measurements in `docs/tuning.md`).
const MAX_CHUNKS: usize = 64;

/// The most chunks k-means++ splits the rows into (see
/// [`seeding_chunk_rows`]).
const MAX_SEEDING_CHUNKS: usize = 256;

/// Rows per chunk of a fit's passes over `n_samples` rows.
pub fn chunk_rows(n_samples: usize) -> usize {
    rows_for(n_samples, MAX_CHUNKS)
}

/// Rows per chunk of k-means++ over `n_samples` rows. Its draws search the
/// per-chunk potentials, so the chunks decide which rows are drawn: they
/// are kept as they were first chosen, so that the seeded initial
/// centroids (and the cached data sets that hold them) never change.
pub fn seeding_chunk_rows(n_samples: usize) -> usize {
    rows_for(n_samples, MAX_SEEDING_CHUNKS)
}

fn rows_for(n_samples: usize, max_chunks: usize) -> usize {
    n_samples.div_ceil(max_chunks).max(MIN_CHUNK_ROWS)
}

/// Rows a step takes at a time within a chunk (a block): assigned, then
/// added to their sums while in the first-level cache. One bit each in a
/// `u64` marks which of a block's rows are settled.
pub const BLOCK_ROWS: usize = 64;

/// The rows among the first `n` of a block whose bit in `settled` is
/// clear, in order.
pub fn unsettled(settled: u64, n: usize) -> impl Iterator<Item = usize> {
    let rows = if n >= 64 { u64::MAX } else { (1 << n) - 1 };
    let mut left = !settled & rows;
    std::iter::from_fn(move || {
        (left != 0).then(|| {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            i
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_all_rows_and_stay_bounded() {
        for (rows_of, max) in [
            (chunk_rows as fn(usize) -> usize, MAX_CHUNKS),
            (seeding_chunk_rows, MAX_SEEDING_CHUNKS),
        ] {
            for n in [1, 511, 512, 513, 10_000, 1_000_000, 1_000_003] {
                let rows = rows_of(n);
                let count = n.div_ceil(rows);
                assert!(rows >= MIN_CHUNK_ROWS);
                assert!(count <= max);
                assert!(count * rows >= n);
                assert!((count - 1) * rows < n);
            }
        }
    }

    #[test]
    fn seeding_chunks_are_as_first_chosen() {
        assert_eq!(seeding_chunk_rows(10_000), 512);
        assert_eq!(seeding_chunk_rows(100_000), 512);
        assert_eq!(seeding_chunk_rows(1_000_000), 3907);
    }
}
