"""faiss's Kmeans from the shared initial centroids.

faiss computes in float32 only: the data and centroids are converted once
here, outside timing. It has no "stop when no label changes" rule: it is
given the count exact Lloyd needed from this start as its number of
iterations, and stops earlier only when its float32 objective is unchanged
from one iteration to the next (its own rule, which cannot be switched off;
the iterations it ran are recorded). Subsampling is off (by default faiss trains on at most 256
points per centroid), and so is its minimum cluster size warning. Where a
cluster empties, faiss splits a large one instead of taking the farthest
sample; the splits are counted."""

import faiss
import numpy as np


def _train(state):
    x32, init32, n, d, k, iterations = state
    kmeans = faiss.Kmeans(
        d,
        k,
        niter=iterations,
        nredo=1,
        verbose=False,
        spherical=False,
        min_points_per_centroid=1,
        max_points_per_centroid=n // k + 1,
        seed=0,
    )
    kmeans.train(x32, init_centroids=init32)
    return kmeans


def prepare(X, init, max_iter, threads, fixed_iterations):
    """float32 copies, faiss's OpenMP threads and its iteration count."""
    if fixed_iterations is None:
        raise ValueError("faiss needs the exact contenders' iteration count")
    faiss.omp_set_num_threads(int(threads))
    x32 = np.ascontiguousarray(X, dtype=np.float32)
    init32 = np.ascontiguousarray(init, dtype=np.float32)
    n, d = x32.shape
    k = init32.shape[0]
    state = (x32, init32, n, d, k, int(fixed_iterations))
    facts = {
        "dtype": "float32" if X.dtype == np.float32 else "float32 (converted once, outside timing)",
        "omp_threads": str(faiss.omp_get_max_threads()),
        "stopping_rule": f"at most {fixed_iterations} iterations (exact Lloyd's count here), or when its float32 objective is unchanged",
    }
    return state, facts


def inspect(state):
    """One fit, counting the clusters faiss splits to fill empty ones."""
    splits = sum(int(s["nsplit"]) for s in _train(state).iteration_stats)
    return {"empty_cluster_splits": str(splits)}


def fit(state):
    """Returns (centers, None, n_iter): faiss gives no labels without a
    search, which is not part of its fit."""
    kmeans = _train(state)
    return kmeans.centroids, None, len(kmeans.iteration_stats)
