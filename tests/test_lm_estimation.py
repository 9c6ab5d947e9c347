"""Counting, modified Kneser-Ney, pruning and perplexity on corpora made by the tests."""

import math
import random
from collections import defaultdict

import numpy as np
import pytest

from asr.lm.arpa import read_arpa, write_arpa
from asr.lm.build import make_lm
from asr.lm.counting import count_ngrams, read_corpus
from asr.lm.kneser_ney import estimate_kneser_ney
from asr.lm.perplexity import perplexity
from asr.lm.pruning import prune_by_count, prune_entropy

# ---------------------------------------------------------------- a small random grammar
DET = ["the", "a", "every", "some", "this"]
ADJ = ["red", "big", "old", "quick", "small", "green", "heavy", "long"] + [f"tone{i}" for i in range(40)]
NOUN = ["ship", "cargo", "port", "fleet", "crew", "harbor", "convoy", "carrier", "tanker", "radar"] + [
    f"unit{i}" for i in range(150)]
VERB = ["shows", "moves", "needs", "tracks", "finds", "sends", "reaches", "leaves"]
PREP = ["near", "from", "to", "with", "behind"]
AUX = ["what", "when", "where", "how", "why"]


def _zipf(rng, items):
    w = [1.0 / (i + 1) for i in range(len(items))]
    return rng.choices(items, weights=w)[0]


def _np(rng):
    out = [_zipf(rng, DET)]
    while rng.random() < 0.35:
        out.append(_zipf(rng, ADJ))
    out.append(_zipf(rng, NOUN))
    if rng.random() < 0.2:
        out += [_zipf(rng, PREP)] + _np(rng)
    return out


def sentence(rng):
    if rng.random() < 0.3:
        return [_zipf(rng, AUX), "does"] + _np(rng) + [_zipf(rng, VERB).rstrip("s")]
    s = _np(rng) + [_zipf(rng, VERB)] + _np(rng)
    if rng.random() < 0.3:
        s += [_zipf(rng, PREP)] + _np(rng)
    return s


def write_corpus(path, n, seed):
    rng = random.Random(seed)
    path.write_text("".join(" ".join(sentence(rng)) + "\n" for _ in range(n)))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("lmcorpus")
    return write_corpus(d / "train.txt", 3000, 1), write_corpus(d / "heldout.txt", 400, 2)


