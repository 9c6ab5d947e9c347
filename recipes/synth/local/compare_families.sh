#!/usr/bin/env bash
# Stage 10 of recipes/synth/run.sh (off by default): compare the LSTM family at an equal
# parameter budget and an equal number of updates, decode each system, and append tables
# to RESULTS.md and entries to exp/results.json.
#
#   1. families: lstmp, lstm (Greff's vanilla), the eight Greff variants lstm_<flag>,
#      residual_lstm, highway_lstm, ltlstm — all at --layers layers;
#   2. depth study: plain lstm, residual_lstm, highway_lstm, ltlstm at each of --depth-layers
#      (the seeds' claim: plain degrades with depth, residual/ltLSTM do not).
#
# Every system: config = --base-config's training: section + the family's model: section
# sized to about --budget parameters (local/family_study.py make-config), `asr train` with
# the same --epochs (hence the same updates), priors, `asr decode` on the test set,
# `asr compute-wer`. --train-utts N trains every system on the same N utterances spread
# evenly over the training set (default 1500 of the synth corpus's 5,399, about 1.4 h: 17
# trainings of the whole set do not fit in an hour on 2 cores). --jobs J runs J systems at
# once, each training and decoding on one thread (so train frames/s are 1-thread figures).
# The depth study reuses the family runs at --layers layers instead of training them again. Finished steps are skipped when re-run (delete exp/compare/<system> to redo one). The tables also go to
# exp/compare/tables.md (stage 9's `asr results --markdown` rewrites RESULTS.md: run this after it).
#
# Run from recipes/synth (run.sh does):  local/compare_families.sh [options]
set -euo pipefail
cd "$(dirname "$0")/.."
. ../../scripts/log.sh

base_config=../../conf/lstmp.yaml   # its training: section (and cell_clip/init_scale) are used
train_data=data/train                # training data dir (features: stage 2)
train_utts=1500                      # train on N utterances spread over train_data ("" = all)
dev_data=data/dev                    # dev data dir (frame accuracy monitor)
test_data=data/test                  # data dir every system is decoded and scored on
tree_dir=exp/tree                    # ali.pdf.ark, num_pdfs, silence_pdfs.int, final.mdl, tree (stage 3)
dev_ali=exp/ali_dev/ali.pdf.ark      # dev alignments (frame accuracy monitor, stage 3)
graph_dir=exp/graph                  # HCLG of the pruned LM (stage 5)
lang_dir=data/lang                   # lang dir (words.txt for scoring)
budget=300000                        # parameters per system (all layers + output layer)
epochs=6                             # epochs per system: same data, streams and chunk -> same updates
max_updates=""                       # optional cap on updates (dev accuracy is measured at epoch ends)
layers=3                             # layers of every family system
depth_layers="3 8"                   # the depths of the depth study
systems="lstmp lstm lstm_nig lstm_nfg lstm_nog lstm_niaf lstm_noaf lstm_np lstm_cifg lstm_fgr residual_lstm highway_lstm ltlstm"  # the family comparison's systems
depth_systems="lstm residual_lstm highway_lstm ltlstm"  # the depth study's systems
do_families=true                     # run the family comparison
do_depth=true                        # run the depth study
nj=2                                 # decoding jobs when --jobs 1
jobs=2                               # systems trained/decoded at once (1 thread each when > 1)
out=exp/compare                      # where the systems and tables go
results_md=RESULTS.md                # the report the tables are appended to
__options="results_md base_config train_data train_utts dev_data test_data tree_dir dev_ali graph_dir lang_dir budget epochs max_updates layers depth_layers systems depth_systems do_families do_depth nj jobs out"
__int_options="nj jobs epochs layers budget"
help_message="Usage: local/compare_families.sh [options] (from recipes/synth, after run.sh's stage 9)
LSTM family comparison and depth study at an equal parameter budget and number of updates.
e.g.: local/compare_families.sh --train-utts 500 --jobs 4 --do-depth false"
. ../../scripts/parse_options.sh || exit 1

[ -f "$base_config" ] || die "no base config $base_config (--base-config)"
require "$train_data/feats.scp" "$test_data/feats.scp" 2
require "$tree_dir/ali.pdf.ark" "$tree_dir/num_pdfs" "$tree_dir/silence_pdfs.int" 3
require "$graph_dir/HCLG.fst" 5
num_pdfs=$(cat "$tree_dir/num_pdfs")
num_inputs=$(python -c "import kaldiio,sys; f=next(iter(kaldiio.load_scp('$train_data/feats.scp').values())); print(f.shape[1])")
cmd_line="local/compare_families.sh --budget $budget --epochs $epochs${max_updates:+ --max-updates $max_updates} --layers $layers --depth-layers \"$depth_layers\" --train-utts \"$train_utts\" --jobs $jobs"
cap_opts=()
[ -n "$max_updates" ] && cap_opts=(--max-updates "$max_updates")

# the training subset: N utterances, evenly spaced in the sorted list (all speakers)
if [ -n "$train_utts" ]; then
  sub=$out/data/train_$train_utts
  if [ ! -f "$sub/feats.scp" ]; then
    total=$(wc -l < "$train_data/feats.scp")
    [ "$train_utts" -le "$total" ] || die "--train-utts $train_utts: $train_data has only $total utterances"
    mkdir -p "$out/data"
    awk -v n="$train_utts" -v t="$total" 'int((NR-1)*n/t) != int(NR*n/t) {print $1}' "$train_data/feats.scp" > "$out/data/train_$train_utts.list"
    python -m asr subset-data-dir --utt-list "$out/data/train_$train_utts.list" "$train_data" "$sub" >&2
  fi
  train_data=$sub
  log "training on $(wc -l < "$train_data/feats.scp") utterances ($train_data)"
