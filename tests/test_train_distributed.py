"""Several training processes on loopback (gloo): DDP equals one process, a killed rank
resumes under the elastic launcher, ASGD workers learn (one machine; two launchers as two
machines), bad launch setups are one-line errors. Each launch starts small processes."""

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import train_fixtures
from asr.cli import main
from asr.io.int_ark import iter_int_ark

ROOT = Path(__file__).resolve().parents[1]
NUM_PDFS, DIM = 6, 5
TIMEOUT = 240

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and loopback gloo")


def config(path, **training):
    t = {"optimizer": "sgd", "lr": 0.3, "epochs": 3, "streams": 4, "chunk": 7, "output_delay": 2, "seed": 3,
         "cmvn": "none", "checkpoint_every": 5}
    t.update(training)
    path.write_text(yaml.safe_dump({"model": {"family": "lstmp", "num_layers": 1, "cell_dim": 16, "proj_dim": 8},
                                    "training": t}))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddata")
    tr, tr_ali = train_fixtures.make_data(root, "train", 16, 1, NUM_PDFS, DIM)
    dv, dv_ali = train_fixtures.make_data(root, "dev", 6, 2, NUM_PDFS, DIM)
    return {"root": root, "cfg": config(root / "c.yaml"), "args": [
        "--feats", str(tr), "--ali", str(tr_ali), "--dev-feats", str(dv), "--dev-ali", str(dv_ali),
        "--num-pdfs", str(NUM_PDFS), "--no-progress"]}


def train_args(data, out, *extra, cfg=None):
    return ["train", "--config", str(cfg or data["cfg"]), *data["args"], "--out", str(out), *extra]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")])
    return e


def asr_cmd(args):
    return [sys.executable, "-m", "asr", *args]


def run_asr(args):
    return subprocess.run(asr_cmd(args), capture_output=True, text=True, timeout=TIMEOUT, env=env())


def steps(exp):
    with open(exp / "steps.csv") as f:
        return [(int(r["update"]), float(r["loss"]), int(r["frames"])) for r in csv.DictReader(f)]


def log_rows(exp):
    with open(exp / "log.csv") as f:
        return list(csv.DictReader(f))


def params(exp):
    from safetensors.numpy import load_file

    return load_file(str(exp / "final" / "model.safetensors"))


def assert_same_training(a, b, rtol=1e-4):
    sa, sb = steps(a), steps(b)
    assert [s[0] for s in sa] == [s[0] for s in sb] and [s[2] for s in sa] == [s[2] for s in sb]
    np.testing.assert_allclose([s[1] for s in sa], [s[1] for s in sb], rtol=rtol)
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_allclose(pa[k], pb[k], rtol=1e-3, atol=1e-5, err_msg=k)


@pytest.fixture(scope="module")
def ddp_run(data):
    out = data["root"] / "exp_ddp"
    r = run_asr(train_args(data, out, "--workers", "2"))
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r.stderr


def test_two_ranks_equal_one_rank(data, ddp_run, tmp_path):
    """N ranks × B/N streams make the updates of 1 rank × B streams (loss normalised by the
    global frame count); each rank logs its share of every epoch."""
    ddp, stderr = ddp_run
    one = tmp_path / "one"
    assert main(train_args(data, one, "--num-threads", "1")) == 0
    assert_same_training(ddp, one)
    assert [r["dev_acc"] for r in log_rows(ddp)] == [r["dev_acc"] for r in log_rows(one)]
    shares = {}
    for line in stderr.splitlines():
        if ": rank " in line and " utterances, " in line:
            rank = line.split(": rank ")[1].split(":")[0]
            u, f = line.split(": rank ")[1].split(": ")[1].replace(" utterances,", "").replace(" frames", "").split()
            shares.setdefault(rank, []).append((int(u), int(f)))
    assert set(shares) == {"0/2", "1/2"} and len(shares["0/2"]) == len(shares["1/2"]) == 3
    for (u0, f0), (u1, f1) in zip(shares["0/2"], shares["1/2"]):
        assert u0 + u1 == 16 and f0 + f1 == sum(s[2] for s in steps(one)) / 3


def _kill_rank(out: Path, rank: int) -> int | None:
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            environ = (d / "environ").read_bytes().split(b"\0")
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and str(out).encode() in cmdline:
            os.kill(int(d.name), signal.SIGKILL)
            return int(d.name)
    return None


