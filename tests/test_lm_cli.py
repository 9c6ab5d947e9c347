"""make-lm, prune-lm, lm-ppl, make-g as a user runs them."""

import re
import subprocess
import sys

import pytest

from asr.cli import main
from asr.lm.arpa import read_arpa

TRAIN = """the ship moves to the port
a ship moves to a port
the fleet leaves the harbor
the crew finds the ship near the port
a crew leaves the ship
the ship reaches the harbor
the convoy moves near the fleet
""" * 3


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text(TRAIN)
    test = tmp_path / "test.txt"
    test.write_text("the ship leaves the port\nthe zebra moves\n")
    return tmp_path, train, test


def test_make_lm_ppl_and_prune(files, capsys):
    d, train, test = files
    arpa = d / "lm.arpa"
    assert main(["make-lm", "--order", "3", str(train), str(arpa)]) == 0
    lm = read_arpa(arpa)
    assert lm.order == 3 and "ship" in lm.vocab and "<unk>" in lm.vocab
    capsys.readouterr()
    assert main(["lm-ppl", str(arpa), str(test)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"file {test}: 2 sentences, 8 words, 1 OOVs"
    m = re.fullmatch(r"0 zeroprobs, logprob= (\S+) ppl= (\S+) ppl1= (\S+)", out[1])
    assert m, out[1]
    logprob, ppl, ppl1 = map(float, m.groups())
    expect = lm.score_sentence("the ship leaves the port".split())
    # second sentence: "the" and "moves" (after OOV) and </s>; zebra excluded
    expect += lm.logprob("the", ["<s>"]) + lm.logprob("moves", ["<s>", "the", "<unk>"]) + lm.logprob("</s>", ["the", "<unk>", "moves"])
    assert logprob == pytest.approx(expect, abs=1e-4)
    assert ppl == pytest.approx(10 ** (-expect / (7 + 2)), rel=1e-5)
    assert ppl1 == pytest.approx(10 ** (-expect / 7), rel=1e-5)

    small = d / "small.arpa"
    full = sum(lm.num_ngrams())
    assert main(["prune-lm", "--target-ngrams", str(full // 2), str(arpa), str(small)]) == 0
    assert sum(read_arpa(small).num_ngrams()) <= full // 2
    assert main(["prune-lm", "--threshold", "1e-3", "--history-text", str(train), str(arpa), str(d / "t.arpa")]) == 0
    assert sum(read_arpa(d / "t.arpa").num_ngrams()) < full


def test_make_lm_with_vocab_reports_oovs(files, caplog):
    d, train, _ = files
    vocab = d / "vocab.txt"
    vocab.write_text("the\nship\nport\nmoves\nto\na\n")
    arpa = d / "v.arpa"
    caplog.set_level("INFO")
    assert main(["make-lm", "--order", "2", "--vocab", str(vocab), "--prune", "1e-4", str(train), str(arpa)]) == 0
    assert "OOVs" in caplog.text or "not in the vocabulary" in caplog.text
    lm = read_arpa(arpa)
    assert set(lm.vocab) == {"<s>", "</s>", "<unk>", "the", "ship", "port", "moves", "to", "a"}


def test_make_g(files):
    kaldifst = pytest.importorskip("kaldifst")
    d, train, _ = files
    arpa = d / "lm.arpa"
    assert main(["make-lm", "--order", "2", str(train), str(arpa)]) == 0
    words = ["<eps>", "<unk>"] + sorted({w for w in TRAIN.split()}) + ["#0", "<s>", "</s>"]
    wt = d / "words.txt"
    wt.write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)))
    g = d / "G.fst"
    assert main(["make-g", str(arpa), str(wt), str(g)]) == 0
    fst = kaldifst.StdVectorFst.read(str(g))
    assert fst.num_states > 1
    disambig = words.index("#0")
    labels = {(a.ilabel, a.olabel) for s in range(fst.num_states) for a in kaldifst.ArcIterator(fst, s)}
    assert (disambig, 0) in labels  # back-off arcs: #0 in, epsilon out
    assert (words.index("ship"), words.index("ship")) in labels
    bad = d / "nodis.txt"
    bad.write_text("".join(f"{w} {i}\n" for i, w in enumerate(words[:-3])))
    assert main(["make-g", str(arpa), str(bad), str(d / "G2.fst")]) == 1
    assert not (d / "G2.fst").exists()
    # a gzipped ARPA is read as make-graph reads it: the same G
    import gzip

    with gzip.open(d / "lm.arpa.gz", "wb") as f:
        f.write(arpa.read_bytes())
    assert main(["make-g", str(d / "lm.arpa.gz"), str(wt), str(d / "Gz.fst")]) == 0
    assert (d / "Gz.fst").read_bytes() == g.read_bytes()


@pytest.mark.parametrize("damage", ["count", "no_end", "truncated"])
def test_make_g_malformed_arpa_is_a_one_line_error(files, damage):
    """kaldilm aborts its process on a malformed ARPA: make-g reports it as make-graph does."""
    pytest.importorskip("kaldilm")
    d, train, _ = files
    arpa = d / "lm.arpa"
    assert main(["make-lm", "--order", "2", str(train), str(arpa)]) == 0
    text = arpa.read_text()
    bad = d / f"{damage}.arpa"
    bad.write_text({"count": re.sub(r"ngram 2=(\d+)", lambda m: f"ngram 2={int(m.group(1)) - 3}", text),
                    "no_end": text.replace("\\end\\", ""),
                    "truncated": text[: len(text) * 2 // 3]}[damage])
    words = ["<eps>", "<unk>"] + sorted(set(TRAIN.split())) + ["#0", "<s>", "</s>"]
    wt = d / "words.txt"
    wt.write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)))
    p = subprocess.run([sys.executable, "-m", "asr", "make-g", str(bad), str(wt), str(d / "G.fst")],
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("\n") == 1 and f"{bad}: arpa2fst failed: " in p.stderr
    assert not (d / "G.fst").exists() and not [x for x in d.iterdir() if x.name.startswith("tmp")]
    from asr.errors import GraphError
    from asr.graph.mkgraph import make_g

    with pytest.raises(GraphError) as e:  # make-graph's G: the same message
        make_g(bad, wt)
    assert p.stderr.strip() == f"asr make-g: error: {e.value}"


@pytest.mark.parametrize("argv", [
    ["make-lm", "--order", "3", "MISSING.txt", "out.arpa"],
    ["lm-ppl", "MISSING.arpa", "MISSING.txt"],
    ["prune-lm", "--threshold", "1e-6", "MISSING.arpa", "out.arpa"],
])
def test_missing_inputs_exit_1(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    assert "MISSING" in capsys.readouterr().err


def test_bad_arpa_names_line(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0 a\noops\n\\end\\\n")
    text = tmp_path / "t.txt"
    text.write_text("a\n")
    r = subprocess.run([sys.executable, "-m", "asr", "lm-ppl", str(bad), str(text)], capture_output=True, text=True)
    assert r.returncode == 1 and "bad.arpa:6" in r.stderr


def test_prune_lm_needs_one_criterion(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["prune-lm", "in.arpa", "out.arpa"])
    assert e.value.code == 2


def test_custom_unk_symbol(files, capsys):
    d, train, test = files
    vocab = d / "words.txt"
    vocab.write_text("<eps> 0\n<UNK> 1\nthe 2\nship 3\nmoves 4\n#0 5\n")
    arpa = d / "u.arpa"
    assert main(["make-lm", "--order", "2", "--vocab", str(vocab), "--unk", "<UNK>", str(train), str(arpa)]) == 0
    lm = read_arpa(arpa)
    assert "<UNK>" in lm.vocab and "<unk>" not in lm.vocab
    assert lm.word_id("zebra") == lm.vocab["<UNK>"]
    capsys.readouterr()
    assert main(["lm-ppl", "--unk", str(arpa), str(test)]) == 0
    assert capsys.readouterr().out.startswith(f"file {test}: 2 sentences, 8 words, 0 OOVs\n")
