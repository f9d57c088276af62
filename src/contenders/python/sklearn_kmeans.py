"""scikit-learn's KMeans under the study's protocol: the given initial
centroids, one run, tolerance 0 (stop when no label changes), the same cap on
iterations."""

from sklearn.cluster import KMeans


def prepare(X, init, max_iter, threads, fixed_iterations, algorithm="lloyd"):
    """The state ``fit`` takes, and facts for the record."""
    return (X, init, max_iter, algorithm), {"stopping_rule": "no label changed (tol = 0)"}


def fit(state):
    """Returns (centers, labels, n_iter). ``init`` is copied: scikit-learn may
    write into the array it is given."""
    X, init, max_iter, algorithm = state
    model = KMeans(
        n_clusters=init.shape[0],
        init=init.copy(),
        n_init=1,
        max_iter=max_iter,
        tol=0.0,
        algorithm=algorithm,
    )
    model.fit(X)
    return model.cluster_centers_, model.labels_, int(model.n_iter_)
