import subprocess

import numpy as np

from asr.io.int_ark import write_int_ark
from asr.train.priors import UNSEEN_LOG_PRIOR, log_priors_from_counts


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
    p = np.exp(logp[:3].astype(np.float64))
    assert np.allclose(p, [0.1, 0.3, 0.6], rtol=1e-6)
    assert logp[3] == UNSEEN_LOG_PRIOR  # unseen: disabled in decoding, not boosted by a tiny prior
    assert logp.dtype == np.float32
    # the floor applies to rare but seen pdfs
    logp = log_priors_from_counts(np.array([1.0, 1e9]), [], floor=1e-3)
    assert np.allclose(np.exp(logp.astype(np.float64)), np.array([1e-3, 1.0]) / 1.001, rtol=1e-6)


def test_compute_priors_cli(tmp_path):
    ali = tmp_path / "ali.pdf.ark"
    write_int_ark(ali, [("a", np.array([0] * 20 + [1] * 30)), ("b", np.array([0] * 7 + [2] * 60))])
    (tmp_path / "sil").write_text("0\n")
    out = tmp_path / "priors.npy"
    r = run_asr("compute-priors", "--silence-pdfs", str(tmp_path / "sil"), "--num-pdfs", "4", str(ali), str(out))
    assert r.returncode == 0, r.stderr
    logp = np.load(out).astype(np.float64)
    assert np.allclose(np.exp(logp[:3]), [0.1, 0.3, 0.6]) and logp[3] == UNSEEN_LOG_PRIOR
    # default: silence_pdfs.int / num_pdfs beside the alignments (a tree dir), out into a model dir
    (tmp_path / "silence_pdfs.int").write_text("0\n")
    (tmp_path / "num_pdfs").write_text("4\n")
    r = run_asr("compute-priors", "--silence-factor", "1", str(ali), str(tmp_path / "p2.npy"))
    assert r.returncode == 0, r.stderr
    assert np.allclose(np.exp(np.load(tmp_path / "p2.npy")[:3]), np.array([27, 30, 60]) / 117, rtol=1e-5)


def test_compute_priors_bad_input(tmp_path):
    ali = tmp_path / "ali.ark"
    write_int_ark(ali, [("a", np.array([0, 5]))])
    r = run_asr("compute-priors", "--num-pdfs", "4", str(ali), str(tmp_path / "p.npy"))
    assert r.returncode == 1 and "utterance a: pdf id 5 out of range" in r.stderr
    r = run_asr("compute-priors", str(ali), str(tmp_path / "p.npy"))
    assert r.returncode == 1 and "--num-pdfs" in r.stderr
    # OUT naming an input (the alignments, the silence pdfs beside them): refused, the input kept
    (tmp_path / "silence_pdfs.int").write_text("0\n")
    before = ali.read_bytes()
    for out in (ali, tmp_path / "silence_pdfs.int"):
        r = run_asr("compute-priors", "--num-pdfs", "8", str(ali), str(out))
        assert r.returncode == 1 and "the output would overwrite the input" in r.stderr
    assert ali.read_bytes() == before and (tmp_path / "silence_pdfs.int").read_text() == "0\n"


def test_compute_priors_refuses_alignments_of_another_tree(tmp_path):
    """--model-dir of a network that records the tree of its training alignments: priors from
    alignments beside another tree would count other states (one-line error, nothing written)."""
    import hashlib

    import yaml

    ali = tmp_path / "ali.pdf.ark"
    write_int_ark(ali, [("a", np.array([0] * 20 + [1] * 30))])
    (tmp_path / "tree").write_text("tree B")
    net = tmp_path / "net"
    net.mkdir()
    for tree, rc in (("tree A", 1), ("tree B", 0)):
        cfg = {"model": {"family": "dnn"}, "num_inputs": 40, "num_pdfs": 4, "training": {"alignment_tree": hashlib.sha256(tree.encode()).hexdigest()}}
        (net / "model.yaml").write_text(yaml.safe_dump(cfg))
        r = run_asr("compute-priors", "--model-dir", str(net), str(ali))
        assert r.returncode == rc, r.stderr
        assert (net / "log_priors.npy").is_file() == (rc == 0)
        if rc:
            assert f"{ali}: alignments of another tree than the one {net} was trained on" in r.stderr


def test_compute_priors_refuses_num_pdfs_other_than_the_alignments(tmp_path):
    """--num-pdfs N against a num_pdfs file beside the alignments that says otherwise: one line."""
    ali = tmp_path / "ali.pdf.ark"
    write_int_ark(ali, [("a", np.array([0] * 20 + [1] * 30))])
    (tmp_path / "num_pdfs").write_text("4\n")
    r = run_asr("compute-priors", "--num-pdfs", "5", str(ali), str(tmp_path / "p.npy"))
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(err) == 1, err
    assert f"--num-pdfs 5 disagrees with {tmp_path / 'num_pdfs'} (4)" in err[0]
    assert not (tmp_path / "p.npy").exists()
    assert run_asr("compute-priors", "--num-pdfs", "4", str(ali), str(tmp_path / "p.npy")).returncode == 0
