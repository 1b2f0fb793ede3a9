/*
 * safetensors.c - reading and writing tensors in the safetensors format.
 *
 * The format (https://github.com/huggingface/safetensors, "Format"):
 *
 *     bytes 0..7       N, the header length, a little-endian unsigned 64-bit integer
 *     bytes 8..8+N-1   the header: a UTF-8 JSON object
 *                        { "__metadata__": { "key": "value", ... },          (optional)
 *                          "<name>": { "dtype": "F32",
 *                                      "shape": [2, 3],
 *                                      "data_offsets": [begin, end] }, ... }
 *     bytes 8+N..      the data buffer; a tensor's bytes are [begin, end) of it,
 *                      row-major and little-endian
 *
 * A valid file's tensors tile the data buffer exactly: sorted by offset, each
 * begins where the previous one ends, the last ends at the end of the file,
 * and end - begin is exactly numel(shape) * sizeof(dtype).
 *
 * The file has three parts:
 *
 *   1. A small JSON reader (objects, arrays, strings with escapes, non-negative
 *      integers, and a skipper for values we do not use) that never reads past
 *      its buffer and reports the byte offset of the first error.
 *   2. The loader: header length, header JSON -> a table of entries, checks of
 *      that table against the file, then the tensor bytes.
 *   3. The writer: it produces exactly the bytes of the reference writer (the
 *      Python `safetensors` package), so files can be compared byte for byte:
 *      entries sorted by dtype (the reference's dtype order, descending) then by
 *      name, compact JSON escaped as serde_json escapes it, the header padded
 *      with spaces to a multiple of 8 bytes. The file is written to
 *      "<path>.tmp.<pid>", flushed, fsync'ed and renamed over <path>.
 *
 * Every error is reported as MT_ERR_IO (the file system) or MT_ERR_FORMAT (the
 * contents) with a message "safetensors: <path>: <problem>"; on error nothing
 * is allocated for the caller and an existing file is never half overwritten.
 */
#include "mytorch/serialize.h"
#include "engine/internal.h"
#include "engine/io/fileio.h"
#include "engine/io/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference reader's limit on the header length (100 MB). */
#define ST_MAX_HEADER ((uint64_t)100000000)
/* How deeply a value we skip (an unknown field) may nest. */
#define JSON_MAX_DEPTH 64

/* ================================================================ dtypes */

/* The safetensors names of mytorch's dtypes, and each one's position in the
   reference's dtype enumeration (BOOL < U8 < ... < I32 < U32 < F32 < F64 < I64
   < U64): the reference writer orders tensors by that position, descending. */
static const struct { const char *name; int rank; } st_dtypes[MT_DTYPE_COUNT] = {
    [MT_F32] = { "F32", 4 }, [MT_F64] = { "F64", 5 }, [MT_I32] = { "I32", 3 },
    [MT_I64] = { "I64", 6 }, [MT_U8] = { "U8", 2 },   [MT_BOOL] = { "BOOL", 1 },
};

/* safetensors dtypes that mytorch has no tensor type for. */
static const char *const st_foreign_dtypes[] = {
    "F16", "BF16", "I8", "I16", "U16", "U32", "U64", "C64",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", NULL,
};

/* ================================================================ UTF-8 */

/* Length (1-4) of the well-formed UTF-8 sequence at s (s < end), or 0 when it
   is not well formed: a stray continuation byte, a truncated sequence, an
   overlong encoding, a UTF-16 surrogate or a code point above U+10FFFF. */
static int utf8_sequence_length(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    int len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
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
    return len;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        int n = utf8_sequence_length(p, end);
        if (n == 0) return false;
        p += n;
    }
    return true;
}

/* ================================================================ a small JSON reader */

/*
 * The reader is a cursor over a byte buffer [begin, end). Each function
 * consumes one syntactic element and returns true, or records an error and
 * returns false. Only the first error is kept: later failures are the same
 * failure seen from further up. No function ever reads at or past `end`.
 *
 * The grammar (RFC 8259), restricted to what a safetensors header needs:
 *
 *     value   = object | array | string | number | "true" | "false" | "null"
 *     object  = "{" [ string ":" value *( "," string ":" value ) ] "}"
 *     array   = "[" [ value *( "," value ) ] "]"
 *     string  = '"' *( unescaped | "\" ( '"' | "\" | "/" | "b" | "f" | "n" | "r" | "t" | "u" 4HEXDIG ) ) '"'
 *     number  = [ "-" ] ( "0" | 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ( "e" | "E" ) [ "+" | "-" ] 1*DIGIT ]
 *
 * with whitespace (space, tab, LF, CR) allowed around every token. Values the
 * header uses are read into C values (strings, unsigned integers); any other
 * value (an unknown field) is checked and skipped.
 */
typedef struct json_reader {
    const unsigned char *begin, *p, *end;
    bool failed;
    char error[512];
} json_reader;

