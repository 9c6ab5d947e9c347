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

    def __init__(self, model_dir, graph_dir=None, cfg: SearchConfig | None = None, load_network: bool = True,
                 word_times: bool = False):
        """``word_times``: keep the graph's transition-id input labels (instead of relabelling
        them to pdf + 1) so results carry the transition-id alignment that word times and
        CTMs need (asr.decode.ctm); the search is the same."""
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
        self.word_times = bool(word_times)
        try:
            if word_times and self.gdir.info is None:  # not relabelled: check the labels of a Kaldi graph here
                from asr.graph.fst_arrays import read_fst

                il = read_fst(self.gdir.hclg).ilabel
                if len(il) and int(il.max()) > self.tm.num_transition_ids:
                    raise GraphError(f"{self.gdir.hclg}: input label {int(il.max())} is not a transition-id of the "
                                     f"model ({self.tm.num_transition_ids} transition-ids): graph and model do not match")
            # input labels pdf + 1 (decodable reads the pdf matrix), or transition-ids for word times
            self.graph = load_graph(self.gdir.hclg, None if word_times else self.tm.tid2pdf)
        except GraphError as e:
            raise ModelError(f"{e} (model: {self.md.file(MDL)})") from None
        self.graph_tid2pdf = self.tm.tid2pdf if word_times else None
        self._phone_info = None
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
            return self.searcher.lattice(loglik, self.graph_tid2pdf, with_alignment=self.word_times)
        return self.searcher.best(loglik, self.graph_tid2pdf)

    @property
    def phone_info(self):
        """Word-boundary kinds and silence flags of the phones (asr.decode.ctm.PhoneInfo)."""
        if self._phone_info is None:
            from asr.decode.ctm import PhoneInfo

            self._phone_info = PhoneInfo.load(self.graph_dir, self.model_dir)
        return self._phone_info

    def result_word_times(self, res: Result):
        """``(times, confidences)`` of a result's best path: ``asr.decode.ctm.WordTime`` per
        word (frames) and word posteriors from its lattice (None without one). Needs a
        recognizer made with ``word_times=True``."""
        from asr.decode.ctm import align_words, word_confidences

        if not self.word_times or res.alignment is None:
            raise DecodeError("word times need the transition-id alignment (Recognizer(word_times=True))")
        times = align_words(res.alignment, res.path_words or [], self.tm, self.phone_info)
        conf = None
        if res.lattice is not None and times:
            conf = word_confidences(res.lattice, [t.word for t in times], self.cfg.acoustic_scale)
        return times, conf

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
