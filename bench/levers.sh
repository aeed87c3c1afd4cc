#!/usr/bin/env bash
# Compares builds of pam_totp.so lever by lever, with figures that do not
# move on a loaded machine: for each .so given, its size, NEEDED list and
# relocations, and per transaction (pam-bench auth, (figure of N+1 logins -
# figure of 1) / N): instructions under callgrind for dlopen+dlclose alone,
# a successful login and a wrong code, and minor page faults of a successful
# login. Then a short interleaved latency run of each against Google's
# module (timings: noisy on a shared machine; the ratio is what to read).
#
#   bench/levers.sh SO [SO...]       # e.g. two builds copied aside: /tmp/before.so /tmp/after.so
#
# Environment: N (default 20) logins for the difference; ROUNDS (default 60)
# latency rounds. Needs valgrind, libpam-wrapper, libpam-google-authenticator.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-20}
rounds=${ROUNDS:-60}
cargo build --release -q -p pam_totp_tests --bin pam-bench
bench=$(realpath "${CARGO_TARGET_DIR:-target}/release/pam-bench")
work=$(mktemp -d /var/tmp/pam-levers.XXXXXX)
trap 'rm -rf "$work"' EXIT

for so in "$@"; do
    so=$(realpath "$so")
    "$bench" prepare --dir "$work" --ours "$so" > "$work/env"
    mapfile -t wrap < "$work/env"
    ir() { # case iterations
        rm -f "$work"/cg.*
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/cg.%p" \
            env "${wrap[@]}" "$bench" auth --dir "$work" --module ours --case "$1" --iterations "$2" \
            > /dev/null 2>&1
        awk '/^summary:/ { print $2 }' "$(grep -l '^cmd: .*pam-bench' "$work"/cg.* | head -n 1)"
    }
    faults() { # case iterations
        env "${wrap[@]}" "$bench" auth --dir "$work" --module ours --case "$1" --iterations "$2" |
            awk '/minor_faults/ { print $2 }'
    }
    echo "== $so"
    echo "size $(stat -L -c %s "$so") bytes; NEEDED: $(readelf -dW "$so" |
        sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | paste -sd' '); relocations $(readelf -rW "$so" |
        grep -c ' R_X86_64_')"
    line="instructions per transaction (callgrind, portable SHA-1):"
    for case in load success wrong; do
        one=$(ir "$case" 1)
        many=$(ir "$case" $((n + 1)))
        line="$line $case $(( (many - one) / n ))"
    done
    echo "$line"
    one=$(faults success 1)
    many=$(faults success $((n + 1)))
    echo "minor page faults per successful login: $(awk -v a="$many" -v b="$one" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }')"
    env "${wrap[@]}" "$bench" latency --dir "$work" --iterations "$rounds" --warmup 5 |
        grep -E '^(case|success|rewrite|wrong|unknown|dlopen)'
done
