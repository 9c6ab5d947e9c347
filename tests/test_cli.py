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
