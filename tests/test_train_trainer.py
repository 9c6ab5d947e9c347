import csv
import pytest
import yaml

import train_fixtures
from asr.cli import main

NUM_PDFS = 6
DIM = 5


def make_data(root, name, n_utts, seed, nan=False):
    return train_fixtures.make_data(root, name, n_utts, seed, NUM_PDFS, DIM, nan=nan)


def write_config(path, family="lstmp", **training):
    model = {"lstmp": {"family": "lstmp", "num_layers": 1, "cell_dim": 16, "proj_dim": 8},
             "dnn": {"family": "dnn", "splice": 2, "hidden_dim": 16, "num_layers": 1}}[family]
    t = {"optimizer": "adam", "lr": 0.01, "epochs": 2, "streams": 3, "chunk": 7, "output_delay": 2,
         "seed": 3, "cmvn": "none", "schedule": {"type": "warmup_cosine", "warmup_updates": 3}}
    t.update(training)
    path.write_text(yaml.safe_dump({"model": model, "training": t}))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    tr, tr_ali = make_data(root, "train", 16, 1)
    dv, dv_ali = make_data(root, "dev", 5, 2)
    return root, tr, tr_ali, dv, dv_ali


def train_args(cfg, data, out, *extra):
    root, tr, tr_ali, dv, dv_ali = data
    return ["train", "--config", str(cfg), "--feats", str(tr), "--ali", str(tr_ali), "--dev-feats", str(dv),
            "--dev-ali", str(dv_ali), "--out", str(out), "--num-pdfs", str(NUM_PDFS), "--no-progress", "--num-threads", "1", *extra]


def losses(exp):
    with open(exp / "steps.csv") as f:
        return [(r["update"], r["loss"]) for r in csv.DictReader(f)]


