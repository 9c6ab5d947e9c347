import subprocess

import numpy as np
import pytest
import torch

from asr.cli import main
from asr.errors import ConfigError
from asr.nnet import build_model, count_parameters
from asr.nnet.inference import log_posteriors
from asr.nnet.lstm_cell import GREFF_FLAGS
from asr.nnet.model_dir import load_acoustic_model, save_model_dir


def run_asr(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def small(family="lstmp", **kw):
    cfg = {"family": family, "num_layers": 2, "cell_dim": 12, "proj_dim": 6}
    if family == "lstm":
        cfg.pop("proj_dim")
    cfg.update(kw)
    return cfg


def test_peephole_cell_with_zero_peepholes_equals_nn_lstm():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(7, 12, num_layers=2, proj_size=6, batch_first=True)
    model = build_model(small(implementation="custom", cell_clip=None), 7, 5)
    assert not model.fused
    for k, layer in enumerate(model.layers):
        layer.load_from_nn_lstm(ref, k)
    ref_model = build_model(small(peepholes=False), 7, 5)
    assert ref_model.fused
    ref_model.lstm.load_state_dict(ref.state_dict())
    ref_model.output.load_state_dict(model.output.state_dict())
    x = torch.randn(3, 17, 7)
    y1, (h1, c1) = ref_model(x)
    y2, (r2, c2, _) = model(x)
    assert torch.allclose(y1, y2, atol=1e-5)
    assert torch.allclose(h1, r2, atol=1e-5) and torch.allclose(c1, c2, atol=1e-5)
    # the peepholes do matter once non-zero
    with torch.no_grad():
        model.layers[0].peep_f.fill_(0.5)
    assert not torch.allclose(model(x)[0], y1, atol=1e-3)


def test_gradients_match_nn_lstm():
    torch.manual_seed(1)
    ref = torch.nn.LSTM(5, 8, num_layers=1, proj_size=4, batch_first=True)
    m = build_model({"family": "lstmp", "num_layers": 1, "cell_dim": 8, "proj_dim": 4,
                     "implementation": "custom", "cell_clip": None}, 5, 3)
    m.layers[0].load_from_nn_lstm(ref, 0)
    x = torch.randn(2, 9, 5)
    ref(x)[0].pow(2).sum().backward()
    y, _ = m.layers[0](x.transpose(0, 1))
    y.pow(2).sum().backward()
    assert torch.allclose(m.layers[0].weight_rec.grad, ref.weight_hr_l0.grad, atol=1e-5)


@pytest.mark.parametrize("peep,clip,proj,flags", [(True, 50.0, 6, ()), (True, 0.4, 6, ()), (False, 0.0, 0, ()),
                                                   (True, 0.0, 0, ("NP",)), (True, 0.5, 4, ())])
def test_speed_path_equals_generic_recurrence(peep, clip, proj, flags):
    """The hand-written backward of the standard cell (asr/nnet/lstmp_function.py) gives the
    outputs, final state and every gradient of the generic TorchScript recurrence — with
    clipping active on part of the cells, carried state, and gradients through r_T and c_T."""
    import copy

    from asr.nnet.lstm_cell import CellOptions, PeepholeLSTMLayer

    torch.manual_seed(0)
    fast = PeepholeLSTMLayer(CellOptions(5, 8, proj, 0, peep, clip, flags)).double()
    with torch.no_grad():
        for p in fast.parameters():
            p.mul_(3)  # large enough weights that a clip of 0.4 bites
    generic = copy.deepcopy(fast)
    generic.standard = False
    assert fast.standard
    x = torch.randn(7, 3, 5, dtype=torch.float64, requires_grad=True)
    state = (torch.randn(3, proj or 8, dtype=torch.float64, requires_grad=True),
             (0.5 * torch.randn(3, 8, dtype=torch.float64)).requires_grad_(), torch.zeros(3, 0, dtype=torch.float64))
    w = torch.randn(7, 3, proj or 8, dtype=torch.float64)
    results = []
    for layer in (fast, generic):
        y, (r, c, _) = layer(x, state)
        loss = (y * w).sum() + 0.3 * r.sum() + c.pow(2).sum()
        grads = torch.autograd.grad(loss, [x, state[0], state[1], *layer.parameters()])
        results.append([y, r, c, *grads])
    if 0 < clip < 1:
        assert 0.1 < float((results[0][2].abs() >= clip).double().mean()) < 1.0
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-12), float((a - b).abs().max())


def test_speed_path_gradcheck():
    from asr.nnet.lstmp_function import PeepholeLSTMPFunction

    torch.manual_seed(2)
    T, B, H, R = 4, 2, 3, 2
    args = [torch.randn(*s, dtype=torch.float64, requires_grad=True)
            for s in ((T, B, 4 * H), (B, R), (B, H), (R, 4 * H), (3, H), (H, R))]
    assert torch.autograd.gradcheck(lambda *a: PeepholeLSTMPFunction.apply(*a, 0.0, True, True), args)


