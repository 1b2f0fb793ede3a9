/*
 * speech_phones.h - the phone set of the speech tasks and the maps from the
 * text-to-speech engines' phone names to it (docs/speech-data.md).
 *
 * The set is [SIL] followed by the 39 ARPAbet phones of the CMU dictionary,
 * in alphabetical order; a frame label is an index into it:
 *
 *    0 [SIL]   1 AA   2 AE   3 AH   4 AO   5 AW   6 AY   7 B    8 CH   9 D
 *   10 DH     11 EH  12 ER  13 EY  14 F   15 G   16 HH  17 IH  18 IY  19 JH
 *   20 K      21 L   22 M   23 N   24 NG  25 OW  26 OY  27 P   28 R   29 S
 *   30 SH     31 T   32 TH  33 UH  34 UW  35 V   36 W   37 Y   38 Z   39 ZH
 *
 * Phone sequences (transcripts) add [SOS] = 40 and [EOS] = 41, as the course
 * data's phoneme list does.
 */
#ifndef MT_MODELS_SPEECH_PHONES_H
#define MT_MODELS_SPEECH_PHONES_H

#include <stdbool.h>

enum {
    MT_PHONE_SIL = 0,
    MT_SPEECH_N_PHONES = 40,   /* [SIL] + 39 ARPAbet phones: the frame classes */
    MT_PHONE_SOS = 40,
    MT_PHONE_EOS = 41,
    MT_SPEECH_N_SYMBOLS = 42,  /* with [SOS] and [EOS] */
};

/* The symbol of index i in [0, MT_SPEECH_N_SYMBOLS): "[SIL]", "AA", ..., "[EOS]". */
const char *mt_speech_phone_name(int i);
/* The index of an ARPAbet symbol ("AA", "aa", "[SIL]", ...); -1 when it is none. */
int mt_speech_phone_index(const char *name);

/* The longest expansion of one engine phone: a few engine phones stand for
   two ARPAbet phones (espeak-ng's "aI@" in "fire" is AY ER). */
enum { MT_PHONE_MAX_EXPANSION = 2 };

/* Maps an espeak-ng phoneme mnemonic (as its phoneme events name it: "@",
   "aI", "tS", "_:", ...) to one or two phone indices in out[]; returns their
   number (1 or 2). *known is false when the mnemonic is not in the table and
   the nearest phone was guessed (from the mnemonic without its modifier
   characters, else from its first letter, else AH); such phonemes are counted
   in the corpus report. Pauses ("_", "_:", "_!", ...) map to [SIL]. */
int mt_espeak_to_phones(const char *mnemonic, int out[MT_PHONE_MAX_EXPANSION], bool *known);

/* Maps a flite phone ("aa", "ax", "pau", ...: the CMU phone set in lower
   case) the same way: "pau" is [SIL], "ax" AH, "axr" ER. */
int mt_flite_to_phones(const char *name, int out[MT_PHONE_MAX_EXPANSION], bool *known);

/* The espeak-ng table, for the documentation and the tests: entry i is the
   mnemonic *mnemonic and its expansion (a string such as "AY ER"); returns
   false past the end. */
bool mt_espeak_table_entry(int i, const char **mnemonic, const char **arpabet);

#endif
