//! Data: the scenario matrix, the blob generator, the cache under `data/`,
//! and `.npy` / CSV I/O.

mod blobs;
mod cache;
mod csv;
mod error;
mod npy;
mod samples;

pub use self::blobs::{generate_blobs, BlobSpec, Blobs, GENERATOR_VERSION};
pub use self::cache::{CacheOutcome, CachedBlobs, DataCache, Start};
pub use self::csv::{read_csv, write_csv};
pub use self::npy::{read_npy, write_atomic_bytes, write_npy_atomic};
pub use self::samples::{read_samples, Samples};

pub use self::error::DataError;
use self::error::Result;

/// Creates folder `path` (and its parents) if needed; a path that names
/// something other than a folder is an error saying so.
pub fn create_folder(path: &std::path::Path) -> Result<()> {
    if path.exists() && !path.is_dir() {
        return Err(DataError::NotAFolder {
            path: path.to_path_buf(),
        });
    }
    std::fs::create_dir_all(path).map_err(|e| DataError::io(path, e))
}

/// One workload: `n` samples of `d` features drawn around `k` centres.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Scenario {
    /// Samples.
    pub n: usize,
    /// Features.
    pub d: usize,
    /// Clusters (blob centres, and the k of the fit).
    pub k: usize,
}

impl Scenario {
    /// A checked scenario: `n`, `d` and `k` at least 1, `k <= n`.
    pub fn new(n: usize, d: usize, k: usize) -> Result<Self> {
        if n == 0 || d == 0 {
            return Err(DataError::Scenario(format!(
                "n and d must be at least 1 (got n = {n}, d = {d})"
            )));
        }
        if k == 0 {
            return Err(crate::kmeans::KMeansError::ZeroClusters.into());
        }
        if k > n {
            return Err(crate::kmeans::KMeansError::TooManyClusters { k, n_samples: n }.into());
        }
        Ok(Scenario { n, d, k })
    }

    /// `"{n}x{d}/k{k}"`, the scenario's part of a benchmark id.
    pub fn id(&self) -> String {
        format!("{}x{}/k{}", self.n, self.d, self.k)
    }

    /// The sweep of the study: n in {10^3..10^6}, d in {2, 10, 50, 100},
    /// k in {2, 8, 30}: 48 scenarios.
    pub fn sweep() -> Vec<Scenario> {
        let mut all = Vec::new();
        for n in [1_000, 10_000, 100_000, 1_000_000] {
            for d in [2, 10, 50, 100] {
                for k in [2, 8, 30] {
                    all.push(Scenario { n, d, k });
                }
            }
        }
        all
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::KMeansError;

    #[test]
    fn sweep_has_48_distinct_scenarios() {
        let sweep = Scenario::sweep();
        assert_eq!(sweep.len(), 48);
        let distinct: std::collections::BTreeSet<_> = sweep.iter().collect();
        assert_eq!(distinct.len(), 48);
        assert_eq!(sweep[0].id(), "1000x2/k2");
    }

    #[test]
    fn invalid_scenarios_are_rejected() {
        assert!(matches!(
            Scenario::new(10, 2, 0),
            Err(DataError::KMeans(KMeansError::ZeroClusters))
        ));
        assert!(matches!(
            Scenario::new(3, 2, 4),
            Err(DataError::KMeans(KMeansError::TooManyClusters {
                k: 4,
                n_samples: 3
            }))
        ));
        assert!(matches!(
            Scenario::new(0, 2, 1),
            Err(DataError::Scenario(_))
        ));
        assert!(matches!(
            Scenario::new(5, 0, 1),
            Err(DataError::Scenario(_))
        ));
        assert!(Scenario::new(3, 2, 3).is_ok());
    }
}