fi

# parallel systems: one torch thread each, one decoding job each
thread_opts=(); decode_nj=$nj
if [ "$jobs" -gt 1 ]; then thread_opts=(--num-threads 1); decode_nj=1; fi

dev_opts=()
if [ -f "$dev_data/feats.scp" ] && [ -f "$dev_ali" ]; then
  dev_opts=(--dev-feats "$dev_data" --dev-ali "$dev_ali")
else
  log "no dev set ($dev_data, $dev_ali): dev frame accuracy will be n/a"
fi

# train_system NAME LAYERS: config at the budget, training, priors, model info
train_system() {
  local name=$1 nl=$2 dir=$out/$1
  mkdir -p "$dir"
  if [ ! -f "$dir/config.yaml" ]; then
    python local/family_study.py make-config "$base_config" "$name" --layers "$nl" \
      --num-inputs "$num_inputs" --num-pdfs "$num_pdfs" --budget "$budget" --epochs "$epochs" --out "$dir/config.yaml" >&2
  fi
  if [ ! -f "$dir/final/model.safetensors" ]; then
    log "training $name ($nl layers)"
    python -m asr train --config "$dir/config.yaml" --feats "$train_data" --ali "$tree_dir/ali.pdf.ark" \
      "${dev_opts[@]}" "${cap_opts[@]}" "${thread_opts[@]}" --no-progress --out "$dir" > "$dir/train.log" 2>&1 \
      || { log "training $name failed: see $dir/train.log"; return 1; }
  fi
  if [ ! -f "$dir/final/log_priors.npy" ]; then
    python -m asr compute-priors --model-dir "$dir/final" --silence-pdfs "$tree_dir/silence_pdfs.int" \
      "$tree_dir/ali.pdf.ark" > "$dir/priors.log" 2>&1 \
      || { log "priors for $name failed: see $dir/priors.log"; return 1; }
  fi
  # the model dir as run.sh packs it, except the graph (decoded with --graph-dir)
  python -m asr pack-model-dir --tree-dir "$tree_dir" --lang "$lang_dir" --feats "$train_data" "$dir/final" \
    > "$dir/pack.log" 2>&1 || { log "packing the model dir of $name failed: see $dir/pack.log"; return 1; }
  python -m asr nnet-info "$dir/final" > "$dir/nnet-info.txt"
}

# decode_system NAME: first-pass 1-best decode of the test set (pruned-LM HCLG, default
# acoustic scale) and its WER (asr decode writes DECODE_DIR/wer when the data has text)
decode_system() {
  local name=$1 dir=$out/$1/decode_test
  if [ ! -f "$dir/wer" ]; then
    log "decoding $name"
    python -m asr decode --model-dir "$out/$name/final" --graph-dir "$graph_dir" --nj "$decode_nj" "${thread_opts[@]}" --no-progress \
      "$test_data" "$dir" > "$out/$name/decode.log" 2>&1 \
      || { log "decoding $name failed: see $out/$name/decode.log"; return 1; }
    [ -f "$dir/wer" ] || python -m asr compute-wer "$test_data/text" "$dir/hyp.txt" > "$dir/wer"
  fi
}

run_system() {  # run_system NAME LAYERS
  if train_system "$1" "$2" && decode_system "$1"; then :; else log "$1 incomplete"; fi
}

run_systems() {  # run_systems LAYERS SUFFIX NAME... ; --jobs at a time; prints the table arguments
  local nl=$1 suffix=$2; shift 2
  local name
  for name in "$@"; do
    local sys=$name$suffix
    if [ -n "$suffix" ] && [ "$nl" = "$layers" ] && [ "$do_families" = true ] && [[ " $systems " == *" $name "* ]]; then
      echo "$sys=$out/$name"   # the family run at the same depth
      continue
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_system "$sys" "$nl" &
    echo "$sys=$out/$sys"
  done
  wait
}

if [ "$do_families" = true ]; then
  # shellcheck disable=SC2086
  specs=$(run_systems "$layers" "" $systems)
  # shellcheck disable=SC2086
  python local/family_study.py table --study families \
    --title "LSTM family comparison: $layers layers, ~$budget parameters, $epochs epochs" \
    --command "$cmd_line" --results exp/results.json --markdown "$results_md" $specs | tee -a "$out/tables.md"
fi

if [ "$do_depth" = true ]; then
  specs=""
  for nl in $depth_layers; do
    # shellcheck disable=SC2086
    specs="$specs $(run_systems "$nl" "_${nl}l" $depth_systems)"
  done
  # shellcheck disable=SC2086
  python local/family_study.py table --study depth \
    --title "Depth study: plain vs residual vs highway vs ltLSTM at $depth_layers layers, ~$budget parameters, $epochs epochs" \
    --command "$cmd_line" --results exp/results.json --markdown "$results_md" $specs | tee -a "$out/tables.md"
fi
log "done: tables appended to $results_md, entries in exp/results.json"
