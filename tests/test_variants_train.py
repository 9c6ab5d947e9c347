"""The deep LSTM families through the user's commands: the shipped configs with
`asr nnet-info`, and `asr train` → model dir → inference on a toy separable task."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from asr.cli import main
from train_fixtures import make_data

CONF = Path(__file__).resolve().parents[1] / "conf"
FAMILIES = ("residual_lstm", "highway_lstm", "ltlstm")
NUM_PDFS, DIM = 5, 6


@pytest.mark.parametrize("family", FAMILIES)
def test_nnet_info_accepts_shipped_config(family, capsys):
    from asr.nnet.registry import build_model

    assert main(["nnet-info", str(CONF / f"{family}.yaml"), "--num-pdfs", "300"]) == 0
    out = capsys.readouterr().out
    assert f"family {family}" in out
    cfg = yaml.safe_load((CONF / f"{family}.yaml").read_text())
    model = build_model(cfg["model"], 40, 300)
    assert f"num-params {sum(p.numel() for p in model.parameters())}\n" in out
    assert cfg["training"]["epochs"] >= 1


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return (make_data(root, "train", 12, 1, NUM_PDFS, DIM, max_len=35)
            + make_data(root, "dev", 4, 2, NUM_PDFS, DIM, max_len=35))


@pytest.mark.parametrize("family", FAMILIES)
def test_train_and_load(family, data, tmp_path):
    import csv

    from asr.nnet.inference import log_posteriors
    from asr.nnet.model_dir import load_acoustic_model

    tr, tr_ali, dv, dv_ali = data
    cfg = yaml.safe_load((CONF / f"{family}.yaml").read_text())
    cfg["model"].update(num_layers=2, cell_dim=12)
    if family == "residual_lstm":
        cfg["model"]["proj_dim"] = 12
    if family == "ltlstm":
        cfg["model"]["layer_cell_dim"] = 8
    cfg["training"] = {"optimizer": "adam", "lr": 0.03, "epochs": 3, "streams": 3, "chunk": 10, "output_delay": 2,
                       "seed": 3, "cmvn": "none"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "exp"
    rc = main(["train", "--config", str(tmp_path / "c.yaml"), "--feats", str(tr), "--ali", str(tr_ali),
               "--dev-feats", str(dv), "--dev-ali", str(dv_ali), "--out", str(exp), "--num-pdfs", str(NUM_PDFS),
               "--no-progress"])
    assert rc == 0
    rows = list(csv.DictReader(open(exp / "log.csv")))
    assert max(float(r["dev_acc"]) for r in rows) > 0.4  # separable toy classes, chance is 0.2
    model, config = load_acoustic_model(exp / "final")
    assert type(model).__module__ == f"asr.nnet.{family}"
    feats = [np.random.default_rng(0).standard_normal((n, DIM)).astype(np.float32) for n in (9, 4)]
    post = log_posteriors(model, feats, 2)
    assert [p.shape for p in post] == [(9, NUM_PDFS), (4, NUM_PDFS)]
    np.testing.assert_allclose(np.exp(post[0]).sum(1), 1.0, rtol=1e-5)
