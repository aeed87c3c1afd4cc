#!/usr/bin/env bash
# Builds the Debian package of pam_totp: pam_totp.so, totp-enroll, their man
# pages, documentation, examples and an opt-in pam-auth-update profile.
#
#   packaging/build-deb.sh            # release build, then the .deb
#   packaging/build-deb.sh --no-build # package what target/release holds
#
# Writes target/debian/pam-totp_<version>_<arch>.deb (in the repository,
# whatever CARGO_TARGET_DIR says; the binaries are taken from cargo's target
# directory, CARGO_TARGET_DIR included). Progress goes to standard error;
# standard output is the path of the .deb, alone.
#
# Needs: cargo, dpkg-dev (dpkg-architecture, dpkg-shlibdeps, dpkg-gencontrol,
# dpkg-parsechangelog), binutils (strip), gzip, perl. No root: dpkg-deb
# --root-owner-group makes every file root's. Run packaging/install-deps.sh
# first on a fresh machine.
#
# The Debian version is the one at the top of packaging/debian/changelog; its
# upstream part must equal the crates' version in Cargo.toml, so that a
# version bump comes with a changelog entry.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
packaging="$repo/packaging"
cd "$repo"

die() {
    echo "build-deb: $*" >&2
    exit 1
}

build=yes
for arg in "$@"; do
    case "$arg" in
        --no-build) build=no ;;
        -h | --help)
            sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
            exit 0
            ;;
        *) die "unknown argument: $arg (see --help)" ;;
    esac
done

for tool in cargo dpkg-architecture dpkg-shlibdeps dpkg-gencontrol dpkg-parsechangelog \
    dpkg-deb strip gzip perl; do
    command -v "$tool" >/dev/null || die "$tool not found; run packaging/install-deps.sh"
done

