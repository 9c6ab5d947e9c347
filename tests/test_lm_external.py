"""Counting in chunks through sorted runs on disk (make-lm on texts larger than memory)."""

import numpy as np
import pytest

import asr.lm.external_counts as ext
from asr.cli import main
from asr.errors import LMError
from asr.lm.counting import count_ngrams, read_corpus
from asr.lm.kneser_ney import adjusted_counts, estimate_kneser_ney


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    from asr.data.synth.grammar import Grammar

    g, rng = Grammar(), np.random.default_rng(0)
    p = tmp_path_factory.mktemp("lm") / "text.txt"
    p.write_text("".join(" ".join(g.sample(rng)) + "\n" for _ in range(2500)) + "\n<s> a literal marker </s>\n")
    return p


def test_chunked_counts_equal_in_memory_counts(text, monkeypatch, tmp_path):
    monkeypatch.setattr(ext, "MERGE_BLOCK", 500)  # many merge steps per order
    full = count_ngrams(read_corpus(text), 4)
    chunked, stats = ext.count_text(text, 4, chunk_words=2000, tmp_dir=tmp_path)
    assert stats["chunks"] > 5 and stats["words"] + 2 * stats["sentences"] == full.count[0].sum()
    assert chunked.words == full.words
    for k in range(4):
        for f in ("prefix", "word", "count", "suffix"):
            assert np.array_equal(getattr(chunked, f)[k], getattr(full, f)[k]), (k, f)
    a, b = estimate_kneser_ney(full)[0], estimate_kneser_ney(chunked)[0]
    for x, y in zip(a.logprobs + a.backoffs, b.logprobs + b.backoffs):
        assert np.allclose(x, y, equal_nan=True)
    assert list(tmp_path.iterdir()) == []  # runs removed


def test_make_lm_in_chunks_writes_the_same_arpa(text, tmp_path):
    assert main(["make-lm", "--order", "3", str(text), str(tmp_path / "a.arpa")]) == 0
    assert main(["make-lm", "--order", "3", "--chunk-words", "3000", "--tmp-dir", str(tmp_path),
                 str(text), str(tmp_path / "b.arpa")]) == 0
    assert (tmp_path / "a.arpa").read_text() == (tmp_path / "b.arpa").read_text()


def test_cutoffs_while_merging_keep_what_kneser_ney_needs(text, tmp_path):
    full = count_ngrams(read_corpus(text), 4)
    cut, stats = ext.count_text(text, 4, chunk_words=2000, tmp_dir=tmp_path, min_counts=[1, 2, 3])
    assert stats["ngrams_merged"] == full.num_ngrams()
    assert stats["ngrams_kept"] == [full.num_ngrams()[0], full.num_ngrams()[1],
                                    int((full.count[2] >= 2).sum()), int((full.count[3] >= 3).sum())]
    for k, m in ((3, 2), (4, 3)):
        assert cut.count[k - 1].min() >= m
    # continuation counts of the kept n-grams are those of the uncut tables
    adj_full = adjusted_counts(full)
    for k in (2, 3):
        keep = full.count[k - 1] >= (1 if k == 2 else 2)
        assert np.array_equal(cut.continuation[k - 1], np.bincount(full.suffix[k], minlength=len(keep))[keep])
    # highest-order discounts from the uncut counts-of-counts
    n = [int((adj_full[3] == i).sum()) for i in range(1, 5)]
    assert list(cut.count_of_counts[3]) == n
    lm, disc = estimate_kneser_ney(cut)
    assert disc[3].rule == "modified"
    # every kept context's distribution sums to one
    for hist in (("<s>",), ("<s>", lm.words[5])):
        p = sum(10 ** lm.logprob(w, hist) for w in lm.words if w != "<s>")
        assert abs(p - 1) < 1e-6


def test_decreasing_cutoffs_are_refused(text):
    with pytest.raises(LMError, match="must not decrease"):
        ext.count_text(text, 4, chunk_words=2000, min_counts=[3, 1])


def test_gzipped_text(text, tmp_path):
    import gzip

    gz = tmp_path / "text.txt.gz"
    gz.write_bytes(gzip.compress(text.read_bytes()))
    assert main(["make-lm", "--order", "2", str(text), str(tmp_path / "a.arpa")]) == 0
    assert main(["make-lm", "--order", "2", str(gz), str(tmp_path / "b.arpa")]) == 0
    assert (tmp_path / "a.arpa").read_text() == (tmp_path / "b.arpa").read_text()
