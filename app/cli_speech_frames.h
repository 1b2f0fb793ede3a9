/*
 * cli_speech_frames.h - the command line of the frame-level phoneme
 * classification task (models/speech_frames/speech_frames_task.h):
 *
 *   mytorch train speech-frames --data DIR [options]      (called by `mytorch train`)
 *   mytorch eval <task> --checkpoint C --data DIR [--split S]
 *   mytorch predict <task> --checkpoint C --data DIR [--split S] --out FILE.csv
 *
 * argv[0] is the first word after "train speech-frames", "eval", "predict".
 */
#ifndef MT_MODELS_CLI_SPEECH_FRAMES_H
#define MT_MODELS_CLI_SPEECH_FRAMES_H

int mt_cli_train_speech_frames(int argc, char **argv);
int mt_cli_eval(int argc, char **argv);
int mt_cli_predict(int argc, char **argv);

#endif
