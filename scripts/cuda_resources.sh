#!/usr/bin/env bash
# cuda_resources.sh - the compiler's resource report of the CUDA kernels
# (DESIGN.md: "The compiler's resource report (registers, spills, shared
# memory) for every kernel is kept in docs/ and checked: hot kernels do not
# spill").
#
# Compiles each kernels/cuda/*.cu with nvcc, once per architecture of
# MYTORCH_CUDA_ARCHS, device code only (-cubin), with `-Xptxas -v`, and reads
# what ptxas says about every kernel (and every device function it did not
# inline): registers per thread, static shared memory, stack frame, spill
# stores and spill loads.
#
#   scripts/cuda_resources.sh                  rewrite docs/kernels/resources.md
#   scripts/cuda_resources.sh --tsv FILE       write the table as tab-separated values
#                                              (what the build writes for tests/test_cuda_resources.c)
#   cmake --build build --target cuda_resources   the same as the first, with the build's nvcc and archs
#
# Options:
#   --archs LIST     architectures, separated by ';', ',' or spaces (default:
#                    $MYTORCH_CUDA_ARCHS, else "80;90"); CMake's suffixes -real/-virtual are dropped
#   --nvcc PATH      the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc)
#   --md FILE        write the Markdown report to FILE (default docs/kernels/resources.md,
#                    unless --tsv is given alone)
#   --tsv FILE       write tab-separated values to FILE
#   --jobs N         compile N files at once (default: number of cores)
#   --fail-on-spill  exit 3 when a kernel or device function spills (after writing)
#   --quiet          no progress on stderr
#   FILE.cu ...      the sources (default: kernels/cuda/*.cu)
#
# Needs bash, awk, nvcc (and the host compiler nvcc uses); c++filt (binutils)
# demangles the names when present. Exit status: 0, 1 (a compile failed),
# 2 (usage), 3 (--fail-on-spill and something spills).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCHS="${MYTORCH_CUDA_ARCHS:-80;90}"
NVCC=""
MD=""
TSV=""
JOBS="$(nproc 2>/dev/null || echo 2)"
FAIL_ON_SPILL=0
QUIET=0
SOURCES=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --archs) ARCHS="${2:?--archs needs a value}"; shift 2 ;;
        --nvcc) NVCC="${2:?--nvcc needs a value}"; shift 2 ;;
        --md) MD="${2:?--md needs a value}"; shift 2 ;;
        --tsv) TSV="${2:?--tsv needs a value}"; shift 2 ;;
        --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
        --fail-on-spill) FAIL_ON_SPILL=1; shift ;;
        --quiet) QUIET=1; shift ;;
        -h|--help) usage ;;
        -*) echo "cuda_resources.sh: unknown option $1" >&2; usage ;;
        *) SOURCES+=("$1"); shift ;;
    esac
done
if [ -z "$MD" ] && [ -z "$TSV" ]; then MD="$ROOT/docs/kernels/resources.md"; fi
case "$JOBS" in ''|*[!0-9]*|0) echo "cuda_resources.sh: --jobs needs a positive integer" >&2; exit 2 ;; esac
say() { if [ "$QUIET" -eq 0 ]; then echo "cuda_resources: $*" >&2; fi; }

