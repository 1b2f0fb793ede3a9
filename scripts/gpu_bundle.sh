#!/usr/bin/env bash
# gpu_bundle.sh BUILD_DIR OUT.tar.xz - packs a CUDA build's programs
# (mytorch, mytorch_tests) with the shared libraries they need that a bare
# GPU machine may lack (OpenBLAS, Criterion, libzip, FFTW, the speech
# engines...) into one compressed archive (about 30 MB), so that they run
# there without building: glibc, libstdc++ and the CUDA driver come from that
# machine, cudart is linked statically and cuBLAS is loaded at run time from
# its CUDA toolkit. scripts/gpu_check.sh runs it (docs/cuda.md, "Running on
# a real GPU"). The speech corpus tests need Debian's text and voice data and
# are not run there.
set -euo pipefail
build=${1:?usage: gpu_bundle.sh BUILD_DIR OUT.tar.xz}
archive=${2:?usage: gpu_bundle.sh BUILD_DIR OUT.tar.xz}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/lib"
for prog in mytorch mytorch_tests; do
    [ -x "$build/$prog" ] && cp "$build/$prog" "$out/"
done
# every resolved library but the C runtime, the loader and the GPU driver's
for prog in "$out"/mytorch*; do
    ldd "$prog" | awk '/=> \//{print $3}'
done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libstdc\+\+|libgcc_s)\.so' |
while read -r lib; do cp -L "$lib" "$out/lib/"; done
# the build's resource report, for tests/test_cuda_resources.c
[ -f "$build/cuda_resources/resources.tsv" ] && cp "$build/cuda_resources/resources.tsv" "$out/"
mkdir -p "$(dirname "$archive")"
XZ_OPT="-T2 -6" tar -C "$out" -cJf "$archive" .
du -h "$archive"
