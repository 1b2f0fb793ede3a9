/*
 * npy.c - reading and writing NumPy's .npy files and .npz archives.
 *
 * The .npy format (numpy/lib/format.py, "Format Version 1.0" and after):
 *
 *     bytes 0..5     the magic "\x93NUMPY"
 *     bytes 6..7     the version, major and minor: 1.0, 2.0 or 3.0
 *     bytes 8..9     (1.0) the header length H, little-endian unsigned 16-bit
 *     bytes 8..11    (2.0, 3.0) the header length H, little-endian unsigned 32-bit
 *     next H bytes   the header: a Python dict literal (latin-1 in 1.0 and 2.0,
 *                    UTF-8 in 3.0), padded with spaces and ending in '\n' so
 *                    that the data starts at a multiple of 64 (16 in files of
 *                    old NumPy versions; any length is accepted)
 *                      {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *     the rest       numel(shape) elements of descr, in C order, or in Fortran
 *                    order when fortran_order is True
 *
 * A .npz file is a zip archive of .npy members named "<name>.npy", stored
 * (np.savez) or deflated (np.savez_compressed). Zip archives are read and
 * written by libzip; a member is read into memory and parsed there by the
 * same code that parses a file.
 *
 * The file has four parts:
 *
 *   1. The header: the prefix (magic, version, length), then a small reader
 *      of the Python literals a header holds (strings, True/False, tuples of
 *      integers), then the descr ('<f4', '>U7', '|S5', ...). No function
 *      reads past its buffer; syntax errors name the byte where they happen.
 *   2. Decoding: elements in the file's byte order, width and element order
 *      into a native C-order tensor (numbers) or UTF-8 strings.
 *   3. Loading from a file or a buffer, and the .npz reader.
 *   4. Writing: the header exactly as np.save writes it (NumPy >= 1.23), the
 *      elements little-endian in C order, to "<path>.tmp.<pid>", flushed,
 *      fsync'ed (skipped with mt_npy_save_opts.no_sync, for bulk writers
 *      that sync once at the end) and renamed over <path>; .npz archives are
 *      written by libzip into the same kind of temporary file.
 *
 * Every error is reported as MT_ERR_IO (the file system), MT_ERR_FORMAT (a
 * malformed or truncated file), MT_ERR_DTYPE (a well-formed file whose dtype
 * mytorch does not read, or strings given to a numeric call and the
 * reverse), MT_ERR_ARGUMENT or MT_ERR_MEMORY, with a message
 * "npy: <path>: <problem>" or "npz: <path>: member '<name>': <problem>". On
 * error nothing is allocated for the caller and an existing file is never
 * half overwritten.
 */
#include "mytorch/npy.h"
#include "engine/internal.h"
#include "engine/io/fileio.h"
#include "engine/io/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

/* The longest header read (1 MiB). A header of the dtypes mytorch reads is
   a few hundred bytes; NumPy itself refuses more than 10000 by default. */
#define NPY_MAX_HEADER ((uint64_t)1 << 20)
/* The first buffer for an .npz member (it grows as its bytes arrive). */
#define NPZ_FIRST_CHUNK ((uint64_t)1 << 20)
/* The longest string (descr, key) of a header. */
#define NPY_MAX_TOKEN 64
/* The most characters of a string dtype ('<U{n}', '|S{n}'). */
#define NPY_MAX_STRING_CHARS ((uint64_t)1 << 28)
/* np.save's alignment of the data, and its spare room for a growing axis. */
#define NPY_ALIGN 64
#define NPY_GROWTH_AXIS_MAX_DIGITS 21

static const unsigned char npy_magic[6] = { 0x93, 'N', 'U', 'M', 'P', 'Y' };

/* ================================================================ errors */

/* Where an error happened, for messages: a file, or a member of an archive. */
typedef struct npy_where {
    const char *format;   /* "npy" or "npz" */
    const char *path;
    const char *member;   /* NULL for a .npy file */
} npy_where;

__attribute__((format(printf, 3, 4)))
static mt_status npy_error(const npy_where *w, mt_status code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w->member) return mt_set_error(code, "%s: %s: member '%.96s': %s", w->format, w->path, w->member, msg);
    return mt_set_error(code, "%s: %s: %s", w->format, w->path, msg);
}

/* ================================================================ small helpers */

/* An unsigned integer of size (1 to 8) bytes in the given byte order. */
static uint64_t load_uint(const unsigned char *p, size_t size, bool big_endian)
{
    uint64_t v = 0;
    if (big_endian)
        for (size_t i = 0; i < size; i++) v = (v << 8) | p[i];
    else
        for (size_t i = size; i > 0; i--) v = (v << 8) | p[i - 1];
    return v;
}

