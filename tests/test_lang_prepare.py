"""asr prepare-lang: Kaldi lang dir layout, disambiguation, L.fst paths, bad dict dirs."""

import argparse
import subprocess
import sys

import pytest

from asr.cli import build_parser, main
from asr.hmm.topology import Topology
from asr.lang.lang_dir import LangDir
from asr.lang.prepare import add_lex_disambig
from hmm_test_helpers import make_dict


def read(p):
    return p.read_text().splitlines()


def test_prepare_lang_layout(tmp_path):
    d = make_dict(tmp_path / "dict")
    lang = tmp_path / "lang"
    assert main(["prepare-lang", str(d), str(lang)]) == 0
    phones = read(lang / "phones.txt")
    assert phones[:7] == ["<eps> 0", "SIL 1", "SIL_B 2", "SIL_E 3", "SIL_I 4", "SIL_S 5", "SPN 6"]
    assert phones[11] == "AA_B 11" and phones[-2:] == ["#0 27", "#1 28"]
    # <UNK> was added with the garbage phone SPN
    assert read(lang / "words.txt") == ["<eps> 0", "<UNK> 1", "A 2", "AT 3", "BAT 4", "CAT 5", "TAB 6",
                                        "#0 7", "<s> 8", "</s> 9"]
    assert read(lang / "oov.txt") == ["<UNK>"] and read(lang / "oov.int") == ["1"]
    assert read(lang / "phones" / "roots.txt")[2] == "shared split AA_B AA_E AA_I AA_S"
    assert read(lang / "phones" / "sets.int")[0] == "1 2 3 4 5"
    assert read(lang / "phones" / "optional_silence.int") == ["1"]
    assert read(lang / "phones" / "disambig.txt") == ["#0", "#1"]
    assert read(lang / "phones" / "silence.csl") == ["1:2:3:4:5:6:7:8:9:10"]
    assert "T_E end" in read(lang / "phones" / "word_boundary.txt")
    assert "SIL nonword" in read(lang / "phones" / "word_boundary.txt")
    assert read(lang / "phones" / "extra_questions.txt")[0] == "B_B B_E B_I B_S K_B K_E K_I K_S T_B T_E T_I T_S"
    assert "TAB TAB T_B AA_I B_I AA_E" in read(lang / "phones" / "align_lexicon.txt")
    topo = Topology.read(lang / "topo")
    assert topo.num_pdf_classes(1) == 5 and topo.num_pdf_classes(11) == 3
    ld = LangDir(lang)
    assert ld.silence_phones == list(range(1, 11)) and ld.roots[0] == (True, True, [1, 2, 3, 4, 5])
    assert ld.align_lexicon[ld.words["A"]] == [[14]]
    assert ld.base_phone("AA_B") == "AA"

    import kaldifst

    L = kaldifst.StdVectorFst.read(str(lang / "L.fst"))
    # "CAT" alone: start -(eps, no-sil 0.693)-> loop -K_B:CAT-> .. -T_E-> loop(final)
    cat = kaldifst.compile("0 1 19 19\n1 2 13 13\n2 3 24 24\n3\n", acceptor=False)
    path = kaldifst.shortest_path(kaldifst.compose(cat, L))
    labels = [(a.ilabel, a.olabel) for s in range(path.num_states) for a in kaldifst.ArcIterator(path, s)]
    assert sorted(x for x in labels if x != (0, 0)) == sorted([(19, 5), (13, 0), (24, 0)])
    Ld = kaldifst.StdVectorFst.read(str(lang / "L_disambig.fst"))
    loops = [a for s in range(Ld.num_states) for a in kaldifst.ArcIterator(Ld, s) if a.ilabel == 27]
    assert loops and all(a.olabel == 7 for a in loops)  # #0:#0 self-loops
    assert any(a.ilabel == 28 for s in range(Ld.num_states) for a in kaldifst.ArcIterator(Ld, s))  # sil disambig


def test_add_lex_disambig_like_kaldi():
    lex = [("A", 1.0, ["a"]), ("AB", 1.0, ["a", "b"]), ("X", 1.0, ["a", "b"]), ("C", 1.0, ["c"])]
    out, mx = add_lex_disambig(lex)
    assert [p for _, _, p in out] == [["a", "#1"], ["a", "b", "#1"], ["a", "b", "#2"], ["c"]]
    assert mx == 2


def test_lexiconp_and_no_position(tmp_path):
    d = make_dict(tmp_path / "dict", "A 1.0 AA\nA 0.5 AA T\n<UNK> 1.0 SPN\n", probs=True)
    lang = tmp_path / "lang"
    assert main(["prepare-lang", "--position-dependent-phones", "false", str(d), str(lang)]) == 0
    assert read(lang / "phones.txt")[:4] == ["<eps> 0", "SIL 1", "SPN 2", "AA 3"]
    assert not (lang / "phones" / "word_boundary.txt").exists()
    assert read(lang / "phones" / "disambig.txt") == ["#0", "#1", "#2"]


