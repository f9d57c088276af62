//! A fixed partition of the rows into chunks, so that results do not depend on
//! the thread count, and of chunks into blocks of [`BLOCK_ROWS`]; and whether
//! a fit's chunks run in a pool or one after another on the calling thread.
//!
//! Floating-point sums depend on their order. Every parallel pass splits the
//! rows at the same boundaries (a function of `n_samples` only), computes one
//! partial result per chunk, and merges the partials in chunk order. Any
//! thread count then gives bit-identical centroids, potentials and inertia.

use std::cell::Cell;

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

thread_local! {
    /// Whether this thread is running a fit on itself (see
    /// [`on_calling_thread`]).
    static CALLING_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `fit` on the calling thread, every pass's chunks one after another
/// there: no task is handed to a pool (see [`task_min_len`]). Handing a fit
/// to a pool's thread and waking the caller after costs tens of
/// microseconds, more than a second thread saves on a small fit, and all
/// of it where the fit has one thread anyway.
pub fn on_calling_thread<T>(fit: impl FnOnce() -> T) -> T {
    /// Puts the flag back however `fit` ends (a fit may be nested in one).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALLING_THREAD.set(self.0);
        }
    }
    let _restore = Restore(CALLING_THREAD.replace(true));
    fit()
}

/// The fewest items a task of a fit's parallel iterators takes
/// (`with_min_len`): all of them while the fit runs on the calling thread,
/// so that rayon never splits one off to a pool, else one.
pub fn task_min_len() -> usize {
    if CALLING_THREAD.get() {
        usize::MAX
    } else {
        1
    }
}

/// Whether the calling thread is one of a rayon pool of exactly `threads`
/// threads: a fit asking for that many runs there, handing nothing over.
pub fn in_pool_of(threads: usize) -> bool {
    rayon::current_thread_index().is_some() && rayon::current_num_threads() == threads
}

/// The threads a fit's passes share: one on the calling thread, else the
/// current pool's.
pub fn threads() -> usize {
    if CALLING_THREAD.get() {
        1
    } else {
        rayon::current_num_threads()
    }
}

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

    /// On the calling thread no task leaves it, even from within a pool
    /// whose other threads would otherwise steal half the items; the flag
    /// is put back after, however the fit ends.
    #[test]
    fn fits_on_the_calling_thread_keep_every_task_there() {
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let threads_of_items = || {
            let mut ids: Vec<_> = (0..1000)
                .into_par_iter()
                .with_min_len(task_min_len())
                .map(|_| {
                    std::thread::sleep(std::time::Duration::from_micros(10));
                    std::thread::current().id()
                })
                .collect();
            ids.dedup();
            ids
        };
        pool.install(|| {
            let here = std::thread::current().id();
            assert_eq!(on_calling_thread(threads_of_items), vec![here]);
            assert_eq!(on_calling_thread(threads), 1);
            assert!(threads_of_items().len() > 1, "the pool shares the items");
            assert_eq!(threads(), 2);
        });
        let nested = on_calling_thread(|| (on_calling_thread(task_min_len), task_min_len()));
        assert_eq!(nested, (usize::MAX, usize::MAX));
        assert_eq!(task_min_len(), 1);
        let failed = std::panic::catch_unwind(|| on_calling_thread(|| panic!("a failed fit")));
        assert!(failed.is_err());
        assert_eq!(task_min_len(), 1);
    }

    #[test]
    fn seeding_chunks_are_as_first_chosen() {
        assert_eq!(seeding_chunk_rows(10_000), 512);
        assert_eq!(seeding_chunk_rows(100_000), 512);
        assert_eq!(seeding_chunk_rows(1_000_000), 3907);
    }
}
