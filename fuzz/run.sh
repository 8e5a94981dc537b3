#!/usr/bin/env bash
# Runs each of berth's fuzz targets for a bounded time (default 30 s each), starting
# from the seeds in fuzz/seeds/<target>; fails on the first crash, leaving the input
# in fuzz/artifacts/<target>/. Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# cargo fuzz needs libFuzzer's unstable rustc flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain take them. No sanitizer: berth forbids unsafe code, and without one each
# target runs several times faster.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(ecs_json elbv2_form sigv4)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
for target in "${targets[@]}"; do
    corpus="$(mktemp -d)"
    log="$(mktemp)"
    echo "fuzz: $target for ${seconds}s"
    set +e
    cargo fuzz run -s none -O "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" >"$log" 2>&1
    status=$?
    set -e
    grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
    fi
    rm -rf "$corpus" "$log"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target found a failing input (see fuzz/artifacts/$target/)" >&2
        exit 1
    fi
done
echo "fuzz: every target ran without a failure"
