//! Checks on the data a fit is given.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::chunks::task_min_len;
use super::error::{KMeansError, Result};
use super::float::Float;

/// Fails on the first NaN or infinity, naming its row and column.
pub fn check_finite<F: Float>(x: ArrayView2<F>, what: &'static str) -> Result<()> {
    finite_max_abs(x, what).map(|_| ())
}

/// The largest magnitude and whether every value is finite, in eight lanes
/// of branch-free selects (the loop vectorises).
#[inline(always)] // into the step's per-instruction-set functions
pub(super) fn scan<F: Float>(values: &[F]) -> (f64, bool) {
    let mut max = [F::zero(); 8];
    let mut finite = [true; 8];
    let chunks = values.chunks_exact(8);
    let mut tail = (F::zero(), true);
    for &v in chunks.remainder() {
        let a = v.abs();
        tail.0 = if a > tail.0 { a } else { tail.0 };
        tail.1 &= a <= F::max_value();
    }
    for chunk in chunks {
        for l in 0..8 {
            let a = chunk[l].abs();
            max[l] = if a > max[l] { a } else { max[l] };
            // False for NaN and infinities alike.
            finite[l] &= a <= F::max_value();
        }
    }
    let max = max.iter().fold(tail.0, |m, &v| if v > m { v } else { m });
    (max.as_f64(), tail.1 && finite.iter().all(|&f| f))
}

/// The largest magnitude in `x`, or the first NaN or infinity as an error
/// naming its row and column. One parallel pass.
pub fn finite_max_abs<F: Float>(x: ArrayView2<F>, what: &'static str) -> Result<f64> {
    // Any contiguous layout (C or Fortran order) is scanned in place.
    let (max, finite) = match x.as_slice_memory_order() {
        Some(flat) => flat
            .par_chunks(1 << 16)
            .with_min_len(task_min_len())
            .map(scan)
            .reduce(|| (0.0, true), |a, b| (a.0.max(b.0), a.1 && b.1)),
        None => scan(&x.iter().copied().collect::<Vec<_>>()),
    };
    if finite {
        return Ok(max);
    }
    Err(locate_non_finite(x, what))
}

/// The error naming the first NaN or infinity of `x`, which must hold one.
pub(super) fn locate_non_finite<F: Float>(x: ArrayView2<F>, what: &'static str) -> KMeansError {
    for ((row, column), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return KMeansError::NonFinite {
                what,
                row,
                column,
                value: value.as_f64(),
            };
        }
    }
    unreachable!("a non-finite value was seen but not found again")
}

/// Fails unless `x` has at least one row and one column.
pub fn check_not_empty<F>(x: ArrayView2<F>) -> Result<()> {
    let (n_samples, n_features) = x.dim();
    if n_samples == 0 || n_features == 0 {
        return Err(KMeansError::EmptyData {
            n_samples,
            n_features,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn infinity_is_found_with_its_position() {
        let x = array![[1.0, 2.0], [3.0, f64::NEG_INFINITY]];
        let err = check_finite(x.view(), "data").unwrap_err();
        assert!(matches!(
            err,
            KMeansError::NonFinite {
                row: 1,
                column: 1,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "data: non-finite value (-inf) at row 1, column 1"
        );
    }

    #[test]
    fn empty_arrays_are_rejected() {
        assert!(check_not_empty(Array2::<f64>::zeros((0, 3)).view()).is_err());
        assert!(check_not_empty(Array2::<f64>::zeros((3, 0)).view()).is_err());
        assert!(check_not_empty(Array2::<f64>::zeros((1, 1)).view()).is_ok());
    }
}
