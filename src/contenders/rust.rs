//! `rust`: the hand-written k-means of this crate; `rust-plain`: the same
//! without bounds (every row through the distance kernel in every step), to
//! show what the bounds buy. Both give the same labels and iterations, and
//! centroids that agree to rounding.

use super::{contender_error, thread_pool, Contender, FitOutput, Problem};
use crate::error::Result;
use crate::kmeans::{Init, KMeans, KMeansParams, Pruning};

/// The hand-written k-means, in its own rayon pool.
pub struct RustKMeans {
    bounds: bool,
    prepared: Option<(Problem, KMeans<f64>, rayon::ThreadPool)>,
}

impl RustKMeans {
    /// With or without the bounds that skip rows whose label cannot change.
    pub fn new(bounds: bool) -> Self {
        RustKMeans {
            bounds,
            prepared: None,
        }
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
        let model = KMeansParams::new(problem.init.nrows())
            .init(Init::Given(problem.init.as_ref().clone()))
            .max_iter(problem.max_iter)
            .pruning(if self.bounds {
                Pruning::Auto
            } else {
                Pruning::Never
            })
            .check()?;
        self.prepared = Some((problem.clone(), model, thread_pool(problem.threads)?));
        Ok(())
    }

    fn fit(&mut self) -> Result<FitOutput> {
        let (problem, model, pool) = self
            .prepared
            .as_ref()
            .ok_or_else(|| contender_error(self.name(), "fit before prepare"))?;
        let fit = pool.install(|| model.fit(problem.x.view()))?;
        Ok(FitOutput {
            centroids: fit.centroids,
            labels: Some(fit.labels),
            n_iter: fit.n_iter,
            work: Some(fit.work.per_pass),
        })
    }

    fn environment(&self) -> Vec<(String, String)> {
        let threads = self
            .prepared
            .as_ref()
            .map_or(0, |(_, _, p)| p.current_num_threads());
        vec![
            ("rust.version".into(), env!("CARGO_PKG_VERSION").into()),
            ("rust.bounds".into(), self.bounds.to_string()),
            ("rust.threads".into(), threads.to_string()),
            (
                "rust.stopping_rule".into(),
                "no label changed (tol = 0)".into(),
            ),
        ]
    }
}
