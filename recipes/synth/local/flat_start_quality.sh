#!/usr/bin/env bash
# How good are the flat-start alignments? (run after `run.sh --alignments flat`; this script
# reads the synthesiser's exact phone CTMs, which the flat-start recipe itself never does)
#
# For every alignment step of exp/ali_train_flat/work (ali0 = equal alignment, ali1.. = CI
# rounds, ali_cd = CD round): `asr compare-ali DATA/phones.ctm STEP` (DATA: the data dir the
# flat start was made from, data/train_aug by default, whose CTMs are the train set's carried
# over to the augmented copies); then the test set
# aligned with the final flat-start network (into exp/flat_ali_test) against data/test/phones.ctm.
# Writes a markdown table to exp/flat_quality/quality.md (and prints it) and the figures as JSON
# beside it (products are not written into).
#
#   local/flat_start_quality.sh [--nj J]
set -euo pipefail
cd "$(dirname "$0")/.."
. ../../scripts/log.sh

nj=2                    # alignment jobs (the test set)
ali=exp/ali_train_flat  # the flat-start alignment dir (run.sh --alignments flat, stage 3)
__options="nj ali"
__int_options="nj"
help_message="Usage: local/flat_start_quality.sh [options] (from recipes/synth, after run.sh --alignments flat)
How close the flat-start alignments are to the synthesiser's phone CTMs (exp/flat_quality/quality.md).
e.g.: local/flat_start_quality.sh --nj 4"
. ../../scripts/parse_options.sh || exit 1

export PYTHONPATH="$(cd ../.. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
asr() { python -m asr "$@"; }
require $ali/flat_start.json 3
work=$ali/work
q=exp/flat_quality
mkdir -p $q
out=$q/quality.md
rows=()
train_data=$(python -c "import json; print(json.load(open('$ali/flat_start.json'))['data_dir'])")
require $train_data/phones.ctm 0
for step in $(python -c "import json; print(' '.join(s['step'] for s in json.load(open('$ali/flat_start.json'))['steps'] if s['kind'] == 'align'))"); do
  asr compare-ali --json $q/train_$step.json $train_data/phones.ctm $work/$step > /dev/null
  rows+=("train $step $q/train_$step.json")
done
log "aligning data/test with $work/final (left as it is when up to date)"
asr align --lang data/lang --model-dir $work/final --nj "$nj" data/test exp/flat_ali_test
asr compare-ali --json $q/test_final.json data/test/phones.ctm exp/flat_ali_test > /dev/null
rows+=("test final $q/test_final.json")
python - "$out" "${rows[@]}" <<'EOF'
import json, sys
out, rows = sys.argv[1], sys.argv[2:]
lines = ["| set | alignment | utts | boundaries | within 10 ms | within 20 ms | within 40 ms | frame phone agreement "
         "| mean offset |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
for row in rows:
    kind, step, path = row.split(" ", 2)
    j = json.load(open(path))
    lines.append(f"| {kind} | {step} | {j['utterances']:,} | {j['boundaries']:,} | {j['within_10ms']:.1f} % | "
                 f"{j['within_20ms']:.1f} % | {j['within_40ms']:.1f} % | {j['frame_phone_agreement']:.1f} % | "
                 f"{j['mean_offset_ms']:+.1f} ms |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text, end="")
EOF
log "wrote $out"
