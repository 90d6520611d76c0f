#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input, each target for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20 s, every target)
#
# Uses cargo-fuzz (libFuzzer) on the stable toolchain: with `--sanitizer none` it needs no
# nightly feature (instrumentation is SanitizerCoverage through stable -C flags). Panics,
# overflows and debug assertions are caught (targets build with debug assertions on); memory
# errors need no sanitizer since the parsers are safe Rust.
#
# Corpus: fuzz/corpus/TARGET/ is the committed seed corpus (read only here); new inputs go to
# fuzz/target/corpus/TARGET/, kept between runs on the same machine. A crash leaves its input in
# fuzz/artifacts/TARGET/ and makes this script exit 1; reproduce it with
#   (cd fuzz && cargo fuzz run --sanitizer none -O TARGET artifacts/TARGET/crash-…)
# then fix the parser, add the input to fuzz/corpus/TARGET/ and a regression unit test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-20}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
flags=(--sanitizer none -O --debug-assertions)
cargo fuzz build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  mkdir -p "$work" "corpus/$target"
  echo "fuzz: $target for ${seconds}s" >&2
  # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb bounds memory.
  if ! cargo fuzz run "${flags[@]}" "$target" "$work" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      2> "target/fuzz-$target.log"; then
    failed+=("$target")
    tail -n 40 "target/fuzz-$target.log" >&2
  fi
  # One summary line per target: executions, executions per second, corpus size.
  awk -v t="$target" '/stat::number_of_executed_units/ {runs=$2}
    /stat::average_exec_per_sec/ {eps=$2}
    /^#[0-9]+.*DONE/ {corp=$0}
    END {printf "fuzz: %-12s %10s runs %8s exec/s  %s\n", t, runs, eps, corp}' \
    "target/fuzz-$target.log" >&2
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash" >&2
