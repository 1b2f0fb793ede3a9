/*
 * npy.h - NumPy's .npy and .npz files: how course data ships (a split folder
 * of mfcc/<utterance>.npy, T x F float arrays, and transcript/<utterance>.npy,
 * arrays of phoneme strings). See docs/npy.md.
 *
 * A .npy file is the magic "\x93NUMPY", a version (1.0, 2.0 or 3.0), the
 * header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), the
 * header, a Python dict literal padded with spaces and a final '\n',
 *
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *
 * and then the elements, in C (row-major) or Fortran (column-major) order.
 * A .npz file is a zip archive (stored or deflated) of .npy members, one per
 * array, named "<name>.npy".
 *
 * Reading: descrs f4, f8, i4, i8, u1 and b1 become MT_F32, MT_F64, MT_I32,
 * MT_I64, MT_U8 and MT_BOOL; the types mytorch does not have are widened to
 * one that holds every value exactly: f2 -> MT_F32, i1, i2, u2 -> MT_I32,
 * u4 -> MT_I64, and u8 -> MT_I64 (an element above INT64_MAX is an error).
 * Either byte order ('<', '>', '|', '=') and either element order are
 * accepted; the tensor is always native and C-contiguous. String arrays
 * ('<U7', '>U7': UTF-32; '|S5': bytes) are read by the *_strings calls, as
 * UTF-8. Object arrays ('|O': pickled Python objects), structured, complex,
 * datetime and void dtypes are refused with a message saying so.
 *
 * Writing: little-endian, C order, version 1.0 (2.0 only when the header
 * needs more than 65535 bytes), byte for byte what np.save writes for the
 * same array (NumPy >= 1.23). Files are written to "<path>.tmp.<pid>",
 * flushed, fsync'ed and renamed, so a crash never leaves a half-written file.
 * Bulk writers may skip the fsyncs (mt_npy_save_opts.no_sync) and make the
 * whole batch durable with one sync at the end.
 *
 * Errors: MT_ERR_IO (the file system), MT_ERR_FORMAT (malformed or truncated
 * contents), MT_ERR_DTYPE (a well-formed file of a dtype mytorch does not
 * read, or strings given to a numeric call and the reverse), MT_ERR_ARGUMENT,
 * MT_ERR_MEMORY, with a message "npy: <path>: <problem>" (or
 * "npz: <path>: member '<name>': <problem>"). On error nothing is allocated
 * for the caller and the outputs are left untouched.
 */
#ifndef MT_NPY_H
#define MT_NPY_H

#include "mytorch/nn.h"

/* ---------------------------------------------------------------- numbers */
/* Reads the array in path into a new contiguous CPU tensor (it belongs to
   the open step scope, or to the caller when none is open, like any new
   tensor). NULL on error; a string array is an error naming
   mt_npy_load_strings. */
mt_tensor *mt_npy_load(const char *path);
/* The same from the bytes of a .npy file in memory; name is the file's name
   in messages (NULL: "<memory>"). */
mt_tensor *mt_npy_load_buffer(const void *data, size_t size, const char *name);
/* Writes t (any device, any layout; copied through mt_to_data) to path. */
mt_status mt_npy_save(const char *path, const mt_tensor *t);

/* How a file is written. Zeroed (or NULL): the defaults of mt_npy_save. */
typedef struct mt_npy_save_opts {
    /* Skip the fsync of the file and of its folder (about 7 ms each on a
       disk). The write stays atomic (temporary file + rename: readers see
       the old file or the whole new one), but after a power loss the file
       may be empty or missing. For bulk writers that sync once at the end
       (syncfs(2), as `mytorch data speech` does). The bytes are the same. */
    bool no_sync;
} mt_npy_save_opts;
mt_status mt_npy_save_with(const char *path, const mt_tensor *t, const mt_npy_save_opts *opts);

/* ---------------------------------------------------------------- strings */
/* An array of n strings (NUL-terminated UTF-8, row-major order) of a given
   shape. strings is one allocation (the pointers followed by the text). */
typedef struct mt_string_array {
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    int64_t n;          /* the number of strings: the product of shape */
    char **strings;
} mt_string_array;
/* Reads a string array ('<U', '>U' or '|S') into *out (free it with
   mt_string_array_free). Trailing NULs are padding, as in NumPy; a string
   with a NUL inside it, a code unit that is no Unicode scalar value, or
   bytes that are not UTF-8 is an error. */
mt_status mt_npy_load_strings(const char *path, mt_string_array *out);
mt_status mt_npy_load_strings_buffer(const void *data, size_t size, const char *name, mt_string_array *out);
/* Writes n UTF-8 strings as a 1-d '<U{longest}' array, as np.save of
   np.array(strings) does ('<U1' when every string is empty). */
mt_status mt_npy_save_strings(const char *path, int64_t n, const char *const *strings);
mt_status mt_npy_save_strings_with(const char *path, int64_t n, const char *const *strings,
                                   const mt_npy_save_opts *opts);
/* Frees a's strings and zeroes it; NULL and a zeroed array are ignored. */
void mt_string_array_free(mt_string_array *a);

/* ---------------------------------------------------------------- .npz archives */
typedef struct mt_npz mt_npz;
/* Opens a .npz (any zip archive) for reading; close it with mt_npz_close. */
mt_status mt_npz_open(const char *path, mt_npz **out);
/* The arrays' names in archive order, without the ".npy" suffix; owned by
   npz. *n receives their number. */
const char *const *mt_npz_names(const mt_npz *npz, int *n);
/* Reads one array, as mt_npy_load / mt_npy_load_strings read a file. name
   is "<name>" (member "<name>.npy") or a member's full name. */
mt_tensor *mt_npz_load(mt_npz *npz, const char *name);
mt_status mt_npz_load_strings(mt_npz *npz, const char *name, mt_string_array *out);
void mt_npz_close(mt_npz *npz);
/* Writes every tensor of the list as member "<name>.npy", as np.savez does
   (compressed: deflated, as np.savez_compressed does). */
mt_status mt_npz_save(const char *path, mt_tensor_list tensors, bool compressed);

#endif
