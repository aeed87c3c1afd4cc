#!/usr/bin/env bash
# pam_totp.so against Google's pam_google_authenticator.so: the figures in
# BENCHMARKS.md, from one command. Whole logins through the real libpam under
# pam_wrapper, both modules in the same process, same machine, same kind of
# file (tests/src/bin/pam-bench does the work; this script runs it, and the
# tools around it).
#
#   bench/run.sh [ITERATIONS] [SECONDS]    # defaults: 500 iterations per latency case,
#                                          # 3 s per throughput case
#
# Environment: BENCH_DIR=DIR to work in DIR (kept afterwards) instead of a
# fresh directory under /var/tmp (removed). It must be on the file system to
# measure: tmpfs makes fsync free. Run as root, as CI does, or as any user:
# the secret files belong to whoever runs it.
#
# Needs: cargo, libpam-wrapper, libpam-google-authenticator, gcc (the tests'
# build.rs); valgrind and strace for their sections (skipped when missing);
# perf for syscall times with less overhead than strace (optional).
set -euo pipefail
cd "$(dirname "$0")/.."

iterations=${1:-500}
seconds=${2:-3}

section() { printf '\n== %s\n' "$*"; }

# Two commands: `-p pam_totp_tests --bin` alone would not build the module's
# cdylib. Both land in the same profile directory, where pam-bench looks for
# the module by default.
section "build (release)"
cargo build --release -q -p pam_totp
cargo build --release -q -p pam_totp_tests --bin pam-bench
target=${CARGO_TARGET_DIR:-target}/release
bench=$(realpath "$target/pam-bench")
echo "pam_totp.so: $(realpath "$target/libpam_totp.so") ($(stat -c %s "$target/libpam_totp.so") bytes)"

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
# Only the measured process gets the environment: a wrapper that execs
# (valgrind's launcher is a shell script) would carry pam_wrapper too.
run() { env "${wrap[@]}" "$bench" "$@" --dir "$work"; }

section "machine"
echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
echo "benchmark directory: $work ($fstype on $(findmnt -n -o SOURCE,OPTIONS -T "$work" 2>/dev/null || echo '?'))"
echo "Google's module: $(dpkg-query -W -f='${Package} ${Version}' libpam-google-authenticator 2>/dev/null || echo '?')"

section "latency of one login (pam-bench latency, one process, cases interleaved)"
run latency --iterations "$iterations"

