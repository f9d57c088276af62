//! The Python contenders, run in an embedded CPython: one generic contender
//! over the modules under `python/`, each named by a registry line.
//!
//! The interpreter is the one this crate was built against (the build script
//! sets an rpath to its libpython). Its packages come only from the
//! project-local environment (`.venv`, or `$KMEANS_PYTHON_ENV`) built from the
//! pinned `python/requirements.txt`: the interpreter's own site-packages are
//! taken off `sys.path`, so the versions measured are the pinned ones. The
//! harness is imported once per process; each contender's module on its own,
//! the first time a contender needs it, so a missing package makes only the
//! contenders that import it unavailable, with the reason.
//!
//! Data is handed over once per problem as a C-contiguous array of the
//! problem's float type, before any timing; the module's `prepare` does any conversion it needs
//! (faiss's float32) there too.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use numpy::{PyReadonlyArray1, PyReadonlyArray2, ToPyArray};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{contender_error, Contender, FitOutput, Problem, PythonModule, Unavailable};
use crate::error::Result;

/// What the Rust side calls around every Python contender.
const HARNESS: &str = include_str!("python/harness.py");

/// Run once, before any import: keep only the project environment's packages.
const ISOLATE: &str = r#"
import site, sys
base = set(site.getsitepackages()) | {site.getusersitepackages()}
sys.path[:] = [p for p in sys.path if p not in base]
site.addsitedir(env_site)
if not getattr(sys, "argv", None):
    sys.argv = ["pythonvsrust-kmeans"]
"#;

/// The harness, imported once per process (or why the interpreter cannot run).
static HARNESS_MODULE: OnceLock<std::result::Result<Py<PyModule>, String>> = OnceLock::new();

/// A module, or why it cannot be imported.
type Imported = std::result::Result<Py<PyModule>, String>;

/// Each contender module, imported once per process.
static MODULES: OnceLock<Mutex<HashMap<&'static str, Imported>>> = OnceLock::new();

/// Key-value facts for the record.
type Facts = Vec<(String, String)>;

/// The project's Python environment: `$KMEANS_PYTHON_ENV`, else `.venv` in the crate.
pub fn environment_dir() -> PathBuf {
    match std::env::var_os("KMEANS_PYTHON_ENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"),
    }
}

fn harness() -> std::result::Result<&'static Py<PyModule>, String> {
    HARNESS_MODULE
        .get_or_init(start_interpreter)
        .as_ref()
        .map_err(Clone::clone)
}

fn start_interpreter() -> std::result::Result<Py<PyModule>, String> {
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
        PyModule::from_code(
            py,
            &c_string(HARNESS),
            &c_string("harness.py"),
            &c_string("harness"),
        )
        .map(Bound::unbind)
        .map_err(python_error)
    })
}

/// The contender module `module`, imported through the harness (which notes
/// the packages it brings, for [`python_environment`]).
fn module(module: PythonModule) -> std::result::Result<Py<PyModule>, String> {
    let harness = harness()?;
    let modules = MODULES.get_or_init(Default::default);
    let mut modules = modules
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    modules
        .entry(module.name)
        .or_insert_with(|| {
            Python::attach(|py| {
                harness
                    .bind(py)
                    .call_method1("load", (module.name, module.source))
                    .and_then(|m| m.cast_into::<PyModule>().map_err(PyErr::from))
                    .map(Bound::unbind)
                    .map_err(|e| e.to_string())
            })
        })
        .as_ref()
        .map(|m| Python::attach(|py| m.clone_ref(py)))
        .map_err(Clone::clone)
}

fn c_string(text: &str) -> CString {
    CString::new(text).expect("Python sources and paths have no NUL byte")
}

/// A k-means in Python, called through the embedded interpreter.
pub struct PythonKMeans {
    name: &'static str,
    spec: PythonModule,
    harness: &'static Py<PyModule>,
    module: Py<PyModule>,
    /// What the module's `prepare` returned, for its `fit`.
    state: Option<Py<PyAny>>,
    environment: Vec<(String, String)>,
}

impl PythonKMeans {
    /// The contender `name` over `spec`'s module, or why it cannot run here
    /// (no environment, or the module's import failed).
    pub fn new(name: &'static str, spec: PythonModule) -> std::result::Result<Self, Unavailable> {
        let unavailable = |reason| Unavailable { name, reason };
        let harness = harness().map_err(unavailable)?;
        let module = module(spec).map_err(unavailable)?;
        Ok(PythonKMeans {
            name,
            spec,
            harness,
            module,
            state: None,
            environment: Vec::new(),
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> crate::error::Error {
        contender_error(self.name, e)
    }

    /// The module's `fit` and its one argument, the prepared state.
    fn call<'py>(&self, py: Python<'py>) -> Result<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let state = self
            .state
            .as_ref()
            .ok_or_else(|| self.error("fit before prepare"))?;
        let function = self
            .module
            .bind(py)
            .getattr("fit")
            .map_err(|e| self.error(e))?;
        Ok((function, state.bind(py).clone()))
    }
}

impl Contender for PythonKMeans {
    fn name(&self) -> &'static str {
        self.name
    }

