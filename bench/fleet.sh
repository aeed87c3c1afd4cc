#!/usr/bin/env bash
# What fleet mode costs: the module with fleet support against a build
# without it, both release, in one process (pam-bench fleet; see
# tests/src/bin/pam-bench/fleet.rs), plus callgrind instruction counts.
#
#   bench/fleet.sh [ITERATIONS]          # default 400
#
# The build without fleet support (BASE) is, by default, the newest commit
# of this history that has no pam_totp/src/fleet/: the same code but for
# fleet mode, as closely as history allows. It is built in a worktree of
# its own under /var/tmp. A redis-server of its own listens on 127.0.0.1:24790 (no
# persistence) and is stopped at the end. Needs redis-server; valgrind for
# the instruction counts. Run as root (the shared-state configuration must
# be owned by root). The benchmark directory is on disk (/var/tmp), not
# tmpfs, where fsync would cost nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-400}
base=${BASE:-$(git rev-list HEAD | while read -r c; do
    git cat-file -e "$c:pam_totp/src/fleet" 2>/dev/null || { echo "$c"; break; }; done)}
port=${FLEET_BENCH_PORT:-24790}
work=$(mktemp -d /var/tmp/pam-bench-fleet.XXXXXX)
base_tree=$work/base
redis_pid=
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
    git worktree remove --force "$base_tree" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== build (release): this tree, and $(git log -1 --format='%h %s' "$base") (without fleet support)"
cargo build --release -q -p pam_totp
cargo build --release -q -p pam_totp_tests --bin pam-bench
git worktree add -q --detach "$base_tree" "$base"
(cd "$base_tree" && CARGO_TARGET_DIR=$work/base-target cargo build --release -q -p pam_totp)
target=$(realpath "${CARGO_TARGET_DIR:-target}")/release
with=$target/libpam_totp.so
without=$work/base-target/release/libpam_totp.so
bench=$target/pam-bench
for so in "$without" "$with"; do
    echo "$so: $(stat -c %s "$so") bytes, NEEDED: $(readelf -d "$so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
done
echo "imported symbols only in the build with fleet support:" \
    "$(comm -13 <(nm -D --undefined-only "$without" | awk '{print $2}' | sort) \
                <(nm -D --undefined-only "$with" | awk '{print $2}' | sort) | tr '\n' ' ')"

redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    > "$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
printf 'url = redis://127.0.0.1:%s\ntimeout_ms = 300\n' "$port" > "$work/shared.conf"
chmod 600 "$work/shared.conf"

"$bench" fleet-prepare --dir "$work/d" --ours "$with" --without "$without" \
    --shared-state "$work/shared.conf" > "$work/env"
mapfile -t wrap < "$work/env"
args=(--dir "$work/d" --ours "$with" --without "$without" --redis-port "$port")

echo "== wall clock (medians; this machine's load: $(cut -d' ' -f1-3 /proc/loadavg))"
env "${wrap[@]}" "$bench" fleet "${args[@]}" --iterations 3000 --only loads
env "${wrap[@]}" "$bench" fleet "${args[@]}" --iterations "$iterations"
echo "store round trip (redis-cli --latency, 3 s): $(timeout 3 redis-cli -p "$port" --latency -i 1 2>/dev/null | tail -n 1)"

if command -v valgrind >/dev/null; then
    echo "== instructions (valgrind --tool=callgrind, inclusive)"
    for case in load-without load-with; do
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/cg.$case.%p" \
            env "${wrap[@]}" "$bench" fleet "${args[@]}" --iterations 1 --only "$case" \
            > /dev/null 2> "$work/cg.$case.log"
        out=$(grep -l '^cmd: .*pam-bench' "$work/cg.$case".[0-9]* | head -n 1)
        printf '%-13s dlopen %s\n' "$case:" \
            "$(callgrind_annotate --inclusive=yes "$out" | awk '/dlopen@@GLIBC/ { print $1; exit }')"
    done
    for case in without with store; do
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/cg.$case.%p" \
            env "${wrap[@]}" "$bench" fleet "${args[@]}" --iterations 1 --only "$case" \
            > /dev/null 2> "$work/cg.$case.log"
        out=$(grep -l '^cmd: .*pam-bench' "$work/cg.$case".[0-9]* | head -n 1)
        callgrind_annotate --inclusive=yes --tree=calling "$out" > "$work/cg.$case.tree"
        printf '%-13s %s\n' "$case:" "$(grep -A5 -E '\* +\?\?\?:pam_bench::pam::transaction ' "$work/cg.$case.tree" |
            awk '{ gsub(/,/, "", $1) }
                 /\* .*transaction/ { t = $1 }
                 / > .*:pam_start / { s = $1 }
                 / > .*:pam_authenticate / { a = $1 }
                 / > .*:pam_end / { e = $1 }
                 END { printf "pam_start..end %d (pam_start %d, pam_authenticate %d, pam_end %d)", t, s, a, e }')"
    done
fi
