//! Result quality, computed by us from each contender's centroids: never a
//! library's own report (linfa's inertia is a per-sample mean, scikit-learn's
//! a sum; both are recomputed here the same way).

use std::collections::HashMap;

use ndarray::{Array1, ArrayView1, ArrayView2};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use crate::kmeans::assign_and_inertia;

/// `(inertia - best) / best`: how far an inertia is above the best of its
/// scenario (0 for the best; exactly 0 when both are 0).
pub fn relative_gap(inertia: f64, best: f64) -> f64 {
    if best == 0.0 {
        if inertia == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (inertia - best) / best
    }
}

/// The adjusted Rand index of two labelings of the same samples (1 for
/// identical partitions up to renaming, about 0 for chance agreement).
pub fn adjusted_rand_index(a: ArrayView1<u32>, b: ArrayView1<u32>) -> f64 {
    assert_eq!(a.len(), b.len(), "labelings of different lengths");
    let n = a.len() as f64;
    let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
    let mut rows: HashMap<u32, u64> = HashMap::new();
    let mut cols: HashMap<u32, u64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *pairs.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let choose2 = |c: u64| (c as f64) * (c as f64 - 1.0) / 2.0;
    let index: f64 = pairs.values().map(|&c| choose2(c)).sum();
    let sum_rows: f64 = rows.values().map(|&c| choose2(c)).sum();
    let sum_cols: f64 = cols.values().map(|&c| choose2(c)).sum();
    let expected = sum_rows * sum_cols / (n * (n - 1.0) / 2.0);
    let max = (sum_rows + sum_cols) / 2.0;
    if max == expected {
        // Both partitions trivial (one cluster, or all singletons): identical.
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// The mean silhouette of `labels` over a fixed-seed subsample of at most
/// `max_samples` rows (distances among the subsample only), as scikit-learn's
/// `silhouette_score(..., sample_size=…)`. Samples alone in their cluster
/// score 0. `None` when fewer than two clusters are present.
pub fn sampled_silhouette(
    x: ArrayView2<f64>,
    labels: ArrayView1<u32>,
    max_samples: usize,
    seed: u64,
) -> Option<f64> {
    let n = x.nrows();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut picked: Vec<usize> = if n > max_samples {
        sample(&mut rng, n, max_samples).into_vec()
    } else {
        (0..n).collect()
    };
    picked.sort_unstable();
    let sub_labels: Array1<u32> = picked.iter().map(|&i| labels[i]).collect();
    let mut clusters: Vec<u32> = sub_labels.to_vec();
    clusters.sort_unstable();
    clusters.dedup();
    if clusters.len() < 2 {
        return None;
    }
    let index: HashMap<u32, usize> = clusters.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let sizes = clusters
        .iter()
        .map(|c| sub_labels.iter().filter(|&&l| l == *c).count())
        .collect::<Vec<_>>();
    let mut total = 0.0;
    for (a, &i) in picked.iter().enumerate() {
        let mut sums = vec![0.0; clusters.len()];
        for (b, &j) in picked.iter().enumerate() {
            if a != b {
                let d: f64 = x
                    .row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
                    .sqrt();
                sums[index[&sub_labels[b]]] += d;
            }
        }
        let own = index[&sub_labels[a]];
        if sizes[own] == 1 {
            continue;
        }
        let within = sums[own] / (sizes[own] - 1) as f64;
        let nearest = (0..clusters.len())
            .filter(|&c| c != own)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        total += (nearest - within) / within.max(nearest);
    }
    Some(total / picked.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ari_matches_scikit_learn_examples() {
        // sklearn.metrics.adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]) = 0.5714285714285715
        let ari = adjusted_rand_index(array![0, 0, 1, 1].view(), array![0, 0, 1, 2].view());
        assert!((ari - 0.5714285714285715).abs() < 1e-15);
        // Renaming does not matter.
        assert_eq!(
            adjusted_rand_index(array![0, 0, 1, 1].view(), array![1, 1, 0, 0].view()),
            1.0
        );
        // adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]) = -0.5
        let ari = adjusted_rand_index(array![0, 0, 1, 1].view(), array![0, 1, 0, 1].view());
        assert!((ari + 0.5).abs() < 1e-15);
    }

    #[test]
    fn silhouette_matches_a_hand_computed_case() {
        // Two clusters on a line: {0, 1} and {10}.
        // s(0) = 1 - 1/10, s(1) = 1 - 1/9, s(10) = 0 (alone in its cluster).
        let x = array![[0.0], [1.0], [10.0]];
        let s = sampled_silhouette(x.view(), array![0, 0, 1].view(), 100, 0).unwrap();
        let expected = ((1.0 - 1.0 / 10.0) + (1.0 - 1.0 / 9.0)) / 3.0;
        assert!((s - expected).abs() < 1e-15);
        assert_eq!(
            sampled_silhouette(x.view(), array![0, 0, 0].view(), 100, 0),
            None
        );
    }

    #[test]
    fn relative_gap_is_zero_for_the_best() {
        assert_eq!(relative_gap(2.0, 2.0), 0.0);
        assert_eq!(relative_gap(3.0, 2.0), 0.5);
        assert_eq!(relative_gap(0.0, 0.0), 0.0);
    }
}
