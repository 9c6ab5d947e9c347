"""lmrescore and score-lattices on lattices from the real decoder (tiny hand-made graph)."""

import json
import math

import numpy as np
import pytest
from graph_fixtures import ARPA, make_lang, make_tree_dir, sharp_loglikes, target_pdfs

from asr.cli import main
from asr.lattice.lattice_io import best_path, read_lattices, write_lattices

LMWT = 10.0


def all_word_paths(lat):
    out = {}
    for i, s in enumerate(lat.src.tolist()):
        out.setdefault(s, []).append(i)
    res = set()

    def rec(s, words):
        if np.isfinite(lat.final_graph[s]):
            res.add(tuple(words))
        for i in out.get(s, []):
            w = int(lat.word[i])
            rec(int(lat.dst[i]), words + [w] if w else words)

    rec(lat.start, [])
    return res


def arpa_preferring(sentence, vocab):
    """A bigram ARPA that makes ``sentence`` far likelier than anything else."""
    bigrams = list(zip(["<s>"] + sentence, sentence + ["</s>"]))
    lines = ["\\data\\", f"ngram 1={len(vocab) + 2}", f"ngram 2={len(set(bigrams))}", "", "\\1-grams:",
             "-4.0 </s>", "-99 <s> 0.0"]
    lines += [f"-4.0 {w} 0.0" for w in vocab]
    lines += ["", "\\2-grams:"] + [f"-0.01 {a} {b}" for a, b in sorted(set(bigrams))] + ["", "\\end\\", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    from asr.decode.search import SearchConfig, Searcher
    from asr.graph.mkgraph import load_graph, make_graph
    from asr.hmm.transition_model import TransitionModel

    root = tmp_path_factory.mktemp("resc")
    lang = make_lang(root)
    (root / "first.arpa").write_text(ARPA)
    td = make_tree_dir(root, lang, False)
    make_graph(lang, td, root / "first.arpa", td / "graph")
    graph, tm = load_graph(td / "graph" / "HCLG.fst"), TransitionModel.read(td / "final.mdl")
    s = Searcher(graph, SearchConfig(beam=16, lattice_beam=8, acoustic_scale=1 / LMWT))
    rng = np.random.default_rng(3)
    items = []
    for i in range(4):
        m = sharp_loglikes(target_pdfs(lang, td, ["BAT", "A", "AT"]), tm.num_pdfs, off=-1.0)
        m = m + rng.normal(scale=0.7, size=m.shape).astype(np.float32)
        items.append((f"utt{i}", s.lattice(m, tm.tid2pdf).lattice))
    dec = root / "decode"
    dec.mkdir()
    write_lattices(dec / "lat.1.gz", items[:2])
    write_lattices(dec / "lat.2.gz", items[2:])
    (dec / "decode.json").write_text(json.dumps({"graph_dir": str(td / "graph")}))
    words = [ln.split()[0] for ln in (td / "graph" / "words.txt").read_text().splitlines()]
    return root, dec, dict(items), words


def test_same_lm_keeps_best_paths_and_costs(decoded):
    root, dec, lats, _ = decoded
    assert main(["lmrescore", "--old-lm", str(root / "first.arpa"), "--new-lm", str(root / "first.arpa"),
                 str(dec), str(root / "same")]) == 0
    back = {}
    for job in (1, 2):
        back.update(dict(read_lattices(root / "same" / f"lat.{job}.gz")))
    assert set(back) == set(lats)
    for utt, lat in lats.items():
        a, b = best_path(lat, LMWT), best_path(back[utt], LMWT)
        assert a.words.tolist() == b.words.tolist()
        assert b.graph == pytest.approx(a.graph, abs=1e-3)
        assert b.acoustic == pytest.approx(a.acoustic, abs=1e-3)
        assert all_word_paths(back[utt]) == all_word_paths(lat)


def test_lm_preferring_another_path_changes_one_best(decoded, capsys):
    root, dec, lats, words = decoded
    # the most ambiguous lattice: pick a word sequence in it that is not the first-pass best
    utt, lat = max(lats.items(), key=lambda kv: len(all_word_paths(kv[1])))
    first = tuple(best_path(lat, LMWT).words.tolist())
    others = sorted(p for p in all_word_paths(lat) if p != first and p)
    assert others, "the decoder kept no alternative"
    from asr.lm.arpa import read_arpa

    vocab = sorted({w for w in words if w not in ("<eps>", "<s>", "</s>") and not w.startswith("#")})
    paths = all_word_paths(lat)
    for target in others:  # one the new LM prefers over every other lattice path by 10^2 or more
        (root / "full.arpa").write_text(arpa_preferring([words[w] for w in target], vocab))
        lm = read_arpa(root / "full.arpa")
        score = {p: lm.score_sentence([words[w] for w in p]) for p in paths}
        if all(score[target] > score[p] + 2 for p in paths if p != target):
            break
    else:
        pytest.fail("no suitable alternative path in the lattice")
    assert main(["lmrescore", "--old-lm", str(root / "first.arpa"), "--new-lm", str(root / "full.arpa"),
                 str(dec), str(root / "full")]) == 0
    back = {}
    for job in (1, 2):
        back.update(dict(read_lattices(root / "full" / f"lat.{job}.gz")))
    bp = best_path(back[utt], LMWT)
    assert tuple(bp.words.tolist()) == target
    # its graph cost moved by exactly (new LM cost - old LM cost) of the sentence
    old, new = read_arpa(root / "first.arpa"), read_arpa(root / "full.arpa")
    sent = [words[w] for w in target]
    delta = -math.log(10) * (new.score_sentence(sent) - old.score_sentence(sent))
    before = min(
        (p for p in _path_costs(lat) if p[0] == target), key=lambda p: p[1] + p[2] / LMWT
    )
    assert bp.graph == pytest.approx(before[1] + delta, abs=1e-2)
    # and score-lattices on the rescored dir finds the word table through decode.json
    data = root / "data"
    data.mkdir()
    (data / "text").write_text("".join(f"{u} {' '.join(sent)}\n" for u in sorted(lats)))
    assert main(["score-lattices", "--lmwt", "10", "--wip", "0.0", str(data), str(root / "full")]) == 0
    hyp = dict(line.split(maxsplit=1) for line in (root / "full" / "hyp.txt").read_text().splitlines())
    assert hyp[utt] == " ".join(sent)


def _path_costs(lat):
    out = {}
    for i, s in enumerate(lat.src.tolist()):
        out.setdefault(s, []).append(i)
    res = []

    def rec(s, words, g, a):
        if np.isfinite(lat.final_graph[s]):
            res.append((tuple(words), g + float(lat.final_graph[s]), a + float(lat.final_acoustic[s])))
        for i in out.get(s, []):
            w = int(lat.word[i])
            rec(int(lat.dst[i]), words + [w] if w else words, g + float(lat.graph[i]), a + float(lat.acoustic[i]))

    rec(lat.start, [], 0.0, 0.0)
    return res
