//! The contenders, behind one interface, and their registry.
//!
//! Adding a contender is one file (a type implementing [`Contender`]; for a
//! Python contender, a module under `python/` with its requirement pin) and
//! one line in [`REGISTRY`]. Everything else (bench ids, `compare --impls`,
//! the protocol's tolerances and reference, the report's order and colours,
//! the tests) reads the registry.
//!
//! Every contender gets the same [`Problem`]: the same data, the same initial
//! centroids, the same cap on iterations, the same thread count. The stopping
//! rule is "no label changed" wherever the library allows it; where it does
//! not (linfa, faiss), the difference is measured, not hidden.

mod linfa;
#[cfg(feature = "python")]
pub mod python;
mod rust;

use std::sync::Arc;

use ndarray::{Array1, Array2};

use crate::error::{Error, Result};
use crate::kmeans::KMeansError;

/// Where a contender runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Rust, in this process: its heap is seen by our counting allocator.
    Rust,
    /// The embedded CPython: its memory is traced by `tracemalloc`.
    Python,
}

/// Which rule a contender follows from the shared start, and so how its
/// inertia is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Exact Lloyd (scikit-learn's semantics): the same labels as ours; its
    /// inertia makes the scenario's reference and must match it to
    /// [`EXACT_INERTIA_TOLERANCE`].
    ExactLloyd,
    /// A documented different rule: kept out of the reference, checked at
    /// its own tolerance (how far above the reference it may land).
    Different {
        /// Relative inertia tolerance.
        tolerance: f64,
        /// What differs, in a sentence (shown in the report).
        note: &'static str,
    },
    /// No "no label changed" rule: it is given the iteration count the exact
    /// contenders needed ([`Problem::fixed_iterations`]) as its cap;
    /// otherwise as [`Rule::Different`].
    FixedIterations {
        /// Relative inertia tolerance.
        tolerance: f64,
        /// What differs, in a sentence (shown in the report).
        note: &'static str,
    },
}

/// The relative inertia tolerance of exact-Lloyd contenders.
pub const EXACT_INERTIA_TOLERANCE: f64 = 1e-6;

impl Rule {
    /// How far above the reference inertia a fit may land, relatively.
    pub fn tolerance(self) -> f64 {
        match self {
            Rule::ExactLloyd => EXACT_INERTIA_TOLERANCE,
            Rule::Different { tolerance, .. } | Rule::FixedIterations { tolerance, .. } => {
                tolerance
            }
        }
    }

    /// Whether its inertia makes the scenario's reference.
    pub fn makes_reference(self) -> bool {
        self == Rule::ExactLloyd
    }

    /// What differs from exact Lloyd, if anything.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Rule::ExactLloyd => None,
            Rule::Different { note, .. } | Rule::FixedIterations { note, .. } => Some(note),
        }
    }
}

/// What a contender is there for in the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ours: the figures the study is about.
    Ours,
    /// Ours with a feature switched off, to show what the feature buys.
    Ablation,
    /// The textbook baseline every speed-up is also quoted against.
    Baseline,
    /// A library a practitioner would pick instead.
    Peer,
}

/// A float type data is handed over and computed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Dtype {
    F32,
    #[default]
    F64,
}

impl Dtype {
    /// NumPy's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// A Python contender's module: `python/{name}.py`, imported on its own the
/// first time a contender needs it, so a missing package skips only the
/// contenders that import it. It defines `prepare(X, init, max_iter,
/// threads, fixed_iterations, **options)`, returning what `fit(state)` takes
/// and facts for the record, and may define `inspect(state)`, returning more
/// facts from a fit of its own (see [`Contender::inspect`]).
#[derive(Debug, Clone, Copy)]
pub struct PythonModule {
    /// The module's name (its file is `python/{name}.py`).
    pub name: &'static str,
    /// Its source.
    pub source: &'static str,
    /// Keyword arguments of its `prepare`.
    pub options: &'static [(&'static str, &'static str)],
}

/// How a contender is made.
#[derive(Clone, Copy)]
pub enum Construct {
    /// A Rust contender.
    Rust(fn() -> Box<dyn Contender>),
    /// A Python contender: its module.
    Python(PythonModule),
}

/// One contender of the registry.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Its name in bench ids, results and the report.
    pub name: &'static str,
    /// What it is there for.
    pub role: Role,
    /// Its rule from the shared start.
    pub rule: Rule,
    /// The float types it computes in (given f64 data, one that computes
    /// only in f32 converts it once, outside timing).
    pub dtypes: &'static [Dtype],
    /// How to make it.
    pub construct: Construct,
}

