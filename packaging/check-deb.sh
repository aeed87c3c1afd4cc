#!/usr/bin/env bash
# Checks the .deb that packaging/build-deb.sh made: lintian (any error fails;
# warnings and notes are shown), the files the package must hold, and the
# module's exported symbols. Lists the package's control data and contents.
#
#   packaging/check-deb.sh [DEB]    # default: the newest target/debian/pam-totp_*.deb
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

die() {
    echo "check-deb: $*" >&2
    exit 1
}

if [ $# -gt 1 ]; then
    die "usage: $0 [DEB]"
fi
if [ $# = 1 ]; then
    deb=$1
else
    # The newest one; `ls -t` is fine on names that build-deb.sh chose.
    # shellcheck disable=SC2012
    deb=$(ls -t "$repo"/target/debian/pam-totp_*.deb 2>/dev/null | head -n 1 || true)
    [ -n "$deb" ] || die "no target/debian/pam-totp_*.deb: run packaging/build-deb.sh first"
fi
[ -f "$deb" ] || die "$deb: no such file"
for tool in lintian dpkg-deb nm readelf; do
    command -v "$tool" >/dev/null || die "$tool not found; run packaging/install-deps.sh"
done

echo "==> $deb"
dpkg-deb --info "$deb"
echo
echo "==> contents"
dpkg-deb --contents "$deb"

echo
echo "==> lintian"
# --fail-on error: warnings and informational tags are reported, not fatal.
lintian_status=0
lintian --fail-on error --display-info --pedantic --tag-display-limit 0 "$deb" || lintian_status=$?

echo
echo "==> package layout"
problems=()
listing=$(dpkg-deb --contents "$deb")
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
expect() { # MODE PATH
    grep -qE "^$1 root/root .* \./${2//./\\.}\$" <<<"$listing" \
        || problems+=("missing or wrong mode/owner ($1 root/root): /$2")
}
expect -rw-r--r-- "usr/lib/$multiarch/security/pam_totp.so"
expect -rwxr-xr-x usr/bin/totp-enroll
expect -rw-r--r-- usr/share/man/man8/pam_totp.8.gz
expect -rw-r--r-- usr/share/man/man1/totp-enroll.1.gz
expect -rwxr-xr-x usr/sbin/pam_totp-check
expect -rw-r--r-- usr/share/man/man8/pam_totp-check.8.gz
expect -rw-r--r-- usr/share/doc/pam-totp/copyright
expect -rw-r--r-- usr/share/doc/pam-totp/changelog.Debian.gz
expect -rw-r--r-- usr/share/pam-configs/pam-totp
expect -rw-r--r-- etc/fail2ban/filter.d/pam-totp.conf
expect -rw-r--r-- usr/share/doc/pam-totp/examples/fail2ban-jail.conf

unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb --extract "$deb" "$unpacked"
profile="$unpacked/usr/share/pam-configs/pam-totp"
if [ -f "$profile" ] && ! grep -qx 'Default: no' "$profile"; then
    problems+=("the pam-auth-update profile must say 'Default: no': installing must not change PAM")
fi
so="$unpacked/usr/lib/$multiarch/security/pam_totp.so"
if [ -f "$so" ]; then
    exported=$(nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' | sort | tr '\n' ' ')
    echo "pam_totp.so exports: $exported"
    for symbol in pam_sm_authenticate pam_sm_setcred; do
        grep -qw "$symbol" <<<"$exported" || problems+=("pam_totp.so does not export $symbol")
    done
    if readelf --section-headers --wide "$so" | grep -q '[.]symtab'; then
        problems+=("pam_totp.so is not stripped")
    fi
fi

if [ "$lintian_status" != 0 ]; then
    problems+=("lintian reported errors (exit status $lintian_status)")
fi
if [ ${#problems[@]} -gt 0 ]; then
    printf 'check-deb: %s\n' "${problems[@]}" >&2
    exit 1
fi
echo "check-deb: $(basename "$deb") ok"
