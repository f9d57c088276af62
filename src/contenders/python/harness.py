"""What the Rust side calls around every Python contender: loading each
contender module on its own, thread limits, versions, C-contiguous hand-over,
and tracemalloc peaks."""

import importlib.metadata
import platform
import sys
import tracemalloc
import types

import numpy as np

_limits = None
# The top-level packages each contender module brought in when imported.
_imported = {}


def load(name, source):
    """Imports ``source`` as module ``name``; notes the packages it brought."""
    before = {m.partition(".")[0] for m in sys.modules}
    module = types.ModuleType(name)
    module.__file__ = f"{name}.py"
    exec(compile(source, f"{name}.py", "exec"), module.__dict__)
    after = {m.partition(".")[0] for m in sys.modules}
    _imported[name] = sorted((after - before) | _top_level_imports(module))
    sys.modules[name] = module
    return module


def _top_level_imports(module):
    """Packages the module refers to at its top level (imported earlier by
    another module, so not new in ``sys.modules``)."""
    return {
        value.__name__.partition(".")[0]
        for value in vars(module).values()
        if isinstance(value, types.ModuleType)
    } | (
        {
            getattr(value, "__module__", "").partition(".")[0]
            for value in vars(module).values()
            if isinstance(value, type) and getattr(value, "__module__", None)
        }
        - {"builtins", module.__name__}
    )


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


def environment(module=None):
    """Python, NumPy and threadpoolctl, and the distributions (with versions)
    of the packages ``module`` imported (every loaded module's when None)."""
    import threadpoolctl

    facts = {
        "python": platform.python_version(),
        "python_prefix": sys.prefix,
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "threadpoolctl": threadpoolctl.__version__,
    }
    names = [module] if module is not None else sorted(_imported)
    distributions = importlib.metadata.packages_distributions()
    for name in names:
        for package in _imported.get(name, []):
            for distribution in distributions.get(package, []):
                try:
                    facts[distribution] = importlib.metadata.version(distribution)
                except importlib.metadata.PackageNotFoundError:
                    pass
    return facts


def as_c(x, dtype):
    """The array as NumPy's C-contiguous ``dtype`` (no copy when it already is)."""
    return np.ascontiguousarray(x, dtype=dtype)


def traced_peak(fn, *args):
    """Runs ``fn(*args)`` under tracemalloc; returns the peak traced bytes."""
    tracemalloc.start()
    try:
        fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak
