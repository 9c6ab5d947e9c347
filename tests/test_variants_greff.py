"""Greff et al. (2015) variants of the peephole LSTM cell: each flag's defining property
and its parameter count, checked on asr.nnet.lstm_cell.PeepholeLSTMLayer."""

import pytest
import torch

from asr.errors import ConfigError

lstm_cell = pytest.importorskip("asr.nnet.lstm_cell", reason="the peephole cell (nnet branch) is not merged yet")
GREFF_FLAGS, CellOptions, PeepholeLSTMLayer = lstm_cell.GREFF_FLAGS, lstm_cell.CellOptions, lstm_cell.PeepholeLSTMLayer

D, H, T, B = 5, 6, 7, 3


def layer(*flags, peepholes=True, rec_proj=0, seed=0):
    torch.manual_seed(seed)
    lay = PeepholeLSTMLayer(CellOptions(D, H, rec_proj, 0, peepholes, 0.0, tuple(flags))).double()
    lay.reset_parameters(0.5)
    return lay


def run(lay, x, state=None):
    y, (r, c, g) = lay(x, state)
    return y, r, c


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, D, generator=g, dtype=torch.double)


def random_state(lay, seed=2):
    g = torch.Generator().manual_seed(seed)
    r, c, gates = lay.zero_state(B, dtype=torch.double)
    return (torch.randn(r.shape, generator=g, dtype=torch.double),
            torch.randn(c.shape, generator=g, dtype=torch.double), gates)


def copy_shared(dst, src):
    """Copy every gate block and peephole that both layers have (by gate name)."""
    with torch.no_grad():
        for name in dst.gate_names:
            if name in src.gate_names:
                for w in ("weight_ih", "weight_hh", "bias"):
                    getattr(dst, w)[dst.gate_slice(name)] = getattr(src, w)[src.gate_slice(name)]
        for p in ("peep_i", "peep_f", "peep_o", "weight_rec"):
            if getattr(dst, p) is not None and getattr(src, p) is not None:
                getattr(dst, p).copy_(getattr(src, p))


def saturate(lay, gate, value):
    """Make vanilla gate ``gate`` constant: zero its weights and peephole, bias ±1000."""
    with torch.no_grad():
        s = lay.gate_slice(gate)
        lay.weight_ih[s] = 0
        lay.weight_hh[s] = 0
        lay.bias[s] = 1000.0 if value == 1 else -1000.0
        peep = getattr(lay, f"peep_{gate}")
        if peep is not None:
            peep.zero_()


def preact(lay, gate, x, r0):
    s = lay.gate_slice(gate)
    return x @ lay.weight_ih[s].t() + r0 @ lay.weight_hh[s].t() + lay.bias[s]


