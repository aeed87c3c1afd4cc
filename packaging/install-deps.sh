#!/usr/bin/env bash
# Installs the Debian packages needed to build, package and test pam_totp:
# the one list, used by .ci/run, packaging/install.sh and the README's quick
# start. Debian 12 (bookworm), as root. Rust itself (cargo, rustc 1.89 or
# newer, rustfmt, clippy) comes from rustup, not from here.
#
#   packaging/install-deps.sh          # install what is missing
#   packaging/install-deps.sh --list   # print the package names, one a line
#
# Packages named in tests/DEPENDENCIES (one or more a line, `#` starts a
# comment) are installed too, so the tests can ask for what they need
# without editing this file.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

packages=(
    # Building: a C toolchain and linker for rustc and the crates' build
    # scripts, and libpam to link the module and the test driver against.
    build-essential
    pkg-config
    libpam0g-dev
    # Packaging: packaging/build-deb.sh and packaging/check-deb.sh.
    dpkg-dev
    fakeroot
    lintian
    binutils
    # CI: shellcheck of the project's scripts (.ci/run).
    shellcheck
    # Tests: real libpam under pam_wrapper, Google's module for the
    # differential suite, independent code generation and QR decoding,
    # a PAM driver, clock control, memory checks, and a real sshd.
    libpam-wrapper
    libpamtest0-dev
    libpam-google-authenticator
    oathtool
    zbar-tools
    pamtester
    faketime
    valgrind
    openssh-server
    openssh-client
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
            packages+=("$name")
        done
    done <"$extra_file"
fi

if [ "${1:-}" = --list ]; then
    printf '%s\n' "${packages[@]}" | awk '!seen[$0]++'
    exit 0
elif [ $# -gt 0 ]; then
    die "usage: $0 [--list]"
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
