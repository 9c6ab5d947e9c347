import pytest
import torch

from asr.errors import ConfigError
from asr.train.config import TrainingConfig
from asr.train.schedule import lr_at, make_optimizer


def tc(**kw):
    return TrainingConfig.from_dict(kw)


def test_exponential_decay_per_epoch():
    cfg = tc(lr=0.1, schedule={"type": "exponential", "decay": 0.5})
    assert lr_at(0, 100, 1000, cfg) == pytest.approx(0.1)
    assert lr_at(100, 100, 1000, cfg) == pytest.approx(0.05)
    assert lr_at(250, 100, 1000, cfg) == pytest.approx(0.1 * 0.5 ** 2.5)


def test_warmup_then_cosine_to_final_factor():
    sched = {"type": "warmup_cosine", "warmup_updates": 10, "final_lr_factor": 0.1}
    cfg = tc(lr=1.0, schedule=sched)
    assert lr_at(0, 50, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 50, 100, cfg) == pytest.approx(1.0)
    assert lr_at(10, 50, 100, cfg) == pytest.approx(1.0)
    assert lr_at(100, 50, 100, cfg) == pytest.approx(0.1)
    # a warm-up longer than a fifth of the run is shortened
    assert lr_at(3, 5, 20, tc(lr=1.0, schedule={**sched, "warmup_updates": 500})) == pytest.approx(1.0)


def test_bad_optimizer_and_schedule():
    with pytest.raises(ConfigError, match="training.optimizer: 'lbfgs' is not one of sgd, adam, adamw"):
        tc(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="training.schedule.type: 'step' is not one of"):
        tc(schedule={"type": "step"})
    assert isinstance(make_optimizer([torch.nn.Parameter(torch.zeros(2))], tc(optimizer="sgd", momentum=0.9)),
                      torch.optim.SGD)