@pytest.mark.parametrize("family", ["lstmp", "lstm", "dnn", "fused", "FGR"])
def test_state_carry_equals_whole_sequence(family):
    """Feeding an utterance in chunks with the state carried equals one pass."""
    torch.manual_seed(2)
    cfg = {"dnn": {"family": "dnn", "splice": 2, "hidden_dim": 16, "num_layers": 2},
           "fused": small(peepholes=False), "FGR": small(variant="FGR")}.get(family) or small(family)
    model = build_model(cfg, 4, 5).eval()
    x = torch.randn(2, 23, 4)
    whole, _ = model(x)
    state, parts = None, []
    for s in range(0, 23, 5):
        y, state = model(x[:, s : s + 5], state)
        parts.append(y)
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-5)
    # a fresh state (reset) differs from a carried one
    y_fresh, _ = model(x[:, 5:10])
    assert not torch.allclose(y_fresh, whole[:, 5:10], atol=1e-4)


@pytest.mark.parametrize("flag", GREFF_FLAGS)
def test_greff_variants_run_and_train(flag):
    torch.manual_seed(3)
    model = build_model(small(variant=flag, nonrec_proj_dim=3), 4, 5)
    x = torch.randn(2, 6, 4)
    y, state = model(x)
    assert y.shape == (2, 6, 5) and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    vanilla = count_parameters(build_model(small(nonrec_proj_dim=3), 4, 5))["total"]
    n = count_parameters(model)["total"]
    if flag in ("NIAF", "NOAF"):
        assert n == vanilla
    elif flag == "FGR":
        assert n == vanilla + 2 * 9 * 12 * 12
    else:
        assert n < vanilla


def test_bad_variant_and_family():
    with pytest.raises(ConfigError):
        build_model(small(variant="XYZ"), 4, 5)
    with pytest.raises(ConfigError):
        build_model(small(variant=["CIFG", "NIG"]), 4, 5)
    with pytest.raises(ConfigError):
        build_model({"family": "transformer"}, 4, 5)
    with pytest.raises(ConfigError):
        build_model(small(implementation="fused"), 4, 5)  # peepholes on by default
    with pytest.raises(ConfigError):
        build_model(small(cell_dims=3), 4, 5)


def test_cell_clip():
    m = build_model({"family": "lstm", "num_layers": 1, "cell_dim": 3, "cell_clip": 2.0, "variant": "NIAF"}, 1, 2)
    with torch.no_grad():
        m.layers[0].weight_ih.fill_(10.0)
        m.layers[0].bias.fill_(10.0)
    _, (_, c, _) = m(torch.ones(1, 30, 1))
    assert torch.allclose(c, torch.full_like(c, 2.0))


def test_paper_init_range():
    m = build_model({"family": "lstmp", "num_layers": 1, "cell_dim": 40, "proj_dim": 20, "init_scale": 0.02}, 8, 30)
    assert max(p.abs().max().item() for p in m.parameters()) <= 0.02


def test_nnet_info_paper_preset(capsys):
    r = run_asr(capsys, "nnet-info", "conf/lstmp_paper.yaml")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "params layer 1: 2178400 weights + 3200 biases" in lines
    assert "params layer 2: 3688800 weights + 3200 biases" in lines
    assert "params output: 7294464 weights + 14247 biases" in lines
    assert f"num-params-no-bias {2178400 + 3688800 + 7294464}" in lines
    assert f"num-params {2178400 + 3688800 + 7294464 + 2 * 3200 + 14247}" in lines


def test_nnet_info_needs_num_pdfs(capsys):
    r = run_asr(capsys, "nnet-info", "conf/lstmp.yaml")
    assert r.returncode == 1 and "--num-pdfs" in r.stderr
    r = run_asr(capsys, "nnet-info", "conf/dnn.yaml", "--num-pdfs", "10", "--num-inputs", "13")
    assert r.returncode == 0 and "DNN: splice ±5 frames (13 x 11 = 143 inputs)" in r.stdout


def test_model_dir_roundtrip_and_log_posteriors(tmp_path):
    torch.manual_seed(4)
    cfg = small()
    model = build_model(cfg, 4, 5)
    save_model_dir(tmp_path / "m", model, cfg, 4, 5, output_delay=3)
    loaded, meta = load_acoustic_model(tmp_path / "m")
    assert meta["output_delay"] == 3 and meta["num_pdfs"] == 5
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 4)).astype(np.float32) for n in (7, 0, 12, 3)]
    post = log_posteriors(loaded, feats, 3)
    assert [p.shape for p in post] == [(7, 5), (0, 5), (12, 5), (3, 5)]
    assert all(p.dtype == np.float32 for p in post)
    # row t = frame t: the output at step t+3 of the delay-padded utterance
    f = feats[2]
    padded = np.concatenate([f, np.repeat(f[-1:], 3, 0)])
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.from_numpy(padded)[None])[0][0], -1).numpy()
    assert np.allclose(post[2], ref[3:], atol=1e-5)
    assert np.allclose(np.exp(post[0]).sum(1), 1.0, atol=1e-5)


def test_nnet_info_on_model_dir(tmp_path, capsys):
    cfg = {"family": "dnn", "splice": 1, "hidden_dim": 8, "num_layers": 2, "activation": "sigmoid"}
    save_model_dir(tmp_path / "m", build_model(cfg, 3, 4), cfg, 3, 4, output_delay=1)
    r = run_asr(capsys, "nnet-info", str(tmp_path / "m"))
    assert r.returncode == 0
    # 9*8 + 8 + 8*8 + 8 + 8*4 + 4
    assert "num-params 188" in r.stdout.splitlines()
    r = run_asr(capsys, "nnet-info", str(tmp_path))
    assert r.returncode == 1 and "model.yaml" in r.stderr
