//! The fit's tests: results against brute force and scikit-learn's rules,
//! with and without bounds, guesses and the screen; errors and extreme
//! magnitudes.

use super::super::bounds::Bounds;
use super::super::fit::{inertia_from_norms, ClusterStats, KMeansFit, Work};
use super::super::float::Float;
use super::super::params::{Init, Pruning};
use super::super::step::{lloyd_step, Extras, Step, StepBuffers, Totals};
use super::super::KMeansError;
use crate::kmeans::KMeansParams;
use ndarray::{array, Array2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn fit_from<F: Float>(x: &Array2<F>, init: Array2<F>) -> KMeansFit<F> {
    KMeansParams::new(init.nrows())
        .init(Init::Given(init))
        .check()
        .unwrap()
        .fit(x.view())
        .unwrap()
}

/// Textbook Lloyd with nothing clever: full distances, sequential sums.
fn brute_force(
    x: &Array2<f64>,
    mut centroids: Array2<f64>,
    max_iter: usize,
) -> (Vec<u32>, Array2<f64>, usize) {
    let (n, d) = x.dim();
    let k = centroids.nrows();
    let mut labels = vec![u32::MAX; n];
    for iteration in 0..max_iter {
        let mut changed = false;
        for i in 0..n {
            let mut best = (f64::INFINITY, 0);
            for j in 0..k {
                let dist: f64 = (0..d)
                    .map(|f| (x[[i, f]] - centroids[[j, f]]).powi(2))
                    .sum();
                if dist < best.0 {
                    best = (dist, j);
                }
            }
            changed |= labels[i] != best.1 as u32;
            labels[i] = best.1 as u32;
        }
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for i in 0..n {
            let j = labels[i] as usize;
            counts[j] += 1;
            for f in 0..d {
                sums[[j, f]] += x[[i, f]];
            }
        }
        for j in 0..k {
            assert!(counts[j] > 0, "the brute force has no empty-cluster rule");
            for f in 0..d {
                centroids[[j, f]] = sums[[j, f]] / counts[j] as f64;
            }
        }
        if !changed {
            return (labels, centroids, iteration + 1);
        }
    }
    panic!("brute force did not converge");
}

fn init_of(x: &Array2<f64>, k: usize) -> Array2<f64> {
    Array2::from_shape_fn((k, x.ncols()), |(j, f)| x[[j * 7, f]])
}

fn random_blobs(n: usize, d: usize, k: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
    let x = Array2::from_shape_fn((n, d), |(i, f)| {
        centres[[i % k, f]] + rng.gen_range(-3.0..3.0)
    });
    let init = init_of(&x, k);
    (x, init)
}

#[test]
fn known_answer() {
    let x = array![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]];
    let fit = fit_from(&x, array![[0.0, 0.0], [1.0, 1.0]]);
    assert_eq!(fit.centroids, array![[0.25, 0.0], [0.75, 1.0]]);
    assert_eq!(fit.labels.to_vec(), vec![0, 0, 1, 1]);
    assert_eq!(fit.inertia, 0.25);
    assert_eq!(fit.n_iter, 2);
    assert!(fit.converged);
    // Two passes: the first step's also checks the data and scores 4
    // rows x 2 centroids; the second's also sums the final inertia (one
    // distance per row). Too little work per row for bounds.
    assert_eq!(fit.work.column(|p| p.distances), [8, 12]);
    assert_eq!(fit.work.column(|p| p.rows), [4, 4]);
}

#[test]
fn matches_brute_force_lloyd() {
    // (2000, 32, 20) runs through the f32 screen (`screen.rs`).
    for (seed, (n, d, k)) in [
        (2000, 2, 5),
        (1500, 7, 3),
        (3000, 16, 8),
        (700, 1, 4),
        (2000, 32, 20),
    ]
    .into_iter()
    .enumerate()
    {
        let (x, init) = random_blobs(n, d, k, seed as u64);
        let (labels, centroids, n_iter) = brute_force(&x, init.clone(), 300);
        let fit = fit_from(&x, init);
        assert_eq!(fit.labels.to_vec(), labels, "labels, scenario {seed}");
        assert_eq!(fit.n_iter, n_iter);
        for (a, b) in fit.centroids.iter().zip(&centroids) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let reference: f64 = (0..n)
            .map(|i| {
                (0..d)
                    .map(|f| (x[[i, f]] - centroids[[labels[i] as usize, f]]).powi(2))
                    .sum::<f64>()
            })
            .sum();
        assert!((fit.inertia - reference).abs() <= 1e-12 * reference);
    }
}

#[test]
fn distances_the_screen_computes_in_f32_are_counted_apart() {
    let (n, d, k) = (2000, 32, 20);
    // No clusters: no row is proved by a guess (see `super::guess`),
    // every row of the first step goes through the kernel.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-10.0..10.0));
    let init = init_of(&x, k);
    let fit = fit_from(&x, init.clone());
    let work = &fit.work;

    let screened = super::super::simd::Isa::detect() != super::super::simd::Isa::Portable
        && !super::super::screen::switched_off();
    // The first step scores every row in f32 (then some again in f64),
    // plus the guesses it tried before giving up (in f32, on a few
    // features) and its per-cluster sums of distances until then (one a
    // row, dropped with the guesses); f32 data and plain passes have none
    // in f32.
    let first = work.per_pass[0].f32_distances;
    let screen = if screened { (n * k) as u64 } else { 0 };
    let guesses_at_most = (n * k * super::super::simd::FIRST_FEATURES / d) as u64;
    assert!(
        first >= screen && first <= screen + guesses_at_most,
        "{first}"
    );
    assert!(work.per_pass[0].distances >= (n * k) as u64);
    let f32_fit = fit_from(&x.mapv(|v| v as f32), init.mapv(|v| v as f32));
    assert!(f32_fit.work.per_pass.iter().all(|p| p.f32_distances == 0));
}

fn fit_with_bounds<F: Float>(x: &Array2<F>, init: &Array2<F>, bounds: bool) -> KMeansFit<F> {
    fit_pruned(
        x,
        init,
        if bounds {
            Pruning::Always
        } else {
            Pruning::Never
        },
    )
}

fn fit_pruned<F: Float>(x: &Array2<F>, init: &Array2<F>, pruning: Pruning) -> KMeansFit<F> {
    KMeansParams::new(init.nrows())
        .init(Init::Given(init.clone()))
        .pruning(pruning)
        .check()
        .unwrap()
        .fit(x.view())
        .unwrap()
}

/// The same fit with and without bounds: labels, iterations and
/// convergence to the bit, centroids and inertia within `tolerance`
/// (relative; with bounds, sums are updated rather than summed afresh,
/// and a fit whose last step the bounds settled alone sums its inertia
/// from per-cluster sums). Returns whether the bounds saved a pass.
fn assert_same_fit<F: Float>(
    with: &KMeansFit<F>,
    without: &KMeansFit<F>,
    tolerance: f64,
    what: &str,
) -> bool {
    assert_eq!(with.labels, without.labels, "labels, {what}");
    // Bounds update the sums with the rows that change cluster instead
    // of summing afresh: the centroids agree to rounding.
    let scale = without
        .centroids
        .iter()
        .fold(1.0f64, |m, c| m.max(c.as_f64().abs()));
    for (a, b) in with.centroids.iter().zip(&without.centroids) {
        let gap = (a.as_f64() - b.as_f64()).abs();
        assert!(gap <= tolerance * scale, "centroids {a} and {b}, {what}");
    }
    assert_eq!(with.n_iter, without.n_iter, "iterations, {what}");
    assert_eq!(with.converged, without.converged, "convergence, {what}");
    let gap = (with.inertia - without.inertia).abs() / without.inertia.max(f64::MIN_POSITIVE);
    assert!(
        gap <= tolerance,
        "inertia {} with bounds, {} without ({gap:e}), {what}",
        with.inertia,
        without.inertia
    );
    with.work.passes() < without.work.passes()
}

