//! `numpy`, `sklearn` and `sklearn-elkan`: Python contenders, run in an
//! embedded CPython.
//!
//! The interpreter is the one this crate was built against (the build script
//! sets an rpath to its libpython). Its packages come only from the
//! project-local environment (`.venv`, or `$KMEANS_PYTHON_ENV`) built from the
//! pinned `python/requirements.txt`: the interpreter's own site-packages are
//! taken off `sys.path`, so the versions measured are the pinned ones. When
//! the environment or a package is missing, the contenders are unavailable
//! with the reason, and everything else runs.
//!
//! The Python sources are files of their own beside this one, imported once
//! per process. Data is handed over once per problem as a C-contiguous
//! float64 array, before any timing.

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::OnceLock;

use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::{contender_error, Contender, FitOutput, Problem, Unavailable};
use crate::error::Result;
use ndarray::Array1;

/// The Python sources, each a module.
const HARNESS: &str = include_str!("python/harness.py");
const NUMPY_KMEANS: &str = include_str!("python/numpy_kmeans.py");
const SKLEARN_KMEANS: &str = include_str!("python/sklearn_kmeans.py");

/// Run once, before any import: keep only the project environment's packages.
const ISOLATE: &str = r#"
import site, sys
base = set(site.getsitepackages()) | {site.getusersitepackages()}
sys.path[:] = [p for p in sys.path if p not in base]
site.addsitedir(env_site)
if not getattr(sys, "argv", None):
    sys.argv = ["pythonvsrust-kmeans"]
"#;

/// The imported modules, once per process.
struct Runtime {
    harness: Py<PyModule>,
    numpy_kmeans: Py<PyModule>,
    sklearn_kmeans: Py<PyModule>,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// The project's Python environment: `$KMEANS_PYTHON_ENV`, else `.venv` in the crate.
pub fn environment_dir() -> PathBuf {
    match std::env::var_os("KMEANS_PYTHON_ENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"),
    }
}

fn runtime() -> std::result::Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(start_runtime)
        .as_ref()
        .map_err(Clone::clone)
}

fn start_runtime() -> std::result::Result<Runtime, String> {
    let env = environment_dir();
    if !env.join("pyvenv.cfg").is_file() {
        return Err(format!(
            "no Python environment at {} (create it with scripts/python-env.sh)",
            env.display()
        ));
    }
    Python::attach(|py| {
        let version = py.version_info();
        let site = env.join(format!(
            "lib/python{}.{}/site-packages",
            version.major, version.minor
        ));
        if !site.is_dir() {
            return Err(format!(
                "the environment at {} has no packages for the embedded Python {}.{}",
                env.display(),
                version.major,
                version.minor
            ));
        }
        let python_error = |e: PyErr| e.to_string();
        let locals = PyDict::new(py);
        locals
            .set_item("env_site", site.to_string_lossy())
            .map_err(python_error)?;
        py.run(&c_string(ISOLATE), Some(&locals), None)
            .map_err(python_error)?;
        let load = |code: &str, name: &str| -> std::result::Result<Py<PyModule>, String> {
            PyModule::from_code(
                py,
                &c_string(code),
                &c_string(&format!("{name}.py")),
                &c_string(name),
            )
            .map(Bound::unbind)
            .map_err(python_error)
        };
        Ok(Runtime {
            harness: load(HARNESS, "harness")?,
            numpy_kmeans: load(NUMPY_KMEANS, "numpy_kmeans")?,
            sklearn_kmeans: load(SKLEARN_KMEANS, "sklearn_kmeans")?,
        })
    })
}

fn c_string(text: &str) -> CString {
    CString::new(text).expect("Python sources and paths have no NUL byte")
}

/// Which Python implementation a [`PythonKMeans`] calls.
#[derive(Debug, Clone, Copy)]
enum Library {
    /// `numpy_kmeans.kmeans(X, init, max_iter)`.
    Numpy,
    /// `sklearn_kmeans.kmeans(X, init, max_iter, algorithm)`.
    Sklearn { algorithm: &'static str },
}

/// Data handed to Python for one problem.
struct Prepared {
    x: Py<PyArray2<f64>>,
    init: Py<PyArray2<f64>>,
    max_iter: usize,
    pools: String,
}

/// A k-means in Python, called through the embedded interpreter.
pub struct PythonKMeans {
    name: &'static str,
    library: Library,
    runtime: &'static Runtime,
    prepared: Option<Prepared>,
    environment: Vec<(String, String)>,
}

impl PythonKMeans {
    fn new(name: &'static str, library: Library) -> std::result::Result<Self, Unavailable> {
        let runtime = runtime().map_err(|reason| Unavailable { name, reason })?;
        Ok(PythonKMeans {
            name,
            library,
            runtime,
            prepared: None,
            environment: Vec::new(),
        })
    }

    /// The textbook NumPy k-means (`numpy`).
    pub fn numpy() -> std::result::Result<Self, Unavailable> {
        Self::new("numpy", Library::Numpy)
    }

