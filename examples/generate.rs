//! Generates (or finds in the cache) the blobs of one scenario and prints the
//! cached file's path.
//!
//! `cargo run --release --example generate -- --n N --d D --k K [--seed S] [--csv]`

use std::process::ExitCode;

use clap::Parser;
use pythonvsrust_kmeans::cli::{exit_with, ScenarioArgs};
use pythonvsrust_kmeans::data::{BlobSpec, CacheOutcome, DataCache, Start};

/// Generate seeded Gaussian blobs into the data cache and print the path.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write a CSV copy and print its path instead.
    #[arg(long)]
    csv: bool,
}

fn main() -> ExitCode {
    exit_with(|| {
        let args = Args::parse();
        let spec = BlobSpec::new(args.scenario.scenario()?).with_seed(args.seed);
        let cache = DataCache::project();
        let (blobs, outcome) = cache.load_or_generate(&spec)?;
        match outcome {
            CacheOutcome::Hit => {}
            CacheOutcome::Generated => eprintln!("generated {}", blobs.path.display()),
            CacheOutcome::Regenerated { reason } => {
                eprintln!("regenerated {} ({reason})", blobs.path.display())
            }
        }
        cache.initial_centroids(&blobs, Start::KMeansPlusPlus, args.seed)?;
        eprintln!(
            "initial centroids (k-means++, seed {}): {}",
            args.seed,
            cache.init_path(&blobs.spec, args.seed).display()
        );
        let path = if args.csv {
            cache.write_csv(&blobs)?
        } else {
            blobs.path
        };
        println!("{}", path.display());
        Ok(())
    })
}