/// `n` rows around `k` centres in `[-10, 10]^d` (row `i` around centre
/// `i % k`, uniform noise within `spread`), optionally rounded to a grid
/// of step 4 (duplicates and exact ties): the centres and the rows.
fn noisy_blobs(
    rng: &mut Xoshiro256PlusPlus,
    (n, d, k): (usize, usize, usize),
    spread: f64,
    on_grid: bool,
) -> (Array2<f64>, Array2<f64>) {
    let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
    let mut x = Array2::from_shape_fn((n, d), |(i, f)| {
        centres[[i % k, f]] + rng.gen_range(-spread..spread)
    });
    if on_grid {
        x.mapv_inplace(|v: f64| (v / 4.0).round());
    }
    (centres, x)
}

/// A fit with bounds reads every row only in its first steps and for
/// its final inertia: steps near the end (after one that moved at most
/// a label in 100000) do not sum their inertia, which would make them
/// read every row, as a plain fit's steps do anyway.
#[test]
fn a_fit_with_bounds_reads_every_row_only_where_it_must() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(41);
    let (centres, x) = noisy_blobs(&mut rng, (100_000, 2, 12), 6.0, false);
    let init = centres.mapv(|v| v + rng.gen_range(-3.0..3.0));
    let with = fit_with_bounds(&x, &init, true);
    let without = fit_with_bounds(&x, &init, false);
    assert!(with.converged && with.n_iter > 20, "{} steps", with.n_iter);
    assert_same_fit(&with, &without, 1e-12, "overlapping blobs");
    // The first two steps send (nearly) every row to the kernel or to
    // be tightened; after them, only the final inertia reads them all.
    let n = x.nrows() as u64;
    let rows = &with.work.column(|p| p.rows);
    assert_eq!(rows.len(), with.n_iter + 1, "{rows:?}");
    assert_eq!(rows.last(), Some(&n), "{rows:?}");
    assert!(rows[2..rows.len() - 1].iter().all(|&r| r < n), "{rows:?}");
    assert!(without.work.per_pass.iter().all(|p| p.rows == n));
    let (_, inertia) = crate::kmeans::assign_and_inertia(x.view(), with.centroids.view());
    assert_eq!(inertia.to_bits(), with.inertia.to_bits());
}

/// Fits of many features start by guessing (see `super::guess`): the
/// same fits as without bounds, separated or not, with duplicates, ties
/// and empty clusters; on separated blobs the first pass proves most
/// guesses and scores few rows against every centroid.
#[test]
fn guessed_first_assignments_give_the_same_fits() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
    let mut cheap_first_passes = 0;
    for case in 0..12 {
        let n = rng.gen_range(300..2500);
        let d = rng.gen_range(super::super::guess::MIN_FEATURES..70);
        let k = rng.gen_range(2..32);
        let spread = [0.5, 3.0, 12.0][case % 3];
        let (centres, x) = noisy_blobs(&mut rng, (n, d, k), spread, case % 4 == 1);
        // Near the centres (the guesses can be proved), or rows of the
        // data (some clusters without a centroid near).
        let mut init = if case % 3 == 0 {
            centres.mapv(|v| v + rng.gen_range(-0.5..0.5))
        } else {
            Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]])
        };
        if case % 4 == 2 {
            // A centroid nowhere near the data: an empty cluster to relocate.
            init.row_mut(k - 1).fill(1e3);
        }
        if case % 4 == 3 {
            // Two centroids in one place: every row near them is a tie.
            let first = init.row(0).to_owned();
            init.row_mut(1).assign(&first);
        }
        let what = format!("case {case}: n={n} d={d} k={k} spread={spread}");
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        assert_same_fit(&with, &without, 1e-12, &format!("f64 {what}"));
        // The first pass: k distances a row without the guess.
        if with.work.per_pass[0].distances < (n * k / 2) as u64 {
            cheap_first_passes += 1;
        }
        let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        let with = fit_with_bounds(&x32, &init32, true);
        let without = fit_with_bounds(&x32, &init32, false);
        assert_same_fit(&with, &without, 1e-6, &format!("f32 {what}"));
    }
    assert!(cheap_first_passes >= 3, "{cheap_first_passes}");
}

#[test]
fn bounds_give_the_same_fits() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let mut settled = 0;
    for case in 0..24 {
        let n = rng.gen_range(1..3000);
        let d = rng.gen_range(1..24);
        let k = rng.gen_range(1..40).min(n);
        let spread = [0.5, 3.0, 8.0][case % 3];
        let (_, x) = noisy_blobs(&mut rng, (n, d, k), spread, case % 4 == 1);
        let mut init = Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]]);
        if case % 4 == 2 && k > 1 {
            // A centroid nowhere near the data: an empty cluster to relocate.
            init.row_mut(k - 1).fill(1e3);
        }
        let what = format!("case {case}: n={n} d={d} k={k}");
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        settled += assert_same_fit(&with, &without, 1e-12, &format!("f64 {what}")) as usize;
        let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        let with = fit_with_bounds(&x32, &init32, true);
        let without = fit_with_bounds(&x32, &init32, false);
        assert_same_fit(&with, &without, 1e-6, &format!("f32 {what}"));
    }
    assert!(
        settled >= 2,
        "fits whose last step the bounds settled: {settled}"
    );
}

/// `f32` data is summed afresh, a chunk at a time, every step; a bounded
/// step takes the last step's sums of the chunks whose labels all held
/// (see `ChunkTotal`): the same fit as without bounds, centroids to the
/// bit, with later steps reading a fraction of the rows.
#[test]
fn f32_bounded_steps_reuse_the_sums_of_chunks_whose_labels_hold() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(43);
    for d in [8, 40] {
        let (centres, x) = noisy_blobs(&mut rng, (20_000, d, 12), 1.5 * d as f64, false);
        let init = centres.mapv(|v| v + rng.gen_range(-3.0..3.0));
        let (x, init) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        let what = format!("d={d}");
        assert_same_fit(&with, &without, 1e-6, &what);
        assert_eq!(with.centroids, without.centroids, "{what}");
        assert!(with.n_iter > 5, "{} steps, {what}", with.n_iter);
        let n = x.nrows() as u64;
        let rows = with.work.column(|p| p.rows);
        assert!(
            rows[2..with.n_iter].iter().any(|&r| r < n / 2),
            "{rows:?}, {what}"
        );
    }
}

/// With many centroids close together, Hamerly's one lower bound settles
/// few rows, and the bounded steps screen the rows they send to the kernel
/// in `f32` as a plain pass does (see `super::screen`): the same fit as
/// without bounds, with later steps' distances partly in `f32`.
#[test]
fn bounded_steps_that_settle_few_rows_screen_their_kernel_rows() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(31);
    let (n, d, k) = (3000, 40, 96);
    for on_grid in [false, true] {
        let (_, x) = noisy_blobs(&mut rng, (n, d, k), 12.0, on_grid);
        let init = Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]]);
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        let what = format!("n={n} d={d} k={k}, on a grid: {on_grid}");
        assert_same_fit(&with, &without, 1e-12, &what);
        assert!(with.n_iter > 3, "{} steps, {what}", with.n_iter);
        let screened = super::super::simd::Isa::detect() != super::super::simd::Isa::Portable
            && !super::super::screen::switched_off();
        let later_f32 = with.work.per_pass[1..with.n_iter]
            .iter()
            .filter(|p| p.f32_distances > 0)
            .count();
        assert_eq!(later_f32 > 0, screened, "{:?}, {what}", with.work.per_pass);
    }
}