static void store_le(unsigned char *p, uint64_t v, size_t size)
{
    for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* IEEE 754 half precision to single (exact: every half is a float). */
static float half_to_float(uint16_t h)
{
    unsigned exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    float v;
    if (exp == 0) v = ldexpf((float)mant, -24);                 /* zero and subnormals */
    else if (exp == 31) v = mant ? NAN : INFINITY;
    else v = ldexpf((float)(mant | 0x400), (int)exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* Length (1-4) of the well-formed UTF-8 sequence at s (s < end), or 0 when it
   is not: a stray continuation byte, a truncated sequence, an overlong
   encoding, a UTF-16 surrogate or a code point above U+10FFFF. When cp_out
   is not NULL it receives the code point. */
static int utf8_decode(const unsigned char *s, const unsigned char *end, uint32_t *cp_out)
{
    unsigned c = s[0];
    int len;
    uint32_t cp, min;
    if (c < 0x80) {
        if (cp_out) *cp_out = c;
        return 1;
    }
    else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (end - s < len) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    if (cp_out) *cp_out = cp;
    return len;
}

/* The UTF-8 length of code point cp (a Unicode scalar value). */
static int utf8_length(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* The number of code points of a UTF-8 string, or -1 when it is not UTF-8. */
static int64_t utf8_count(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    int64_t count = 0;
    for (int len; p < end; p += len, count++)
        if ((len = utf8_decode(p, end, NULL)) == 0) return -1;
    return count;
}

/* A shape as Python writes a tuple: "()", "(3,)", "(3, 4)". */
static void shape_repr(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (n < size) snprintf(buf + n, size - n, ndim == 1 ? ",)" : ")");
}

/* ================================================================ the header */

typedef enum npy_kind { NPY_FLOAT, NPY_INT, NPY_UINT, NPY_BOOL, NPY_UNICODE, NPY_BYTES } npy_kind;

typedef struct npy_header {
    int major, minor;          /* the version */
    uint64_t header_start;     /* where the header text starts (10 or 12) */
    uint64_t header_len;
    uint64_t data_offset;      /* where the elements start */
    char descr[NPY_MAX_TOKEN + 1];
    npy_kind kind;
    uint64_t itemsize;         /* bytes per element in the file */
    uint64_t unit;             /* bytes per code unit: 4 for 'U', 1 for 'S', else itemsize */
    bool big_endian;           /* the file's byte order (meaningful when unit > 1) */
    bool fortran;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    uint64_t numel, nbytes;
    mt_dtype dtype;            /* what numbers are read into */
} npy_header;

/* The prefix. buf holds the first min(size, 12) bytes of a file of size
   bytes. Sets the version, header_start, header_len and data_offset. */
static mt_status npy_parse_prefix(const npy_where *w, const unsigned char *buf, uint64_t size, npy_header *h)
{
    size_t have = size < 6 ? (size_t)size : 6;
    if (memcmp(buf, npy_magic, have) != 0) {
        if (size >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0)
            return npy_error(w, MT_ERR_FORMAT, "bad magic: this is a zip archive, not a .npy file (a .npz? read it "
                             "with mt_npz_open)");
        return npy_error(w, MT_ERR_FORMAT, "bad magic: the file does not start with \"\\x93NUMPY\" (not a .npy file)");
    }
    if (size < 8)
        return npy_error(w, MT_ERR_FORMAT, "truncated: the file has %" PRIu64 " bytes, too few for the magic and "
                         "version", size);
    h->major = buf[6];
    h->minor = buf[7];
    if (h->minor != 0 || h->major < 1 || h->major > 3)
        return npy_error(w, MT_ERR_FORMAT, "unknown format version %d.%d (mytorch reads 1.0, 2.0 and 3.0)",
                         h->major, h->minor);
    h->header_start = h->major == 1 ? 10 : 12;
    if (size < h->header_start)
        return npy_error(w, MT_ERR_FORMAT, "truncated: the file has %" PRIu64 " bytes, too few for the header length "
                         "of a version %d.0 file", size, h->major);
    h->header_len = load_uint(buf + 8, h->major == 1 ? 2 : 4, false);
    if (h->header_len > NPY_MAX_HEADER)
        return npy_error(w, MT_ERR_FORMAT, "header too long: %" PRIu64 " bytes (the limit is %" PRIu64 ")",
                         h->header_len, NPY_MAX_HEADER);
    if (h->header_len > size - h->header_start)
        return npy_error(w, MT_ERR_FORMAT, "truncated header: it has %" PRIu64 " bytes but the file ends after %" PRIu64,
                         h->header_len, size - h->header_start);
    h->data_offset = h->header_start + h->header_len;
    return MT_OK;
}

/*
 * The dict. The grammar is the subset of Python literals NumPy writes (and
 * reads back with ast.literal_eval):
 *
 *     header  = ws "{" ws [ item ws *( "," ws item ws ) [ "," ws ] ] "}" ws
 *     item    = string ws ":" ws value
 *     value   = string | "True" | "False" | tuple
 *     tuple   = "(" ws [ int ws "," ws *( int ws "," ws ) [ int ws ] ] ")"
 *     int     = 1*DIGIT [ "L" ]                 (the "L" of Python 2's longs)
 *     string  = "'" chars "'" | '"' chars '"'   (escapes \\ \' \")
 *
 * ws is space, tab, LF, CR, FF or VT. A one-element tuple needs its comma, as
 * in Python ("(3)" is an int). The keys are exactly 'descr', 'fortran_order'
 * and 'shape', each once. A list as descr is a structured dtype.
 */
typedef struct dict_reader {
    const unsigned char *begin, *p, *end;
    bool failed;
    mt_status code;
    char error[512];
} dict_reader;

__attribute__((format(printf, 3, 4)))
static bool dict_fail(dict_reader *r, mt_status code, const char *fmt, ...)
{
    if (r->failed) return false;
    r->failed = true;
    r->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return false;
}

/* A syntax error at the cursor. */
static bool dict_syntax(dict_reader *r, const char *what)
{
    return dict_fail(r, MT_ERR_FORMAT, "unparseable header dict at byte %td: %s", r->p - r->begin, what);
}

static void dict_ws(dict_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r' ||
                             *r->p == '\f' || *r->p == '\v'))
        r->p++;
}

/* The next byte after whitespace, or -1 at the end. */
static int dict_peek(dict_reader *r)
{
    dict_ws(r);
    return r->p < r->end ? *r->p : -1;
}

static bool dict_accept(dict_reader *r, char c)
{
    if (dict_peek(r) != (unsigned char)c) return false;
    r->p++;
    return true;
}

/* A quoted string of at most NPY_MAX_TOKEN bytes into out. */
static bool dict_string(dict_reader *r, char *out)
{
    int q = dict_peek(r);
    if (q != '\'' && q != '"') return dict_syntax(r, "expected a quoted string");
    r->p++;
    size_t n = 0;
    for (;;) {
        if (r->p >= r->end || *r->p == '\n' || *r->p == '\r') return dict_syntax(r, "unterminated string");
        unsigned char c = *r->p;
        if (c == q) { r->p++; break; }
        if (c == '\\') {
            if (r->end - r->p < 2) return dict_syntax(r, "unterminated string");
            c = r->p[1];
            if (c != '\\' && c != '\'' && c != '"') return dict_syntax(r, "unsupported escape in a string");
            r->p++;
        }
        if (c == '\0') return dict_syntax(r, "NUL character in a string");
        if (n == NPY_MAX_TOKEN) return dict_syntax(r, "string too long");
        out[n++] = (char)c;
        r->p++;
    }
    out[n] = '\0';
    return true;
}

static bool is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool dict_bool(dict_reader *r, bool *out)
{
    dict_ws(r);
    const unsigned char *s = r->p;
    while (r->p < r->end && is_word_char(*r->p)) r->p++;
    size_t n = (size_t)(r->p - s);
    if (n == 4 && memcmp(s, "True", 4) == 0) { *out = true; return true; }
    if (n == 5 && memcmp(s, "False", 5) == 0) { *out = false; return true; }
    r->p = s;
    return dict_fail(r, MT_ERR_FORMAT, "'fortran_order' is not True or False (at byte %td)", s - r->begin);
}

/* A non-negative integer: a dimension. */
static bool dict_dim(dict_reader *r, int64_t *out)
{
    int c = dict_peek(r);
    if (c == '-') return dict_fail(r, MT_ERR_FORMAT, "'shape' has a negative dimension (at byte %td)", r->p - r->begin);
    if (c < '0' || c > '9') return dict_syntax(r, "expected an integer in 'shape'");
    uint64_t v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return dict_fail(r, MT_ERR_FORMAT, "'shape' has a dimension too large for int64 (at byte %td)",
                             r->p - r->begin);
        v = v * 10 + d;
        r->p++;
    }
    if (r->p < r->end && (*r->p == 'L' || *r->p == 'l')) r->p++;   /* a Python 2 long */
    if (r->p < r->end && (is_word_char(*r->p) || *r->p == '.')) return dict_syntax(r, "expected an integer in 'shape'");
    *out = (int64_t)v;
    return true;
}

static bool dict_shape(dict_reader *r, npy_header *h)
{
    int c = dict_peek(r);
    if (c == '[') return dict_fail(r, MT_ERR_FORMAT, "'shape' is a list, not a tuple");
    if (c != '(') return dict_fail(r, MT_ERR_FORMAT, "'shape' is not a tuple of integers (at byte %td)", r->p - r->begin);
    r->p++;
    int count = 0;
    bool comma = false;   /* a comma followed the last integer */
    while (!dict_accept(r, ')')) {
        if (dict_peek(r) < 0) return dict_syntax(r, "the header ends inside 'shape'");
        if (count > 0 && !comma) return dict_syntax(r, "expected ',' or ')' in 'shape'");
        int64_t v = 0;
        if (!dict_dim(r, &v)) return false;
        if (count == MT_MAX_DIMS)
            return dict_fail(r, MT_ERR_FORMAT, "'shape' has more than %d dimensions (mytorch supports at most %d)",
                             MT_MAX_DIMS, MT_MAX_DIMS);
        h->shape[count++] = v;
        comma = dict_accept(r, ',');
    }
    if (count == 1 && !comma)
        return dict_fail(r, MT_ERR_FORMAT, "'shape' is an integer in parentheses, not a tuple (a one-element "
                         "tuple is written (n,))");
    h->ndim = count;
    return true;
}

/*
 * The descr: an optional byte order ('<' little, '>' big, '|' not
 * applicable, '=' native), a kind letter and a size. Sets kind, itemsize,
 * unit, big_endian and, for numbers, the mytorch dtype.
 */
static bool parse_descr(dict_reader *r, npy_header *h, const char *s)
{
    snprintf(h->descr, sizeof h->descr, "%s", s);
    const char *p = s;
    h->big_endian = !mt_host_is_little_endian();
    if (*p == '<') { h->big_endian = false; p++; }
    else if (*p == '>') { h->big_endian = true; p++; }
    else if (*p == '|' || *p == '=') p++;

    char kind = *p ? *p++ : '\0';
    switch (kind) {
    case 'O':
        return dict_fail(r, MT_ERR_DTYPE, "descr '%s' is an object array: its elements are pickled Python "
                         "objects, which mytorch does not read (save a fixed-width array instead, e.g. "
                         "np.array(x, dtype=str) or np.stack(x))", s);
    case 'c': return dict_fail(r, MT_ERR_DTYPE, "descr '%s' is complex, which mytorch does not support", s);
    case 'M': case 'm':
        return dict_fail(r, MT_ERR_DTYPE, "descr '%s' is a datetime or timedelta, which mytorch does not support", s);
    case 'V': return dict_fail(r, MT_ERR_DTYPE, "descr '%s' is raw bytes (void), which mytorch does not support", s);
    default: break;
    }
    uint64_t size = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (size > 1000000000) return dict_fail(r, MT_ERR_FORMAT, "unknown descr '%s': its size is too large", s);
        size = size * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (*p != '\0' || digits == 0 || size == 0) return dict_fail(r, MT_ERR_FORMAT, "unknown descr '%s'", s);

    h->unit = size;
    h->itemsize = size;
    switch (kind) {
    case 'f':
        h->kind = NPY_FLOAT;
        if (size == 2 || size == 4) h->dtype = MT_F32;
        else if (size == 8) h->dtype = MT_F64;
        else return dict_fail(r, MT_ERR_DTYPE, "descr '%s' (a %" PRIu64 "-byte float) is not supported (mytorch "
                              "reads f2, f4 and f8)", s, size);
        return true;
    case 'i':
        h->kind = NPY_INT;
        if (size == 1 || size == 2 || size == 4) h->dtype = MT_I32;
        else if (size == 8) h->dtype = MT_I64;
        else break;
        return true;
    case 'u':
        h->kind = NPY_UINT;
        if (size == 1) h->dtype = MT_U8;
        else if (size == 2) h->dtype = MT_I32;
        else if (size == 4 || size == 8) h->dtype = MT_I64;
        else break;
        return true;
    case 'b':
        h->kind = NPY_BOOL;
        h->dtype = MT_BOOL;
        if (size != 1) break;
        return true;
    case 'U':
        if (size > NPY_MAX_STRING_CHARS) return dict_fail(r, MT_ERR_FORMAT, "descr '%s': the strings are too long", s);
        h->kind = NPY_UNICODE;
        h->unit = 4;
        h->itemsize = 4 * size;
        return true;
    case 'S': case 'a':
        if (size > NPY_MAX_STRING_CHARS) return dict_fail(r, MT_ERR_FORMAT, "descr '%s': the strings are too long", s);
        h->kind = NPY_BYTES;
        h->unit = 1;
        return true;
    default:
        break;
    }
    return dict_fail(r, MT_ERR_FORMAT, "unknown descr '%s'", s);
}

static bool is_string_kind(const npy_header *h);

/* The dict; then the element and byte counts. */
static bool dict_parse(dict_reader *r, npy_header *h)
{
    static const char *const keys[3] = { "descr", "fortran_order", "shape" };
    bool seen[3] = { false, false, false };
    if (!dict_accept(r, '{')) return dict_syntax(r, "the header is not a dict (it must start with '{')");
    bool first = true, comma = false;   /* comma: a comma followed the last item */
    while (!dict_accept(r, '}')) {
        if (dict_peek(r) < 0) return dict_syntax(r, "the header ends inside the dict");
        if (!first && !comma) return dict_syntax(r, "expected ',' or '}' after a dict item");
        char key[NPY_MAX_TOKEN + 1];
        if (!dict_string(r, key)) return false;
        if (!dict_accept(r, ':')) return dict_syntax(r, "expected ':' after a key");
        int k = 0;
        while (k < 3 && strcmp(key, keys[k]) != 0) k++;
        if (k == 3)
            return dict_fail(r, MT_ERR_FORMAT, "unexpected key '%s' (a header has exactly 'descr', 'fortran_order' "
                             "and 'shape')", key);
        if (seen[k]) return dict_fail(r, MT_ERR_FORMAT, "key '%s' appears twice", key);
        seen[k] = true;
        if (k == 0) {
            char descr[NPY_MAX_TOKEN + 1];
            int c = dict_peek(r);
            if (c == '[')
                return dict_fail(r, MT_ERR_DTYPE, "'descr' is a list: a structured dtype (record array), which "
                                 "mytorch does not read");
            if (c != '\'' && c != '"')
                return dict_fail(r, MT_ERR_FORMAT, "'descr' is not a string (at byte %td)", r->p - r->begin);
            if (!dict_string(r, descr) || !parse_descr(r, h, descr)) return false;
        } else if (k == 1) {
            if (!dict_bool(r, &h->fortran)) return false;
        } else if (!dict_shape(r, h)) return false;
        first = false;
        comma = dict_accept(r, ',');   /* optional after the last item */
    }
    dict_ws(r);
    if (r->p != r->end) return dict_syntax(r, "unexpected characters after the dict");
    for (int k = 0; k < 3; k++)
        if (!seen[k]) return dict_fail(r, MT_ERR_FORMAT, "the header has no '%s'", keys[k]);

    /* The element count, checked as for any tensor: a 0 dim does not excuse
       the others (the strides, and the Fortran walk, are their product), and
       the bytes must fit in the file's element size and in the tensor's. */
    size_t es = (size_t)h->itemsize;
    if (!is_string_kind(h) && mt_dtype_size(h->dtype) > es) es = mt_dtype_size(h->dtype);
    int64_t numel = mt_shape_check("header", h->ndim, h->shape, es);
    if (numel < 0) return dict_fail(r, MT_ERR_FORMAT, "%s", mt_last_error());
    h->numel = (uint64_t)numel;
    h->nbytes = h->numel * h->itemsize;
    return true;
}

/* Parses the header text (h->header_len bytes at text). */
static mt_status npy_parse_header(const npy_where *w, const unsigned char *text, npy_header *h)
{
    dict_reader r = { .begin = text, .p = text, .end = text + h->header_len };
    if (!dict_parse(&r, h)) return npy_error(w, r.code, "%s", r.error);
    return MT_OK;
}

/* The data's size (size - data_offset) against what the header needs. */
static mt_status npy_check_data_size(const npy_where *w, const npy_header *h, uint64_t size)
{
    uint64_t have = size - h->data_offset;
    if (have == h->nbytes) return MT_OK;
    char shape[160];
    shape_repr(h->ndim, h->shape, shape, sizeof shape);
    if (have < h->nbytes)
        return npy_error(w, MT_ERR_FORMAT, "truncated data: descr '%s' and shape %s need %" PRIu64 " bytes, but "
                         "only %" PRIu64 " follow the header", h->descr, shape, h->nbytes, have);
    return npy_error(w, MT_ERR_FORMAT, "shape/data size mismatch: descr '%s' and shape %s need %" PRIu64 " bytes, "
                     "but %" PRIu64 " follow the header (trailing data, or a header that does not describe this "
                     "file)", h->descr, shape, h->nbytes, have);
}

/* ================================================================ decoding */

static bool is_string_kind(const npy_header *h) { return h->kind == NPY_UNICODE || h->kind == NPY_BYTES; }

/*
 * The file positions of the elements, in C order. In a Fortran-order file
 * the element of C multi-index (i0, ..., ik) is at i0 + s0 * (i1 + s1 * (...)).
 */
typedef struct order_walk {
    bool fortran;
    int ndim;
    const int64_t *shape;
    int64_t fstride[MT_MAX_DIMS];
    int64_t index[MT_MAX_DIMS];
    int64_t c, f;             /* the current element: its C position, its file position */
} order_walk;

static void walk_start(order_walk *w, const npy_header *h)
{
    memset(w, 0, sizeof *w);
    w->fortran = h->fortran && h->ndim > 1;
    w->ndim = h->ndim;
    w->shape = h->shape;
    int64_t s = 1;
    for (int d = 0; d < h->ndim; d++) {
        w->fstride[d] = s;
        s *= h->shape[d];
    }
}

/* The file position of the current element; then moves to the next. */
static int64_t walk_next(order_walk *w)
{
    if (!w->fortran) return w->c++;
    int64_t at = w->f;
    for (int d = w->ndim - 1; d >= 0; d--) {
        w->f += w->fstride[d];
        if (++w->index[d] < w->shape[d]) break;
        w->f -= w->fstride[d] * w->shape[d];
        w->index[d] = 0;
    }
    return at;
}

/* Whether the file's elements are the tensor's bytes up to byte order and
   bool normalization: the same kind and width, in C order. */
static bool npy_is_direct(const npy_header *h)
{
    if (h->fortran && h->ndim > 1) return false;
    if (h->itemsize != mt_dtype_size(h->dtype)) return false;
    switch (h->kind) {
    case NPY_FLOAT: return true;
    case NPY_INT: return h->dtype == MT_I32 || h->dtype == MT_I64;
    case NPY_UINT: return h->dtype == MT_U8;
    case NPY_BOOL: return true;
    default: return false;
    }
}

/* The direct case's fix-up in place: native byte order, bools 0 or 1. */
static void npy_fix_in_place(const npy_header *h, void *data)
{
    if (h->itemsize > 1 && h->big_endian == mt_host_is_little_endian())
        mt_swap_bytes(data, (size_t)h->itemsize, (size_t)h->numel);
    if (h->kind == NPY_BOOL) {
        unsigned char *b = data;
        for (uint64_t i = 0; i < h->numel; i++) b[i] = b[i] != 0;
    }
}

/* Element i of dst (of dtype): f for floats, v for integers and bools. */
static void store_number(mt_dtype dtype, void *dst, int64_t i, double f, int64_t v)
{
    switch (dtype) {
    case MT_F32: ((float *)dst)[i] = (float)f; break;
    case MT_F64: ((double *)dst)[i] = f; break;
    case MT_I32: ((int32_t *)dst)[i] = (int32_t)v; break;
    case MT_I64: ((int64_t *)dst)[i] = v; break;
    case MT_U8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
    case MT_BOOL: ((uint8_t *)dst)[i] = v != 0; break;
    default: break;
    }
}

/* A numeric file's elements (raw) into dst: numel elements of h->dtype in C order. */
static mt_status npy_decode_numbers(const npy_where *w, const npy_header *h, const unsigned char *raw, void *dst)
{
    if (npy_is_direct(h)) {
        if (h->nbytes) memcpy(dst, raw, (size_t)h->nbytes);
        npy_fix_in_place(h, dst);
        return MT_OK;
    }
    order_walk walk;
    walk_start(&walk, h);
    size_t size = (size_t)h->itemsize;
    for (int64_t i = 0; i < (int64_t)h->numel; i++) {
        const unsigned char *e = raw + (size_t)walk_next(&walk) * size;
        uint64_t bits = load_uint(e, size, h->big_endian);
        switch (h->kind) {
        case NPY_FLOAT: {
            double f;
            if (size == 2) f = half_to_float((uint16_t)bits);
            else if (size == 4) {
                uint32_t b32 = (uint32_t)bits;
                float x;
                memcpy(&x, &b32, 4);
                f = x;
            } else memcpy(&f, &bits, 8);
            store_number(h->dtype, dst, i, f, 0);
            break;
        }
        case NPY_INT: {
            uint64_t sign = (uint64_t)1 << (8 * size - 1);
            int64_t v;
            if (size == 8) memcpy(&v, &bits, 8);
            else v = (int64_t)(bits ^ sign) - (int64_t)sign;   /* sign extension */
            store_number(h->dtype, dst, i, 0, v);
            break;
        }
        case NPY_UINT:
            if (bits > (uint64_t)INT64_MAX)
                return npy_error(w, MT_ERR_FORMAT, "element %" PRId64 " is %" PRIu64 ", which does not fit int64 "
                                 "(mytorch reads '%s' as int64)", i, bits, h->descr);
            store_number(h->dtype, dst, i, 0, (int64_t)bits);
            break;
        case NPY_BOOL:
            store_number(h->dtype, dst, i, 0, bits != 0);
            break;
        default:
            break;
        }
    }
    return MT_OK;
}

/* One string element at e as UTF-8 into out (NULL: only measure). Returns
   its length in bytes, or -1 with *problem set. Trailing NULs are padding. */
static int64_t string_element(const npy_header *h, const unsigned char *e, char *out, const char **problem)
{
    uint64_t count = h->itemsize / h->unit;
    while (count > 0 && load_uint(e + (count - 1) * h->unit, (size_t)h->unit, h->big_endian) == 0) count--;
    if (h->kind == NPY_UNICODE) {
        int64_t len = 0;
        for (uint64_t k = 0; k < count; k++) {
            uint32_t cp = (uint32_t)load_uint(e + 4 * k, 4, h->big_endian);
            if (cp == 0) { *problem = "has a NUL character inside it"; return -1; }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                *problem = "has a code unit that is no Unicode scalar value";
                return -1;
            }
            if (out) mt_utf8_encode(cp, out + len);
            len += utf8_length(cp);
        }
        return len;
    }
    const unsigned char *end = e + count;
    for (const unsigned char *p = e; p < end;) {
        if (*p == 0) { *problem = "has a NUL byte inside it"; return -1; }
        int n = utf8_decode(p, end, NULL);
        if (n == 0) { *problem = "is not valid UTF-8"; return -1; }
        p += n;
    }
    if (out && count) memcpy(out, e, (size_t)count);
    return (int64_t)count;
}

