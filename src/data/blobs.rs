//! Gaussian blobs in the manner of scikit-learn's `make_blobs`, seeded.

use ndarray::{Array1, Array2};
use ndarray_rand::rand_distr::{Normal, Uniform};
use ndarray_rand::RandomExt;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::error::{DataError, Result};
use super::Scenario;

/// Bumped whenever the generator's output for the same settings changes, so
/// cached files from an older generator are never reused.
pub const GENERATOR_VERSION: u32 = 1;

/// Rows generated from one random stream (a fixed split, so output does not
/// depend on the thread count).
const ROWS_PER_STREAM: usize = 4096;

/// Every setting of the generator.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlobSpec {
    /// The shape of the data.
    pub scenario: Scenario,
    /// The seed of the random streams.
    pub seed: u64,
    /// The standard deviation of each blob, per feature.
    pub std: f64,
    /// Centres are uniform in `[-center_box, center_box]^d`.
    pub center_box: f64,
    /// [`GENERATOR_VERSION`] at generation.
    pub generator_version: u32,
}

impl BlobSpec {
    /// The study's blobs: unit standard deviation, centres in `[-10, 10]^d`, seed 0.
    pub fn new(scenario: Scenario) -> Self {
        BlobSpec {
            scenario,
            seed: 0,
            std: 1.0,
            center_box: 10.0,
            generator_version: GENERATOR_VERSION,
        }
    }

    /// The same blobs with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same blobs with another standard deviation.
    pub fn with_std(mut self, std: f64) -> Self {
        self.std = std;
        self
    }

    fn check(&self) -> Result<()> {
        Scenario::new(self.scenario.n, self.scenario.d, self.scenario.k)?;
        if !(self.std.is_finite() && self.std >= 0.0) {
            return Err(DataError::Scenario(format!(
                "std must be finite and >= 0, got {}",
                self.std
            )));
        }
        if !(self.center_box.is_finite() && self.center_box > 0.0) {
            return Err(DataError::Scenario(format!(
                "center_box must be finite and > 0, got {}",
                self.center_box
            )));
        }
        Ok(())
    }
}

/// Generated blobs and what produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Blobs {
    /// `(n, d)`, row-major, f64.
    pub x: Array2<f64>,
    /// The blob each sample was drawn from, `(n,)`.
    pub labels: Array1<u32>,
    /// The blob centres, `(k, d)`.
    pub centers: Array2<f64>,
}

/// Draws `n` samples around `k` centres: blob sizes differ by at most one
/// (the first `n mod k` blobs get one more, as in `make_blobs`), samples are
/// in shuffled order, each feature is `centre + std * N(0, 1)`.
///
/// Rows are written in place in parallel from independent streams (the base
/// stream jumped once per 4096 rows), so only one copy of the data is ever
/// held and the output does not depend on the thread count.
pub fn generate_blobs(spec: &BlobSpec) -> Result<Blobs> {
    spec.check()?;
    let Scenario { n, d, k } = spec.scenario;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
    let centers = Array2::random_using(
        (k, d),
        Uniform::new_inclusive(-spec.center_box, spec.center_box),
        &mut rng,
    );
    let mut labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
    labels.sort_unstable();
    labels.shuffle(&mut rng);

    let mut streams = Vec::with_capacity(n.div_ceil(ROWS_PER_STREAM));
    for _ in 0..n.div_ceil(ROWS_PER_STREAM) {
        rng.jump();
        streams.push(rng.clone());
    }
    let noise = Normal::new(0.0, spec.std)
        .map_err(|e| DataError::Scenario(format!("std {}: {e}", spec.std)))?;
    let mut x = Array2::<f64>::zeros((n, d));
    let flat = x.as_slice_mut().expect("a new array is contiguous");
    flat.par_chunks_mut(ROWS_PER_STREAM * d)
        .zip(labels.par_chunks(ROWS_PER_STREAM))
        .zip(streams.into_par_iter())
        .for_each(|((rows, row_labels), mut stream)| {
            for (row, &label) in rows.chunks_exact_mut(d).zip(row_labels) {
                for (v, &c) in row.iter_mut().zip(centers.row(label as usize)) {
                    *v = c + stream.sample(noise);
                }
            }
        });
    Ok(Blobs {
        x,
        labels: Array1::from(labels),
        centers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: usize, d: usize, k: usize) -> BlobSpec {
        BlobSpec::new(Scenario::new(n, d, k).unwrap())
    }

    #[test]
    fn same_seed_same_blobs_other_seed_other_blobs() {
        let a = generate_blobs(&spec(5000, 3, 4)).unwrap();
        let b = generate_blobs(&spec(5000, 3, 4)).unwrap();
        let c = generate_blobs(&spec(5000, 3, 4).with_seed(1)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.x, c.x);
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let spec = spec(10_000, 2, 3);
        assert_eq!(
            one.install(|| generate_blobs(&spec)).unwrap(),
            two.install(|| generate_blobs(&spec)).unwrap()
        );
    }

    #[test]
    fn blob_sizes_differ_by_at_most_one_and_points_sit_near_their_centre() {
        let blobs = generate_blobs(&spec(1003, 2, 4)).unwrap();
        let mut sizes = [0usize; 4];
        for &l in &blobs.labels {
            sizes[l as usize] += 1;
        }
        assert_eq!(sizes, [251, 251, 251, 250]);
        assert!(blobs.centers.iter().all(|c| c.abs() <= 10.0));
        for (row, &l) in blobs.x.rows().into_iter().zip(&blobs.labels) {
            let centre = blobs.centers.row(l as usize);
            let dist2: f64 = row.iter().zip(centre).map(|(a, b)| (a - b).powi(2)).sum();
            // 2 features of unit std: beyond 8 std in both is vanishingly rare.
            assert!(dist2 < 128.0);
        }
        // Shuffled: the first rows are not all of one blob.
        assert!(blobs.labels.iter().take(20).any(|&l| l != blobs.labels[0]));
    }

    #[test]
    fn zero_spread_puts_every_point_on_its_centre() {
        let blobs = generate_blobs(&spec(10, 2, 2).with_std(0.0)).unwrap();
        for (row, &l) in blobs.x.rows().into_iter().zip(&blobs.labels) {
            assert_eq!(row, blobs.centers.row(l as usize));
        }
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(generate_blobs(&spec(10, 2, 2).with_std(-1.0)).is_err());
        assert!(generate_blobs(&spec(10, 2, 2).with_std(f64::NAN)).is_err());
    }
}
