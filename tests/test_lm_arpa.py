"""ARPA reading/writing and NgramLM lookups, checked against kenlm on hand-written files."""

import math

import numpy as np
import pytest

from asr.errors import FormatError, LMError
from asr.lm.arpa import read_arpa, write_arpa

ARPA = """
\\data\\
ngram 1=6
ngram 2=5
ngram 3=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.30103
-0.69897\t</s>
-0.52288\ta\t-0.2
-0.69897\tb\t-0.1
-0.82391\tc

\\2-grams:
-0.30103\t<s> a\t-0.05
-0.39794\ta b\t-0.15
-0.5\tb </s>
-0.22185\ta a
-0.6\tb c

\\3-grams:
-0.1\t<s> a b
-0.2\ta b c

\\end\\
"""


def write(tmp_path, text, name="lm.arpa"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_logprob_backoff_by_hand(tmp_path):
    lm = read_arpa(write(tmp_path, ARPA))
    assert lm.order == 3 and len(lm.vocab) == 6 and "a" in lm.vocab
    assert lm.num_ngrams() == [6, 5, 2]
    assert lm.logprob("b", ("<s>", "a")) == pytest.approx(-0.1)
    # (a a) absent as trigram context -> bigram (a b) with bow(a a)=0 (no entry)
    assert lm.logprob("b", ("a", "a")) == pytest.approx(-0.39794)
    # c | <s> a : trigram absent; bow(<s> a) + p(c|a); (a c) absent -> bow(a) + p(c)
    assert lm.logprob("c", ("<s>", "a")) == pytest.approx(-0.05 + -0.2 + -0.82391)
    assert lm.logprob("</s>", ("x", "b")) == pytest.approx(-0.5)  # x -> <unk>
    # sentence: <s> a b c </s>
    expect = -0.30103 + -0.1 + -0.2 + (0.0 + -0.69897)  # c as context has no bow
    assert lm.score_sentence(["a", "b", "c"]) == pytest.approx(expect)


def test_matches_kenlm(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    p = write(tmp_path, ARPA)
    lm = read_arpa(p)
    ref = kenlm.Model(str(p))
    for sent in ["a b c", "a a b", "b c a b", "c c c", "a", "b a a b c b"]:
        assert lm.score_sentence(sent.split()) == pytest.approx(ref.score(sent), abs=1e-5)


def test_state_api_and_batch_agree(tmp_path):
    lm = read_arpa(write(tmp_path, ARPA))
    ids = [lm.vocab[w] for w in "a b c a a b </s>".split()]
    state = lm.start_state()
    hist = [lm.vocab["<s>"]]
    singles, hists = [], []
    for w in ids:
        lp, new_state = lm.score_ids(state, w)
        assert lp == pytest.approx(lm.logprob_ids(w, tuple(hist)))
        singles.append(lp)
        hists.append(([-1, -1] + hist)[-2:])
        hist.append(w)
        state = new_state
        assert state == lm.context_state(tuple(hist))
    batch = lm.logprob_batch(np.array(ids), np.array(hists))
    np.testing.assert_allclose(batch, singles, atol=1e-12)


def test_missing_context_gets_blank_row(tmp_path, caplog):
    text = ARPA.replace("ngram 3=2", "ngram 3=3").replace("-0.2\ta b c\n", "-0.2\ta b c\n-0.3\tc a b\n")
    lm = read_arpa(write(tmp_path, text))
    assert "missing" in caplog.text
    assert lm.num_ngrams() == [6, 5, 3]
    assert lm.logprob("b", ("c", "a")) == pytest.approx(-0.3)
    # (c a) blank: p(a | c) backs off to bow(c)=0 + p(a)
    assert lm.logprob("a", ("c",)) == pytest.approx(-0.52288)


def test_roundtrip(tmp_path):
    lm = read_arpa(write(tmp_path, ARPA))
    out = tmp_path / "out.arpa"
    write_arpa(lm, out)
    lm2 = read_arpa(out)
    assert lm2.words == lm.words
    for k in range(3):
        np.testing.assert_allclose(lm2.logprobs[k], lm.logprobs[k], rtol=1e-6)
        np.testing.assert_allclose(lm2.backoffs[k], lm.backoffs[k], rtol=1e-6)
        np.testing.assert_array_equal(lm2.keys[k], lm.keys[k])


@pytest.mark.parametrize(
    "bad, msg",
    [
        (ARPA.replace("ngram 2=5", "ngram 2=6"), "ngram 2=6"),
        (ARPA.replace("\\end\\", ""), "end"),
        (ARPA.replace("-0.6\tb c", "-0.6\tb zz"), "zz"),
        (ARPA.replace("-0.6\tb c", "x.y\tb c"), ":20:"),
        ("hello\n", "no \\data\\"),
    ],
)
def test_bad_files(tmp_path, bad, msg):
    with pytest.raises(FormatError, match=msg.replace("\\", "\\\\")):
        read_arpa(write(tmp_path, bad))


def test_unknown_word_without_unk(tmp_path):
    lm = read_arpa(write(tmp_path, ARPA.replace("ngram 1=6", "ngram 1=5").replace("-1.0\t<unk>\n", "")))
    with pytest.raises(LMError, match="zz"):
        lm.logprob("zz")
    assert math.isfinite(lm.logprob("a"))


def test_prune_lm_history_text_without_unk(tmp_path):
    from asr.cli import main

    arpa = write(tmp_path, ARPA.replace("ngram 1=6", "ngram 1=5").replace("-1.0\t<unk>\n", ""))
    text = tmp_path / "t.txt"
    text.write_text("a b c\na b\nzz a\n")
    out = tmp_path / "p.arpa"
    assert main(["prune-lm", "--threshold", "0.05", "--history-text", str(text), str(arpa), str(out)]) == 0
    pruned = read_arpa(out)
    assert pruned.num_ngrams() == [5, 3, 2]  # trigram contexts kept
    # the hand-made unigrams do not sum to 1; every higher-order context is renormalised
    assert max(pruned.context_sum_errors()[1:]) < 1e-6


def test_score_batch_equals_score_ids(tmp_path):
    lm = read_arpa(write(tmp_path, ARPA))
    rng = np.random.default_rng(0)
    states = [lm.start_state(), (), (lm.vocab["a"],), (lm.vocab["a"], lm.vocab["b"])]
    st = [states[i] for i in rng.integers(0, 4, 50)]
    ws = rng.integers(0, len(lm.words), 50)
    ws[ws == lm.bos] = lm.eos
    lp, nxt = lm.score_batch(st, ws)
    for s, w, l, n in zip(st, ws.tolist(), lp, nxt):
        ref_lp, ref_state = lm.score_ids(s, w)
        assert n == ref_state
        assert l == pytest.approx(ref_lp, abs=1e-12)
    assert list(lm.find_rows_batch(np.array([[lm.vocab["a"], lm.vocab["b"]], [lm.vocab["b"], lm.vocab["b"]]]))) == [
        lm.find_row((lm.vocab["a"], lm.vocab["b"])), -1]
