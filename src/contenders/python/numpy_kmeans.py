"""A textbook k-means in NumPy: the baseline of the study.

Lloyd's algorithm with the rules the other contenders follow: start from the
given centroids, assign each sample to its nearest centroid (lowest index on
ties), move each centroid to the mean of its samples, give an empty cluster
the sample farthest from its centroid (as scikit-learn does), and stop when no
label changes or after ``max_iter`` iterations.

Runnable on its own::

    python3 numpy_kmeans.py DATA.npy INIT.npy [MAX_ITER]
"""

import sys

import numpy as np


def assign(X, centers):
    """Nearest centroid of every row: argmin of ||c||^2 - 2 x.c (an n x k
    matrix, never n x k x d)."""
    scores = np.einsum("ij,ij->i", centers, centers)[np.newaxis, :] - 2.0 * (X @ centers.T)
    return np.argmin(scores, axis=1)


def update(X, labels, old_centers):
    """Means of the clusters; empty clusters take the farthest samples."""
    k = old_centers.shape[0]
    counts = np.bincount(labels, minlength=k).astype(X.dtype)
    sums = np.zeros_like(old_centers)
    for j in range(k):
        members = labels == j
        if counts[j] > 0:
            sums[j] = X[members].sum(axis=0)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        distances = ((X - old_centers[labels]) ** 2).sum(axis=1)
        # Farthest first; the lower index first among equals.
        farthest = np.lexsort((np.arange(distances.size), -distances))[: empty.size]
        for j, far in zip(empty, farthest):
            sums[labels[far]] -= X[far]
            counts[labels[far]] -= 1
            sums[j] = X[far]
            counts[j] = 1
    scale = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 1.0)
    return sums * scale[:, np.newaxis]


def kmeans(X, init, max_iter=300):
    """Returns (centers, labels, n_iter)."""
    centers = np.array(init, dtype=X.dtype, copy=True)
    labels = np.full(X.shape[0], -1, dtype=np.intp)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_labels = assign(X, centers)
        changed = not np.array_equal(new_labels, labels)
        labels = new_labels
        centers = update(X, labels, centers)
        if not changed:
            converged = True
            break
    if not converged:
        labels = assign(X, centers)
    return centers, labels, n_iter


def prepare(X, init, max_iter, threads, fixed_iterations):
    """The state ``fit`` takes, and facts for the record."""
    return (X, init, max_iter), {"stopping_rule": "no label changed (tol = 0)"}


def fit(state):
    """Returns (centers, labels, n_iter)."""
    return kmeans(*state)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    X = np.load(argv[1], allow_pickle=False)
    init = np.load(argv[2], allow_pickle=False)
    max_iter = int(argv[3]) if len(argv) > 3 else 300
    centers, labels, n_iter = kmeans(np.ascontiguousarray(X, dtype=np.float64), init, max_iter)
    inertia = float(((X - centers[labels]) ** 2).sum())
    print(f'{{"n_iter": {n_iter}, "inertia": {inertia!r}}}')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
