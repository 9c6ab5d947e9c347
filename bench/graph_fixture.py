"""A synthetic lexicon / trigram ARPA / triphone tree of a given size, for graph and decoding
benchmarks: ``make_fixture(dir, num_words=5000, num_phones=40, ...)`` writes dict/, lang/,
tree_dir/ (tree + final.mdl), lm.arpa and returns their paths."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _write_arpa(path: Path, words: list[str], rng, num_bigrams: int, num_trigrams: int) -> int:
    V = len(words)
    uni_lp = np.log10(rng.dirichlet(np.ones(V + 1) * 0.5) + 1e-7)
    big = {}
    a = rng.integers(0, V + 1, num_bigrams * 2)  # index V = <s>
    b = rng.integers(0, V, num_bigrams * 2)
    for x, y in zip(a.tolist(), b.tolist()):
        if len(big) >= num_bigrams:
            break
        big[(x, y)] = None
    keys = list(big)
    tri = {}
    idx = rng.integers(0, len(keys), num_trigrams * 2)
    c = rng.integers(0, V, num_trigrams * 2)
    for i, z in zip(idx.tolist(), c.tolist()):
        if len(tri) >= num_trigrams:
            break
        x, y = keys[i]
        if y == V:
            continue
        tri[(x, y, z)] = None
    name = lambda i: "<s>" if i == V else words[i]  # noqa: E731
    lines = ["\\data\\", f"ngram 1={V + 2}", f"ngram 2={len(big)}", f"ngram 3={len(tri)}", "", "\\1-grams:"]
    lines.append(f"{-1.5:.4f} </s>")
    lines.append(f"-99 <s> {-0.3:.4f}")
    for i, w in enumerate(words):
        lines.append(f"{uni_lp[i]:.4f} {w} {-0.4:.4f}")
    lines += ["", "\\2-grams:"]
    bl = rng.uniform(-2.5, -0.3, len(big))
    for (x, y), lp in zip(big, bl):
        lines.append(f"{lp:.4f} {name(x)} {words[y]} {-0.3:.4f}")
    lines += ["", "\\3-grams:"]
    tl = rng.uniform(-2.0, -0.1, len(tri))
    for (x, y, z), lp in zip(tri, tl):
        lines.append(f"{lp:.4f} {name(x)} {words[y]} {words[z]}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
    return V + 2 + len(big) + len(tri)


def make_fixture(root, num_words=5000, num_phones=40, num_bigrams=100_000, num_trigrams=130_000,
                 leaves_per_class=16, triphone=True, seed=0, position_dependent=True, num_questions=12) -> dict:
    """Tree: per root (base phone), per pdf class, a balanced tree of depth log2(leaves) whose
    questions (about the left, then the right phone) come from a fixed pool of
    ``num_questions`` phone sets, as a trained tree's do (Kaldi's clustered questions)."""
    from asr.hmm.topology import Topology
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import PDF_CLASS, ConstantNode, ContextDependency, SplitNode, TableNode, monophone_tree
    from asr.lang.prepare import prepare_lang

    root = Path(root)
    rng = np.random.default_rng(seed)
    phones = [f"P{i}" for i in range(num_phones)]
    d = root / "dict"
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("".join(p + "\n" for p in phones))
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "extra_questions.txt").write_text("")
    words = sorted({"W" + "".join(rng.choice(list("abcdefghij"), 6)) for _ in range(num_words * 2)})[:num_words]
    lex = []
    for w in words:
        n = int(rng.integers(2, 8))
        lex.append(w + " " + " ".join(rng.choice(phones, n)))
    (d / "lexicon.txt").write_text("\n".join(lex) + "\n<UNK> SIL\n")
    lang = root / "lang"
    prepare_lang(d, lang, position_dependent_phones=position_dependent)
    n_ngrams = _write_arpa(root / "lm.arpa", words, rng, num_bigrams, num_trigrams)

    topo = Topology.read(lang / "topo")
    npc = {p: topo.num_pdf_classes(p) for p in topo.phones}
    if triphone:
        all_phones = topo.phones
        counter = [0]

        roots = [[int(x) for x in line.split()[2:]] for line in (lang / "phones" / "roots.int").read_text().splitlines()]
        pool = []
        for _ in range(num_questions):
            chosen = rng.choice(len(roots), len(roots) // 2, replace=False)
            pool.append(frozenset(p for i in chosen for p in roots[i]))

        def split(depth):
            if depth == 0:
                counter[0] += 1
                return ConstantNode(counter[0] - 1)
            key = 0 if depth % 2 else 2
            return SplitNode(key, pool[int(rng.integers(len(pool)))], split(depth - 1), split(depth - 1))

        depth = int(round(math.log2(leaves_per_class)))
        table = [None] * (max(all_phones) + 1)
        # position variants of one base phone share a root, as Kaldi's roots.txt says
        for group in roots:
            node = TableNode(PDF_CLASS, [split(depth) for _ in range(npc[group[0]])])
            for p in group:
                table[p] = node
        tree = ContextDependency(3, 1, TableNode(1, table))
    else:
        sets = [[int(x) for x in line.split()] for line in (lang / "phones" / "sets.int").read_text().splitlines()]
        tree = monophone_tree(sets, npc)
    tm = TransitionModel.build(tree, topo)
    td = root / "tree_dir"
    td.mkdir(exist_ok=True)
    tree.write(td / "tree")
    tm.write(td / "final.mdl")
    (td / "num_pdfs").write_text(f"{tm.num_pdfs}\n")
    return {"lang": lang, "tree_dir": td, "lm": root / "lm.arpa", "num_ngrams": n_ngrams,
            "num_pdfs": tm.num_pdfs, "num_words": len(words)}
