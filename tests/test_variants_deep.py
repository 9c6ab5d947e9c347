"""Residual, highway and layer-trajectory LSTMs: shapes, state carry, parameter counts and
each family's defining property."""

import pytest
import torch

from asr.errors import ConfigError
from asr.nnet.highway_lstm import HighwayLSTM, build_highway_lstm
from asr.nnet.ltlstm import LayerTrajectoryLSTM, build_ltlstm
from asr.nnet.residual_lstm import ResidualLSTM, ResidualLSTMLayer, build_residual_lstm

D, PDFS = 12, 17
BUILDERS = {"residual_lstm": build_residual_lstm, "highway_lstm": build_highway_lstm, "ltlstm": build_ltlstm}


def make(family, **kw):
    torch.manual_seed(0)
    config = {"num_layers": 3, "cell_dim": 16, "proj_dim": 8, "init_scale": 0.3}
    config.update(kw)
    return BUILDERS[family](config, D, PDFS).double()


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_shapes_and_state_carry(family):
    model = make(family)
    x = torch.randn(3, 14, D, dtype=torch.double)
    full, state = model(x)
    assert full.shape == (3, 14, PDFS)
    first, s = model(x[:, :5])
    second, s = model(x[:, 5:], s)
    torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=0, atol=1e-12)
    for a, b in zip(s, state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # fresh state differs from carried state (the state matters)
    restart, _ = model(x[:, 5:])
    assert not torch.allclose(restart, second)


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_gradients_reach_every_parameter(family):
    model = make(family)
    logits, _ = model(torch.randn(2, 6, D, dtype=torch.double))
    logits.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_param_counts():
    n, p, k, L = 16, 8, 10, 3
    # residual, P != N: gates i,f,g of size N and o of size P; no o-peephole; W_h only in layer 1
    def res_layer(i):
        return i * (3 * n + p) + (3 * n + p) + (3 * n + p) * p + 2 * n + p * n
    res = ResidualLSTM(D, PDFS, L, n, p)
    assert count(res) == res_layer(D) + D * p + 2 * res_layer(p) + p * PDFS + PDFS
    # residual, P == N: output peephole present
    res_sq = ResidualLSTM(D, PDFS, 2, n, n)
    def res_sq_layer(i):
        return i * 4 * n + 4 * n + 4 * n * n + 3 * n + n * n
    assert count(res_sq) == res_sq_layer(D) + D * n + res_sq_layer(n) + n * PDFS + PDFS

    # highway: plain LSTMP first layer; upper layers add W_xd, b_d, w_cd, w_ld
    def lstmp(i):
        return 4 * n * i + 4 * n + 4 * n * p + 3 * n + p * n
    hw = HighwayLSTM(D, PDFS, L, n, p)
    assert count(hw) == lstmp(D) + 2 * (lstmp(p) + n * p + n + 2 * n) + p * PDFS + PDFS

    # ltLSTM: time-LSTMP stack + one shared layer-LSTM (4k·p + 4k + 4k·k + 3k) + classifier on k
    lt = LayerTrajectoryLSTM(D, PDFS, L, n, p, layer_cell_dim=k)
    assert count(lt) == lstmp(D) + 2 * lstmp(p) + (4 * k * p + 4 * k + 4 * k * k + 3 * k) + k * PDFS + PDFS


def test_residual_shortcut_is_identity_through_open_output_gate():
    """dim x == dim h: W_h is the identity (no matrix); with the projection at zero and the
    output gate forced open, the layer passes its input through unchanged."""
    layer = ResidualLSTMLayer(8, 16, 8).double()
    assert layer.shortcut is None
    for prm in layer.parameters():
        torch.nn.init.uniform_(prm, -0.5, 0.5)
    n = 16
    with torch.no_grad():
        layer.w_p.zero_()
        layer.w_x.weight[3 * n:].zero_()
        layer.w_x.bias[3 * n:] = 100.0  # σ(100) == 1 in double
        layer.w_h[3 * n:].zero_()
    x = torch.randn(2, 7, 8, dtype=torch.double)
    y, _ = layer(x, torch.zeros(2, 8, dtype=torch.double), torch.zeros(2, n, dtype=torch.double))
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    # in general h = o ⊙ (W_p tanh(c) + x): the shortcut enters before the output gate
    with torch.no_grad():
        layer.w_x.bias[3 * n:] = -100.0  # gate closed: no shortcut leaks around it
    y, _ = layer(x, torch.zeros(2, 8, dtype=torch.double), torch.zeros(2, n, dtype=torch.double))
    assert y.abs().max() < 1e-30


def test_residual_first_layer_projects_the_shortcut():
    model = ResidualLSTM(D, PDFS, 3, 16, 8)
    assert model.layers[0].shortcut is not None and model.layers[0].shortcut.weight.shape == (8, D)
    assert all(layer.shortcut is None for layer in model.layers[1:])


def test_highway_with_closed_depth_gate_equals_stacked_lstm():
    """Peepholes at zero, depth gate forced to 0: a highway LSTMP stack computes exactly what
    torch.nn.LSTM(num_layers, proj_size) computes with the same weights."""
    n, p, L = 16, 8, 3
    model = HighwayLSTM(D, PDFS, L, n, p, init_scale=0.3).double()
    ref = torch.nn.LSTM(D, n, num_layers=L, proj_size=p, batch_first=True).double()
    with torch.no_grad():
        for l, layer in enumerate(model.layers):
            layer.peep.zero_()
            if l > 0:
                layer.depth_peep.zero_()
                layer.w_x.bias[4 * n:] = -1000.0  # σ = 0 exactly
            getattr(ref, f"weight_ih_l{l}").copy_(layer.w_x.weight[:4 * n])
            getattr(ref, f"bias_ih_l{l}").copy_(layer.w_x.bias[:4 * n])
            getattr(ref, f"bias_hh_l{l}").zero_()
            getattr(ref, f"weight_hh_l{l}").copy_(layer.w_r)
            getattr(ref, f"weight_hr_l{l}").copy_(layer.w_rm)
    x = torch.randn(3, 11, D, dtype=torch.double)
    logits, (r, c) = model(x)
    ref_out, (ref_h, ref_c) = ref(x)
    torch.testing.assert_close(logits, model.output(ref_out), rtol=0, atol=1e-12)
    torch.testing.assert_close(r, ref_h, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, ref_c, rtol=0, atol=1e-12)


def test_highway_open_depth_gate_carries_lower_cell():
    """d = 1, i = 0, f = 0: the upper layer's cell is the lower layer's cell."""
    n = 16
    model = HighwayLSTM(D, PDFS, 2, n, 0, init_scale=0.3).double()
    up = model.layers[1]
    with torch.no_grad():
        up.depth_peep.zero_()
        up.peep.zero_()
        up.w_x.bias[4 * n:] = 1000.0   # d = 1
        up.w_x.bias[:2 * n] = -1000.0  # i = f = 0
        up.w_x.weight[:2 * n].zero_()
        up.w_r[:2 * n].zero_()
    x = torch.randn(2, 9, D, dtype=torch.double)
    lower_out, lower_cells, _ = model.layers[0](x, torch.zeros(2, n, dtype=torch.double), torch.zeros(2, n, dtype=torch.double))
    _, upper_cells, _ = up(lower_out, torch.zeros(2, n, dtype=torch.double), torch.zeros(2, n, dtype=torch.double), lower_cells)
    torch.testing.assert_close(upper_cells, lower_cells, rtol=0, atol=0)


def reference_layer_lstm(lt, h):
    """The ltLSTM layer-LSTM equations, one frame and one layer at a time."""
    ll = lt.layer_lstm
    k = ll.q.shape[1]
    U_h, d = ll.u_h.weight, ll.u_h.bias
    out = torch.empty(h.shape[1], h.shape[2], k, dtype=h.dtype)
    sig = torch.sigmoid
    for b in range(h.shape[1]):
        for t in range(h.shape[2]):
            g = torch.zeros(k, dtype=h.dtype)
            m = torch.zeros(k, dtype=h.dtype)
            for l in range(h.shape[0]):
                a = U_h @ h[l, b, t] + d + ll.u_g @ g
                j = sig(a[:k] + ll.q[0] * m)
                e = sig(a[k:2 * k] + ll.q[1] * m)
                m = e * m + j * torch.tanh(a[2 * k:3 * k])
                v = sig(a[3 * k:] + ll.q[2] * m)
                g = v * torch.tanh(m)
            out[b, t] = g
    return out


def test_ltlstm_classifier_reads_the_layer_lstm():
    lt = make("ltlstm", layer_cell_dim=10)
    x = torch.randn(2, 5, D, dtype=torch.double)
    logits, _ = lt(x)
    h, _ = lt.time_stack(x)
    assert h.shape == (3, 2, 5, 8)
    torch.testing.assert_close(logits, lt.output(reference_layer_lstm(lt, h)), rtol=0, atol=1e-12)
    # cut the layer-LSTM from the time-LSTMs: the output no longer depends on the input at all
    with torch.no_grad():
        lt.layer_lstm.u_h.weight.zero_()
    a, _ = lt(x)
    b, _ = lt(torch.randn(2, 5, D, dtype=torch.double))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ltlstm_layer_lstm_reads_every_layer():
    lt = make("ltlstm")
    x = torch.randn(1, 4, D, dtype=torch.double)
    h, _ = lt.time_stack(x)
    base = lt.layer_lstm(h)
    for l in range(3):
        h2 = h.clone()
        h2[l] += 0.1
        assert not torch.allclose(lt.layer_lstm(h2), base), l


@pytest.mark.parametrize("family", sorted(BUILDERS))
@pytest.mark.parametrize("bad", [{"num_layers": 0}, {"cell_dim": "big"}, {"hidden": 3}, {"proj_dim": -1}])
def test_bad_configs_are_config_errors(family, bad):
    """The registry checks every model: section (asr.nnet.registry.check_model_config)."""
    from asr.nnet.registry import build_model

    with pytest.raises(ConfigError, match=f"model[.:] ?{next(iter(bad))}|unknown key"):
        build_model({"family": family, **bad}, D, PDFS)


def test_ltlstm_bad_layer_cell_dim():
    from asr.nnet.registry import build_model

    with pytest.raises(ConfigError, match="layer_cell_dim"):
        build_model({"family": "ltlstm", "layer_cell_dim": -4}, D, PDFS)


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_describe_and_default_init(family):
    model = BUILDERS[family]({"family": family, "num_layers": 2, "cell_dim": 16, "cell_clip": None}, D, PDFS)
    text = model.describe()
    assert "cell clip off" in text and str(PDFS) in text
    bound = 1 / 16 ** 0.5
    for name, p in model.named_parameters():
        if not name.startswith("output."):
            assert p.abs().max() <= bound, name
