import subprocess

import numpy as np

from asr.io.int_ark import write_int_ark
from asr.train.priors import log_priors_from_counts


from asr.cli import main

_capsys = None


def run_asr(*args):
    rc = main(list(args))
    out, err = _capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


import pytest


@pytest.fixture(autouse=True)
def _cap(capsys):
    global _capsys
    _capsys = capsys


def test_priors_silence_factor_toy_count():
    # pdf 0 is silence: 27 frames → 10 after /2.7; pdf 1: 30, pdf 2: 60, pdf 3: unseen
    logp = log_priors_from_counts(np.array([27.0, 30, 60, 0]), [0], 2.7, floor=1e-3)
    p = np.exp(logp.astype(np.float64))
    raw = np.array([10 / 100, 30 / 100, 60 / 100, 1e-3])
    assert np.allclose(p, raw / raw.sum(), rtol=1e-6)
    assert logp.dtype == np.float32


def test_compute_priors_cli(tmp_path):
    ali = tmp_path / "ali.pdf.ark"
    write_int_ark(ali, [("a", np.array([0] * 20 + [1] * 30)), ("b", np.array([0] * 7 + [2] * 60))])
    (tmp_path / "sil").write_text("0\n")
    out = tmp_path / "priors.npy"
    r = run_asr("compute-priors", "--silence-pdfs", str(tmp_path / "sil"), "--num-pdfs", "4", str(ali), str(out))
    assert r.returncode == 0, r.stderr
    p = np.exp(np.load(out).astype(np.float64))
    floor = 1e-8
    raw = np.maximum(np.array([10, 30, 60, 0]) / 100, floor)
    assert np.allclose(p, raw / raw.sum())
    # default: silence_pdfs.int / num_pdfs beside the alignments (a tree dir), out into a model dir
    (tmp_path / "silence_pdfs.int").write_text("0\n")
    (tmp_path / "num_pdfs").write_text("4\n")
    r = run_asr("compute-priors", "--silence-factor", "1", str(ali), str(tmp_path / "p2.npy"))
    assert r.returncode == 0, r.stderr
    assert np.allclose(np.exp(np.load(tmp_path / "p2.npy")), np.maximum(np.array([27, 30, 60, 0]) / 117, floor) /
                       np.maximum(np.array([27, 30, 60, 0]) / 117, floor).sum(), rtol=1e-5)


def test_compute_priors_bad_input(tmp_path):
    ali = tmp_path / "ali.ark"
    write_int_ark(ali, [("a", np.array([0, 5]))])
    r = run_asr("compute-priors", "--num-pdfs", "4", str(ali), str(tmp_path / "p.npy"))
    assert r.returncode == 1 and "utterance a: pdf id 5 out of range" in r.stderr
    r = run_asr("compute-priors", str(ali), str(tmp_path / "p.npy"))
    assert r.returncode == 1 and "--num-pdfs" in r.stderr
