#!/usr/bin/env bash
# Whole-authentication benchmark of pam_totp.so against Google's
# pam_google_authenticator.so: the same PAM application (tests' pam-driver,
# real libpam under pam_wrapper), the same secret file, the same machine, the
# same run. Prints the figures recorded in BENCHMARKS.md.
#
#   bench/run.sh [RUNS]      # as root; RUNS per case, default 300
#
# Each authentication is one process: exec + libpam + module + exit. Both
# modules pay the same process cost, so the difference is the modules'.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
google=/lib/x86_64-linux-gnu/security/pam_google_authenticator.so

# Two commands: a target filter like --bin would skip the module's cdylib.
cargo build --release -q -p pam_totp
cargo build --release -q -p pam_totp_tests --bin pam-driver
target=${CARGO_TARGET_DIR:-target}/release
ours=$(realpath "$target/libpam_totp.so")
driver=$(realpath "$target/pam-driver")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/services"
echo "auth required pam_deny.so" > "$work/services/other"
# The success path rewrites the file (DISALLOW_REUSE, RATE_LIMIT): each run
# starts from a fresh copy, made outside the timed command.
printf '%s\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n11111111\n22222222\n' "$secret" > "$work/template"
for module in ours google; do
    eval "path=\$$module"
    echo "auth required $path secret=$work/$module.secret" > "$work/services/$module"
done
# Only the PAM application gets pam_wrapper: a helper process that execs
# (sh -c) would leave pam_wrapper's per-process directory behind.
wrap="env LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$work/services"
user=$(id -un)
code=$(oathtool --totp -b "$secret")

fresh() { echo "sh -c 'cp $work/template $work/$1.secret && chmod 400 $work/$1.secret'"; }
fresh_now() { cp "$work/template" "$work/$1.secret" && chmod 400 "$work/$1.secret"; }
auth() { echo "$wrap $driver --service $1 --user $user --answer $2"; }

# A figure is only worth something if each case does what it says: check the
# outcome of one run of each before timing it.
check() { # module answer expected-return-code
    fresh_now "$1"
    local got
    got=$($(auth "$1" "$2") | awk -F'\t' '$1 == "authenticate" { print $2 }')
    [ "$got" = "$3" ] || { echo "bench: $1 with answer $2 returned ${got:-nothing}, expected $3" >&2; exit 1; }
}
for module in ours google; do
    check "$module" "$code" 0
    check "$module" 000000 7
done
grep -q "DISALLOW_REUSE [0-9]" "$work/ours.secret" "$work/google.secret" 2>/dev/null || true

echo "== latency of one authentication (hyperfine, $runs runs each, interleaved per case)"
for case in "success:$code" "failure:000000"; do
    name=${case%%:*}
    answer=${case#*:}
    hyperfine -N --runs "$runs" --warmup 20 --style basic --export-json "$work/$name.json" \
        -n "pam_totp $name" --prepare "$(fresh ours)" "$(auth ours "$answer")" \
        -n "google $name" --prepare "$(fresh google)" "$(auth google "$answer")" >/dev/null
    python3 - "$work/$name.json" "$name" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
row = {}
for r in results:
    times = sorted(r["times"])
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    row[r["command"].split()[0]] = (statistics.median(times) * 1e3, p99 * 1e3)
    print(f'{r["command"]:<20} median {statistics.median(times)*1e3:7.3f} ms   p99 {p99*1e3:7.3f} ms')
ours, google = row["pam_totp"], row["google"]
print(f'{sys.argv[2]:<20} ratio pam_totp/google: median {ours[0]/google[0]:.2f}, p99 {ours[1]/google[1]:.2f}')
PY
done

echo "== instructions for one authentication (valgrind callgrind; success path)"
for module in ours google; do
    fresh_now "$module"
    # env execs the driver: follow it, and keep the driver's own count.
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/$module.cg.%p" \
        $(auth "$module" "$code") >/dev/null 2>"$work/$module.vg" || true
    total=$(grep -oE 'Collected : [0-9]+' "$work/$module.vg" | grep -oE '[0-9]+' | tail -n 1 || echo '?')
    echo "$module: $total instructions (whole process)"
    callgrind_annotate --inclusive=yes "$(ls -S "$work/$module".cg.* | head -n 1)" 2>/dev/null \
        | grep -E 'pam_sm_authenticate|hmac|Hmac|sha1|Sha1|compress' | head -4 | sed 's/^/    /' || true
done

echo "== system calls of one authentication (strace -c -f; success path)"
for module in ours google; do
    fresh_now "$module"
    strace -f -c -o "$work/$module.strace" $(auth "$module" "$code") >/dev/null 2>&1 || true
    echo "$module:"
    grep -E 'fsync|rename|flock|openat|total' "$work/$module.strace" | sed 's/^/    /' || true
done

echo "== throughput: authentications per second, wrong codes under RATE_LIMIT (each one rewrites the file)"
for module in ours google; do
    eval "path=\$$module"
    for i in 0 1 2 3 4 5 6 7; do
        echo "auth required $path secret=$work/$module-$i.secret" > "$work/services/$module-$i"
    done
done
python3 - "$work" "$driver" "$user" <<'PY'
import concurrent.futures, os, shutil, subprocess, sys, time
work, driver, user = sys.argv[1:4]
env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so", PAM_WRAPPER="1",
           PAM_WRAPPER_SERVICE_DIR=os.path.join(work, "services"))
retries = 0
def run(service):
    global retries
    # Started again when pam_wrapper could not start it, or when the driver
    # could not write its report (exit 1, nothing printed): the count of such
    # restarts is printed with the figures.
    for _ in range(5):
        done = subprocess.run([driver, "--service", service, "--user", user, "--answer", "000000"],
                              env=env, capture_output=True, text=True)
        unstarted = ("pwrap_init: Failed to copy config files" in done.stderr
                     or "pam_start: failed to initialize handlers" in done.stderr)
        if unstarted or not done.stdout:
            retries += 1
            continue
        break
    assert "authenticate\t7\t" in done.stdout, (done.returncode, done.stdout, done.stderr[-2000:])
total = 400
for module in ["ours", "google"]:
    for procs in [2, 8]:
        for shared in [False, True]:
            for i in range(8):
                dst = os.path.join(work, f"{module}-{i}.secret")
                shutil.copy(os.path.join(work, "template"), dst)
                os.chmod(dst, 0o400)
            services = [f"{module}-{0 if shared else n % procs}" for n in range(total)]
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(procs) as pool:
                list(pool.map(run, services))
            rate = total / (time.perf_counter() - start)
            name = "pam_totp" if module == "ours" else "google"
            print(f"{name:<9} {procs} processes, {'one file     ' if shared else 'distinct files'}: {rate:6.0f} auth/s")
print(f"(processes started again: {retries})")
PY

echo "== the I/O floor: write + fsync + rename + directory fsync of the same file"
python3 - "$work" <<'PY'
import os, statistics, sys, time
d = sys.argv[1]
data = open(os.path.join(d, "template"), "rb").read()
times = []
for _ in range(300):
    t = time.perf_counter()
    fd = os.open(os.path.join(d, "floor.tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    os.write(fd, data); os.fsync(fd); os.close(fd)
    os.rename(os.path.join(d, "floor.tmp"), os.path.join(d, "floor"))
    dfd = os.open(d, os.O_RDONLY); os.fsync(dfd); os.close(dfd)
    times.append(time.perf_counter() - t)
print(f"durable replace alone: median {statistics.median(times)*1e3:.3f} ms")
PY