/// Fits of widely overlapping blobs (`n` rows of `d` features, `k`
/// centroids, from `seed`) with bounds, in `f64` and `f32`, each checked
/// against the same fit without: their work.
fn overlapping_work_with_bounds(seed: u64, (n, d, k): (usize, usize, usize)) -> [Work; 2] {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (_, x) = noisy_blobs(&mut rng, (n, d, k), 40.0, false);
    let init = Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]]);
    let with = fit_with_bounds(&x, &init, true);
    assert_same_fit(&with, &fit_with_bounds(&x, &init, false), 1e-12, "f64");
    let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
    let with32 = fit_with_bounds(&x32, &init32, true);
    assert_same_fit(&with32, &fit_with_bounds(&x32, &init32, false), 1e-6, "f32");
    [with.work, with32.work]
}

/// Overlapping blobs with two centroids: the early bounded steps settle
/// almost no row, and tightening a bound settles none. A step after one
/// that sent most rows to the kernel takes the kernel to each block in
/// place, and once tightening has not paid in a chunk, sends its mostly
/// unsettled blocks there untightened: the same fit as without bounds,
/// with such steps computing hardly a single distance beyond the kernel's.
#[test]
fn blocks_the_bounds_mostly_fail_go_to_the_kernel_untightened() {
    let (n, k) = (20_000, 2);
    let works = overlapping_work_with_bounds(47, (n, 48, k));
    // Every row through the kernel (k distances each), few tightened.
    let (all, few) = ((n * k) as u64, (n / 4) as u64);
    for fit in &works {
        let untightened = fit.per_pass[1..fit.passes() - 1]
            .iter()
            .filter(|p| p.rows == n as u64 && (all..all + few).contains(&p.distances))
            .count();
        assert!(untightened > 0, "{:?}", fit.per_pass);
    }
}

/// Overlapping blobs with many centroids: the step after the one that
/// sets the bounds gathers the rows they leave (no step has tested them
/// yet), but they settle almost none. Tightening stops in each chunk once
/// it settles too few, and the rows left, in runs, are scored where they
/// lie: the same fit as without bounds, with such a step computing few
/// distances beyond the kernel's.
#[test]
fn bounds_that_settle_nothing_leave_their_rows_in_place() {
    let (n, k) = (20_000, 20);
    let works = overlapping_work_with_bounds(53, (n, 40, k));
    // Every row through the kernel, a block's worth tightened a chunk.
    let (all, few) = ((n * k) as u64, (n / 4) as u64);
    for fit in &works {
        let second = &fit.per_pass[1];
        assert_eq!(second.rows, n as u64, "{:?}", fit.per_pass);
        assert!(
            (all..all + few).contains(&second.distances),
            "{:?}",
            fit.per_pass
        );
    }
}

/// Fits of overlapping blobs, where the first steps send most rows to
/// the kernel and later ones fewer: `Pruning::Auto` suspends the bounds
/// and sets them again, with the same fit as without bounds.
#[test]
fn suspended_bounds_give_the_same_fits() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
    let mut resumed = 0;
    for case in 0..6 {
        let (n, d, k) = (rng.gen_range(2000..4000), rng.gen_range(16..40), 8);
        let (_, x) = noisy_blobs(&mut rng, (n, d, k), 15.0, case % 3 == 1);
        let init = Array2::from_shape_fn((k, d), |(j, f)| x[[(j * 7919) % n, f]]);
        let auto = fit_pruned(&x, &init, Pruning::Auto);
        let never = fit_pruned(&x, &init, Pruning::Never);
        let what = format!(
            "case {case}: n={n} d={d} k={k}, bounds set {} times",
            auto.work.bounds_set
        );
        assert_same_fit(&auto, &never, 1e-12, &format!("f64 {what}"));
        assert_eq!(never.work.bounds_set, 0);
        resumed += usize::from(auto.work.bounds_set > 1);
        let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        let auto = fit_pruned(&x32, &init32, Pruning::Auto);
        let never = fit_pruned(&x32, &init32, Pruning::Never);
        assert_same_fit(&auto, &never, 1e-6, &format!("f32 {what}"));
        resumed += usize::from(auto.work.bounds_set > 1);
    }
    assert!(resumed >= 4, "{resumed}");
}

#[test]
fn inertia_from_cluster_sums_matches_the_data_or_declines() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
    let (n, d, k) = (3000, 7, 5);
    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0));
    let labels: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % k).collect();
    let stats_for = |previous: Array2<f64>| {
        let mut within = vec![0.0; k];
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0u64; k];
        for (i, row) in x.rows().into_iter().enumerate() {
            let j = labels[i];
            within[j] += (&row - &previous.row(j)).mapv(|v| v * v).sum();
            for f in 0..d {
                sums[j * d + f] += row[f];
            }
            counts[j] += 1;
        }
        (
            ClusterStats { previous, within },
            Totals {
                sums,
                counts,
                chunks: Vec::new(),
            },
        )
    };
    let means = |totals: &Totals| {
        Array2::from_shape_fn((k, d), |(j, f)| {
            totals.sums[j * d + f] / totals.counts[j] as f64
        })
    };
    let direct = |c: &Array2<f64>| -> f64 {
        x.rows()
            .into_iter()
            .enumerate()
            .map(|(i, row)| (&row - &c.row(labels[i])).mapv(|v| v * v).sum())
            .sum()
    };
    // Centroids that moved about as far as the clusters' spread.
    let previous = Array2::from_shape_fn((k, d), |_| rng.gen_range(-2.0..2.0));
    let (stats, totals) = stats_for(previous);
    let c = means(&totals);
    let from_sums = stats
        .inertia_at(c.view(), &totals)
        .expect("well conditioned");
    let exact = direct(&c);
    assert!(
        (from_sums - exact).abs() <= 1e-12 * exact,
        "{from_sums} vs {exact}"
    );
    // Any centroids, not only the means.
    let shifted = c.mapv(|v| v + 0.25);
    let from_sums = stats
        .inertia_at(shifted.view(), &totals)
        .expect("well conditioned");
    assert!((from_sums - direct(&shifted)).abs() <= 1e-12 * direct(&shifted));
    // Centroids that start a million away: the subtraction would lose
    // the digits, so the data must be summed instead.
    let (stats, totals) = stats_for(Array2::from_elem((k, d), 1e6));
    assert_eq!(stats.inertia_at(means(&totals).view(), &totals), None);
}

