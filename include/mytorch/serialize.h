/*
 * serialize.h - checkpoints in the safetensors format: an 8-byte little-endian
 * header length N, N bytes of JSON ({"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {..}}), then the raw
 * little-endian tensor bytes. Files are written to a temporary name, flushed,
 * fsync'ed and renamed, so a crash never leaves a half-written checkpoint.
 */
#ifndef MT_SERIALIZE_H
#define MT_SERIALIZE_H

#include "mytorch/optim.h"

/* Writes the named tensors (any device, any layout) to path. metadata: NULL
   or n_meta key/value string pairs stored under "__metadata__". */
mt_status mt_safetensors_save(const char *path, mt_tensor_list tensors,
                              int n_meta, const char *const *meta_keys, const char *const *meta_values);
/* Reads every tensor of path into new tensors on the CPU. Like every
   creator's, they belong to the open scope, or to the caller when none is
   open (docs/ownership.md); the caller frees the list (mt_tensor_list_free).
   On error nothing is allocated. */
mt_status mt_safetensors_load(const char *path, mt_tensor_list *out);

/* The "__metadata__" of a file: n key/value pairs in file order. */
typedef struct mt_safetensors_metadata {
    int n;
    char **keys;
    char **values;
} mt_safetensors_metadata;
/* Reads and checks path's header (not the tensor bytes) and returns its
   metadata (n = 0 when there is none); free it with mt_safetensors_metadata_free.
   On error nothing is allocated. */
mt_status mt_safetensors_read_metadata(const char *path, mt_safetensors_metadata *meta);
/* mt_safetensors_load that also returns the metadata (meta may be NULL). */
mt_status mt_safetensors_load_with_metadata(const char *path, mt_tensor_list *out, mt_safetensors_metadata *meta);
void mt_safetensors_metadata_free(mt_safetensors_metadata *meta);

/* A module's state dict. Loading is strict: every name and shape must match,
   and every dtype, except that f32 and f64 load into each other (converted to
   the module's dtype, as PyTorch's load_state_dict copies); on any error the
   module is left exactly as it was. */
mt_status mt_module_save(const mt_module *m, const char *path);
mt_status mt_module_load(mt_module *m, const char *path);
/* A batch norm's num_batches_tracked may be missing from the file even so
   (as PyTorch allows): the module keeps its own. mt_module_load_ex with
   non_strict is PyTorch's load_state_dict(strict=False): keys the file lacks
   keep their values and keys the module lacks are ignored, both listed in
   *report (when given; free it with mt_load_report_free); a dtype or shape
   that does not fit is still an error. */
typedef struct mt_load_opts { bool non_strict; } mt_load_opts;
typedef struct mt_load_report {
    int n_missing, n_unexpected;
    char **missing;       /* the module's keys the file lacks */
    char **unexpected;    /* the file's keys the module lacks */
} mt_load_report;
mt_status mt_module_load_ex(mt_module *m, const char *path, mt_load_opts opts, mt_load_report *report);
void mt_load_report_free(mt_load_report *report);
/* A module and its optimizer in one file ("model." and "optim." prefixes;
   the learning rate in the metadata as "optim.lr"). opt may be NULL. */
mt_status mt_checkpoint_save(const char *path, const mt_module *m, const mt_optimizer *opt);
mt_status mt_checkpoint_load(const char *path, mt_module *m, mt_optimizer *opt);
/* The same with metadata: n_meta key/value strings stored after "optim.lr"
   (a key "optim.lr" is refused: it is the checkpoint's own). Loading returns
   every pair of the file in *meta (may be NULL; "optim.lr" included), set
   only on success; free it with mt_safetensors_metadata_free. */
mt_status mt_checkpoint_save_meta(const char *path, const mt_module *m, const mt_optimizer *opt,
                                  int n_meta, const char *const *meta_keys, const char *const *meta_values);
mt_status mt_checkpoint_load_meta(const char *path, mt_module *m, mt_optimizer *opt, mt_safetensors_metadata *meta);

/* Removes from dir the temporary files that writers killed before their
   rename left behind: "<name>.tmp.<pid>" (and "<name>.tmp.<pid>.XXXXXX", an
   archive's) whose pid is no live process on this machine. A live writer's
   file, this process's own, folders and links are never touched. Call it at
   the start of a run on the folders it writes (its run folder, a dataset
   being generated); every save also does it for its own target. Files of
   other programs named like that are removed too, so give it mytorch's
   folders only. *removed (may be NULL) receives the count; an unreadable
   dir is MT_ERR_IO. See docs/checkpoints.md, "Atomic writes". */
mt_status mt_clean_stale_temp_files(const char *dir, int *removed);

#endif
