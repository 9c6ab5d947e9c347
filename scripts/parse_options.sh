#!/usr/bin/env bash
# Kaldi-style option parsing for recipes (after utils/parse_options.sh).
# Usage in run.sh:  stage=0; stop_stage=100; nj=2; . scripts/parse_options.sh || exit 1
# Every variable already set in the caller can be overridden by --name value or --name=value
# (dashes map to underscores). --help prints the settable options.
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"; echo "Options (current values):"
      for v in ${__options:-stage stop_stage nj}; do printf '  --%s %s\n' "${v//_/-}" "${!v}"; done
      exit 0 ;;
    --*=*)
      name=$(echo "${1%%=*}" | sed 's/^--//; s/-/_/g'); value="${1#*=}"; shift ;;
    --*)
      name=$(echo "$1" | sed 's/^--//; s/-/_/g')
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      value="$2"; shift 2 ;;
    *) break ;;
  esac
  if ! declare -p "$name" >/dev/null 2>&1; then
    echo "$0: invalid option --${name//_/-}" >&2; exit 1
  fi
  eval "$name=\"\$value\""
done
true