@pytest.mark.parametrize("flag,gate", [("NIG", "i"), ("NFG", "f"), ("NOG", "o")])
def test_removed_gate_is_constant_one(flag, gate):
    """NIG/NFG/NOG: the cell equals the vanilla cell with that gate held at exactly 1."""
    var = layer(flag)
    van = layer()
    copy_shared(van, var)
    saturate(van, gate, 1)
    assert gate not in var.gate_names and getattr(var, f"peep_{gate}") is None
    x = inputs()
    st = random_state(var)
    for a, b in zip(run(var, x, st), run(van, x, st)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_cifg_forget_gate_is_one_minus_input_gate():
    """One step from a random state: c_1 = (1 − i) ⊙ c_0 + i ⊙ z, with i and z computed
    from the cell's own parameters; no forget-gate parameters exist."""
    lay = layer("CIFG")
    assert lay.gate_names == ["i", "o", "g"] and lay.peep_f is None
    x = inputs()[:1]
    r0, c0, g0 = random_state(lay)
    _, _, c1 = run(lay, x, (r0, c0, g0))
    i = torch.sigmoid(preact(lay, "i", x[0], r0) + lay.peep_i * c0)
    z = torch.tanh(preact(lay, "g", x[0], r0))
    torch.testing.assert_close(c1, (1 - i) * c0 + i * z, rtol=0, atol=1e-12)


def test_cifg_rejects_nig_and_nfg():
    for other in ("NIG", "NFG"):
        with pytest.raises(ConfigError):
            CellOptions(D, H, flags=("CIFG", other))


def test_np_equals_the_no_peephole_cell():
    np_layer = layer("NP")
    plain = layer(peepholes=False, seed=5)
    copy_shared(plain, np_layer)
    assert all(getattr(np_layer, p) is None for p in ("peep_i", "peep_f", "peep_o"))
    x = inputs()
    st = random_state(np_layer)
    for a, b in zip(run(np_layer, x, st), run(plain, x, st)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # and the vanilla cell with its peepholes at zero
    van = layer()
    copy_shared(van, np_layer)
    with torch.no_grad():
        for p in (van.peep_i, van.peep_f, van.peep_o):
            p.zero_()
    for a, b in zip(run(np_layer, x, st), run(van, x, st)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_np_equals_torch_lstm():
    lay = layer("NP", rec_proj=4)
    ref = torch.nn.LSTM(D, H, proj_size=4).double()
    lay_v = PeepholeLSTMLayer(CellOptions(D, H, 4, 0, True, 0.0, ())).double()
    lay_v.load_from_nn_lstm(ref)
    copy_shared(lay, lay_v)
    x = inputs()
    y, _, _ = run(lay, x)
    torch.testing.assert_close(y, ref(x)[0], rtol=0, atol=1e-12)


def test_niaf_block_input_is_linear():
    """NIAF: from a zero state, c_1 = i ⊙ (W_z x + b_z) — no squashing, so c may leave [−1, 1]."""
    lay = layer("NIAF")
    x = 5 * inputs()[:1]
    r0, c0, g0 = lay.zero_state(B, dtype=torch.double)
    _, _, c1 = run(lay, x, (r0, c0, g0))
    i = torch.sigmoid(preact(lay, "i", x[0], r0))
    torch.testing.assert_close(c1, i * preact(lay, "g", x[0], r0), rtol=0, atol=1e-12)
    assert c1.abs().max() > 1


def test_noaf_output_is_linear_in_cell():
    """NOAF: m_t = o_t ⊙ c_t (h = identity); with the output gate held open the output is
    exactly the cell state."""
    lay = layer("NOAF")
    x = inputs()[:1]
    r0, c0, g0 = random_state(lay)
    y, _, c1 = run(lay, x, (r0, c0, g0))
    o = torch.sigmoid(preact(lay, "o", x[0], r0) + lay.peep_o * c1)
    torch.testing.assert_close(y[0], o * c1, rtol=0, atol=1e-12)
    saturate(lay, "o", 1)
    y, _, c_last = run(lay, 10 * inputs()[:3])
    torch.testing.assert_close(y[-1], c_last, rtol=0, atol=0)
    assert y.abs().max() > 1  # not squashed by tanh


def test_fgr_has_nine_matrices_and_reduces_to_vanilla_at_zero():
    lay = layer("FGR")
    assert lay.weight_fgr.shape == (3 * H, 3 * H)  # [i; f; o]_{t−1} → i, f, o: nine H×H blocks
    van = layer(seed=9)
    copy_shared(van, lay)
    x = inputs()
    st = random_state(lay)
    y_fgr, _, _ = run(lay, x, st)
    y_van, _, _ = run(van, x, st[:2] + (van.zero_state(B, dtype=torch.double)[2],))
    assert not torch.allclose(y_fgr[1:], y_van[1:])  # the extra recurrence matters from t = 2
    torch.testing.assert_close(y_fgr[0], y_van[0], rtol=0, atol=1e-12)  # zero gates at t = 0
    with torch.no_grad():
        lay.weight_fgr.zero_()
    torch.testing.assert_close(run(lay, x, st)[0], y_van, rtol=0, atol=1e-12)


def test_fgr_state_carries_gates_across_chunks():
    lay = layer("FGR")
    x = inputs()
    y_full, _ = lay(x)
    y1, s = lay(x[:3])
    y2, _ = lay(x[3:], s)
    torch.testing.assert_close(torch.cat([y1, y2]), y_full, rtol=0, atol=1e-12)


def n_params(lay):
    return sum(p.numel() for p in lay.parameters())


@pytest.mark.parametrize("flags,gates,peeps,extra", [
    ((), 4, 3, 0),
    (("NIG",), 3, 2, 0),
    (("NFG",), 3, 2, 0),
    (("NOG",), 3, 2, 0),
    (("NIAF",), 4, 3, 0),
    (("NOAF",), 4, 3, 0),
    (("NP",), 4, 0, 0),
    (("CIFG",), 3, 2, 0),
    (("FGR",), 4, 3, 9 * H * H),
])
def test_param_count_per_variant(flags, gates, peeps, extra):
    """gate blocks × (input + recurrent weights + bias) + diagonal peepholes + FGR's 9 H×H."""
    lay = layer(*flags)
    assert n_params(lay) == gates * H * (D + H + 1) + peeps * H + extra


def test_every_flag_is_covered():
    assert set(GREFF_FLAGS) == {"NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR"}
    with pytest.raises(ConfigError):
        CellOptions(D, H, flags=("XYZ",))
