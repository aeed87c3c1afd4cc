#!/usr/bin/env bash
# pam_totp.so against Google's pam_google_authenticator.so: every figure in
# BENCHMARKS.md, from this one command. Whole logins through the real libpam
# under pam_wrapper, both modules in the same process, interleaved, on the
# same kind of file (tests/src/bin/pam-bench does the work; this script runs
# it, and the tools around it).
#
#   bench/run.sh [ROUNDS] [SECONDS]    # defaults: 300 interleaved rounds of the
#                                      # latency cases; 5 blocks of SECONDS (1) per
#                                      # module and process count for throughput
#
# Environment: BENCH_DIR=DIR to work in DIR (kept afterwards) instead of a
# fresh directory under /var/tmp (removed). It must be on the file system to
# measure: tmpfs makes fsync free. BENCH_EXTRA=1 adds the I/O floors, the
# one-file contention runs and the build with portable SHA-1 (slower).
#
# Needs: cargo, libpam-wrapper, libpam-google-authenticator, gcc (the tests'
# build.rs), binutils (readelf); valgrind for instruction counts and strace
# for system calls (each section skipped, loudly, when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-300}
seconds=${2:-1}

section() { printf '\n== %s\n' "$*"; }

# Two commands: `-p pam_totp_tests --bin` alone would not build the module's
# cdylib. Both land in the same profile directory, where pam-bench looks for
# the module by default.
section "build (release)"
cargo build --release -q -p pam_totp
cargo build --release -q -p pam_totp_tests --bin pam-bench
target=${CARGO_TARGET_DIR:-target}/release
bench=$(realpath "$target/pam-bench")
ours=$(realpath "$target/libpam_totp.so")

if [ -n "${BENCH_DIR:-}" ]; then
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d /var/tmp/pam-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
fstype=$(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || stat -f -c %T "$work")
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
    echo "bench: $work is on $fstype, where fsync costs nothing; set BENCH_DIR to a directory on disk" >&2
    exit 2
fi

# pam-bench writes the service files and prints the environment every
# measured process needs (pam_wrapper, and the syslog shim that gives both
# modules' log lines the same cost).
"$bench" prepare --dir "$work" > "$work/env"
mapfile -t wrap < "$work/env"
google=$(awk '{ print $3 }' "$work/services/google")
# Only the measured process gets the environment: a wrapper that execs
# (valgrind's launcher is a shell script) would carry pam_wrapper too.
run() { env "${wrap[@]}" "$bench" "$@" --dir "$work"; }

section "machine"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
if grep -qw sha_ni /proc/cpuinfo; then sha=yes; else sha=no; fi
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo '?')
if ! git diff --quiet HEAD 2>/dev/null; then commit="$commit (with uncommitted changes)"; fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $commit"
echo "cpu: $(nproc) CPUs, $cpu, SHA-NI: $sha; kernel $(uname -r)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "benchmark directory: $work ($fstype on $(findmnt -n -o SOURCE,OPTIONS -T "$work" 2>/dev/null || echo '?'))"
echo "Google's module: $google, $(dpkg-query -W -f='${Package} ${Version}' libpam-google-authenticator 2>/dev/null || echo '?')"

section "the modules as loaded (file size, NEEDED, relocations applied at each dlopen)"
for so in "$ours" "$google"; do
    needed=$(readelf -dW "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | paste -sd' ')
    relocs=$(readelf -rW "$so" | awk '$3 ~ /^R_/ { n++; t[$3]++ } END {
        printf "%d relocations (", n; s = ""
        for (k in t) { printf "%s%s %d", s, k, t[k]; s = ", " }
        printf ")" }')
    printf '%-10s %8d bytes; NEEDED: %s; %s\n' "$([ "$so" = "$ours" ] && echo pam_totp || echo google)" \
        "$(stat -L -c %s "$so")" "$needed" "$relocs"
done

section "latency of one login (pam-bench latency: one process, cases interleaved, the module unloaded after every pam_end)"
load_before=$(cut -d' ' -f1 /proc/loadavg)
run latency --iterations "$rounds"
echo "load average: $load_before before the latency run, $(cut -d' ' -f1 /proc/loadavg) after"

section "throughput: successful logins per second, distinct files, modules alternating in ${seconds}-s blocks (5 each)"
for processes in 1 "$(nproc)"; do
    for _block in 1 2 3 4 5; do
        for module in ours google; do
            run throughput --module "$module" --processes "$processes" --seconds "$seconds"
        done
    done | tee "$work/throughput.$processes"
    # Each pam_totp block is compared with the Google block run right after
    # it; the median of those five ratios is the figure (less sensitive to
    # the machine's load drifting than a ratio of medians).
    awk -v p="$processes" '/^throughput/ {
            rate = $0; sub(/ logins\/s.*/, "", rate); sub(/.*: +/, "", rate); rate += 0
            if ($2 == "pam_totp") o[++no] = rate; else g[++ng] = rate
        }
        function median(a, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return a[int((n + 1) / 2)]
        }
        END { for (i = 1; i <= no; i++) r[i] = o[i] / g[i]
              mr = median(r, no); mo = median(o, no); mg = median(g, ng)
              printf "throughput, %d process(es): pam_totp %.0f, google %.0f logins/s (medians of 5 blocks); ratio pam_totp/google %.2f (median of the 5 block pairs)\n", p, mo, mg, mr }' \
        "$work/throughput.$processes"
