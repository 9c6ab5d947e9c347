"""asr lmrescore (LM lattice rescoring) and asr score-lattices (LMWT / WIP sweep)."""

import json
import math

import numpy as np
import pytest

from asr.cli import main
from asr.lattice.lattice_io import Lattice, best_path, read_lattices, write_lattices
from asr.lattice.lmrescore import LatticeRescorer
from asr.lm.arpa import read_arpa

WORDS = ["<eps>", "a", "b", "c"]

OLD_ARPA = r"""\data\
ngram 1=5
ngram 2=3

\1-grams:
-1.0 </s>
-99 <s> -0.5
-0.7 a -0.3
-0.7 b -0.3
-0.7 c -0.3

\2-grams:
-0.2 <s> a
-0.3 a b
-0.3 b </s>

\end\
"""

NEW_ARPA = r"""\data\
ngram 1=5
ngram 2=5
ngram 3=3

\1-grams:
-1.0 </s>
-99 <s> -0.4
-0.8 a -0.2
-0.9 b -0.25
-0.6 c -0.1

\2-grams:
-0.1 <s> a -0.1
-1.5 a b -0.3
-0.1 a c -0.2
-0.2 c </s>
-0.4 b a

\3-grams:
-0.05 <s> a c
-0.05 a c </s>
-0.3 a b a

\end\
"""


@pytest.fixture()
def lms(tmp_path):
    (tmp_path / "old.arpa").write_text(OLD_ARPA)
    (tmp_path / "new.arpa").write_text(NEW_ARPA)
    return read_arpa(tmp_path / "old.arpa"), read_arpa(tmp_path / "new.arpa")


def lm_cost(lm, words):
    return -math.log(10) * lm.score_sentence(words)


def all_paths(lat):
    """(word tuple, graph sum, acoustic sum) of every start-to-final path."""
    out = {}
    for i, s in enumerate(lat.src):
        out.setdefault(int(s), []).append(i)
    res = []

    def rec(s, words, g, a):
        if np.isfinite(lat.final_graph[s]):
            res.append((tuple(words), g + float(lat.final_graph[s]), a + float(lat.final_acoustic[s])))
        for i in out.get(s, []):
            w = int(lat.word[i])
            rec(int(lat.dst[i]), words + ([WORDS[w]] if w else []), g + float(lat.graph[i]), a + float(lat.acoustic[i]))

    rec(lat.start, [], 0.0, 0.0)
    return sorted(res)


