//! Reading a data file of either float type, chosen by its contents.

use std::path::Path;

use ndarray::Array2;

use super::csv::read_csv;
use super::error::{DataError, Result};
use super::npy::{read_header, read_npy};

/// A data matrix in the float type it was stored in.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// `float32` data.
    F32(Array2<f32>),
    /// `float64` data.
    F64(Array2<f64>),
}

impl Samples {
    /// `(n_samples, n_features)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Samples::F32(x) => x.dim(),
            Samples::F64(x) => x.dim(),
        }
    }
}

/// Reads a `.npy` (float32 or float64, C or Fortran order) or `.csv` file.
pub fn read_samples(path: &Path) -> Result<Samples> {
    if !path.is_file() {
        let error = if path.is_dir() {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory")
        } else {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
        };
        return Err(DataError::io(path, error));
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("npy") => {
            let allowed = ["<f8", ">f8", "<f4", ">f4"];
            let header = read_header(path, 2, &allowed)?;
            if header.descr.ends_with("f4") {
                read_npy::<f32>(path).map(Samples::F32)
            } else {
                read_npy::<f64>(path).map(Samples::F64)
            }
        }
        Some("csv") => read_csv(path).map(Samples::F64),
        _ => Err(DataError::UnsupportedFile {
            path: path.to_path_buf(),
        }),
    }
}
