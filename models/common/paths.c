/*
 * paths.c - path kinds and the messages about them (paths.h).
 */
#include "models/common/paths.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

mt_path_kind mt_path_kind_of(const char *path)
{
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return MT_PATH_MISSING;
    return S_ISDIR(sb.st_mode) ? MT_PATH_DIR : S_ISREG(sb.st_mode) ? MT_PATH_FILE : MT_PATH_OTHER;
}

/* One message for both expectations: what the path is instead. */
static mt_status expect(const char *who, const char *what, const char *path, const char *hint, mt_path_kind want)
{
    const mt_path_kind got = mt_path_kind_of(path);
    if (got == want) return MT_OK;
    const char *is;
    char why[160];
    if (got == MT_PATH_MISSING) {
        struct stat sb;
        int err = path && stat(path, &sb) != 0 ? errno : ENOENT;
        if (err == ENOENT || err == ENOTDIR) is = "not found";
        else {
            snprintf(why, sizeof why, "cannot be read (%s)", strerror(err));
            is = why;
        }
    } else if (got == MT_PATH_FILE) is = "is a file, not a folder";
    else if (got == MT_PATH_DIR) is = "is a folder, not a file";
    else is = want == MT_PATH_DIR ? "is not a folder (a device, a pipe or a socket)" : "is not a regular file";
    return mt_set_error(MT_ERR_IO, "%s: %s '%s' %s%s%s%s", who, what, path ? path : "(null)", is, hint ? " (" : "",
                        hint ? hint : "", hint ? ")" : "");
}

mt_status mt_expect_dir(const char *who, const char *what, const char *path, const char *hint)
{
    return expect(who, what, path, hint, MT_PATH_DIR);
}

mt_status mt_expect_file(const char *who, const char *what, const char *path, const char *hint)
{
    return expect(who, what, path, hint, MT_PATH_FILE);
}

char *mt_str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}
