#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, docs/FUZZING.md) with clang-14 and
# runs each for a bounded time over the checked-in seed corpus. Fails on a
# crash (the input is kept as BUILD_DIR/fuzz-artifacts/crash-*) and when the
# checked-in seeds or dictionary no longer match what make_corpus writes
# from tests/golden_frames.hpp.
#   BUILD_DIR      build directory (default: build-fuzz)
#   FUZZ_SECONDS   time per target (default: 60)
#   FUZZ_TARGETS   which targets (default: "decoder handler")
#   FUZZ_ARGS      extra libFuzzer arguments (e.g. "-seed=1")
# New inputs the runs find go to BUILD_DIR/fuzz-corpus/TARGET, which later
# runs start from as well; the checked-in corpus is never written.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

BUILD_DIR="${BUILD_DIR:-build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
read -r -a targets <<<"${FUZZ_TARGETS:-decoder handler}"
read -r -a fuzz_args <<<"${FUZZ_ARGS:-}"

bash scripts/setup.sh
bash scripts/apt-install.sh clang-14 libclang-rt-14-dev

# BOTBUS_WERROR off: -Werror is the GCC build's job (scripts/test.sh), and
# clang warns about a few things GCC does not.
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 \
  -DBOTBUS_FUZZ=ON -DBOTBUS_BUILD_TESTS=OFF -DBOTBUS_WERROR=OFF
cmake --build "$BUILD_DIR" -j2 --target make_corpus "${targets[@]/#/fuzz_}"

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
"$BUILD_DIR/fuzz/make_corpus" "$fresh"
# Only the files make_corpus writes are compared: inputs added by hand (a
# fixed crash, say) may sit beside them in fuzz/corpus/.
stale=0
while IFS= read -r -d '' file; do
  cmp -s "$fresh/$file" "fuzz/$file" || { echo "fuzz: fuzz/$file is stale or missing" >&2; stale=1; }
done < <(cd "$fresh" && find . -type f -printf '%P\0')
if ((stale)); then
  echo "fuzz: regenerate the seeds and dictionary: $BUILD_DIR/fuzz/make_corpus fuzz" >&2
  exit 1
fi

artifacts="$BUILD_DIR/fuzz-artifacts"
mkdir -p "$artifacts"
for target in "${targets[@]}"; do
  work="$BUILD_DIR/fuzz-corpus/$target"
  mkdir -p "$work"
  echo "fuzz: fuzz_$target for ${seconds} s"
  # -timeout: one input running 25 s is a hang and counts as a crash.
  if ! "$BUILD_DIR/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
      -dict=fuzz/botbus.dict -artifact_prefix="$artifacts/" -print_final_stats=1 \
      "${fuzz_args[@]}" "$work" "fuzz/corpus/$target" >"$artifacts/$target.log" 2>&1; then
    tail -n 60 "$artifacts/$target.log" >&2
    echo "fuzz: fuzz_$target found a crash; the input is in $artifacts/ (replay: $BUILD_DIR/fuzz/fuzz_$target FILE)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$artifacts/$target.log" || true
done
echo "fuzz: ${targets[*]}: no crashes"