def random_lattice(rng, n_states=7, n_arcs=12):
    src = rng.integers(0, n_states - 1, n_arcs)
    dst = np.array([rng.integers(s + 1, n_states) for s in src])
    src = np.r_[np.arange(n_states - 1), src]  # make every state reachable
    dst = np.r_[np.arange(1, n_states), dst]
    n = len(src)
    fg = np.full(n_states, np.inf)
    fa = np.full(n_states, np.inf)
    fg[-1], fa[-1] = 0.5, 1.0
    fg[n_states // 2], fa[n_states // 2] = 1.0, 2.0
    return Lattice(src, dst, rng.integers(0, 4, n), rng.uniform(0, 3, n), rng.uniform(0, 30, n), fg, fa)


def test_every_path_gets_exact_lm_scores(lms):
    old, new = lms
    rng = np.random.default_rng(5)
    for scale in (1.0, 0.5):
        rescorer = LatticeRescorer(old, new, WORDS, lm_scale=scale)
        for _ in range(20):
            lat = random_lattice(rng)
            before = all_paths(lat)
            after = all_paths(rescorer.rescore(lat))
            assert len(after) == len(before)  # composition with a deterministic LM: path bijection
            expect = sorted((w, g - lm_cost(old, w) + scale * lm_cost(new, w), a) for w, g, a in before)
            for (w1, g1, a1), (w2, g2, a2) in zip(after, expect):
                assert w1 == w2
                assert g1 == pytest.approx(g2, abs=2e-3)
                assert a1 == pytest.approx(a2, abs=1e-4)


def test_same_lm_leaves_scores_unchanged(lms):
    _, new = lms
    rng = np.random.default_rng(6)
    rescorer = LatticeRescorer(new, new, WORDS)
    for _ in range(20):
        lat = random_lattice(rng)
        before, after = all_paths(lat), all_paths(rescorer.rescore(lat))
        assert [w for w, _, _ in before] == [w for w, _, _ in after]
        np.testing.assert_allclose([g for _, g, _ in after], [g for _, g, _ in before], atol=1e-4)
        np.testing.assert_allclose([a for _, _, a in after], [a for _, _, a in before], atol=1e-4)


def first_pass_lattice(old):
    """Two paths, 'a b' and 'a c', graph cost = old LM cost; acoustics favour 'a b' a little."""
    ab = lm_cost(old, ["a", "b"])
    ac = lm_cost(old, ["a", "c"])
    # split each path's LM cost over its arcs (any split; only path sums matter)
    return Lattice(
        src=[0, 1, 1], dst=[1, 2, 2], word=[1, 2, 3],
        graph=[0.0, ab, ac], acoustic=[10.0, 20.0, 21.0],
        final_graph=[np.inf, np.inf, 0.0], final_acoustic=[np.inf, np.inf, 0.0],
    )


def test_lmrescore_cli_changes_one_best(tmp_path, lms, capsys):
    old, new = lms
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(WORDS)))
    lat = first_pass_lattice(old)
    assert [WORDS[i] for i in best_path(lat, 1.0).words] == ["a", "b"]
    write_lattices(tmp_path / "in" / "lat.1.gz", [("utt1", lat)])
    write_lattices(tmp_path / "in" / "lat.2.gz", [("utt2", lat)])
    rc = main(["lmrescore", "--nj", "2", "--old-lm", str(tmp_path / "old.arpa"), "--new-lm", str(tmp_path / "new.arpa"),
               str(tmp_path / "in"), str(tmp_path / "out")])
    assert rc == 0
    for job in (1, 2):
        (utt, out), = list(read_lattices(tmp_path / "out" / f"lat.{job}.gz"))
        bp = best_path(out, 1.0)
        assert [WORDS[i] for i in bp.words] == ["a", "c"]
        assert bp.graph == pytest.approx(lm_cost(new, ["a", "c"]), abs=1e-3)
        assert bp.acoustic == pytest.approx(31.0)
    assert (tmp_path / "out" / "words.txt").is_file()
    assert "rescore_seconds" in (tmp_path / "out" / "decode.json").read_text()
    # bad input: missing LM file -> exit 1 with the file named
    rc = main(["lmrescore", "--old-lm", str(tmp_path / "nope.arpa"), "--new-lm", str(tmp_path / "new.arpa"),
               str(tmp_path / "in"), str(tmp_path / "out2")])
    assert rc == 1 and "nope.arpa" in capsys.readouterr().err


def two_path(correct, wrong, gx, ax, gy, ay):
    """Lattice with path X = correct words (graph gx, acoustic ax) and path Y = wrong words."""
    src, dst, word, g, a = [], [], [], [], []
    n = 2
    for words, gg, aa in ((correct, gx, ax), (wrong, gy, ay)):
        prev = 0
        for k, w in enumerate(words):
            last = k == len(words) - 1
            nxt = 1 if last else n
            if not last:
                n += 1
            src.append(prev), dst.append(nxt), word.append(WORDS.index(w))
            g.append(gg if k == 0 else 0.0), a.append(aa if k == 0 else 0.0)
            prev = nxt
    fg = np.full(n, np.inf)
    fa = np.full(n, np.inf)
    fg[1] = fa[1] = 0.0
    return Lattice(src, dst, word, g, a, fg, fa)


