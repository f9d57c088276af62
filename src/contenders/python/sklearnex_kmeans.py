"""scikit-learn-intelex's KMeans (oneDAL) under the study's protocol: the
given initial centroids, one run, tolerance 0, the same cap on iterations.

``inspect`` runs one fit with the extension's logger listening and refuses a
fall-back to stock scikit-learn, so the figures are oneDAL's."""

import logging
import warnings

import daal4py
from sklearnex.cluster import KMeans

ACCELERATED = "running accelerated version"

# Called from a thread other than Python's main one (as in the test
# harness), the extension warns that it runs on oneDAL's own thread count,
# which ``prepare`` sets with ``daalinit``.
warnings.filterwarnings("ignore", message="'Threading' parallel backend", category=UserWarning)


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _fit(X, init, max_iter):
    model = KMeans(
        n_clusters=init.shape[0],
        init=init.copy(),
        n_init=1,
        max_iter=max_iter,
        tol=0.0,
        algorithm="lloyd",
    )
    model.fit(X)
    return model


def prepare(X, init, max_iter, threads, fixed_iterations):
    """Sets oneDAL's threads."""
    daal4py.daalinit(int(threads))
    facts = {
        "onedal_threads": str(daal4py.num_threads()),
        "stopping_rule": "tol = 0, as scikit-learn",
    }
    return (X, init, max_iter), facts


def inspect(state):
    """One fit with the extension's logger listening: an error unless it ran
    on oneDAL."""
    logger = logging.getLogger("sklearnex")
    messages = _Messages()
    saved = (logger.level, logger.handlers, logger.propagate)
    # Only this handler listens, so nothing is printed.
    logger.handlers, logger.propagate = [messages], False
    logger.setLevel(logging.INFO)
    try:
        _fit(*state)
    finally:
        logger.setLevel(saved[0])
        logger.handlers, logger.propagate = saved[1], saved[2]
    fit_messages = [m for m in messages.messages if "KMeans.fit" in m]
    if not any(ACCELERATED in m for m in fit_messages):
        raise RuntimeError(
            "scikit-learn-intelex fell back to stock scikit-learn: "
            + ("; ".join(fit_messages) or "no message from its logger")
        )
    return {"path": "oneDAL (the extension's logger: running accelerated version on CPU)"}


def fit(state):
    """Returns (centers, labels, n_iter)."""
    model = _fit(*state)
    return model.cluster_centers_, model.labels_, int(model.n_iter_)
