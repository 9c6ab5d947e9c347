#!/usr/bin/env bash
# Deep-LSTM and Greff-variant studies on a toy sequence task (bench/variants_toy_data.py),
# without decoding: dev frame accuracy at equal parameters and equal updates, through the
# same tools as recipes/synth's stage 10 (family_study.py make-config + asr train).
#   bench/variants_toy_study.sh [WORK_DIR]      (default /tmp/variants_toy)
# depth study: lstm/residual/highway/ltlstm, 3 and 8 layers, ~150k params, 960 updates
# (dev accuracy at epoch ends, 160 updates each; the last full epoch ends at 955);
# Greff: 2 layers, ~60k params, 640 updates (last epoch end 639). One seed, one thread each.
# Dev accuracy after k epochs: the rows of EXP/log.csv.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/variants_toy}
mkdir -p "$work" && cd "$work"
export PYTHONPATH=$repo
H=$repo/recipes/synth/local/family_study.py
PY=${PYTHON:-python}
[ -f train.ali ] || $PY "$repo/bench/variants_toy_data.py"
cat > base.yaml <<'YAML'
model: {family: lstmp, cell_clip: null}
training: {optimizer: adam, lr: 0.002, schedule: {type: warmup_cosine, warmup_updates: 50, final_lr_factor: 0.05},
           grad_clip: 5.0, epochs: 100, streams: 16, chunk: 20, output_delay: 5, seed: 1, cmvn: none}
YAML
run() {  # run NAME LAYERS BUDGET UPDATES DIR
  local d=$5/$1; mkdir -p "$d"
  [ -f "$d/config.yaml" ] || $PY "$H" make-config base.yaml "$1" --num-pdfs 40 --budget "$3" --layers "$2" --out "$d/config.yaml"
  [ -f "$d/final/model.safetensors" ] || $PY -m asr train --config "$d/config.yaml" --feats train --ali train.ali \
    --dev-feats dev --dev-ali dev.ali --num-pdfs 40 --max-updates "$4" --out "$d" --no-progress --num-threads 1 \
    > "$d/train.log" 2>&1
}
for nl in 3 8; do for f in lstm residual_lstm highway_lstm ltlstm; do run "${f}_${nl}l" $nl 150000 960 exp; done; done
for s in lstm lstm_cifg lstm_np lstm_nfg lstm_noaf lstm_nig lstm_nog lstm_niaf lstm_fgr; do run $s 2 60000 640 exp_greff; done
$PY - <<'PY'
import csv, glob, os
for study in ("exp", "exp_greff"):
    print(f"{study}: system, params, updates, dev frame acc per epoch")
    for d in sorted(glob.glob(f"{study}/*")):
        rows = list(csv.DictReader(open(f"{d}/log.csv"))) if os.path.exists(f"{d}/log.csv") else []
        params = open(f"{d}/train.log").read().split(" params,")[0].rsplit(" ", 1)[-1] if rows else "n/a"
        accs = " ".join(f"{float(r['dev_acc']):.3f}" for r in rows)
        print(f"  {os.path.basename(d):18s} {params:>7s} {rows[-1]['updates'] if rows else 'n/a':>4s} {accs}")
PY
