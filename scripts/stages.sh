#!/usr/bin/env bash
# Pipeline steps shared by recipes (source after parse_options.sh and log.sh; needs an `asr`
# function or command). Each step checks its inputs, skips work whose outputs are complete
# and up to date, and leaves nothing that looks finished when it fails, so re-running a
# recipe is safe. Corpus-specific parts (download, data prep, sizes) stay in the recipes.
#
#   signature ARG...                                 what a product is made from (below)
#   has_signature FILE SIG                           FILE holds SIG: the product is up to date
#   lang_from_dict DICT LANG                         asr prepare-lang (redone when DICT's files change)
#   features NJ FBANK_CONF DATA...                   40-dim fbank + per-speaker CMVN per data dir
#   global_cmvn TRAIN                                TRAIN/global_cmvn.stats (asr compute-cmvn --global)
#   decoding_graph LANG TREE_DIR LM GRAPH            HCLG (asr make-graph redoes it when an input changed)
#   train_system CONF TRAIN ALI DEV DEV_ALI TREE EXP [TRAIN_OPTS...]
#                                                    asr train (resumes), priors; EXP/.trained
#                                                    (redone when CONF, data, ALI or TRAIN_OPTS change)
#   model_dir EXP TREE LANG GRAPH FIRST_LM RESCORE_LM FBANK_CONF TRAIN
#                                                    EXP/final packed into a self-contained model dir
#                                                    (asr pack-model-dir: checked, fingerprinted)
# asr make-fbank, make-graph, pack-model-dir, decode and lmrescore leave an output made from the
# same inputs (content fingerprints) as it is, so the steps below call them on every run.
#   decode_sets MODEL_DIR NJ "DECODE_OPTS" EXP SET... one background job per data/SET, then wait
#   rescore_sets OLD_LM NEW_LM WORDS NJ EXP SET...   lattice rescoring of EXP/decode_SET, in parallel
#   score_sets WORDS EXP TUNE[=TEST]...             LM-weight sweep on TUNE, applied to TEST

# Up-to-date checks compare content, not times: a step computes the signature of its inputs,
# skips its work when the signature file beside its output holds the same, else removes that
# file, does the work and writes the signature last (an interrupted step is redone):
#   sig=$(signature "$conf" "opts: $opts")
#   if has_signature "$out/.sig" "$sig"; then log "$out is up to date"
#   else rm -f "$out/.sig"; make "$out"; echo "$sig" > "$out/.sig"; fi
# signature ARG...: one line per ARG: an existing file's md5sum (its content, not its name), a
# directory's (every file in it, by relative name), anything else as it is
signature() {
  local a
  for a in "$@"; do
    if [ -f "$a" ]; then echo "file $(md5sum < "$a" | cut -d' ' -f1)"
    elif [ -d "$a" ]; then echo "dir $(cd "$a" && find . -type f ! -name '.*.sig' -print0 | LC_ALL=C sort -z | xargs -0r md5sum | md5sum | cut -d' ' -f1)"
    else echo "value $a"
    fi
  done
}
has_signature() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

lang_from_dict() {
  local dict=$1 lang=$2 sig
  [ -f "$dict/lexicon.txt" ] || [ -f "$dict/lexiconp.txt" ] || die "lang_from_dict: no lexicon in $dict"
  sig=$(signature "lang from a dict dir" "$dict")
  if has_signature "$lang/.lang.sig" "$sig"; then
    log "$lang is up to date"
  else
    log "$lang from $dict"
    asr prepare-lang "$dict" "$lang"   # replaces the dir whole (also a Kaldi lang dir that was there)
    echo "$sig" > "$lang/.lang.sig"
  fi
}

features() {
  local nj=$1 conf=$2 d sig; shift 2
  for d in "$@"; do
    [ -f "$d/wav.scp" ] || die "features: no $d/wav.scp"
    log "fbank + CMVN for $d"
    # finished jobs whose audio (path, size, mtime) and options are unchanged are kept; feats.scp
    # is rewritten only when it changes
    asr make-fbank --config "$conf" --nj "$nj" "$d" "$d/data"
    sig=$(signature "$d/feats.scp" "$d/spk2utt")
    if [ -f "$d/cmvn.scp" ] && has_signature "$d/.cmvn.sig" "$sig"; then
      log "$d/cmvn.scp is up to date"
    else
      rm -f "$d/.cmvn.sig"
      asr compute-cmvn "$d"
      echo "$sig" > "$d/.cmvn.sig"
    fi
  done
}

# the training data's global CMVN stats (the model dir carries them: online CMVN's prior in
# streaming, the stats of models trained with cmvn global/online)
global_cmvn() {
  local d=$1 sig
  sig=$(signature "$d/feats.scp")
  if [ -f "$d/global_cmvn.stats" ] && has_signature "$d/.global_cmvn.sig" "$sig"; then
    log "$d/global_cmvn.stats is up to date"
  else
    rm -f "$d/.global_cmvn.sig"
    asr compute-cmvn --global "$d"
    echo "$sig" > "$d/.global_cmvn.sig"
  fi
}

decoding_graph() {
  local lang=$1 tree=$2 lm=$3 graph=$4
  log "HCLG from $lang, $tree and $lm into $graph"
  asr make-graph "$lang" "$tree" "$lm" "$graph"
}

train_system() {
  local conf=$1 train=$2 ali=$3 dev=$4 dev_ali=$5 tree=$6 exp=$7 resume="" sig a skip=false opts=(); shift 7
  # EXP/.trained: the signature of what the network is made from (the options less the device,
  # which is where it is trained, not what from)
  for a in "$@"; do
    if $skip; then skip=false; elif [ "$a" = --device ]; then skip=true; else opts+=("$a"); fi
  done
  sig=$(signature "$conf" "$train/feats.scp" "$train/fbank.conf" "$dev/feats.scp" "$dev/fbank.conf" "$ali" "$dev_ali" \
    "$tree/num_pdfs" "$tree/silence_pdfs.int" "options: ${opts[*]}")
  if [ -d "$exp/final" ] && has_signature "$exp/.trained" "$sig"; then
    log "$exp is trained; skipping"; return 0
  fi
  # nothing of an older training may look finished (.model_dir: packed for decoding)
  rm -f "$exp/.trained" "$exp/.model_dir"
  # an interrupted training of the same inputs (EXP/.training) continues; any other starts afresh
  # (without the network of an older one: final/ is written when a training has finished)
  if [ -f "$exp/checkpoint.pt" ] && has_signature "$exp/.training" "$sig"; then
    resume="--resume --restart-if-changed"
  else
    rm -rf "$exp/checkpoint.pt" "$exp/final" "$exp/.best-model"
  fi
  mkdir -p "$exp"; echo "$sig" > "$exp/.training"
  log "training $exp ($conf)"
  asr train --config "$conf" --feats "$train" --ali "$ali" --dev-feats "$dev" --dev-ali "$dev_ali" \
    --num-pdfs "$(cat "$tree/num_pdfs")" --out "$exp" $resume "$@"
  [ -d "$exp/final" ] || die "$exp: the training stopped before its last epoch (--max-updates?): no $exp/final"
  asr compute-priors --model-dir "$exp/final" --silence-pdfs "$tree/silence_pdfs.int" "$ali"
  mv "$exp/.training" "$exp/.trained"
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
