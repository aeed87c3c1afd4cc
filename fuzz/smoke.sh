#!/usr/bin/env bash
# Runs every fuzz target for a bounded time from the committed seeds and
# prints the corpus size and executions of each. Used by CI; also by hand:
#   fuzz/smoke.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs nightly-only flags; the stable toolchain accepts them
# when asked to bootstrap. No other toolchain can be installed here.
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    log=$(mktemp)
    if ! cargo fuzz run "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED"
        exit 1
    fi
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    echo "fuzz: $target ok: ${seconds}s, $execs executions, corpus $(find "$corpus" -type f | wc -l) files"
    rm -f "$log"
done