/// The inertia from the rows' squared norms and the clusters' sums matches
/// the data's for any centroids, and declines where a norm is unknown,
/// where the data lies far from the origin compared with its spread (the
/// subtraction would lose the digits), and for `f32` data.
#[test]
fn inertia_from_row_norms_matches_the_data_or_declines() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
    let (n, d, k) = (3000, 7, 5);
    let labels: Vec<u32> = (0..n).map(|i| ((i * 7 + i / 3) % k) as u32).collect();
    let parts = |x: &Array2<f64>| {
        let norms: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0u64; k];
        for (row, &j) in x.rows().into_iter().zip(&labels) {
            let j = j as usize;
            for f in 0..d {
                sums[j * d + f] += row[f];
            }
            counts[j] += 1;
        }
        let means = Array2::from_shape_fn((k, d), |(j, f)| sums[j * d + f] / counts[j] as f64);
        let totals = Totals {
            sums,
            counts,
            chunks: Vec::new(),
        };
        (norms, totals, means)
    };
    let direct = |x: &Array2<f64>, c: &Array2<f64>| -> f64 {
        x.rows()
            .into_iter()
            .zip(&labels)
            .map(|(row, &j)| (&row - &c.row(j as usize)).mapv(|v| v * v).sum())
            .sum()
    };
    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-5.0..5.0));
    let (norms, totals, means) = parts(&x);
    for c in [means.clone(), means.mapv(|v| v + 0.25)] {
        let from_norms =
            inertia_from_norms(&norms, &labels, c.view(), &totals).expect("well conditioned");
        let exact = direct(&x, &c);
        assert!(
            (from_norms - exact).abs() <= 1e-12 * exact,
            "{from_norms} vs {exact}"
        );
    }
    // A norm not known yet.
    let mut unknown = norms.clone();
    unknown[17] = f64::NAN;
    assert_eq!(
        inertia_from_norms(&unknown, &labels, means.view(), &totals),
        None
    );
    // A norm for each row, or none.
    assert_eq!(
        inertia_from_norms(&[], &labels, means.view(), &totals),
        None
    );
    // The same spread a thousand away from the origin.
    let far = x.mapv(|v| v + 1000.0);
    let (norms, totals, means) = parts(&far);
    assert_eq!(
        inertia_from_norms(&norms, &labels, means.view(), &totals),
        None
    );
    // f32 centroids: their data's sums were summed in f32.
    let (norms, totals, means) = parts(&x);
    let means32 = means.mapv(|v| v as f32);
    assert_eq!(
        inertia_from_norms(&norms, &labels, means32.view(), &totals),
        None
    );
}

/// A bounded fit of overlapping blobs past the size at which the bounds
/// keep the rows' norms ends without reading the data for its inertia: the
/// same labels as the data's nearest centroids and the same inertia to
/// 1e-12.
#[test]
fn a_fit_keeping_row_norms_sums_its_inertia_from_them() {
    let (n, d, k) = (70_000, 64, 8);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(41);
    let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
    let x = Array2::from_shape_fn((n, d), |(i, f)| {
        centres[[i % k, f]] + rng.gen_range(-20.0..20.0)
    });
    let fit = KMeansParams::new(k)
        .init(Init::Given(init_of(&x, k)))
        .pruning(Pruning::Always)
        .check()
        .unwrap()
        .fit(x.view())
        .unwrap();
    assert!(fit.converged);
    let rows = fit.work.column(|p| p.rows);
    assert!(
        *rows.last().unwrap() < n as u64,
        "the last pass read every row: {rows:?}"
    );
    let (labels, inertia) = crate::kmeans::assign_and_inertia(x.view(), fit.centroids.view());
    assert_eq!(labels, fit.labels);
    assert!(
        (fit.inertia - inertia).abs() <= 1e-12 * inertia,
        "{} vs {inertia}",
        fit.inertia
    );
}

#[test]
fn bounds_settle_the_last_step_of_separated_blobs_without_reading_the_data() {
    // Tight blobs, one initial centroid in each: the second step changes
    // nothing, and the bounds can tell.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    let (n, d, k) = (20_000, 8, 5);
    let centres = Array2::from_shape_fn((k, d), |_| rng.gen_range(-10.0..10.0));
    let x = Array2::from_shape_fn((n, d), |(i, f)| {
        centres[[i % k, f]] + rng.gen_range(-0.5..0.5)
    });
    let init = Array2::from_shape_fn((k, d), |(j, f)| x[[j, f]]);
    let with = fit_with_bounds(&x, &init, true);
    let without = fit_with_bounds(&x, &init, false);
    assert_same_fit(&with, &without, 1e-12, "separated blobs");
    assert_eq!((with.n_iter, with.converged), (2, true));
    // One pass (the first step, which also checks the data) instead of two.
    assert_eq!(with.work.passes(), 1);
    assert_eq!(without.work.passes(), 2);
    let (labels, exact) = crate::kmeans::assign_and_inertia(x.view(), with.centroids.view());
    assert_eq!(labels, with.labels);
    assert!((with.inertia - exact).abs() <= 1e-12 * exact);
    // f32 runs in f32: the per-cluster sums carry its rounding.
    let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
    let with = fit_with_bounds(&x32, &init32, true);
    assert_eq!(with.work.passes(), 1);
    let (_, exact) = crate::kmeans::assign_and_inertia(x32.view(), with.centroids.view());
    assert!((with.inertia - exact).abs() <= 1e-6 * exact);
}

#[test]
fn bounds_hold_far_from_the_origin() {
    // Norms dwarf the distances: the kernel's cancellation error is large
    // (in f32 especially) and the bounds must account for it.
    let (x, init) = random_blobs(3000, 3, 6, 31);
    for offset in [1e3, 1e5] {
        let x = x.mapv(|v| v + offset);
        let init = init.mapv(|v| v + offset);
        let what = format!("offset {offset}");
        let with = fit_with_bounds(&x, &init, true);
        let without = fit_with_bounds(&x, &init, false);
        assert_same_fit(&with, &without, 1e-12, &what);
        let (x32, init32) = (x.mapv(|v| v as f32), init.mapv(|v| v as f32));
        let with = fit_with_bounds(&x32, &init32, true);
        let without = fit_with_bounds(&x32, &init32, false);
        assert_same_fit(&with, &without, 1e-6, &format!("f32, {what}"));
    }
}

#[test]
fn bounds_skip_most_rows_once_clusters_settle() {
    let (x, init) = random_blobs(20_000, 4, 8, 5);
    let flat = x.as_slice().unwrap();
    let mut labels = vec![u32::MAX; x.nrows()];
    let mut bounds = Bounds::new(x.nrows(), 2.0 * 13.0);
    let mut centroids = init;
    let mut active = Vec::new();
    let mut buffers = StepBuffers::default();
    for _ in 0..6 {
        let step = lloyd_step(
            flat,
            &mut buffers,
            centroids.view(),
            &mut labels,
            Some(&mut bounds),
            None,
            Extras::default(),
        )
        .unwrap();
        active.push(step.active);
        centroids = step.centroids;
    }
    assert_eq!(active[0], x.nrows(), "the first step runs every row");
    assert!(
        active[5] * 10 < x.nrows(),
        "rows through the kernel per step: {active:?}"
    );
    let with = fit_with_bounds(&x, &init_of(&x, 8), true);
    let without = fit_with_bounds(&x, &init_of(&x, 8), false);
    assert_same_fit(&with, &without, 1e-12, "settling blobs");
    assert_eq!(with.work.passes(), without.work.passes());
    assert!(with.work.distances() * 2 < without.work.distances());
}