impl Entry {
    /// Where it runs.
    pub fn runtime(&self) -> Runtime {
        match self.construct {
            Construct::Rust(_) => Runtime::Rust,
            Construct::Python(_) => Runtime::Python,
        }
    }
}

macro_rules! python_module {
    ($name:literal $(, $key:literal = $value:literal)*) => {
        Construct::Python(PythonModule {
            name: $name,
            source: include_str!(concat!("python/", $name, ".py")),
            options: &[$(($key, $value)),*],
        })
    };
}

use Dtype::{F32, F64};

/// Every contender, in report order: one line each.
#[rustfmt::skip]
pub static REGISTRY: &[Entry] = &[
    Entry { name: "rust", role: Role::Ours, rule: Rule::ExactLloyd, dtypes: &[F64, F32], construct: Construct::Rust(|| Box::new(rust::RustKMeans::new(true))) },
    Entry { name: "rust-plain", role: Role::Ablation, rule: Rule::ExactLloyd, dtypes: &[F64, F32], construct: Construct::Rust(|| Box::new(rust::RustKMeans::new(false))) },
    Entry { name: "linfa", role: Role::Peer, rule: linfa::RULE, dtypes: &[F64, F32], construct: Construct::Rust(|| Box::new(linfa::LinfaKMeans::default())) },
    Entry { name: "numpy", role: Role::Baseline, rule: Rule::ExactLloyd, dtypes: &[F64, F32], construct: python_module!("numpy_kmeans") },
    Entry { name: "sklearn", role: Role::Peer, rule: Rule::ExactLloyd, dtypes: &[F64, F32], construct: python_module!("sklearn_kmeans", "algorithm" = "lloyd") },
    Entry { name: "sklearn-elkan", role: Role::Peer, rule: Rule::ExactLloyd, dtypes: &[F64, F32], construct: python_module!("sklearn_kmeans", "algorithm" = "elkan") },
    Entry { name: "sklearnex", role: Role::Peer, rule: Rule::ExactLloyd, dtypes: &[F64, F32], construct: python_module!("sklearnex_kmeans") },
    Entry { name: "faiss", role: Role::Peer, rule: FAISS_RULE, dtypes: &[F32], construct: python_module!("faiss_kmeans") },
];

/// faiss: float32 Lloyd for at most the exact iteration count (it also stops
/// when its float32 objective is unchanged from one iteration to the next,
/// a rule it cannot be told to drop), which splits a large cluster where one
/// empties. From the same start its inertia lands within
/// 1e-6 of exact Lloyd's (measured 8.6e-12 to 1.6e-6); 1e-5 leaves room
/// for float32 sums over a million rows.
const FAISS_RULE: Rule = Rule::FixedIterations {
    tolerance: 1e-5,
    note: "computes in float32 only (the data converted once, outside timing), runs at most the iteration count exact Lloyd needed from the same start (it has no rule to stop when no label changes, and stops earlier when its float32 objective is unchanged) and fills an empty cluster by splitting a large one",
};

/// Every contender's name, in report order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.name).collect()
}

/// The registry entry called `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// The registry position of `name` (unknown names last), for report order.
pub fn position(name: &str) -> usize {
    REGISTRY
        .iter()
        .position(|e| e.name == name)
        .unwrap_or(usize::MAX)
}

/// The inertia tolerance of contender `name` (exact Lloyd's when unknown).
pub fn inertia_tolerance(name: &str) -> f64 {
    entry(name).map_or(EXACT_INERTIA_TOLERANCE, |e| e.rule.tolerance())
}

/// One fit to run: shared, read-only.
#[derive(Debug, Clone)]
pub struct Problem {
    /// `(n_samples, n_features)`, C order.
    pub x: Arc<Array2<f64>>,
    /// `(k, n_features)`: where every contender starts.
    pub init: Arc<Array2<f64>>,
    /// The cap on iterations.
    pub max_iter: usize,
    /// Threads every contender may use.
    pub threads: usize,
    /// The iterations an exact Lloyd fit needs from this start, for
    /// contenders with [`Rule::FixedIterations`] (set by the protocol).
    pub fixed_iterations: Option<usize>,
    /// The data as float32 (`x` cast once), for a problem in float32: every
    /// contender is handed this (and the initial centroids cast likewise),
    /// and computes in float32 where it can.
    pub x32: Option<Arc<Array2<f32>>>,
}

