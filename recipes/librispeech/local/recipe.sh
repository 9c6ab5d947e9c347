#!/usr/bin/env bash
# The stages of the LibriSpeech recipes, shared by recipes/librispeech/run.sh and
# recipes/mini_librispeech/run.sh: those set the corpus facts (parts, LMs, sizes) and source
# this file with "$@" from their own directory; outputs go to data/ and exp/ there.
#
#   0 download (OpenSLR 12 or 31 parts; 11 lexicon and LMs)   6 HCLG with the first-pass LM
#   1 data dirs (asr prep-librispeech)                         7 LSTMP training, priors, model dir
#   2 dict (librispeech-lexicon.txt) + lang dir                8 decoding of the eval sets, in parallel
#   3 LMs: official pruned/full, or our own 5-gram; ppl        9 lattice rescoring with the big LM
#   4 fbank + CMVN                                            10 scoring, RESULTS.md, exp/results.json
#   5 alignments: a Kaldi exp dir (asr import-kaldi-exp) or flat start; held-out speakers

# the command as given, quoted for the shell (RESULTS.md records it)
recipe_args=$([ $# -eq 0 ] || printf ' %q' "$@")
# --- corpus facts (set by run.sh before sourcing) --------------------------------------
: "${corpus:?run.sh sets corpus}" "${parts_resource:?}" "${train_parts:?}" "${eval_pairs:?}" "${example:?}"

# --- options (run.sh sets the corpus's defaults of nj, cv_utts, train_conf and the LM names) --
stage=0                       # first stage to run (stages: above)
stop_stage=10                 # last stage to run
nj=${nj:?}                    # parallel jobs for features and flat start
corpus_dir=corpus             # holds LibriSpeech/PART (downloaded there by stage 0); given relative: to where run.sh is started
lm_dir=                       # OpenSLR 11 files: lexicon, LMs (default CORPUS_DIR/lm)
alignments=kaldi              # kaldi: a Kaldi experiment's (--kaldi-ali-dir); flat: flat start from the transcripts
kaldi_ali_dir=                # with --alignments kaldi: a Kaldi tri*_ali (or tri*) dir
kaldi_lang_dir=               # the Kaldi lang dir it was trained with (when its phones.txt differs from ours)
kaldi_graph_dir=              # a Kaldi graph dir to import with it (for --graph kaldi)
flat_opts=                    # with --alignments flat: more `asr flat-start` options (e.g. "--rounds 3 --num-leaves 3000")
graph=ours                    # ours: HCLG built here; kaldi: the imported Kaldi graph (--kaldi-graph-dir)
own_lm=false                  # true: our own 5-gram from librispeech-lm-norm.txt.gz (full + pruned)
own_lm_opts="--min-counts 1,1,2"   # with --own-lm true: `asr make-lm` options of the 5-gram
own_lm_prune=1e-7             # with --own-lm true: relative-entropy threshold of its first-pass version
first_lm_name=${first_lm_name:?}    # first-pass LM in --lm-dir (OpenSLR 11)
rescore_lm_name=${rescore_lm_name:?}  # lattice-rescoring LM in --lm-dir (OpenSLR 11)
train_workers=1               # training processes (asr train --workers N; docs/distributed.md)
train_mode=ddp                # with --train-workers > 1: ddp (synchronous) or asgd (asynchronous, Sak et al.)
device=cpu                    # cpu | cuda (training)
train_conf=${train_conf:?}    # network and training config (asr train --config)
train_opts=                   # more `asr train` options (e.g. "--num-threads 8")
cv_utts=${cv_utts:?}          # held-out training utterances (whole speakers) for the frame accuracy monitor
decode_nj=1                   # decoding jobs per eval set (the sets run in parallel)
decode_opts="--beam 13 --lattice-beam 8"   # `asr decode` search options
__options="stage stop_stage nj corpus_dir lm_dir alignments kaldi_ali_dir kaldi_lang_dir kaldi_graph_dir flat_opts graph own_lm
  own_lm_opts own_lm_prune first_lm_name rescore_lm_name train_workers train_mode device train_conf train_opts cv_utts decode_nj
  decode_opts"
__int_options="stage stop_stage nj train_workers cv_utts decode_nj"
__last_stage=10
help_message="Usage: run.sh [--stage N] [--stop-stage M] --corpus-dir DIR [--alignments kaldi --kaldi-ali-dir DIR
         [--kaldi-lang-dir DIR] [--kaldi-graph-dir DIR] | --alignments flat [--flat-opts '...']] [--train-workers N [--train-mode ddp|asgd]] [--device cuda] ...
$corpus recipe (outputs in data/ and exp/ beside run.sh). Stages:
  0 download        1 data dirs        2 dict + lang     3 LMs (+ perplexity)   4 fbank + CMVN
  5 alignments      6 HCLG             7 training        8 decoding             9 rescoring
  10 scoring, RESULTS.md
e.g.: $example"
__path_options_given=$(for __a in "$@"; do
  for __v in corpus_dir lm_dir kaldi_ali_dir kaldi_lang_dir kaldi_graph_dir train_conf; do
    [[ $__a == --${__v//_/-} || $__a == --${__v//_/-}=* ]] && echo "$__v"
  done
done; true)
. ../../scripts/parse_options.sh
. ../../scripts/log.sh
. ../../scripts/stages.sh

# run.sh works in its own dir (cd by run.sh; OLDPWD is where it was started): a relative path
# given on the command line is relative to where run.sh was started, as users expect (the
# defaults, corpus and ../../conf/..., stay relative to run.sh's dir)
for __v in $__path_options_given; do
  [[ -z ${!__v} || ${!__v} == /* ]] || printf -v "$__v" '%s' "$OLDPWD/${!__v}"
done
unset __v __path_options_given

export PYTHONPATH="$(cd ../.. && pwd)${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's asr package
asr() { python -m asr "$@"; }
lm_dir=${lm_dir:-$corpus_dir/lm}
set_name() { echo "${1//-/_}"; }   # part name -> data dir name (dev-clean -> dev_clean)
eval_parts=$(for p in $eval_pairs; do echo "${p%%=*}"; if [ "${p#*=}" != "$p" ]; then echo "${p#*=}"; fi; done)
eval_sets=$(for p in $eval_parts; do set_name "$p"; done)
score_pairs=$(for p in $eval_pairs; do set_name "$p" | tr '\n' ' '; done)
mkdir -p exp
stage_seconds() { echo "stage $1: $((SECONDS - $2)) s" >> exp/stage_seconds.txt; }
# what a data dir is made from: the corpus dir, SPEAKERS.TXT, and per part its files' names and
# sizes (not the audio's content: too big to read on every run) and its transcripts
corpus_signature() {  # PART...
  local p
  signature "corpus: $corpus_dir" "$corpus_dir/LibriSpeech/SPEAKERS.TXT"
  for p in "$@"; do
    (cd "$corpus_dir/LibriSpeech/$p" && echo "part $p: $(find . -type f -printf '%p %s\n' | LC_ALL=C sort | md5sum)" \
      "$(find . -name '*.trans.txt' -print0 | LC_ALL=C sort -z | xargs -0r cat | md5sum)")
  done
}

# --corpus-dir holds LibriSpeech/PART (as Kaldi's): given LibriSpeech/ itself, stage 0 would fetch
# every part again into LibriSpeech/LibriSpeech
for p in $train_parts $eval_parts; do
  [ -d "$corpus_dir/LibriSpeech/$p" ] || [ ! -d "$corpus_dir/$p" ] ||
    die "--corpus-dir $corpus_dir holds the part $p itself; give the dir above it, which holds LibriSpeech/$p: --corpus-dir $(dirname "$corpus_dir")"
done

# the LMs of the first pass and of rescoring
if [ "$own_lm" = true ]; then
  first_lm=exp/lm/lm5_pruned.arpa; rescore_lm=exp/lm/lm5.arpa
else
  first_lm=$lm_dir/$first_lm_name; rescore_lm=$lm_dir/$rescore_lm_name
fi
case $graph in
  ours) graph_dir=exp/graph ;;
  kaldi) graph_dir=exp/ali/graph ;;
  *) die "--graph is ours or kaldi, not '$graph'" ;;
esac

if stage_on 0; then
  t0=$SECONDS
  log "stage 0: download into $corpus_dir (OpenSLR $parts_resource) and $lm_dir (OpenSLR 11)"
  # shellcheck disable=SC2086
  asr download-openslr "$parts_resource" "$corpus_dir" $train_parts $eval_parts
  lm_files="librispeech-lexicon.txt $first_lm_name $rescore_lm_name"
  [ "$own_lm" = true ] && lm_files="$lm_files librispeech-lm-norm.txt.gz"
  # shellcheck disable=SC2086
  asr download-openslr 11 "$lm_dir" $lm_files
  stage_seconds 0 $t0
fi

if stage_on 1; then
  t0=$SECONDS
  for p in $train_parts $eval_parts; do require "$corpus_dir/LibriSpeech/$p" 0; done
  # each data dir is redone when its parts changed (DIR/.prep.sig); prep-librispeech replaces it whole
  prep_data_dir() {  # DIR PART...
    local d=$1 sig p srcs=(); shift
    for p in "$@"; do srcs+=("$corpus_dir/LibriSpeech/$p"); done   # an array: the corpus path may hold spaces
    sig=$(corpus_signature "$@")
    if [ -f "$d/spk2utt" ] && has_signature "$d/.prep.sig" "$sig"; then
      log "stage 1: $d is up to date"
    else
      log "stage 1: $d from $*"
      asr prep-librispeech "${srcs[@]}" "$d"
      echo "$sig" > "$d/.prep.sig"
    fi
  }
  # shellcheck disable=SC2086
  prep_data_dir data/train $train_parts
  for p in $eval_parts; do prep_data_dir "data/$(set_name "$p")" "$p"; done
  stage_seconds 1 $t0
fi

if stage_on 2; then
  t0=$SECONDS
  if [ -n "$kaldi_lang_dir" ]; then
    # the Kaldi experiment's own lang dir: its phone ids are the ones of the alignments
    require "$kaldi_lang_dir/phones.txt" "$kaldi_lang_dir/L_disambig.fst" 2
    # data/lang/.lang.sig: the content of every file of the lang dir copied (or of the dict dir
    # of our own lang dir: lang_from_dict)
    sig=$(signature "a Kaldi lang dir" "$kaldi_lang_dir")
    if has_signature data/lang/.lang.sig "$sig"; then
      log "stage 2: data/lang is the Kaldi lang dir $kaldi_lang_dir; skipping"
    else
      log "stage 2: using the Kaldi lang dir $kaldi_lang_dir as data/lang"
      rm -rf data/lang.tmp; cp -r "$kaldi_lang_dir" data/lang.tmp; echo "$sig" > data/lang.tmp/.lang.sig
      rm -rf data/lang; mv data/lang.tmp data/lang
    fi
  else
    require "$lm_dir/librispeech-lexicon.txt" 0
    sig=$(signature "$lm_dir/librispeech-lexicon.txt")
    if [ -f data/local/dict/lexicon.txt ] && has_signature data/local/dict/.dict.sig "$sig"; then
      log "stage 2: data/local/dict is up to date"
    else
      log "stage 2: data/local/dict from $lm_dir/librispeech-lexicon.txt"
      asr prepare-dict "$lm_dir/librispeech-lexicon.txt" data/local/dict   # replaces the dir whole
      echo "$sig" > data/local/dict/.dict.sig
    fi
    lang_from_dict data/local/dict data/lang
  fi
  stage_seconds 2 $t0
fi

if stage_on 3; then
  t0=$SECONDS
  require data/lang/words.txt 2
  mkdir -p exp/lm
  if [ "$own_lm" = true ]; then
    require "$lm_dir/librispeech-lm-norm.txt.gz" 0
    # redone when the text, the vocabulary or the options change (exp/lm/.lm5.sig); the pruned
    # LM when the full one or the threshold does
    sig=$(signature "$lm_dir/librispeech-lm-norm.txt.gz" data/lang/words.txt "make-lm options: $own_lm_opts")
    if [ -f exp/lm/lm5.arpa ] && has_signature exp/lm/.lm5.sig "$sig"; then
      log "stage 3: exp/lm/lm5.arpa is up to date"
    else
      rm -f exp/lm/.lm5.sig
      log "stage 3: our own 5-gram from librispeech-lm-norm.txt.gz ($own_lm_opts)"
      # shellcheck disable=SC2086
      asr make-lm --order 5 --vocab data/lang/words.txt --unk '<UNK>' $own_lm_opts --tmp-dir exp/lm \
        "$lm_dir/librispeech-lm-norm.txt.gz" exp/lm/lm5.arpa
      echo "$sig" > exp/lm/.lm5.sig
    fi
    sig=$(signature exp/lm/.lm5.sig "prune threshold: $own_lm_prune")
    if [ -f exp/lm/lm5_pruned.arpa ] && has_signature exp/lm/.lm5_pruned.sig "$sig"; then
      log "stage 3: exp/lm/lm5_pruned.arpa is up to date"
    else
      rm -f exp/lm/.lm5_pruned.sig
      asr prune-lm --threshold "$own_lm_prune" exp/lm/lm5.arpa exp/lm/lm5_pruned.arpa
      echo "$sig" > exp/lm/.lm5_pruned.sig
    fi
  fi
  require "$first_lm" "$rescore_lm" 0
  for x in $eval_sets; do
    require data/$x/text 1
    cut -d' ' -f2- data/$x/text > exp/lm/$x.txt
    asr lm-ppl --unk "$first_lm" exp/lm/$x.txt > exp/lm/ppl_first_pass_$x.txt
    log "stage 3: $x under the first-pass LM: $(tail -1 exp/lm/ppl_first_pass_$x.txt)"
  done
  stage_seconds 3 $t0
fi

if stage_on 4; then
  t0=$SECONDS
  features "$nj" ../../conf/fbank.conf data/train $(for x in $eval_sets; do echo data/$x; done)
  global_cmvn data/train
  stage_seconds 4 $t0
fi

if stage_on 5; then
  t0=$SECONDS
  require data/train/feats.scp 4
  require data/lang/phones.txt 2
  case $alignments in
    kaldi)
      [ -n "$kaldi_ali_dir" ] || die "--alignments kaldi needs --kaldi-ali-dir DIR (a Kaldi tri*_ali dir: ali.*.gz, final.mdl, tree, phones.txt)"
      graph_opt=()
      [ -n "$kaldi_graph_dir" ] && graph_opt=(--graph-dir "$kaldi_graph_dir")
      # left as it is when imported from the same experiment, graph and data (fingerprints)
      log "stage 5: importing the Kaldi experiment $kaldi_ali_dir"
      asr import-kaldi-exp "${graph_opt[@]}" data/train data/lang "$kaldi_ali_dir" exp/ali ;;
    flat)
      # from the transcripts alone (docs/flat-start.md); exp/ali is an alignment dir as an
      # import's, left as it is when made from the same data, lang dir and options. Words of the
      # transcripts missing from librispeech-lexicon.txt (the real train parts have some) become
      # <UNK> (data/lang/oov.txt, spoken noise), as in Kaldi's recipe
      log "stage 5: flat-start alignments from the transcripts"
      # shellcheck disable=SC2086
      asr flat-start --nj "$nj" --map-oov $flat_opts data/train data/lang exp/ali ;;
    *) die "--alignments is kaldi or flat, not '$alignments'" ;;
  esac
  # redone when data/train or --cv-utts change (data/train_cv/.split.sig)
  sig=$(signature "cv utterances: $cv_utts" data/train/spk2utt data/train/feats.scp data/train/fbank.conf \
    data/train/cmvn.scp)
  if [ -f data/train_tr/feats.scp ] && has_signature data/train_cv/.split.sig "$sig"; then
    log "stage 5: data/train_tr and data/train_cv are up to date"
  else
    rm -f data/train_cv/.split.sig
    log "stage 5: held-out speakers (about $cv_utts utterances) into data/train_cv, the others into data/train_tr"
    # held-out speakers (about $cv_utts utterances) for the frame accuracy monitor: every m-th speaker
    awk -v n="$cv_utts" 'NR == FNR { u += NF - 1; next }
      FNR == 1 { m = int(u / n); if (m < 2) m = 2 }
      (FNR - 1) % m == 0 && got < n { print $1 > "exp/ali/cv_speakers"; got += NF - 1; next }
      { print $1 > "exp/ali/tr_speakers" }' data/train/spk2utt data/train/spk2utt
    asr subset-data-dir --spk-list exp/ali/cv_speakers data/train data/train_cv
    asr subset-data-dir --spk-list exp/ali/tr_speakers data/train data/train_tr
    echo "$sig" > data/train_cv/.split.sig
  fi
  stage_seconds 5 $t0
fi

if stage_on 6; then
  t0=$SECONDS
  if [ "$graph" = kaldi ]; then
    [ -f exp/ali/graph/HCLG.fst ] || die "--graph kaldi: no exp/ali/graph; import the Kaldi graph with stage 5 and --kaldi-graph-dir DIR"
    log "stage 6: decoding with the imported Kaldi graph exp/ali/graph (built with its own first-pass LM)"
  else
    require exp/ali/final.mdl 5
    require "$first_lm" 3
    decoding_graph data/lang exp/ali "$first_lm" exp/graph
  fi
  stage_seconds 6 $t0
fi

if stage_on 7; then
  t0=$SECONDS
  require exp/ali/ali.pdf.ark data/train_tr/feats.scp data/train_cv/feats.scp 5
  require "$graph_dir/HCLG.fst" 6
  [ "$train_workers" -ge 1 ] || die "--train-workers is 1 or more"
  workers_opt=()
  [ "$train_workers" -gt 1 ] && workers_opt=(--workers "$train_workers" --mode "$train_mode")
  # shellcheck disable=SC2086
  train_system "$train_conf" data/train_tr exp/ali/ali.pdf.ark data/train_cv exp/ali/ali.pdf.ark exp/ali exp/lstmp \
    --device "$device" "${workers_opt[@]}" $train_opts
  # re-packed only when an input changed (a new graph, LM, training run)
  model_dir exp/lstmp exp/ali data/lang "$graph_dir" "$first_lm" "$rescore_lm" ../../conf/fbank.conf data/train
  stage_seconds 7 $t0
fi

if stage_on 8; then
  t0=$SECONDS
  require exp/lstmp/.model_dir 7
  # shellcheck disable=SC2086
  decode_sets exp/lstmp/final "$decode_nj" "$decode_opts" exp/lstmp $eval_sets
  stage_seconds 8 $t0
fi

if stage_on 9; then
  t0=$SECONDS
  # shellcheck disable=SC2086
  rescore_sets "$first_lm" "$rescore_lm" "$graph_dir/words.txt" 1 exp/lstmp $eval_sets
  stage_seconds 9 $t0
fi

if stage_on 10; then
  t0=$SECONDS
  # shellcheck disable=SC2086
  score_sets "$graph_dir/words.txt" exp/lstmp $score_pairs
  notes=()
  for x in $eval_sets; do
    if [ -f exp/lm/ppl_first_pass_$x.txt ]; then
      notes+=(--note "$x perplexity under the first-pass LM ($(basename "$first_lm")): $(grep -o 'ppl= *[0-9.]*' exp/lm/ppl_first_pass_$x.txt | tr -s ' ')")
    fi
  done
  notes+=(--note "alignments: $alignments${kaldi_ali_dir:+ ($kaldi_ali_dir)}; graph: $graph; rescoring LM: $(basename "$rescore_lm")")
  # shellcheck disable=SC2086
  asr results --title "Results of recipes/$corpus" --command "recipes/$corpus/run.sh$recipe_args" \
    --eval-pairs $score_pairs \
    --data-dirs data/train $(for x in $eval_sets; do echo data/$x; done) "${notes[@]}" \
    --markdown RESULTS.md --json exp/results.json --link-best exp/final lstmp=exp/lstmp
  stage_seconds 10 $t0
  log "stage 10: wrote RESULTS.md and exp/results.json"
fi
