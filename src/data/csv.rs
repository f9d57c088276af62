//! CSV tables of numbers: an optional header row, then one row per sample.

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::error::{DataError, Result};
use super::npy::write_atomic;

/// Reads a numeric CSV file. The first row is taken as a header when none of
/// its fields is a number; a first row mixing numbers and other text is a
/// data row with a typo, an error (never silently dropped as a header).
/// Every row must have the same number of fields.
pub fn read_csv(path: &Path) -> Result<Array2<f64>> {
    let csv_error = |line: usize, reason: String| DataError::Csv {
        path: path.to_path_buf(),
        line,
        reason,
    };
    if path.is_dir() {
        return Err(DataError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory"),
        ));
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_path(path)
        .map_err(|e| match e.into_kind() {
            ::csv::ErrorKind::Io(io) => DataError::io(path, io),
            other => csv_error(0, format!("{other:?}")),
        })?;
    let mut values = Vec::new();
    let mut n_features = None;
    let mut n_rows = 0;
    for (index, record) in reader.records().enumerate() {
        let line = index + 1;
        let record = record.map_err(|e| csv_error(line, e.to_string()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let parsed: Vec<Option<f64>> = record.iter().map(|f| f.parse::<f64>().ok()).collect();
        if index == 0 && parsed.iter().all(Option::is_none) {
            continue; // a header row
        }
        let width = *n_features.get_or_insert(parsed.len());
        if parsed.len() != width {
            return Err(csv_error(
                line,
                format!("{} fields, expected {width}", parsed.len()),
            ));
        }
        for (column, (value, field)) in parsed.iter().zip(record.iter()).enumerate() {
            match value {
                Some(v) => values.push(*v),
                None => {
                    let hint = if index == 0 {
                        " (a header row would hold no numbers)"
                    } else {
                        ""
                    };
                    return Err(csv_error(
                        line,
                        format!("field {} ('{field}') is not a number{hint}", column + 1),
                    ));
                }
            }
        }
        n_rows += 1;
    }
    let n_features = n_features.unwrap_or(0);
    Array2::from_shape_vec((n_rows, n_features), values).map_err(|e| csv_error(0, e.to_string()))
}

/// Writes `x` as CSV with a header `x0,x1,...`, atomically.
pub fn write_csv(path: &Path, x: ArrayView2<f64>) -> Result<()> {
    write_atomic(path, |w| {
        let header: Vec<String> = (0..x.ncols()).map(|j| format!("x{j}")).collect();
        writeln!(w, "{}", header.join(","))?;
        let mut line = String::new();
        for row in x.rows() {
            line.clear();
            for (j, v) in row.iter().enumerate() {
                if j > 0 {
                    line.push(',');
                }
                // `{}` prints the shortest text that reads back to the same f64.
                line.push_str(&v.to_string());
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        Ok(())
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let x = array![[0.1, -2.5e-300], [1e300, 3.0]];
        write_csv(&path, x.view()).unwrap();
        assert_eq!(read_csv(&path).unwrap(), x);
    }

    #[test]
    fn header_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "1,2\n3,4\n").unwrap();
        assert_eq!(read_csv(&path).unwrap(), array![[1.0, 2.0], [3.0, 4.0]]);
    }

    #[test]
    fn ragged_and_non_numeric_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "a,b\n1,2\n3\n").unwrap();
        let err = read_csv(&path).unwrap_err();
        assert!(matches!(err, DataError::Csv { line: 3, .. }), "{err}");
        std::fs::write(&path, "1,2\n3,x\n").unwrap();
        let err = read_csv(&path).unwrap_err();
        assert!(matches!(err, DataError::Csv { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("'x'"));
    }

    #[test]
    fn a_first_row_with_a_typo_is_an_error_not_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.csv");
        std::fs::write(&path, "1.0,2.o\n3.0,4.0\n").unwrap();
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("'2.o'"), "{err}");
        assert!(err.contains("header"), "{err}");
    }
}