/* A string file's elements (raw) into *out (one allocation). */
static mt_status npy_decode_strings(const npy_where *w, const npy_header *h, const unsigned char *raw,
                                    mt_string_array *out)
{
    /* pass 1: check every element and measure the text */
    order_walk walk;
    walk_start(&walk, h);
    uint64_t text = 0;
    const char *problem = NULL;
    for (uint64_t i = 0; i < h->numel; i++) {
        int64_t len = string_element(h, raw + (size_t)walk_next(&walk) * h->itemsize, NULL, &problem);
        if (len < 0) return npy_error(w, MT_ERR_FORMAT, "string %" PRIu64 " (in C order) %s", i, problem);
        text += (uint64_t)len + 1;
    }
    if (h->numel > SIZE_MAX / sizeof(char *) || text > SIZE_MAX - h->numel * sizeof(char *))
        return npy_error(w, MT_ERR_MEMORY, "out of memory for %" PRIu64 " strings", h->numel);
    size_t pointers = (size_t)h->numel * sizeof(char *);
    char **strings = malloc(pointers + (size_t)text + 1);
    if (!strings) return npy_error(w, MT_ERR_MEMORY, "out of memory for %" PRIu64 " strings", h->numel);

    /* pass 2: fill */
    char *t = (char *)strings + pointers;
    walk_start(&walk, h);
    for (uint64_t i = 0; i < h->numel; i++) {
        int64_t len = string_element(h, raw + (size_t)walk_next(&walk) * h->itemsize, t, &problem);
        strings[i] = t;
        t[len] = '\0';
        t += len + 1;
    }
    memset(out, 0, sizeof *out);
    out->ndim = h->ndim;
    for (int d = 0; d < h->ndim; d++) out->shape[d] = h->shape[d];
    out->n = (int64_t)h->numel;
    out->strings = strings;
    return MT_OK;
}

