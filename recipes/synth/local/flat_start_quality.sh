#!/usr/bin/env bash
# How good are the flat-start alignments? (run after `run.sh --alignments flat`; this script
# reads the synthesiser's exact phone CTMs, which the flat-start recipe itself never does)
#
# For every alignment step of exp/ali_train_flat/work (ali0 = equal alignment, ali1.. = CI
# rounds, ali_cd = CD round): `asr compare-ali data/train/phones.ctm STEP`; then the test set
# aligned with the final flat-start network against data/test/phones.ctm. Writes a markdown
# table to exp/ali_train_flat/quality.md (and prints it) and the figures as JSON beside it.
#
#   local/flat_start_quality.sh [--nj J]
set -euo pipefail
cd "$(dirname "$0")/.."
. ../../scripts/log.sh

nj=2
ali=exp/ali_train_flat
__options="nj ali"
. ../../scripts/parse_options.sh || exit 1

export PYTHONPATH="$(cd ../.. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
asr() { python -m asr "$@"; }
require $ali/flat_start.json 3
work=$ali/work
out=$ali/quality.md
rows=()
for step in $(python -c "import json; print(' '.join(s['step'] for s in json.load(open('$ali/flat_start.json'))['steps'] if s['kind'] == 'align'))"); do
  asr compare-ali --json $work/$step/compare_train.json data/train/phones.ctm $work/$step > /dev/null
  rows+=("train $step $work/$step/compare_train.json")
done
if [ ! -f $work/ali_test/align_stats.json ]; then
  log "aligning data/test with $work/final"
  asr align --lang data/lang --model-dir $work/final --nj "$nj" data/test $work/ali_test
fi
asr compare-ali --json $work/ali_test/compare_test.json data/test/phones.ctm $work/ali_test > /dev/null
rows+=("test final $work/ali_test/compare_test.json")
python - "$out" "${rows[@]}" <<'EOF'
import json, sys
out, rows = sys.argv[1], sys.argv[2:]
lines = ["| set | alignment | utts | boundaries | within 10 ms | within 20 ms | within 40 ms | frame phone agreement |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
for row in rows:
    kind, step, path = row.split(" ", 2)
    j = json.load(open(path))
    lines.append(f"| {kind} | {step} | {j['utterances']:,} | {j['boundaries']:,} | {j['within_10ms']:.1f} % | "
                 f"{j['within_20ms']:.1f} % | {j['within_40ms']:.1f} % | {j['frame_phone_agreement']:.1f} % |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text, end="")
EOF
log "wrote $out"
