"""Tiny hand-made lang/tree/LM fixtures for the graph and decoder tests (built in tmp dirs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LEXICON = "BAT B AA T\nCAT K AA T\nA AA\nAT AA T\nTAB T AA B\n"
ARPA = """\\data\\
ngram 1=8
ngram 2=3

\\1-grams:
-1.0 </s>
-99 <s> -0.5
-0.8 A -0.3
-0.9 BAT -0.3
-0.9 CAT -0.3
-1.0 AT -0.3
-1.2 TAB -0.3
-3.0 <UNK> -0.3

\\2-grams:
-0.2 <s> CAT
-0.3 CAT AT
-0.1 AT </s>

\\end\\
"""


def make_lang(root: Path) -> Path:
    from asr.lang.prepare import prepare_lang

    d = root / "dict"
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("AA\nB\nK\nT\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "extra_questions.txt").write_text("")
    (d / "lexicon.txt").write_text(LEXICON + "<UNK> SIL\n")
    prepare_lang(d, root / "lang")
    return root / "lang"


def make_tree_dir(root: Path, lang: Path, triphone: bool) -> Path:
    """A monophone tree (Kaldi shared roots), or a triphone tree whose pdfs depend on the
    left context (the first half of the phones vs the rest) and on the pdf class."""
    from asr.hmm.topology import Topology
    from asr.hmm.transition_model import TransitionModel
    from asr.hmm.tree import PDF_CLASS, ConstantNode, ContextDependency, SplitNode, TableNode, monophone_tree

    topo = Topology.read(lang / "topo")
    npc = {p: topo.num_pdf_classes(p) for p in topo.phones}
    if not triphone:
        sets = [[int(x) for x in line.split()] for line in (lang / "phones" / "sets.int").read_text().splitlines()]
        tree = monophone_tree(sets, npc)
    else:
        n = [0]
        table = [None] * (max(topo.phones) + 1)
        half = frozenset(range(0, max(topo.phones) // 2))
        for p in topo.phones:
            classes = []
            for _ in range(npc[p]):
                classes.append(SplitNode(0, half, ConstantNode(n[0]), ConstantNode(n[0] + 1)))
                n[0] += 2
            table[p] = TableNode(PDF_CLASS, classes)
        tree = ContextDependency(3, 1, TableNode(1, table))
    tm = TransitionModel.build(tree, topo)
    out = root / ("tri" if triphone else "mono")
    out.mkdir(parents=True, exist_ok=True)
    tree.write(out / "tree")
    tm.write(out / "final.mdl")
    (out / "num_pdfs").write_text(f"{tm.num_pdfs}\n")
    return out


def target_pdfs(lang: Path, tree_dir: Path, words: list[str], frames_per_state: int = 2,
                silence: bool = False) -> np.ndarray:
    """The pdf sequence of ``words`` spoken without silence (or with the optional silence
    phone SIL before, between and after the words), computed from the lexicon,
    position-dependent phones, the tree and the topology -- independently of HCLG."""
    from asr.hmm.topology import Topology
    from asr.hmm.tree import ContextDependency

    phones = dict(line.split() for line in (lang / "phones.txt").read_text().splitlines())
    lex = {ln.split()[0]: ln.split()[1:] for ln in LEXICON.splitlines()}
    seq = ["SIL"] if silence else []
    for w in words:
        pr = lex[w]
        if len(pr) == 1:
            seq.append(pr[0] + "_S")
        else:
            seq += [pr[0] + "_B"] + [p + "_I" for p in pr[1:-1]] + [pr[-1] + "_E"]
        if silence:
            seq.append("SIL")
    ids = [int(phones[p]) for p in seq]
    tree = ContextDependency.read(tree_dir / "tree")
    topo = Topology.read(lang / "topo")
    N, P = tree.context_width, tree.central_position
    padded = [0] * P + ids + [0] * (N - 1 - P)
    out = []
    for i, ph in enumerate(ids):
        window = tuple(padded[i:i + N])
        for st in topo.topology_for_phone(ph)[:-1]:
            out += [tree.compute(window, st.forward_pdf_class)] * frames_per_state
    return np.array(out, dtype=np.int64)


def sharp_loglikes(pdfs: np.ndarray, num_pdfs: int, off: float = -20.0) -> np.ndarray:
    """Scaled log-likelihoods: 0 for the target pdf of each frame, ``off`` for the others."""
    m = np.full((len(pdfs), num_pdfs), off, np.float32)
    m[np.arange(len(pdfs)), pdfs] = 0.0
    return m