/// Bounds that keep the rows' squared norms (long rows of large data)
/// give every step the same labels, sums and bounds' work as bounds that
/// recompute them, and the norms kept are the rows' own, to the bit; the
/// next bounds of the same data take them over.
#[test]
fn kept_row_norms_give_the_same_steps() {
    // Uniform rows of 40 features, 6 centroids: every step sends most
    // rows through the (unscreened) kernel, which sets fresh bounds.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(31);
    let (n, d) = (6000, 40);
    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-1.0..1.0));
    let flat = x.as_slice().unwrap();
    let run = |bounds: &mut Bounds<f64>, steps: usize| {
        let (mut labels, mut centroids) = (vec![u32::MAX; n], init_of(&x, 6));
        let mut buffers = StepBuffers::default();
        let mut out = Vec::new();
        for _ in 0..steps {
            let step = lloyd_step(
                flat,
                &mut buffers,
                centroids.view(),
                &mut labels,
                Some(&mut *bounds),
                None,
                Extras::default(),
            )
            .unwrap();
            centroids = step.centroids.clone();
            out.push((step.centroids, step.active, step.distances, labels.clone()));
        }
        out
    };
    let mut kept = Bounds::with_norms(n, f64::INFINITY, vec![f64::NAN; n]);
    let with = run(&mut kept, 4);
    let without = run(&mut Bounds::new(n, f64::INFINITY), 4);
    assert_eq!(with, without);
    assert!(with.iter().all(|(_, active, _, _)| *active * 2 > n));
    let norms = kept.into_norms();
    // Every instruction set's norms are the portable ones, to the bit.
    let exact: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|row| crate::kmeans::simd::squared_norm(row.as_slice().unwrap()))
        .collect();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&norms), bits(&exact));
    // Taken over by the next bounds: the same steps again.
    let mut again = Bounds::with_norms(n, f64::INFINITY, norms);
    assert_eq!(run(&mut again, 4), without);
    // Which fits keep them: long rows of data past the last-level cache.
    let keeps = |n, d| !Bounds::<f64>::for_rows(n, d, 1.0).into_norms().is_empty();
    assert!(keeps(1 << 20, 32) && !keeps(1 << 20, 31) && !keeps(10_000, 50));
    let keeps_f32 = |n, d| !Bounds::<f32>::for_rows(n, d, 1.0).into_norms().is_empty();
    assert!(keeps_f32(1 << 20, 64) && !keeps_f32(1 << 20, 32));
}

/// Four Lloyd steps with bounds from `init`, each after the first updating
/// the last step's sums: in `recycled` buffers, or fresh ones each step.
fn four_steps(
    x: &Array2<f64>,
    init: &Array2<f64>,
    mut recycled: Option<&mut StepBuffers<f64>>,
) -> Vec<Step<f64>> {
    let flat = x.as_slice().unwrap();
    let mut labels = vec![u32::MAX; x.nrows()];
    let mut bounds = Bounds::new(x.nrows(), f64::INFINITY);
    let (mut centroids, mut totals) = (init.clone(), None::<Totals>);
    let mut steps = Vec::new();
    for _ in 0..4 {
        let mut fresh = StepBuffers::default();
        let step = lloyd_step(
            flat,
            recycled.as_deref_mut().unwrap_or(&mut fresh),
            centroids.view(),
            &mut labels,
            Some(&mut bounds),
            totals.as_ref(),
            Extras::default(),
        )
        .unwrap();
        totals = Some(Totals {
            sums: step.sums.clone(),
            counts: step.counts.clone(),
            chunks: Vec::new(),
        });
        centroids = step.centroids.clone();
        steps.push(step);
    }
    steps
}

#[test]
fn recycled_step_buffers_give_what_fresh_ones_give() {
    // 64 centroids of 32 features (sums large enough to be recycled), on
    // uniform data, where rows keep changing cluster.
    let uniform = |seed| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let x = Array2::from_shape_fn((6_000, 32), |_| rng.gen_range(-1.0..1.0));
        let init = init_of(&x, 64);
        (x, init)
    };
    let (x, init) = uniform(9);
    let fresh = four_steps(&x, &init, None);
    // Buffers that another fit's steps left holding its sums and moves.
    let mut buffers = StepBuffers::default();
    let (other, other_init) = uniform(10);
    let other_steps = four_steps(&other, &other_init, Some(&mut buffers));
    assert!(
        other_steps[3].changed > 0,
        "the other fit's last step moves rows"
    );
    // And a step without bounds, which leaves whole sums in them.
    lloyd_step(
        other.as_slice().unwrap(),
        &mut buffers,
        other_steps[3].centroids.view(),
        &mut vec![0; 6_000],
        None,
        None,
        Extras::default(),
    )
    .unwrap();
    let recycled = four_steps(&x, &init, Some(&mut buffers));
    assert!(fresh[3].changed > 0, "the last step moves rows");
    for (i, (a, b)) in recycled.iter().zip(&fresh).enumerate() {
        assert_eq!(a.centroids, b.centroids, "centroids of step {i}");
        let bits = |s: &Step<f64>| s.sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b), "sums of step {i}");
        assert_eq!(a.counts, b.counts, "counts of step {i}");
    }
}

#[test]
fn empty_cluster_takes_the_farthest_point() {
    // Centroid 2 is far from everything and gets no point in the first
    // assignment; scikit-learn moves it to the point farthest from its
    // centroid, here (10, 0) (distance 9.5^2 from centroid 1).
    let x = array![[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [10.0, 0.0]];
    let init = array![[0.0, 0.0], [0.5, 0.0], [100.0, 100.0]];
    let fit = fit_from(&x, init);
    assert_eq!(fit.labels.to_vec(), vec![0, 0, 1, 2]);
    assert_eq!(fit.centroids, array![[0.05, 0.0], [1.0, 0.0], [10.0, 0.0]]);
    assert!((fit.inertia - 0.005).abs() < 1e-15);
}

#[test]
fn results_do_not_depend_on_threads_or_repeat_runs() {
    let (x, _) = random_blobs(20_000, 5, 6, 11);
    let fit = |threads| {
        KMeansParams::new(6)
            .seed(5)
            .threads(threads)
            .check()
            .unwrap()
            .fit(x.view())
            .unwrap()
    };
    let one = fit(1);
    assert_eq!(one, fit(2));
    assert_eq!(one, fit(3));
    assert_eq!(one, fit(1));
}

/// A step's per-cluster sums are, to the bit, each chunk's sums (its rows in
/// order, from zero) added chunk after chunk: also where they are large
/// enough to be added a block of elements at a time in parallel.
#[test]
fn step_sums_add_the_chunks_in_order() {
    let (n, d, k) = (4_000, 64, 100);
    let (x, init) = random_blobs(n, d, k, 14);
    // On one thread the chunks run in two waves (see `chunks_per_wave`).
    let step_on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut labels = vec![u32::MAX; n];
        let step = pool.install(|| {
            lloyd_step(
                x.as_slice().unwrap(),
                &mut StepBuffers::default(),
                init.view(),
                &mut labels,
                None,
                None,
                Extras::default(),
            )
        });
        (step.unwrap(), labels)
    };
    let (step, labels) = step_on(2);
    let (one, one_labels) = step_on(1);
    assert_eq!(one_labels, labels);
    assert!(!step.relocated);
    let rows = super::super::chunks::chunk_rows(n);
    assert!(n.div_ceil(rows) > 4, "several chunks");
    let mut expected = vec![0.0f64; k * d];
    for (chunk, chunk_labels) in x
        .axis_chunks_iter(ndarray::Axis(0), rows)
        .zip(labels.chunks(rows))
    {
        let mut sums = vec![0.0f64; k * d];
        for (row, &j) in chunk.rows().into_iter().zip(chunk_labels) {
            for (s, &v) in sums[j as usize * d..(j as usize + 1) * d]
                .iter_mut()
                .zip(row)
            {
                *s += v;
            }
        }
        for (e, s) in expected.iter_mut().zip(&sums) {
            *e += s;
        }
    }
    let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&step.sums), bits(&expected));
    assert_eq!(bits(&one.sums), bits(&expected));
}