/* A syntax error at the cursor: "invalid JSON at byte K of the header: ...". */
__attribute__((format(printf, 2, 3)))
static bool json_fail(json_reader *r, const char *fmt, ...)
{
    if (r->failed) return false;
    r->failed = true;
    int n = snprintf(r->error, sizeof r->error, "invalid JSON at byte %td of the header: ", r->p - r->begin);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof r->error) vsnprintf(r->error + n, sizeof r->error - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* Well-formed JSON whose contents do not describe a valid file. */
__attribute__((format(printf, 2, 3)))
static bool header_fail(json_reader *r, const char *fmt, ...)
{
    if (r->failed) return false;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return false;
}

static void json_skip_ws(json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

/* The next byte after whitespace, or -1 at the end of the buffer. */
static int json_peek(json_reader *r)
{
    json_skip_ws(r);
    return r->p < r->end ? *r->p : -1;
}

/* Consumes c (after whitespace) if it is next. */
static bool json_accept(json_reader *r, char c)
{
    if (json_peek(r) != (unsigned char)c) return false;
    r->p++;
    return true;
}

static bool json_expect(json_reader *r, char c, const char *where)
{
    if (json_accept(r, c)) return true;
    if (r->p >= r->end) return json_fail(r, "expected '%c' %s, but the header ends", c, where);
    return json_fail(r, "expected '%c' %s", c, where);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape (the cursor is just after the 'u'). */
static bool json_hex4(json_reader *r, uint32_t *out)
{
    if (r->end - r->p < 4) return json_fail(r, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(r->p[i]);
        if (h < 0) return json_fail(r, "invalid hex digit in a \\u escape");
        v = (v << 4) | (uint32_t)h;
    }
    r->p += 4;
    *out = v;
    return true;
}

/*
 * Reads a string and returns it decoded as a NUL-terminated UTF-8 string in
 * *out (malloc'd; the caller frees it). Escapes are decoded, including UTF-16
 * surrogate pairs (\ud83d\ude00); raw bytes must be well-formed UTF-8 and raw
 * control characters (< 0x20) are rejected, as JSON requires. \u0000 is
 * rejected too: the string becomes a C string.
 */
static bool json_string(json_reader *r, char **out)
{
    *out = NULL;
    if (!json_expect(r, '"', "to start a string")) return false;

    /* Pass 1: find the closing quote. The decoded string is never longer than
       its source (every escape is at least as long as what it stands for). */
    const unsigned char *q = r->p;
    while (q < r->end && *q != '"') {
        if (*q == '\\' && r->end - q < 2) { q = r->end; break; }
        q += (*q == '\\') ? 2 : 1;
    }
    if (q >= r->end) return json_fail(r, "unterminated string");
    char *s = malloc((size_t)(q - r->p) + 1);
    if (!s) return header_fail(r, "out of memory reading the header");

    /* Pass 2: decode [r->p, q). */
    size_t n = 0;
    while (r->p < q) {
        unsigned char c = *r->p;
        if (c < 0x20) { free(s); return json_fail(r, "unescaped control character 0x%02x in a string", c); }
        if (c >= 0x80) {
            int len = utf8_sequence_length(r->p, q);
            if (len == 0) { free(s); return json_fail(r, "invalid UTF-8 in a string"); }
            memcpy(s + n, r->p, (size_t)len);
            n += (size_t)len;
            r->p += len;
            continue;
        }
        if (c != '\\') { s[n++] = (char)c; r->p++; continue; }

        r->p++;   /* the backslash; pass 1 guarantees a byte follows it */
        char e = (char)*r->p++;
        switch (e) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!json_hex4(r, &cp)) { free(s); return false; }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* a high surrogate must be followed by \u and a low surrogate */
                uint32_t lo;
                if (q - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') {
                    free(s);
                    return json_fail(r, "unpaired UTF-16 surrogate in a \\u escape");
                }
                r->p += 2;
                if (!json_hex4(r, &lo)) { free(s); return false; }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    free(s);
                    return json_fail(r, "unpaired UTF-16 surrogate in a \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(s);
                return json_fail(r, "unpaired UTF-16 surrogate in a \\u escape");
            } else if (cp == 0) {
                free(s);
                return json_fail(r, "\\u0000 (a NUL character) is not allowed in a string");
            }
            n += (size_t)mt_utf8_encode(cp, s + n);
            break;
        }
        default:
            r->p--;
            free(s);
            return json_fail(r, "invalid escape '\\%c' in a string", e >= 0x20 && e < 0x7F ? e : '?');
        }
    }
    s[n] = '\0';
    r->p = q + 1;   /* past the closing quote */
    *out = s;
    return true;
}

/* Reads a non-negative integer no larger than max: the only numbers a header
   holds (shapes and offsets). Fractions, exponents, signs and leading zeros
   are errors, as they are for the reference reader. */
static bool json_uint(json_reader *r, uint64_t max, uint64_t *out)
{
    int c = json_peek(r);
    if (c == '-') return json_fail(r, "expected a non-negative integer, got a negative number");
    if (c < '0' || c > '9') return json_fail(r, "expected a non-negative integer");
    if (c == '0' && r->end - r->p > 1 && r->p[1] >= '0' && r->p[1] <= '9')
        return json_fail(r, "leading zeros are not allowed in a number");
    uint64_t v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p - '0');
        if (v > (max - d) / 10) return json_fail(r, "integer too large (the limit is %" PRIu64 ")", max);
        v = v * 10 + d;
        r->p++;
    }
    if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
        return json_fail(r, "expected an integer, got a number with a fraction or exponent");
    *out = v;
    return true;
}

/*
 * Object members, one at a time. Usage:
 *
 *     bool first = true;
 *     char *key;
 *     if (!json_expect(r, '{', ...)) ...
 *     while (json_member(r, &first, &key)) { ...read the value...; free(key); }
 *     if (r->failed) ...
 *
 * json_member returns true with the cursor on the member's value, or false at
 * the closing '}' (consumed) or on an error.
 */