static mt_status wrong_kind(const npy_where *w, const npy_header *h, bool want_strings)
{
    if (want_strings)
        return npy_error(w, MT_ERR_DTYPE, "holds numbers (descr '%s'), not strings: read it with %s", h->descr,
                         w->member ? "mt_npz_load" : "mt_npy_load");
    return npy_error(w, MT_ERR_DTYPE, "holds strings (descr '%s'): read it with %s", h->descr,
                     w->member ? "mt_npz_load_strings" : "mt_npy_load_strings");
}

/* A new contiguous CPU tensor for h (in the open scope, or owned). */
static mt_tensor *npy_new_tensor(const npy_where *w, const npy_header *h)
{
    mt_tensor *t = mt_new_tensor(mt_cpu(), h->dtype, h->ndim, h->shape);
    if (!t) {
        char shape[160];
        shape_repr(h->ndim, h->shape, shape, sizeof shape);
        npy_error(w, mt_last_status(), "cannot allocate the %s tensor of shape %s: %s", mt_dtype_name(h->dtype),
                  shape, mt_last_error());
    }
    return t;
}

/* ================================================================ loading from memory */

/* Parses a whole .npy image of size bytes; *data receives its elements. */
static mt_status npy_parse_buffer(const npy_where *w, const unsigned char *buf, size_t size, npy_header *h,
                                  const unsigned char **data)
{
    static const unsigned char none[1] = { 0 };
    memset(h, 0, sizeof *h);
    if (!buf && size) return npy_error(w, MT_ERR_ARGUMENT, "the buffer is NULL");
    if (!buf) buf = none;
    mt_status st = npy_parse_prefix(w, buf, size, h);
    if (st == MT_OK) st = npy_parse_header(w, buf + h->header_start, h);
    if (st == MT_OK) st = npy_check_data_size(w, h, size);
    if (st == MT_OK) *data = buf + h->data_offset;
    return st;
}