def test_score_lattices_sweep_picks_right_pair(tmp_path, capsys, caplog):
    data, dec, test_data, test_dec = (tmp_path / d for d in ("data", "decode", "test", "decode_test"))
    for d in (data, dec, test_data, test_dec):
        d.mkdir()
    refs = {"u1": ["a", "b"], "u2": ["b", "c"], "u3": ["a", "b"]}
    (data / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in refs.items()))
    (data / "utt2spk").write_text("u1 s1\nu2 s1\nu3 s2\n")
    lats = [
        # X right iff 10 + 100/L < 20 + 5/L  <=>  L > 9.5
        ("u1", two_path(["a", "b"], ["c", "c"], 10, 100, 20, 5)),
        # X right iff 20 + 10/L < 10 + 125/L  <=>  L < 11.5
        ("u2", two_path(["b", "c"], ["b", "a"], 20, 10, 10, 125)),
        # X (2 words) right iff 2w + 50/L < 3w + 44/L  <=>  w > 6/L: needs WIP 1.0 at L 10, 11
        ("u3", two_path(["a", "b"], ["a", "b", "c"], 10, 50, 10, 44)),
    ]
    write_lattices(dec / "lat.1.gz", lats[:2])
    write_lattices(dec / "lat.2.gz", lats[2:])
    words = tmp_path / "words.txt"
    words.write_text("".join(f"{w} {i}\n" for i, w in enumerate(WORDS)))
    rc = main(["score-lattices", "--words", str(words), str(data), str(dec)])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.startswith("%WER 0.00 [ 0 / 6, 0 ins, 0 del, 0 sub ]") and "LMWT=10 WIP=1.0" in out
    assert (dec / "scoring" / "lmwt").read_text() == "10\n"
    assert (dec / "scoring" / "wip").read_text() == "1.0\n"
    assert (dec / "scoring" / "best_wer").read_text().split()[-1].endswith("wer_10_1.0")
    sweep = json.loads((dec / "scoring" / "sweep.json").read_text())
    assert sweep["lmwt"] == 10 and sweep["acoustic_scale"] == 0.1 and sweep["lmwts"] == list(range(7, 18))
    assert not sweep["lmwt_at_edge"] and sweep["wip_at_edge"]  # WIP 1.0 is the largest swept
    assert "best WIP 1.0 is at the edge of the sweep 0.0,0.5,1.0" in caplog.text
    assert len(list(dec.glob("wer_*_*"))) == 33
    assert (dec / "wer_7_0.0").read_text().startswith("%WER 50.00 [ 3 / 6, 1 ins, 0 del, 2 sub ]")
    assert (dec / "scoring" / "hyp_12_1.0.txt").read_text() == "u1 a b\nu2 b a\nu3 a b\n"
    per_utt = (dec / "scoring" / "wer_details" / "per_utt").read_text()
    assert "u3 #csid 2 0 0 0" in per_utt and "u1 op   C  C" in per_utt
    per_spk = (dec / "scoring" / "wer_details" / "per_spk").read_text().splitlines()
    assert per_spk[-2].split() == ["SUM", "raw", "3", "6", "6", "0", "0", "0", "0", "0"]
    # apply the dev choice to a test set
    (test_data / "text").write_text("u3 a b\n")
    write_lattices(test_dec / "lat.1.gz", lats[2:])
    rc = main(["score-lattices", "--words", str(words), "--best-from", str(dec), str(test_data), str(test_dec)])
    assert rc == 0
    assert (test_dec / "hyp.txt").read_text() == "u3 a b\n"
    assert capsys.readouterr().out.startswith("%WER 0.00 [ 0 / 2,")
    rc = main(["score-lattices", "--words", str(words), "--lmwt", "10", "--wip", "0.0", str(test_data), str(test_dec)])
    assert (test_dec / "hyp.txt").read_text() == "u3 a b c\n"
    assert (test_dec / "wer").read_text().startswith("%WER 50.00 [ 1 / 2, 1 ins, 0 del, 0 sub ]")
    assert json.loads((test_dec / "scoring" / "fixed.json").read_text())["wip"] == "0.0"  # the pair is recorded
    # scoring fails (a lattice for an utterance the text lacks): nothing is written, in either mode
    (test_data / "text").write_text("u9 a b\n")
    before = {p: p.read_bytes() for p in test_dec.rglob("*") if p.is_file()}
    for pair in (["--lmwt", "12", "--wip", "0.5"], ["--lmwt", "9:10", "--wip", "0.5"]):
        rc = main(["score-lattices", "--words", str(words), *pair, str(test_data), str(test_dec)])
        err = capsys.readouterr().err
        assert rc == 1 and "not in the reference" in err and "hyp_" not in err and len(err.splitlines()) == 1
        assert {p: p.read_bytes() for p in test_dec.rglob("*") if p.is_file()} == before
    # bad input
    rc = main(["score-lattices", "--words", str(words), "--lmwt", "x:y", str(test_data), str(test_dec)])
    assert rc == 1 and "bad LM weight" in capsys.readouterr().err
    rc = main(["score-lattices", "--words", str(words), str(test_data), str(tmp_path)])
    assert rc == 1 and "no lattices" in capsys.readouterr().err