/// At large k and d the centroids' gaps and the chunks' sums are each
/// shared among threads: the fit is still the same on any count.
#[test]
fn large_k_results_do_not_depend_on_threads() {
    let (x, _) = random_blobs(3_000, 32, 64, 12);
    let fit = |threads, pruning| {
        KMeansParams::new(256)
            .init(Init::Given(init_of(&x, 256)))
            .pruning(pruning)
            .threads(threads)
            .check()
            .unwrap()
            .fit(x.view())
            .unwrap()
    };
    let one = fit(1, Pruning::Always);
    assert!(one.n_iter > 2, "{}", one.n_iter);
    assert_eq!(one, fit(2, Pruning::Always));
    assert_eq!(one, fit(3, Pruning::Always));
    let plain = fit(1, Pruning::Never);
    assert_eq!(plain, fit(2, Pruning::Never));
    assert_eq!(one.labels, plain.labels);
    assert_eq!(one.n_iter, plain.n_iter);
}

/// A model with a thread count of its own builds its pool at its first
/// fit and keeps it (clones made after share it): the same fit every time, in the
/// same pool, of the count asked for.
#[test]
fn a_model_keeps_its_pool_across_fits() {
    let (x, _) = random_blobs(3000, 4, 5, 13);
    let model = KMeansParams::new(5).seed(2).threads(3).check().unwrap();
    let first = model.fit(x.view()).unwrap();
    let pool = model.own_pool(3).unwrap();
    assert_eq!(pool.current_num_threads(), 3);
    assert_eq!(model.fit(x.view()).unwrap(), first);
    assert!(std::ptr::eq(pool, model.own_pool(3).unwrap()));
    let clone = model.clone();
    assert!(std::ptr::eq(pool, clone.own_pool(3).unwrap()));
    assert_eq!(clone, model);
    assert_eq!(clone.fit(x.view()).unwrap(), first);
}

/// A model with a thread count of its own fits in the caller's pool when
/// that has as many threads (its own pool never built), in its own pool
/// otherwise: the same result either way.
#[test]
fn a_fit_from_a_pool_of_its_thread_count_runs_there() {
    let (x, _) = random_blobs(5000, 8, 4, 17);
    let params = KMeansParams::new(4).init(Init::Given(init_of(&x, 4)));
    let outside = params.clone().threads(2).check().unwrap();
    let expected = outside.fit(x.view()).unwrap();
    assert!(outside.pool_built());
    for (pool_threads, builds) in [(2, false), (3, true)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(pool_threads)
            .build()
            .unwrap();
        let model = params.clone().threads(2).check().unwrap();
        let fit = pool.install(|| {
            model.start_threads().unwrap();
            model.fit(x.view()).unwrap()
        });
        assert_eq!(fit, expected);
        assert_eq!(model.pool_built(), builds, "a pool of {pool_threads}");
    }
}

/// A model of two threads fits data of at most
/// [`super::super::CALLING_THREAD_MAX_ROWS`] rows on the calling thread,
/// without its pool, and larger data in it, as does a model without a
/// thread count called outside any pool: the same fits as two threads
/// share in a pool, to the bit, on either side of the line and with
/// bounds or without.
#[test]
fn small_fits_run_on_the_calling_thread() {
    let max = super::super::CALLING_THREAD_MAX_ROWS;
    let shared = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (n, pruning) in [
        (max, Pruning::Always),
        (max, Pruning::Never),
        (max + 1, Pruning::Always),
    ] {
        let (x, _) = random_blobs(n, 40, 4, 15);
        let params = KMeansParams::new(30)
            .init(Init::Given(init_of(&x, 30)))
            .pruning(pruning);
        let in_pool = shared
            .install(|| params.clone().check().unwrap().fit(x.view()))
            .unwrap();
        assert!(in_pool.n_iter > 2, "{}", in_pool.n_iter);
        let model = params.threads(2).check().unwrap();
        assert_eq!(model.fit(x.view()).unwrap(), in_pool);
        assert_eq!(model.pool_built(), n > max, "{n} rows");
    }
    let model = KMeansParams::<f64>::new(3).threads(2).check().unwrap();
    model.start_threads().unwrap();
    assert!(model.pool_built());
    // Without a thread count of its own, outside any pool.
    let (x, _) = random_blobs(max, 40, 4, 16);
    let params = KMeansParams::new(30).init(Init::Given(init_of(&x, 30)));
    let in_pool = shared
        .install(|| params.clone().check().unwrap().fit(x.view()))
        .unwrap();
    assert_eq!(params.check().unwrap().fit(x.view()).unwrap(), in_pool);
}

#[test]
fn f32_and_f64_agree_on_labels() {
    let (x, init) = random_blobs(5000, 4, 5, 3);
    let fit64 = fit_from(&x, init.clone());
    let fit32 = KMeansParams::new(5)
        .init(Init::Given(init.mapv(|v| v as f32)))
        .check()
        .unwrap()
        .fit(x.mapv(|v| v as f32).view())
        .unwrap();
    assert_eq!(fit32.labels, fit64.labels);
    assert!((fit32.inertia - fit64.inertia).abs() <= 1e-5 * fit64.inertia);
}

/// A fit from `init` stopped by `max_iter` after its first step.
fn one_step_fit(x: &Array2<f64>, init: Array2<f64>) -> KMeansFit<f64> {
    KMeansParams::new(init.nrows())
        .init(Init::Given(init))
        .max_iter(1)
        .check()
        .unwrap()
        .fit(x.view())
        .unwrap()
}

#[test]
fn max_iter_stops_early_and_reassigns() {
    let (x, init) = random_blobs(3000, 2, 8, 4);
    let fit = one_step_fit(&x, init);
    assert_eq!(fit.n_iter, 1);
    assert!(!fit.converged);
    // Labels match the final centroids after the last assignment.
    let (labels, inertia) = crate::kmeans::assign_and_inertia(x.view(), fit.centroids.view());
    assert_eq!(labels, fit.labels);
    assert_eq!(inertia, fit.inertia);
}

/// The assignment after a fit stopped by `max_iter` goes through the `f32`
/// screen where a step would: its labels are still the nearest centroids
/// (by brute force), and its pass counts its `f32` distances.
#[test]
fn max_iter_reassigns_through_the_screen() {
    let (n, d, k) = (2000, 32, 20);
    let (x, init) = random_blobs(n, d, k, 9);
    let fit = one_step_fit(&x, init);
    assert!(!fit.converged);
    let nearest: Vec<u32> = x
        .rows()
        .into_iter()
        .map(|row| {
            let distance = |j: usize| -> f64 {
                row.iter()
                    .zip(fit.centroids.row(j))
                    .map(|(a, b)| (a - b).powi(2))
                    .sum()
            };
            (0..k)
                .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
                .unwrap() as u32
        })
        .collect();
    assert_eq!(fit.labels.to_vec(), nearest);
    // The step, the assignment, the inertia (the portable kernel does not
    // screen).
    let screened = super::super::simd::Isa::detect() != super::super::simd::Isa::Portable
        && !super::super::screen::switched_off();
    let f32_distances = fit.work.column(|p| p.f32_distances);
    assert_eq!(f32_distances.len(), 3);
    assert_eq!(f32_distances[1], if screened { (n * k) as u64 } else { 0 });
    assert!(fit.work.column(|p| p.distances)[1] >= (n * k) as u64);
}

#[test]
fn converged_inertia_from_the_last_step_is_the_separate_pass() {
    let (x, init) = random_blobs(5000, 3, 6, 12);
    let fit = fit_from(&x, init);
    assert!(fit.converged);
    let (labels, inertia) = crate::kmeans::assign_and_inertia(x.view(), fit.centroids.view());
    assert_eq!(labels, fit.labels);
    assert_eq!(inertia.to_bits(), fit.inertia.to_bits());
}

