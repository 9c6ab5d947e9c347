"""asr make-graph: HCLG from a tiny hand-made lang dir, tree and LM; decoding known pdf
sequences gives the right words; graphs in other OpenFst layouts are accepted."""

import json
import subprocess
import sys

import numpy as np
import pytest

from graph_fixtures import ARPA, make_lang, make_tree_dir, sharp_loglikes, target_pdfs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph")
    lang = make_lang(root)
    (root / "lm.arpa").write_text(ARPA)
    return root, lang


def _words(lang):
    return {int(v): k for k, v in (line.split() for line in (lang / "words.txt").read_text().splitlines())}


@pytest.mark.parametrize("triphone", [False, True])
def test_make_graph_decodes_known_state_sequences(setup, triphone):
    from asr.decode.search import SearchConfig, Searcher
    from asr.graph.mkgraph import load_graph
    from asr.hmm.transition_model import TransitionModel

    root, lang = setup
    td = make_tree_dir(root, lang, triphone)
    gd = td / "graph"
    out = subprocess.run([sys.executable, "-m", "asr", "make-graph", str(lang), str(td), str(root / "lm.arpa"),
                          str(gd)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["context_width"] == (3 if triphone else 1) and stats["states"] > 0
    for f in ("HCLG.fst", "words.txt", "phones.txt", "disambig_tid.int"):
        assert (gd / f).exists()
    tm = TransitionModel.read(td / "final.mdl")
    # disambiguation tids are numbered after the real transition-ids
    dis = [int(x) for x in (gd / "disambig_tid.int").read_text().split()]
    assert dis and min(dis) == tm.num_transition_ids + 1
    inv = _words(lang)
    s = Searcher(load_graph(gd / "HCLG.fst"), SearchConfig())
    for words in (["CAT", "AT"], ["BAT", "TAB", "A"], ["A"], ["TAB", "CAT"]):
        pdfs = target_pdfs(lang, td, words)
        r = s.best(sharp_loglikes(pdfs, tm.num_pdfs), tm.tid2pdf)
        assert [inv[w] for w in r.words] == words
        assert r.reached_final and r.acoustic_cost == 0.0  # every frame on its target pdf
        # with optional silence (5-state ergodic silence HMM) around and between the words
        pdfs = target_pdfs(lang, td, words, frames_per_state=1, silence=True)
        r = s.best(sharp_loglikes(pdfs, tm.num_pdfs), tm.tid2pdf)
        assert [inv[w] for w in r.words] == words and r.acoustic_cost == 0.0


def test_graph_cost_of_known_path(setup):
    """Graph cost of 'CAT AT' = LM + optional-silence choices + HMM transitions."""
    from asr.decode.search import SearchConfig, Searcher
    from asr.graph.mkgraph import load_graph, make_graph
    from asr.hmm.transition_model import TransitionModel

    root, lang = setup
    td = make_tree_dir(root, lang, False)
    make_graph(lang, td, root / "lm.arpa", td / "g2")
    tm = TransitionModel.read(td / "final.mdl")
    pdfs = target_pdfs(lang, td, ["CAT", "AT"], frames_per_state=2)
    r = Searcher(load_graph(td / "g2" / "HCLG.fst"), SearchConfig()).best(sharp_loglikes(pdfs, tm.num_pdfs), tm.tid2pdf)
    lm = (0.2 + 0.3 + 0.1) * np.log(10)
    sil = 3 * np.log(2)  # no silence at the start and after each word (prob 0.5 each)
    hmm = 15 * (-0.1 * np.log(0.75) - 0.1 * np.log(0.25))  # 15 states, 1 self-loop + 1 exit each
    assert r.graph_cost == pytest.approx(lm + sil + hmm, abs=1e-3)


def test_kaldi_style_graph_files_accepted(setup, tmp_path):
    """A vector-type HCLG with embedded symbol tables (as OpenFst/Kaldi tools may write)."""
    import pywrapfst

    from asr.decode.search import SearchConfig, Searcher
    from asr.graph.mkgraph import load_graph, make_graph
    from asr.hmm.transition_model import TransitionModel

    root, lang = setup
    td = make_tree_dir(root, lang, True)
    make_graph(lang, td, root / "lm.arpa", td / "g3", fst_type="vector")
    f = pywrapfst.Fst.read(str(td / "g3" / "HCLG.fst"))
    assert f.fst_type() == "vector"
    syms = pywrapfst.SymbolTable()
    for k, v in _words(lang).items():
        syms.add_symbol(v, k)
    f.set_output_symbols(syms)
    f.write(str(tmp_path / "HCLG.fst"))
    tm = TransitionModel.read(td / "final.mdl")
    pdfs = target_pdfs(lang, td, ["BAT", "A"])
    for path in (td / "g3" / "HCLG.fst", tmp_path / "HCLG.fst"):
        r = Searcher(load_graph(path), SearchConfig()).best(sharp_loglikes(pdfs, tm.num_pdfs), tm.tid2pdf)
        assert [_words(lang)[w] for w in r.words] == ["BAT", "A"]
    # the same arcs whether the file carries symbol tables or not
    from asr.graph.fst_arrays import read_fst

    a, b = read_fst(td / "g3" / "HCLG.fst"), read_fst(tmp_path / "HCLG.fst")
    assert a.num_arcs == b.num_arcs > 0 and np.array_equal(a.olabel, b.olabel) and np.array_equal(a.dst, b.dst)


PLAIN_INSTALL = """
import sys
sys.modules["pywrapfst"] = None  # as after `pip install .` without the test extras (no pynini)
sys.modules["pynini"] = None
from pathlib import Path
from asr.graph.fst_arrays import read_fst
from asr.graph.mkgraph import load_graph, make_graph
lang, td, lm, out = map(Path, sys.argv[1:])
make_graph(lang, td, lm, out / "v", fst_type="vector")
make_graph(lang, td, lm, out / "c")
v, c = read_fst(out / "v" / "HCLG.fst"), read_fst(out / "c" / "HCLG.fst")
assert v.num_arcs == c.num_arcs > 0, (v.num_arcs, c.num_arcs)
load_graph(out / "v" / "HCLG.fst")
print("ok")
"""


def test_graph_needs_no_pynini(setup, tmp_path):
    """The product installs without pynini (test-only): graphs are built, written as vector
    or const, and read back with kaldifst alone."""
    root, lang = setup
    td = make_tree_dir(root, lang, True)
    out = subprocess.run([sys.executable, "-c", PLAIN_INSTALL, str(lang), str(td), str(root / "lm.arpa"), str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_fst_arrays_round_trip(tmp_path):
    from asr.graph.fst_arrays import FstArrays, from_kaldifst, read_fst, to_kaldifst, write_fst

    rng = np.random.default_rng(0)
    n, m = 50, 300
    src = np.sort(rng.integers(0, n, m)).astype(np.int32)
    fa = FstArrays(3, np.where(rng.random(n) < 0.2, rng.random(n), np.inf).astype(np.float32), src,
                   rng.integers(0, 9, m).astype(np.int32), rng.integers(0, 9, m).astype(np.int32),
                   rng.random(m).astype(np.float32), rng.integers(0, n, m).astype(np.int32))
    for kind in ("const", "vector"):
        write_fst(fa, tmp_path / f"{kind}.fst", kind)
        back = read_fst(tmp_path / f"{kind}.fst")
        assert back.start == 3 and np.array_equal(back.final, fa.final)
        for a in ("src", "ilabel", "olabel", "weight", "dst"):
            assert np.array_equal(getattr(back, a), getattr(fa, a)), (kind, a)
    k = from_kaldifst(to_kaldifst(fa))
    assert np.array_equal(k.dst, fa.dst) and k.num_states == n


def test_make_graph_errors(setup, tmp_path):
    root, lang = setup
    td = make_tree_dir(root, lang, False)
    out = subprocess.run([sys.executable, "-m", "asr", "make-graph", str(lang), str(tmp_path / "nope"),
                          str(root / "lm.arpa"), str(tmp_path / "g")], capture_output=True, text=True)
    assert out.returncode == 1 and "nope" in out.stderr and out.stderr.count("\n") == 1
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 ZEBRA\n\n\\end\\\n")
    out = subprocess.run([sys.executable, "-m", "asr", "make-graph", str(lang), str(td), str(bad),
                          str(tmp_path / "g")], capture_output=True, text=True)
    assert out.returncode == 1 and "error" in out.stderr


def test_make_graph_from_g_fst_equals_arpa(setup, tmp_path):
    from asr.graph.fst_arrays import read_fst, write_fst
    from asr.graph.mkgraph import make_g, make_graph

    root, lang = setup
    td = make_tree_dir(root, lang, True)
    write_fst(make_g(root / "lm.arpa", lang / "words.txt"), tmp_path / "G.fst", "vector")
    a = make_graph(lang, td, root / "lm.arpa", tmp_path / "ga")
    b = make_graph(lang, td, tmp_path / "G.fst", tmp_path / "gb")
    assert (a["states"], a["arcs"]) == (b["states"], b["arcs"])
    fa, fb = read_fst(tmp_path / "ga" / "HCLG.fst"), read_fst(tmp_path / "gb" / "HCLG.fst")
    assert np.array_equal(fa.ilabel, fb.ilabel) and np.allclose(fa.weight, fb.weight)
    # graph.json: the ARPA text's hash, the same for the LM gzipped (what lmrescore --old-lm is
    # checked against); none for a G.fst (no ARPA to compare with)
    import gzip
    import json

    from asr.io.fingerprint import file_hash

    (tmp_path / "lm.arpa.gz").write_bytes(gzip.compress((root / "lm.arpa").read_bytes()))
    make_graph(lang, td, tmp_path / "lm.arpa.gz", tmp_path / "gz")
    info = {g: json.loads((tmp_path / g / "graph.json").read_text()) for g in ("ga", "gb", "gz")}
    assert info["ga"]["lm_arpa_sha256"] == info["gz"]["lm_arpa_sha256"] == file_hash(root / "lm.arpa")
    assert info["gb"]["lm_arpa_sha256"] is None
