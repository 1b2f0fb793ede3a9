/*
 * test_backend_tables.c - the backend tables are what they claim to be:
 * every kernel entry of cuda-emu is an emulated CUDA kernel, not the CPU
 * kernel standing in for it (the harness would then compare the CPU with
 * itself and prove nothing); GEMM alone goes to the CPU BLAS, as cuBLAS's
 * stand-in. The same holds for the real cuda table when it is built.
 */
#include <criterion/criterion.h>

#include <stddef.h>
#include <string.h>

#include "host/backend.h"
#include "host/cuda_runtime.h"

/* Every function-pointer member of mt_backend, in declaration order; the
   static assertion below fails to compile when an entry is added to the
   struct but not here. */
#define BACKEND_ENTRIES(X)                                                          \
    X(alloc) X(free) X(to_host) X(from_host) X(synchronize)                         \
    X(copy) X(fill) X(arange) X(unary) X(unary_backward) X(binary) X(where)         \
    X(reduce) X(softmax) X(softmax_backward) X(gemm) X(gemm_batched) X(random)      \
    X(batch_norm_forward) X(batch_norm_backward) X(nll_forward) X(nll_backward)     \
    X(sgd_step) X(adam_step)                                                        \
    X(cumsum) X(sort_rows) X(take_along) X(put_along)

#define COUNT_ONE(field) +1
enum { N_ENTRIES = 0 BACKEND_ENTRIES(COUNT_ONE) };
_Static_assert(offsetof(mt_backend, alloc) + N_ENTRIES * sizeof(void (*)(void)) == sizeof(mt_backend),
               "tests/test_backend_tables.c: BACKEND_ENTRIES does not list every member of mt_backend");

/* The memory entries come first; gemm and gemm_batched may be the CPU's on cuda-emu only. */
static bool is_kernel(const char *name)
{
    static const char *memory[] = { "alloc", "free", "to_host", "from_host", "synchronize" };
    for (size_t i = 0; i < sizeof memory / sizeof memory[0]; i++)
        if (strcmp(memory[i], name) == 0) return false;
    return true;
}

/* Compares the kernel entries of table be with the CPU table; returns the
   number of entries checked. */
static int check_no_cpu_stand_ins(const mt_backend *be, bool gemm_may_be_cpu)
{
    int checked = 0;
#define CHECK_ONE(field)                                                                             \
    do {                                                                                             \
        const char *name = #field;                                                                   \
        cr_assert(be->field != NULL, "%s: entry %s is NULL", be->name, name);                        \
        if (!is_kernel(name)) break;                                                                 \
        bool is_gemm = strcmp(name, "gemm") == 0 || strcmp(name, "gemm_batched") == 0;               \
        if (is_gemm && gemm_may_be_cpu) break;                                                       \
        cr_assert(be->field != mt_cpu_backend.field,                                                 \
                  "%s: entry %s is the CPU kernel, not a CUDA kernel", be->name, name);              \
        checked++;                                                                                   \
    } while (0);
    BACKEND_ENTRIES(CHECK_ONE)
#undef CHECK_ONE
    return checked;
}

Test(backend_tables, cpu_table_is_complete)
{
#define CHECK_CPU(field) cr_assert(mt_cpu_backend.field != NULL, "cpu: entry %s is NULL", #field);
    BACKEND_ENTRIES(CHECK_CPU)
#undef CHECK_CPU
}

Test(backend_tables, cuda_emu_runs_cuda_kernels_not_cpu_stand_ins)
{
    const mt_backend *emu = mt_backend_for(MT_DEVICE_CUDA_EMU);
    if (!emu) cr_skip_test("cuda-emu is not built in (no C++ compiler)");
    int checked = check_no_cpu_stand_ins(emu, true);
    cr_assert(checked == N_ENTRIES - 5 - 2, "checked %d kernel entries", checked);
}

Test(backend_tables, cuda_runs_cuda_kernels_and_cublas)
{
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
    int checked = check_no_cpu_stand_ins(&mt_cuda_backend, false);
    cr_assert(checked == N_ENTRIES - 5, "checked %d kernel entries", checked);
#else
    cr_skip_test("built without the CUDA toolkit");
#endif
}
