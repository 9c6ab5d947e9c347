"""The product world shared by test_bad_input.py and test_products.py: a lang dir, two trees
(monophone, triphone), their graphs, a packed model dir whose network reads the pdf off a
one-hot feature, a data dir with those features and one with wavs. Made once per session
(tests/conftest.py: the ``world`` fixture)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graph_fixtures import ARPA, make_lang, make_tree_dir, target_pdfs
from helpers_datadir import make_data_dir

UTTS = {"u1": ["CAT", "AT"], "u2": ["BAT", "TAB", "A"], "u3": ["A"]}
D = 40


@dataclass
class World:
    root: Path
    lang: Path
    mono: Path  # tree dir
    tri: Path  # another tree dir
    graph: Path  # graph of mono
    tri_graph: Path
    model: Path  # packed model dir (mono, with graph)
    feats: Path  # data dir with one-hot features
    wavs: Path  # data dir with wavs (make-fbank)
    lm: Path


def network(cfg_dir: Path, num_pdfs: int, eye: bool):
    import torch

    from asr.nnet.model_dir import save_model_dir
    from asr.nnet.registry import build_model

    cfg = {"family": "dnn", "splice": 0, "hidden_dim": D, "num_layers": 1, "activation": "relu"}
    net = build_model(cfg, D, num_pdfs)
    if eye:
        with torch.no_grad():
            net.hidden[0].weight.copy_(torch.eye(D))
            net.hidden[0].bias.zero_()
            net.output.weight.copy_(12.0 * torch.eye(D)[:num_pdfs])
            net.output.bias.zero_()
    save_model_dir(cfg_dir, net, cfg, D, num_pdfs, output_delay=0, cmvn="none")
    np.save(cfg_dir / "log_priors.npy", np.full(num_pdfs, -np.log(num_pdfs), np.float32))


def make_world(root: Path) -> World:
    import kaldiio

    from asr.features.fbank import FbankComputer
    from asr.graph.mkgraph import make_graph
    from asr.hmm.transition_model import TransitionModel
    from asr.nnet.model_dir import ModelDir

    lang = make_lang(root)
    lm = root / "lm.arpa"
    lm.write_text(ARPA)
    mono, tri = make_tree_dir(root, lang, triphone=False), make_tree_dir(root, lang, triphone=True)
    make_graph(lang, mono, lm, root / "graph")
    make_graph(lang, tri, lm, root / "tri_graph")
    P = TransitionModel.read(mono / "final.mdl").num_pdfs
    model = root / "model"
    network(model, P, eye=True)
    ModelDir.pack(model, model, mono, lang, FbankComputer(None).all_options, graph_dir=root / "graph")
    feats = root / "feats"
    feats.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{feats}/feats.ark,{feats}/feats.scp") as w:
        for u, words in UTTS.items():
            pdfs = target_pdfs(lang, mono, words, frames_per_state=3)
            f = np.zeros((len(pdfs), D), np.float32)
            f[np.arange(len(pdfs)), pdfs] = 1.0
            w(u, f)
    (feats / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in UTTS.items()))
    (feats / "utt2spk").write_text("".join(f"{u} {u}\n" for u in UTTS))
    (feats / "spk2utt").write_text("".join(f"{u} {u}\n" for u in UTTS))
    wavs = make_data_dir(root, speakers=("s1", "s2"), per_speaker=2, name="wavs")
    return World(root, lang, mono, tri, root / "graph", root / "tri_graph", model, feats, wavs, lm)


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def copy_wav_dir(w: World, tmp: Path) -> Path:
    """A copy of the wav data dir whose wav.scp points at copies of the wavs (safe to break)."""
    d = copy(w.wavs, tmp / "data")
    (tmp / "wav").mkdir()
    lines = []
    for line in (d / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        shutil.copy(path, tmp / "wav" / Path(path).name)
        lines.append(f"{utt} {tmp / 'wav' / Path(path).name}")
    (d / "wav.scp").write_text("\n".join(lines) + "\n")
    return d
