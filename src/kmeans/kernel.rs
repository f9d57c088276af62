//! The distance kernel: each row against all centroids, through
//! `||c||^2 - 2 x.c` (the `||x||^2` term is the same for every centroid and is
//! left out, as scikit-learn does).

use ndarray::ArrayView2;

use super::float::Float;

/// Centroids laid out for the kernel: transposed to `(n_features, k)` so the
/// inner loop runs over centroids with unit stride (the compiler vectorises
/// it without reordering any sum), with their squared norms.
#[derive(Debug, Clone)]
pub struct PreparedCentroids<F> {
    /// `(n_features, k)`, row-major.
    transposed: Vec<F>,
    /// `||c_j||^2`, `(k,)`.
    norms: Vec<F>,
    k: usize,
    n_features: usize,
}

impl<F: Float> PreparedCentroids<F> {
    /// Prepares `(k, n_features)` centroids.
    pub fn new(centroids: ArrayView2<F>) -> Self {
        let (k, n_features) = centroids.dim();
        let mut transposed = vec![F::zero(); k * n_features];
        for ((j, f), &value) in centroids.indexed_iter() {
            transposed[f * k + j] = value;
        }
        let norms = centroids
            .rows()
            .into_iter()
            .map(|c| c.iter().map(|&v| v * v).sum())
            .collect();
        PreparedCentroids {
            transposed,
            norms,
            k,
            n_features,
        }
    }

    /// A scratch buffer of the right length for [`nearest`](Self::nearest).
    pub fn scratch(&self) -> Vec<F> {
        vec![F::zero(); self.k]
    }

    /// The index of the nearest centroid to `x` (`n_features` values); the
    /// lowest index wins a tie. `scratch` holds `k` values.
    #[inline]
    pub fn nearest(&self, x: &[F], scratch: &mut [F]) -> u32 {
        debug_assert_eq!(x.len(), self.n_features);
        let k = self.k;
        let scores = &mut scratch[..k];
        scores.copy_from_slice(&self.norms);
        let minus_two = -(F::one() + F::one());
        for (&xf, column) in x.iter().zip(self.transposed.chunks_exact(k)) {
            let m = minus_two * xf;
            for (s, &c) in scores.iter_mut().zip(column) {
                *s += m * c;
            }
        }
        let mut best = 0;
        let mut best_score = scores[0];
        for (j, &s) in scores.iter().enumerate().skip(1) {
            if s < best_score {
                best = j;
                best_score = s;
            }
        }
        best as u32
    }
}

/// `||a - b||^2`, summed in order.
#[inline]
pub fn squared_distance<F: Float>(a: &[F], b: &[F]) -> F {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| (p - q) * (p - q))
        .fold(F::zero(), |acc, v| acc + v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn nearest_is_the_closest_centroid_and_ties_go_to_the_lowest_index() {
        let centroids = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]];
        let prepared = PreparedCentroids::new(centroids.view());
        let mut scratch = prepared.scratch();
        assert_eq!(prepared.nearest(&[0.1, 0.2], &mut scratch), 0);
        assert_eq!(prepared.nearest(&[1.9, 0.2], &mut scratch), 1);
        assert_eq!(prepared.nearest(&[-1.0, 5.0], &mut scratch), 2);
        // Equidistant from 0 and 1: the lower index wins.
        assert_eq!(prepared.nearest(&[1.0, -3.0], &mut scratch), 0);
    }

    #[test]
    fn squared_distance_is_exact_on_small_integers() {
        assert_eq!(squared_distance(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]), 25.0);
    }
}
