#!/usr/bin/env bash
# Logging and stage helpers for recipes (source after parse_options.sh):
#   log "message"          timestamped line on stderr, prefixed with the script name
#   die "message"          log an error and exit 1
#   stage_on N             true when stage N is within [stage, stop_stage]
#   require FILE... N      fail with a hint ("run stage N first") when an input is missing
# Convention: every stage is re-runnable (its commands skip or redo finished work safely).
log() { echo "$(date +%H:%M:%S) [$(basename "$0")] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
stage_on() { [ "${stage:-0}" -le "$1" ] && [ "${stop_stage:-1000000}" -ge "$1" ]; }
require() {
  [ $# -ge 2 ] || die "require: usage: require FILE... STAGE"
  local st="${*: -1}" f
  for f in "${@:1:$#-1}"; do
    [ -e "$f" ] || die "missing $f: run stage $st first (run.sh --stage $st)"
  done
}