if [ -z "$NVCC" ]; then
    if command -v nvcc >/dev/null 2>&1; then NVCC="$(command -v nvcc)"
    elif [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc
    else echo "cuda_resources.sh: nvcc not found (install the CUDA toolkit or pass --nvcc)" >&2; exit 1; fi
fi

if [ "${#SOURCES[@]}" -eq 0 ]; then
    shopt -s nullglob
    SOURCES=("$ROOT"/kernels/cuda/*.cu)
    shopt -u nullglob
fi

# "80;90-real, 90a" -> 80 90 90a
arch_list=()
for a in $(printf '%s' "$ARCHS" | tr ';,' '  '); do
    a="${a%-real}"; a="${a%-virtual}"; a="${a#sm_}"; a="${a#compute_}"
    case "$a" in
        [0-9]*) arch_list+=("$a") ;;
        *) echo "cuda_resources.sh: architecture '$a' is not a number like 80 or 90a" >&2; exit 2 ;;
    esac
done
[ "${#arch_list[@]}" -gt 0 ] || { echo "cuda_resources.sh: no architectures" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/cuda_resources.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The flags of the Release build (cmake/cuda.cmake), device code only.
NVCC_FLAGS=(-std=c++17 -O3 -DNDEBUG -I"$ROOT/include" -I"$ROOT" -Xptxas -v)

# One ptxas log per (arch, file): $work/<arch>/<index>.log, with the file's name in <index>.name
compile_one() {   # arch index source
    local arch="$1" idx="$2" src="$3" dir="$work/$1"
    "$NVCC" "${NVCC_FLAGS[@]}" -arch="sm_$arch" -cubin -o "$dir/$idx.cubin" "$src" \
        >"$dir/$idx.out" 2>"$dir/$idx.log" || touch "$dir/$idx.failed"
}

say "$NVCC: ${#SOURCES[@]} file(s) x $(printf 'sm_%s ' "${arch_list[@]}")"
failed=0
pids=()
for arch in "${arch_list[@]}"; do
    mkdir -p "$work/$arch"
    i=0
    for src in "${SOURCES[@]}"; do
        rel="$src"
        case "$src" in "$ROOT"/*) rel="${src#"$ROOT"/}" ;; esac
        printf '%s\n' "$rel" >"$work/$arch/$i.name"
        compile_one "$arch" "$i" "$src" &
        pids+=($!)
        if [ "${#pids[@]}" -ge "$JOBS" ]; then
            wait "${pids[0]}" || failed=1
            pids=("${pids[@]:1}")
        fi
        i=$((i + 1))
    done
done
for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" || failed=1; done
for arch in "${arch_list[@]}"; do
    for f in "$work/$arch"/*.failed; do
        [ -e "$f" ] || continue
        idx="$(basename "$f" .failed)"
        echo "cuda_resources.sh: nvcc failed on $(cat "$work/$arch/$idx.name") for sm_$arch:" >&2
        grep -v '^ptxas info\|^    [0-9]* bytes stack frame' "$work/$arch/$idx.log" >&2 || true
        failed=1
    done
done
[ "$failed" -eq 0 ] || exit 1

# ptxas -v, per function:
#   ptxas info    : Compiling entry function '_Z7k_spillPKfPfi' for 'sm_90'
#   ptxas info    : Function properties for _Z7k_spillPKfPfi
#       2760 bytes stack frame, 2980 bytes spill stores, 7224 bytes spill loads
#   ptxas info    : Used 32 registers, used 1 barriers, 2760 bytes cumulative stack size, 1024 bytes smem
# A device function that was not inlined has only the "Function properties" lines.
# Rows: arch file kind mangled registers smem stack spill_st spill_ld (kind: kernel | function)
raw="$work/raw.tsv"
: >"$raw"
for arch in "${arch_list[@]}"; do
    i=0
    for _ in "${SOURCES[@]}"; do
        awk -v arch="$arch" -v file="$(cat "$work/$arch/$i.name")" '
            function num(s, unit,   r) { r = s; sub(" " unit ".*", "", r); sub(".* ", "", r); return r + 0 }
            /Compiling entry function/ {
                name = $0; sub(/^.*Compiling entry function \047/, "", name); sub(/\047.*$/, "", name)
                if (!(name in kind)) order[n++] = name
                kind[name] = "kernel"; entry = name; next
            }
            /Function properties for / {
                cur = $0; sub(/^.*Function properties for /, "", cur); sub(/[ \t]+$/, "", cur)
                if (!(cur in kind)) { order[n++] = cur; kind[cur] = "function"; regs[cur] = "-"; smem[cur] = "-" }
                next
            }
            /bytes stack frame/ {
                stack[cur] = num($0, "bytes stack frame"); st[cur] = num($0, "bytes spill stores"); ld[cur] = num($0, "bytes spill loads")
                next
            }
            /Used [0-9]+ registers/ {
                line = $0; sub(/^.*Used /, "", line)
                regs[entry] = line + 0
                smem[entry] = (line ~ /bytes smem/) ? num(line, "bytes smem") : 0
                next
            }
            END {
                for (k = 0; k < n; k++) {
                    f = order[k]
                    printf "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", arch, file, kind[f], f,
                           (f in regs) ? regs[f] : "-", (f in smem) ? smem[f] : "-", stack[f], st[f], ld[f]
                }
            }' "$work/$arch/$i.log" >>"$raw"
        i=$((i + 1))
    done
done

# Readable names: c++filt, without parameters and without nvcc's
# _INTERNAL_<hash>_<file> namespace of static device functions.
cut -f4 "$raw" >"$work/mangled"
if command -v c++filt >/dev/null 2>&1; then c++filt <"$work/mangled" >"$work/demangled"
else cp "$work/mangled" "$work/demangled"; fi
sed -e 's/^_INTERNAL_[0-9a-f_A-Za-z]*:://' -e 's/(.*$//' "$work/demangled" >"$work/short"
# sorted by architecture, file, kernels before functions, name: a stable order for diffs
paste "$raw" "$work/short" "$work/demangled" |
    LC_ALL=C sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3r -k10,10 -k4,4 >"$work/all.tsv"

header="# arch	file	kind	kernel	registers	shared_static	stack_frame	spill_stores	spill_loads	mangled	signature"
# columns of all.tsv: 1 arch 2 file 3 kind 4 mangled 5 regs 6 smem 7 stack 8 st 9 ld 10 short 11 demangled
table() {
    printf '%s\n' "$header"
    awk -F'\t' 'BEGIN { OFS = "\t" } { print $1, $2, $3, $10, $5, $6, $7, $8, $9, $4, $11 }' "$work/all.tsv"
}

if [ -n "$TSV" ]; then
    mkdir -p "$(dirname "$TSV")"
    table >"$TSV.tmp"
    mv "$TSV.tmp" "$TSV"
    say "wrote $TSV"
fi

if [ -n "$MD" ]; then
    nvcc_version="$("$NVCC" --version | sed -n 's/^Cuda compilation tools, //p' | head -n1)"
    mkdir -p "$(dirname "$MD")"
    {
        cat <<EOF
# CUDA kernels: the compiler's resource report

Generated by \`scripts/cuda_resources.sh\` (or \`cmake --build build --target
cuda_resources\`); do not edit by hand. Rerun it whenever a kernel in
\`kernels/cuda/\` changes.

- Compiler: nvcc ${nvcc_version:-unknown} (\`-std=c++17 -O3 -DNDEBUG -cubin -Xptxas -v\`, one run per architecture).
- Architectures (\`MYTORCH_CUDA_ARCHS\`): $(printf 'sm_%s ' "${arch_list[@]}" | sed 's/ $//').
- Columns: registers per thread; static \`__shared__\` bytes per block (dynamic
  shared memory is sized at launch and not counted); stack frame bytes per
  thread; bytes of spill stores and loads per thread. A *function* row is a
  \`__device__\` function ptxas did not inline (registers are its caller's).
- The build writes the same table for its own nvcc and architectures to
  \`<build>/cuda_resources/resources.tsv\`, and \`tests/test_cuda_resources.c\`
  fails when anything spills.

EOF
        if [ ! -s "$work/all.tsv" ]; then
            echo "No kernels yet: \`kernels/cuda/\` has no \`.cu\` file with a \`__global__\` function."
        fi
        for arch in "${arch_list[@]}"; do
            awk -F'\t' -v arch="$arch" '
                $1 != arch { next }
                {
                    rows[n++] = sprintf("| `%s`%s | %s | %s | %s | %s | %s | %s |", $10, ($3 == "function" ? " (function)" : ""),
                                        $5, $6, $7, $8, $9, $2)
                    if ($3 == "kernel") { kernels++; if ($5 + 0 > maxr) { maxr = $5 + 0; maxk = $10 } }
                    if ($8 + $9 > 0) spills = spills (spills == "" ? "" : ", ") "`" $10 "`"
                    if ($6 + 0 > maxs) { maxs = $6 + 0; maxsk = $10 }
                }
                END {
                    if (n == 0) exit
                    printf "## sm_%s\n\n", arch
                    printf "%d kernels; most registers: %d (`%s`); most static shared memory: %d bytes%s; spills: %s.\n\n",
                           kernels, maxr, maxk, maxs, (maxs > 0 ? " (`" maxsk "`)" : ""), (spills == "" ? "none" : spills)
                    print "| kernel | registers | shared (static) | stack frame | spill stores | spill loads | file |"
                    print "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
                    for (k = 0; k < n; k++) print rows[k]
                    print ""
                }' "$work/all.tsv"
        done
    } >"$MD.tmp"
    mv "$MD.tmp" "$MD"
    say "wrote $MD"
fi

spilling="$(awk -F'\t' '$8 + $9 > 0 { printf "  sm_%s %s: %s (%s bytes stores, %s bytes loads)\n", $1, $2, $10, $8, $9 }' "$work/all.tsv")"
if [ -n "$spilling" ]; then
    echo "cuda_resources: spills:" >&2
    printf '%s\n' "$spilling" >&2
    [ "$FAIL_ON_SPILL" -eq 0 ] || exit 3
fi
exit 0
