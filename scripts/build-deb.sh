#!/usr/bin/env bash
# Builds the Debian package: target/debian/gpu-carbon-exporter_VERSION-1_ARCH.deb.
#
#   scripts/build-deb.sh            (prints the .deb's path as its last line)
#
# 1. examples/gen_manpage.rs writes the man page and the bash/zsh/fish completions, generated
#    from the clap definition, into target/deb-assets/;
# 2. cargo deb (cargo-deb, installed at the pinned version if missing) builds the release binary
#    (profile.release: thin LTO, stripped) and packages what [package.metadata.deb] in Cargo.toml
#    lists: binary, systemd unit and postrm (deploy/debian/), /etc/default/gpu-carbon-exporter
#    (conffile), man page, completions, README and docs.
# tests/deb/check-installed.sh installs the result and checks it; docs/deployment.md#debian-package.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null | awk '{print $NF}')" != "$cargo_deb_version" ]; then
  echo "build-deb: installing cargo-deb $cargo_deb_version" >&2
  cargo install cargo-deb --version "$cargo_deb_version" --locked
fi

# The asset paths in Cargo.toml are relative to the repository root, whatever CARGO_TARGET_DIR is.
assets=target/deb-assets
rm -rf "$assets"
cargo run --locked --quiet --example gen_manpage -- "$assets" >/dev/null
cargo deb --locked