def test_killed_rank_resumes_under_elastic_restart(data, ddp_run, tmp_path):
    """SIGKILL rank 1 after the first checkpoint: the launcher restarts both ranks
    (--max-restarts 1), they resume from the checkpoint and finish with the same training."""
    out = tmp_path / "exp"
    p = subprocess.Popen(asr_cmd(train_args(data, out, "--workers", "2", "--max-restarts", "1")),
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env())
    killed = None
    deadline = time.time() + TIMEOUT
    while p.poll() is None and killed is None and time.time() < deadline:
        if (out / "checkpoint.pt").exists():
            killed = _kill_rank(out, 1)
        time.sleep(0.02)
    stdout, stderr = p.communicate(timeout=TIMEOUT)
    assert killed is not None, "the run ended before rank 1 could be killed"
    assert p.returncode == 0, stderr[-3000:]
    assert "elastic restart 1: resuming from" in stderr
    assert_same_training(out, ddp_run[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("nodes", [1, 2])
def test_asgd_workers_learn(data, tmp_path, nodes):
    """ASGD with 2 workers trains well above chance and logs the staleness of its updates:
    on one machine with parameters in shared memory (Hogwild); as two "machines" (two
    launchers meeting at a c10d rendezvous on loopback) with parameter-server shards over RPC."""
    out = tmp_path / "exp"
    cfg = config(tmp_path / "c.yaml", epochs=2, checkpoint_every=0)
    if nodes == 1:
        procs = [subprocess.Popen(asr_cmd(train_args(data, out, "--workers", "2", "--mode", "asgd", cfg=cfg)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())]
    else:
        rdzv = ["--workers", "1", "--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "t"]
        procs = [subprocess.Popen(asr_cmd(train_args(data, out, *rdzv, "--mode", "asgd", cfg=cfg)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
                 for _ in range(2)]
    errs = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs[0][-3000:] + errs[-1][-3000:]
    assert ("ASGD (Hogwild)" if nodes == 1 else "ASGD (parameter server over RPC)") in "".join(errs)
    rows = log_rows(out)
    assert len(rows) == 2
    dev_ali = data["args"][data["args"].index("--dev-ali") + 1]
    counts = np.bincount(np.concatenate([a for _, a in iter_int_ark(dev_ali)]), minlength=NUM_PDFS)
    chance = counts.max() / counts.sum()
    assert float(max(r["dev_acc"] for r in rows)) > chance + 0.2
    assert "staleness_mean" in rows[0] and float(rows[-1]["staleness_max"]) >= 0
    assert (out / "final" / "model.safetensors").is_file() and not list(Path("/dev/shm").glob("asr-asgd-*"))


@pytest.mark.parametrize("extra, message", [
    (["--workers", "3"], "training.streams 4 is not divisible by 3 processes"),
    (["--workers", "2", "--nnodes", "2"], "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
    (["--workers", "2", "--nnodes", "0"], "--nnodes must be >= 1"),
    (["--workers", "1", "--nnodes", "2", "--rdzv-endpoint", "nohost"], "expected HOST:PORT"),
    (["--nnodes", "2"], "--nnodes, --rdzv-endpoint and --max-restarts go with --workers N"),
])
def test_bad_launch_setups_are_one_line_errors(data, tmp_path, capsys, extra, message):
    assert main(train_args(data, tmp_path / "exp", *extra)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "exp").exists()


def test_rendezvous_timeout_is_one_line_error(data, tmp_path):
    """--nnodes 2 but only one machine starts: the rendezvous gives up after --rdzv-timeout."""
    port = free_port()
    r = run_asr(train_args(data, tmp_path / "exp", "--workers", "1", "--nnodes", "2", "--rdzv-endpoint",
                           f"127.0.0.1:{port}", "--rdzv-timeout", "3"))
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert err[-1].startswith("asr train: error: rendezvous at 127.0.0.1:") and "not all 2 nodes joined" in err[-1], err


def _hogwild_worker(rank: int, store: str, out: str) -> None:
    import json
    from types import SimpleNamespace

    import torch
    import torch.distributed as dist

    from asr.train.asgd import HogwildUpdate
    from asr.train.config import TrainingConfig
    from asr.train.distributed import DistContext
    from asr.train.schedule import make_optimizer
    from asr.train.checkpoint import Position

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    ctx = DistContext(rank=rank, world_size=2, local_world_size=2)
    torch.manual_seed(rank)  # different initial values: the shared ones must win
    model = torch.nn.Linear(3, 2)
    cfg = TrainingConfig.from_dict({"optimizer": "adam", "lr": 0.1})
    trainer = SimpleNamespace(dist=ctx, model=model, optimizer=make_optimizer(model.parameters(), cfg), cfg=cfg,
                              position=Position(update=4))
    rule = HogwildUpdate(trainer)
    before = model.weight.detach().clone()
    ctx.barrier()  # both have read the shared values
    if rank == 1:  # one update by worker 1 only
        rule.before_forward()
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        assert rule.apply(0.1)
    ctx.barrier()
    state = rule.optimizer.state[model.weight]
    json.dump({"before": before.tolist(), "after": model.weight.tolist(), "exp_avg": state["exp_avg"].tolist(),
               "step": float(state["step"]), "updates": rule.update_index(0)}, open(f"{out}.{rank}", "w"))
    ctx.barrier()
    dist.destroy_process_group()


def test_hogwild_workers_share_parameters_and_optimizer_state(tmp_path):
    """An update made by one worker is seen by the other: parameters, Adam moments and
    the global update count live in one shared-memory mapping."""
    import json

    import torch.multiprocessing as mp

    mp.spawn(_hogwild_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True)
    r0, r1 = (json.load(open(tmp_path / f"out.{r}")) for r in (0, 1))
    assert r0["before"] == r1["before"]  # rank 0's initial values, shared
    assert r0["after"] == r1["after"] != r0["before"]
    assert r0["exp_avg"] == r1["exp_avg"] and abs(r0["exp_avg"][0][0] - 0.1) < 1e-6  # (1 - beta1) * grad
    assert r0["step"] == r1["step"] == 1.0
    assert r0["updates"] == r1["updates"] == 2 * 4 + 1  # 4 steps done by each worker before, + 1