# ---------------------------------------------------------------- helpers
def brute_force_sums(lm, max_contexts=60):
    """max |1 - sum_w p(w|h)| per order, summing the scalar logprob over the whole vocabulary."""
    words = [w for w in lm.words if w != "<s>"]
    errs = []
    for k in range(1, lm.order + 1):
        if k == 1:
            contexts = [()]
        else:
            M = lm.ngram_words(k - 1)
            has = np.zeros(len(M), bool)
            has[np.unique(lm.prefix[k - 1][~np.isnan(lm.logprobs[k - 1])])] = True
            contexts = [tuple(lm.words[i] for i in row) for row in M[has]]
            contexts = contexts[:: max(1, len(contexts) // max_contexts)]
        err = max(abs(1 - sum(10 ** lm.logprob(w, h) for w in words)) for h in contexts)
        errs.append(err)
    return errs


def reference_kn(sentences, order):
    """Plain-dict interpolated modified KN (independent reference) -> p(w | h) function."""
    counts = [defaultdict(int) for _ in range(order + 1)]
    for s in sentences:
        toks = ["<s>"] + s + ["</s>"]
        for k in range(1, order + 1):
            for i in range(len(toks) - k + 1):
                counts[k][tuple(toks[i:i + k])] += 1
    adj = [None] + [defaultdict(int) for _ in range(order)]
    for g, c in counts[order].items():
        adj[order][g] = c
    for k in range(1, order):
        for g, c in counts[k].items():
            if g[0] == "<s>":
                adj[k][g] = c
        for g in counts[k + 1]:
            if g[1:][0] != "<s>":
                adj[k][g[1:]] += 1
    adj[1].pop(("<s>",), None)
    disc = [None]
    for k in range(1, order + 1):
        n = [sum(1 for c in adj[k].values() if c == i) for i in (1, 2, 3, 4)]
        y = n[0] / (n[0] + 2 * n[1])
        d = (0, 1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]) if all(n) else None
        if d is None or not (0 < d[1] < 1 and 0 < d[2] < 2 and 0 < d[3] < 3):
            d = (0, y, y, y)  # the documented fallback (absolute discounting)
        disc.append(d)
    vocab = {g[0] for g in counts[1]} | {"<unk>"}
    vocab.discard("<s>")
    tot = [defaultdict(float) for _ in range(order + 1)]
    dsum = [defaultdict(float) for _ in range(order + 1)]
    for k in range(1, order + 1):
        for g, c in adj[k].items():
            tot[k][g[:-1]] += c
            dsum[k][g[:-1]] += disc[k][min(c, 3)]

    def p(w, h):
        h = tuple(h)[-(order - 1):] if order > 1 else ()
        k = len(h) + 1
        if k == 1:
            lower = 1.0 / len(vocab)
        else:
            lower = p(w, h[1:])
        if tot[k].get(h, 0) == 0:
            return lower
        c = adj[k].get(h + (w,), 0)
        return max(c - disc[k][min(c, 3)], 0) / tot[k][h] + dsum[k][h] / tot[k][h] * lower

    return p, disc


# ---------------------------------------------------------------- tests
def test_hand_computed_bigram(tmp_path):
    """Tiny corpus, every value worked out by hand (both discount fallbacks are exercised)."""
    text = tmp_path / "t.txt"
    text.write_text("a b\na b\nb a\n")
    corpus = read_corpus(text)
    counts = count_ngrams(corpus, 2)
    lm, disc = estimate_kneser_ney(counts)
    # unigrams: continuation counts a=b=</s>=2 -> n1=0 -> constants; D(2)=1, gamma0=3/6, V-<s>=4
    assert disc[0].rule == "constant" and disc[1].rule == "absolute"
    assert disc[1].d1 == pytest.approx(1 / 3)  # bigram n1=3, n2=3: Y=1/3
    assert 10 ** lm.logprob("a") == pytest.approx(7 / 24)
    assert 10 ** lm.logprob("</s>") == pytest.approx(7 / 24)
    assert 10 ** lm.logprob("<unk>") == pytest.approx(1 / 8)
    assert 10 ** lm.logprob("a", ["<s>"]) == pytest.approx(67 / 108)
    assert 10 ** lm.logprob("b", ["<s>"]) == pytest.approx(31 / 108)
    assert 10 ** lm.logprob("b", ["a"]) == pytest.approx(67 / 108)
    assert 10 ** lm.logprob("a", ["a"]) == pytest.approx(2 / 9 * 7 / 24)  # backed off
    assert 10 ** lm.logprob("<unk>", ["a"]) == pytest.approx(1 / 36)
    assert lm.backoffs[0][lm.vocab["<s>"]] == pytest.approx(math.log10(2 / 9))
    assert lm.logprobs[0][lm.vocab["<s>"]] == -99
    assert max(brute_force_sums(lm)) < 1e-9


def test_matches_reference_kn(corpus, tmp_path):
    train, _ = corpus
    sents = [l.split() for l in train.read_text().splitlines()]
    ref, rdisc = reference_kn(sents, 3)
    lm, disc = estimate_kneser_ney(count_ngrams(read_corpus(train), 3))
    assert [d.rule for d in disc] == ["absolute", "modified", "modified"]
    for k in range(3):
        assert (disc[k].d1, disc[k].d2, disc[k].d3) == pytest.approx(rdisc[k + 1][1:])
    rng = random.Random(5)
    words = sorted(w for w in lm.vocab if w != "<s>")
    for s in sents[:30]:
        h = ["<s>"] + s
        for i in range(1, len(h)):
            for w in [h[i] if i < len(h) else "</s>", rng.choice(words)]:
                assert 10 ** lm.logprob(w, h[:i]) == pytest.approx(ref(w, h[:i]), rel=1e-9)


def test_chunked_counting_equals_single_pass(corpus):
    c = read_corpus(corpus[0])
    a = count_ngrams(c, 4)
    b = count_ngrams(c, 4, chunk=997)
    for k in range(4):
        np.testing.assert_array_equal(a.keys[k], b.keys[k])
        np.testing.assert_array_equal(a.count[k], b.count[k])
    assert sum(a.count[1]) == c.num_words + c.num_sentences  # bigrams = words + 1 per sentence


def test_sums_to_one_before_and_after_pruning(corpus, tmp_path):
    lm, _ = estimate_kneser_ney(count_ngrams(read_corpus(corpus[0]), 4))
    assert max(brute_force_sums(lm)) < 1e-6
    total = sum(lm.num_ngrams())
    pruned, thr = prune_entropy(lm, target_ngrams=total // 5)
    assert sum(pruned.num_ngrams()) <= total // 5
    assert max(brute_force_sums(pruned)) < 1e-6
    # and after an ARPA round trip (8 significant digits)
    write_arpa(pruned, tmp_path / "p.arpa")
    assert max(brute_force_sums(read_arpa(tmp_path / "p.arpa"))) < 1e-6


def test_threshold_pruning_is_monotone_and_prefix_closed(corpus):
    lm, _ = estimate_kneser_ney(count_ngrams(read_corpus(corpus[0]), 3))
    sizes = []
    for t in [0.0, 1e-7, 1e-6, 1e-5, 1e-4]:
        p, _ = prune_entropy(lm, threshold=t)
        sizes.append(sum(p.num_ngrams()))
        assert p.num_ngrams()[0] == lm.num_ngrams()[0]
        for k in range(2, p.order + 1):  # every prefix is a real n-gram
            assert not np.isnan(p.logprobs[k - 2][p.prefix[k - 1]]).any()
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]


def test_perplexity_matches_kenlm(corpus, tmp_path):
    kenlm = pytest.importorskip("kenlm")
    train, held = corpus
    lm = make_lm(train, order=4)
    arpa = tmp_path / "lm.arpa"
    write_arpa(lm, arpa)
    lines = [l for l in held.read_text().splitlines() if all(w in lm.vocab for w in l.split())]
    clean = tmp_path / "clean.txt"
    clean.write_text("\n".join(lines) + "\n")
    ours = perplexity(read_arpa(arpa), clean)
    assert ours.oovs == 0 and ours.sentences == len(lines)
    ref = kenlm.Model(str(arpa))
    total = sum(ref.score(l, bos=True, eos=True) for l in lines)
    nwords = sum(len(l.split()) for l in lines)
    ref_ppl = 10 ** (-total / (nwords + len(lines)))
    assert ours.ppl == pytest.approx(ref_ppl, rel=1e-4)
    assert ours.logprob == pytest.approx(total, rel=1e-5)
    # and a pruned model (missing n-grams, recomputed back-off weights)
    pruned, _ = prune_entropy(lm, target_ngrams=sum(lm.num_ngrams()) // 10)
    write_arpa(pruned, tmp_path / "pruned.arpa")
    ours = perplexity(read_arpa(tmp_path / "pruned.arpa"), clean)
    ref = kenlm.Model(str(tmp_path / "pruned.arpa"))
    total = sum(ref.score(l, bos=True, eos=True) for l in lines)
    assert ours.ppl == pytest.approx(10 ** (-total / (nwords + len(lines))), rel=1e-4)


def test_entropy_pruning_beats_count_cutoff(corpus, capsys):
    """Pruning to ~10 % of the n-grams: relative-entropy pruning raises held-out perplexity less."""
    train, held = corpus
    c = read_corpus(train)
    counts = count_ngrams(c, 4)
    lm, _ = estimate_kneser_ney(counts)
    total = sum(lm.num_ngrams())
    best = None
    for m in range(2, 60):  # the count cutoff whose size is closest to 10 %
        cut = prune_by_count(lm, counts.count, [m])
        size = sum(cut.num_ngrams())
        if best is None or abs(size - total / 10) < abs(best[1] - total / 10):
            best = (cut, size, m)
    cut, size, m = best
    ent, thr = prune_entropy(lm, target_ngrams=size, history=counts)  # P(h) from training counts
    ent_model, thr_model = prune_entropy(lm, target_ngrams=size)  # P(h) from the KN model (SRILM default)
    assert sum(ent.num_ngrams()) <= size and sum(ent_model.num_ngrams()) <= size
    full_ppl = perplexity(lm, held).ppl
    cut_ppl = perplexity(cut, held).ppl
    ent_ppl = perplexity(ent, held).ppl
    ent_model_ppl = perplexity(ent_model, held).ppl
    with capsys.disabled():
        print(f"\n[lm pruning] full {total} n-grams ppl {full_ppl:.3f}; count cutoff >= {m}: {size} n-grams "
              f"({100 * size / total:.1f} %) ppl {cut_ppl:.3f}; entropy pruning, P(h) from counts "
              f"(threshold {thr:.3g}): {sum(ent.num_ngrams())} n-grams ppl {ent_ppl:.3f}; "
              f"entropy pruning, P(h) from the KN model: ppl {ent_model_ppl:.3f}")
    assert ent_ppl < cut_ppl
    # make-lm --target-ngrams does the same
    via_cli = make_lm(train, order=4, target_ngrams=size)
    assert via_cli.num_ngrams() == ent.num_ngrams()


def test_vocab_maps_oov_to_unk(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("a b c\nb c d\n\nc a\n")
    vocab = tmp_path / "words.txt"
    vocab.write_text("<eps> 0\na 1\nb 2\nc 3\n#0 4\n")
    c = read_corpus(text, __import__("asr.lm.counting", fromlist=["read_vocab"]).read_vocab(vocab))
    assert c.num_oov == 1 and c.num_sentences == 3 and c.skipped_lines == 1
    assert "#0" not in c.words and "<eps>" not in c.words and "d" not in c.words
    lm = make_lm(text, order=3, vocab=vocab)
    assert lm.logprob("c", ["b"]) > lm.logprob("<unk>", ["b"])
    assert "d" not in lm.vocab and lm.word_id("d") == lm.vocab["<unk>"]


def test_unigram_model_and_empty_text(tmp_path):
    from asr.errors import LMError

    text = tmp_path / "t.txt"
    text.write_text("a b a\nb\n")
    lm = make_lm(text, order=1)
    assert lm.order == 1
    # continuation counts do not exist for order 1: raw counts a=2, b=2, </s>=2 (constants fallback)
    assert max(brute_force_sums(lm)) < 1e-9
    write_arpa(lm, tmp_path / "u.arpa")
    res = perplexity(read_arpa(tmp_path / "u.arpa"), text)
    assert res.words == 4 and res.sentences == 2
    assert res.logprob == pytest.approx(sum(lm.logprob(w) for w in "a b a </s> b </s>".split()), abs=1e-6)
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    with pytest.raises(LMError, match="no sentences"):
        make_lm(empty, order=3)


def test_state_api_exact_on_pruned_model(corpus):
    """score_ids over reduced states equals logprob with the full history (rescoring relies on it)."""
    lm, _ = estimate_kneser_ney(count_ngrams(read_corpus(corpus[0]), 4))
    pruned, _ = prune_entropy(lm, threshold=2e-5)
    rng = random.Random(3)
    sents = [l.split() for l in corpus[1].read_text().splitlines()[:40]]
    vocab_ids = list(range(len(pruned.words)))
    for s in sents + [[pruned.words[rng.choice(vocab_ids)] for _ in range(8)] for _ in range(20)]:
        ids = [pruned.word_id(w) for w in s] + [pruned.eos]
        state, hist, total = pruned.start_state(), [pruned.bos], 0.0
        for w in ids:
            lp, state = pruned.score_ids(state, w)
            assert lp == pytest.approx(pruned.logprob_ids(w, tuple(hist)), abs=1e-12)
            hist.append(w)
            total += lp
            assert len(state) <= 3
        assert pruned.score_sentence(s) == pytest.approx(total, abs=1e-9)