    /// scikit-learn's `KMeans` with `algorithm` (`lloyd` or `elkan`).
    pub fn sklearn(
        name: &'static str,
        algorithm: &'static str,
    ) -> std::result::Result<Self, Unavailable> {
        Self::new(name, Library::Sklearn { algorithm })
    }

    fn error(&self, e: impl std::fmt::Display) -> crate::error::Error {
        contender_error(self.name, e)
    }

    /// The function to call and its arguments.
    fn call<'py>(&self, py: Python<'py>) -> Result<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let prepared = self
            .prepared
            .as_ref()
            .ok_or_else(|| self.error("fit before prepare"))?;
        let x = prepared.x.bind(py).clone().into_any();
        let init = prepared.init.bind(py).clone().into_any();
        let to_error = |e: PyErr| self.error(e);
        let max_iter = prepared.max_iter;
        let (module, args) = match self.library {
            Library::Numpy => (
                &self.runtime.numpy_kmeans,
                (x, init, max_iter).into_pyobject(py),
            ),
            Library::Sklearn { algorithm } => (
                &self.runtime.sklearn_kmeans,
                (x, init, max_iter, algorithm).into_pyobject(py),
            ),
        };
        let function = module.bind(py).getattr("kmeans").map_err(to_error)?;
        Ok((function, args.map_err(to_error)?))
    }
}

impl Contender for PythonKMeans {
    fn name(&self) -> &'static str {
        self.name
    }

    fn prepare(&mut self, problem: &Problem) -> Result<()> {
        let harness = &self.runtime.harness;
        let name = self.name;
        let result = Python::attach(|py| -> PyResult<(Prepared, Vec<(String, String)>)> {
            let harness = harness.bind(py);
            let pools = harness.call_method1("set_threads", (problem.threads,))?;
            let pools = pools.str()?.to_string();
            let x = problem.x.to_pyarray(py);
            let x = harness
                .call_method1("as_c_float64", (x,))?
                .cast_into::<PyArray2<f64>>()?;
            let init = problem.init.to_pyarray(py);
            let environment: Vec<(String, String)> = python_environment(harness)?
                .into_iter()
                .map(|(k, v)| (format!("{name}.{k}"), v))
                .collect();
            Ok((
                Prepared {
                    x: x.unbind(),
                    init: init.unbind(),
                    max_iter: problem.max_iter,
                    pools,
                },
                environment,
            ))
        });
        let (prepared, mut environment) = result.map_err(|e| self.error(e))?;
        environment.push((format!("{name}.thread_pools"), prepared.pools.clone()));
        environment.push((
            format!("{name}.stopping_rule"),
            "no label changed (tol = 0)".to_string(),
        ));
        self.environment = environment;
        self.prepared = Some(prepared);
        Ok(())
    }

    fn fit(&mut self) -> Result<FitOutput> {
        Python::attach(|py| {
            let (function, args) = self.call(py)?;
            let result = function.call1(args).map_err(|e| self.error(e))?;
            let (centers, labels, n_iter): (PyReadonlyArray2<f64>, Bound<PyAny>, usize) =
                result.extract().map_err(|e: PyErr| self.error(e))?;
            let labels = match labels.extract::<PyReadonlyArray1<i32>>() {
                Ok(l) => l.as_array().mapv(|v| v as u32),
                Err(_) => labels
                    .extract::<PyReadonlyArray1<i64>>()
                    .map_err(|e| self.error(e))?
                    .as_array()
                    .mapv(|v| v as u32),
            };
            Ok(FitOutput {
                centroids: centers.as_array().to_owned(),
                labels: Some(Array1::from(labels)),
                n_iter,
                pass_distances: None,
                pass_f32_distances: None,
                pass_rows: None,
            })
        })
    }

    fn environment(&self) -> Vec<(String, String)> {
        self.environment.clone()
    }

    fn runs_in_python(&self) -> bool {
        true
    }

    fn traced_peak_bytes(&mut self) -> Result<Option<u64>> {
        Python::attach(|py| {
            let (function, args) = self.call(py)?;
            let mut all = vec![function];
            all.extend(args.iter());
            let peak = self
                .runtime
                .harness
                .bind(py)
                .call_method1(
                    "traced_peak",
                    PyTuple::new(py, all).map_err(|e| self.error(e))?,
                )
                .and_then(|p| p.extract::<u64>())
                .map_err(|e| self.error(e))?;
            Ok(Some(peak))
        })
    }
}

/// The versions the embedded interpreter really loaded, or why it cannot run.
pub fn loaded_versions() -> std::result::Result<Vec<(String, String)>, String> {
    let runtime = runtime()?;
    Python::attach(|py| -> PyResult<Vec<(String, String)>> {
        python_environment(runtime.harness.bind(py))
    })
    .map_err(|e| e.to_string())
}

/// `harness.environment()`: Python, NumPy, scikit-learn and threadpoolctl
/// versions and the interpreter's prefix, as key-value pairs.
fn python_environment(harness: &Bound<'_, PyModule>) -> PyResult<Vec<(String, String)>> {
    harness
        .call_method0("environment")?
        .cast_into::<PyDict>()?
        .iter()
        .map(|(k, v)| Ok((k.str()?.to_string(), v.str()?.to_string())))
        .collect()
}
