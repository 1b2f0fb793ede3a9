#!/usr/bin/env bash
# check_layers.sh - fails when an #include "..." points upward in the layer map
# of docs/architecture.md. Dependencies point down only:
#
#   app -> bench -> models -> include/mytorch (the public API) -> engine -> host -> kernels
#
# Each folder may include (by path from the repository root, or from include/
# for "mytorch/..."):
#
#   kernels/          kernels/, mytorch/types.h (the shared vocabulary)
#   host/             host/, kernels/, mytorch/{types,runtime,cuda}.h (its own public API)
#   engine/           engine/, host/, kernels/, mytorch/
#   include/mytorch/  mytorch/
#   models/           models/, mytorch/
#   bench/            bench/, models/, mytorch/
#   app/              app/, bench/, models/, mytorch/
#   examples/         models/, mytorch/ (a task's model, as examples/scanning_mlp.c uses)
#   tests/            anything
#
# Also: every op definition in engine/ is written with MT_OP_DEF (so that it
# is registered for the op-coverage test, tests/test_op_coverage.c), never as
# a plain `static const mt_op_def name = { ... }`.
#
# Usage: scripts/check_layers.sh [repository root]. Prints each violation as
# file:line: the include and the rule; exits 1 if there is any.
set -euo pipefail
cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}"

allowed_for() {   # folder -> space-separated allowed prefixes
    case "$1" in
        kernels) echo "kernels/ mytorch/types.h" ;;
        host) echo "host/ kernels/ mytorch/types.h mytorch/runtime.h mytorch/cuda.h mytorch_cuda_wrappers.h" ;;
        engine) echo "engine/ host/ kernels/ mytorch/" ;;
        include) echo "mytorch/" ;;
        models) echo "models/ mytorch/" ;;
        bench) echo "bench/ models/ mytorch/" ;;
        app) echo "app/ bench/ models/ mytorch/" ;;
        examples) echo "models/ mytorch/" ;;
        *) echo "" ;;
    esac
}

bad=0
while IFS= read -r -d '' file; do
    top="${file%%/*}"
    allowed="$(allowed_for "$top")"
    [ -n "$allowed" ] || continue
    while IFS=: read -r line inc; do
        ok=0
        for prefix in $allowed; do
            case "$inc" in "$prefix"*) ok=1; break ;; esac
        done
        if [ "$ok" -eq 0 ]; then
            echo "$file:$line: #include \"$inc\" points outside what $top/ may use ($allowed)"
            bad=1
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
             sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2/')
done < <(find kernels host engine include models bench app examples \
              -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 2>/dev/null)

if [ "$bad" -ne 0 ]; then
    echo "check_layers: includes that point upward (see docs/architecture.md, \"Layers\")" >&2
    exit 1
fi
echo "check_layers: every #include points down the layer map"

# An mt_op_def variable defined with an initializer outside MT_OP_DEF.
unregistered="$(grep -rnE --include='*.c' --include='*.h' --exclude=internal.h 'mt_op_def(_n)?[[:space:]]+[A-Za-z_][A-Za-z_0-9]*[[:space:]]*=' engine || true)"   # internal.h: the macro itself
if [ -n "$unregistered" ]; then
    echo "$unregistered" | sed 's/$/: an op definition not written with MT_OP_DEF (engine\/internal.h)/'
    echo "check_layers: op definitions that the op-coverage test cannot see (see docs/architecture.md)" >&2
    exit 1
fi
echo "check_layers: every op definition is registered with MT_OP_DEF"
