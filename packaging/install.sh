#!/usr/bin/env bash
# The README's quick start: installs the build dependencies, builds the .deb,
# installs it, and enrolls you. Debian 12, as root (directly or with sudo),
# with Rust (cargo 1.89 or newer) installed, e.g. by rustup.
#
#   packaging/install.sh              # everything, then enroll $SUDO_USER (or root)
#   packaging/install.sh --no-enroll  # skip the enrollment
#
# Nothing here changes the PAM or sshd configuration: turning the second
# factor on is a separate step (README: "Turning it on for SSH").
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
    echo "install: $*" >&2
    exit 1
}

enroll=yes
case "${1:-}" in
    "") ;;
    --no-enroll) enroll=no ;;
    *) die "usage: $0 [--no-enroll]" ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (sudo $0): packages are installed"
if ! command -v cargo >/dev/null; then
    # sudo resets PATH; rustup's cargo is often in the invoking user's home.
    for env_file in "$HOME/.cargo/env" ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/env"}; do
        if [ -f "$env_file" ]; then
            # shellcheck source=/dev/null
            . "$env_file"
            break
        fi
    done
fi
command -v cargo >/dev/null \
    || die "cargo not found: install Rust 1.89 or newer (https://rustup.rs), then run this again"

echo "==> build dependencies"
packaging/install-deps.sh

echo "==> build the package"
deb=$(packaging/build-deb.sh)
[ -f "$deb" ] || die "packaging/build-deb.sh did not report a .deb"

echo "==> install $deb"
apt-get install -y -qq "$deb" >/dev/null
echo "install: $(dpkg-query -W -f='${Package} ${Version}' pam-totp) installed"

user=${SUDO_USER:-root}
if [ "$enroll" = yes ]; then
    if [ ! -t 0 ]; then
        echo "install: not on a terminal, so not enrolling; run: totp-enroll --user $user"
    elif totp-enroll --status --user "$user" >/dev/null 2>&1; then
        echo "install: $user is already enrolled (totp-enroll --status --user $user)"
    else
        echo "==> enroll $user: scan the QR code with your authenticator app"
        totp-enroll --user "$user"
    fi
fi

cat <<'EOF'

Installed. The PAM configuration is unchanged: to ask for codes on SSH logins,
follow "Turning it on for SSH" in README.md, or see man pam_totp and
/usr/share/doc/pam-totp/examples/. Keep a root shell open until a new login
has worked.
EOF