static bool json_member(json_reader *r, bool *first, char **key)
{
    *key = NULL;
    if (json_accept(r, '}')) return false;
    if (!*first && !json_expect(r, ',', "or '}' after an object member")) return false;
    *first = false;
    if (json_peek(r) != '"') return json_fail(r, "expected a string as object key");
    if (!json_string(r, key)) return false;
    if (!json_expect(r, ':', "after an object key")) { free(*key); *key = NULL; return false; }
    return true;
}

/* Array elements, the same way: true with the cursor on an element, false at
   the closing ']' (consumed) or on an error. */
static bool json_element(json_reader *r, bool *first)
{
    if (json_accept(r, ']')) return false;
    if (!*first && !json_expect(r, ',', "or ']' after an array element")) return false;
    *first = false;
    if (json_peek(r) < 0) return json_fail(r, "expected a value, but the header ends");
    return true;
}

/* Checks and skips a number of the full JSON grammar. */
static bool json_skip_number(json_reader *r)
{
    const unsigned char *p = r->p, *end = r->end;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') p++;
    else if (p < end && *p >= '1' && *p <= '9') while (p < end && *p >= '0' && *p <= '9') p++;
    else return json_fail(r, "invalid number");
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') { r->p = p; return json_fail(r, "invalid number: no digit after '.'"); }
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') { r->p = p; return json_fail(r, "invalid number: no digit in the exponent"); }
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    r->p = p;
    return true;
}

/* Checks and skips any value (used for fields the format does not define). */
static bool json_skip_value(json_reader *r, int depth)
{
    if (depth > JSON_MAX_DEPTH) return json_fail(r, "values nested more than %d deep", JSON_MAX_DEPTH);
    int c = json_peek(r);
    bool first = true;
    char *s;
    switch (c) {
    case -1: return json_fail(r, "expected a value, but the header ends");
    case '"':
        if (!json_string(r, &s)) return false;
        free(s);
        return true;
    case '{':
        r->p++;
        while (json_member(r, &first, &s)) {
            free(s);
            if (!json_skip_value(r, depth + 1)) return false;
        }
        return !r->failed;
    case '[':
        r->p++;
        while (json_element(r, &first))
            if (!json_skip_value(r, depth + 1)) return false;
        return !r->failed;
    case 't': case 'f': case 'n': {
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t len = strlen(word);
        if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0) return json_fail(r, "invalid literal");
        r->p += len;
        return true;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return json_skip_number(r);
        return json_fail(r, "unexpected character '%c'", c >= 0x20 && c < 0x7F ? c : '?');
    }
}

/* ================================================================ the header, as a table */

typedef struct st_entry {
    char *name;
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    uint64_t begin, end;     /* [begin, end) of the data buffer */
    uint64_t nbytes;         /* numel(shape) * sizeof(dtype), set by st_check_layout */
} st_entry;

typedef struct st_header {
    st_entry *entries;
    int n, cap;
    bool has_metadata;
    mt_safetensors_metadata meta;
} st_header;

static void st_header_free(st_header *h)
{
    for (int i = 0; i < h->n; i++) free(h->entries[i].name);
    free(h->entries);
    mt_safetensors_metadata_free(&h->meta);
    memset(h, 0, sizeof *h);
}

/* Quoting a name in a message: at most this many bytes of it. */
#define NAME_FMT "'%.96s'"

/* "__metadata__": { "key": "value", ... }, string values only. */
static bool st_parse_metadata(json_reader *r, st_header *h)
{
    if (h->has_metadata) return header_fail(r, "\"__metadata__\" appears twice");
    h->has_metadata = true;
    if (!json_expect(r, '{', "to start \"__metadata__\"")) return false;
    bool first = true;
    char *key;
    while (json_member(r, &first, &key)) {
        for (int i = 0; i < h->meta.n; i++)
            if (strcmp(h->meta.keys[i], key) == 0) {
                header_fail(r, "metadata key " NAME_FMT " appears twice", key);
                free(key);
                return false;
            }
        if (json_peek(r) != '"') {
            header_fail(r, "metadata value of " NAME_FMT " is not a string", key);
            free(key);
            return false;
        }
        char *value;
        if (!json_string(r, &value)) { free(key); return false; }
        if (h->meta.n == INT32_MAX) { free(key); free(value); return header_fail(r, "too many metadata entries"); }
        char **keys = realloc(h->meta.keys, (size_t)(h->meta.n + 1) * sizeof *keys);
        if (keys) h->meta.keys = keys;
        char **values = keys ? realloc(h->meta.values, (size_t)(h->meta.n + 1) * sizeof *values) : NULL;
        if (values) h->meta.values = values;
        if (!keys || !values) { free(key); free(value); return header_fail(r, "out of memory reading the header"); }
        h->meta.keys[h->meta.n] = key;
        h->meta.values[h->meta.n] = value;
        h->meta.n++;
    }
    return !r->failed;
}

