"""The typed training config: unknown keys, wrong types and values are one-line errors
naming the key; the model section is checked as far as the model registry allows."""

import pytest
import yaml

import train_fixtures
from asr.cli import main
from asr.errors import ConfigError
from asr.train.config import TrainingConfig, describe_keys


@pytest.mark.parametrize("training, message", [
    ({"epoch": 1}, "training.epoch: unknown key (did you mean 'epochs'?)"),
    ({"epochs": 1.7}, "training.epochs: expected an integer, got 1.7"),
    ({"epochs": "3"}, "training.epochs: expected an integer, got '3'"),
    ({"streams": 0}, "training.streams: must be >= 1 (got 0)"),
    ({"lr": "fast"}, "training.lr: expected a number, got 'fast'"),
    ({"amp": "yes"}, "training.amp: expected true or false, got 'yes'"),
    ({"betas": [0.9]}, "training.betas: expected a list of 2 values, got [0.9]"),
    ({"schedule": {"type": "warmup_cosine", "warmup": 5}},
     "training.schedule.warmup: unknown key (did you mean 'warmup_updates'?)"),
    ({"schedule": "cosine"}, "training.schedule: expected a mapping of keys, got str"),
    ({"cmvn": "per-speaker"}, "training.cmvn: 'per-speaker' is not one of speaker, utterance, global, online, none"),
    ({"grad_clip": -1}, "training.grad_clip: must be > 0 or null (got -1.0)"),
])
def test_bad_training_keys(training, message):
    with pytest.raises(ConfigError) as e:
        TrainingConfig.from_dict(training)
    assert str(e.value) == message


def test_defaults_types_and_docs():
    cfg = TrainingConfig.from_dict({"lr": 1, "grad_clip": None, "schedule": {"type": "exponential"}, "betas": [0.8, 0.9]})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.grad_clip is None
    assert cfg.schedule.type == "exponential" and cfg.schedule.decay == 0.5 and cfg.betas == (0.8, 0.9)
    keys = {k: (t, doc) for k, t, _, doc in describe_keys()}
    assert keys["epochs"][0] == "int" and keys["grad_clip"][0] == "float or null"
    assert "GLOBAL" in keys["streams"][1] and "schedule.warmup_updates" in keys
    assert all(doc for _, doc in keys.values()), [k for k, (_, d) in keys.items() if not d]
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "acoustic-models.md").read_text()
    assert [k for k in keys if f"| `{k}` |" not in doc] == [], "document every training key in docs/acoustic-models.md"


@pytest.mark.parametrize("config, message", [
    ({"training": {"epoch": 1}}, "training.epoch: unknown key (did you mean 'epochs'?)"),
    ({"trainig": {}}, "trainig: unknown top-level key (did you mean 'training'?)"),
    ({"model": {"family": "lstmp", "cell_dims": 16}}, "unknown key(s) ['cell_dims']"),
    ({"model": {"family": "lstmp", "cell_dim": "big"}}, "model.cell_dim: bad value 'big'"),
    ({"model": {"family": "transformer"}}, "unknown model family 'transformer'"),
    ({"model": {"family": "dnn", "hiden_dim": 16}}, "model: unknown key(s) ['hiden_dim'] for family dnn"),
    ({"model": {"family": "dnn", "hidden_dim": "16"}}, "model.hidden_dim: bad value '16' (expected an integer >= 1)"),
    ({"model": {"family": "dnn", "hidden_dim": 0}}, "model.hidden_dim: bad value 0 (expected an integer >= 1)"),
    ({"model": {"family": "dnn", "num_layers": True}}, "model.num_layers: bad value True (expected an integer"),
    ({"model": {"family": "dnn", "activation": "tanh"}}, "model.activation: bad value 'tanh' (expected one of relu"),
    ({"model": {"family": "lstmp", "peepholes": "no"}}, "model.peepholes: bad value 'no' (expected true or false)"),
    ({"model": {"family": "ltlstm", "cell_clip": -1}}, "model.cell_clip: bad value -1 (expected a number >= 0 or null)"),
])
def test_cli_config_errors_are_one_line(tmp_path, capsys, config, message):
    tr, ali = train_fixtures.make_data(tmp_path, "train", 3, 1, 4, 3)
    cfg = {"model": {"family": "lstmp", "num_layers": 1, "cell_dim": 8, "proj_dim": 4},
           "training": {"epochs": 1, "streams": 2, "cmvn": "none"}}
    for k, v in config.items():
        cfg[k] = {**cfg.get(k, {}), **v} if k in cfg and k != "model" else v
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc = main(["train", "--config", str(path), "--feats", str(tr), "--ali", str(ali), "--out", str(tmp_path / "exp"),
               "--no-progress", "--num-threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("asr train: error: ") and message in err[0], err
    assert f"{path}: " in err[0], err  # the config file is named
    assert not (tmp_path / "exp" / "checkpoint.pt").exists()
