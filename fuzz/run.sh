#!/usr/bin/env bash
# Runs built fuzz targets over their seeds (fuzz/seeds.py), one after the
# other, and ends on one line per target and a verdict.
#
#   fuzz/run.sh fuzz SECONDS [TARGET...]   fuzz each target for SECONDS;
#                                          what it finds new joins
#                                          fuzz/corpus/<target>/
#   fuzz/run.sh smoke SECONDS [TARGET...]  every seed, then SECONDS of
#                                          fuzzing (0: the seeds only, the
#                                          same runs every time); the
#                                          corpus stays as is
#
# No TARGET means all of them. A crash, a hang (FUZZ_TIMEOUT seconds on
# one input, default 10) or memory past FUZZ_RSS_MB (default 2048) fails
# the run: libFuzzer saves the input under fuzz/artifacts/<target>/ and
# the script exits 1 after the other targets ran. The binaries are taken
# from FUZZ_BIN (what `make fuzz-build` builds).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:?usage: fuzz/run.sh fuzz|smoke SECONDS [TARGET...]}
seconds=${2:?usage: fuzz/run.sh fuzz|smoke SECONDS [TARGET...]}
shift 2
bin=${FUZZ_BIN:-target/fuzz/x86_64-unknown-linux-gnu/release}
timeout=${FUZZ_TIMEOUT:-10}
rss=${FUZZ_RSS_MB:-2048}
if [ "$#" -eq 0 ]; then
    # Every target the fuzz crate declares.
    set -- $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^instar-fuzz$')
fi

# The longest input libFuzzer makes: whole images for the open and check
# targets (a vhdx made by qemu-img is a few MiB), less for the rest.
max_len() {
    case "$1" in
        # A vhdx with data: its payload starts 8 MiB in.
        read_vhdx) echo $((16 << 20)) ;;
        info_vhdx | check_vhdx | map | read_vpc | write_formats) echo $((10 << 20)) ;;
        info_* | check_* | compare | measure | convert | read_*) echo $((4 << 20)) ;;
        vhdx_log | vpc_bat | vpc_dynamic_header | luks_header) echo $((4 << 20)) ;;
        qcow2_snapshots | qcow2_bitmaps | vhdx_metadata) echo $((1 << 20)) ;;
        vhdx_region_table | qcow2_header) echo $((64 << 10)) ;;
        vmdk_descriptor) echo $((256 << 10)) ;;
        # A 64 KiB cluster and more: several blocks, window slides.
        deflate) echo $((256 << 10)) ;;
        vpc_footer) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

failed=()
summary=()
for target in "$@"; do
    exe="$bin/$target"
    if [ ! -x "$exe" ]; then
        echo "fuzz: $exe missing (make fuzz-build)" >&2
        exit 2
    fi
    seeds="fuzz/corpus/$target"
    mkdir -p "$seeds" "fuzz/artifacts/$target"
    if [ "$mode" = smoke ]; then
        # New inputs go to a scratch directory: the seeds stay as made.
        scratch=$(mktemp -d)
        dirs=("$scratch" "$seeds")
    else
        scratch=""
        dirs=("$seeds")
    fi
    log=$(mktemp)
    echo "fuzz: $target ($mode, ${seconds}s)"
    # libFuzzer reads -max_total_time=0 as no limit: 0 seconds is -runs=0,
    # every seed once and no fuzzing.
    if [ "$seconds" -eq 0 ]; then
        limit=(-runs=0)
    else
        limit=(-max_total_time="$seconds")
    fi
    status=0
    "$exe" "${limit[@]}" -timeout="$timeout" -rss_limit_mb="$rss" \
        -max_len="$(max_len "$target")" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" "${dirs[@]}" >"$log" 2>&1 || status=$?
    [ -n "$scratch" ] && rm -rf "$scratch"
    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: K/..."
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    line=$(printf '%-20s %10s runs %7s/s  cov %5s  ft %6s  corpus %5s' \
        "$target" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    if [ "$status" -ne 0 ]; then
        # What libFuzzer said about the failure, and where it kept the input.
        grep -E -A 30 '^==[0-9]+==|panicked at|ERROR: libFuzzer' "$log" | head -n 40 >&2 || true
        grep -E '^artifact_prefix|Test unit written to' "$log" >&2 || true
        line="$line  FAILED (exit $status)"
        failed+=("$target")
    fi
    summary+=("$line")
    rm -f "$log"
done

echo "---- fuzz $mode: ${#summary[@]} targets ----"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: no crash, hang or memory blow-up"
