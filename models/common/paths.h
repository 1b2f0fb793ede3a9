/*
 * paths.h - what a path the user gave is, and messages that say so: a task
 * asks for a folder (the corpus, the run folder) or a file (a checkpoint),
 * and "not found" is only said of a path that does not exist; a file where
 * a folder is expected, or the reverse, is named as what it is.
 */
#ifndef MT_MODELS_COMMON_PATHS_H
#define MT_MODELS_COMMON_PATHS_H

#include "mytorch/mytorch.h"

typedef enum mt_path_kind { MT_PATH_MISSING, MT_PATH_FILE, MT_PATH_DIR, MT_PATH_OTHER } mt_path_kind;

/* What path is (stat(2), links followed). */
mt_path_kind mt_path_kind_of(const char *path);

/* MT_OK when path is a folder; else MT_ERR_IO and a message
   "<who>: <what> '<path>' not found|is a file, not a folder|...",
   followed by " (<hint>)" when hint is given. */
mt_status mt_expect_dir(const char *who, const char *what, const char *path, const char *hint);
/* The same for a regular file ("is a folder, not a file"). */
mt_status mt_expect_file(const char *who, const char *what, const char *path, const char *hint);

/* snprintf into a fresh malloc'd string (NULL when out of memory). */
char *mt_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
