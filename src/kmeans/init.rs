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

use super::chunks::{seeding_chunk_rows, task_min_len};
use super::float::Float;
use super::simd::{Isa, Kernels, Simd, WithSimd};

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
    let isa = Isa::detect();
    x.par_chunks(rows * d)
        .zip(closest.par_chunks_mut(rows))
        .with_min_len(task_min_len())
        .map(|(x, closest)| {
            isa.dispatch(UpdateClosest {
                x,
                d,
                centroid,
                closest,
            })
        })
        .collect()
}

/// One chunk of [`update_closest`], in the instruction set's own function
/// (the distances are the same bits on every one).
struct UpdateClosest<'a, F> {
    x: &'a [F],
    d: usize,
    centroid: &'a [F],
    closest: &'a mut [F],
}

impl<F: Float> WithSimd for UpdateClosest<'_, F> {
    type Output = f64;

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> f64 {
        let kernels = F::kernels(simd);
        let mut total = 0.0;
        for (point, best) in self.x.chunks_exact(self.d).zip(self.closest) {
            let distance = kernels.squared_distance(point, self.centroid);
            if distance < *best {
                *best = distance;
            }
            total += best.as_f64();
        }
        total
    }
}

/// The potential each candidate would leave: `sum_i min(closest_i, ||x_i - x_cand||^2)`.
fn score_candidates<F: Float>(
    x: &[F],
    d: usize,
    rows: usize,
    closest: &[F],
    candidates: &[usize],
) -> Vec<f64> {
    let isa = Isa::detect();
    let candidates: Vec<&[F]> = candidates
        .iter()
        .map(|&cand| &x[cand * d..(cand + 1) * d])
        .collect();
    let partials: Vec<Vec<f64>> = x
        .par_chunks(rows * d)
        .zip(closest.par_chunks(rows))
        .with_min_len(task_min_len())
        .map(|(x, closest)| {
            isa.dispatch(ScoreCandidates {
                x,
                d,
                closest,
                candidates: &candidates,
            })
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

/// One chunk of [`score_candidates`], in the instruction set's own function.
struct ScoreCandidates<'a, F> {
    x: &'a [F],
    d: usize,
    closest: &'a [F],
    candidates: &'a [&'a [F]],
}

impl<F: Float> WithSimd for ScoreCandidates<'_, F> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn run<S: Simd>(self, simd: S) -> Vec<f64> {
        let kernels = F::kernels(simd);
        let mut totals = vec![0.0; self.candidates.len()];
        for (point, &best) in self.x.chunks_exact(self.d).zip(self.closest) {
            for (total, &candidate) in totals.iter_mut().zip(self.candidates) {
                let distance = kernels.squared_distance(point, candidate);
                *total += if distance < best { distance } else { best }.as_f64();
            }
        }
        totals
    }
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
    fn chunks_score_the_same_bits_on_every_instruction_set() {
        fn check<F: Float>(d: usize) {
            let x: Vec<F> = (0..97 * d)
                .map(|i| F::from_f64(((i * 7919) % 1013) as f64 / 7.0 - 70.0))
                .collect();
            let closest: Vec<F> = (0..97).map(|i| F::from_f64(i as f64 * 31.5)).collect();
            let candidates: Vec<&[F]> = [3, 50, 96]
                .iter()
                .map(|&c| &x[c * d..(c + 1) * d])
                .collect();
            let score = |isa: Isa| {
                isa.dispatch(ScoreCandidates {
                    x: &x,
                    d,
                    closest: &closest,
                    candidates: &candidates,
                })
            };
            let update = |isa: Isa| {
                let mut closest = closest.clone();
                let total = isa.dispatch(UpdateClosest {
                    x: &x,
                    d,
                    centroid: &x[7 * d..8 * d],
                    closest: &mut closest,
                });
                (total.to_bits(), closest)
            };
            let (portable_scores, portable_closest) = (score(Isa::Portable), update(Isa::Portable));
            assert!(portable_closest.1.iter().zip(&closest).any(|(a, b)| a < b));
            for isa in Isa::supported() {
                let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&score(isa)), bits(&portable_scores), "{isa:?} d={d}");
                assert_eq!(update(isa), portable_closest, "{isa:?} d={d}");
            }
        }
        for d in [1, 3, 8, 17, 100] {
            check::<f64>(d);
            check::<f32>(d);
        }
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
