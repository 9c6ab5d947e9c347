"""Word-lattice archive I/O and best path (asr.lattice.lattice_io)."""

import gzip

import numpy as np
import pytest

from asr.lattice.lattice_io import Lattice, best_path, best_paths, read_lattices, write_lattices
from asr.errors import DecodeError, FormatError


def random_dag(rng, n_states=8, n_arcs=16, perm=True):
    src = rng.integers(0, n_states - 1, n_arcs)
    dst = np.array([rng.integers(s + 1, n_states) for s in src])
    word = rng.integers(0, 5, n_arcs)
    g = rng.uniform(0, 5, n_arcs).round(3)
    a = rng.uniform(0, 50, n_arcs).round(3)
    fg = np.full(n_states, np.inf)
    fa = np.full(n_states, np.inf)
    fin = rng.choice(n_states, size=2, replace=False)
    fin[0] = n_states - 1
    fg[fin] = rng.uniform(0, 2, 2).round(3)
    fa[fin] = 0.0
    start = 0
    if perm:  # state ids not in topological order
        p = rng.permutation(n_states)
        src, dst, start = p[src], p[dst], p[0]
        fg2, fa2 = np.empty_like(fg), np.empty_like(fa)
        fg2[p], fa2[p] = fg, fa
        fg, fa = fg2, fa2
    return Lattice(src, dst, word, g, a, fg, fa, start=start)


def brute_best(lat, lmwt, wip):
    best = (np.inf, None)
    out = {}
    for i, s in enumerate(lat.src):
        out.setdefault(int(s), []).append(i)

    def rec(s, cost, arcs):
        nonlocal best
        f = lat.final_graph[s] + lat.final_acoustic[s] / lmwt
        if np.isfinite(f) and cost + f < best[0]:
            best = (cost + f, list(arcs))
        for i in out.get(s, []):
            c = float(lat.graph[i]) + wip * (lat.word[i] != 0) + float(lat.acoustic[i]) / lmwt
            rec(int(lat.dst[i]), cost + c, arcs + [i])

    rec(lat.start, 0.0, [])
    return best


def test_best_path_equals_brute_force_on_random_dags():
    rng = np.random.default_rng(0)
    for trial in range(60):
        lat = random_dag(rng, n_states=int(rng.integers(2, 9)), n_arcs=int(rng.integers(1, 18)))
        weights = [(1.0, 0.0), (10.0, 0.5), (17.0, 1.0)]
        swept = best_paths(lat, weights)
        for (lmwt, wip), bp_sweep in zip(weights, swept):
            cost, arcs = brute_best(lat, lmwt, wip)
            bp = best_path(lat, lmwt, wip)
            assert (bp is None) == (bp_sweep is None)
            if bp is not None:
                assert bp.arcs.tolist() == bp_sweep.arcs.tolist()
            if arcs is None:
                assert bp is None
                continue
            total = bp.graph + wip * len(bp.words) + bp.acoustic / lmwt
            assert total == pytest.approx(cost, abs=1e-4)
            # the returned arcs form a start-to-final path
            assert lat.src[bp.arcs[0]] == lat.start if len(bp.arcs) else True
            assert np.all(lat.dst[bp.arcs[:-1]] == lat.src[bp.arcs[1:]])


def test_write_read_round_trip_gz_and_plain(tmp_path):
    rng = np.random.default_rng(1)
    lats = [(f"utt{i}", random_dag(rng)) for i in range(5)]
    lats.append(("empty", Lattice.empty()))
    lats.append(("nowords", Lattice.linear([])))
    for name in ("lat.1.gz", "lat.txt"):
        assert write_lattices(tmp_path / name, lats) == len(lats)
        back = list(read_lattices(tmp_path / name))
        assert [u for u, _ in back] == [u for u, _ in lats]
        for (_, a), (_, b) in zip(lats, back):
            assert a.start == b.start
            for f in ("src", "dst", "word", "graph", "acoustic"):
                ia = np.lexsort((a.dst, a.src))
                ib = np.lexsort((b.dst, b.src))
                np.testing.assert_array_equal(getattr(a, f)[ia], getattr(b, f)[ib])
            np.testing.assert_array_equal(a.final_graph, b.final_graph)
    assert gzip.open(tmp_path / "lat.1.gz", "rt").readline() == "utt0\n"


def test_reads_kaldi_text_forms(tmp_path):
    # Kaldi Lattice text (tabs, weight omitted), and CompactLattice text (g,a,tids)
    text = (
        "u1 \n0\t1\t3\t3\t1.5,2\n1\t2\t4\t4\n2\n\n"
        "u2\n0 1 7 2.5,10,1_2_3\n1 0.5,0,\n\n"
    )
    (tmp_path / "k.txt").write_text(text)
    lats = dict(read_lattices(tmp_path / "k.txt"))
    u1, u2 = lats["u1"], lats["u2"]
    assert u1.word.tolist() == [3, 4] and u1.graph.tolist() == [1.5, 0.0]
    assert u1.final_graph[2] == 0.0 and np.isinf(u1.final_graph[0])
    bp = best_path(u2)
    assert bp.words.tolist() == [7] and bp.graph == pytest.approx(3.0) and bp.acoustic == pytest.approx(10.0)


def test_bad_lattices(tmp_path):
    (tmp_path / "bad.txt").write_text("u1\n0 1 x 3 1,2\n\n")
    with pytest.raises(FormatError, match=r"bad.txt:2"):
        list(read_lattices(tmp_path / "bad.txt"))
    with pytest.raises(DecodeError, match="no such"):
        list(read_lattices(tmp_path / "missing.gz"))
    cyc = Lattice([0, 1], [1, 0], [1, 2], [0, 0], [0, 0], [np.inf, 0], [np.inf, 0])
    with pytest.raises(DecodeError, match="cycle"):
        best_path(cyc)


def test_lmwt_changes_best_path():
    # path A: good LM (graph 1), bad acoustics (20); path B: graph 5, acoustics 10
    lat = Lattice([0, 0], [1, 1], [1, 2], [1.0, 5.0], [20.0, 10.0], [np.inf, 0], [np.inf, 0])
    assert best_path(lat, lmwt=1.0).words.tolist() == [2]
    assert best_path(lat, lmwt=10.0).words.tolist() == [1]


def test_big_lattice_best_path_matches_dijkstra():
    rng = np.random.default_rng(3)
    n = 20000
    src = np.repeat(np.arange(n - 1), 10)
    dst = np.minimum(src + rng.integers(1, 30, len(src)), n - 1)
    fg = np.full(n, np.inf)
    fg[-1] = 0
    lat = Lattice(src, dst, rng.integers(0, 100, len(src)), rng.uniform(0, 1, len(src)),
                  rng.uniform(0, 1, len(src)), fg, fg)
    bp = best_path(lat, 10.0)
    # reference: Dijkstra over the same DAG (costs are non-negative)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra
    cost = lat.graph.astype(np.float64) + lat.acoustic.astype(np.float64) / 10.0
    best = {}
    for s_, d_, c_ in zip(lat.src.tolist(), lat.dst.tolist(), cost.tolist()):
        best[(s_, d_)] = min(c_, best.get((s_, d_), np.inf))
    keys = np.array(list(best))
    m = coo_matrix((np.array(list(best.values())) + 1e-12, (keys[:, 0], keys[:, 1])), shape=(n, n)).tocsr()
    ref = dijkstra(m, indices=0)[n - 1]
    assert bp is not None
    got = bp.graph + bp.acoustic / 10.0
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-3)