/// A plain step asked for its inertia sums it only while no label has
/// changed: a step that moves one is not the fit's last, so its chunks
/// drop the sum and with it a distance a row.
#[test]
fn a_step_sums_its_inertia_only_while_no_label_changes() {
    let (x, init) = random_blobs(6000, 40, 6, 13);
    let n = x.nrows();
    let step_from = |centroids: &Array2<f64>, labels: &mut Vec<u32>, inertia: bool| {
        lloyd_step(
            x.as_slice().unwrap(),
            &mut StepBuffers::default(),
            centroids.view(),
            labels,
            None,
            None,
            Extras {
                inertia,
                ..Extras::default()
            },
        )
        .unwrap()
    };
    // Every row labelled 0: the labels move, in every chunk.
    let mut labels = vec![0; n];
    let means = fit_from(&x, init).centroids;
    let (with, without) = (
        step_from(&means, &mut labels.clone(), true),
        step_from(&means, &mut labels, false),
    );
    assert!(with.changed > 0 && with.inertia.is_none());
    assert_eq!(with.centroids, without.centroids);
    assert_eq!(with.distances, without.distances);
    // From the fit's own labels: none moves, the inertia is the pass's.
    let step = step_from(&means, &mut labels, true);
    assert_eq!(step.changed, 0);
    let (_, inertia) = crate::kmeans::assign_and_inertia(x.view(), means.view());
    assert_eq!(step.inertia.map(f64::to_bits), Some(inertia.to_bits()));
    assert_eq!(step.distances, without.distances + n as u64);
}

#[test]
fn fortran_order_input_gives_the_same_fit() {
    let (x, init) = random_blobs(1000, 3, 4, 9);
    let fortran = x.t().as_standard_layout().into_owned().reversed_axes();
    assert!(!fortran.is_standard_layout());
    assert_eq!(
        fit_from(&x, init.clone()),
        fit_from(&fortran.to_owned(), init)
    );
}

#[test]
fn data_errors() {
    let model = KMeansParams::<f64>::new(3).check().unwrap();
    assert!(matches!(
        model.fit(Array2::zeros((0, 2)).view()),
        Err(KMeansError::EmptyData { .. })
    ));
    assert!(matches!(
        model.fit(Array2::zeros((2, 2)).view()),
        Err(KMeansError::TooManyClusters { k: 3, n_samples: 2 })
    ));
    let mut x = Array2::<f64>::zeros((5, 2));
    x[[3, 1]] = f64::NAN;
    assert!(matches!(
        model.fit(x.view()),
        Err(KMeansError::NonFinite {
            row: 3,
            column: 1,
            ..
        })
    ));
    let wrong_width = KMeansParams::new(2)
        .init(Init::Given(Array2::<f64>::zeros((2, 3))))
        .check()
        .unwrap();
    assert!(matches!(
        wrong_width.fit(Array2::zeros((5, 2)).view()),
        Err(KMeansError::InitShape {
            got: (2, 3),
            expected: (2, 2)
        })
    ));
}

#[test]
fn non_finite_data_is_found_in_the_first_step_with_given_centroids() {
    non_finite_data_is_found_in(random_blobs(5000, 3, 4, 2));
}

/// The same where the first step guesses (d >= 32): separated blobs,
/// whose rows before the bad one are proved and summed row by row.
#[test]
fn non_finite_data_is_found_where_the_first_step_guesses() {
    let (x, init) = random_blobs(5000, 40, 4, 2);
    let means = fit_with_bounds(&x, &init, true).centroids;
    // From the means, the first pass proves the guesses: fewer
    // distances than the kernel's k a row (one a row, the guesses'
    // scores, and one a row for the per-cluster sums).
    let fit = fit_with_bounds(&x, &means, true);
    assert!(fit.work.per_pass[0].distances < 5000 * 4, "{:?}", fit.work);
    // The step's check finds the data's largest magnitude in the rows
    // it proves (the bounds' error depends on it).
    let step = lloyd_step(
        x.as_slice().unwrap(),
        &mut StepBuffers::default(),
        means.view(),
        &mut vec![u32::MAX; 5000],
        Some(&mut Bounds::new(5000, f64::INFINITY)),
        None,
        Extras {
            check_data: true,
            ..Extras::default()
        },
    )
    .unwrap();
    assert_eq!(step.active, 0);
    let max_abs = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_eq!(step.data_max_abs, Some(max_abs));
    non_finite_data_is_found_in((x, means));
}

/// The first step with bounds sums each cluster's squared distances, so
/// that a next step that moves no label ends the fit without reading the
/// data; a chunk whose guesses stop paying (rows near boundaries, whose
/// labels will move) drops them and computes no more of its rows'
/// distances, and the step then has none. Labels and sums are the same.
#[test]
fn first_steps_drop_the_sums_of_distances_where_guesses_fail() {
    let first_step = |x: &Array2<f64>, init: &Array2<f64>, within: bool| {
        lloyd_step(
            x.as_slice().unwrap(),
            &mut StepBuffers::default(),
            init.view(),
            &mut vec![u32::MAX; x.nrows()],
            Some(&mut Bounds::new(x.nrows(), f64::INFINITY)),
            None,
            Extras {
                within,
                ..Extras::default()
            },
        )
        .unwrap()
    };
    // Separated blobs from their means: the guesses pay, the sums are
    // kept whole, as the data gives them.
    let (x, init) = random_blobs(5000, 40, 4, 2);
    let means = fit_with_bounds(&x, &init, true).centroids;
    let step = first_step(&x, &means, true);
    let within = step.within.expect("separated blobs keep the sums");
    let (labels, _) = crate::kmeans::assign_and_inertia(x.view(), means.view());
    let mut exact = vec![0.0; 4];
    for (row, &j) in x.rows().into_iter().zip(&labels) {
        exact[j as usize] += (&row - &means.row(j as usize)).mapv(|v| v * v).sum();
    }
    for (a, b) in within.iter().zip(&exact) {
        assert!((a - b).abs() <= 1e-12 * b, "{within:?} against {exact:?}");
    }
    // Uniform data, 40 features: the guesses fail in every chunk after
    // its first block; the sums are dropped, and with them the distances
    // of the rows after it.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
    let n = 6000;
    let x = Array2::from_shape_fn((n, 40), |_| rng.gen_range(-1.0..1.0));
    let init = init_of(&x, 8);
    let with = first_step(&x, &init, true);
    let without = first_step(&x, &init, false);
    assert!(with.within.is_none());
    assert_eq!(with.centroids, without.centroids);
    assert_eq!(with.counts, without.counts);
    let summed = with.distances - without.distances;
    assert!(summed > 0 && summed * 4 < n as u64, "{summed} rows summed");
}

fn non_finite_data_is_found_in((x, init): (Array2<f64>, Array2<f64>)) {
    let (n, d) = x.dim();
    let k = init.nrows();
    for (row, column, value) in [
        (0, 0, f64::NAN),
        (2777, 2, f64::INFINITY),
        (n - 1, d - 1, f64::NAN),
        (130, d / 2, f64::NEG_INFINITY),
    ] {
        let mut bad = x.clone();
        bad[[row, column]] = value;
        for pruning in [Pruning::Always, Pruning::Never] {
            let err = KMeansParams::new(k)
                .init(Init::Given(init.clone()))
                .pruning(pruning)
                .check()
                .unwrap()
                .fit(bad.view())
                .unwrap_err();
            assert!(
                matches!(err, KMeansError::NonFinite { what: "data", row: r, column: c, .. } if r == row && c == column),
                "{err}"
            );
        }
    }
}

