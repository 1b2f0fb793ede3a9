#!/usr/bin/env bash
# run.sh - one command for each thing a newcomer wants on a fresh Debian machine.
#
#   ./run.sh demo [train options]
#                     install what is missing, build (Release), generate the default speech
#                     corpus into data/speech-default (skipped when a complete one is there),
#                     then train the frame-level phoneme classifier on the CPU for 2 epochs
#                     (`mytorch train speech-frames`) into a new folder runs/demo-<date>-<time>,
#                     ending with its dev and test frame accuracy and the majority-class
#                     baseline; options go to the train command (e.g. --epochs 10, --device cuda)
#   ./run.sh spirals [options]   build, then `mytorch train spirals` (the first demo: seconds)
#   ./run.sh test     install what is missing, then everything CI checks (.ci/run runs this):
#                     the layer check (scripts/check_layers.sh), Release build + test suite,
#                     a bounded fuzzing run of each libFuzzer target (when clang is here;
#                     docs/fuzzing.md), ASan/UBSan Debug build + test suite, examples,
#                     and an install check (find_package and pkg-config consumers)
#   ./run.sh build    install what is missing, build (Release) into build/
#   ./run.sh bench NAME [options]   build, then `mytorch bench NAME [options]`
#
# Run as root (or with sudo available) the first time so that missing Debian
# packages can be installed: cmake gcc g++ libc6-dev make pkg-config libopenblas-dev libopenblas-openmp-dev libcriterion-dev libzip-dev
# flite1-dev libespeak-ng-dev libfftw3-dev libsamplerate0-dev fortunes-min wordnet-base (the speech data generator).
# Environment: JOBS (parallel build jobs, default: number of cores),
#              BUILD_DIR (default build), ASAN_BUILD_DIR (default build-asan),
#              DEMO_DATA (the demo's corpus, default data/speech-default),
#              FUZZ_SECONDS (each fuzz target's run in ./run.sh test, default 20).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
BUILD_DIR="${BUILD_DIR:-build}"
ASAN_BUILD_DIR="${ASAN_BUILD_DIR:-build-asan}"
DEMO_DATA="${DEMO_DATA:-data/speech-default}"
DEMO_EPOCHS=2   # a few minutes on 2 CPU cores, about 90% dev accuracy (docs/speech-frames.md, "Results")
PACKAGES=(cmake gcc g++ libc6-dev make pkg-config libopenblas-dev libopenblas-openmp-dev libcriterion-dev libzip-dev
          flite1-dev libespeak-ng-dev libfftw3-dev libsamplerate0-dev fortunes-min wordnet-base)

say() { printf '\n==> %s\n' "$*"; }

install_deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            echo "run.sh: missing packages (${missing[*]}); run as root or install them by hand" >&2
            return 1
        fi
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_build() {   # dir, extra cmake args...
    local dir="$1"; shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

run_suite() {         # dir
    # ctest -V shows Criterion's own report, including its "Synthesis:" line.
    # Criterion counts a test that leaks as passed (LeakSanitizer reports after
    # the test's verdict), so the sanitizers' reports are searched for too.
    local log="$1/suite.log" rc=0
    ctest --test-dir "$1" --output-on-failure -V 2>&1 | tee "$log" || rc=$?
    if grep -qE 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$log"; then
        echo "run.sh: the sanitizers reported errors in $1 (see $log)" >&2
        rc=1
    fi
    return "$rc"
}

# Bounded fuzzing (docs/fuzzing.md): each libFuzzer program the build made
# (dir/fuzz/fuzz_<target>, clang's) runs for FUZZ_SECONDS from its kept seeds;
# new inputs go to dir/fuzz/work/<target>, never into tests/fuzz. A crash, a
# leak, a sanitizer report or a failed check fails the step, and the input
# that did it is left in dir/fuzz/crashes/<target>/.
run_fuzzers() {       # dir
    local dir="$1/fuzz" secs="${FUZZ_SECONDS:-20}" exe t log
    if ! compgen -G "$dir/fuzz_*" >/dev/null; then
        echo "fuzzing skipped: no clang that links -fsanitize=fuzzer (apt-get install clang libclang-rt-14-dev)"
        return 0
    fi
    for exe in "$dir"/fuzz_*; do
        [ -x "$exe" ] && [ -f "$exe" ] || continue
        t="${exe##*/fuzz_}"
        log="$dir/$t.log"
        local seeds=("tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t") dict=tests/fuzz/safetensors.dict
        if [ "$t" = npy ]; then seeds+=(tests/fixtures/npy); fi
        case "$t" in npy|npz) dict=tests/fuzz/npy.dict ;; esac
        mkdir -p "$dir/work/$t" "$dir/crashes/$t"
        if ! OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -dict="$dict" \
                -print_final_stats=1 -artifact_prefix="$dir/crashes/$t/" "$dir/work/$t" "${seeds[@]}" >"$log" 2>&1; then
            tail -n 60 "$log"
            echo "run.sh: fuzz_$t failed: the input is in $dir/crashes/$t/ (see $log); docs/fuzzing.md says how to make it a regression" >&2
            return 1
        fi
        echo "fuzz_$t: $(grep -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') inputs in $secs s, no crash"
    done
}

