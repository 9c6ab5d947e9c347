#!/usr/bin/env bash
# The default recipe on the embedded synthetic corpus.
#   run.sh [--stage N] [--stop-stage M] [--nj J] [--quick true|false]
# Outputs: data/ (corpus, dict, lang) and exp/ under this directory.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
nj=2
quick=false
__options="stage stop_stage nj quick"
help_message="Usage: run.sh [--stage N] [--stop-stage M] [--nj J] [--quick true|false]
Default recipe on the synthetic corpus. Stages:
  0  synthetic corpus -> data/{train,dev,test}, data/local/{lm_text.txt,dict}
  1  lang dir -> data/lang"
. ../../scripts/parse_options.sh
. ../../scripts/log.sh

# use this checkout's asr package (also when an older one is installed)
export PYTHONPATH="$(cd ../.. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
asr() { python -m asr "$@"; }
quick_opt=""
[ "$quick" = true ] && quick_opt="--quick"

# Stage 0: synthetic corpus: data/{train,dev,test} with wavs, CTMs; data/local/{lm_text.txt,dict}
# (kept as is when already complete with the same settings)
if stage_on 0; then
  log "stage 0: synthetic corpus into data/ (quick=$quick)"
  asr synth-corpus $quick_opt --nj "$nj" data
fi

# Stage 1: lang dir from the dict dir
if stage_on 1; then
  log "stage 1: lang dir data/lang"
  require data/local/dict/lexiconp.txt 0
  if [ -f data/lang/L_disambig.fst ] && [ data/lang/L_disambig.fst -nt data/local/dict/lexiconp.txt ]; then
    log "stage 1: data/lang is up to date; skipping"
  else
    asr prepare-lang data/local/dict data/lang
  fi
fi
