"""Several training processes when something goes wrong on one of them: a rank that cannot
read its data or was given other data than rank 0 (as on a machine with a missing or stale
copy), the rank the launcher's one-line error names, steps.csv of a resumed ASGD run, unreadable
utterances counted across a resume."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import test_train_distributed
from test_train_distributed import ROOT, asr_cmd, config, env, steps, train_args

data = test_train_distributed.data  # the fixture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="loopback gloo")

# `python -m odd_rank ARGS`: asr's CLI, but on rank $ODD_RANK --feats cannot be read (ODD=missing)
# or is another data dir ($ODD_FEATS), as on a machine whose copy of the data is missing or stale
ODD_RANK = '''
import os, sys
from asr.cli import main
from asr.errors import FeatureError
from asr.features import reader
argv = sys.argv[1:]
if os.environ.get("RANK") == os.environ["ODD_RANK"]:
    if os.environ["ODD"] == "missing":
        def missing(self, data_dir, *args, **kwargs):
            raise FeatureError(f"{data_dir}: no feats.scp on this machine")
        reader.FeatureReader.__init__ = missing
    else:
        argv[argv.index("--feats") + 1] = os.environ["ODD_FEATS"]
sys.exit(main(argv))
'''


def run_torchrun_odd_rank(data, tmp_path, odd, rank, cfg=None):
    (tmp_path / "odd_rank.py").write_text(ODD_RANK)
    feats = data["args"][data["args"].index("--feats") + 1]
    stale = tmp_path / "stale"
    shutil.copytree(feats, stale)
    lines = (stale / "feats.scp").read_text().splitlines(keepends=True)
    (stale / "feats.scp").write_text("".join(lines[:-1]))  # one utterance fewer
    e = env()
    e.update(PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]), ODD=odd, ODD_RANK=str(rank),
             ODD_FEATS=str(stale), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "odd_rank",
           *train_args(data, tmp_path / "exp", cfg=cfg)]
    # before the fix the ranks waited for each other until the 30-minute collective timeout
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=e)


@pytest.mark.parametrize("rank", [0, 1])
def test_data_error_on_one_rank_is_one_line_error(data, tmp_path, rank):
    """A rank whose data dir cannot be read: every rank stops at once, the error names it."""
    r = run_torchrun_odd_rank(data, tmp_path, "missing", rank)
    assert r.returncode != 0
    assert f"asr train: error: rank {rank}/2: " in r.stderr and "no feats.scp on this machine" in r.stderr
    assert not (tmp_path / "exp" / "final").exists()


def test_rank_with_other_data_is_refused(data, tmp_path):
    """A rank given other data than rank 0 (its schedule would differ): a one-line error."""
    r = run_torchrun_odd_rank(data, tmp_path, "stale", 1)
    assert r.returncode != 0
    assert "asr train: error: rank 1/2 was given another --feats than rank 0" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "exp" / "checkpoint.pt").exists()


def test_config_error_of_every_rank_is_one_line_error(data, tmp_path):
    """An error every rank meets building the trainer (torchrun, so not checked before the
    start): rank 0 prints it once, no rank waits for another."""
    r = run_torchrun_odd_rank(data, tmp_path, "none", -1, cfg=config(tmp_path / "c.yaml", streams=3))
    assert r.returncode != 0
    assert r.stderr.count("asr train: error: training.streams 3 is not divisible by the 2 processes") == 1


def test_launcher_error_names_the_rank_that_was_killed(monkeypatch):
    """Rank 1 killed (SIGKILL), rank 0 then stopped by the launcher (SIGTERM) within the same
    second: the one-line error names rank 1."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure
    import torch.distributed.run

    from asr.errors import TrainingError
    from asr.train.distributed import LaunchOptions, launch

    def failed(args):
        failures = {0: ProcessFailure(0, 100, -signal.SIGTERM, "/nonexistent"),
                    1: ProcessFailure(1, 101, -signal.SIGKILL, "/nonexistent")}
        for f in failures.values():
            f.timestamp = 1_700_000_000
        raise ChildFailedError("asr", failures)

    monkeypatch.setattr(torch.distributed.run, "run", failed)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with pytest.raises(TrainingError, match=r"first: rank 1, signal SIGKILL"):
        launch(LaunchOptions(workers=2), ["train"])


@pytest.mark.parametrize("text", [
    "eof (this error originated at tensorpipe/transport/shm/connection_impl.cc:259)",  # ASGD rpc, peer killed
    "pipe closed (this error originated at tensorpipe/core/pipe_impl.cc:356)",
    "[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:53125"])
