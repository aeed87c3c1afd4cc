#!/usr/bin/env bash
# Installs the Debian packages pam_totp needs, in three sets, so that a
# server gets only what it runs. Debian 12 (bookworm), as root. Rust itself
# (cargo, rustc 1.89 or newer, rustfmt, clippy) comes from rustup, not from
# here, and only a build machine needs it.
#
#   packaging/install-deps.sh             # all three sets (build machine, CI)
#   packaging/install-deps.sh --runtime   # a server: what the module and tools use
#   packaging/install-deps.sh --build     # build the .deb (packaging/build-deb.sh)
#   packaging/install-deps.sh --test      # run tests/run-all and the CI checks
#   packaging/install-deps.sh --list [SET...]   # print the package names, one a line
#
# Sets combine (--build --test). A server needs no toolchain: build the .deb
# on a build machine, copy it, and `apt install ./pam-totp_*.deb`, which
# pulls the runtime set by itself (the .deb's Depends).
#
# Packages named in tests/DEPENDENCIES (one or more a line, `#` starts a
# comment) belong to the test set, so the tests can ask for what they need
# without editing this file.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

# What the installed module and tools use; all in a standard Debian system.
runtime_packages=(
    libpam0g       # libpam, which loads pam_totp.so
    libpam-modules # pam_unix, pam_permit, pam_deny of the stacks around it
    libpam-runtime # pam-auth-update, for the optional common-auth profile
)

# A C toolchain and linker for rustc and the crates' build scripts, libpam
# to link against, and the tools packaging/build-deb.sh runs.
build_packages=(
    build-essential
    pkg-config
    libpam0g-dev
    dpkg-dev
    binutils
)

# Tests and CI checks: real libpam under pam_wrapper, Google's module for
# the differential suite, independent code generation and QR decoding,
# clock control, memory checks (benchmarks), a real sshd,
# lintian (packaging/check-deb.sh) and shellcheck (.ci/run).
test_packages=(
    libpam-wrapper
    libpam-google-authenticator
    oathtool
    zbar-tools
    faketime
    valgrind
    openssh-server
    openssh-client
    lintian
    shellcheck
)

die() {
    echo "install-deps: $*" >&2
    exit 1
}

extra_file="$repo/tests/DEPENDENCIES"
if [ -f "$extra_file" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        for name in $line; do
            [[ "$name" =~ ^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$ ]] \
                || die "tests/DEPENDENCIES: '$name' is not a Debian package name"
            test_packages+=("$name")
        done
    done <"$extra_file"
fi

list=no
sets=()
for arg in "$@"; do
    case "$arg" in
        --list) list=yes ;;
        --runtime) sets+=(runtime) ;;
        --build) sets+=(build) ;;
        --test) sets+=(test) ;;
        *) die "usage: $0 [--list] [--runtime] [--build] [--test]" ;;
    esac
done
[ ${#sets[@]} -gt 0 ] || sets=(runtime build test)

packages=()
for set in "${sets[@]}"; do
    case "$set" in
        runtime) packages+=("${runtime_packages[@]}") ;;
        build) packages+=("${build_packages[@]}") ;;
        test) packages+=("${test_packages[@]}") ;;
    esac
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')

if [ "$list" = yes ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
for name in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$name")
done
if [ ${#missing[@]} = 0 ]; then
    echo "install-deps: all ${#packages[@]} packages are installed"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root to install: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
# No Recommends: they would bring in services (libpam-systemd through
# openssh-server) that change the PAM stacks the tests run under.
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
echo "install-deps: done"
