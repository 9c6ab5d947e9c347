#!/usr/bin/env bash
# LibriSpeech (OpenSLR 12: 960 h of read audiobooks; OpenSLR 11: lexicon and LMs), from the
# corpus to WERs on dev/test-clean and dev/test-other with an LSTMP acoustic model trained on
# the senones of a Kaldi GMM experiment (or of flat start), Kaldi's tgsmall first pass and
# fglarge lattice rescoring (or our own 5-gram, --own-lm true).
#   run.sh --corpus-dir DIR --kaldi-ali-dir EXP [--kaldi-lang-dir LANG] [--train-workers N [--train-mode ddp|asgd]] [--device cuda]
# Stages and options: run.sh --help; the stages are shared with ../mini_librispeech
# (local/recipe.sh). Resources per stage: README.md beside this script.
set -euo pipefail
cd "$(dirname "$0")"

corpus=librispeech
parts_resource=12
train_parts="train-clean-100 train-clean-360 train-other-500"
eval_pairs="dev-clean=test-clean dev-other=test-other"   # LM weight tuned on dev-*, applied to test-*
first_lm_name=3-gram.pruned.3e-7.arpa.gz   # Kaldi's tgsmall
rescore_lm_name=4-gram.arpa.gz             # Kaldi's fglarge
train_conf=../../conf/lstmp_paper.yaml     # Sak et al. 2014: 2 x 800 cells, 512 projection
cv_utts=1000                               # held-out training utterances (frame accuracy)
example="run.sh --corpus-dir /data/librispeech --alignments kaldi --kaldi-ali-dir ~/kaldi/egs/librispeech/s5/exp/tri6b_ali_960 \\
        --kaldi-lang-dir ~/kaldi/egs/librispeech/s5/data/lang_nosp"
nj=8
. local/recipe.sh
