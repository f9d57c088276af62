//! The dataset cache under `data/`.
//!
//! A dataset is stored as `blobs-n{n}-d{d}-k{k}-{hash}.npy` (the samples,
//! f64, C order), `….labels.npy` (the true blob of each sample, u32) and
//! initial centroids as `….init-s{seed}.npy`; the hash covers every
//! generator setting ([`BlobSpec`]). Each file has a `….json` sidecar with
//! the settings and the file's xxh3 checksum, written before the file itself
//! is renamed into place: a file under its final name is always complete, and
//! one that does not match its sidecar is regenerated.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayBase, Data, Dimension};
use ndarray_npy::WritableElement;
use serde::{Deserialize, Serialize};

use super::blobs::{generate_blobs, BlobSpec};
use super::csv::write_csv;
use super::error::Result;
use super::npy::{read_f64_with_checksum, read_u32_with_checksum, write_atomic, write_npy_pending};
use crate::kmeans::{check_finite, kmeans_plusplus};

/// How a cached dataset was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Read from the cache, checksums verified.
    Hit,
    /// Not cached yet: generated and stored.
    Generated,
    /// Cached but unusable (the reason given): generated again and stored.
    Regenerated { reason: String },
}

/// A dataset from the cache.
#[derive(Debug, Clone)]
pub struct CachedBlobs {
    /// The settings it was generated with.
    pub spec: BlobSpec,
    /// `(n, d)` samples.
    pub x: Array2<f64>,
    /// The true blob of each sample.
    pub labels: Array1<u32>,
    /// Where the samples are stored.
    pub path: PathBuf,
}

/// How a scenario's shared initial centroids are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// Greedy k-means++ (scikit-learn's), the study's start.
    #[default]
    KMeansPlusPlus,
    /// k distinct rows drawn at random (seeded), as faiss starts: greedy
    /// k-means++ costs k (2 + ln k) passes over the data, which at the k of
    /// vector quantisation (hundreds to thousands) takes longer than the
    /// fits it starts.
    RandomRows,
}

/// What a sidecar records about its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sidecar {
    spec: BlobSpec,
    /// What the file holds: `samples`, `labels` or `init-s{seed}`.
    content: String,
    /// The xxh3 checksum of the file, hex.
    xxh3: String,
}

/// The cache folder.
#[derive(Debug, Clone)]
pub struct DataCache {
    dir: PathBuf,
}

