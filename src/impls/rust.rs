//! `rust`: the hand-written k-means of this crate.

use super::{contender_error, thread_pool, Contender, FitOutput, Problem};
use crate::error::Result;
use crate::kmeans::{Init, KMeans, KMeansParams};

/// The hand-written k-means, in its own rayon pool.
#[derive(Default)]
pub struct RustKMeans {
    prepared: Option<(Problem, KMeans<f64>, rayon::ThreadPool)>,
}

impl Contender for RustKMeans {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn prepare(&mut self, problem: &Problem) -> Result<()> {
        let model = KMeansParams::new(problem.init.nrows())
            .init(Init::Given(problem.init.as_ref().clone()))
            .max_iter(problem.max_iter)
            .check()?;
        self.prepared = Some((problem.clone(), model, thread_pool(problem.threads)?));
        Ok(())
    }

    fn fit(&mut self) -> Result<FitOutput> {
        let (problem, model, pool) = self
            .prepared
            .as_ref()
            .ok_or_else(|| contender_error("rust", "fit before prepare"))?;
        let fit = pool.install(|| model.fit(problem.x.view()))?;
        Ok(FitOutput {
            centroids: fit.centroids,
            labels: Some(fit.labels),
            n_iter: fit.n_iter,
            pass_distances: Some(fit.work.pass_distances),
        })
    }

    fn environment(&self) -> Vec<(String, String)> {
        let threads = self
            .prepared
            .as_ref()
            .map_or(0, |(_, _, p)| p.current_num_threads());
        vec![
            ("rust.version".into(), env!("CARGO_PKG_VERSION").into()),
            ("rust.threads".into(), threads.to_string()),
            (
                "rust.stopping_rule".into(),
                "no label changed (tol = 0)".into(),
            ),
        ]
    }
}