cmd_build() {
    install_deps
    say "building (Release) in $BUILD_DIR"
    configure_build "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
}

build_cli() {         # only the `mytorch` program: quicker than the whole tree
    install_deps
    say "building mytorch (Release) in $BUILD_DIR"
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" -j "$JOBS" --target mytorch_cli
}

# True when DIR holds a complete speech corpus of the default size made with
# the generator's default settings. The generator writes manifest.json last,
# once every other file is on disk, so a manifest means a complete corpus.
corpus_ready() {      # dir
    local m="$1/manifest.json"
    [ -f "$m" ] &&
        grep -q '"format": "mytorch-speech-corpus"' "$m" &&
        grep -q '"generator": {"command": "mytorch data speech", "size": "default", "seed": 0,' "$m" &&
        grep -q '"n_ceps": 15, "n_mels": 40,' "$m" &&
        grep -q '"deltas": false, "delta_deltas": false, "cmvn": false' "$m"
}

cmd_demo() {
    local start=$SECONDS
    build_cli
    local mytorch="./$BUILD_DIR/mytorch"

    if corpus_ready "$DEMO_DATA"; then
        say "using the speech corpus in $DEMO_DATA (its manifest.json: complete, size default, seed 0)"
    else
        say "generating the default speech corpus into $DEMO_DATA (about a minute on 2 cores)"
        # A folder with no manifest holds a generation that was stopped. The
        # demo's own folder is started again; another one is left to its owner.
        if [ -d "$DEMO_DATA" ] && [ ! -f "$DEMO_DATA/manifest.json" ]; then
            if [ "$DEMO_DATA" = data/speech-default ]; then rm -rf "$DEMO_DATA"; else
                echo "run.sh: $DEMO_DATA has no manifest.json (a generation that was stopped, or still running?): remove it or choose another DEMO_DATA" >&2
                return 1
            fi
        fi
        "$mytorch" data speech --size default --seed 0 --out "$DEMO_DATA"
    fi

    # A new run folder each time (a fresh run refuses a folder that holds a
    # checkpoint). Options given to the demo come last, so they win: --run,
    # --epochs, --device ... replace the demo's.
    local run prev=""
    run="runs/demo-$(date +%Y%m%d-%H%M%S)"
    for a in "$@"; do
        case "$a" in --run=*) run="${a#--run=}" ;; esac
        if [ "$prev" = "--run" ]; then run="$a"; fi
        prev="$a"
    done
    say "mytorch train speech-frames --data $DEMO_DATA --run $run --epochs $DEMO_EPOCHS --device cpu $*"
    "$mytorch" train speech-frames --data "$DEMO_DATA" --run "$run" --epochs "$DEMO_EPOCHS" --device cpu "$@"

    say "demo finished in $((SECONDS - start)) s; the run folder is $run"
    cat <<EOF
  $run/metrics.jsonl      one JSON object per epoch: losses, accuracies, samples/s
  $run/best.safetensors   the checkpoint with the best dev accuracy (last.safetensors: the latest state)
