"""What the Rust side calls around every Python contender: thread limits,
versions, C-contiguous hand-over, and tracemalloc peaks."""

import platform
import sys
import tracemalloc

import numpy as np

_limits = None


def set_threads(n):
    """Limits OpenMP and BLAS pools to ``n`` threads for the rest of the
    process; returns the pools as threadpoolctl then sees them."""
    global _limits
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=n)
    return pools()


def pools():
    from threadpoolctl import threadpool_info

    return [
        {
            "user_api": str(p.get("user_api")),
            "internal_api": str(p.get("internal_api")),
            "num_threads": int(p.get("num_threads", 0)),
            "version": str(p.get("version")),
            "architecture": str(p.get("architecture", "")),
            "threading_layer": str(p.get("threading_layer", "")),
        }
        for p in threadpool_info()
    ]


def environment():
    import sklearn
    import threadpoolctl

    return {
        "python": platform.python_version(),
        "python_prefix": sys.prefix,
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "threadpoolctl": threadpoolctl.__version__,
    }


def as_c_float64(x):
    """The array as NumPy's C-contiguous float64 (no copy when it already is)."""
    return np.ascontiguousarray(x, dtype=np.float64)


def traced_peak(fn, *args):
    """Runs ``fn(*args)`` under tracemalloc; returns the peak traced bytes."""
    tracemalloc.start()
    try:
        fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak
