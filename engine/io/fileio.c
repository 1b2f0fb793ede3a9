/*
 * fileio.c - byte order and durable writes shared by the file formats.
 * A durable write: fill "<path>.tmp.<pid>", fsync it, rename it over path
 * (atomic: a reader or a crash sees the old file or the new one), then fsync
 * the folder so that the rename itself survives a crash.
 *
 * A writer killed before its rename leaves its temporary file behind; the
 * pid in its name tells whether the writer still runs (kill(pid, 0)), so a
 * later save of the same path, or mt_clean_stale_temp_files at a program's
 * start, removes the ones whose writer is gone and never a live writer's.
 */
#include "engine/io/fileio.h"
#include "mytorch/serialize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool mt_host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void mt_swap_bytes(void *data, size_t es, size_t n)
{
    unsigned char *p = data;
    for (size_t i = 0; i < n; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

char *mt_temp_name(const char *path)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (tmp) snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    return tmp;
}

void mt_sync_parent_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* ---------------------------------------------------------------- stale temporary files */

/* Whether name is "<base>.tmp.<pid>" or "<base>.tmp.<pid>.XXXXXX" (libzip's
   temporary for an archive, six letters or digits) with a nonempty base,
   which must equal want when want is not NULL; *pid receives the pid. */
static bool parse_temp_name(const char *name, const char *want, pid_t *pid)
{
    size_t len = strlen(name);
    /* the last ".tmp." followed by digits is the one: a base may hold ".tmp." itself */
    for (size_t at = len; at-- > 0;) {
        if (strncmp(name + at, ".tmp.", 5) != 0) continue;
        if (at == 0) return false;
        const char *p = name + at + 5;
        long long v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 10) { v = v * 10 + (*p++ - '0'); digits++; }
        if (digits == 0 || v <= 0 || v > INT_MAX) continue;
        if (*p == '.') {   /* libzip's suffix */
            int k = 1;
            while (p[k] && ((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= '0' && p[k] <= '9'))) k++;
            if (k != 7 || p[k]) continue;
        } else if (*p) continue;
        if (want && (strlen(want) != at || strncmp(name, want, at) != 0)) return false;
        *pid = (pid_t)v;
        return true;
    }
    return false;
}

/* A process with this pid exists on this machine (EPERM: it exists but is
   another user's). This process counts as alive: its own writes are live. */
static bool pid_alive(pid_t pid)
{
    if (pid == getpid()) return true;
    return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Removes the stale temporaries in dir of base (NULL: of any file). Returns
   how many, or -1 when dir cannot be read (errno set). */
static int remove_stale(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int removed = 0, fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t pid;
        if (!parse_temp_name(e->d_name, base, &pid) || pid_alive(pid)) continue;
        struct stat sb;
        /* only regular files: a folder or a link of that name is not a writer's */
        if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (unlinkat(fd, e->d_name, 0) == 0) removed++;
    }
    closedir(d);
    return removed;
}

int mt_remove_stale_temps_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) return 0;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return 0;
    int saved = errno, n = remove_stale(dir, base);
    errno = saved;
    free(dir);
    return n > 0 ? n : 0;
}

mt_status mt_clean_stale_temp_files(const char *dir, int *removed)
{
    if (removed) *removed = 0;
    if (!dir) return mt_set_error(MT_ERR_ARGUMENT, "clean_stale_temp_files: the folder is NULL");
    int n = remove_stale(dir, NULL);
    if (n < 0) return mt_set_error(MT_ERR_IO, "clean_stale_temp_files: %s: cannot read the folder: %s", dir, strerror(errno));
    if (removed) *removed = n;
    return MT_OK;
}
