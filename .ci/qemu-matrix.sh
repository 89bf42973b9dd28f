#!/usr/bin/env bash
# Makes Debian bookworm's qemu-img 7.2.22 runnable beside the system
# qemu-img, without installing it: the .deb is fetched with
# `apt-get download` and unpacked with `dpkg -x` into
# .qemu-matrix/7.2.22/ (ignored by git), where the tests and the baseline
# generator find it. Idempotent: a working unpacked binary is left alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
qemu_version=7.2.22
# The Debian package of that release. A binNMU rebuild of the same source
# (+bN) holds the same qemu, so it is accepted when this exact one is gone.
pkg_version=${QEMU_MATRIX_PKG_VERSION:-1:7.2+dfsg-7+deb12u18+b3}
pkg_pattern='^1:7\.2\+dfsg-7\+deb12u18(\+b[0-9]+)?$'
dest=$root/.qemu-matrix/$qemu_version

works() {
    [ -x "$1/usr/bin/qemu-img" ] &&
        "$1/usr/bin/qemu-img" --version 2>/dev/null | head -n 1 | grep -q "^qemu-img version $qemu_version "
}

if works "$dest"; then
    echo "qemu-matrix: $("$dest/usr/bin/qemu-img" --version | head -n 1) already in $dest"
    exit 0
fi

for tool in apt-get apt-cache dpkg; do
    command -v "$tool" >/dev/null || { echo "qemu-matrix: $tool is needed (Debian bookworm)" >&2; exit 1; }
done

pick_version() {
    if apt-cache madison qemu-utils 2>/dev/null | awk '{print $3}' | grep -qxF "$pkg_version"; then
        echo "$pkg_version"
    else
        apt-cache madison qemu-utils 2>/dev/null | awk '{print $3}' | grep -E "$pkg_pattern" | head -n 1
    fi
}

version=$(pick_version || true)
if [ -z "$version" ]; then
    # The package lists may be missing or old on a fresh machine.
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
    else
        echo "qemu-matrix: package lists lack qemu-utils $pkg_version; run apt-get update as root" >&2
    fi
    version=$(pick_version || true)
fi
if [ -z "$version" ]; then
    echo "qemu-matrix: no qemu-utils $pkg_version (or a rebuild of it) in the apt sources" >&2
    echo "qemu-matrix: apt-cache policy qemu-utils says:" >&2
    apt-cache policy qemu-utils >&2 || true
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt drops privileges to _apt for downloads; let it write here.
chmod 0777 "$work"
(cd "$work" && apt-get download -qq "qemu-utils=$version")
deb=$(ls "$work"/qemu-utils_*.deb)
dpkg -x "$deb" "$work/unpacked"

if ! works "$work/unpacked"; then
    echo "qemu-matrix: the unpacked qemu-img does not run or is not $qemu_version:" >&2
    "$work/unpacked/usr/bin/qemu-img" --version >&2 || true
    exit 1
fi

mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work/unpacked" "$dest"
echo "qemu-matrix: $("$dest/usr/bin/qemu-img" --version | head -n 1) unpacked into $dest (package $version)"
