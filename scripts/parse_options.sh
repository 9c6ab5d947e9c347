#!/usr/bin/env bash
# Kaldi-style option parsing for recipes (after Kaldi's utils/parse_options.sh).
# Usage in run.sh:
#   stage=0              # first stage to run
#   stop_stage=9         # last stage to run
#   nj=2                 # parallel jobs
#   quick=false          # a small corpus and model
#   __options="stage stop_stage nj quick"   # the options: no other name is one
#   __int_options="stage stop_stage nj"     # optional: those that take a whole number (0, 1, ...)
#   __last_stage=9                          # optional: --stage and --stop-stage are within 0..9
#   help_message="Usage: run.sh [options]
#   what it does
#   e.g.: run.sh --stage 2 --nj 4"          # printed by --help, before the options
#   . scripts/parse_options.sh
# Only the names in __options are options: --name value or --name=value sets the variable
# (dashes map to underscores: --stop-stage 3 sets stop_stage). An option whose default is true
# or false only accepts true or false. Every argument must be an option: anything else is an
# error, as are an unknown option, a missing value, a value that is not a whole number (for
# __int_options), a stage outside 0..__last_stage and a stop stage before the stage; each is one
# line on stderr and exit 1. --help prints help_message, then every option with its default and
# the comment on the line that declares it (in the script sourcing this file, or in a script
# sourcing that one). Safe under set -euo pipefail.
__po_fail() { echo "$0: $*" >&2; exit 1; }
__po_declared() { [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ && " ${__options//$'\n'/ } " == *" $1 "* ]]; }
# the comment on the first line declaring $1 (name=... # comment) in the sourcing scripts
__po_describe() {
  local f line
  for f in "${__po_files[@]}"; do
    [ -r "$f" ] || f=${OLDPWD:-.}/$f   # a script that changed into its own directory
    [ -r "$f" ] || continue
    while IFS= read -r line; do
      if [[ $line =~ ^[[:space:]]*$1= && $line == *[[:space:]]#* ]]; then
        line=${line#*[[:space:]]#}; echo "${line# }"; return 0
      fi
    done < "$f"
  done
  echo "(undocumented)"
}
__po_files=("${BASH_SOURCE[@]:1}")
[ -n "${__options:-}" ] || __po_fail "parse_options.sh: the script declares no __options"
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then echo "$help_message"; else echo "Usage: $0 [options]"; fi
      echo "Options (current values):"
      for __po_v in $__options; do
        __po_value=${!__po_v-}
        [[ -z $__po_value || $__po_value == *[[:space:]]* ]] && __po_value="'$__po_value'"
        printf '  --%s %s\n      %s\n' "${__po_v//_/-}" "$__po_value" "$(__po_describe "$__po_v")"
      done
      exit 0 ;;
    --?*=*)
      __po_opt="${1%%=*}"; __po_value="${1#*=}"; shift ;;
    --?*)
      __po_opt="$1"
      [ $# -ge 2 ] || __po_fail "option $1 needs a value"
      __po_value="$2"; shift 2 ;;
    *) __po_fail "unexpected argument '$1' (options are --name value; see $0 --help)" ;;
  esac
  __po_name="${__po_opt#--}"; __po_name="${__po_name//-/_}"
  __po_declared "$__po_name" || __po_fail "invalid option $__po_opt (see $0 --help)"
  case "${!__po_name-}" in
    true|false)
      case "$__po_value" in
        true|false) ;;
        *) __po_fail "option $__po_opt takes true or false, got '$__po_value'" ;;
      esac ;;
  esac
  printf -v "$__po_name" '%s' "$__po_value"
done
for __po_v in ${__int_options:-}; do
  [[ ${!__po_v-} =~ ^[0-9]+$ ]] || __po_fail "option --${__po_v//_/-} takes a whole number, got '${!__po_v-}'"
done
if [ -n "${__last_stage:-}" ]; then
  for __po_v in stage stop_stage; do
    [ "${!__po_v}" -le "$__last_stage" ] || __po_fail "--${__po_v//_/-} ${!__po_v}: the stages are 0 to $__last_stage"
  done
  [ "$stage" -le "$stop_stage" ] || __po_fail "--stop-stage $stop_stage is before --stage $stage"
fi
unset __po_opt __po_name __po_value __po_v __po_files
unset -f __po_fail __po_declared __po_describe
true