static bool st_parse_dtype(json_reader *r, st_entry *e)
{
    char *s;
    if (json_peek(r) != '"') return header_fail(r, "tensor " NAME_FMT ": \"dtype\" is not a string", e->name);
    if (!json_string(r, &s)) return false;
    for (int d = 0; d < MT_DTYPE_COUNT; d++)
        if (strcmp(s, st_dtypes[d].name) == 0) { e->dtype = (mt_dtype)d; free(s); return true; }
    for (int i = 0; st_foreign_dtypes[i]; i++)
        if (strcmp(s, st_foreign_dtypes[i]) == 0) {
            header_fail(r, "tensor " NAME_FMT ": dtype %s is not supported by mytorch (it has F32, F64, I32, I64, U8, BOOL)",
                        e->name, s);
            free(s);
            return false;
        }
    header_fail(r, "tensor " NAME_FMT ": unknown dtype '%.32s'", e->name, s);
    free(s);
    return false;
}

static bool st_parse_shape(json_reader *r, st_entry *e)
{
    if (!json_expect(r, '[', "to start \"shape\"")) return false;
    bool first = true;
    e->ndim = 0;
    while (json_element(r, &first)) {
        if (e->ndim == MT_MAX_DIMS)
            return header_fail(r, "tensor " NAME_FMT ": more than %d dims (mytorch supports at most %d)", e->name,
                               MT_MAX_DIMS, MT_MAX_DIMS);
        uint64_t v;
        if (!json_uint(r, (uint64_t)INT64_MAX, &v)) return false;
        e->shape[e->ndim++] = (int64_t)v;
    }
    return !r->failed;
}

static bool st_parse_offsets(json_reader *r, st_entry *e)
{
    if (!json_expect(r, '[', "to start \"data_offsets\"")) return false;
    bool first = true;
    int n = 0;
    uint64_t v[2];
    while (json_element(r, &first)) {
        if (n == 2) return header_fail(r, "tensor " NAME_FMT ": \"data_offsets\" has more than 2 numbers", e->name);
        if (!json_uint(r, UINT64_MAX, &v[n])) return false;
        n++;
    }
    if (r->failed) return false;
    if (n != 2) return header_fail(r, "tensor " NAME_FMT ": \"data_offsets\" has %d numbers, expected [begin, end]", e->name, n);
    e->begin = v[0];
    e->end = v[1];
    return true;
}

/* { "dtype": ..., "shape": [...], "data_offsets": [b, e] } in any order;
   other fields are skipped, as the reference reader skips them. */
static bool st_parse_tensor(json_reader *r, st_entry *e)
{
    if (json_peek(r) != '{') return header_fail(r, "tensor " NAME_FMT ": expected an object {dtype, shape, data_offsets}", e->name);
    r->p++;
    bool first = true, seen[3] = { false, false, false };
    static const char *const fields[3] = { "dtype", "shape", "data_offsets" };
    char *key;
    while (json_member(r, &first, &key)) {
        int f = 0;
        while (f < 3 && strcmp(key, fields[f]) != 0) f++;
        if (f < 3 && seen[f]) {
            header_fail(r, "tensor " NAME_FMT ": \"%s\" appears twice", e->name, fields[f]);
            free(key);
            return false;
        }
        free(key);
        bool ok = f == 0 ? st_parse_dtype(r, e)
                : f == 1 ? st_parse_shape(r, e)
                : f == 2 ? st_parse_offsets(r, e)
                : json_skip_value(r, 1);
        if (!ok) return false;
        if (f < 3) seen[f] = true;
    }
    if (r->failed) return false;
    for (int f = 0; f < 3; f++)
        if (!seen[f]) return header_fail(r, "tensor " NAME_FMT ": \"%s\" is missing", e->name, fields[f]);
    return true;
}

/* The whole header: one object of tensors and, optionally, "__metadata__". */
static bool st_parse_header(json_reader *r, st_header *h)
{
    if (json_peek(r) != '{') return json_fail(r, "the header is not a JSON object (it must start with '{')");
    r->p++;
    bool first = true;
    char *key;
    while (json_member(r, &first, &key)) {
        if (strcmp(key, "__metadata__") == 0) {
            free(key);
            if (!st_parse_metadata(r, h)) return false;
            continue;
        }
        if (h->n == h->cap) {
            int cap = h->cap ? 2 * h->cap : 16;
            st_entry *grown = realloc(h->entries, (size_t)cap * sizeof *grown);
            if (!grown) { free(key); return header_fail(r, "out of memory reading the header"); }
            h->entries = grown;
            h->cap = cap;
        }
        st_entry *e = &h->entries[h->n++];
        memset(e, 0, sizeof *e);
        e->name = key;   /* owned by the table from here on */
        if (!st_parse_tensor(r, e)) return false;
    }
    if (r->failed) return false;
    json_skip_ws(r);
    if (r->p != r->end) return json_fail(r, "unexpected bytes after the header object");
    return true;
}

