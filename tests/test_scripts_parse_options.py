"""scripts/parse_options.sh and scripts/log.sh as recipes use them (bash)."""

import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

RUN_SH = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
nj=2
quick=false
name=default
__options="stage stop_stage nj quick name"
help_message="run.sh [options] [DIR]: test recipe"
. {SCRIPTS}/parse_options.sh
. {SCRIPTS}/log.sh
echo "stage=$stage stop_stage=$stop_stage nj=$nj quick=$quick name=$name args=$*"
for s in 0 1 2 3 4 5 6; do if stage_on $s; then echo "on $s"; fi; done
"""


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
    assert r.stdout.splitlines()[0] == "stage=0 stop_stage=100 nj=2 quick=false name=default args="
    r = bash(run_sh, "--stage", "3", "--stop-stage=5", "--nj", "4", "--quick", "true", "--name=a b", "dir1", "--x")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "stage=3 stop_stage=5 nj=4 quick=true name=a b args=dir1 --x"
    assert lines[1:] == ["on 3", "on 4", "on 5"]
    r = bash(run_sh, "--nj", "1", "--", "--stage")
    assert r.stdout.splitlines()[0].endswith("nj=1 quick=false name=default args=--stage")


def test_errors(run_sh):
    r = bash(run_sh, "--no-such", "1")
    assert r.returncode == 1 and "invalid option --no-such" in r.stderr
    r = bash(run_sh, "--stage")
    assert r.returncode == 1 and "option --stage needs a value" in r.stderr
    r = bash(run_sh, "--quick", "yes")
    assert r.returncode == 1 and "option --quick takes true or false, got 'yes'" in r.stderr
    r = bash(run_sh, "--__po-name", "x")  # the parser's own variables are not options
    assert r.returncode == 1


def test_help(run_sh):
    r = bash(run_sh, "--help")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == "run.sh [options] [DIR]: test recipe"
    assert "  --stop-stage 100" in r.stdout and "  --quick false" in r.stdout


def test_require_and_die(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"set -euo pipefail\n. {SCRIPTS}/log.sh\ntouch {tmp_path}/have\n"
                      f"require {tmp_path}/have 1\necho ok\nrequire {tmp_path}/have {tmp_path}/missing 2\necho not reached\n")
    r = bash(script)
    assert r.returncode == 1 and r.stdout == "ok\n"
    assert f"ERROR: missing {tmp_path}/missing: run stage 2 first (run.sh --stage 2)" in r.stderr
    assert "[s.sh]" in r.stderr