impl Problem {
    /// The float type the data is handed over in.
    pub fn dtype(&self) -> Dtype {
        if self.x32.is_some() {
            Dtype::F32
        } else {
            Dtype::F64
        }
    }

    /// Checks what a library might otherwise assert on (and panic): a
    /// non-empty 2-D problem, `1 <= k <= n`, initial centroids with the
    /// data's feature count, finite values, `max_iter >= 1`, threads >= 1.
    pub fn validate(&self) -> Result<(), KMeansError> {
        crate::kmeans::check_not_empty(self.x.view())?;
        let (n, d) = self.x.dim();
        let k = self.init.nrows();
        if k == 0 {
            return Err(KMeansError::ZeroClusters);
        }
        if k > n {
            return Err(KMeansError::TooManyClusters { k, n_samples: n });
        }
        if self.init.ncols() != d {
            return Err(KMeansError::InitShape {
                got: self.init.dim(),
                expected: (k, d),
            });
        }
        if self.max_iter == 0 {
            return Err(KMeansError::ZeroMaxIter);
        }
        if self.threads == 0 {
            return Err(KMeansError::ZeroThreads);
        }
        crate::kmeans::check_finite(self.x.view(), "data")?;
        crate::kmeans::check_finite(self.init.view(), "initial centroids")
    }
}

/// What one fit returns.
#[derive(Debug, Clone)]
pub struct FitOutput {
    /// The final centroids, `(k, n_features)`.
    pub centroids: Array2<f64>,
    /// The contender's own labels, where it returns them.
    pub labels: Option<Array1<u32>>,
    /// Iterations run.
    pub n_iter: usize,
    /// Its work pass by pass, where it reports it (see
    /// [`crate::kmeans::Work`]).
    pub work: Option<Vec<crate::kmeans::Pass>>,
}

/// A k-means implementation under test.
pub trait Contender {
    /// Its name in benchmark ids and reports (its [`REGISTRY`] entry's).
    fn name(&self) -> &'static str;
    /// Everything that must stay outside the timed region: copies,
    /// conversions, handing data to Python, thread pools.
    fn prepare(&mut self, problem: &Problem) -> Result<()>;
    /// One untimed fit that checks how the prepared contender runs (the path
    /// a library took, how often it refilled empty clusters) and adds what
    /// it found to its environment; an error where it does not run as
    /// claimed. Called after `prepare` by the runner, never in a measuring
    /// child, whose one fit must not find its memory already warmed.
    fn inspect(&mut self) -> Result<()> {
        Ok(())
    }
    /// One fit of the prepared problem from its initial centroids. Timed.
    fn fit(&mut self) -> Result<FitOutput>;
    /// Facts to record beside its numbers: versions, threads in effect, the
    /// stopping rule it really used.
    fn environment(&self) -> Vec<(String, String)>;
    /// For contenders running in Python: one untimed fit under `tracemalloc`,
    /// returning its peak traced bytes. `None` for the others.
    fn traced_peak_bytes(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// A contender that cannot run here, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The contender.
    pub name: &'static str,
    /// Why (for example, a missing Python package).
    pub reason: String,
}

/// The contender called `name`, or why it cannot run here.
pub fn create(name: &str) -> Result<Box<dyn Contender>, Unavailable> {
    let entry = entry(name).ok_or_else(|| Unavailable {
        name: "unknown",
        reason: format!(
            "no contender called '{name}' (known: {})",
            names().join(", ")
        ),
    })?;
    match entry.construct {
        Construct::Rust(make) => Ok(make()),
        #[cfg(feature = "python")]
        Construct::Python(module) => {
            python::PythonKMeans::new(entry.name, module).map(|c| Box::new(c) as _)
        }
        #[cfg(not(feature = "python"))]
        Construct::Python(_) => Err(Unavailable {
            name: entry.name,
            reason: "built without the `python` feature".into(),
        }),
    }
}

/// Wraps a contender's failure in the crate error.
pub(crate) fn contender_error(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::Contender {
        contender: name.to_string(),
        reason: reason.to_string(),
    }
}

/// Which pool a Rust contender of `threads` threads fits in, called from
/// this thread: for the report's environment.
pub(crate) fn pool_name(threads: usize) -> String {
    let count = match threads {
        1 => "1 thread".to_string(),
        t => format!("{t} threads"),
    };
    match crate::kmeans::in_pool_of(threads) {
        true => format!("the calling thread's ({count}, it among them)"),
        false => format!("a pool of its own ({count})"),
    }
}

/// A rayon pool of `threads` threads.
pub(crate) fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::KMeans(KMeansError::ThreadPool(e)))
}
