//! Checks on the data a fit is given.

use ndarray::ArrayView2;

use super::float::Float;
use crate::error::{Error, Result};

/// Fails on the first NaN or infinity, naming its row and column.
pub fn check_finite<F: Float>(x: ArrayView2<F>, what: &'static str) -> Result<()> {
    if x.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    for ((row, column), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what,
                row,
                column,
                value: value.as_f64(),
            });
        }
    }
    unreachable!("a non-finite value was seen but not found again")
}

/// Fails unless `x` has at least one row and one column.
pub fn check_not_empty<F>(x: ArrayView2<F>) -> Result<()> {
    let (n_samples, n_features) = x.dim();
    if n_samples == 0 || n_features == 0 {
        return Err(Error::EmptyData {
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
            Error::NonFinite {
                row: 1,
                column: 1,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "data has a non-finite value (-inf) at row 1, column 1"
        );
    }

    #[test]
    fn empty_arrays_are_rejected() {
        assert!(check_not_empty(Array2::<f64>::zeros((0, 3)).view()).is_err());
        assert!(check_not_empty(Array2::<f64>::zeros((3, 0)).view()).is_err());
        assert!(check_not_empty(Array2::<f64>::zeros((1, 1)).view()).is_ok());
    }
}