Next (docs/speech-frames.md):
  $mytorch eval speech-frames --checkpoint $run/best.safetensors --data $DEMO_DATA --split test-clean --per-phone
  $mytorch predict speech-frames --checkpoint $run/best.safetensors --data $DEMO_DATA --out $run/predictions.csv
  $mytorch train speech-frames --data $DEMO_DATA --run $run --resume --epochs 10   # train on to 10 epochs
EOF
}

cmd_spirals() {
    build_cli
    say "mytorch train spirals $*"
    "./$BUILD_DIR/mytorch" train spirals "$@"
}

cmd_bench() {
    cmd_build
    say "mytorch bench $*"
    "./$BUILD_DIR/mytorch" bench "$@"
}

cmd_test() {
    local start=$SECONDS
    install_deps

    say "layer check: no #include points upward (scripts/check_layers.sh)"
    scripts/check_layers.sh

    say "Release build + test suite ($BUILD_DIR)"
    configure_build "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMYTORCH_EXAMPLES=ON
    run_suite "$BUILD_DIR"

    say "examples (Release)"
    for ex in "$BUILD_DIR"/example_*; do
        [ -x "$ex" ] || continue
        echo "--- $ex"
        "$ex" >/dev/null
    done
    echo "examples: all ran"

    say "fuzzing: each target ${FUZZ_SECONDS:-20} s (docs/fuzzing.md)"
    run_fuzzers "$BUILD_DIR"

    say "ASan + UBSan Debug build + test suite ($ASAN_BUILD_DIR)"
    # the fuzz programs are built once, by the Release build above
    configure_build "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DMYTORCH_SANITIZE=ON -DMYTORCH_EXAMPLES=ON -DMYTORCH_FUZZ=OFF
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    run_suite "$ASAN_BUILD_DIR"
    for ex in "$ASAN_BUILD_DIR"/example_*; do
        [ -x "$ex" ] || continue
        echo "--- $ex (sanitized)"
        "$ex" >/dev/null
    done
    echo "examples (sanitized): all ran"
    echo "--- mytorch command line (sanitized)"
    "./$ASAN_BUILD_DIR/mytorch" train spirals --epochs 3 --quiet
    "./$ASAN_BUILD_DIR/mytorch" --help >/dev/null
    "./$ASAN_BUILD_DIR/mytorch" train --help >/dev/null
    "./$ASAN_BUILD_DIR/mytorch" bench --help >/dev/null
    local rc
    for bad in "frobnicate" "train moons" "train spirals --epochs x" "train spirals --nope" "bench nope"; do
        rc=0; "./$ASAN_BUILD_DIR/mytorch" $bad >/dev/null 2>&1 || rc=$?
        if [ "$rc" -ne 2 ]; then echo "mytorch $bad: exit status $rc, expected 2" >&2; return 1; fi
    done
    echo "command line: usage errors exit with status 2"
    unset ASAN_OPTIONS UBSAN_OPTIONS

    say "install check (find_package and pkg-config consumers)"
    INSTALL_TMP="$(mktemp -d)"
    trap 'rm -rf "$INSTALL_TMP"' EXIT
    local tmp="$INSTALL_TMP"
    cmake --install "$BUILD_DIR" --prefix "$tmp/prefix" >/dev/null
    local pcdir; pcdir="$(dirname "$(find "$tmp/prefix" -name mytorch.pc | head -n 1)")"
    PKG_CONFIG_PATH="$pcdir" cmake -S tests/install_consumer -B "$tmp/consumer" \
        -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
    cmake --build "$tmp/consumer" -j "$JOBS" >/dev/null
    "$tmp/consumer/consumer_cmake"
    LD_LIBRARY_PATH="$(dirname "$(find "$tmp/prefix" -name 'libmytorch.so' | head -n 1)")" \
        "$tmp/consumer/consumer_pkgconfig"
    "$tmp/prefix/bin/mytorch" --version

    say "all checks passed in $((SECONDS - start)) s"
}

usage() {   # the comment block at the top of this file
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

case "${1:-}" in
    demo)  shift; cmd_demo "$@" ;;
    spirals) shift; cmd_spirals "$@" ;;
    test)  shift; cmd_test "$@" ;;
    build) shift; cmd_build "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
