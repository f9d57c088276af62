//! Greedy k-means++ (Arthur and Vassilvitskii, with scikit-learn's greedy
//! local trials), seeded.
//!
//! Each new centroid is drawn from `2 + floor(ln k)` candidates sampled with
//! probability proportional to their squared distance to the nearest chosen
//! centroid; the candidate that lowers the total potential most wins. All
//! candidates are scored in one pass over the data, and the pass that updates
//! the nearest distances also yields the per-chunk potentials that the next
//! draw searches, so no prefix sum over all rows is ever stored.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::chunks::seeding_chunk_rows;
use super::float::Float;
use super::simd::squared_distance;

/// Chooses `k` initial centroids from the rows of `x`, `(n, d)`.
pub fn kmeans_plusplus<F: Float>(x: ArrayView2<F>, k: usize, seed: u64) -> Array2<F> {
    let (n, d) = x.dim();
    let x = x.as_standard_layout();
    let x = x.as_slice().expect("standard layout is contiguous");
    let rows = seeding_chunk_rows(n);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n_trials = 2 + (k as f64).ln().floor() as usize;
    let row = |i: usize| &x[i * d..(i + 1) * d];

    let mut centroids = Array2::zeros((k, d));
    let first = rng.gen_range(0..n);
    centroids.row_mut(0).assign(&ndarray::aview1(row(first)));
    let mut closest = vec![F::infinity(); n];
    let mut chunk_potentials = update_closest(x, d, rows, row(first), &mut closest);

    for c in 1..k {
        let potential: f64 = chunk_potentials.iter().sum();
        let candidates: Vec<usize> = (0..n_trials)
            .map(|_| {
                sample_row(
                    &closest,
                    rows,
                    &chunk_potentials,
                    rng.gen::<f64>() * potential,
                )
            })
            .collect();
        let scores = score_candidates(x, d, rows, &closest, &candidates);
        let best = (0..candidates.len())
            .min_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)))
            .expect("at least two candidates");
        let chosen = candidates[best];
        centroids.row_mut(c).assign(&ndarray::aview1(row(chosen)));
        chunk_potentials = update_closest(x, d, rows, row(chosen), &mut closest);
    }
    centroids
}

/// Lowers each `closest[i]` (infinite before the first centroid) to the
/// distance to `centroid` where that is nearer; returns the sum of `closest` over each chunk.
fn update_closest<F: Float>(
    x: &[F],
    d: usize,
    rows: usize,
    centroid: &[F],
    closest: &mut [F],
) -> Vec<f64> {
    x.par_chunks(rows * d)
        .zip(closest.par_chunks_mut(rows))
        .map(|(x_chunk, closest_chunk)| {
            let mut total = 0.0;
            for (point, best) in x_chunk.chunks_exact(d).zip(closest_chunk) {
                let distance = squared_distance(point, centroid);
                if distance < *best {
                    *best = distance;
                }
                total += best.as_f64();
            }
            total
        })
        .collect()
}

/// The potential each candidate would leave: `sum_i min(closest_i, ||x_i - x_cand||^2)`.
fn score_candidates<F: Float>(
    x: &[F],
    d: usize,
    rows: usize,
    closest: &[F],
    candidates: &[usize],
) -> Vec<f64> {
    let partials: Vec<Vec<f64>> = x
        .par_chunks(rows * d)
        .zip(closest.par_chunks(rows))
        .map(|(x_chunk, closest_chunk)| {
            let mut totals = vec![0.0; candidates.len()];
            for (point, &best) in x_chunk.chunks_exact(d).zip(closest_chunk) {
                for (total, &cand) in totals.iter_mut().zip(candidates) {
                    let distance = squared_distance(point, &x[cand * d..(cand + 1) * d]);
                    *total += if distance < best { distance } else { best }.as_f64();
                }
            }
            totals
        })
        .collect();
    let mut scores = vec![0.0; candidates.len()];
    for part in partials {
        for (s, v) in scores.iter_mut().zip(part) {
            *s += v;
        }
    }
    scores
}

/// The first row whose running sum of `closest` reaches `target`
/// (`searchsorted` on the cumulative potential, clipped to the last row).
fn sample_row<F: Float>(
    closest: &[F],
    rows: usize,
    chunk_potentials: &[f64],
    target: f64,
) -> usize {
    let mut before = 0.0;
    for (c, &chunk_total) in chunk_potentials.iter().enumerate() {
        let start = c * rows;
        let end = (start + rows).min(closest.len());
        if before + chunk_total >= target || c + 1 == chunk_potentials.len() {
            let mut running = before;
            for (i, v) in closest[start..end].iter().enumerate() {
                running += v.as_f64();
                if running >= target {
                    return start + i;
                }
            }
            return end - 1;
        }
        before += chunk_total;
    }
    closest.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_k_distinct_rows_from_well_separated_groups() {
        // Three tight groups; k-means++ must take one centroid from each.
        let mut x = Vec::new();
        for centre in [0.0, 100.0, 200.0] {
            for i in 0..50 {
                x.extend_from_slice(&[centre + i as f64 * 1e-3, -centre]);
            }
        }
        let x = Array2::from_shape_vec((x.len() / 2, 2), x).unwrap();
        let centroids = kmeans_plusplus(x.view(), 3, 7);
        let mut groups: Vec<i64> = centroids
            .rows()
            .into_iter()
            .map(|c| (c[0] / 100.0).round() as i64)
            .collect();
        groups.sort();
        assert_eq!(groups, vec![0, 1, 2]);
    }

    #[test]
    fn is_deterministic_under_a_seed() {
        let x: Vec<f64> = (0..2000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .collect();
        let x = Array2::from_shape_vec((x.len() / 4, 4), x).unwrap();
        let a = kmeans_plusplus(x.view(), 5, 42);
        let b = kmeans_plusplus(x.view(), 5, 42);
        let c = kmeans_plusplus(x.view(), 5, 43);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn sampling_follows_the_cumulative_potential() {
        let closest = vec![0.0f64, 1.0, 0.0, 3.0];
        // One chunk holding all rows.
        let chunks = vec![4.0];
        assert_eq!(sample_row(&closest, 4, &chunks, 0.5), 1);
        assert_eq!(sample_row(&closest, 4, &chunks, 1.0), 1);
        assert_eq!(sample_row(&closest, 4, &chunks, 1.5), 3);
        assert_eq!(sample_row(&closest, 4, &chunks, 9.0), 3);
        // Two chunks of two rows.
        assert_eq!(sample_row(&closest, 2, &[1.0, 3.0], 2.0), 3);
        // Zero potential takes the first row, as searchsorted does.
        assert_eq!(sample_row(&[0.0f64; 4], 2, &[0.0, 0.0], 0.0), 0);
    }
}
