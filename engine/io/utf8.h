/*
 * utf8.h - UTF-8 encoding shared by the file readers (safetensors names,
 * NumPy unicode arrays). Internal to engine/.
 */
#ifndef MT_ENGINE_UTF8_H
#define MT_ENGINE_UTF8_H

#include <stdint.h>

/* Writes code point cp (a Unicode scalar value: not a surrogate, at most
   0x10FFFF) as UTF-8 into out (room for 4 bytes); returns the length. */
int mt_utf8_encode(uint32_t cp, char *out);

#endif
