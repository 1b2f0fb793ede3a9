#!/usr/bin/env bash
# gpu_check.sh BUNDLE.tar.xz [LOG_DIR] - on a machine with an NVIDIA GPU,
# runs a bundle made by gpu_bundle.sh: the test suite but the speech corpus
# tests (they need Debian's voices and texts) (the op harness then also compares every op on cuda with the CPU),
# the spirals demo on cpu and cuda, and the benchmarks on both devices.
# Logs go to LOG_DIR (default .).
set -uo pipefail
archive=${1:?usage: gpu_check.sh BUNDLE.tar.xz [LOG_DIR]}
logs=${2:-.}
bundle=$(mktemp -d)
tar -C "$bundle" -xJf "$archive" || exit 1
mkdir -p "$logs"
here=$(cd "$(dirname "$0")/.." && pwd)
# cuBLAS from the machine's CUDA toolkit or a Python wheel, whichever is there
cublas=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublas.so.1[0-9]*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$bundle/lib${cublas:+:$(dirname "$cublas")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MT_FIXTURES_DIR="$here/tests/fixtures"
export MT_CUDA_RESOURCES_TSV="$bundle/resources.tsv" MT_CUDA_RESOURCES_DOCS="$here/docs/kernels/resources.md"
echo "== machine"; nvidia-smi -L; nproc; echo "cuBLAS: ${cublas:-not found}"
echo "== devices"; "$bundle/mytorch" bench gemm --device cuda --iters 1 --warmup 0 2>&1 | head -3
echo "== test suite"
( time "$bundle/mytorch_tests" --jobs "$(nproc)" --filter='!(speech_@(corpus|synth|sentences|tiny_corpus))/*' ) > "$logs/tests.log" 2>&1
echo "suite exit $?"; grep -E "Synthesis|\[FAIL\]|Assertion|CRASH" "$logs/tests.log" | head -40
echo "== spirals"
for dev in cpu cuda; do
    "$bundle/mytorch" train spirals --device $dev --quiet 2>&1 | tee -a "$logs/spirals.log"
done
echo "== bench"
for w in gemm mlp_speech; do
    for dev in cpu cuda; do
        "$bundle/mytorch" bench $w --device $dev --out "$logs/bench-$w-$dev.json" > /dev/null 2>> "$logs/bench.err" ||
            echo "bench $w $dev failed: $(tail -2 "$logs/bench.err")"
        cat "$logs/bench-$w-$dev.json" 2>/dev/null
    done
done
