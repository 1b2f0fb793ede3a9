/*
 * fileio.h - byte order and durable writes shared by the file formats
 * (safetensors, NumPy .npy/.npz), and the cleaning of the temporary files
 * of writers that were killed. Internal to engine/ (but for
 * mt_clean_stale_temp_files, declared in serialize.h).
 */
#ifndef MT_ENGINE_FILEIO_H
#define MT_ENGINE_FILEIO_H

#include <stdbool.h>
#include <stddef.h>

/* Whether this machine stores integers least significant byte first. */
bool mt_host_is_little_endian(void);
/* Reverses the bytes of each of the n elements of size es (little <-> big endian). */
void mt_swap_bytes(void *data, size_t es, size_t n);

/* "<path>.tmp.<pid>" (malloc'd; NULL when out of memory): the temporary file
   a writer fills before renaming it over path. */
char *mt_temp_name(const char *path);
/* fsync's the folder holding path, so that a rename in it is durable (best
   effort: some file systems cannot sync a folder). */
void mt_sync_parent_folder(const char *path);

/* A writer killed between creating its temporary file and renaming it
   leaves "<path>.tmp.<pid>" behind (and, for a .npz, libzip's own
   "<path>.tmp.<pid>.XXXXXX"). Removes those of this exact path whose pid is
   no live process on this machine (never this process's own, so that a
   concurrent writer is never harmed); best effort, called by every durable
   writer before it writes. Returns how many it removed. The public
   mt_clean_stale_temp_files (serialize.h) does the same for a folder. */
int mt_remove_stale_temps_of(const char *path);

#endif
