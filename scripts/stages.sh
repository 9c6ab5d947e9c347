#!/usr/bin/env bash
# Pipeline steps shared by recipes (source after parse_options.sh and log.sh; needs an `asr`
# function or command). Each step checks its inputs, skips work whose outputs are complete
# and up to date, and leaves nothing that looks finished when it fails, so re-running a
# recipe is safe. Corpus-specific parts (download, data prep, sizes) stay in the recipes.
#
#   lang_from_dict DICT LANG                         asr prepare-lang (redone when DICT is newer)
#   features NJ FBANK_CONF DATA...                   40-dim fbank + per-speaker CMVN per data dir
#   global_cmvn TRAIN                                TRAIN/global_cmvn.stats (asr compute-cmvn --global)
#   decoding_graph LANG TREE_DIR LM GRAPH            HCLG (asr make-graph redoes it when an input changed)
#   train_system CONF TRAIN ALI DEV DEV_ALI TREE EXP [TRAIN_OPTS...]
#                                                    asr train (resumes), priors; EXP/.trained
#   model_dir EXP TREE LANG GRAPH FIRST_LM RESCORE_LM FBANK_CONF TRAIN
#                                                    EXP/final packed into a self-contained model dir
#                                                    (asr pack-model-dir: checked, fingerprinted)
# asr make-fbank, make-graph, pack-model-dir, decode and lmrescore leave an output made from the
# same inputs (content fingerprints) as it is, so the steps below call them on every run.
#   decode_sets MODEL_DIR NJ "DECODE_OPTS" EXP SET... one background job per data/SET, then wait
#   rescore_sets OLD_LM NEW_LM WORDS NJ EXP SET...   lattice rescoring of EXP/decode_SET, in parallel
#   score_sets WORDS EXP TUNE[=TEST]...             LM-weight sweep on TUNE, applied to TEST

lang_from_dict() {
  local dict=$1 lang=$2 lex
  lex=$dict/lexicon.txt; [ -f "$dict/lexiconp.txt" ] && lex=$dict/lexiconp.txt
  [ -f "$lex" ] || die "lang_from_dict: no lexicon in $dict"
  if [ -f "$lang/L_disambig.fst" ] && [ "$lang/L_disambig.fst" -nt "$lex" ]; then
    log "$lang is up to date"
  else
    asr prepare-lang "$dict" "$lang"
  fi
}

features() {
  local nj=$1 conf=$2 d; shift 2
  for d in "$@"; do
    [ -f "$d/wav.scp" ] || die "features: no $d/wav.scp"
    log "fbank + CMVN for $d"
    # finished jobs whose audio (path, size, mtime) and options are unchanged are kept; feats.scp
    # is rewritten only when it changes
    asr make-fbank --config "$conf" --nj "$nj" "$d" "$d/data"
    if [ -f "$d/cmvn.scp" ] && [ "$d/cmvn.scp" -nt "$d/feats.scp" ]; then
      log "$d/cmvn.scp is up to date"
    else
      asr compute-cmvn "$d"
    fi
  done
}

# the training data's global CMVN stats (the model dir carries them: online CMVN's prior in
# streaming, the stats of models trained with cmvn global/online)
global_cmvn() {
  local d=$1
  if [ -f "$d/global_cmvn.stats" ] && [ "$d/global_cmvn.stats" -nt "$d/feats.scp" ]; then
    log "$d/global_cmvn.stats is up to date"
  else
    asr compute-cmvn --global "$d"
  fi
}

decoding_graph() {
  local lang=$1 tree=$2 lm=$3 graph=$4
  log "HCLG from $lang, $tree and $lm into $graph"
  asr make-graph "$lang" "$tree" "$lm" "$graph"
}

train_system() {
  local conf=$1 train=$2 ali=$3 dev=$4 dev_ali=$5 tree=$6 exp=$7 resume=""; shift 7
  if [ -f "$exp/.trained" ] && [ "$exp/.trained" -nt "$ali" ]; then
    log "$exp is trained; skipping"; return 0
  fi
  # an interrupted training continues; one made from other features or alignments starts afresh
  [ -f "$exp/checkpoint.pt" ] && resume="--resume --restart-if-changed"
  log "training $exp ($conf)"
  asr train --config "$conf" --feats "$train" --ali "$ali" --dev-feats "$dev" --dev-ali "$dev_ali" \
    --num-pdfs "$(cat "$tree/num_pdfs")" --out "$exp" $resume "$@"
  asr compute-priors --model-dir "$exp/final" --silence-pdfs "$tree/silence_pdfs.int" "$ali"
  touch "$exp/.trained"
}

model_dir() {
  local exp=$1 tree=$2 lang=$3 graph=$4 first_lm=$5 rescore_lm=$6 fbank_conf=$7 train=$8
  [ -f "$exp/final/log_priors.npy" ] || die "model_dir: $exp/final has no log_priors.npy (train first)"
  [ -f "$train/global_cmvn.stats" ] || die "model_dir: no $train/global_cmvn.stats (global_cmvn $train first)"
  # big LMs and graphs are hard-linked, not copied
  asr pack-model-dir --tree-dir "$tree" --lang "$lang" --fbank-config "$fbank_conf" --graph-dir "$graph" \
    --first-pass-lm "$(readlink -f "$first_lm")" --rescore-lm "$(readlink -f "$rescore_lm")" \
    --global-cmvn "$train/global_cmvn.stats" "$exp/final"
  touch "$exp/.model_dir"
}

# background jobs: one per set; fails if any fails (after all have ended)
_run_parallel() {  # NAME CMD_FUNCTION SET...
  local what=$1 fn=$2 pids=() sets=() s i failed=0; shift 2
  for s in "$@"; do "$fn" "$s" & pids+=($!); sets+=("$s"); done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log "ERROR: $what of ${sets[$i]} failed"; failed=1; }
  done
  [ $failed = 0 ] || die "$what failed (see the messages above)"
}

decode_sets() {
  local model=$1 nj=$2 opts=$3 exp=$4; shift 4
  _decode_one() {
    local x=$1 out=$exp/decode_$1
    [ -f "data/$x/feats.scp" ] || die "decode: no data/$x/feats.scp (compute the features first)"
    log "decoding data/$x into $out"
    # shellcheck disable=SC2086
    asr decode --model-dir "$model" --nj "$nj" --lattices --no-progress $opts "data/$x" "$out"
  }
  _run_parallel decoding _decode_one "$@"
}

rescore_sets() {
  local old=$1 new=$2 words=$3 nj=$4 exp=$5; shift 5
  _rescore_one() {
    local x=$1 in=$exp/decode_$1 out=$exp/decode_$1_rescore
    [ -f "$in/decode.json" ] || die "rescore: $in is not decoded"
    log "rescoring $in with $new"
    asr lmrescore --old-lm "$old" --new-lm "$new" --words "$words" --nj "$nj" "$in" "$out"
  }
  _run_parallel rescoring _rescore_one "$@"
}

score_sets() {
  local words=$1 exp=$2 pair tune test pass; shift 2
  for pair in "$@"; do
    tune=${pair%%=*}; test=${pair#*=}; [ "$test" = "$pair" ] && test=
    for pass in "" _rescore; do
      asr score-lattices --words "$words" "data/$tune" "$exp/decode_$tune$pass"
      [ -z "$test" ] || asr score-lattices --words "$words" --best-from "$exp/decode_$tune$pass" \
        "data/$test" "$exp/decode_$test$pass"
    done
  done
}