/* ================================================================ checking the table against the file */

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static int cmp_entry_offset(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static void shape_string(const st_entry *e, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < e->ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? ", " : "", e->shape[d]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/*
 * The checks of the reference reader: names are unique, each tensor's byte
 * count is numel * sizeof(dtype), every range lies inside the data buffer, and
 * the ranges tile the buffer with no gap and no overlap. On success, *order
 * (malloc'd) lists the entries by offset, the order to read them in.
 */
static bool st_check_layout(json_reader *r, st_header *h, uint64_t data_size, st_entry ***order)
{
    *order = NULL;
    st_entry **by = malloc((size_t)(h->n ? h->n : 1) * sizeof *by);
    if (!by) return header_fail(r, "out of memory checking the header");
    for (int i = 0; i < h->n; i++) by[i] = &h->entries[i];

    /* unique names */
    qsort(by, (size_t)h->n, sizeof *by, cmp_entry_name);
    for (int i = 1; i < h->n; i++)
        if (strcmp(by[i - 1]->name, by[i]->name) == 0) {
            header_fail(r, "tensor name " NAME_FMT " appears twice", by[i]->name);
            goto fail;
        }

    /* each range has the size its dtype and shape need, and lies in the buffer */
    for (int i = 0; i < h->n; i++) {
        st_entry *e = &h->entries[i];
        char shape[160], what[128];
        /* checked as for any tensor: a 0 dim does not excuse the others (the strides are their product) */
        snprintf(what, sizeof what, "tensor " NAME_FMT, e->name);
        uint64_t es = mt_dtype_size(e->dtype);
        int64_t numel = mt_shape_check(what, e->ndim, e->shape, es);
        if (numel < 0) {
            header_fail(r, "%s", mt_last_error());
            goto fail;
        }
        e->nbytes = (uint64_t)numel * es;
        if (e->end < e->begin) {
            header_fail(r, "tensor " NAME_FMT ": data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                        e->name, e->begin, e->end);
            goto fail;
        }
        if (e->end - e->begin != e->nbytes) {
            shape_string(e, shape, sizeof shape);
            header_fail(r, "tensor " NAME_FMT ": dtype %s and shape %s need %" PRIu64 " bytes, but data_offsets [%"
                        PRIu64 ", %" PRIu64 "] hold %" PRIu64, e->name, st_dtypes[e->dtype].name, shape, e->nbytes,
                        e->begin, e->end, e->end - e->begin);
            goto fail;
        }
        if (e->end > data_size) {
            header_fail(r, "tensor " NAME_FMT ": data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the %"
                        PRIu64 "-byte data buffer (is the file truncated?)", e->name, e->begin, e->end, data_size);
            goto fail;
        }
    }

    /* the ranges tile [0, data_size) */
    qsort(by, (size_t)h->n, sizeof *by, cmp_entry_offset);
    uint64_t covered = 0;
    for (int i = 0; i < h->n; i++) {
        if (by[i]->begin < covered) {
            header_fail(r, "tensor " NAME_FMT ": data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor " NAME_FMT,
                        by[i]->name, by[i]->begin, by[i]->end, by[i - 1]->name);
            goto fail;
        }
        if (by[i]->begin > covered) {
            header_fail(r, "bytes [%" PRIu64 ", %" PRIu64 ") of the data buffer belong to no tensor (tensor "
                        NAME_FMT " starts at %" PRIu64 ")", covered, by[i]->begin, by[i]->name, by[i]->begin);
            goto fail;
        }
        covered = by[i]->end;
    }
    if (covered != data_size) {
        header_fail(r, "the data buffer has %" PRIu64 " bytes but the tensors cover only %" PRIu64
                    " (trailing data, or a header that does not describe this file)", data_size, covered);
        goto fail;
    }
    *order = by;
    return true;
fail:
    free(by);
    return false;
}

/* ================================================================ reading */

static uint64_t read_le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void write_le64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

#define ST_ERR(code, path, ...) st_error((code), (path), __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static mt_status st_error(mt_status code, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_set_error(code, "safetensors: %s: %s", path, msg);
}

/*
 * Opens path and reads and checks its header: on success *f is open with the
 * table in *h, the entries by offset in *order and the data buffer's start
 * in *data_start. On error everything is released.
 */
static mt_status st_open(const char *path, FILE **f_out, st_header *h, st_entry ***order, uint64_t *data_start)
{
    memset(h, 0, sizeof *h);
    *f_out = NULL;
    *order = NULL;
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: path is NULL");

    FILE *f = fopen(path, "rb");
    if (!f) return ST_ERR(MT_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int err = errno;
        fclose(f);
        return ST_ERR(MT_ERR_IO, path, "cannot stat: %s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) { fclose(f); return ST_ERR(MT_ERR_IO, path, "not a regular file"); }
    uint64_t file_size = (uint64_t)st.st_size;

    /* the header length */
    unsigned char len8[8];
    if (file_size < 8) {
        fclose(f);
        return ST_ERR(MT_ERR_FORMAT, path, "file has %" PRIu64 " bytes, too few for the 8-byte header length "
                      "(truncated, or not a safetensors file)", file_size);
    }
    if (fread(len8, 1, 8, f) != 8) {
        fclose(f);
        return ST_ERR(MT_ERR_IO, path, "cannot read the header length");
    }
    uint64_t n = read_le64(len8);
    if (n > ST_MAX_HEADER) {
        fclose(f);
        return ST_ERR(MT_ERR_FORMAT, path, "header length %" PRIu64 " exceeds the limit of %" PRIu64
                      " bytes (not a safetensors file?)", n, ST_MAX_HEADER);
    }
    if (n > file_size - 8) {
        fclose(f);
        return ST_ERR(MT_ERR_FORMAT, path, "header length %" PRIu64 " runs past the end of the %" PRIu64
                      "-byte file (truncated, or not a safetensors file)", n, file_size);
    }

    /* the header */
    unsigned char *text = malloc(n ? (size_t)n : 1);
    if (!text) { fclose(f); return ST_ERR(MT_ERR_MEMORY, path, "out of memory for a %" PRIu64 "-byte header", n); }
    if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        int err = ferror(f) ? errno : 0;
        free(text);
        fclose(f);
        return ST_ERR(MT_ERR_IO, path, "cannot read the header: %s", err ? strerror(err) : "unexpected end of file");
    }
    json_reader r = { .begin = text, .p = text, .end = text + n };
    bool ok = st_parse_header(&r, h) && st_check_layout(&r, h, file_size - 8 - n, order);
    free(text);
    if (!ok) {
        st_header_free(h);
        fclose(f);
        return ST_ERR(strncmp(r.error, "out of memory", 13) == 0 ? MT_ERR_MEMORY : MT_ERR_FORMAT, path, "%s", r.error);
    }
    *f_out = f;
    *data_start = 8 + n;
    return MT_OK;
}

/* A new contiguous CPU tensor held here until the whole file is read. */
static mt_tensor *owned_cpu_tensor(mt_dtype dtype, int ndim, const int64_t *shape)
{
    return mt_unscope(mt_new_tensor(mt_cpu(), dtype, ndim, shape));
}

mt_status mt_safetensors_load(const char *path, mt_tensor_list *out)
{
    return mt_safetensors_load_with_metadata(path, out, NULL);
}

mt_status mt_safetensors_load_with_metadata(const char *path, mt_tensor_list *out, mt_safetensors_metadata *meta)
{
    if (!out) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: output list is NULL", path ? path : "(null)");
    FILE *f;
    st_header h;
    st_entry **order;
    uint64_t data_start;
    mt_status st = st_open(path, &f, &h, &order, &data_start);
    if (st != MT_OK) return st;

    /* One tensor per entry, in header order; filled in offset order. */
    mt_tensor **ts = calloc((size_t)(h.n ? h.n : 1), sizeof *ts);
    mt_named_tensor *items = calloc((size_t)(h.n ? h.n : 1), sizeof *items);
    if (!ts || !items) { st = ST_ERR(MT_ERR_MEMORY, path, "out of memory"); goto done; }
    for (int i = 0; i < h.n; i++) {
        st_entry *e = &h.entries[i];
        ts[i] = owned_cpu_tensor(e->dtype, e->ndim, e->shape);
        if (!ts[i]) { st = ST_ERR(mt_last_status(), path, "tensor " NAME_FMT ": %s", e->name, mt_last_error()); goto done; }
    }
    bool le = mt_host_is_little_endian();
    for (int k = 0; k < h.n; k++) {
        st_entry *e = order[k];
        mt_tensor *t = ts[e - h.entries];
        if (e->nbytes == 0) continue;
        if (fseeko(f, (off_t)(data_start + e->begin), SEEK_SET) != 0) {
            st = ST_ERR(MT_ERR_IO, path, "cannot seek to tensor " NAME_FMT ": %s", e->name, strerror(errno));
            goto done;
        }
        void *dst = mt_ptr(t);
        if (fread(dst, 1, (size_t)e->nbytes, f) != (size_t)e->nbytes) {
            int err = ferror(f) ? errno : 0;
            st = ST_ERR(MT_ERR_IO, path, "cannot read tensor " NAME_FMT ": %s", e->name,
                        err ? strerror(err) : "unexpected end of file (was it truncated while being read?)");
            goto done;
        }
        size_t es = mt_dtype_size(e->dtype);
        if (!le && es > 1) mt_swap_bytes(dst, es, (size_t)(e->nbytes / es));
        if (e->dtype == MT_BOOL) {   /* any nonzero byte is true; mytorch's bools are 0 or 1 */
            unsigned char *b = dst;
            for (uint64_t i = 0; i < e->nbytes; i++) b[i] = b[i] != 0;
        }
    }

    /* Success: hand the tensors and names over; like every creator's, the
       tensors go to the open scope (docs/ownership.md). */
    for (int i = 0; i < h.n; i++) {
        items[i].name = h.entries[i].name;
        items[i].tensor = mt_adopt(ts[i]);
        h.entries[i].name = NULL;
        ts[i] = NULL;
    }
    out->n = h.n;
    out->items = items;
    items = NULL;
    if (meta) {
        *meta = h.meta;
        memset(&h.meta, 0, sizeof h.meta);
    }

done:
    if (ts) for (int i = 0; i < h.n; i++) mt_free(ts[i]);
    free(ts);
    free(items);
    free(order);
    st_header_free(&h);
    fclose(f);
    return st;
}

mt_status mt_safetensors_read_metadata(const char *path, mt_safetensors_metadata *meta)
{
    if (!meta) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: %s: output metadata is NULL", path ? path : "(null)");
    FILE *f;
    st_header h;
    st_entry **order;
    uint64_t data_start;
    mt_status st = st_open(path, &f, &h, &order, &data_start);
    if (st != MT_OK) return st;
    *meta = h.meta;
    memset(&h.meta, 0, sizeof h.meta);
    free(order);
    st_header_free(&h);
    fclose(f);
    return MT_OK;
}

void mt_safetensors_metadata_free(mt_safetensors_metadata *meta)
{
    if (!meta) return;
    for (int i = 0; i < meta->n; i++) {
        free(meta->keys[i]);
        free(meta->values[i]);
    }
    free(meta->keys);
    free(meta->values);
    memset(meta, 0, sizeof *meta);
}

/* ================================================================ writing */

/* A growing byte buffer; after an allocation failure it stays failed. */
typedef struct strbuf {
    char *data;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_append(strbuf *b, const void *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) { b->oom = true; return; }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void sb_str(strbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

static void sb_u64(strbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    sb_append(b, tmp, (size_t)n);
}

/* A JSON string, escaped exactly as serde_json (the reference writer's JSON
   library) escapes: \" \\ \b \f \n \r \t, other control characters as \u00xx
   with lowercase hex, everything else (including '/', DEL and non-ASCII
   UTF-8) as it is. */
static void sb_json_string(strbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) sb_str(b, esc);
        else if (c < 0x20) {
            char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            sb_append(b, u, 6);
        } else sb_append(b, &c, 1);
    }
    sb_append(b, "\"", 1);
}

/* A tensor to write: where it comes from and where it goes. */
typedef struct st_out {
    const char *name;
    const mt_tensor *tensor;
    uint64_t begin, end;
} st_out;

/* The reference writer's order: dtype rank descending, then name bytewise. */
static int cmp_out(const void *a, const void *b)
{
    const st_out *x = a, *y = b;
    int rx = st_dtypes[x->tensor->dtype].rank, ry = st_dtypes[y->tensor->dtype].rank;
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks that n strings are non-NULL, UTF-8 and pairwise distinct; what is
   the kind of string in messages ("tensor name", "metadata key"). */
static mt_status check_names(const char *path, int n, const char *const *names, const char *what)
{
    if (n == 0) return MT_OK;
    for (int i = 0; i < n; i++) {
        if (!names[i]) return ST_ERR(MT_ERR_ARGUMENT, path, "%s %d is NULL", what, i);
        if (!utf8_valid(names[i])) return ST_ERR(MT_ERR_ARGUMENT, path, "%s " NAME_FMT " is not valid UTF-8", what, names[i]);
    }
    const char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return ST_ERR(MT_ERR_MEMORY, path, "out of memory");
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_cstr);
    for (int i = 1; i < n; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            mt_status st = ST_ERR(MT_ERR_ARGUMENT, path, "%s " NAME_FMT " appears twice", what, sorted[i]);
            free(sorted);
            return st;
        }
    free(sorted);
    return MT_OK;
}

static bool write_all(FILE *f, const void *data, size_t n)
{
    return n == 0 || fwrite(data, 1, n, f) == n;
}

/* Writes one tensor's bytes, little-endian and row-major. A contiguous CPU
   tensor on a little-endian host is written straight from its storage;
   anything else goes through a host buffer. On failure returns false with
   *what describing it (and the mytorch error set when the copy failed). */
static bool write_tensor(FILE *f, const st_out *o, bool le, const char **what)
{
    const mt_tensor *t = o->tensor;
    size_t nbytes = (size_t)(o->end - o->begin);
    if (nbytes == 0) return true;
    if (le && mt_device_of(t).type == MT_DEVICE_CPU && mt_is_contiguous(t)) {
        if (!write_all(f, mt_ptr(t), nbytes)) { *what = "write"; return false; }
        return true;
    }
    void *buf = malloc(nbytes);
    if (!buf) { *what = "memory"; return false; }
    if (mt_to_data(t, t->dtype, buf) != MT_OK) { free(buf); *what = "copy"; return false; }
    size_t es = mt_dtype_size(t->dtype);
    if (!le && es > 1) mt_swap_bytes(buf, es, nbytes / es);
    bool ok = write_all(f, buf, nbytes);
    free(buf);
    if (!ok) *what = "write";
    return ok;
}

/*
 * Writes the file: "<path>.tmp.<pid>" first, flushed and fsync'ed, then
 * renamed over path. rename() replaces path atomically, so a reader (or a
 * crash) sees the old file or the new one, never a mixture; on any failure
 * the temporary file is removed and path is untouched.
 */
static mt_status st_write_file(const char *path, const strbuf *header, const st_out *outs, int n)
{
    mt_remove_stale_temps_of(path);   /* a killed writer's leftovers */
    char *tmp = mt_temp_name(path);
    if (!tmp) return ST_ERR(MT_ERR_MEMORY, path, "out of memory");

    FILE *f = fopen(tmp, "wb");
    if (!f) {
        mt_status st = ST_ERR(MT_ERR_IO, path, "cannot create the temporary file '%s': %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    mt_status st = MT_OK;
    bool le = mt_host_is_little_endian();
    unsigned char len8[8];
    write_le64(len8, header->len);
    if (!write_all(f, len8, 8) || !write_all(f, header->data, header->len)) {
        st = ST_ERR(MT_ERR_IO, path, "cannot write '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const char *what = NULL;
        if (write_tensor(f, &outs[i], le, &what)) continue;
        if (strcmp(what, "write") == 0)
            st = ST_ERR(MT_ERR_IO, path, "cannot write tensor " NAME_FMT " to '%s': %s", outs[i].name, tmp, strerror(errno));
        else if (strcmp(what, "memory") == 0)
            st = ST_ERR(MT_ERR_MEMORY, path, "tensor " NAME_FMT ": out of memory for its %" PRIu64 " bytes",
                        outs[i].name, outs[i].end - outs[i].begin);
        else
            st = ST_ERR(mt_last_status(), path, "tensor " NAME_FMT ": %s", outs[i].name, mt_last_error());
        goto fail;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = ST_ERR(MT_ERR_IO, path, "cannot flush '%s' to disk: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = ST_ERR(MT_ERR_IO, path, "cannot close '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        st = ST_ERR(MT_ERR_IO, path, "cannot rename '%s' to it: %s", tmp, strerror(errno));
        goto fail;
    }
    mt_sync_parent_folder(path);
    free(tmp);
    return MT_OK;

fail:
    if (f) fclose(f);
    unlink(tmp);
    free(tmp);
    return st;
}

mt_status mt_safetensors_save(const char *path, mt_tensor_list tensors,
                              int n_meta, const char *const *meta_keys, const char *const *meta_values)
{
    if (!path) return mt_set_error(MT_ERR_ARGUMENT, "safetensors: path is NULL");
    if (tensors.n < 0 || (tensors.n > 0 && !tensors.items))
        return ST_ERR(MT_ERR_ARGUMENT, path, "invalid tensor list (n = %d, items = %p)", tensors.n, (void *)tensors.items);
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return ST_ERR(MT_ERR_ARGUMENT, path, "invalid metadata (n_meta = %d, keys = %p, values = %p)", n_meta,
                      (const void *)meta_keys, (const void *)meta_values);

    /* Check the arguments before touching the file system. */
    int n = tensors.n;
    st_out *outs = calloc((size_t)(n ? n : 1), sizeof *outs);
    const char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    strbuf hdr = { 0 };
    mt_status st = MT_OK;
    if (!outs || !names) { st = ST_ERR(MT_ERR_MEMORY, path, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        const mt_named_tensor *it = &tensors.items[i];
        names[i] = it->name;
        if (it->name && strcmp(it->name, "__metadata__") == 0) {
            st = ST_ERR(MT_ERR_ARGUMENT, path, "\"__metadata__\" is reserved and cannot name a tensor");
            goto done;
        }
        if (!it->tensor) {
            st = ST_ERR(MT_ERR_ARGUMENT, path, "tensor " NAME_FMT " is NULL", it->name ? it->name : "(unnamed)");
            goto done;
        }
        if ((unsigned)it->tensor->dtype >= MT_DTYPE_COUNT) {
            st = ST_ERR(MT_ERR_DTYPE, path, "tensor " NAME_FMT " has an invalid dtype %d",
                        it->name ? it->name : "(unnamed)", (int)it->tensor->dtype);
            goto done;
        }
        outs[i].name = it->name;
        outs[i].tensor = it->tensor;
    }
    if ((st = check_names(path, n, names, "tensor name")) != MT_OK) goto done;
    if ((st = check_names(path, n_meta, meta_keys, "metadata key")) != MT_OK) goto done;
    for (int i = 0; i < n_meta; i++) {
        if (!meta_values[i]) { st = ST_ERR(MT_ERR_ARGUMENT, path, "metadata value of " NAME_FMT " is NULL", meta_keys[i]); goto done; }
        if (!utf8_valid(meta_values[i])) {
            st = ST_ERR(MT_ERR_ARGUMENT, path, "metadata value of " NAME_FMT " is not valid UTF-8", meta_keys[i]);
            goto done;
        }
    }

    /* Lay the tensors out in the reference writer's order. */
    qsort(outs, (size_t)n, sizeof *outs, cmp_out);
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        outs[i].begin = offset;
        offset += (uint64_t)mt_numel(outs[i].tensor) * mt_dtype_size(outs[i].tensor->dtype);
        outs[i].end = offset;
    }

    /* The header, compact: {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...} */
    sb_str(&hdr, "{");
    if (n_meta > 0) {
        sb_str(&hdr, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_str(&hdr, ",");
            sb_json_string(&hdr, meta_keys[i]);
            sb_str(&hdr, ":");
            sb_json_string(&hdr, meta_values[i]);
        }
        sb_str(&hdr, "}");
        if (n > 0) sb_str(&hdr, ",");
    }
    for (int i = 0; i < n; i++) {
        const mt_tensor *t = outs[i].tensor;
        if (i) sb_str(&hdr, ",");
        sb_json_string(&hdr, outs[i].name);
        sb_str(&hdr, ":{\"dtype\":\"");
        sb_str(&hdr, st_dtypes[t->dtype].name);
        sb_str(&hdr, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_str(&hdr, ",");
            sb_u64(&hdr, (uint64_t)t->shape[d]);
        }
        sb_str(&hdr, "],\"data_offsets\":[");
        sb_u64(&hdr, outs[i].begin);
        sb_str(&hdr, ",");
        sb_u64(&hdr, outs[i].end);
        sb_str(&hdr, "]}");
    }
    sb_str(&hdr, "}");
    /* Pad with spaces so that the data buffer starts 8-byte aligned. */
    while (!hdr.oom && hdr.len % 8 != 0) sb_str(&hdr, " ");
    if (hdr.oom) { st = ST_ERR(MT_ERR_MEMORY, path, "out of memory building the header"); goto done; }
    if (hdr.len > ST_MAX_HEADER) {
        st = ST_ERR(MT_ERR_ARGUMENT, path, "the header would be %zu bytes, over the format's limit of %" PRIu64,
                    hdr.len, ST_MAX_HEADER);
        goto done;
    }

    st = st_write_file(path, &hdr, outs, n);

done:
    free(hdr.data);
    free(names);
    free(outs);
    return st;
}
