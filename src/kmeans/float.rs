//! The float types the k-means runs on.

use std::fmt::Display;
use std::iter::Sum;
use std::ops::SubAssign;

use super::simd::Element;

/// `f32` or `f64`: the k-means runs end to end in the type of its input.
/// Sealed: its kernels come with it (`as_f64` and `from_f64` too).
///
/// Sums that decide results across many samples (potentials, inertia) are
/// carried in `f64` whatever the element type.
pub trait Float: Element + ndarray::ScalarOperand + SubAssign + Sum + Display {
    /// The type's name as NumPy spells it (`float32`, `float64`).
    const NAME: &'static str;
}

impl Float for f32 {
    const NAME: &'static str = "float32";
}

impl Float for f64 {
    const NAME: &'static str = "float64";
}
