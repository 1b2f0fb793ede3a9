/*
 * test_backend_tables.c - the backend tables are what they claim to be.
 *
 *   - The entries of mt_backend come from one list (host/backend.h's memory
 *     entries and kernels/kernel_entries.h); the checks here walk that same
 *     list (mt_backend_entries), so a new entry is checked without touching
 *     this file.
 *   - The CPU table has every entry (it is the reference backend).
 *   - Every kernel entry of cuda-emu is an emulated CUDA kernel, not the CPU
 *     kernel standing in for it (the harness would then compare the CPU with
 *     itself and prove nothing); GEMM alone goes to the CPU BLAS, as cuBLAS's
 *     stand-in. The same holds for the real cuda table when it is built.
 */
#include <criterion/criterion.h>

#include <stddef.h>
#include <string.h>

#include "harness.h"
#include "host/backend.h"
#include "host/cuda_runtime.h"

/* The kernel entries the list names, counted from the list itself. */
enum {
#define MT_KERNEL_ENTRY(name, family, params) KERNEL_##name,
#include "kernels/kernel_entries.h"
    N_KERNEL_ENTRIES
};

static bool is_gemm(const mt_backend_entry_info *e) { return strcmp(e->family, "gemm") == 0; }

/* Compares the kernel entries of table be with the CPU table; returns the
   number of entries checked. */
static int check_no_cpu_stand_ins(const mt_backend *be, bool gemm_may_be_cpu)
{
    int n, checked = 0;
    const mt_backend_entry_info *entries = mt_backend_entries(&n);
    for (int i = 0; i < n; i++) {
        const mt_backend_entry_info *e = &entries[i];
        cr_assert(mt_backend_has(be, e), "%s: entry %s (%s) is NULL", be->name, e->name, e->family);
        if (!e->is_kernel || (is_gemm(e) && gemm_may_be_cpu)) continue;
        cr_assert(!mt_backend_same_entry(be, &mt_cpu_backend, e), "%s: entry %s is the CPU kernel, not a CUDA kernel",
                  be->name, e->name);
        checked++;
    }
    return checked;
}

Test(backend_tables, the_entry_list_describes_the_struct)
{
    int n;
    const mt_backend_entry_info *entries = mt_backend_entries(&n);
    int kernels = 0, gemms = 0;
    size_t last = 0;
    for (int i = 0; i < n; i++) {
        cr_assert(entries[i].offset > last || i == 0, "entries are in declaration order");
        cr_assert(entries[i].offset >= offsetof(mt_backend, alloc) && entries[i].offset < sizeof(mt_backend));
        last = entries[i].offset;
        kernels += entries[i].is_kernel;
        gemms += entries[i].is_kernel && is_gemm(&entries[i]);
    }
    cr_assert_eq(kernels, N_KERNEL_ENTRIES);
    cr_assert_eq(n, N_KERNEL_ENTRIES + 5, "5 memory entries");
    cr_assert_eq(gemms, 2);
    cr_assert_eq(sizeof(mt_backend), sizeof(const char *) + (size_t)n * sizeof(void (*)(void)));
    cr_assert_str_eq(entries[0].name, "alloc");
    cr_assert_eq(entries[n - 1].offset + sizeof(void (*)(void)), sizeof(mt_backend));
}

Test(backend_tables, cpu_table_is_complete)
{
    int n;
    const mt_backend_entry_info *entries = mt_backend_entries(&n);
    for (int i = 0; i < n; i++)
        cr_assert(mt_backend_has(&mt_cpu_backend, &entries[i]), "cpu: entry %s is NULL", entries[i].name);
}

Test(backend_tables, cuda_emu_runs_cuda_kernels_not_cpu_stand_ins)
{
    const mt_backend *emu = mt_backend_for(MT_DEVICE_CUDA_EMU);
    if (!emu) cr_skip_test("cuda-emu is not built in (no C++ compiler)");
    int checked = check_no_cpu_stand_ins(emu, true);
    cr_assert(checked == N_KERNEL_ENTRIES - 2, "checked %d kernel entries", checked);
}

Test(backend_tables, cuda_runs_cuda_kernels_and_cublas)
{
#ifdef MYTORCH_HAVE_CUDA_TOOLKIT
    int checked = check_no_cpu_stand_ins(&mt_cuda_backend, false);
    cr_assert(checked == N_KERNEL_ENTRIES, "checked %d kernel entries", checked);
#else
    cr_skip_test("built without the CUDA toolkit");
#endif
}