def test_cli_train_produces_model_dir_and_plot(data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", epochs=2, lr=0.03)
    exp = tmp_path / "exp"
    assert main(train_args(cfg, data, exp)) == 0
    assert "best-epoch" in capsys.readouterr().out
    for f in ("final/model.safetensors", "final/model.yaml", "training_curves.png", "log.csv", "checkpoint.pt"):
        assert (exp / f).is_file(), f
    assert (exp / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(open(exp / "log.csv")))
    assert len(rows) == 2
    assert float(rows[-1]["dev_acc"]) > 0.6  # separable toy classes
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    meta = yaml.safe_load((exp / "final/model.yaml").read_text())
    assert meta["num_inputs"] == DIM and meta["num_pdfs"] == NUM_PDFS and meta["output_delay"] == 2
    best = max(rows, key=lambda r: float(r["dev_acc"]))
    assert meta["training"]["epoch"] == int(best["epoch"])
    # the saved model reproduces the dev accuracy through the inference API
    from asr.features.reader import FeatureReader
    from asr.io.int_ark import read_int_ark
    from asr.nnet.inference import log_posteriors
    from asr.nnet.model_dir import load_acoustic_model

    model, meta = load_acoustic_model(exp / "final")
    reader = FeatureReader(data[3], cmvn="none")
    ali = read_int_ark(data[4])
    utts = reader.utt_ids
    post = log_posteriors(model, [reader[u] for u in utts], meta["output_delay"])
    correct = sum(int((p.argmax(1) == ali[u]).sum()) for p, u in zip(post, utts))
    frames = sum(len(ali[u]) for u in utts)
    assert abs(correct / frames - float(best["dev_acc"])) < 1e-4
    # a second run into the same EXP without --resume refuses
    assert main(train_args(cfg, data, exp)) == 1


@pytest.mark.parametrize("family", ["lstmp", "dnn"])
def test_resume_reproduces_loss_sequence(data, tmp_path, family):
    cfg = write_config(tmp_path / "c.yaml", family, checkpoint_every=4)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(train_args(cfg, data, full)) == 0
    n_updates = len(losses(full))
    assert main(train_args(cfg, data, part, "--max-updates", "5")) == 0  # stops mid-epoch 1
    assert len(losses(part)) == 5
    assert main(train_args(cfg, data, part, "--resume", "--max-updates", str(n_updates // 2 + 3))) == 0  # epoch 2
    assert main(train_args(cfg, data, part, "--resume")) == 0
    assert losses(part) == losses(full)
    assert (part / "log.csv").read_text().splitlines()[1].split(",")[:8] == \
        (full / "log.csv").read_text().splitlines()[1].split(",")[:8]


def test_nan_loss_aborts_after_patience(tmp_path, capsys, caplog):
    tr, tr_ali = make_data(tmp_path, "bad", 6, 1, nan=True)
    cfg = write_config(tmp_path / "c.yaml", nan_patience=3)
    rc = main(["train", "--config", str(cfg), "--feats", str(tr), "--ali", str(tr_ali), "--out", str(tmp_path / "exp"),
               "--no-progress"])
    assert rc == 1
    assert "3 non-finite losses in a row" in capsys.readouterr().err
    assert caplog.text.count("non-finite loss or gradient; step skipped") == 3


def test_train_rejects_mismatched_alignments(data, tmp_path, capsys):
    root, tr, tr_ali, dv, dv_ali = data
    cfg = write_config(tmp_path / "c.yaml")
    rc = main(["train", "--config", str(cfg), "--feats", str(tr), "--ali", str(dv_ali), "--out", str(tmp_path / "exp")])
    assert rc == 1 and "no utterance has both features and a matching alignment" in capsys.readouterr().err


def test_divergence_guard_exploding_loss(data, tmp_path, capsys):
    """lr 1e6: the loss grows by orders of magnitude; one-line error, nothing finished left."""
    cfg = write_config(tmp_path / "c.yaml", lr=1e6, epochs=3, schedule={"type": "constant"})
    exp = tmp_path / "exp"
    rc = main(train_args(cfg, data, exp))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "training diverged: loss" in err[0], err
    assert not (exp / "final").exists()


def test_chance_accuracy_fails_without_final(data, tmp_path, capsys):
    """A model that learned nothing (near-zero weights, lr tiny: one class everywhere) ends
    with an error and no final/."""
    cfg = write_config(tmp_path / "c.yaml", lr=1e-9, epochs=1, schedule={"type": "constant"}, optimizer="sgd")
    c = yaml.safe_load(cfg.read_text())
    c["model"]["init_scale"] = 1e-6
    cfg.write_text(yaml.safe_dump(c))
    exp = tmp_path / "exp"
    rc = main(train_args(cfg, data, exp))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "the model did not learn" in err[0] and "chance level" in err[0], err
    assert not (exp / "final").exists() and (exp / "log.csv").is_file()


def test_resume_rejects_truncated_or_foreign_checkpoint(data, tmp_path, capsys):
    import argparse

    import torch

    cfg = write_config(tmp_path / "c.yaml", epochs=1)
    exp = tmp_path / "exp"
    assert main(train_args(cfg, data, exp, "--max-updates", "2")) == 0
    ckpt = exp / "checkpoint.pt"
    good = ckpt.read_bytes()
    capsys.readouterr()
    cases = [(good[: len(good) // 2], "truncated or corrupt checkpoint"),
             (b"not a checkpoint\n", "not an asr training checkpoint")]
    buf = tmp_path / "foreign.pt"
    torch.save(argparse.Namespace(a=1), buf)  # a pickle with an arbitrary class
    cases.append((buf.read_bytes(), "not an asr training checkpoint"))
    torch.save({"weights": torch.zeros(2)}, buf)  # tensors, but not ours
    cases.append((buf.read_bytes(), "not an asr training checkpoint (missing model"))
    for content, message in cases:
        ckpt.write_bytes(content)
        assert main(train_args(cfg, data, exp, "--resume")) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(ckpt) in err[0] and message in err[0], err
        assert "weights_only" not in err[0] and "Traceback" not in err[0]


def test_phone_accuracy_from_transition_model(tmp_path):
    """A frame in the wrong pdf of the right phone is a pdf error but a phone hit."""
    import numpy as np
    import torch

    from asr.train.phones import PhoneAccuracy

    # pdfs 0, 1 belong to phone 1 (and its position variant 2); pdf 2 to phone 3
    m = np.zeros((3, 4), bool)
    m[0, [1, 2]] = m[1, [1, 2]] = True
    m[2, 3] = True
    acc = PhoneAccuracy(m)
    assert acc.correct(torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])) == 2


def test_default_threads_do_not_oversubscribe(monkeypatch):
    import os

    import torch

    from asr.train.commands import _set_threads

    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(cores))
        _set_threads(None, child=True)
        assert torch.get_num_threads() == 1
        _set_threads(3, child=True)  # --num-threads wins
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_cli_phone_accuracy_next_to_pdf_accuracy(tmp_path):
    """--phone-map MDL: log.csv gets train/dev phone accuracy (never below pdf accuracy)."""
    from hmm_test_helpers import synth_corpus

    from asr.hmm.transition_model import TransitionModel
    from asr.io.int_ark import read_int_ark, write_int_ark

    _, data, ali, _ = synth_corpus(tmp_path, n_utts=12)
    tm = TransitionModel.read(ali / "final.mdl")
    pdfs = {u: tm.tid2pdf[t] for u, t in read_int_ark(ali / "ali.tid.ark").items()}
    write_int_ark(ali / "pdf.ark", sorted(pdfs.items()))
    (ali / "tree").write_bytes(b"the tree of these pdfs")  # a tree beside the alignments: its hash is recorded
    cfg = write_config(tmp_path / "c.yaml", epochs=1, chance_margin=None)
    exp = tmp_path / "exp"
    assert main(["train", "--config", str(cfg), "--feats", str(data), "--ali", str(ali / "pdf.ark"),
                 "--dev-feats", str(data), "--dev-ali", str(ali / "pdf.ark"), "--num-pdfs", str(tm.num_pdfs),
                 "--phone-map", str(ali), "--out", str(exp), "--no-progress", "--num-threads", "1"]) == 0
    row = list(csv.DictReader(open(exp / "log.csv")))[0]
    assert float(row["dev_phone_acc"]) >= float(row["dev_acc"]) and float(row["train_phone_acc"]) >= float(row["train_acc"])
    training = yaml.safe_load((exp / "final" / "model.yaml").read_text())["training"]
    assert training["dev_phone_accuracy"] == pytest.approx(float(row["dev_phone_acc"]), abs=1e-5)
    from asr.io.fingerprint import file_hash

    assert training["alignment_tree"] == file_hash(ali / "tree")


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("asr train: error: "), err
    return err[0]


def test_resume_refuses_other_inputs_and_keeps_the_run(data, tmp_path, capsys, caplog):
    """--resume with another training config, other alignments or another dev set: one line
    naming what differs; the checkpoint, config.yaml and steps are left as they were."""
    import numpy as np

    from asr.io.int_ark import read_int_ark, write_int_ark

    root, tr, tr_ali, dv, dv_ali = data
    cfg = write_config(tmp_path / "c.yaml", epochs=1)
    exp = tmp_path / "exp"
    assert main(train_args(cfg, data, exp, "--max-updates", "2")) == 0
    kept = {f: (exp / f).read_bytes() for f in ("checkpoint.pt", "config.yaml", "steps.csv")}
    other_ali = tmp_path / "other.ali"  # the same utterances and pdfs, other states (another tree's)
    write_int_ark(other_ali, [(u, (NUM_PDFS - 1 - a).astype(np.int32)) for u, a in read_int_ark(tr_ali).items()])
    base = ["train", "--feats", str(tr), "--out", str(exp), "--num-pdfs", str(NUM_PDFS), "--no-progress",
            "--num-threads", "1", "--resume"]
    cases = [
        (["--config", str(write_config(tmp_path / "u.yaml", epochs=1, cmvn="utterance")), "--ali", str(tr_ali),
          "--dev-feats", str(dv), "--dev-ali", str(dv_ali)],
         "the checkpoint was trained with training.cmvn=none, this run has utterance"),
        (["--config", str(write_config(tmp_path / "l.yaml", epochs=1, lr=0.02)), "--ali", str(tr_ali),
          "--dev-feats", str(dv), "--dev-ali", str(dv_ali)],
         "the checkpoint was trained with training.lr=0.01, this run has 0.02"),
        (["--config", str(cfg), "--ali", str(other_ali), "--dev-feats", str(dv), "--dev-ali", str(dv_ali)],
         f"the checkpoint was trained with another --ali than {other_ali}"),
        (["--config", str(cfg), "--ali", str(tr_ali)], "the checkpoint was trained with --dev-ali, this run has none"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 1
        line = _one_error_line(capsys)
        assert f"{exp}: cannot resume: {message}" in line and "start afresh without --resume" in line, line
        assert {f: (exp / f).read_bytes() for f in kept} == kept
    # what only says how long or how fast may change: more epochs, checkpoints, prefetch
    longer = write_config(tmp_path / "e.yaml", epochs=2, checkpoint_every=3, prefetch=2)
    assert main(train_args(longer, data, exp, "--resume")) == 0
    assert len(list(csv.DictReader(open(exp / "log.csv")))) == 2
    assert yaml.safe_load((exp / "config.yaml").read_text())["training"]["epochs"] == 2
    # --restart-if-changed (a recipe re-run): another input starts the run afresh instead
    exp2 = tmp_path / "exp2"
    assert main(train_args(cfg, data, exp2, "--max-updates", "2")) == 0
    lr = write_config(tmp_path / "l2.yaml", epochs=1, lr=0.02)
    assert main(train_args(lr, data, exp2, "--resume", "--restart-if-changed")) == 0
    assert "training.lr=0.01, this run has 0.02: starting afresh" in caplog.text
    assert yaml.safe_load((exp2 / "config.yaml").read_text())["training"]["lr"] == 0.02
    assert len(list(csv.DictReader(open(exp2 / "log.csv")))) == 1 and (exp2 / "final").is_dir()


def test_resume_of_a_checkpoint_without_record_warns(data, tmp_path, caplog):
    """A checkpoint of an older asr (no record of its inputs) still resumes, with a warning."""
    import torch

    cfg = write_config(tmp_path / "c.yaml", epochs=1)
    exp = tmp_path / "exp"
    assert main(train_args(cfg, data, exp, "--max-updates", "2")) == 0
    ck = torch.load(exp / "checkpoint.pt", weights_only=True)
    assert ck["record"]["training.cmvn"] == "none" and "--ali" in ck["record"]
    del ck["record"]
    torch.save(ck, exp / "checkpoint.pt")
    assert main(train_args(cfg, data, exp, "--resume")) == 0
    assert "records only its model config (written by an older asr)" in caplog.text
    assert (exp / "final" / "model.yaml").is_file()


def test_model_dir_records_the_training_features_options(tmp_path, capsys):
    """final/model.yaml records the --feats dir's fbank.conf (training.fbank); --dev-feats
    computed with other options is a one-line error."""
    tr, tr_ali = make_data(tmp_path, "train", 8, 1)
    dv, dv_ali = make_data(tmp_path, "dev", 3, 2)
    (tr / "fbank.conf").write_text("--num-mel-bins=5\n--low-freq=20\n")
    (dv / "fbank.conf").write_text("--num-mel-bins=5\n--low-freq=300\n")
    cfg = write_config(tmp_path / "c.yaml", epochs=1, lr=0.03)
    args = ["train", "--config", str(cfg), "--feats", str(tr), "--ali", str(tr_ali), "--dev-feats", str(dv),
            "--dev-ali", str(dv_ali), "--out", str(tmp_path / "exp"), "--no-progress", "--num-threads", "1"]
    assert main(args) == 1
    line = _one_error_line(capsys)
    assert f"{dv / 'fbank.conf'} differs from the training features' {tr / 'fbank.conf'}: low-freq 300 vs 20" in line
    assert not (tmp_path / "exp").exists()
    (dv / "fbank.conf").write_text("--num-mel-bins=5\n--low-freq=20\n--dither=0\n")  # dither may differ
    assert main(args) == 0
    meta = yaml.safe_load((tmp_path / "exp" / "final" / "model.yaml").read_text())
    assert meta["training"]["fbank"]["low-freq"] == "20" and meta["training"]["fbank"]["num-mel-bins"] == "5"


def test_train_refuses_dev_alignments_of_another_tree_and_other_num_pdfs(data, tmp_path, capsys):
    import shutil

    root, tr, tr_ali, dv, dv_ali = data
    a, b = tmp_path / "ali_train", tmp_path / "ali_dev"
    for d, src, tree in ((a, tr_ali, "tree A"), (b, dv_ali, "tree B")):
        d.mkdir()
        shutil.copy(src, d / "ali.pdf.ark")
        (d / "tree").write_text(tree)
        (d / "num_pdfs").write_text(f"{NUM_PDFS}\n")
    cfg = write_config(tmp_path / "c.yaml", epochs=1)
    exp = tmp_path / "exp"

    def run(*extra):
        return main(["train", "--config", str(cfg), "--feats", str(tr), "--ali", str(a / "ali.pdf.ark"),
                     "--dev-feats", str(dv), "--dev-ali", str(b / "ali.pdf.ark"), "--out", str(exp), "--no-progress",
                     "--num-threads", "1", *extra])

    assert run() == 1
    line = _one_error_line(capsys)
    assert f"--dev-ali {b / 'ali.pdf.ark'}: alignments of another tree ({b / 'tree'}) than --ali's ({a / 'tree'})" \
        in line, line
    (b / "tree").write_text("tree A")
    assert run("--num-pdfs", str(NUM_PDFS + 1)) == 1
    line = _one_error_line(capsys)
    assert f"--num-pdfs {NUM_PDFS + 1} disagrees with {a / 'num_pdfs'} ({NUM_PDFS})" in line, line
    assert not exp.exists()
    assert run("--num-pdfs", str(NUM_PDFS), "--max-updates", "1") == 0


def test_no_finite_monitor_fails_without_final(data, tmp_path, capsys, monkeypatch):
    """Every epoch's dev accuracy NaN (no dev frame scored): nothing to choose the model by,
    so an error and no final/ (was: exit 0 and no final/)."""
    from asr.train.metrics import FrameMetrics
    from asr.train.trainer import Trainer

    monkeypatch.setattr(Trainer, "compute_validation_loss", lambda self: FrameMetrics())
    cfg = write_config(tmp_path / "c.yaml", epochs=1)
    exp = tmp_path / "exp"
    rc = main(train_args(cfg, data, exp))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "no epoch gave a dev frame accuracy to choose the model by" in err[0], err
    assert not (exp / "final").exists() and not (exp / ".best-model").exists()