static mt_tensor *npy_load_memory(const npy_where *w, const unsigned char *buf, size_t size)
{
    npy_header h;
    const unsigned char *data;
    if (npy_parse_buffer(w, buf, size, &h, &data) != MT_OK) return NULL;
    if (is_string_kind(&h)) {
        wrong_kind(w, &h, false);
        return NULL;
    }
    mt_tensor *t = npy_new_tensor(w, &h);
    if (!t) return NULL;
    if (npy_decode_numbers(w, &h, data, mt_ptr(t)) != MT_OK) {
        mt_free(t);
        return NULL;
    }
    return t;
}

static mt_status npy_load_strings_memory(const npy_where *w, const unsigned char *buf, size_t size,
                                         mt_string_array *out)
{
    npy_header h;
    const unsigned char *data;
    mt_status st = npy_parse_buffer(w, buf, size, &h, &data);
    if (st != MT_OK) return st;
    if (!is_string_kind(&h)) return wrong_kind(w, &h, true);
    return npy_decode_strings(w, &h, data, out);
}

mt_tensor *mt_npy_load_buffer(const void *data, size_t size, const char *name)
{
    npy_where w = { "npy", name ? name : "<memory>", NULL };
    return npy_load_memory(&w, data, size);
}

mt_status mt_npy_load_strings_buffer(const void *data, size_t size, const char *name, mt_string_array *out)
{
    npy_where w = { "npy", name ? name : "<memory>", NULL };
    if (!out) return npy_error(&w, MT_ERR_ARGUMENT, "the output string array is NULL");
    return npy_load_strings_memory(&w, data, size, out);
}

void mt_string_array_free(mt_string_array *a)
{
    if (!a) return;
    free(a->strings);
    memset(a, 0, sizeof *a);
}

/* ================================================================ loading from a file */

static bool read_exact(FILE *f, void *dst, uint64_t n)
{
    return n == 0 || fread(dst, 1, (size_t)n, f) == (size_t)n;
}

static mt_status read_failed(const npy_where *w, FILE *f, const char *what)
{
    int err = ferror(f) ? errno : 0;
    return npy_error(w, MT_ERR_IO, "cannot read %s: %s", what,
                     err ? strerror(err) : "unexpected end of file (was it truncated while being read?)");
}

/* Opens w->path and reads and checks its prefix and header: on success *f_out
   is open, positioned at the data, and h is filled in. */
static mt_status npy_open_file(const npy_where *w, FILE **f_out, npy_header *h)
{
    memset(h, 0, sizeof *h);
    *f_out = NULL;
    FILE *f = fopen(w->path, "rb");
    if (!f) return npy_error(w, MT_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int err = errno;
        fclose(f);
        return npy_error(w, MT_ERR_IO, "cannot stat: %s", strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return npy_error(w, MT_ERR_IO, "not a regular file");
    }
    uint64_t size = (uint64_t)sb.st_size;

    unsigned char prefix[12] = { 0 };
    mt_status st = read_exact(f, prefix, size < sizeof prefix ? size : sizeof prefix)
                 ? npy_parse_prefix(w, prefix, size, h) : read_failed(w, f, "the prefix");
    if (st != MT_OK) {
        fclose(f);
        return st;
    }
    unsigned char *text = malloc(h->header_len ? (size_t)h->header_len : 1);
    if (!text) {
        fclose(f);
        return npy_error(w, MT_ERR_MEMORY, "out of memory for the header");
    }
    if (fseeko(f, (off_t)h->header_start, SEEK_SET) != 0 || !read_exact(f, text, h->header_len))
        st = read_failed(w, f, "the header");
    if (st == MT_OK) st = npy_parse_header(w, text, h);
    free(text);
    if (st == MT_OK) st = npy_check_data_size(w, h, size);
    if (st != MT_OK) {
        fclose(f);
        return st;
    }
    *f_out = f;
    return MT_OK;
}

/* The elements of an open file, into a malloc'd buffer *raw. */
static mt_status read_raw(const npy_where *w, FILE *f, const npy_header *h, unsigned char **raw)
{
    *raw = NULL;
    if (h->nbytes >= SIZE_MAX) return npy_error(w, MT_ERR_MEMORY, "out of memory for %" PRIu64 " bytes", h->nbytes);
    unsigned char *buf = malloc((size_t)h->nbytes + 1);
    if (!buf) return npy_error(w, MT_ERR_MEMORY, "out of memory for %" PRIu64 " bytes of data", h->nbytes);
    if (!read_exact(f, buf, h->nbytes)) {
        free(buf);
        return read_failed(w, f, "the data");
    }
    *raw = buf;
    return MT_OK;
}

mt_tensor *mt_npy_load(const char *path)
{
    if (!path) return MT_FAIL(MT_ERR_ARGUMENT, "npy: path is NULL");
    npy_where w = { "npy", path, NULL };
    FILE *f;
    npy_header h;
    if (npy_open_file(&w, &f, &h) != MT_OK) return NULL;
    if (is_string_kind(&h)) {
        wrong_kind(&w, &h, false);
        fclose(f);
        return NULL;
    }
    mt_tensor *t = npy_new_tensor(&w, &h);
    if (!t) {
        fclose(f);
        return NULL;
    }
    mt_status st;
    if (npy_is_direct(&h)) {   /* straight into the tensor's storage */
        st = read_exact(f, mt_ptr(t), h.nbytes) ? MT_OK : read_failed(&w, f, "the data");
        if (st == MT_OK) npy_fix_in_place(&h, mt_ptr(t));
    } else {
        unsigned char *raw;
        st = read_raw(&w, f, &h, &raw);
        if (st == MT_OK) st = npy_decode_numbers(&w, &h, raw, mt_ptr(t));
        free(raw);
    }
    fclose(f);
    if (st != MT_OK) {
        mt_free(t);
        return NULL;
    }
    return t;
}

mt_status mt_npy_load_strings(const char *path, mt_string_array *out)
{
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "npy: path is NULL");
    npy_where w = { "npy", path, NULL };
    if (!out) return npy_error(&w, MT_ERR_ARGUMENT, "the output string array is NULL");
    FILE *f;
    npy_header h;
    mt_status st = npy_open_file(&w, &f, &h);
    if (st != MT_OK) return st;
    if (!is_string_kind(&h)) {
        st = wrong_kind(&w, &h, true);
        fclose(f);
        return st;
    }
    unsigned char *raw;
    st = read_raw(&w, f, &h, &raw);
    fclose(f);
    if (st == MT_OK) st = npy_decode_strings(&w, &h, raw, out);
    free(raw);
    return st;
}