# --- versions ----------------------------------------------------------------
# `cargo pkgid` prints e.g. path+file:///src/pam_totp#0.1.0 or ...#name@0.1.0.
pkgid=$(cargo pkgid -p pam_totp)
crate_version=${pkgid##*[#@]}
cli_pkgid=$(cargo pkgid -p totp-cli)
[ "${cli_pkgid##*[#@]}" = "$crate_version" ] \
    || die "pam_totp is $crate_version but totp-cli is ${cli_pkgid##*[#@]}; one package, one version"

deb_version=$(dpkg-parsechangelog -l "$packaging/debian/changelog" -S Version)
upstream_version=${deb_version#*:}
upstream_version=${upstream_version%-*}
[ "$upstream_version" = "$crate_version" ] || die \
    "packaging/debian/changelog is at $deb_version but the crates are at $crate_version:" \
    "add a changelog entry (e.g. dch -c packaging/debian/changelog -v $crate_version-1)"

# Reproducible: every date in the package is the changelog's.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$packaging/debian/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

# --- build -------------------------------------------------------------------
# Only the two crates that are shipped: the tests crate and the benchmarks
# are not needed for the package.
if [ "$build" = yes ]; then
    echo "build-deb: cargo build --release -p pam_totp -p totp-cli -p pam_totp_check" >&2
    cargo build --release -p pam_totp -p totp-cli -p pam_totp_check
fi

target_dir=$(cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cannot find cargo's target directory"
module="$target_dir/release/libpam_totp.so"
enroll="$target_dir/release/totp-enroll"
check="$target_dir/release/pam_totp-check"
for file in "$module" "$enroll" "$check"; do
    [ -f "$file" ] || die "$file is missing: build with cargo build --release -p pam_totp -p totp-cli"
done

# --- the tree, laid out as debhelper would, so the dpkg tools work as usual ---
out="$repo/target/debian"
mkdir -p "$out"
# A private staging directory, so two builds at once do not mix their trees.
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debian"
root="$work/debian/pam-totp"
doc="$root/usr/share/doc/pam-totp"
umask 022

cp "$packaging/debian/control" "$packaging/debian/changelog" "$work/debian/"

install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/$multiarch/security" \
    "$root/usr/share/man/man1" "$root/usr/share/man/man8" \
    "$root/usr/share/pam-configs" "$doc/examples"

# Stripped as dh_strip does: shared objects lose their unneeded symbols too.
install -m 0644 "$module" "$root/usr/lib/$multiarch/security/pam_totp.so"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$root/usr/lib/$multiarch/security/pam_totp.so"
install -m 0755 "$enroll" "$root/usr/bin/totp-enroll"
strip --remove-section=.comment --remove-section=.note "$root/usr/bin/totp-enroll"
install -d "$root/usr/sbin"
install -m 0755 "$check" "$root/usr/sbin/pam_totp-check"
strip --remove-section=.comment --remove-section=.note "$root/usr/sbin/pam_totp-check"

gzip -9n <"$packaging/man/pam_totp.8" >"$root/usr/share/man/man8/pam_totp.8.gz"
gzip -9n <"$packaging/man/totp-enroll.1" >"$root/usr/share/man/man1/totp-enroll.1.gz"
gzip -9n <"$packaging/man/pam_totp-check.8" >"$root/usr/share/man/man8/pam_totp-check.8.gz"

install -m 0644 "$packaging/pam-configs/pam-totp" "$root/usr/share/pam-configs/pam-totp"

# Policy 12.3: documentation over 4 kB is compressed; the copyright file never.
gzip -9n <"$packaging/debian/changelog" >"$doc/changelog.Debian.gz"
gzip -9n <"$repo/README.md" >"$doc/README.md.gz"
if [ -f "$repo/SECURITY.md" ]; then
    gzip -9n <"$repo/SECURITY.md" >"$doc/SECURITY.md.gz"
fi
install -m 0644 "$packaging"/examples/* "$doc/examples/"
# fail2ban: the filter where fail2ban looks for it (a conffile; harmless
# without fail2ban), the jail as an example to copy, disabled.
install -d "$root/etc/fail2ban/filter.d"
install -m 0644 "$packaging/fail2ban/filter.d/pam-totp.conf" "$root/etc/fail2ban/filter.d/pam-totp.conf"
install -m 0644 "$packaging/fail2ban/jail.d/pam-totp.conf" "$doc/examples/fail2ban-jail.conf"

# The copyright file names every crate linked into the binaries.
cargo tree -p pam_totp -p totp-cli -p pam_totp_check -e normal,no-proc-macro --prefix none --format '{p}' \
    >"$work/crates.txt"
cargo metadata --format-version 1 >"$work/metadata.json"
perl "$packaging/bundled-copyright.pl" "$packaging/debian/copyright" \
    "$work/crates.txt" "$work/metadata.json" >"$doc/copyright"
chmod 0644 "$doc/copyright"

printf '%s\n' /etc/fail2ban/filter.d/pam-totp.conf >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$packaging/debian/$script" "$root/DEBIAN/$script"
done
if [ -f "$packaging/debian/lintian-overrides" ]; then
    install -d "$root/usr/share/lintian/overrides"
    install -m 0644 "$packaging/debian/lintian-overrides" "$root/usr/share/lintian/overrides/pam-totp"
fi

# --- control file ------------------------------------------------------------
(
    cd "$work"
    # Depends: the libraries the two ELF files link (libc6, libpam0g, libgcc-s1).
    dpkg-shlibdeps -Tdebian/pam-totp.substvars \
        "debian/pam-totp/usr/lib/$multiarch/security/pam_totp.so" \
        debian/pam-totp/usr/bin/totp-enroll \
        debian/pam-totp/usr/sbin/pam_totp-check
    # Computes Installed-Size and fills in ${shlibs:Depends}.
    dpkg-gencontrol -ppam-totp -Pdebian/pam-totp -Tdebian/pam-totp.substvars
)

(
    cd "$root"
    find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
        | xargs -0 md5sum >DEBIAN/md5sums
)
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

# --- the .deb ----------------------------------------------------------------
deb="$out/pam-totp_${deb_version#*:}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$work/pam-totp.deb" >/dev/null
mv -f "$work/pam-totp.deb" "$deb"
echo "build-deb: built $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)" \
    "($(dpkg-deb -f "$deb" Installed-Size) KiB installed), Depends: $(dpkg-deb -f "$deb" Depends)" >&2
echo "$deb"
