#!/usr/bin/env bash
# The default recipe on the embedded synthetic corpus, from nothing to a WER.
#   run.sh [--stage N] [--stop-stage M] [--nj J] [--quick true|false] [--baselines true|false]
#
#   0 corpus (synthetic speech + CTM)     5 HCLG with the pruned 5-gram
#   1 dict + lang dir                     6 LSTMP training (+ priors) [+ DNN, LSTM baselines]
#   2 fbank + CMVN                        7 decode dev/test (first pass, lattices)
#   3 alignment import (CTM) + tree       8 full 5-gram lattice rescoring
#   4 LMs: full 5-gram and pruned         9 scoring, RESULTS.md (--quick: exp/RESULTS.quick.md),
#                                           exp/results.json, exp/final
#   10 (off by default: --stage 10 --stop-stage 10) LSTM family comparison and depth study
#
# Outputs: data/ (corpus, dict, lang, features) and exp/ under this directory. Every stage
# checks its inputs and skips work whose outputs are complete, so re-running is safe.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=9
nj=2
quick=false
baselines=true        # also train and decode the DNN and plain-LSTM baselines
num_leaves=           # senones (default 1500; 200 with --quick)
lm_target_ngrams=     # size of the pruned first-pass 5-gram (default 60000; 8000 with --quick)
train_opts=""         # extra options for `asr train` (e.g. "--device cuda")
train_workers=1       # training processes (asr train --workers N; docs/distributed.md)
train_mode=ddp        # with --train-workers > 1: ddp (synchronous) or asgd (asynchronous, Sak et al.)
decode_opts=          # search options for `asr decode` (default "--beam 11 --lattice-beam 6";
                      # "--beam 8 --lattice-beam 4" with --quick, whose tiny model gives flat scores)
compare_opts=""       # options for stage 10's local/compare_families.sh (e.g. "--train-utts 500 --jobs 4")
__options="stage stop_stage nj quick baselines num_leaves lm_target_ngrams train_opts train_workers train_mode decode_opts compare_opts"
help_message="Usage: run.sh [--stage N] [--stop-stage M] [--nj J] [--quick true|false] [--baselines true|false]
         [--num-leaves N] [--lm-target-ngrams K] [--train-opts '...'] [--decode-opts '...']
         [--train-workers N] [--train-mode ddp|asgd] [--compare-opts '...']
Default recipe on the synthetic corpus (outputs in data/ and exp/ beside this script). Stages:
  0 synthetic corpus   1 dict + lang dir   2 fbank + CMVN   3 CTM alignment import + tree
  4 5-gram LMs         5 HCLG              6 training       7 decode (lattices)
  8 5-gram rescoring   9 scoring, RESULTS.md, exp/results.json, exp/final
  10 (only when asked) LSTM family comparison and depth study"
. ../../scripts/parse_options.sh
. ../../scripts/log.sh

# use this checkout's asr package (also when an older one is installed)
export PYTHONPATH="$(cd ../.. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
asr() { python -m asr "$@"; }
quick_opt=""
conf=../../conf
if [ "$quick" = true ]; then
  quick_opt="--quick"; conf=conf/quick
  num_leaves=${num_leaves:-200}; lm_target_ngrams=${lm_target_ngrams:-8000}
  decode_opts=${decode_opts:---beam 8 --lattice-beam 4}
fi
decode_opts=${decode_opts:---beam 11 --lattice-beam 6}
num_leaves=${num_leaves:-1500}
lm_target_ngrams=${lm_target_ngrams:-60000}
systems="lstmp"
[ "$baselines" = true ] && systems="lstmp lstm dnn"
# the committed RESULTS.md holds the default-size results; a quick run reports under exp/
results_md=RESULTS.md
[ "$quick" = true ] && results_md=exp/RESULTS.quick.md

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