/* ================================================================ .npz archives */

struct mt_npz {
    char *path;
    zip_t *zip;
    int n;
    char **names;            /* without ".npy" */
    zip_uint64_t *entries;   /* each name's entry in the archive */
};

static mt_status zip_failed(const npy_where *w, mt_status code, const char *what, zip_error_t *err)
{
    return npy_error(w, code, "%s: %s", what, zip_error_strerror(err));
}

void mt_npz_close(mt_npz *npz)
{
    if (!npz) return;
    if (npz->zip) zip_discard(npz->zip);
    for (int i = 0; i < npz->n; i++) free(npz->names[i]);
    free(npz->names);
    free(npz->entries);
    free(npz->path);
    free(npz);
}

mt_status mt_npz_open(const char *path, mt_npz **out)
{
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "npz: path is NULL");
    npy_where w = { "npz", path, NULL };
    if (!out) return npy_error(&w, MT_ERR_ARGUMENT, "the output pointer is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0) return npy_error(&w, MT_ERR_IO, "cannot open: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return npy_error(&w, MT_ERR_IO, "not a regular file");

    int code = 0;
    zip_t *zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!zip) {
        zip_error_t err;
        zip_error_init_with_code(&err, code);
        mt_status st = npy_error(&w, code == ZIP_ER_OPEN || code == ZIP_ER_READ ? MT_ERR_IO : MT_ERR_FORMAT,
                                 "%s%s", code == ZIP_ER_NOZIP ? "not a .npz file: " : "", zip_error_strerror(&err));
        zip_error_fini(&err);
        return st;
    }
    mt_status st = MT_OK;
    mt_npz *npz = calloc(1, sizeof *npz);
    if (!npz) {
        zip_discard(zip);
        return npy_error(&w, MT_ERR_MEMORY, "out of memory");
    }
    npz->zip = zip;
    zip_int64_t count = zip_get_num_entries(zip, 0);
    if (count < 0 || count > INT32_MAX) {
        st = npy_error(&w, MT_ERR_FORMAT, "bad number of members");
        goto fail;
    }
    npz->path = strdup(path);
    npz->names = calloc((size_t)count + 1, sizeof *npz->names);
    npz->entries = calloc((size_t)count + 1, sizeof *npz->entries);
    if (!npz->path || !npz->names || !npz->entries) {
        st = npy_error(&w, MT_ERR_MEMORY, "out of memory");
        goto fail;
    }
    for (zip_int64_t i = 0; i < count; i++) {
        const char *name = zip_get_name(zip, (zip_uint64_t)i, ZIP_FL_ENC_GUESS);
        if (!name) {
            st = zip_failed(&w, MT_ERR_FORMAT, "cannot read a member's name", zip_get_error(zip));
            goto fail;
        }
        size_t len = strlen(name);
        if (len == 0 || name[len - 1] == '/') continue;   /* a folder */
        if (len > 4 && strcmp(name + len - 4, ".npy") == 0) len -= 4;
        char *copy = strndup(name, len);
        if (!copy) {
            st = npy_error(&w, MT_ERR_MEMORY, "out of memory");
            goto fail;
        }
        npz->names[npz->n] = copy;
        npz->entries[npz->n] = (zip_uint64_t)i;
        npz->n++;
    }
    *out = npz;
    return MT_OK;
fail:
    mt_npz_close(npz);
    return st;
}

const char *const *mt_npz_names(const mt_npz *npz, int *n)
{
    if (n) *n = npz ? npz->n : 0;
    return npz ? (const char *const *)npz->names : NULL;
}

/* Finds name ("x" for member "x.npy", or a member's full name) and reads the
   member into a malloc'd buffer. *member receives its full name (owned by
   the archive). */
static mt_status npz_read_member(mt_npz *npz, const char *name, const char **member, unsigned char **buf,
                                 size_t *size)
{
    npy_where w = { "npz", npz->path, NULL };
    *buf = NULL;
    int k = 0;
    while (k < npz->n && strcmp(npz->names[k], name) != 0) k++;
    zip_int64_t index = k < npz->n ? (zip_int64_t)npz->entries[k] : zip_name_locate(npz->zip, name, 0);
    if (index < 0) {
        char list[256] = "none";
        size_t used = 0;
        for (int i = 0; i < npz->n && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s'%.40s'", i ? ", " : "", npz->names[i]);
        return npy_error(&w, MT_ERR_ARGUMENT, "no array named '%.96s' (it has %d: %s)", name, npz->n, list);
    }
    *member = zip_get_name(npz->zip, (zip_uint64_t)index, ZIP_FL_ENC_GUESS);
    if (!*member) *member = name;
    w.member = *member;

    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(npz->zip, (zip_uint64_t)index, 0, &sb) != 0)
        return zip_failed(&w, MT_ERR_FORMAT, "cannot read its entry", zip_get_error(npz->zip));
    if (!(sb.valid & ZIP_STAT_SIZE)) return npy_error(&w, MT_ERR_FORMAT, "its size is unknown");
    if (sb.size >= SIZE_MAX)
        return npy_error(&w, MT_ERR_MEMORY, "out of memory for its %" PRIu64 " bytes", (uint64_t)sb.size);
    /* The buffer grows as the bytes arrive (from 1 MiB), so that an entry
       claiming more than the archive holds costs no large allocation; one
       byte more than the entry says catches a member longer than that. */
    uint64_t want = (uint64_t)sb.size + 1, cap = want < NPZ_FIRST_CHUNK ? want : NPZ_FIRST_CHUNK;
    unsigned char *data = malloc((size_t)cap);
    if (!data) return npy_error(&w, MT_ERR_MEMORY, "out of memory for its %" PRIu64 " bytes", (uint64_t)sb.size);
    zip_file_t *zf = zip_fopen_index(npz->zip, (zip_uint64_t)index, 0);
    if (!zf) {
        free(data);
        return zip_failed(&w, MT_ERR_FORMAT, "cannot open it", zip_get_error(npz->zip));
    }
    /* Read until libzip reports the end: only then has it checked the CRC. */
    uint64_t got = 0;
    mt_status st = MT_OK;
    for (;;) {
        if (got == cap && cap < want) {
            uint64_t grown = cap > want / 2 ? want : 2 * cap;
            unsigned char *bigger = realloc(data, (size_t)grown);
            if (!bigger) {
                st = npy_error(&w, MT_ERR_MEMORY, "out of memory for its %" PRIu64 " bytes", (uint64_t)sb.size);
                break;
            }
            data = bigger;
            cap = grown;
        }
        zip_int64_t r = zip_fread(zf, data + got, cap - got);
        if (r < 0) {
            st = zip_failed(&w, MT_ERR_FORMAT, "cannot read it", zip_file_get_error(zf));
            break;
        }
        if (r == 0) break;
        got += (uint64_t)r;
        if (got > sb.size) {
            st = npy_error(&w, MT_ERR_FORMAT, "it is longer than its entry says (%" PRIu64 " bytes)",
                           (uint64_t)sb.size);
            break;
        }
    }
    if (st == MT_OK && got != sb.size)
        st = npy_error(&w, MT_ERR_FORMAT, "truncated: it has %" PRIu64 " bytes but its entry says %" PRIu64, got,
                       (uint64_t)sb.size);
    zip_fclose(zf);
    if (st != MT_OK) {
        free(data);
        return st;
    }
    *buf = data;
    *size = (size_t)sb.size;
    return MT_OK;
}