    fn prepare(&mut self, problem: &Problem) -> Result<()> {
        let name = self.name;
        let result = Python::attach(|py| -> PyResult<(Py<PyAny>, Facts)> {
            let harness = self.harness.bind(py);
            let pools = harness.call_method1("set_threads", (problem.threads,))?;
            let pools = pools.str()?.to_string();
            // Handed over once, C-contiguous, in the problem's float type.
            let (x, init) = match &problem.x32 {
                Some(x32) => (
                    x32.to_pyarray(py).into_any(),
                    problem.init.mapv(|v| v as f32).to_pyarray(py).into_any(),
                ),
                None => (
                    problem.x.to_pyarray(py).into_any(),
                    problem.init.to_pyarray(py).into_any(),
                ),
            };
            let x = harness.call_method1("as_c", (x, problem.dtype().name()))?;
            let options = PyDict::new(py);
            for (key, value) in self.spec.options {
                options.set_item(key, value)?;
            }
            let (state, facts): (Bound<PyAny>, Bound<PyDict>) = self
                .module
                .bind(py)
                .getattr("prepare")?
                .call(
                    (
                        x,
                        init,
                        problem.max_iter,
                        problem.threads,
                        problem.fixed_iterations,
                    ),
                    Some(&options),
                )?
                .extract()?;
            let mut environment = python_environment(harness, Some(self.spec.name))?;
            environment.push(("thread_pools".into(), pools));
            environment.extend(pairs(&facts)?);
            Ok((state.unbind(), prefixed(name, environment)))
        });
        let (state, environment) = result.map_err(|e| self.error(e))?;
        self.environment = environment;
        self.state = Some(state);
        Ok(())
    }

    fn inspect(&mut self) -> Result<()> {
        let name = self.name;
        let found = Python::attach(|py| -> Result<Vec<(String, String)>> {
            let module = self.module.bind(py);
            if !module.hasattr("inspect").map_err(|e| self.error(e))? {
                return Ok(Vec::new());
            }
            let state = self
                .state
                .as_ref()
                .ok_or_else(|| self.error("inspect before prepare"))?;
            let facts = module
                .call_method1("inspect", (state.bind(py),))
                .and_then(|f| Ok(f.cast_into::<PyDict>()?))
                .and_then(|f| pairs(&f))
                .map_err(|e| self.error(e))?;
            Ok(prefixed(name, facts))
        })?;
        self.environment.extend(found);
        Ok(())
    }

    fn fit(&mut self) -> Result<FitOutput> {
        Python::attach(|py| {
            let (function, state) = self.call(py)?;
            let result = function.call1((state,)).map_err(|e| self.error(e))?;
            let (centers, labels, n_iter): (Bound<PyAny>, Bound<PyAny>, usize) =
                result.extract().map_err(|e: PyErr| self.error(e))?;
            let centers = self
                .harness
                .bind(py)
                .call_method1("as_c", (centers, "float64"))
                .and_then(|c| Ok(c.extract::<PyReadonlyArray2<f64>>()?))
                .map_err(|e| self.error(e))?;
            let labels = if labels.is_none() {
                None
            } else if let Ok(l) = labels.extract::<PyReadonlyArray1<i32>>() {
                Some(l.as_array().mapv(|v| v as u32))
            } else {
                Some(
                    labels
                        .extract::<PyReadonlyArray1<i64>>()
                        .map_err(|e| self.error(e))?
                        .as_array()
                        .mapv(|v| v as u32),
                )
            };
            Ok(FitOutput {
                centroids: centers.as_array().to_owned(),
                labels,
                n_iter,
                work: None,
            })
        })
    }

    fn environment(&self) -> Vec<(String, String)> {
        self.environment.clone()
    }

    fn traced_peak_bytes(&mut self) -> Result<Option<u64>> {
        Python::attach(|py| {
            let (function, state) = self.call(py)?;
            let peak = self
                .harness
                .bind(py)
                .call_method1("traced_peak", (function, state))
                .and_then(|p| p.extract::<u64>())
                .map_err(|e| self.error(e))?;
            Ok(Some(peak))
        })
    }
}

/// The versions the embedded interpreter really loaded: Python and the
/// packages every contender module imported so far (all of them when
/// `module` is `None`), or why it cannot run.
pub fn loaded_versions(module: Option<&str>) -> std::result::Result<Vec<(String, String)>, String> {
    let harness = harness()?;
    Python::attach(|py| python_environment(harness.bind(py), module)).map_err(|e| e.to_string())
}

/// `harness.environment(module)` as key-value pairs.
fn python_environment(
    harness: &Bound<'_, PyModule>,
    module: Option<&str>,
) -> PyResult<Vec<(String, String)>> {
    pairs(
        &harness
            .call_method1("environment", (module,))?
            .cast_into::<PyDict>()?,
    )
}

/// Environment pairs named under the contender's `name`.
fn prefixed(name: &str, pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(k, v)| (format!("{name}.{k}"), v))
        .collect()
}

/// A dict's items as strings.
fn pairs(dict: &Bound<'_, PyDict>) -> PyResult<Vec<(String, String)>> {
    dict.iter()
        .map(|(k, v)| Ok((k.str()?.to_string(), v.str()?.to_string())))
        .collect()
}