impl DataCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DataCache { dir: dir.into() }
    }

    /// The project's cache: `$KMEANS_DATA_DIR`, or `data/` in the crate.
    pub fn project() -> Self {
        match std::env::var_os("KMEANS_DATA_DIR") {
            Some(dir) => DataCache::new(dir),
            None => DataCache::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("data")),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `blobs-n{n}-d{d}-k{k}-{hash}`, the hash (16 hex digits of xxh3) over
    /// every setting of `spec`.
    pub fn stem(spec: &BlobSpec) -> String {
        let settings = serde_json::to_string(spec).expect("a spec serialises");
        let hash = xxhash_rust::xxh3::xxh3_64(settings.as_bytes());
        let s = spec.scenario;
        format!("blobs-n{}-d{}-k{}-{hash:016x}", s.n, s.d, s.k)
    }

    /// Where the samples of `spec` are stored.
    pub fn samples_path(&self, spec: &BlobSpec) -> PathBuf {
        self.dir.join(format!("{}.npy", Self::stem(spec)))
    }

    fn labels_path(&self, spec: &BlobSpec) -> PathBuf {
        self.dir.join(format!("{}.labels.npy", Self::stem(spec)))
    }

    /// Where the initial centroids of `spec` for k-means++ seed `seed` are stored.
    pub fn init_path(&self, spec: &BlobSpec, seed: u64) -> PathBuf {
        self.start_path(spec, Start::KMeansPlusPlus, seed)
    }

    /// Where the initial centroids of `spec` chosen by `start` with `seed`
    /// are stored, and what their sidecar calls them.
    fn start_content(start: Start, seed: u64) -> String {
        match start {
            Start::KMeansPlusPlus => format!("init-s{seed}"),
            Start::RandomRows => format!("init-rows-s{seed}"),
        }
    }

    fn start_path(&self, spec: &BlobSpec, start: Start, seed: u64) -> PathBuf {
        self.dir.join(format!(
            "{}.{}.npy",
            Self::stem(spec),
            Self::start_content(start, seed)
        ))
    }

    fn sidecar_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".json");
        path.with_file_name(name)
    }

    /// The dataset of `spec`: read and verified, or generated and stored.
    pub fn load_or_generate(&self, spec: &BlobSpec) -> Result<(CachedBlobs, CacheOutcome)> {
        let path = self.samples_path(spec);
        let outcome = if path.exists() {
            match self.load(spec) {
                Ok(cached) => return Ok((cached, CacheOutcome::Hit)),
                Err(reason) => CacheOutcome::Regenerated { reason },
            }
        } else {
            CacheOutcome::Generated
        };
        let blobs = generate_blobs(spec)?;
        super::create_folder(&self.dir)?;
        self.store(spec, "labels", &self.labels_path(spec), &blobs.labels)?;
        self.store(spec, "samples", &path, &blobs.x)?;
        Ok((
            CachedBlobs {
                spec: *spec,
                x: blobs.x,
                labels: blobs.labels,
                path,
            },
            outcome,
        ))
    }

    /// Reads a cached dataset, or says why it cannot be used.
    fn load(&self, spec: &BlobSpec) -> Result<CachedBlobs, String> {
        let path = self.samples_path(spec);
        let (x, checksum) = read_f64_with_checksum(&path).map_err(|e| e.to_string())?;
        self.verify(spec, "samples", &path, checksum)?;
        let s = spec.scenario;
        if x.dim() != (s.n, s.d) {
            return Err(format!("shape {:?}, expected ({}, {})", x.dim(), s.n, s.d));
        }
        let labels_path = self.labels_path(spec);
        let (labels, checksum) = read_u32_with_checksum(&labels_path).map_err(|e| e.to_string())?;
        self.verify(spec, "labels", &labels_path, checksum)?;
        if labels.len() != s.n || labels.iter().any(|&l| l as usize >= s.k) {
            return Err(format!(
                "{}: labels do not fit the scenario",
                labels_path.display()
            ));
        }
        Ok(CachedBlobs {
            spec: *spec,
            x,
            labels,
            path,
        })
    }

    /// Initial centroids for a cached dataset, chosen by `start` with
    /// `seed`: read from the cache, or computed and stored beside the data.
    /// Every contender starts from these.
    pub fn initial_centroids(
        &self,
        blobs: &CachedBlobs,
        start: Start,
        seed: u64,
    ) -> Result<Array2<f64>> {
        let path = self.start_path(&blobs.spec, start, seed);
        let content = Self::start_content(start, seed);
        let k = blobs.spec.scenario.k;
        if let Ok((init, checksum)) = read_f64_with_checksum(&path) {
            let valid = self.verify(&blobs.spec, &content, &path, checksum).is_ok()
                && init.dim() == (k, blobs.x.ncols())
                && check_finite(init.view(), "initial centroids").is_ok();
            if valid {
                return Ok(init);
            }
        }
        let init = match start {
            Start::KMeansPlusPlus => kmeans_plusplus(blobs.x.view(), k, seed),
            Start::RandomRows => {
                use rand::SeedableRng;
                let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
                let rows = rand::seq::index::sample(&mut rng, blobs.x.nrows(), k);
                blobs.x.select(ndarray::Axis(0), &rows.into_vec())
            }
        };
        self.store(&blobs.spec, &content, &path, &init)?;
        Ok(init)
    }

    /// Writes a CSV copy of a cached dataset beside it and returns its path.
    pub fn write_csv(&self, blobs: &CachedBlobs) -> Result<PathBuf> {
        let path = blobs.path.with_extension("csv");
        write_csv(&path, blobs.x.view())?;
        Ok(path)
    }

    /// Writes `array` to `path` with its sidecar; the sidecar lands first, the
    /// array last, both atomically.
    fn store<A, S, D>(
        &self,
        spec: &BlobSpec,
        content: &str,
        path: &Path,
        array: &ArrayBase<S, D>,
    ) -> Result<()>
    where
        A: WritableElement,
        S: Data<Elem = A>,
        D: Dimension,
    {
        let pending = write_npy_pending(path, array)?;
        let sidecar = Sidecar {
            spec: *spec,
            content: content.to_string(),
            xxh3: format!("{:016x}", pending.checksum),
        };
        let json = serde_json::to_vec_pretty(&sidecar).expect("a sidecar serialises");
        write_atomic(&Self::sidecar_path(path), |w| w.write_all(&json))?;
        pending.commit()?;
        Ok(())
    }

    /// Why a file of the cache no longer matches its sidecar's checksum, when
    /// it has a sidecar and does not (`None` for a match or for a file
    /// outside the cache), so a command reading a cached file by its path
    /// can warn instead of using a changed file silently.
    pub fn sidecar_mismatch(path: &Path) -> Option<String> {
        let sidecar_path = Self::sidecar_path(path);
        let text = std::fs::read_to_string(&sidecar_path).ok()?;
        let sidecar: Sidecar = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                return Some(format!(
                    "{}: unreadable sidecar: {e}",
                    sidecar_path.display()
                ))
            }
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return Some(format!("{}: {e}", path.display())),
        };
        let checksum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        (checksum != sidecar.xxh3).then(|| {
            format!(
                "{}: does not match the checksum its sidecar {} recorded when the cache wrote it (changed since)",
                path.display(),
                sidecar_path.display()
            )
        })
    }

    /// Checks a file's checksum and settings against its sidecar.
    fn verify(
        &self,
        spec: &BlobSpec,
        content: &str,
        path: &Path,
        checksum: u64,
    ) -> Result<(), String> {
        let sidecar_path = Self::sidecar_path(path);
        let text = std::fs::read_to_string(&sidecar_path)
            .map_err(|e| format!("{}: {e}", sidecar_path.display()))?;
        let sidecar: Sidecar =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", sidecar_path.display()))?;
        let expected = Sidecar {
            spec: *spec,
            content: content.to_string(),
            xxh3: format!("{checksum:016x}"),
        };
        if sidecar.spec != expected.spec || sidecar.content != expected.content {
            return Err(format!("{}: settings do not match", sidecar_path.display()));
        }
        if sidecar.xxh3 != expected.xxh3 {
            return Err(format!("{}: checksum mismatch", path.display()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Scenario;

    fn spec() -> BlobSpec {
        BlobSpec::new(Scenario::new(600, 3, 4).unwrap())
    }

    #[test]
    fn same_settings_same_name_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = DataCache::new(dir.path().join("a"));
        let b = DataCache::new(dir.path().join("b"));
        let (blobs_a, outcome) = a.load_or_generate(&spec()).unwrap();
        assert_eq!(outcome, CacheOutcome::Generated);
        let (blobs_b, _) = b.load_or_generate(&spec()).unwrap();
        assert_eq!(blobs_a.path.file_name(), blobs_b.path.file_name());
        assert_eq!(
            std::fs::read(&blobs_a.path).unwrap(),
            std::fs::read(&blobs_b.path).unwrap()
        );
        let name = blobs_a
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("blobs-n600-d3-k4-") && name.ends_with(".npy"),
            "{name}"
        );
        let (again, outcome) = a.load_or_generate(&spec()).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        assert_eq!(again.x, blobs_a.x);
        assert_eq!(again.labels, blobs_a.labels);
    }

    /// The overlapping family's spread is `1.5 sqrt(d)`: its last digit
    /// must survive the sidecar's JSON, or every run regenerates the data.
    #[test]
    fn a_spread_of_many_digits_is_a_hit_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DataCache::new(dir.path());
        for d in [2, 10, 50, 100] {
            let spec =
                BlobSpec::new(Scenario::new(64, d, 3).unwrap()).with_std(1.5 * (d as f64).sqrt());
            let (_, first) = cache.load_or_generate(&spec).unwrap();
            assert_eq!(first, CacheOutcome::Generated);
            let (_, again) = cache.load_or_generate(&spec).unwrap();
            assert_eq!(again, CacheOutcome::Hit, "d={d}");
        }
    }

    #[test]
    fn every_setting_changes_the_name() {
        let base = DataCache::stem(&spec());
        assert_ne!(base, DataCache::stem(&spec().with_seed(1)));
        assert_ne!(base, DataCache::stem(&spec().with_std(2.0)));
        let mut boxed = spec();
        boxed.center_box = 5.0;
        assert_ne!(base, DataCache::stem(&boxed));
        let mut versioned = spec();
        versioned.generator_version += 1;
        assert_ne!(base, DataCache::stem(&versioned));
        assert_ne!(
            base,
            DataCache::stem(&BlobSpec::new(Scenario::new(600, 3, 5).unwrap()))
        );
    }

    #[test]
    fn corrupt_or_truncated_files_are_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DataCache::new(dir.path());
        let (blobs, _) = cache.load_or_generate(&spec()).unwrap();
        let good = std::fs::read(&blobs.path).unwrap();

        // One flipped byte in the data: the checksum catches it.
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        std::fs::write(&blobs.path, &flipped).unwrap();
        let (again, outcome) = cache.load_or_generate(&spec()).unwrap();
        assert!(
            matches!(&outcome, CacheOutcome::Regenerated { reason } if reason.contains("checksum")),
            "{outcome:?}"
        );
        assert_eq!(again.x, blobs.x);
        assert_eq!(std::fs::read(&blobs.path).unwrap(), good);

        // Truncated: the header check catches it.
        std::fs::write(&blobs.path, &good[..good.len() / 2]).unwrap();
        let (_, outcome) = cache.load_or_generate(&spec()).unwrap();
        assert!(matches!(outcome, CacheOutcome::Regenerated { .. }));

        // Sidecar gone (a generation killed before it landed).
        std::fs::remove_file(DataCache::sidecar_path(&blobs.path)).unwrap();
        let (_, outcome) = cache.load_or_generate(&spec()).unwrap();
        assert!(matches!(outcome, CacheOutcome::Regenerated { .. }));
        assert_eq!(std::fs::read(&blobs.path).unwrap(), good);
        // Nothing temporary is left behind.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".tmp-"), "{name}");
        }
    }

    #[test]
    fn initial_centroids_are_cached_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DataCache::new(dir.path());
        let (blobs, _) = cache.load_or_generate(&spec()).unwrap();
        let first = cache
            .initial_centroids(&blobs, Start::KMeansPlusPlus, 3)
            .unwrap();
        assert_eq!(first.dim(), (4, 3));
        let path = cache.init_path(&blobs.spec, 3);
        assert!(path.exists());
        assert_eq!(
            cache
                .initial_centroids(&blobs, Start::KMeansPlusPlus, 3)
                .unwrap(),
            first
        );
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(
            cache
                .initial_centroids(&blobs, Start::KMeansPlusPlus, 3)
                .unwrap(),
            first
        );
        assert_ne!(
            cache
                .initial_centroids(&blobs, Start::KMeansPlusPlus, 4)
                .unwrap(),
            first
        );
    }

    #[test]
    fn concurrent_generation_ends_with_a_correct_file() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let cache = DataCache::new(dir.path());
                std::thread::spawn(move || cache.load_or_generate(&spec()).unwrap().0.x)
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results[0], results[1]);
        let (_, outcome) = DataCache::new(dir.path())
            .load_or_generate(&spec())
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
    }

    #[test]
    fn a_changed_cached_file_is_told_apart_from_its_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DataCache::new(dir.path());
        let (blobs, _) = cache.load_or_generate(&spec()).unwrap();
        assert_eq!(DataCache::sidecar_mismatch(&blobs.path), None);
        let mut bytes = std::fs::read(&blobs.path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&blobs.path, bytes).unwrap();
        let why = DataCache::sidecar_mismatch(&blobs.path).unwrap();
        assert!(why.contains("checksum"), "{why}");
        // A file without a sidecar is not the cache's: nothing to say.
        let other = dir.path().join("mine.npy");
        std::fs::copy(&blobs.path, &other).unwrap();
        assert_eq!(DataCache::sidecar_mismatch(&other), None);
    }

    #[test]
    fn random_rows_are_distinct_rows_of_the_data_and_cached_apart() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DataCache::new(dir.path());
        let (blobs, _) = cache.load_or_generate(&spec()).unwrap();
        let rows = cache
            .initial_centroids(&blobs, Start::RandomRows, 0)
            .unwrap();
        let k = blobs.spec.scenario.k;
        assert_eq!(rows.nrows(), k);
        for row in rows.rows() {
            assert!(blobs.x.rows().into_iter().any(|x| x == row));
        }
        let mut distinct: Vec<String> = rows.rows().into_iter().map(|r| format!("{r}")).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), k);
        assert_eq!(
            cache
                .initial_centroids(&blobs, Start::RandomRows, 0)
                .unwrap(),
            rows
        );
        assert_ne!(
            cache
                .initial_centroids(&blobs, Start::KMeansPlusPlus, 0)
                .unwrap(),
            rows
        );
    }
}
