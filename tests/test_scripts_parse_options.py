"""scripts/parse_options.sh and scripts/log.sh as recipes use them (bash)."""

import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

RUN_SH = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0          # first stage to run
stop_stage=6     # last stage to run
nj=2             # parallel jobs
quick=false      # a small corpus
name=default
other=1          # a variable, not an option
__options="stage stop_stage nj quick name"
__int_options="stage stop_stage nj"
__last_stage=6
help_message="run.sh [options]: test recipe
e.g.: run.sh --stage 2 --nj 4"
. {SCRIPTS}/parse_options.sh
. {SCRIPTS}/log.sh
echo "stage=$stage stop_stage=$stop_stage nj=$nj quick=$quick name=$name"
for s in 0 1 2 3 4 5 6; do if stage_on $s; then echo "on $s"; fi; done
"""
RECIPES = SCRIPTS.parent / "recipes"


@pytest.fixture
def run_sh(tmp_path):
    p = tmp_path / "run.sh"
    p.write_text(RUN_SH)
    return p


def bash(script, *args):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)


def test_defaults_and_overrides(run_sh):
    r = bash(run_sh)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "stage=0 stop_stage=6 nj=2 quick=false name=default"
    r = bash(run_sh, "--stage", "3", "--stop-stage=5", "--nj", "4", "--quick", "true", "--name=a b")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "stage=3 stop_stage=5 nj=4 quick=true name=a b"
    assert lines[1:] == ["on 3", "on 4", "on 5"]


def _error(r, message):
    """Exit 1 with one line on stderr that holds message (nothing run)."""
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    assert len(r.stderr.splitlines()) == 1 and message in r.stderr, r.stderr


def test_errors(run_sh):
    _error(bash(run_sh, "--no-such", "1"), "invalid option --no-such")
    _error(bash(run_sh, "--stage"), "option --stage needs a value")
    _error(bash(run_sh, "--quick", "yes"), "option --quick takes true or false, got 'yes'")
    _error(bash(run_sh, "--__po-name", "x"), "invalid option --__po-name")  # the parser's own variables
    # only the declared options: not another variable of the script, nor one of the environment
    _error(bash(run_sh, "--other", "2"), "invalid option --other")
    _error(bash(run_sh, "--PATH", "/x"), "invalid option --PATH")


def test_leftover_arguments(run_sh):
    _error(bash(run_sh, "-stage", "3"), "run.sh: unexpected argument '-stage'")
    _error(bash(run_sh, "--nj", "3", "typo"), "unexpected argument 'typo'")
    _error(bash(run_sh, "--", "--stage", "3"), "unexpected argument '--'")


def test_whole_numbers_and_stages(run_sh):
    _error(bash(run_sh, "--stage", "abc"), "option --stage takes a whole number, got 'abc'")
    _error(bash(run_sh, "--stop-stage", "-1"), "option --stop-stage takes a whole number, got '-1'")
    _error(bash(run_sh, "--nj", "two"), "option --nj takes a whole number, got 'two'")
    _error(bash(run_sh, "--nj", ""), "option --nj takes a whole number, got ''")
    _error(bash(run_sh, "--stage", "7"), "--stage 7: the stages are 0 to 6")
    _error(bash(run_sh, "--stop-stage", "9"), "--stop-stage 9: the stages are 0 to 6")
    _error(bash(run_sh, "--stage", "5", "--stop-stage", "2"), "--stop-stage 2 is before --stage 5")
    r = bash(run_sh, "--stage", "6", "--stop-stage", "6")
    assert r.returncode == 0 and r.stdout.splitlines()[1:] == ["on 6"]


def test_help(run_sh):
    r = bash(run_sh, "--help")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[:2] == ["run.sh [options]: test recipe", "e.g.: run.sh --stage 2 --nj 4"]
    text = "\n".join(lines[3:])
    # each option, its default and the comment of the line declaring it
    assert "  --stop-stage 6\n      last stage to run" in text and "  --quick false\n      a small corpus" in text
    assert "  --name default\n      (undocumented)" in text and "--other" not in text


@pytest.mark.parametrize("script", ["librispeech/run.sh", "mini_librispeech/run.sh", "synth/run.sh",
                                    "synth/local/compare_families.sh", "synth/local/flat_start_quality.sh"])
def test_recipes_help_and_bad_options(script, tmp_path):
    r = subprocess.run(["bash", str(RECIPES / script), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(undocumented)" not in r.stdout and "\ne.g.: " in r.stdout
    if script.startswith("mini"):
        assert "mini_librispeech/s5" in r.stdout and "tri6b" not in r.stdout
    # errors before anything runs (no download, no corpus)
    _error(subprocess.run(["bash", str(RECIPES / script), "--nj", "abc"], capture_output=True, text=True,
                          cwd=tmp_path), "option --nj takes a whole number, got 'abc'")
    _error(subprocess.run(["bash", str(RECIPES / script), "--nj", "1", "stray"], capture_output=True, text=True,
                          cwd=tmp_path), "unexpected argument 'stray'")


@pytest.mark.parametrize("args", [["-stage", "3"], ["--corpus", "x"], ["--stage", "11"], ["--stage", "5", "--stop-stage", "2"],
                                  ["--train-workers", "two"], ["--corpus-dir", "x", "--stage", "10", "typo"]])
def test_librispeech_bad_options(args, tmp_path):
    r = subprocess.run(["bash", str(RECIPES / "librispeech" / "run.sh"), *args], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr


def test_require_and_die(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"set -euo pipefail\n. {SCRIPTS}/log.sh\ntouch {tmp_path}/have\n"
                      f"require {tmp_path}/have 1\necho ok\nrequire {tmp_path}/have {tmp_path}/missing 2\necho not reached\n")
    r = bash(script)
    assert r.returncode == 1 and r.stdout == "ok\n"
    assert f"ERROR: missing {tmp_path}/missing: run stage 2 first (run.sh --stage 2)" in r.stderr
    assert "[s.sh]" in r.stderr
