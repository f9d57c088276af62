//! The bench's thread joins rayon's global pool (as OpenMP's calling thread
//! joins its team), and a model of that many threads then fits there: no
//! pool of its own, no hand-off. Its own test binary: it sets the process's
//! global pool.

use ndarray::Array2;
use pythonvsrust_kmeans::cli::join_global_pool;
use pythonvsrust_kmeans::kmeans::{in_pool_of, Init, KMeansParams};

#[test]
fn the_calling_thread_joins_the_global_pool_and_fits_there() {
    join_global_pool(2).unwrap();
    assert_eq!(rayon::current_thread_index(), Some(0));
    assert!(in_pool_of(2) && !in_pool_of(1) && !in_pool_of(3));
    // Once only.
    let again = join_global_pool(2).unwrap_err().to_string();
    assert!(again.contains("global pool"), "{again}");

    let x = Array2::from_shape_fn((6000, 3), |(i, f)| ((i * 7 + f * 13) % 101) as f64);
    let init = Array2::from_shape_fn((5, 3), |(j, f)| x[[j * 997, f]]);
    let params = KMeansParams::new(5).init(Init::Given(init));
    let here = params.clone().threads(2).check().unwrap();
    here.start_threads().unwrap();
    let fit = here.fit(x.view()).unwrap();
    // Its own pool would be a second pool of two; a fit elsewhere, the same.
    let elsewhere = params.threads(2).check().unwrap();
    let other = std::thread::spawn(move || elsewhere.fit(x.view()).unwrap())
        .join()
        .unwrap();
    assert_eq!(fit, other);
    assert_eq!(rayon::current_num_threads(), 2);
}
