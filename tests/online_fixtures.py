"""A tiny self-contained model dir that recognises *tones*, for the streaming tests.

Every pdf of the tiny lang/tree of ``graph_fixtures`` is given its own mel bin; a word
sequence is "spoken" by playing, for each frame of its pdf sequence (``target_pdfs``),
a sine at the centre frequency of that pdf's bin, and silence (faint noise) for the
silence phone. The network is a one-hidden-layer DNN set by hand: speech pdf p scores
the log energy of its bin, silence pdfs a constant threshold, so recognising the audio
gives back the words -- through real fbank, CMVN-free features, HCLG and the decoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graph_fixtures import ARPA, make_lang, make_tree_dir, target_pdfs

RATE = 16000
BINS = 80
FRAMES_PER_STATE = 6


def mel_centres(num_bins: int = BINS, low: float = 20.0, high: float = RATE / 2) -> np.ndarray:
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    pts = np.linspace(mel(low), mel(high), num_bins + 2)
    return 700.0 * (np.exp(pts / 1127.0) - 1.0)[1:-1]


def make_tone_model(root: Path) -> dict:
    """Build ROOT/model (model dir with graph); returns a dict with the pieces the tests need."""
    import torch

    from asr.graph.mkgraph import make_graph
    from asr.hmm.transition_model import TransitionModel
    from asr.features.fbank import FbankComputer
    from asr.nnet.model_dir import ModelDir, save_model_dir
    from asr.nnet.registry import build_model

    root = Path(root)
    lang = make_lang(root)
    (root / "lm.arpa").write_text(ARPA)
    td = make_tree_dir(root, lang, triphone=False)
    tm = TransitionModel.read(td / "final.mdl")
    P = tm.num_pdfs
    sil_phones = {int(i) for i in (lang / "phones" / "silence.int").read_text().split()}
    sil_pdfs = sorted({int(tm.tid2pdf[t]) for t in range(1, tm.num_transition_ids + 1) if tm.tid2phone[t] in sil_phones})
    speech = [p for p in range(P) if p not in sil_pdfs]
    # bins from 24 upwards, two apart (the low mel bins are narrower than the FFT resolution)
    pdf_bin = {p: 24 + 2 * i for i, p in enumerate(speech)}
    assert max(pdf_bin.values()) < BINS
    md = root / "model"
    cfg = {"family": "dnn", "splice": 0, "hidden_dim": BINS, "num_layers": 1, "activation": "relu"}
    net = build_model(cfg, BINS, P)
    with torch.no_grad():
        net.hidden[0].weight.copy_(torch.eye(BINS))
        net.hidden[0].bias.fill_(30.0)  # log energies + 30 > 0 for the ReLU
        w = torch.zeros(P, BINS)
        b = torch.zeros(P)
        for p, k in pdf_bin.items():
            w[p, k] = 1.0
            b[p] = -30.0
        for p in sil_pdfs:
            b[p] = 14.0  # threshold between a tone bin (~21) and silence (<= 12) in log energy
        net.output.weight.copy_(3.0 * w)  # sharp enough that the tiny LM cannot override the tones
        net.output.bias.copy_(3.0 * b)
    save_model_dir(md, net, cfg, BINS, P, output_delay=0, cmvn="none")
    np.save(md / "log_priors.npy", np.full(P, -np.log(P), np.float32))
    make_graph(lang, td, root / "lm.arpa", root / "graph")
    fbank = FbankComputer(None, overrides={"num-mel-bins": BINS, "sample-frequency": RATE}).all_options
    ModelDir.pack(md, md, td, lang, fbank, graph_dir=root / "graph")
    return {"model_dir": md, "lang": lang, "tree_dir": td, "pdf_bin": pdf_bin, "sil_pdfs": sil_pdfs,
            "centres": mel_centres()}


def tone_audio(fx: dict, words: list[str], lead_silence: float = 0.3, tail_silence: float = 0.3,
               seed: int = 0) -> np.ndarray:
    """Float samples in [-1, 1]: ``words`` as tones, with silence before and after."""
    pdfs = target_pdfs(fx["lang"], fx["tree_dir"], words, frames_per_state=FRAMES_PER_STATE, silence=True)
    hop = RATE // 100
    rng = np.random.default_rng(seed)
    freq = np.array([fx["centres"][fx["pdf_bin"][p]] if p in fx["pdf_bin"] else 0.0 for p in pdfs])
    f = np.repeat(freq, hop)
    phase = 2 * np.pi * np.cumsum(f) / RATE
    env = np.convolve((f > 0).astype(float), np.hanning(241) / np.hanning(241).sum(), mode="same")  # 15 ms fades
    x = 0.3 * env * np.sin(phase)
    body = x + 1e-4 * rng.standard_normal(len(x))
    lead = 1e-4 * rng.standard_normal(int(lead_silence * RATE))
    tail = 1e-4 * rng.standard_normal(int(tail_silence * RATE))
    return np.concatenate([lead, body, tail]).astype(np.float32)
