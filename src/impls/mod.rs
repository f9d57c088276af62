//! The contenders, behind one interface.
//!
//! Each contender is one file. Adding one means writing a type that
//! implements [`Contender`] and adding one line to [`create`].
//!
//! Every contender gets the same [`Problem`]: the same data, the same initial
//! centroids, the same cap on iterations, the same thread count. The stopping
//! rule is "no label changed" wherever the library allows it; where it does
//! not (linfa), the difference is measured, not hidden.

mod linfa;
#[cfg(feature = "python")]
pub mod python;
mod rust;

use std::sync::Arc;

use ndarray::{Array1, Array2};

use crate::error::{Error, Result};

/// Every contender's name, in report order.
pub const NAMES: [&str; 6] = [
    "rust",
    "rust-plain",
    "linfa",
    "numpy",
    "sklearn",
    "sklearn-elkan",
];

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
}

impl Problem {
    /// Checks what a library might otherwise assert on (and panic): a
    /// non-empty 2-D problem, `1 <= k <= n`, initial centroids with the
    /// data's feature count, finite values, `max_iter >= 1`, threads >= 1.
    pub fn validate(&self) -> Result<()> {
        crate::kmeans::check_not_empty(self.x.view())?;
        let (n, d) = self.x.dim();
        let k = self.init.nrows();
        if k == 0 {
            return Err(Error::ZeroClusters);
        }
        if k > n {
            return Err(Error::TooManyClusters { k, n_samples: n });
        }
        if self.init.ncols() != d {
            return Err(Error::InitShape {
                got: self.init.dim(),
                expected: (k, d),
            });
        }
        if self.max_iter == 0 {
            return Err(Error::ZeroMaxIter);
        }
        if self.threads == 0 {
            return Err(Error::ZeroThreads);
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
    /// Squared distances computed in each pass over the data, where the
    /// contender reports its work (see [`crate::kmeans::Work`]).
    pub pass_distances: Option<Vec<u64>>,
    /// Of those, the distances computed in `f32`, likewise.
    pub pass_f32_distances: Option<Vec<u64>>,
    /// Rows of the data read in each pass, likewise.
    pub pass_rows: Option<Vec<u64>>,
}

/// A k-means implementation under test.
pub trait Contender {
    /// Its name in benchmark ids and reports (one of [`NAMES`]).
    fn name(&self) -> &'static str;
    /// Everything that must stay outside the timed region: copies,
    /// conversions, handing data to Python, thread pools.
    fn prepare(&mut self, problem: &Problem) -> Result<()>;
    /// One fit of the prepared problem from its initial centroids. Timed.
    fn fit(&mut self) -> Result<FitOutput>;
    /// Facts to record beside its numbers: versions, threads in effect, the
    /// stopping rule it really used.
    fn environment(&self) -> Vec<(String, String)>;
    /// Whether it runs in the embedded Python: its memory is then invisible
    /// to our allocator and traced by `tracemalloc` instead.
    fn runs_in_python(&self) -> bool {
        false
    }
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
    let name = NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| Unavailable {
            name: "unknown",
            reason: format!("no contender called '{name}' (known: {})", NAMES.join(", ")),
        })?;
    match name {
        "rust" => Ok(Box::new(rust::RustKMeans::new(true))),
        "rust-plain" => Ok(Box::new(rust::RustKMeans::new(false))),
        "linfa" => Ok(Box::new(linfa::LinfaKMeans::default())),
        #[cfg(feature = "python")]
        "numpy" => python::PythonKMeans::numpy().map(|c| Box::new(c) as _),
        #[cfg(feature = "python")]
        "sklearn" => python::PythonKMeans::sklearn("sklearn", "lloyd").map(|c| Box::new(c) as _),
        #[cfg(feature = "python")]
        "sklearn-elkan" => {
            python::PythonKMeans::sklearn("sklearn-elkan", "elkan").map(|c| Box::new(c) as _)
        }
        _ => Err(Unavailable {
            name,
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

/// A rayon pool of `threads` threads.
pub(crate) fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))
}
