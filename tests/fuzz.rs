//! Property tests over everything that reads untrusted input: the `.npy` and
//! CSV readers and the parameter checks. Whatever the input, the answer is a
//! value or a typed error, never a panic. Bounded: a few hundred cases each.

use ndarray::Array2;
use proptest::prelude::*;
use pythonvsrust_kmeans::data::read_samples;
use pythonvsrust_kmeans::kmeans::{Init, KMeansParams};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    }
}

/// A version 1 `.npy` file with this header text and data.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_npy_reader(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_samples(&path);
    }

    #[test]
    fn arbitrary_headers_never_panic_the_npy_reader(
        descr in prop::sample::select(vec!["<f8", "<f4", ">f8", "<i8", "|u1", "<f8'", "", "<c16"]),
        fortran in prop::sample::select(vec!["True", "False", "1", "Maybe"]),
        shape in prop::sample::select(vec!["(3, 2)", "(2,)", "()", "(0, 4)", "(4, 0)", "(99999999999999999999, 2)",
                                           "(18446744073709551615, 18446744073709551615)", "(1, 2, 3)", "(-1, 2)", "(3, 2"]),
        data_len in 0usize..100,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
        std::fs::write(&path, npy(&header, &vec![0u8; data_len])).unwrap();
        if let Ok(samples) = read_samples(&path) {
            // A successful read holds exactly what the header declared.
            let (n, d) = samples.dim();
            let item = if descr.ends_with('4') { 4 } else { 8 };
            prop_assert_eq!(n * d * item, data_len);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_csv_reader(text in "[0-9a-z.,eE+\\- \\n\"]{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, &text).unwrap();
        if let Ok(pythonvsrust_kmeans::data::Samples::F64(x)) = read_samples(&path) {
            prop_assert!(x.iter().all(|v| !v.is_nan() || text.contains("nan")));
        }
    }

    #[test]
    fn arbitrary_parameters_give_a_fit_or_an_error(
        n in 0usize..40,
        d in 0usize..5,
        k in 0usize..50,
        max_iter in 0usize..5,
        tol in prop::sample::select(vec![0.0, 1e-4, -1.0, f64::NAN, f64::INFINITY]),
        threads in 0usize..3,
        init_rows in 0usize..6,
        init_cols in 0usize..6,
        given in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) % 13) as f64 - 6.0);
        let mut params = KMeansParams::new(k).max_iter(max_iter).tol(tol).seed(seed);
        if threads > 0 {
            params = params.threads(threads);
        }
        if given {
            params = params.init(Init::Given(Array2::from_elem((init_rows, init_cols), 0.5)));
        }
        if let Ok(model) = params.check() {
            if let Ok(fit) = model.fit(x.view()) {
                prop_assert_eq!(fit.centroids.dim(), (k, d));
                prop_assert_eq!(fit.labels.len(), n);
                prop_assert!(fit.inertia.is_finite() && fit.inertia >= 0.0);
                prop_assert!(fit.labels.iter().all(|&l| (l as usize) < k));
            }
        }
    }
}