# Stage 2: 40-dim log mel filterbanks (25/10 ms) and per-speaker CMVN stats
if stage_on 2; then
  for x in train dev test; do
    require data/$x/wav.scp 0
    log "stage 2: fbank + CMVN for data/$x"
    asr make-fbank --config ../../conf/fbank.conf --nj "$nj" data/$x data/$x/data
    if [ -f data/$x/cmvn.scp ] && [ data/$x/cmvn.scp -nt data/$x/feats.scp ]; then
      log "stage 2: data/$x/cmvn.scp is up to date"
    else
      asr compute-cmvn data/$x
    fi
  done
  # the training data's global CMVN stats: the prior of streaming recognition's online CMVN
  # (packed into the model dir); made here so later stages' feature fingerprints see them
  if [ -f data/train/global_cmvn.stats ] && [ data/train/global_cmvn.stats -nt data/train/feats.scp ]; then
    log "stage 2: data/train/global_cmvn.stats is up to date"
  else
    asr compute-cmvn --global data/train
  fi
fi

# Stage 3: import the corpus's phone CTMs as alignments, tie triphone states with a
# decision tree, and map the dev alignments (frame accuracy monitor) through the tree
if stage_on 3; then
  require data/lang/phones.txt 1
  require data/train/feats.scp data/dev/feats.scp 2
  # each command leaves an output made from the same inputs (fingerprints) as it is, and
  # replaces it only when it succeeded
  log "stage 3: importing train CTM alignments"
  asr import-ali --format ctm --lang data/lang --words-ctm data/train/words.ctm \
    data/train data/train/phones.ctm exp/ali_train_mono
  log "stage 3: building the tree ($num_leaves leaves)"
  asr build-tree --lang data/lang --num-leaves "$num_leaves" data/train exp/ali_train_mono exp/tree
  log "stage 3: importing dev CTM alignments through the tree"
  asr import-ali --format ctm --lang data/lang --tree-dir exp/tree --words-ctm data/dev/words.ctm \
    data/dev data/dev/phones.ctm exp/ali_dev
fi

# Stage 4: 5-gram modified Kneser-Ney LM on the LM text, its pruned first-pass version,
# and the test-set perplexity under the full LM
if stage_on 4; then
  require data/local/lm_text.txt 0
  require data/lang/words.txt 1
  mkdir -p exp/lm
  if [ ! -f exp/lm/lm5.arpa ]; then
    log "stage 4: full 5-gram LM"
    asr make-lm --order 5 --vocab data/lang/words.txt data/local/lm_text.txt exp/lm/lm5.arpa
  fi
  if [ ! -f exp/lm/lm5_pruned.arpa ]; then
    log "stage 4: pruned 5-gram (at most $lm_target_ngrams n-grams)"
    asr prune-lm --target-ngrams "$lm_target_ngrams" --history-text data/local/lm_text.txt \
      exp/lm/lm5.arpa exp/lm/lm5_pruned.arpa
  fi
  cut -d' ' -f2- data/test/text > exp/lm/test_text.txt
  for lm in lm5 lm5_pruned; do
    asr lm-ppl exp/lm/$lm.arpa exp/lm/test_text.txt | tee exp/lm/$lm.test_ppl.txt
  done
fi

# Stage 5: decoding graph HCLG with the pruned 5-gram
if stage_on 5; then
  require exp/tree/final.mdl 3
  require exp/lm/lm5_pruned.arpa 4
  # asr make-graph leaves a graph dir built from the same lang dir, tree and LM as it is
  log "stage 5: HCLG with the pruned 5-gram"
  asr make-graph data/lang exp/tree exp/lm/lm5_pruned.arpa exp/graph
fi

# pack_model_dir SYS: make exp/SYS/final a self-contained model dir (network + priors from
# training; tree, transition model, tables, feature options, graph, LMs, and the training data's
# global CMVN stats: the prior of streaming recognition's online CMVN) with `asr pack-model-dir`,
# which checks that they fit and leaves an up-to-date model dir as it is
pack_model_dir() {
  require data/train/global_cmvn.stats 2
  asr pack-model-dir --tree-dir exp/tree --lang data/lang --feats data/train --graph-dir exp/graph \
    --first-pass-lm exp/lm/lm5_pruned.arpa --rescore-lm exp/lm/lm5.arpa \
    --global-cmvn data/train/global_cmvn.stats exp/$1/final
}