mt_tensor *mt_npz_load(mt_npz *npz, const char *name)
{
    if (!npz || !name) return MT_FAIL(MT_ERR_ARGUMENT, "npz: load: %s is NULL", npz ? "the name" : "the archive");
    const char *member;
    unsigned char *buf;
    size_t size;
    if (npz_read_member(npz, name, &member, &buf, &size) != MT_OK) return NULL;
    npy_where w = { "npz", npz->path, member };
    mt_tensor *t = npy_load_memory(&w, buf, size);
    free(buf);
    return t;
}

mt_status mt_npz_load_strings(mt_npz *npz, const char *name, mt_string_array *out)
{
    if (!npz || !name || !out)
        return mt_set_error(MT_ERR_ARGUMENT, "npz: load_strings: %s is NULL",
                            !npz ? "the archive" : !name ? "the name" : "the output string array");
    const char *member;
    unsigned char *buf;
    size_t size;
    mt_status st = npz_read_member(npz, name, &member, &buf, &size);
    if (st != MT_OK) return st;
    npy_where w = { "npz", npz->path, member };
    st = npy_load_strings_memory(&w, buf, size, out);
    free(buf);
    return st;
}

/* ================================================================ writing */

/* The descr np.save writes for each mytorch dtype (little-endian). */
static const char *const npy_descr_of[MT_DTYPE_COUNT] = {
    [MT_F32] = "<f4", [MT_F64] = "<f8", [MT_I32] = "<i4", [MT_I64] = "<i8", [MT_U8] = "|u1", [MT_BOOL] = "|b1",
};

/*
 * The prefix and header np.save writes (numpy.lib.format._write_array_header):
 * "{'descr': D, 'fortran_order': False, 'shape': S, }", spaces for a growing
 * first axis (21 minus the digits of shape[0]; none for 0-d), spaces so that
 * the data starts at a multiple of 64 (at least one), then '\n'. Version 1.0
 * when the header length fits 16 bits, else 2.0. Writes into out (NULL: only
 * measures) and returns the length; 0 when the header cannot be made.
 */
