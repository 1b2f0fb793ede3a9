/*
 * op_registry.c - the list of every op definition. MT_OP_DEF
 * (engine/internal.h) puts a pointer to each definition into the linker
 * section "mt_op_defs"; the linker gathers them from every object file and
 * marks the section's ends with __start_mt_op_defs and __stop_mt_op_defs
 * (GNU ld, gold, lld, for a section named like a C identifier). The
 * op-coverage test (tests/test_op_coverage.c) compares this list with the
 * op definitions the harness cases exercised.
 */
#include "engine/internal.h"

/* Weak: without any op definition linked in, both are NULL and the list is empty. */
extern const mt_op_def *const __start_mt_op_defs[] __attribute__((weak));
extern const mt_op_def *const __stop_mt_op_defs[] __attribute__((weak));

const mt_op_def *const *mt_op_defs(size_t *count)
{
    if (count) *count = __start_mt_op_defs ? (size_t)(__stop_mt_op_defs - __start_mt_op_defs) : 0;
    return __start_mt_op_defs;
}
