"""asr decode / asr transcribe end to end on a tiny model dir whose network is set by hand
(a one-layer DNN that reads the pdf off a one-hot feature), so the words are known."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from graph_fixtures import ARPA, make_lang, make_tree_dir, target_pdfs

UTTS = {"u1": ["CAT", "AT"], "u2": ["BAT", "TAB", "A"], "u3": ["A"], "u4": ["TAB", "CAT", "AT"]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import kaldiio
    import torch

    from asr.graph.mkgraph import make_graph
    from asr.hmm.transition_model import TransitionModel
    from asr.features.fbank import FbankComputer
    from asr.nnet.model_dir import ModelDir, save_model_dir
    from asr.nnet.registry import build_model

    root = tmp_path_factory.mktemp("dec")
    lang = make_lang(root)
    (root / "lm.arpa").write_text(ARPA)
    td = make_tree_dir(root, lang, triphone=False)
    tm = TransitionModel.read(td / "final.mdl")
    P, D = tm.num_pdfs, 40
    assert P <= D
    md = root / "model"
    cfg = {"family": "dnn", "splice": 0, "hidden_dim": D, "num_layers": 1, "activation": "relu"}
    net = build_model(cfg, D, P)
    with torch.no_grad():
        net.hidden[0].weight.copy_(torch.eye(D))
        net.hidden[0].bias.zero_()
        net.output.weight.copy_(12.0 * torch.eye(D)[:P])
        net.output.bias.zero_()
    save_model_dir(md, net, cfg, D, P, output_delay=0, cmvn="none")
    np.save(md / "log_priors.npy", np.full(P, -np.log(P), np.float32))
    make_graph(lang, td, root / "lm.arpa", root / "graph")
    ModelDir.pack(md, md, td, lang, FbankComputer(None).all_options, graph_dir=root / "graph")
    # data dir: one-hot features of the target pdf sequence
    data = root / "data"
    data.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u, words in UTTS.items():
            pdfs = target_pdfs(lang, td, words, frames_per_state=3)
            f = np.zeros((len(pdfs), D), np.float32)
            f[np.arange(len(pdfs)), pdfs] = 1.0
            w(u, f)
    (data / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in UTTS.items()).replace("u4 TAB", "u4 BAT"))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in UTTS))
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u in UTTS))
    return root, md, data


def run(*args):
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True)


def run_inproc(capsys, *args):
    from asr.cli import main

    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


@pytest.mark.parametrize("nj,lattices", [(1, False), (2, True)])
def test_decode_data_dir(model, tmp_path, capsys, nj, lattices):
    from asr.lattice.lattice_io import best_path, read_lattices

    root, md, data = model
    out = tmp_path / "decode"
    args = ["decode", "--no-progress", "--model-dir", md, "--nj", nj, data, out] + (["--lattices"] if lattices else [])
    r = run_inproc(capsys, *args)
    assert r.returncode == 0, r.stderr
    hyp = dict(line.split(maxsplit=1) for line in (out / "hyp.txt").read_text().splitlines())
    assert {u: h.split() for u, h in hyp.items()} == UTTS
    info = json.loads((out / "decode.json").read_text())
    assert info["utterances"] == 4 and info["frames"] > 0 and info["audio_seconds"] == pytest.approx(info["frames"] / 100)
    assert info["forward_seconds"] >= 0 and info["search_seconds"] > 0 and info["rtf"] > 0
    # one substitution (u4 reference says BAT) out of 9 words
    assert (out / "wer").read_text().startswith("%WER 11.11 [ 1 / 9, 0 ins, 0 del, 1 sub ]")
    assert "%WER 11.11" in r.stdout
    if lattices:
        assert sorted(p.name for p in out.glob("lat.*.gz")) == ["lat.1.gz", "lat.2.gz"]
        lats = {}
        for j in (1, 2):
            lats.update(dict(read_lattices(out / f"lat.{j}.gz")))
        words = {int(v): k for k, v in (ln.split() for ln in (md / "words.txt").read_text().splitlines())}
        for u, w in UTTS.items():
            bp = best_path(lats[u], lmwt=10.0)
            assert [words[i] for i in bp.words] == w
        with gzip.open(out / "lat.1.gz", "rt") as f:
            assert f.readline().strip() in UTTS
    else:
        assert not list(out.glob("lat.*.gz"))


def test_decode_errors(model, tmp_path, capsys):
    root, md, data = model
    r = run_inproc(capsys, "decode", "--model-dir", tmp_path / "missing", data, tmp_path / "d")
    assert r.returncode == 1 and "missing" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_inproc(capsys, "decode", "--model-dir", md, tmp_path / "nodata", tmp_path / "d")
    assert r.returncode == 1 and "feats.scp" in r.stderr


def test_transcribe_any_rate_and_corrupt_file(model, tmp_path, capsys):
    import soundfile as sf

    root, md, data = model
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((44100, 2))).astype(np.float32)
    sf.write(tmp_path / "stereo44k.wav", x, 44100)
    sf.write(tmp_path / "mono8k.flac", x[:8000, 0], 8000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    r = run_inproc(capsys, "transcribe", "--model-dir", md, tmp_path / "stereo44k.wav", tmp_path / "broken.wav", tmp_path / "mono8k.flac")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["stereo44k", "mono8k"]
    vocab = set((md / "words.txt").read_text().split()[::2])
    assert all(set(ln.split()[1:]) <= vocab for ln in lines)
    err = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("asr transcribe:")]
    assert len(err) == 2 and "broken" in err[0] and err[0].startswith("asr transcribe: error:")
    assert err[1] == "asr transcribe: 2 of 3 files transcribed, 1 failed"


def test_decode_lattices_over_the_limits_keep_the_one_best(model, tmp_path, capsys, monkeypatch, caplog):
    """Utterances whose word lattice is over the determinization effort cap keep their
    1-best (hyp.txt unchanged), get a one-path lattice, a warning naming them, and are
    counted in decode.json."""
    import asr.lattice.word_lattice as wl

    root, md, data = model
    monkeypatch.setattr(wl, "MAX_WORK", 1)
    out = tmp_path / "decode"
    with caplog.at_level("WARNING"):
        r = run_inproc(capsys, "decode", "--no-progress", "--model-dir", md, "--nj", 1, "--lattices", data, out)
    assert r.returncode == 0, r.stderr
    hyp = dict(line.split(maxsplit=1) for line in (out / "hyp.txt").read_text().splitlines())
    assert {u: h.split() for u, h in hyp.items()} == UTTS
    info = json.loads((out / "decode.json").read_text())
    assert info["lattice_fallbacks"] == 4
    warned = [r.getMessage() for r in caplog.records if "1-best" in r.getMessage()]
    assert sorted(m.split(":")[0] for m in warned) == sorted(UTTS)
