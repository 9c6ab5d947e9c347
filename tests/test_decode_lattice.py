"""Word lattices from raw decoder lattices: exact (graph, acoustic) split per word
sequence, determinism, pruning, best path == 1-best decoder output."""

import numpy as np
import pytest

from graph_fixtures import ARPA, make_lang, make_tree_dir, sharp_loglikes, target_pdfs


def _paths(src, dst, word, g, a, fg, fa, start):
    """All complete paths of a small acyclic lattice: {word tuple: best (g, a)} by (g+a, g)."""
    out = {}
    stack = [(start, (), 0.0, 0.0)]
    while stack:
        s, ws, cg, ca = stack.pop()
        if np.isfinite(fg[s]):
            tot = (cg + fg[s], ca + fa[s])
            old = out.get(ws)
            if old is None or (sum(tot), tot[0]) < (sum(old), old[0]):
                out[ws] = tot
        for k in np.flatnonzero(src == s):
            w = int(word[k])
            stack.append((int(dst[k]), ws + ((w,) if w else ()), cg + float(g[k]), ca + float(a[k])))
    return out


def _random_raw(rng, n=14):
    from asr.lattice.word_lattice import RawLattice

    src, dst = [], []
    for s in range(n - 1):
        for d in rng.choice(np.arange(s + 1, n), size=min(2, n - 1 - s), replace=False):
            src.append(s), dst.append(int(d))
    m = len(src)
    word = np.where(rng.random(m) < 0.4, rng.integers(1, 4, m), 0).astype(np.int32)
    fg = np.full(n, np.inf, np.float32)
    fa = np.full(n, np.inf, np.float32)
    fg[n - 1] = fa[n - 1] = 0.0
    fg[n - 3], fa[n - 3] = 0.5, 0.25
    order = np.argsort(src, kind="stable")
    return RawLattice(0, np.array(src, np.int32)[order], np.array(dst, np.int32)[order], np.ones(m, np.int32),
                      word[order], rng.random(m).astype(np.float32) * 3, (rng.random(m) * 3 - 1).astype(np.float32),
                      fg, fa)


@pytest.mark.parametrize("seed", range(5))
def test_determinize_keeps_best_split_per_word_sequence(seed):
    from asr.lattice.word_lattice import collapse_epsilon_chains, determinize

    raw = _random_raw(np.random.default_rng(seed))
    want = _paths(raw.src, raw.dst, raw.word, raw.g, raw.a, raw.final_g, raw.final_a, raw.start)
    lat = determinize(collapse_epsilon_chains(raw))
    got = _paths(lat.src, lat.dst, lat.word, lat.graph, lat.acoustic, lat.final_graph, lat.final_acoustic, lat.start)
    assert set(got) == set(want)
    for ws, (g, a) in want.items():
        assert got[ws] == pytest.approx((g, a), abs=1e-4), ws
    # deterministic: no state has two arcs with the same word, and no epsilon arcs
    assert (lat.word != 0).all()
    pairs = np.stack([lat.src, lat.word], 1)
    assert len(np.unique(pairs, axis=0)) == len(pairs)


def test_prune_drops_paths_outside_beam():
    from asr.lattice.word_lattice import determinize, prune_raw

    raw = _random_raw(np.random.default_rng(7), n=16)
    want = _paths(raw.src, raw.dst, raw.word, raw.g, raw.a, raw.final_g, raw.final_a, raw.start)
    best = min(g + a for g, a in want.values())
    lat = determinize(prune_raw(raw, 1.0))
    got = _paths(lat.src, lat.dst, lat.word, lat.graph, lat.acoustic, lat.final_graph, lat.final_acoustic, lat.start)
    assert set(got) == {ws for ws, (g, a) in want.items() if g + a <= best + 1.0 + 1e-4}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    from asr.graph.mkgraph import load_graph, make_graph
    from asr.hmm.transition_model import TransitionModel

    root = tmp_path_factory.mktemp("lat")
    lang = make_lang(root)
    (root / "lm.arpa").write_text(ARPA)
    out = []
    for tri in (False, True):
        td = make_tree_dir(root, lang, tri)
        make_graph(lang, td, root / "lm.arpa", td / "graph")
        out.append((lang, td, load_graph(td / "graph" / "HCLG.fst"), TransitionModel.read(td / "final.mdl")))
    return out


