//! A fixed partition of the rows into chunks, so that results do not depend on
//! the thread count.
//!
//! Floating-point sums depend on their order. Every parallel pass splits the
//! rows at the same boundaries (a function of `n_samples` only), computes one
//! partial result per chunk, and merges the partials in chunk order. Any
//! thread count then gives bit-identical centroids, potentials and inertia.

/// The fewest rows in a chunk; smaller data runs in one chunk.
const MIN_CHUNK_ROWS: usize = 512;
/// The most chunks a pass is split into (bounds the memory of partial sums).
const MAX_CHUNKS: usize = 256;

/// Rows per chunk for `n_samples` rows.
pub fn chunk_rows(n_samples: usize) -> usize {
    n_samples.div_ceil(MAX_CHUNKS).max(MIN_CHUNK_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_all_rows_and_stay_bounded() {
        for n in [1, 511, 512, 513, 10_000, 1_000_000, 1_000_003] {
            let rows = chunk_rows(n);
            let count = n.div_ceil(rows);
            assert!(rows >= MIN_CHUNK_ROWS);
            assert!(count <= MAX_CHUNKS);
            assert!(count * rows >= n);
            assert!((count - 1) * rows < n);
        }
    }
}
