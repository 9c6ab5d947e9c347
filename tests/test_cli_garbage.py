"""Every subcommand (as `asr --help` lists them) on garbage inputs: a one-line error naming
the problem and a nonzero exit, never a Python traceback nor the catch-all "unexpected"
message (which means a bad input that no check caught)."""

import argparse
import shutil

import pytest

from asr.cli import build_parser, main

# inputs that are valid for these commands (they build something from nothing) are skipped
VALID_ON_EMPTY_DIR = {"synth-corpus"}


# options that get a command past argument parsing to reading its (garbage) inputs
EXTRA = {
    "split-data-dir": None, "subset-data-dir": ["--first", "2"], "results": None,
    "compute-priors": ["--num-pdfs", "10", "--silence-pdfs", "{v}"], "pack-model-dir": ["--fbank-config", "{v}"],
    "lmrescore": None,
}
# commands whose positional arguments are not all input paths: spelled out
ARGS = {
    "split-data-dir": ["{v}", "2"], "results": ["sys={v}", "--markdown", "{v}.md"],
    "lmrescore": ["--old-lm", "{v}", "--new-lm", "{v}", "{v}", "{v}.out"],
    "prune-lm": ["--threshold", "1e-7", "{v}", "{v}.out"],
    "import-ali": ["--format", "ctm", "--lang", "{v}", "{v}", "{v}", "{v}.out"],
}


def _subcommands():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _arguments(parser: argparse.ArgumentParser, value: str) -> list[str]:
    """``value`` for every positional argument and every required option."""
    args = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        if not a.option_strings:
            args.append(value)
        elif a.required:
            args += [a.option_strings[0], value]
    return args


def _make(kind, tmp_path):
    if kind == "binary":
        (tmp_path / "in").write_bytes(bytes(range(256)) * 8)
    elif kind == "text":
        (tmp_path / "in").write_text("hello world\nfoo\n\n1 2 3 \u00e9\n")
    else:
        (tmp_path / "in").mkdir()
    return str(tmp_path / "in")


COMMANDS = sorted(_subcommands())


def test_every_command_is_covered():
    assert len(COMMANDS) >= 30 and "pack-model-dir" in COMMANDS and "decode" in COMMANDS


@pytest.mark.parametrize("kind", ["binary", "text", "empty_dir"])
def test_garbage_inputs_give_one_line_errors(kind, tmp_path, capsys):
    parsers = _subcommands()
    problems = []
    for name in COMMANDS:
        if kind == "empty_dir" and name in VALID_ON_EMPTY_DIR:
            continue
        case = tmp_path / name
        case.mkdir()
        value = _make(kind, case)
        try:
            if name in ARGS:
                args = [a.format(v=value) for a in ARGS[name]]
            else:
                args = [*_arguments(parsers[name], value), *(a.format(v=value) for a in EXTRA.get(name) or [])]
            rc = main([name, *args])
        except SystemExit as e:  # argparse: a value of the wrong type (usage + one error line)
            rc = e.code
        captured = capsys.readouterr()
        err = captured.err
        if name == "validate-data-dir":  # its report of problems goes to stdout, by design
            err += captured.out.replace("/", f"asr {name}: error: /", 1)
        lines = [ln for ln in err.splitlines() if ln.startswith(f"asr {name}: error:")
                 or ln.startswith("asr: error:") or ": error: argument" in ln or "error: one of" in ln
                 or "error: the following arguments" in ln]
        if rc == 0 or "Traceback" in err or "error: unexpected " in err or not lines:
            problems.append(f"{name}: exit {rc}: {err.strip().splitlines()[-1:] if err.strip() else 'no message'}")
        shutil.rmtree(case, ignore_errors=True)
    assert not problems, "\n".join(problems)