def test_word_missing_from_lm_is_a_clear_error(lms):
    old, new = lms
    words = WORDS + ["zebra"]
    lat = Lattice([0], [1], [4], [1.0], [1.0], [np.inf, 0.0], [np.inf, 0.0])
    from asr.errors import DecodeError

    with pytest.raises(DecodeError, match=r"utt7.*'zebra'"):
        LatticeRescorer(old, new, words).rescore(lat, "utt7")
    # a word the lattice does not use may be missing
    ok = LatticeRescorer(old, new, words).rescore(Lattice.linear([1, 2]), "u")
    assert [WORDS[i] for i in best_path(ok).words] == ["a", "b"]


def test_epsilon_arcs_and_empty_lattices(lms):
    old, new = lms
    r = LatticeRescorer(old, new, WORDS)
    assert r.rescore(Lattice.empty()).num_states == 0
    # eps arcs keep the history: <s> a <eps> c </s> scores like "a c"
    lat = Lattice.linear([1, 0, 3])
    bp = best_path(r.rescore(lat))
    assert bp.words.tolist() == [1, 3]
    assert bp.graph == pytest.approx(lm_cost(new, ["a", "c"]) - lm_cost(old, ["a", "c"]), abs=1e-4)


def _decode_dir(tmp_path, lats, words=WORDS, info=None):
    d = tmp_path / "in"
    d.mkdir()
    (d / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)))
    write_lattices(d / "lat.1.gz", lats)
    if info is not None:
        (d / "decode.json").write_text(json.dumps(info))
    return d


def test_old_lm_must_be_the_recorded_first_pass_lm(tmp_path, lms, capsys):
    from asr.io.fingerprint import file_hash

    old, _ = lms
    d = _decode_dir(tmp_path, [("utt1", first_pass_lattice(old))],
                    info={"lattice_jobs": 1, "lm_sha256": file_hash(tmp_path / "old.arpa")})
    rc = main(["lmrescore", "--old-lm", str(tmp_path / "new.arpa"), "--new-lm", str(tmp_path / "new.arpa"),
               str(d), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and "new.arpa is not the LM the lattices" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    import gzip

    (tmp_path / "old.arpa.gz").write_bytes(gzip.compress((tmp_path / "old.arpa").read_bytes()))
    assert main(["lmrescore", "--old-lm", str(tmp_path / "old.arpa.gz"), "--new-lm", str(tmp_path / "new.arpa"),
                 str(d), str(tmp_path / "out_gz")]) == 0  # the same LM gzipped: its text is compared
    assert main(["lmrescore", "--old-lm", str(tmp_path / "old.arpa"), "--new-lm", str(tmp_path / "new.arpa"),
                 str(d), str(tmp_path / "out")]) == 0
    # the rescored lattices hold the new LM's scores: it is the --old-lm of a further rescoring
    info = json.loads((tmp_path / "out" / "decode.json").read_text())
    assert info["lm_sha256"] == file_hash(tmp_path / "new.arpa")


def test_lattice_words_missing_from_new_lm_are_counted(tmp_path, lms, capsys, caplog):
    old, _ = lms
    words = WORDS + ["zebra", "<unk>"]
    (tmp_path / "unk.arpa").write_text(OLD_ARPA.replace("ngram 1=5", "ngram 1=6").replace("-0.7 c -0.3", "-0.7 c -0.3\n-2.0 <unk>"))
    few = [("u1", Lattice.linear([1, 2])), ("u2", Lattice.linear([1, 4, 2]))]  # 1 of 5 word arcs missing
    d = _decode_dir(tmp_path, few, words)
    rc = main(["lmrescore", "--old-lm", str(tmp_path / "unk.arpa"), "--new-lm", str(tmp_path / "unk.arpa"),
               str(d), str(tmp_path / "out")])
    assert rc == 0
    assert "1 of 5 lattice word arcs" in caplog.text and "zebra" in caplog.text
    many = tmp_path / "many"
    many.mkdir()
    (many / "words.txt").write_text((d / "words.txt").read_text())
    write_lattices(many / "lat.1.gz", [("u1", Lattice.linear([4, 4, 1]))])  # 2 of 3 missing: another vocabulary
    rc = main(["lmrescore", "--old-lm", str(tmp_path / "unk.arpa"), "--new-lm", str(tmp_path / "unk.arpa"),
               str(many), str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert rc == 1 and "unk.arpa: 2 of 3 lattice word arcs" in err and "another vocabulary" in err
    assert not (tmp_path / "out2").exists()