static size_t npy_header_bytes(const char *descr, int ndim, const int64_t *shape, unsigned char *out)
{
    char text[512], shape_text[256];
    shape_repr(ndim, shape, shape_text, sizeof shape_text);
    int len = snprintf(text, sizeof text, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape_text);
    if (len < 0 || (size_t)len + NPY_GROWTH_AXIS_MAX_DIGITS >= sizeof text) return 0;
    if (ndim > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%" PRId64, shape[0]);
        for (int i = digits; i < NPY_GROWTH_AXIS_MAX_DIGITS; i++) text[len++] = ' ';
    }
    size_t hlen = (size_t)len + 1;   /* with the final '\n' */
    int major = 1;
    size_t prefix = 10;
    size_t pad = NPY_ALIGN - (prefix + hlen) % NPY_ALIGN;
    if (hlen + pad > 0xFFFF) {
        major = 2;
        prefix = 12;
        pad = NPY_ALIGN - (prefix + hlen) % NPY_ALIGN;
    }
    size_t total = prefix + hlen + pad;
    if (!out) return total;
    memcpy(out, npy_magic, 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    store_le(out + 8, hlen + pad, prefix - 8);
    memcpy(out + prefix, text, (size_t)len);
    memset(out + prefix + len, ' ', pad);
    out[total - 1] = '\n';
    return total;
}

/* The .npy image of t (header, then little-endian C-order elements) in a
   malloc'd buffer. */
static mt_status npy_tensor_image(const npy_where *w, const mt_tensor *t, unsigned char **image, size_t *size)
{
    *image = NULL;
    if (!t) return npy_error(w, MT_ERR_ARGUMENT, "the tensor is NULL");
    if ((unsigned)t->dtype >= MT_DTYPE_COUNT)
        return npy_error(w, MT_ERR_DTYPE, "the tensor has an invalid dtype %d", (int)t->dtype);
    size_t hsize = npy_header_bytes(npy_descr_of[t->dtype], t->ndim, t->shape, NULL);
    if (hsize == 0) return npy_error(w, MT_ERR_ARGUMENT, "the header would be too long");
    uint64_t numel = (uint64_t)mt_numel(t), es = mt_dtype_size(t->dtype);
    if (numel > (SIZE_MAX - hsize) / es) return npy_error(w, MT_ERR_MEMORY, "out of memory for %" PRIu64 " elements", numel);
    size_t nbytes = (size_t)(numel * es);
    unsigned char *buf = malloc(hsize + nbytes);
    if (!buf) return npy_error(w, MT_ERR_MEMORY, "out of memory for %zu bytes", hsize + nbytes);
    npy_header_bytes(npy_descr_of[t->dtype], t->ndim, t->shape, buf);
    if (nbytes && mt_to_data(t, t->dtype, buf + hsize) != MT_OK) {
        free(buf);
        return npy_error(w, mt_last_status(), "cannot copy the tensor: %s", mt_last_error());
    }
    if (!mt_host_is_little_endian() && es > 1) mt_swap_bytes(buf + hsize, (size_t)es, (size_t)numel);
    *image = buf;
    *size = hsize + nbytes;
    return MT_OK;
}

/* Flushes the finished temporary file tmp to disk (unless sync is false)
   and renames it over w->path; removes tmp on failure. */
static mt_status commit_temp(const npy_where *w, const char *tmp, bool sync)
{
    mt_status st = MT_OK;
    if (sync) {
        int fd = open(tmp, O_RDWR);
        if (fd < 0 || fsync(fd) != 0) st = npy_error(w, MT_ERR_IO, "cannot flush '%s' to disk: %s", tmp, strerror(errno));
        if (fd >= 0 && close(fd) != 0 && st == MT_OK)
            st = npy_error(w, MT_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    }
    if (st == MT_OK && rename(tmp, w->path) != 0)
        st = npy_error(w, MT_ERR_IO, "cannot rename '%s' to it: %s", tmp, strerror(errno));
    if (st != MT_OK) {
        unlink(tmp);
        return st;
    }
    if (sync) mt_sync_parent_folder(w->path);
    return MT_OK;
}

/* Writes size bytes to w->path through a temporary file. On failure the
   path is untouched and no temporary file is left. */
static mt_status write_atomic(const npy_where *w, const void *data, size_t size, bool sync)
{
    /* a killed writer's leftovers (a bulk no-sync writer cleans its folder once instead) */
    if (sync) mt_remove_stale_temps_of(w->path);
    char *tmp = mt_temp_name(w->path);
    if (!tmp) return npy_error(w, MT_ERR_MEMORY, "out of memory");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        mt_status st = npy_error(w, MT_ERR_IO, "cannot create the temporary file '%s': %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    mt_status st = MT_OK;
    if ((size && fwrite(data, 1, size, f) != size) || fflush(f) != 0)
        st = npy_error(w, MT_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    if (fclose(f) != 0 && st == MT_OK) st = npy_error(w, MT_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (st == MT_OK) st = commit_temp(w, tmp, sync);
    else unlink(tmp);
    free(tmp);
    return st;
}

mt_status mt_npy_save(const char *path, const mt_tensor *t) { return mt_npy_save_with(path, t, NULL); }

mt_status mt_npy_save_with(const char *path, const mt_tensor *t, const mt_npy_save_opts *opts)
{
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "npy: path is NULL");
    npy_where w = { "npy", path, NULL };
    unsigned char *image;
    size_t size;
    mt_status st = npy_tensor_image(&w, t, &image, &size);
    if (st != MT_OK) return st;
    st = write_atomic(&w, image, size, !(opts && opts->no_sync));
    free(image);
    return st;
}

mt_status mt_npy_save_strings(const char *path, int64_t n, const char *const *strings)
{
    return mt_npy_save_strings_with(path, n, strings, NULL);
}

mt_status mt_npy_save_strings_with(const char *path, int64_t n, const char *const *strings,
                                   const mt_npy_save_opts *opts)
{
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "npy: path is NULL");
    npy_where w = { "npy", path, NULL };
    if (n < 0 || (n > 0 && !strings))
        return npy_error(&w, MT_ERR_ARGUMENT, "invalid strings (n = %" PRId64 ", strings = %p)", n,
                         (const void *)strings);
    /* the longest string, in code points */
    uint64_t longest = 1;   /* np.array(['']) is '<U1' */
    for (int64_t i = 0; i < n; i++) {
        if (!strings[i]) return npy_error(&w, MT_ERR_ARGUMENT, "string %" PRId64 " is NULL", i);
        int64_t count = utf8_count(strings[i]);
        if (count < 0) return npy_error(&w, MT_ERR_ARGUMENT, "string %" PRId64 " is not valid UTF-8", i);
        if ((uint64_t)count > longest) longest = (uint64_t)count;
    }
    if (longest > NPY_MAX_STRING_CHARS) return npy_error(&w, MT_ERR_ARGUMENT, "a string is too long");
    char descr[32];
    snprintf(descr, sizeof descr, "<U%" PRIu64, longest);
    int64_t shape[1] = { n };
    size_t hsize = npy_header_bytes(descr, 1, shape, NULL);
    uint64_t itemsize = 4 * longest;
    if ((uint64_t)n > (SIZE_MAX - hsize) / itemsize) return npy_error(&w, MT_ERR_MEMORY, "out of memory");
    size_t size = hsize + (size_t)((uint64_t)n * itemsize);
    unsigned char *image = calloc(size, 1);
    if (!image) return npy_error(&w, MT_ERR_MEMORY, "out of memory for %zu bytes", size);
    npy_header_bytes(descr, 1, shape, image);
    for (int64_t i = 0; i < n; i++) {
        unsigned char *e = image + hsize + (size_t)i * itemsize;
        const unsigned char *p = (const unsigned char *)strings[i], *end = p + strlen(strings[i]);
        uint32_t cp = 0;
        for (int len; p < end; p += len, e += 4) {
            len = utf8_decode(p, end, &cp);
            store_le(e, cp, 4);
        }
    }
    mt_status st = write_atomic(&w, image, size, !(opts && opts->no_sync));
    free(image);
    return st;
}

/* An empty zip archive: only the end of central directory record. */
static const unsigned char empty_zip[22] = { 'P', 'K', 5, 6 };

mt_status mt_npz_save(const char *path, mt_tensor_list tensors, bool compressed)
{
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "npz: path is NULL");
    npy_where w = { "npz", path, NULL };
    int n = tensors.n;
    if (n < 0 || (n > 0 && !tensors.items))
        return npy_error(&w, MT_ERR_ARGUMENT, "invalid tensor list (n = %d, items = %p)", n, (void *)tensors.items);
    for (int i = 0; i < n; i++) {
        const char *name = tensors.items[i].name;
        if (!name || !*name) return npy_error(&w, MT_ERR_ARGUMENT, "tensor %d has %s name", i, name ? "an empty" : "no");
        if (utf8_count(name) < 0) return npy_error(&w, MT_ERR_ARGUMENT, "tensor name '%.96s' is not valid UTF-8", name);
        for (int j = 0; j < i; j++)
            if (strcmp(tensors.items[j].name, name) == 0)
                return npy_error(&w, MT_ERR_ARGUMENT, "tensor name '%.96s' appears twice", name);
        if (!tensors.items[i].tensor) return npy_error(&w, MT_ERR_ARGUMENT, "tensor '%.96s' is NULL", name);
    }
    if (n == 0) return write_atomic(&w, empty_zip, sizeof empty_zip, true);   /* libzip writes no empty archive */

    mt_remove_stale_temps_of(path);
    char *tmp = mt_temp_name(path);
    if (!tmp) return npy_error(&w, MT_ERR_MEMORY, "out of memory");
    int code = 0;
    zip_t *zip = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!zip) {
        zip_error_t err;
        zip_error_init_with_code(&err, code);
        mt_status st = npy_error(&w, MT_ERR_IO, "cannot create the temporary file '%s': %s", tmp,
                                 zip_error_strerror(&err));
        zip_error_fini(&err);
        free(tmp);
        return st;
    }
    mt_status st = MT_OK;
    for (int i = 0; i < n && st == MT_OK; i++) {
        const mt_named_tensor *it = &tensors.items[i];
        size_t nlen = strlen(it->name);
        char *member = malloc(nlen + 5);
        if (!member) {
            st = npy_error(&w, MT_ERR_MEMORY, "out of memory");
            break;
        }
        memcpy(member, it->name, nlen);
        memcpy(member + nlen, ".npy", 5);
        npy_where mw = { "npz", path, member };
        unsigned char *image;
        size_t size;
        st = npy_tensor_image(&mw, it->tensor, &image, &size);
        zip_source_t *src = st == MT_OK ? zip_source_buffer(zip, image, size, 1) : NULL;   /* frees image */
        if (st == MT_OK && !src) {
            free(image);
            st = zip_failed(&mw, MT_ERR_MEMORY, "cannot add it", zip_get_error(zip));
        }
        zip_int64_t index = -1;
        if (st == MT_OK && (index = zip_file_add(zip, member, src, ZIP_FL_ENC_UTF_8)) < 0) {
            zip_source_free(src);
            st = zip_failed(&mw, MT_ERR_IO, "cannot add it", zip_get_error(zip));
        }
        if (st == MT_OK &&
            zip_set_file_compression(zip, (zip_uint64_t)index, compressed ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0)
            st = zip_failed(&mw, MT_ERR_IO, "cannot set its compression", zip_get_error(zip));
        free(member);
    }
    if (st == MT_OK) {
        if (zip_close(zip) == 0) zip = NULL;   /* libzip wrote tmp (through a temporary of its own) */
        else st = zip_failed(&w, MT_ERR_IO, "cannot write the archive", zip_get_error(zip));
    }
    if (zip) zip_discard(zip);
    if (st == MT_OK) st = commit_temp(&w, tmp, true);
    else unlink(tmp);
    free(tmp);
    return st;
}
