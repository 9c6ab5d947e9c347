"""``asr decode`` writes hyp.ctm: word times from the decoder's alignment (frame-exact on the
hand-set one-hot model of test_decode_cli, whose pdf sequences are known), confidences
from lattice posteriors."""

import json

import pytest

from test_decode_cli import UTTS, model, run_inproc  # noqa: F401 - the module-scoped fixture


@pytest.mark.parametrize("lattices", [False, True])
def test_decode_writes_word_ctm(model, tmp_path, capsys, lattices):  # noqa: F811
    root, md, data = model
    out = tmp_path / "decode"
    r = run_inproc(capsys, "decode", "--no-progress", "--model-dir", md, data, out, *(["--lattices"] if lattices else []))
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in (out / "hyp.ctm").read_text().splitlines()]
    by_utt = {}
    for u, ch, st, du, w, c in rows:
        assert ch == "1"
        by_utt.setdefault(u, []).append((float(st), float(du), w, float(c)))
    assert {u: [w for *_, w, _ in v] for u, v in by_utt.items()} == UTTS
    # 3 frames per HMM state, 3 states per phone, no silence: a phone lasts 0.09 s
    assert [(s, d) for s, d, *_ in by_utt["u1"]] == [(0.0, 0.27), (0.27, 0.18)]
    assert [(s, d) for s, d, *_ in by_utt["u2"]] == [(0.0, 0.27), (0.27, 0.27), (0.54, 0.09)]
    confs = [c for v in by_utt.values() for *_, c in v]
    if lattices:
        assert all(0.0 < c <= 1.0 for c in confs) and min(confs) > 0.5
    else:
        assert set(confs) == {1.0}
    info = json.loads((out / "decode.json").read_text())
    assert info["ctm"] is True and info["ctm_failed_utterances"] == 0
    r = run_inproc(capsys, "decode", "--no-progress", "--no-ctm", "--model-dir", md, data, tmp_path / "d2")
    assert r.returncode == 0 and not (tmp_path / "d2" / "hyp.ctm").exists()


def test_arc_posteriors_sum_to_one_per_level():
    """On a lattice with two competing words, the posteriors are the softmax of the path scores."""
    import numpy as np

    from asr.lattice.lattice_io import Lattice
    from asr.lattice.posteriors import arc_posteriors

    # 0 -A(g=1,a=10)-> 1 -C-> 3 ; 0 -B(g=2,a=5)-> 2 -C-> 3 ; final 3
    lat = Lattice(np.array([0, 0, 1, 2]), np.array([1, 2, 3, 3]), np.array([1, 2, 3, 3]),
                  np.array([1.0, 2.0, 0.0, 0.0]), np.array([10.0, 5.0, 0.0, 0.0]),
                  np.array([np.inf, np.inf, np.inf, 0.0]), np.array([np.inf, np.inf, np.inf, 0.0]), 0)
    p = arc_posteriors(lat, 0.1)
    sa, sb = -(1 + 1.0), -(2 + 0.5)
    pa = np.exp(sa) / (np.exp(sa) + np.exp(sb))
    np.testing.assert_allclose(p, [pa, 1 - pa, pa, 1 - pa], atol=1e-12)
