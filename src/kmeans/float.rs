//! The float types the k-means runs on.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, SubAssign};

/// `f32` or `f64`: the k-means runs end to end in the type of its input.
///
/// Sums that decide results across many samples (potentials, inertia) are
/// carried in `f64` whatever the element type.
pub trait Float:
    num_traits::Float
    + ndarray::ScalarOperand
    + AddAssign
    + SubAssign
    + Sum
    + super::kernel::SimdTiles
    + super::kernel::WideDistances
    + super::guess::FirstEight
    + Default
    + Send
    + Sync
    + Debug
    + Display
    + 'static
{
    /// Widens (or keeps) the value as `f64`.
    fn as_f64(self) -> f64;
    /// Converts from `f64`, rounding to nearest for `f32`.
    fn from_f64(value: f64) -> Self;
    /// The type's name as NumPy spells it (`float32`, `float64`).
    const NAME: &'static str;
}

impl Float for f32 {
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    const NAME: &'static str = "float32";
}

impl Float for f64 {
    fn as_f64(self) -> f64 {
        self
    }
    fn from_f64(value: f64) -> Self {
        value
    }
    const NAME: &'static str = "float64";
}
