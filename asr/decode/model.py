"""A recognizer loaded from a self-contained model dir (docs/contracts.md):

network (model.safetensors + model.yaml), log_priors.npy, final.mdl (transition model),
graph/HCLG.fst + graph/words.txt, fbank.conf. ``Recognizer`` turns feature matrices
into scaled log-likelihoods (network forward) and those into words (search).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from asr.decode.decodable import scaled_loglikes
from asr.decode.search import Result, SearchConfig, Searcher
from asr.errors import DecodeError, GraphError, ModelError

log = logging.getLogger(__name__)


def read_words(path: str | os.PathLike) -> dict[int, str]:
    """Word symbol table as id -> word."""
    from asr.lang.lang_dir import read_symbol_table

    return {i: w for w, i in read_symbol_table(path).items()}


@dataclass
class Timing:
    forward_s: float = 0.0
    search_s: float = 0.0
    frames: int = 0
    utts: int = 0
    extra: dict = field(default_factory=dict)

    def add(self, other: "Timing") -> None:
        self.forward_s += other.forward_s
        self.search_s += other.search_s
        self.frames += other.frames
        self.utts += other.utts


class Recognizer:
    """Network + priors + transition model + graph of a model dir (``asr.nnet.model_dir``),
    ready to decode. ``graph_dir`` (default: the model dir's own graph) must have been built
    for the model's tree / transition model / phones (``GraphDir.check_model``); words come
    from the graph's words.txt."""

    def __init__(self, model_dir, graph_dir=None, cfg: SearchConfig | None = None, load_network: bool = True):
        from asr.graph.graph_dir import GraphDir
        from asr.graph.mkgraph import load_graph
        from asr.hmm.transition_model import TransitionModel
        from asr.nnet.model_dir import MDL, PHONES, TREE, ModelDir

        self.md = ModelDir.load(model_dir)
        self.model_dir = self.md.path
        if graph_dir is None:
            graph_dir = self.md.graph_dir
            if graph_dir is None:
                raise ModelError(f"{model_dir} has no graph/ (packed without --graph-dir): give --graph-dir")
        self.gdir = GraphDir.load(graph_dir)
        self.graph_dir = self.gdir.path
        self.cfg = cfg or SearchConfig()
        self.tm = TransitionModel.read(self.md.file(MDL))
        log.info(self.gdir.check_model(self.md.file(TREE), self.md.file(MDL), self.md.file(PHONES), tm=self.tm))
        self.log_priors = self.md.log_priors()
        if len(self.log_priors) != self.tm.num_pdfs:
            raise ModelError(f"{self.model_dir}/log_priors.npy has {len(self.log_priors)} pdfs, "
                             f"final.mdl {self.tm.num_pdfs}")
        self.words = read_words(self.gdir.words)
        try:
            self.graph = load_graph(self.gdir.hclg, self.tm.tid2pdf)  # input labels pdf + 1
        except GraphError as e:
            raise ModelError(f"{e} (model: {self.md.file(MDL)})") from None
        self.config = self.md.config
        self.model = None
        if load_network:
            from asr.nnet.model_dir import load_acoustic_model

            self.model, _ = load_acoustic_model(self.model_dir)
        self.searcher = Searcher(self.graph, self.cfg)

    @property
    def cmvn_mode(self) -> str:
        return self.md.cmvn

    def forward(self, feats_list: list[np.ndarray]) -> list[np.ndarray]:
        """Scaled log-likelihoods [T, num_pdfs] for each utterance's (normalised) features."""
        from asr.decode.decodable import network_log_posteriors

        if self.model is None:
            raise DecodeError("recognizer loaded without a network")
        posts = network_log_posteriors(self.model, self.config, feats_list)
        return [scaled_loglikes(p, self.log_priors, self.cfg.acoustic_scale) for p in posts]

    def search(self, loglik: np.ndarray, lattice: bool = False) -> Result:
        if loglik.shape[1] < self.tm.num_pdfs:
            raise DecodeError(f"acoustic matrix has {loglik.shape[1]} pdfs, the transition model {self.tm.num_pdfs}")
        if lattice:
            return self.searcher.lattice(loglik)
        return self.searcher.best(loglik)

    def to_words(self, ids: list[int]) -> list[str]:
        try:
            return [self.words[i] for i in ids]
        except KeyError as e:
            raise DecodeError(f"word id {e} not in {self.graph_dir}/words.txt") from None

    def recognize(self, feats_list: list[np.ndarray], lattice: bool = False) -> tuple[list[Result], Timing]:
        t = Timing()
        t0 = time.perf_counter()
        ll = self.forward(feats_list)
        t1 = time.perf_counter()
        res = [self.search(m, lattice) for m in ll]
        t.forward_s, t.search_s = t1 - t0, time.perf_counter() - t1
        t.frames = sum(len(m) for m in ll)
        t.utts = len(ll)
        return res, t