#[test]
fn tolerance_stops_on_small_shifts() {
    let (x, init) = random_blobs(4000, 2, 8, 8);
    let exact = fit_from(&x, init.clone());
    let loose = KMeansParams::new(8)
        .init(Init::Given(init))
        .tol(1e-1)
        .check()
        .unwrap()
        .fit(x.view())
        .unwrap();
    assert!(loose.n_iter <= exact.n_iter);
    assert!(loose.inertia >= exact.inertia * (1.0 - 1e-12));
}

#[test]
fn identical_points_give_a_valid_fit_with_one_distinct_cluster() {
    let x = Array2::from_elem((50, 3), 2.5);
    let fit = KMeansParams::new(4).check().unwrap().fit(x.view()).unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert!(fit.centroids.iter().all(|&v| v == 2.5));
    assert_eq!(fit.distinct_clusters(), 1);
    // The centroids did not move: the tolerance rule (shift <= 0) ends
    // the loop after one step, as in scikit-learn.
    assert_eq!(fit.n_iter, 1);
    assert!(fit.converged, "unmoved centroids are a fixed point");
}

#[test]
fn fewer_distinct_points_than_k() {
    let x = array![[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]];
    let fit = KMeansParams::new(3).check().unwrap().fit(x.view()).unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert_eq!(fit.distinct_clusters(), 2);
}

#[test]
fn k_equal_to_n_and_a_single_sample() {
    let x = array![[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]];
    let fit = KMeansParams::new(3).check().unwrap().fit(x.view()).unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert_eq!(fit.distinct_clusters(), 3);
    let one = array![[7.0, -1.0]];
    let fit = KMeansParams::new(1)
        .check()
        .unwrap()
        .fit(one.view())
        .unwrap();
    assert_eq!(fit.centroids, one);
    assert_eq!(fit.inertia, 0.0);
    assert_eq!(fit.n_iter, 1);
    assert!(fit.converged);
}

#[test]
fn huge_and_tiny_magnitudes_neither_overflow_nor_underflow() {
    let (x, init) = random_blobs(2000, 3, 4, 21);
    let reference = fit_from(&x, init.clone());
    for scale in [1e150, 1e-150, 1e300, 1e-300] {
        let fit = fit_from(&x.mapv(|v| v * scale), init.mapv(|v| v * scale));
        assert_eq!(fit.labels, reference.labels, "scale {scale}");
        // The inertia itself is representable at 1e150 and 1e-150 (not at 1e300).
        let expected = reference.inertia * scale * scale;
        if expected.is_normal() {
            assert!(
                (fit.inertia - expected).abs() <= 1e-9 * expected,
                "scale {scale}"
            );
        }
        for (a, b) in fit.centroids.iter().zip(&reference.centroids) {
            assert!(
                (a / scale - b).abs() <= 1e-9 * (1.0 + b.abs()),
                "scale {scale}"
            );
        }
    }
    // f32 overflows far sooner: 1e20 squared is past f32::MAX.
    let x32 = x.mapv(|v| (v * 1e20) as f32);
    let fit = KMeansParams::new(4)
        .init(Init::Given(init.mapv(|v| (v * 1e20) as f32)))
        .check()
        .unwrap()
        .fit(x32.view())
        .unwrap();
    assert_eq!(fit.labels, reference.labels);
    assert!(fit.inertia.is_finite());
}

#[test]
fn subnormal_data_gives_the_fit_of_the_same_data_scaled_up() {
    let (x, init) = random_blobs(600, 3, 4, 31);
    let reference = fit_from(&x, init.clone());
    // Near 1e-320 an f64 keeps a few bits: compare with the reference fit
    // of the very values held, scaled up exactly.
    let tiny = 2f64.powi(-1066);
    let x_tiny = x.mapv(|v| v * tiny);
    let init_tiny = init.mapv(|v| v * tiny);
    assert!(x_tiny.iter().all(|v| *v == 0.0 || v.is_subnormal()));
    let held = fit_from(&x_tiny.mapv(|v| v / tiny), init_tiny.mapv(|v| v / tiny));
    let fit = fit_from(&x_tiny, init_tiny);
    assert!(fit.centroids.iter().all(|v| v.is_finite()));
    assert_eq!(fit.labels, held.labels);
    assert_eq!(fit.n_iter, held.n_iter);
    for (a, b) in fit.centroids.iter().zip(&held.centroids) {
        assert_eq!(*a, b * tiny, "centroids are the held fit's, scaled back");
    }
    assert_eq!(fit.inertia, 0.0, "1e-640 rounds to zero in f64");
    assert!(
        held.labels
            .iter()
            .zip(&reference.labels)
            .filter(|(a, b)| a != b)
            .count()
            < 60
    );
    // f32 subnormals (1e-42) likewise.
    let tiny32 = 2f64.powi(-140);
    let x32 = x.mapv(|v| (v * tiny32) as f32);
    let init32 = init.mapv(|v| (v * tiny32) as f32);
    let held32 = fit_from(
        &x32.mapv(|v| (v as f64 / tiny32) as f32),
        init32.mapv(|v| (v as f64 / tiny32) as f32),
    );
    let fit32 = fit_from(&x32, init32);
    assert!(fit32.centroids.iter().all(|v| v.is_finite()));
    assert_eq!(fit32.labels, held32.labels);
    assert!(fit32.inertia.is_finite() && fit32.inertia > 0.0);
}

#[test]
fn a_centroid_beyond_reach_gives_the_same_fit_wherever_it_lies() {
    let (x, init) = random_blobs(900, 4, 5, 41);
    // Centroid 2 lies so far out that no row can be nearest to it: its
    // cluster is empty at once and takes the farthest sample, wherever
    // it was. At 1e6 the fit needs no scaling.
    let direction = ndarray::array![0.6, -0.8, 0.3, 0.1];
    let at = |distance: f64| {
        let mut moved = init.clone();
        moved.row_mut(2).assign(&direction.mapv(|v| v * distance));
        moved
    };
    let reference = fit_from(&x, at(1e6));
    assert!(reference.n_iter > 2);
    for distance in [1e160, 1e200, 1e300, -1e300, f64::MAX / 2.0] {
        let fit = fit_from(&x, at(distance));
        assert_eq!(fit.labels, reference.labels, "at {distance:e}");
        assert_eq!(fit.n_iter, reference.n_iter, "at {distance:e}");
        assert!(fit.converged);
        let gap = (fit.inertia - reference.inertia).abs() / reference.inertia;
        assert!(gap <= 1e-12, "inertia off by {gap:e} at {distance:e}");
        for (a, b) in fit.centroids.iter().zip(&reference.centroids) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "at {distance:e}");
        }
    }
    // Data near 1e-300 with a centroid at 1: the same, scaled.
    let small = 2f64.powi(-1000);
    let mut far = init.mapv(|v| v * small);
    far.row_mut(2).assign(&direction);
    let fit = fit_from(&x.mapv(|v| v * small), far);
    assert_eq!(fit.labels, reference.labels);
    assert_eq!(fit.n_iter, reference.n_iter);
    for (a, b) in fit.centroids.iter().zip(&reference.centroids) {
        assert!((a / small - b).abs() <= 1e-12 * (1.0 + b.abs()));
    }
}

#[test]
fn an_inertia_beyond_the_float_range_is_infinite_not_nan() {
    let (x, init) = random_blobs(500, 3, 4, 51);
    let reference = fit_from(&x, init.clone());
    let fit = fit_from(&x.mapv(|v| v * 1e300), init.mapv(|v| v * 1e300));
    assert_eq!(fit.labels, reference.labels);
    assert!(fit.centroids.iter().all(|v| v.is_finite()));
    assert_eq!(fit.inertia, f64::INFINITY);
}
