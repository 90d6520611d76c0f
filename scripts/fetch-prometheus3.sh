#!/usr/bin/env bash
# Installs a Prometheus 3 server binary as `prometheus3` (default /usr/local/bin) from Debian's
# testing suite, for the test of created-timestamp zero ingestion
# (tests/e2e/observability/created.rs): Debian 12's own `prometheus` is 2.42, and 2.x does not
# read OpenMetrics `_created` at all.
#
# Every download is checked the way apt checks it: the suite's InRelease against the Debian
# archive keyring (gpgv), the package index against the SHA-256 InRelease gives it, the .deb
# against the SHA-256 the index gives it. Only the server binary is taken from the package.
#
# Usage: scripts/fetch-prometheus3.sh [BIN_DIR]      (env SUITE, default forky, then sid)
#
# (`fetch_from` runs in an `&&` list, where `set -e` does not act: each step checks itself.)
set -euo pipefail

bin_dir=${1:-/usr/local/bin}
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

die() { echo "fetch-prometheus3: $*" >&2; exit 1; }

# The SHA-256 and size that a verified InRelease ($1) lists for path $2.
listed() { awk -v p="$2" '/^SHA256:/ {s = 1; next} /^[^ ]/ {s = 0} s && $3 == p {print $1, $2}' "$1"; }

fetch_from() {
  local suite=$1 index=main/binary-amd64/Packages.xz
  curl -fsS -m 120 -o "$work/InRelease" "$mirror/dists/$suite/InRelease" || return 1
  gpgv --quiet --keyring "$keyring" --output "$work/Release" "$work/InRelease" 2>/dev/null \
    || die "$suite/InRelease: bad signature"
  read -r sum _ < <(listed "$work/Release" "$index") || die "$suite: no $index in InRelease"
  curl -fsS -m 300 -o "$work/Packages.xz" "$mirror/dists/$suite/$index" || return 1
  echo "$sum  $work/Packages.xz" | sha256sum --quiet -c - || die "$suite/$index: checksum mismatch"
  # The `prometheus` stanza: its version, file and SHA-256.
  read -r version file sha < <(xz -dc "$work/Packages.xz" | awk '
    /^Package: / {p = ($2 == "prometheus")}
    p && /^Version: / {v = $2} p && /^Filename: / {f = $2} p && /^SHA256: / {s = $2}
    /^$/ && p {print v, f, s; exit}') || die "$suite: no prometheus package"
  case $version in 3.*) ;; *) die "$suite has prometheus $version, not 3.x" ;; esac
  curl -fsS -m 600 -o "$work/prometheus.deb" "$mirror/$file" || return 1
  echo "$sha  $work/prometheus.deb" | sha256sum --quiet -c - || die "$file: checksum mismatch"
  dpkg-deb -x "$work/prometheus.deb" "$work/root" || die "$file: not a package dpkg-deb can unpack"
  install -D -m 0755 "$work/root/usr/bin/prometheus" "$bin_dir/prometheus3" \
    || die "can't install $bin_dir/prometheus3"
  echo "prometheus3: $("$bin_dir/prometheus3" --version | head -n 1) from $suite"
}

for suite in ${SUITE:-forky sid}; do
  fetch_from "$suite" && exit 0
  echo "fetch-prometheus3: $suite not reachable, trying the next suite" >&2
done
die "no suite could be fetched"
