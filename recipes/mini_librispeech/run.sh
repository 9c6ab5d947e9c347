#!/usr/bin/env bash
# mini_librispeech (OpenSLR 31: train-clean-5, 5 h; dev-clean-2, 2 h; lexicon and LMs from
# OpenSLR 11): the LibriSpeech recipe at a size for one GPU or a CPU machine, with Kaldi's
# tgsmall first pass and tglarge lattice rescoring, as Kaldi's mini_librispeech recipe.
#   run.sh --corpus-dir DIR --kaldi-ali-dir EXP [--kaldi-lang-dir LANG] [--device cuda]
# Same stages and options as ../librispeech (its local/recipe.sh); run.sh --help.
set -euo pipefail
cd "$(dirname "$0")"

corpus=mini_librispeech
parts_resource=31
train_parts="train-clean-5"
eval_pairs="dev-clean-2"                   # the only evaluation set (LM weight: its own best)
first_lm_name=3-gram.pruned.3e-7.arpa.gz   # tgsmall
rescore_lm_name=3-gram.arpa.gz             # tglarge
train_conf=../../conf/lstmp.yaml           # 1.4 M parameters: hours on CPU, minutes on a GPU
cv_utts=200
example="run.sh --corpus-dir /data/mini_librispeech --alignments kaldi --kaldi-ali-dir ~/kaldi/egs/mini_librispeech/s5/exp/tri3b \\
        --kaldi-lang-dir ~/kaldi/egs/mini_librispeech/s5/data/lang --device cuda"
nj=4
. ../librispeech/local/recipe.sh
