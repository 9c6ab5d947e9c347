import subprocess
import sys

import pytest

from asr.cli import build_parser, main


def run_asr(*args, **kw):
    return subprocess.run([sys.executable, "-m", "asr", *args], capture_output=True, text=True, **kw)


def test_help_lists_commands():
    r = run_asr("--help")
    assert r.returncode == 0
    assert "usage: asr" in r.stdout


def test_every_subcommand_has_help():
    parser = build_parser()
    subactions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    names = list(subactions[0].choices) if subactions else []
    for name in names:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name


@pytest.mark.parametrize("name", ["compute-wer-bootci", "make-graph", "transcribe", "serve", "make-lm", "prune-lm",
                                  "lm-ppl", "make-g", "score-lattices", "compute-wer", "results"])
def test_help_has_usage_example_every_option_explained_no_doubled_default(name, capsys):
    import re

    with pytest.raises(SystemExit):
        main([name, "--help"])
    out = capsys.readouterr().out
    assert re.search(r"\be\.g\.", out, re.I), name
    assert "%%" not in out
    opts = re.split(r"\n  (?=-)", out.split("options:", 1)[1])
    assert not [o for o in opts if o.count("(default") > 1], name
    bare = [o for o in opts if o.strip() and len(re.sub(r"\(default: [^)]*\)", "", o).split()) <= 2]  # an option without help
    assert not bare, (name, bare)


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_a_file_not_utf8_deep_in_an_input_dir_is_named(tmp_path):
    from hmm_test_helpers import make_data, make_lang

    lang, data = make_lang(tmp_path), make_data(tmp_path)
    (lang / "phones" / "optional_silence.int").write_bytes(b"1\n\xff\n")
    r = run_asr("import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"),
                str(tmp_path / "ali"))
    assert r.returncode == 1
    assert r.stderr == (f"asr import-ali: error: {lang / 'phones' / 'optional_silence.int'}: not valid UTF-8 text "
                        "(invalid start byte, byte ff)\n")


@pytest.mark.parametrize("args, option", [
    (["align-equal", "--shortest", "0", "d", "l", "o"], "--shortest"),
    (["align-equal", "--shortest", "-3", "d", "l", "o"], "--shortest"),
    (["align-equal", "--nj", "0", "d", "l", "o"], "--nj"),
    (["align", "--lang", "l", "--nj", "0", "d", "o"], "--nj"),
    (["align", "--lang", "l", "--beam", "0", "d", "x", "o"], "--beam"),
    (["import-ali", "--format", "ctm", "--frame-shift", "0", "d", "s", "o"], "--frame-shift"),
    (["import-ali", "--format", "ctm", "--frame-length", "nan", "d", "s", "o"], "--frame-length"),
    (["import-ali", "--format", "ctm", "--tolerance", "-1", "d", "s", "o"], "--tolerance"),
    (["compare-ali", "--frame-shift", "0", "r", "h"], "--frame-shift"),
    (["compute-priors", "--silence-factor", "0", "a", "o"], "--silence-factor"),
    (["build-tree", "--lang", "l", "--num-leaves", "-5", "d", "a", "t"], "--num-leaves"),
    (["build-tree", "--lang", "l", "--min-count", "-1", "d", "a", "t"], "--min-count"),
    (["make-graph", "--self-loop-scale", "nan", "l", "t", "lm", "g"], "--self-loop-scale"),
    (["prune-lm", "--threshold", "nan", "a", "b"], "--threshold"),
    (["make-lm", "--prune", "-1", "a", "b"], "--prune"),
    (["decode", "--acoustic-scale", "nan", "--model-dir", "m", "d", "o"], "--acoustic-scale"),
    (["decode", "--max-active", "0", "--model-dir", "m", "d", "o"], "--max-active"),
    (["lmrescore", "--old-lm", "a", "--new-lm", "b", "--lm-scale", "inf", "i", "o"], "--lm-scale"),
    (["flat-start", "--beam", "0", "d", "l", "o"], "--beam"),
])
def test_numeric_options_out_of_range_are_usage_errors(args, option, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected " in err and ("an integer >= " in err or "a number >" in err)


def test_score_lattices_weights_must_be_finite(capsys):
    for opt, value, msg in (("--wip", "nan", "bad word insertion penalty list 'nan'"),
                            ("--lmwt", "inf", "bad LM weight list 'inf'")):
        assert main(["score-lattices", opt, value, "d", "o"]) == 1
        assert msg in capsys.readouterr().err


def _commands():
    parser = build_parser()
    return sorted(next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices)


@pytest.mark.parametrize("command", _commands())
def test_every_option_has_help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[command]
    assert [a.option_strings for a in sub._actions if a.option_strings and not a.help] == []
    assert [a.metavar or a.dest for a in sub._actions if not a.option_strings and not a.help] == []  # positionals too
