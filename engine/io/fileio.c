/*
 * fileio.c - byte order and durable writes shared by the file formats.
 * A durable write: fill "<path>.tmp.<pid>", fsync it, rename it over path
 * (atomic: a reader or a crash sees the old file or the new one), then fsync
 * the folder so that the rename itself survives a crash.
 */
#include "engine/io/fileio.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