@pytest.mark.parametrize("which", [0, 1])
def test_lattice_best_path_equals_one_best(graphs, which, tmp_path):
    from asr.lattice.lattice_io import best_path, read_lattices, write_lattices
    from asr.decode.search import SearchConfig, Searcher

    lang, td, graph, tm = graphs[which]
    cfg = SearchConfig(beam=16, lattice_beam=6, acoustic_scale=0.1)
    s = Searcher(graph, cfg)
    rng = np.random.default_rng(which)
    cases = [sharp_loglikes(target_pdfs(lang, td, ["CAT", "AT", "TAB"]), tm.num_pdfs)]
    # noisy scores around a target: many competing paths in the lattice
    for _ in range(3):
        m = sharp_loglikes(target_pdfs(lang, td, ["BAT", "A", "AT"]), tm.num_pdfs, off=-1.0)
        cases.append(m + rng.normal(scale=0.7, size=m.shape).astype(np.float32))
    items = []
    for i, ll in enumerate(cases):
        one = s.best(ll, tm.tid2pdf)
        lr = s.lattice(ll, tm.tid2pdf)
        assert lr.words == one.words
        assert lr.graph_cost == pytest.approx(one.graph_cost, abs=1e-3)
        assert lr.acoustic_cost == pytest.approx(one.acoustic_cost, abs=1e-3)
        items.append((f"utt{i}", lr.lattice))
        if i:
            assert lr.lattice.num_arcs > len(one.words)  # alternatives kept
    write_lattices(tmp_path / "lat.1.gz", items)
    back = dict(read_lattices(tmp_path / "lat.1.gz"))
    for i, ll in enumerate(cases):
        bp = best_path(back[f"utt{i}"], lmwt=1 / cfg.acoustic_scale)
        assert list(bp.words) == s.best(ll, tm.tid2pdf).words


def test_pdf_relabelled_graph_searches_the_same(graphs):
    """load_graph(path, tid2pdf) (input labels pdf + 1, pdf matrix read directly) gives the
    same 1-best and lattice as the transition-id graph with one column per tid."""
    from asr.decode.search import SearchConfig, Searcher
    from asr.graph.mkgraph import load_graph

    lang, td, graph, tm = graphs[1]
    rng = np.random.default_rng(5)
    m = sharp_loglikes(target_pdfs(lang, td, ["TAB", "A", "CAT"]), tm.num_pdfs, off=-1.0)
    m = m + rng.normal(scale=0.7, size=m.shape).astype(np.float32)
    a = Searcher(graph, SearchConfig())
    b = Searcher(load_graph(td / "graph" / "HCLG.fst", tm.tid2pdf), SearchConfig())
    ra, rb = a.best(m, tm.tid2pdf), b.best(m)
    assert ra.words == rb.words and ra.graph_cost == pytest.approx(rb.graph_cost, abs=1e-4)
    assert ra.acoustic_cost == pytest.approx(rb.acoustic_cost, abs=1e-4)
    la, lb = a.lattice(m, tm.tid2pdf).lattice, b.lattice(m).lattice
    assert la.num_arcs == lb.num_arcs and np.allclose(np.sort(la.graph), np.sort(lb.graph), atol=1e-3)
    with pytest.raises(Exception, match="do not match"):
        load_graph(td / "graph" / "HCLG.fst", tm.tid2pdf[:5])


def _sausage_raw(rng, positions=60, alts=4):
    """A word sausage: ``alts`` competing words per position, each word arc followed by an
    epsilon arc (as the decoder's lattices have), costs random."""
    from asr.lattice.word_lattice import RawLattice

    src, dst, word = [], [], []
    s = 0
    for _ in range(positions):
        join = s + alts + 1
        for k in range(alts):
            src += [s, s + 1 + k]
            dst += [s + 1 + k, join]
            word += [int(rng.integers(1, 50)), 0]
        s = join
    ns = s + 1
    m = len(src)
    fg = np.full(ns, np.inf, np.float32)
    fa = np.full(ns, np.inf, np.float32)
    fg[-1] = fa[-1] = 0.0
    return RawLattice(0, np.array(src, np.int32), np.array(dst, np.int32), np.ones(m, np.int32),
                      np.array(word, np.int32), rng.random(m).astype(np.float32),
                      rng.random(m).astype(np.float32) * 5, fg, fa)


def test_determinization_effort_cap_falls_back_to_one_best():
    """Past the work limit (every tighter beam too) the word lattice is the 1-best path:
    same words and costs as the full lattice's best path, quickly, and marked not full."""
    import time

    from asr.lattice.lattice_io import best_path
    from asr.lattice.word_lattice import word_lattice

    raw = _sausage_raw(np.random.default_rng(3))
    full_lat, full = word_lattice(raw, 1e9, 0.1)
    assert full and full_lat.num_arcs > full_lat.num_states  # alternatives kept
    t = time.process_time()
    lat, full = word_lattice(raw, 1e9, 0.1, max_work=200)
    assert time.process_time() - t < 1.0
    assert not full
    assert lat.num_arcs == lat.num_states - 1  # a linear path
    want, got = best_path(full_lat, lmwt=10.0), best_path(lat, lmwt=10.0)
    assert got.words.tolist() == want.words.tolist() and len(got.words) == 60
    assert got.graph == pytest.approx(want.graph, abs=1e-3)
    assert got.acoustic == pytest.approx(want.acoustic, abs=1e-2)
