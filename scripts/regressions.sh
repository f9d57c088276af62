#!/usr/bin/env bash
# The performance regression check: runs the CI subset of benches (quick
# preset) and checks it against benches/baseline/regressions.json: our work
# exactly, our speed-ups over rust-plain and scikit-learn in the same run,
# our time over the machine's floor.
#
#   bash scripts/regressions.sh                   # check (exit 1 on a regression)
#   bash scripts/regressions.sh --write-baseline  # remake the baseline: every kernel
#   bash scripts/regressions.sh --write-work      # remake our work only, every kernel
#
# The subset covers d <= 4 (rows in lanes, with and without bounds), bounds
# with the first step's guesses (d = 50, k = 8) and the f32 screen (k = 30).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

filter='^kmeans/(1000x2/k2|100000x2/k30|10000x50/k8|10000x50/k30)/(rust|rust-plain|sklearn)$'
baseline=benches/baseline/regressions.json
out="$PWD/target/regressions"

bench() { # folder, then the environment to run in
    local folder="$1"; shift
    rm -rf "$folder"
    env "$@" KMEANS_BENCH_PRESET=quick KMEANS_REPORT_DIR="$folder" \
        cargo bench --locked --bench kmeans -- "$filter" > "$folder.log" 2>&1 \
        || { tail -30 "$folder.log" >&2; exit 1; }
}

update_baseline() { # folder, then the writer's options
    local folder="$1"; shift
    cargo run --release --locked --example regressions -- \
        --results "$folder" --baseline "$baseline" --write-baseline "$@"
}

check() { # folder
    cargo run --release --locked --example regressions -- --results "$1" --baseline "$baseline"
}

mkdir -p target
if [ "${1:-}" = "--write-baseline" ]; then
    rm -f "$baseline"
    mkdir -p "$(dirname "$baseline")"
    # Our work on the narrower kernels; work, ratios and floors from three
    # runs on the widest (the least ratio and the greatest time / floor).
    for kernel in portable avx2; do
        bench "$out-$kernel" KMEANS_KERNEL="$kernel"
        update_baseline "$out-$kernel" --work-only
    done
    for run in 1 2 3; do
        bench "$out-native-$run"
        update_baseline "$out-native-$run"
    done
    # The last run, for the tests (it must pass against the baseline).
    cp "$out-native-3/results.jsonl" benches/baseline/results.jsonl
    exit 0
fi
if [ "${1:-}" = "--write-work" ]; then
    # A change of work that leaves the ratios and floors standing (they
    # are checked against the same margins): our work from a run on each
    # kernel, the last on the widest, which becomes the committed run.
    for kernel in portable avx2; do
        bench "$out-$kernel" KMEANS_KERNEL="$kernel"
        update_baseline "$out-$kernel" --work-only
    done
    bench "$out-native"
    update_baseline "$out-native" --work-only
    cp "$out-native/results.jsonl" benches/baseline/results.jsonl
    check "$out-native"
    exit 0
fi
bench "$out"
check "$out"