def test_rebuilt_lang_dir_keeps_no_file_of_the_old_one(tmp_path):
    """A lang dir rebuilt without position-dependent phones has no word_boundary.* left
    from the position-dependent one (its phone ids would be wrong); a folder that is not a
    lang dir is not replaced."""
    d = make_dict(tmp_path / "dict", "A AA\nAB AA B\n")
    lang = tmp_path / "lang"
    assert main(["prepare-lang", str(d), str(lang)]) == 0
    assert (lang / "phones" / "word_boundary.int").is_file()
    assert main(["prepare-lang", "--position-dependent-phones", "false", str(d), str(lang)]) == 0
    assert not (lang / "phones" / "word_boundary.int").exists()
    assert not (lang / "phones" / "word_boundary.txt").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    r = subprocess.run([sys.executable, "-m", "asr", "prepare-lang", str(d), str(other)], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "not replaced" in r.stderr and (other / "notes.txt").is_file()


@pytest.mark.parametrize("bad,msg", [
    ("BAT B AA X\n", "undeclared phone"),
    ("<s> AA\n", "reserved symbol"),
    ("A\n", "empty pronunciation"),
])
def test_bad_dict(tmp_path, bad, msg):
    d = make_dict(tmp_path / "dict", bad)
    r = subprocess.run([sys.executable, "-m", "asr", "prepare-lang", str(d), str(tmp_path / "lang")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and msg in r.stderr


def test_prepare_dict_from_a_librispeech_style_lexicon(tmp_path):
    lex = tmp_path / "librispeech-lexicon.txt"
    lex.write_text("A\tAH0\nA\tEY1\nABOUT\tAH0 B AW1 T\nBOAT\tB OW1 T\nTAB\tT AE1 B\n")
    d = tmp_path / "dict"
    assert main(["prepare-dict", str(lex), str(d)]) == 0
    assert read(d / "silence_phones.txt") == ["SIL", "SPN"] and read(d / "optional_silence.txt") == ["SIL"]
    # stress variants (and the bare phone) share a line, i.e. a tree root
    assert read(d / "nonsilence_phones.txt") == ["AE AE1", "AH AH0", "AW AW1", "B", "EY EY1", "OW OW1", "T"]
    assert read(d / "extra_questions.txt") == ["SIL SPN", "AE AH AW B EY OW T", "AH0", "AE1 AW1 EY1 OW1"]
    assert read(d / "lexicon.txt")[:4] == ["!SIL SIL", "<SPOKEN_NOISE> SPN", "<UNK> SPN", "A AH0"]
    lang = tmp_path / "lang"
    assert main(["prepare-lang", str(d), str(lang)]) == 0
    assert "shared split AH_B AH_E AH_I AH_S AH0_B AH0_E AH0_I AH0_S" in read(lang / "phones" / "roots.txt")
    assert read(lang / "oov.txt") == ["<UNK>"]


def test_prepare_dict_bad_lexicon(tmp_path):
    lex = tmp_path / "lex.txt"
    lex.write_text("A AH0\nB\n")
    r = subprocess.run([sys.executable, "-m", "asr", "prepare-dict", str(lex), str(tmp_path / "d")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and f"{lex}:2: word 'B' has no pronunciation" in r.stderr
    lex.write_text("A AH0\n<UNK> SPN\n")
    r = subprocess.run([sys.executable, "-m", "asr", "prepare-dict", str(lex), str(tmp_path / "d")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "reserved word" in r.stderr


def test_failed_prepare_dict_names_the_input_and_keeps_the_dict_dir(tmp_path):
    lex, d = tmp_path / "lex.txt", tmp_path / "dict"
    lex.write_text("A AH0\nHELLO HH AH0 L OW1\n")
    assert main(["prepare-dict", str(lex), str(d)]) == 0
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    for bad, msg in [(b"A AH0\n#HASH HH AE1 SH\n", "2: reserved symbol '#HASH' used as a word"),
                     (b"A AH0\nB AH_B\n", "2: phone 'AH_B' is reserved or ends in a word-position suffix"),
                     (b"A AH0\nCAF\xc9 K AE1 F\n", "2: not valid UTF-8 (byte 0xc9 at column 4)"),
                     (b"A AH0\n<UNK> SPN\n", "2: defines the reserved word '<UNK>'")]:
        lex2 = tmp_path / "lex2.txt"
        lex2.write_bytes(bad)
        r = subprocess.run([sys.executable, "-m", "asr", "prepare-dict", str(lex2), str(d)],
                           capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.startswith(f"asr prepare-dict: error: {lex2}:{msg}"), r.stderr
        assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict", "lex.txt", "lex2.txt"]  # no leftovers
    r = subprocess.run([sys.executable, "-m", "asr", "prepare-dict", str(d / "lexicon.txt"), str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "is inside the dict dir" in r.stderr
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_every_prepare_lang_option_has_help(capsys):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert [a.option_strings for a in sub.choices["prepare-lang"]._actions if a.option_strings and not a.help] == []
    with pytest.raises(SystemExit):
        main(["prepare-lang", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--num-sil-states NUM_SIL_STATES HMM states per silence phone" in out
    assert "--num-nonsil-states NUM_NONSIL_STATES HMM states per non-silence phone" in out
