//! A fit on the calling thread hands no task to a pool: with the only
//! thread of rayon's global pool held busy, a task handed there would never
//! run and the fit would hang. Every pass is reached: k-means++ and the
//! data's own check, steps with and without bounds, the centroids' gaps
//! and the sums' merge at large k, the bounds' early end, an empty
//! cluster's relocation, the final assignment and inertia. (Its own test
//! binary: it sets up the global pool.)

use std::sync::mpsc;
use std::time::Duration;

use ndarray::{s, Array2};
use pythonvsrust_kmeans::data::{generate_blobs, BlobSpec, Scenario};
use pythonvsrust_kmeans::kmeans::{kmeans_plusplus, Init, KMeansParams, Pruning};

fn blobs(n: usize, d: usize, k: usize, std: f64) -> Array2<f64> {
    let spec = BlobSpec::new(Scenario::new(n, d, k).unwrap()).with_std(std);
    generate_blobs(&spec).unwrap().x
}

#[test]
fn fits_on_the_calling_thread_hand_no_task_to_a_pool() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    // The data and seeded starts first: they are made in the global pool.
    let overlapping = blobs(5000, 100, 64, 3.0);
    let separated = blobs(5000, 20, 30, 1.0);
    let seeded = kmeans_plusplus(separated.view(), 30, 0);
    let wide = blobs(3000, 128, 256, 3.0);
    let small = blobs(1000, 10, 8, 1.0);
    // Two equal starting centroids: one cluster empties and is given a row.
    let mut twins = overlapping.slice(s![..8, ..]).to_owned();
    let first = twins.row(0).to_owned();
    twins.row_mut(1).assign(&first);

    let (release, hold) = mpsc::channel::<()>();
    let (held, is_held) = mpsc::channel();
    rayon::spawn(move || {
        held.send(()).unwrap();
        let _ = hold.recv();
    });
    is_held.recv().unwrap();

    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let one = |k| KMeansParams::new(k).threads(1);
        let mut fits = Vec::new();
        // Many chunks, k * d above a merge block, k-means++ and the data's
        // own check, with bounds and without.
        for pruning in [Pruning::Auto, Pruning::Never] {
            let model = one(64).pruning(pruning).check().unwrap();
            fits.push(model.fit(overlapping.view()).unwrap());
        }
        // The bounds' early end, the data checked in the first step.
        let model = one(30).init(Init::Given(seeded)).check().unwrap();
        fits.push(model.fit(separated.view()).unwrap());
        // The centroids' gaps in several tasks.
        let model = one(256).max_iter(3).check().unwrap();
        fits.push(model.fit(wide.view()).unwrap());
        // Relocation; two steps, then the final assignment and inertia.
        let model = one(8).init(Init::Given(twins)).max_iter(2);
        fits.push(model.check().unwrap().fit(overlapping.view()).unwrap());
        // Small data: two threads asked for, or none.
        let two = KMeansParams::new(8).threads(2).check().unwrap();
        let none = KMeansParams::new(8).check().unwrap();
        let (a, b) = (two.fit(small.view()).unwrap(), none.fit(small.view()));
        assert_eq!(a, b.unwrap());
        fits.push(a);
        done.send(fits.iter().map(|f| f.n_iter).collect::<Vec<_>>())
            .unwrap();
    });
    let iterations = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("a fit on the calling thread waited on the global pool");
    assert!(iterations.iter().all(|&n| n >= 1), "{iterations:?}");
    drop(release);
}