# One callgrind run of `pam-bench auth`; leaves $work/callgrind.NAME.{tree,inclusive,exclusive}.
callgrind() { # name module case
    rm -f "$work/callgrind.$1".*
    # --trace-children: valgrind runs env, which execs pam-bench.
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/callgrind.$1.%p" \
        env "${wrap[@]}" "$bench" auth --dir "$work" --module "$2" --case "$3" \
        > /dev/null 2> "$work/callgrind.$1.log"
    local out
    out=$(grep -l '^cmd: .*pam-bench' "$work/callgrind.$1".[0-9]* | head -n 1)
    callgrind_annotate --inclusive=yes --tree=calling "$out" > "$work/callgrind.$1.tree"
    callgrind_annotate --inclusive=yes --threshold=100 "$out" > "$work/callgrind.$1.inclusive"
    callgrind_annotate --threshold=100 "$out" > "$work/callgrind.$1.exclusive"
    local total transaction sm
    total=$(awk '/PROGRAM TOTALS/ { print $1 }' "$work/callgrind.$1.tree")
    # The transaction's line and its direct callees, from the call tree.
    transaction=$(grep -A5 -E '\* +\?\?\?:pam_bench::pam::transaction ' "$work/callgrind.$1.tree" |
        awk '{ gsub(/,/, "", $1) }
             /\* .*transaction/ { t = $1 }
             / > .*:pam_start / { s = $1 }
             / > .*:pam_authenticate / { a = $1 }
             / > .*:pam_end / { e = $1 }
             END { printf "pam_start..end %d (pam_start %d, pam_authenticate %d, pam_end %d)", t, s, a, e }')
    sm=$(awk '/:pam_sm_authenticate / { print $1; exit }' "$work/callgrind.$1.inclusive")
    printf '%-16s whole process %s; %s; pam_sm_authenticate %s\n' "$1:" "$total" "$transaction" "${sm:-0}"
}

if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    section "instructions for one login (valgrind --tool=callgrind; inclusive counts)"
    callgrind ours ours success
    callgrind google google success
    callgrind baseline baseline success
    callgrind ours-failure ours failure
    callgrind google-failure google failure
    echo "pam_totp success, heaviest functions inside pam_sm_authenticate (inclusive):"
    grep -E 'libpam_totp\.so|pam_vsyslog|getpwnam_r' "$work/callgrind.ours.inclusive" |
        sed -n '2,13p' | sed 's/^/    /'
    echo "pam_totp failure: the code check (all the HMACs of the window and the skew search):"
    grep -E 'policy::check_candidates' "$work/callgrind.ours-failure.inclusive" | sed 's/^/    /'
    # The .so is stripped: 0x7010 is its SHA-1 block function (it holds the
    # four SHA-1 round constants).
    for name in google google-failure; do
        echo "Google $name, its SHA-1 block function (exclusive):"
        grep -E '0x0000000000007010 \[' "$work/callgrind.$name.exclusive" | sed 's/^/    /'
    done
else
    section "instructions: valgrind not installed, skipped"
fi

# Per-login totals from a trace with one line per system call, between
# pam-bench's markers (a failing write(-1, "pam-bench: begin"/"end")).
strace_summary() { # file
    awk '/pam-bench: begin/ { on = 1; n++; next }
         /pam-bench: end/ { on = 0; next }
         on && $NF ~ /^<[0-9.]+>$/ {
             name = $2; sub(/\(.*/, "", name)
             t = $NF; gsub(/[<>]/, "", t)
             calls[name]++; secs[name] += t; total++
         }
         END {
             printf "    %d system calls per login:", total / n
             for (s in calls) printf " %s %g", s, calls[s] / n
             printf "\n    per login, strace -T (each call inflated by tracing): "
             for (s in calls) if (s ~ /fsync|rename|flock|close/) printf "%s %.3f ms  ", s, 1000 * secs[s] / n
             printf "\n"
         }' "$1"
}
perf_trace_summary() { # file
    # perf trace lines: "T ( D ms): comm/pid name(args) = ret"; the markers
    # are write(fd: -1, ..., count: 16) and (..., count: 14).
    # A call interrupted by another event's line ends in a "[continued]: NAME()"
    # line, which carries the duration.
    awk '/write\(fd: -1,.*count: 16\)/ { on = 1; n++; next }
         /write\(fd: -1,.*count: 14\)/ { on = 0; next }
         on && /\( *[0-9.]+ ms\):/ {
             d = $0; sub(/^[^(]*\( */, "", d); sub(/ ms\).*/, "", d)
             name = $0
             if (name ~ /\[continued\]: /) sub(/^.*\[continued\]: /, "", name)
             else sub(/^[^)]*\): [^ ]+ /, "", name)
             sub(/\(.*/, "", name)
             if (name ~ /fsync|rename|close|flock/) { c[name]++; s[name] += d }
         }
         END {
             printf "    per login, perf trace: "
             for (x in c) printf "%s %g calls %.3f ms  ", x, c[x] / n, s[x] / n
             printf "\n"
         }' "$1"
}

if command -v strace >/dev/null; then
    section "system calls of one login, success path (strace -f -T, 20 logins, file preparation excluded)"
    for module in ours google; do
        strace -f -T -o "$work/strace.$module" env "${wrap[@]}" "$bench" auth --dir "$work" \
            --module "$module" --iterations 20 > /dev/null
        echo "$module:"
        strace_summary "$work/strace.$module"
        if perf trace -o "$work/perf-trace.$module" -- env "${wrap[@]}" "$bench" auth --dir "$work" \
            --module "$module" --iterations 200 > /dev/null 2>&1; then
            perf_trace_summary "$work/perf-trace.$module"
        fi
    done
else
    section "system calls: strace not installed, skipped"
fi

section "throughput: logins per second, counter-based files (every attempt rewrites the file), ${seconds} s each"
for module in ours google; do
    for processes in 2 8; do
        for files in distinct shared; do
            run throughput --module "$module" --processes "$processes" --files "$files" --seconds "$seconds"
        done
    done
done

section "the one-file floor: pam_totp's I/O alone from several processes, with 500 µs of CPU work outside the lock"
# 500 µs: what a login spends outside the lock (pam_start..pam_end minus the
# update under the lock, from the latency figures above).
for processes in 2 8; do
    # blocking: the kernel hands the lock over at once (the ceiling);
    # poll-2ms: what pam_totp does (store.rs, lock: try, sleep 2 ms, retry).
    for lock in blocking poll-2ms; do
        "$bench" contention --dir "$work" --processes "$processes" --lock "$lock" \
            --outside-us 500 --seconds "$seconds"
    done
done

section "on a CPU without SHA extensions: pam_totp built with sha1's portable code (--features sha1/force-soft)"
# Many servers still in use (Intel Xeon before Ice Lake) have no SHA-NI;
# sha1 then runs its portable code, as it does here with this feature. A
# target directory of its own, so the main build is left as it is.
soft_target=$(realpath "${CARGO_TARGET_DIR:-target}")/soft-sha1
CARGO_TARGET_DIR=$soft_target cargo build --release -q -p pam_totp --features sha1/force-soft
mkdir -p "$work/soft"
"$bench" prepare --dir "$work/soft" --ours "$soft_target/release/libpam_totp.so" > "$work/soft/env"
mapfile -t soft_wrap < "$work/soft/env"
env "${soft_wrap[@]}" "$bench" latency --dir "$work/soft" --iterations "$((iterations / 2))" |
    grep -E '^(latency|case|pam_totp  (success|failure)|google    (success|failure)|ratio)'

section "memory: peak RSS of a process that does one login (getrusage; five runs each)"
for module in ours google baseline; do
    printf '%-9s' "$module"
    for _ in 1 2 3 4 5; do
        printf ' %s' "$(run auth --module "$module" | awk '/maxrss_kib/ { print $2 }')"
    done
    echo " KiB"
done
