//! `rust`: the hand-written k-means of this crate; `rust-plain`: the same
//! without bounds (every row through the distance kernel in every step), to
//! show what the bounds buy. Both give the same labels and iterations, and
//! centroids that agree to rounding.

use super::{contender_error, Contender, FitOutput, Problem};
use crate::error::Result;
use crate::kmeans::{Init, KMeans, KMeansParams, Pruning};

/// The model, in the float type of the problem's data.
enum Model {
    F64(KMeans<f64>),
    F32(KMeans<f32>),
}

/// The hand-written k-means, with the problem's thread count as its own
/// (its pool, or the calling thread where [`KMeans::fit`] chooses it).
pub struct RustKMeans {
    bounds: bool,
    prepared: Option<(Problem, Model)>,
}

impl RustKMeans {
    /// With or without the bounds that skip rows whose label cannot change.
    pub fn new(bounds: bool) -> Self {
        RustKMeans {
            bounds,
            prepared: None,
        }
    }

    fn params<F: crate::kmeans::Float>(&self, problem: &Problem) -> KMeansParams<F> {
        KMeansParams::new(problem.init.nrows())
            .init(Init::Given(problem.init.mapv(F::from_f64)))
            .max_iter(problem.max_iter)
            .threads(problem.threads)
            .pruning(if self.bounds {
                Pruning::Auto
            } else {
                Pruning::Never
            })
    }
}

impl Contender for RustKMeans {
    fn name(&self) -> &'static str {
        if self.bounds {
            "rust"
        } else {
            "rust-plain"
        }
    }

    fn prepare(&mut self, problem: &Problem) -> Result<()> {
        let model = match problem.x32 {
            Some(_) => Model::F32(self.params::<f32>(problem).check()?),
            None => Model::F64(self.params::<f64>(problem).check()?),
        };
        match &model {
            Model::F64(model) => model.start_threads()?,
            Model::F32(model) => model.start_threads()?,
        }
        self.prepared = Some((problem.clone(), model));
        Ok(())
    }

    fn fit(&mut self) -> Result<FitOutput> {
        let (problem, model) = self
            .prepared
            .as_ref()
            .ok_or_else(|| contender_error(self.name(), "fit before prepare"))?;
        let (centroids, labels, n_iter, work) = match (model, &problem.x32) {
            (Model::F32(model), Some(x32)) => {
                let fit = model.fit(x32.view())?;
                (
                    fit.centroids.mapv(f64::from),
                    fit.labels,
                    fit.n_iter,
                    fit.work,
                )
            }
            (Model::F64(model), _) => {
                let fit = model.fit(problem.x.view())?;
                (fit.centroids, fit.labels, fit.n_iter, fit.work)
            }
            (Model::F32(_), None) => {
                return Err(contender_error(
                    self.name(),
                    "float32 model without float32 data",
                ))
            }
        };
        Ok(FitOutput {
            centroids,
            labels: Some(labels),
            n_iter,
            work: Some(work.per_pass),
        })
    }

    fn environment(&self) -> Vec<(String, String)> {
        let threads = self.prepared.as_ref().map_or(0, |(p, _)| p.threads);
        vec![
            ("rust.version".into(), env!("CARGO_PKG_VERSION").into()),
            ("rust.bounds".into(), self.bounds.to_string()),
            (
                "rust.kernel".into(),
                crate::kmeans::kernel_name().to_string(),
            ),
            ("rust.threads".into(), threads.to_string()),
            (
                "rust.pool".into(),
                match threads {
                    1 => "none: one thread is the calling thread".into(),
                    t => super::pool_name(t),
                },
            ),
            (
                "rust.calling_thread".into(),
                format!(
                    "fits of at most {} rows or one thread",
                    crate::kmeans::CALLING_THREAD_MAX_ROWS
                ),
            ),
            (
                "rust.stopping_rule".into(),
                "no label changed (tol = 0)".into(),
            ),
        ]
    }
}