# Stage 6: acoustic models (LSTMP; DNN and plain-LSTM baselines at about its size), priors
if stage_on 6; then
  require exp/tree/ali.pdf.ark exp/ali_dev/ali.pdf.ark 3
  require exp/graph/HCLG.fst 5
  for sys in $systems; do
    if [ -f exp/$sys/.done ]; then
      log "stage 6: exp/$sys is trained; skipping"
    else
      log "stage 6: training $sys ($conf/$sys.yaml)"
      resume=""
      [ -f exp/$sys/checkpoint.pt ] && resume="--resume"
      workers=""
      [ "$train_workers" -gt 1 ] && workers="--workers $train_workers --mode $train_mode"
      asr train --config $conf/$sys.yaml --feats data/train --ali exp/tree/ali.pdf.ark \
        --dev-feats data/dev --dev-ali exp/ali_dev/ali.pdf.ark --phone-map exp/tree/final.mdl \
        --out exp/$sys $resume $workers $train_opts
      asr compute-priors --model-dir exp/$sys/final --silence-pdfs exp/tree/silence_pdfs.int exp/tree/ali.pdf.ark
      touch exp/$sys/.done
    fi
    pack_model_dir $sys   # also after a rebuilt graph or LM: re-packs only what changed
  done
fi

# Stage 7: first-pass decoding of dev and test with lattices
if stage_on 7; then
  for sys in $systems; do
    require exp/$sys/.done 6
    for x in dev test; do
      # asr decode leaves a decode dir made from the same model dir, graph, features and options as it is
      log "stage 7: decoding data/$x with $sys"
      asr decode --model-dir exp/$sys/final --nj "$nj" --lattices $decode_opts data/$x exp/$sys/decode_$x
    done
  done
fi

# Stage 8: full 5-gram lattice rescoring
if stage_on 8; then
  for sys in $systems; do
    for x in dev test; do
      require exp/$sys/decode_$x/decode.json 7
      # asr lmrescore leaves an output made from the same lattices and LMs as it is
      log "stage 8: rescoring exp/$sys/decode_$x with the full 5-gram"
      asr lmrescore --old-lm exp/lm/lm5_pruned.arpa --new-lm exp/lm/lm5.arpa \
        --words exp/graph/words.txt exp/$sys/decode_$x exp/$sys/decode_${x}_rescore
    done
  done
fi

# Stage 9: LM-weight / insertion-penalty sweep on dev, applied to test; results table
if stage_on 9; then
  specs=()
  for sys in $systems; do
    for pass in "" _rescore; do
      require exp/$sys/decode_dev$pass/lat.1.gz exp/$sys/decode_test$pass/lat.1.gz 8
      asr score-lattices --words exp/graph/words.txt data/dev exp/$sys/decode_dev$pass
      asr score-lattices --words exp/graph/words.txt --best-from exp/$sys/decode_dev$pass data/test exp/$sys/decode_test$pass
    done
    specs+=("$sys=exp/$sys")
  done
  asr results --title "Results of recipes/synth (quick=$quick)" \
    --command "recipes/synth/run.sh --quick $quick --baselines $baselines" \
    --corpus-json data/local/corpus.json --lm-ppl exp/lm/lm5.test_ppl.txt \
    --markdown $results_md --json exp/results.json --link-best exp/final "${specs[@]}"
  log "stage 9: wrote $results_md and exp/results.json; exp/final -> $(readlink exp/final)"
fi

# Stage 10 (off by default): the LSTM family comparison and depth study
if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 10 ]; then
  # shellcheck disable=SC2086
  local/compare_families.sh --nj "$nj" --results-md "$results_md" $compare_opts
fi