done

# Per-transaction figures from whole runs of 1 and 101 logins: the
# difference over 100 leaves out process start, the file set-up and exit.
if command -v valgrind >/dev/null; then
    section "instructions per transaction: (Ir of 101 - Ir of 1) / 100, valgrind --tool=callgrind (its virtual CPU has no SHA-NI: sha1 runs its portable code)"
    ir() { # module case iterations
        local out="$work/callgrind.$1.$2.$3"
        rm -f "$out".*
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out.%p" \
            env "${wrap[@]}" "$bench" auth --dir "$work" --module "$1" --case "$2" --iterations "$3" \
            > /dev/null 2> "$out.log"
        awk '/^summary:/ { print $2 }' "$(grep -l '^cmd: .*pam-bench' "$out".[0-9]* | head -n 1)"
    }
    for case in success rewrite wrong unknown-user load; do
        line=$(printf '%-14s' "$case")
        for module in ours google; do
            one=$(ir "$module" "$case" 1)
            many=$(ir "$module" "$case" 101)
            per=$(( (many - one) / 100 ))
            eval "per_$module=$per"
            line="$line $(printf '%-9s %12d' "$module" "$per")"
        done
        # shellcheck disable=SC2154 # set by eval above
        echo "$line   ratio $(awk -v a="$per_ours" -v b="$per_google" 'BEGIN { printf "%.2f", a / b }')"
    done
else
    section "instructions: valgrind not installed, SKIPPED"
fi

section "page faults per transaction: (minor faults of 101 logins - of 1) / 100, getrusage"
for case in success rewrite wrong; do
    line=$(printf '%-14s' "$case")
    for module in ours google; do
        one=$(run auth --module "$module" --case "$case" --iterations 1 | awk '/minor_faults/ { print $2 }')
        many=$(run auth --module "$module" --case "$case" --iterations 101 | awk '/minor_faults/ { print $2 }')
        line="$line $(printf '%-9s %6.1f' "$module" "$(awk -v a="$many" -v b="$one" 'BEGIN { print (a - b) / 100 }')")"
    done
    echo "$line"
done

# Per-login totals from a trace with one line per system call, between
# pam-bench's markers (a failing write(-1, "pam-bench: begin"/"end")).
strace_summary() { # file
    awk '/pam-bench: begin/ { on = 1; n++; next }
         /pam-bench: end/ { on = 0; next }
         on && $NF ~ /^<[0-9.]+>$/ {
             name = $2; sub(/\(.*/, "", name)
             calls[name]++; total++
         }
         END {
             printf "%d system calls per login:", total / n
             for (s in calls) printf " %s %g", s, calls[s] / n
             printf "\n"
         }' "$1"
}
if command -v strace >/dev/null; then
    section "system calls of one login (strace -f, 20 logins, the bench's own file set-up excluded)"
    for case in success rewrite; do
        for module in ours google; do
            strace -f -T -o "$work/strace.$module.$case" env "${wrap[@]}" "$bench" auth --dir "$work" \
                --module "$module" --case "$case" --iterations 20 > /dev/null
            printf '%-8s %-7s ' "$case" "$module"
            strace_summary "$work/strace.$module.$case"
        done
    done
else
    section "system calls: strace not installed, SKIPPED"
fi

section "memory: peak RSS of a process that does one login (getrusage; three runs each)"
for module in ours google baseline; do
    printf '%-9s' "$module"
    for _ in 1 2 3; do
        printf ' %s' "$(run auth --module "$module" | awk '/maxrss_kib/ { print $2 }')"
    done
    echo " KiB"
done

if [ "${BENCH_EXTRA:-}" = 1 ]; then
    section "extra: one file, counter-based (every attempt rewrites it), 2 processes, 3 s"
    for module in ours google; do
        run throughput --module "$module" --processes 2 --files shared --workload rewrite --seconds 3
    done
    section "extra: pam_totp's I/O alone from 2 processes on one file, 500 µs of CPU work outside the lock"
    for lock in blocking poll-2ms; do
        "$bench" contention --dir "$work" --processes 2 --lock "$lock" --outside-us 500 --seconds 3
    done
    section "extra: on a CPU without SHA extensions: pam_totp built with sha1's portable code"
    soft_target=$(realpath "${CARGO_TARGET_DIR:-target}")/soft-sha1
    CARGO_TARGET_DIR=$soft_target cargo build --release -q -p pam_totp --features sha1/force-soft
    mkdir -p "$work/soft"
    "$bench" prepare --dir "$work/soft" --ours "$soft_target/release/libpam_totp.so" > "$work/soft/env"
    mapfile -t soft_wrap < "$work/soft/env"
    env "${soft_wrap[@]}" "$bench" latency --dir "$work/soft" --iterations "$((rounds / 3))"
fi
