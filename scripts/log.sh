#!/usr/bin/env bash
# Logging helpers for recipes: log "message", run_stage N "description" (respects stage/stop_stage).
log() { echo "$(date +%H:%M:%S) [$(basename "$0")] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# stage_on N: true when stage N is within [stage, stop_stage]
stage_on() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# require FILE... STAGE: fail with a hint when an input of a stage is missing
require() {
  local st="${@: -1}"; local f
  for f in "${@:1:$#-1}"; do
    [ -e "$f" ] || die "missing $f: run stage $st first (run.sh --stage $st)"
  done
}
