#!/usr/bin/env bash
# Kaldi-style option parsing for recipes (after Kaldi's utils/parse_options.sh).
# Usage in run.sh:
#   stage=0; stop_stage=100; nj=2; quick=false
#   __options="stage stop_stage nj quick"     # optional: what --help lists (default: stage stop_stage nj)
#   help_message="run.sh [options]: ..."      # optional: printed by --help
#   . scripts/parse_options.sh
# Every variable already set in the caller can be overridden by --name value or --name=value
# (dashes map to underscores: --stop-stage 3 sets stop_stage). A variable whose current value
# is true or false only accepts true or false. Parsing stops at the first argument that does
# not start with --, or after "--"; the rest stay in "$@". Errors (unknown option, missing
# value) print a message and exit 1. Safe under set -euo pipefail.
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    --help|-h)
      if [ -n "${help_message:-}" ]; then echo "$help_message"; else echo "Usage: $0 [options]"; fi
      echo "Options (current values):"
      for __po_v in ${__options:-stage stop_stage nj}; do printf '  --%s %s\n' "${__po_v//_/-}" "${!__po_v-}"; done
      exit 0 ;;
    --*=*)
      __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
    --?*)
      __po_name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      __po_value="$2"; shift 2 ;;
    *) break ;;
  esac
  __po_name="${__po_name#--}"; __po_name="${__po_name//-/_}"
  if ! [[ "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ "$__po_name" == __po_* ]] \
      || ! declare -p "$__po_name" >/dev/null 2>&1; then
    echo "$0: invalid option --${__po_name//_/-} (see $0 --help)" >&2; exit 1
  fi
  case "${!__po_name}" in
    true|false)
      case "$__po_value" in
        true|false) ;;
        *) echo "$0: option --${__po_name//_/-} takes true or false, got '$__po_value'" >&2; exit 1 ;;
      esac ;;
  esac
  printf -v "$__po_name" '%s' "$__po_value"
done
unset __po_name __po_value __po_v
true
