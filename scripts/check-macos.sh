#!/usr/bin/env bash
# Type-checks (and lints) the exporter for macOS from Linux, as far as that is possible without
# a Mac:
#
#   scripts/check-macos.sh [TARGET...]    (default: aarch64-apple-darwin x86_64-apple-darwin)
#
# `cargo check --target aarch64-apple-darwin` alone stops in ring's build script, which compiles
# C and needs Apple's SDK headers. `check` never links, so here that C build gets a stub compiler
# that writes empty object files: every Rust crate, ours included, is then checked for the
# target and clippy runs on our code with -D warnings. What this cannot show: that the binary
# links, that ring's C compiles with Apple's toolchain, or that it runs. Only a Mac shows that.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-apple-darwin x86_64-apple-darwin)
work=${CARGO_TARGET_DIR_MACOS:-target/macos-check}
stub=$(mktemp)
trap 'rm -f "$stub"' EXIT
cat > "$stub" <<'STUB'
#!/bin/sh
# Writes an empty object file wherever a C compiler was asked to write one.
out=
while [ $# -gt 0 ]; do
    case "$1" in
        -o) out=$2; shift ;;
        -o*) out=${1#-o} ;;
        -Fo*) out=${1#-Fo} ;;
    esac
    shift
done
[ -n "$out" ] && : > "$out"
exit 0
STUB
chmod +x "$stub"

for target in "${targets[@]}"; do
    rustup target add "$target" >/dev/null
    var=$(echo "$target" | tr '-' '_')
    echo "== $target"
    env "CC_$var=$stub" "AR_$var=ar" CARGO_TARGET_DIR="$work" \
        cargo clippy --locked --target "$target" --workspace --all-targets -- -D warnings
done