def test_a_peer_gone_is_lost_contact(text):
    """What a rank's collective or RPC raises when another rank died reads "lost contact with
    the other ranks", not "unexpected RuntimeError ... (a bug ...)"."""
    from asr.train.commands import _lost_peer

    assert _lost_peer(RuntimeError(text))


def test_asgd_resume_keeps_steps_before_the_checkpoint(data, tmp_path):
    """steps.csv counts the updates of all ASGD workers: a resumed run keeps every row up to
    the checkpoint (it dropped those between update/N and update)."""
    out = tmp_path / "exp"
    for extra in (["--max-updates", "7"], ["--resume"]):
        r = subprocess.run(asr_cmd(train_args(data, out, "--workers", "2", "--mode", "asgd", *extra)),
                           capture_output=True, text=True, timeout=240, env=env())
        assert r.returncode == 0, r.stderr[-3000:]
    updates = [s[0] for s in steps(out)]
    assert updates == list(range(2, updates[-1] + 1, 2))


def test_unreadable_utterances_counted_once_per_epoch_across_resume(data, tmp_path):
    """An utterance that cannot be read is counted in its epoch's warning once (rank 0 logs
    it), also when the run stopped after reading it and resumed in the same epoch."""
    import numpy as np

    from asr.io.int_ark import read_int_ark
    from asr.train.data import epoch_order, make_schedule

    args = list(data["args"])
    src = Path(args[args.index("--feats") + 1])
    feats = tmp_path / "train"
    shutil.copytree(src, feats)
    alis = read_int_ark(args[args.index("--ali") + 1])
    utts = sorted(alis)
    broken = utts[5]
    scp = (feats / "feats.scp").read_text().splitlines()
    (feats / "feats.scp").write_text("".join(f"{broken} {feats / 'nothing.ark'}:7\n" if line.startswith(broken)
                                             else line + "\n" for line in scp))
    (feats / "utt2num_frames").write_text("".join(f"{u} {len(alis[u])}\n" for u in utts))
    args[args.index("--feats") + 1] = str(feats)
    # stop in epoch 2 right after the batch that reads the broken utterance first
    t = yaml.safe_load(data["cfg"].read_text())["training"]
    lengths = np.array([len(alis[u]) for u in utts])
    epoch = [make_schedule(lengths, t["streams"], t["chunk"], t["output_delay"], epoch_order(len(utts), t["seed"], e))
             for e in (0, 1)]
    first = np.flatnonzero((epoch[1].utt == utts.index(broken)).any(axis=1))[0]
    assert first + 1 < len(epoch[1])
    out = tmp_path / "exp"
    lines = []
    for extra in (["--max-updates", str(len(epoch[0]) + first + 1)], ["--resume"]):
        cmd = ["train", "--config", str(data["cfg"]), *args, "--out", str(out), "--workers", "2", *extra]
        r = subprocess.run(asr_cmd(cmd), capture_output=True, text=True, timeout=240, env=env())
        assert r.returncode == 0, r.stderr[-3000:]
        lines += [line.split("WARNING asr.train.trainer: ")[1] for line in r.stderr.splitlines()
                  if "could not be read" in line]
    assert lines == [f"epoch {e}: 1 utterance(s) could not be read and were skipped" for e in (1, 2, 3)]


def test_ranks_compare_their_arks_by_path_and_size_not_mtime(tmp_path):
    """The copies of a data dir on several machines have other mtimes, not other features:
    the inputs check across ranks ignores the arks' mtimes, not their paths or sizes."""
    from asr.io.fingerprint import feature_fingerprints
    from asr.train.trainer import _without_mtimes

    ark = tmp_path / "raw_fbank.1.ark"
    ark.write_bytes(b"x" * 100)
    (tmp_path / "feats.scp").write_text(f"u1 {ark}:8\n")
    here = {"--feats": feature_fingerprints(tmp_path), "model.cells": 8}
    os.utime(ark, ns=(1_000_000_000, 1_000_000_000))  # rsync without -t
    there = {"--feats": feature_fingerprints(tmp_path), "model.cells": 8}
    assert here != there and _without_mtimes(here) == _without_mtimes(there)
    ark.write_bytes(b"x" * 101)  # another ark
    assert _without_mtimes({"--feats": feature_fingerprints(tmp_path), "model.cells": 8}) != _without_mtimes(here)
