/*
 * speech_phones.c - the phone set and the engines' phone maps
 * (speech_phones.h, docs/speech-data.md).
 */
#include "models/speech_data/speech_phones.h"

#include <ctype.h>
#include <string.h>

static const char *const phone_names[MT_SPEECH_N_SYMBOLS] = {
    "[SIL]", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D",
    "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S",
    "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
    "[SOS]", "[EOS]",
};

const char *mt_speech_phone_name(int i)
{
    return i >= 0 && i < MT_SPEECH_N_SYMBOLS ? phone_names[i] : NULL;
}

int mt_speech_phone_index(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < MT_SPEECH_N_SYMBOLS; i++) {
        const char *p = phone_names[i], *q = name;
        while (*p && *q && toupper((unsigned char)*q) == *p) { p++; q++; }
        if (!*p && !*q) return i;
    }
    return -1;
}

/* espeak-ng's English phoneme mnemonics (the phoneme events of the voices en,
   en-us, en-gb-x-rp, en-gb-scotland, en-029, en-gb-x-gbclan, en-gb-x-gbcwmd
   and en-us-nyc) and the ARPAbet phones of the CMU dictionary they stand for.
   The r-coloured vowels of the non-rhotic accents follow the CMU dictionary
   ("car" K AA R, "fire" F AY ER), so every accent gives one pronunciation of a
   word; a trailing R is dropped when the next phoneme is an r itself
   (en-gb-scotland's "A@ r"). */
static const struct { const char *mnemonic, *arpabet; } espeak_table[] = {
    /* pauses */
    { "_", "[SIL]" }, { "_:", "[SIL]" }, { "_!", "[SIL]" }, { "_|", "[SIL]" }, { "_^_", "[SIL]" },
    { "_#", "[SIL]" },
    /* vowels */
    { "@", "AH" }, { "@-", "AH" }, { "@2", "AH" }, { "@5", "AH" }, { "@L", "AH L" },
    { "3", "ER" }, { "3:", "ER" }, { "IR", "ER" }, { "VR", "ER" },
    { "a", "AE" }, { "a#", "AH" }, { "aa", "AE" }, { "A:", "AA" }, { "A@", "AA R" }, { "A#", "AA" },
    { "0", "AA" }, { "0#", "AA" },
    { "O", "AO" }, { "O:", "AO" }, { "O2", "AO" }, { "O@", "AO R" }, { "o@", "AO R" },
    { "o", "OW" }, { "oU", "OW" }, { "oU#", "OW" }, { "OI", "OY" },
    { "E", "EH" }, { "e", "EH" }, { "E2", "EH" }, { "E#", "EH" }, { "e@", "EH R" }, { "eI", "EY" },
    { "i", "IY" }, { "i:", "IY" }, { "i@", "IY AH" }, { "i@3", "IY R" },
    { "I", "IH" }, { "I2", "IH" }, { "I#", "IH" }, { "I2#", "IH" },
    { "u", "UW" }, { "u:", "UW" }, { "U", "UH" }, { "U@", "UH R" }, { "u@", "UH R" },
    { "V", "AH" },
    { "aI", "AY" }, { "aI2", "AY" }, { "aI@", "AY ER" }, { "aI3", "AY ER" }, { "aI@3", "AY ER" },
    { "aU", "AW" }, { "aU@", "AW ER" },
    /* consonants */
    { "p", "P" }, { "b", "B" }, { "t", "T" }, { "d", "D" }, { "k", "K" }, { "g", "G" },
    { "t#", "T" }, { "t2", "T" }, { "t[", "T" }, { "d#", "D" }, { "?", "T" },
    { "f", "F" }, { "v", "V" }, { "T", "TH" }, { "D", "DH" }, { "s", "S" }, { "z", "Z" },
    { "S", "SH" }, { "Z", "ZH" }, { "h", "HH" }, { "x", "K" }, { "C", "HH" },
    { "tS", "CH" }, { "dZ", "JH" },
    { "m", "M" }, { "n", "N" }, { "N", "NG" }, { "m-", "AH M" }, { "n-", "AH N" }, { "l-", "AH L" },
    { "l", "L" }, { "r", "R" }, { "r-", "R" }, { "w", "W" }, { "w#", "W" }, { "j", "Y" },
    { ";", "Y" },   /* the linking glide between vowels: "creative" k r i: ; eI t I v */
};
enum { ESPEAK_TABLE_N = (int)(sizeof espeak_table / sizeof espeak_table[0]) };

bool mt_espeak_table_entry(int i, const char **mnemonic, const char **arpabet)
{
    if (i < 0 || i >= ESPEAK_TABLE_N) return false;
    if (mnemonic) *mnemonic = espeak_table[i].mnemonic;
    if (arpabet) *arpabet = espeak_table[i].arpabet;
    return true;
}

/* "AY ER" -> {AY, ER}; returns the count. */
static int parse_expansion(const char *s, int out[MT_PHONE_MAX_EXPANSION])
{
    int n = 0;
    while (*s && n < MT_PHONE_MAX_EXPANSION) {
        char word[8];
        size_t len = strcspn(s, " ");
        if (len >= sizeof word) len = sizeof word - 1;
        memcpy(word, s, len);
        word[len] = '\0';
        int idx = mt_speech_phone_index(word);
        out[n++] = idx >= 0 ? idx : MT_PHONE_SIL;
        s += strcspn(s, " ");
        while (*s == ' ') s++;
    }
    return n;
}

static int lookup_espeak(const char *m, size_t len)
{
    for (int i = 0; i < ESPEAK_TABLE_N; i++)
        if (strlen(espeak_table[i].mnemonic) == len && strncmp(espeak_table[i].mnemonic, m, len) == 0)
            return i;
    return -1;
}

int mt_espeak_to_phones(const char *mnemonic, int out[MT_PHONE_MAX_EXPANSION], bool *known)
{
    size_t len = strlen(mnemonic);
    int i = lookup_espeak(mnemonic, len);
    if (known) *known = i >= 0;
    if (i >= 0) return parse_expansion(espeak_table[i].arpabet, out);
    /* Not in the table: the longest known prefix ("aI@3" -> "aI@", "t3" -> "t"). */
    for (size_t l = len; l-- > 1;)
        if ((i = lookup_espeak(mnemonic, l)) >= 0) return parse_expansion(espeak_table[i].arpabet, out);
    if (mnemonic[0] == '_') { out[0] = MT_PHONE_SIL; return 1; }
    out[0] = mt_speech_phone_index("AH");
    return 1;
}

int mt_flite_to_phones(const char *name, int out[MT_PHONE_MAX_EXPANSION], bool *known)
{
    if (known) *known = true;
    if (strcmp(name, "pau") == 0 || strcmp(name, "h#") == 0 || strcmp(name, "sil") == 0) { out[0] = MT_PHONE_SIL; return 1; }
    if (strcmp(name, "ax") == 0) { out[0] = mt_speech_phone_index("AH"); return 1; }
    if (strcmp(name, "axr") == 0) { out[0] = mt_speech_phone_index("ER"); return 1; }
    int idx = mt_speech_phone_index(name);
    if (idx > MT_PHONE_SIL && idx < MT_SPEECH_N_PHONES) { out[0] = idx; return 1; }
    if (known) *known = false;
    out[0] = mt_speech_phone_index("AH");
    return 1;
}
