"""Search over HCLG with kaldi-decoder's C++ decoders.

- :func:`decode_best`: ``FasterDecoder`` (beam, max-active), 1-best only.
- :func:`decode_lattice`: ``LatticeSimpleDecoder`` (beam, lattice-beam; it has no
  max-active) then :func:`asr.lattice.word_lattice.word_lattice`; the 1-best is the word
  lattice's best path at the decoding acoustic scale.

Both take the scaled pdf log-likelihood matrix [T, num_pdfs]. With a graph whose input
labels are transition-ids pass ``tid2pdf`` (one column per tid is made, as
``DecodableCtc`` reads ``matrix[t, label - 1]``); with a graph relabelled to pdf + 1 by
``asr.graph.mkgraph.load_graph(path, tid2pdf)`` (what ``Recognizer`` does) pass None and
the matrix is used as is -- same search, no [T, num_tids] copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from asr.decode.decodable import make_decodable
from asr.lattice.lattice_io import Lattice, best_path
from asr.errors import DecodeError

log = logging.getLogger(__name__)

BLOCK_FRAMES = 500  # frames per decodable of the 1-best search (500 x 15k transition-ids: 30 MB)


@dataclass
class SearchConfig:
    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 20  # Kaldi FasterDecoderOptions default
    lattice_beam: float = 8.0
    acoustic_scale: float = 0.1


@dataclass
class Result:
    words: list[int]
    graph_cost: float  # of the best path
    acoustic_cost: float  # scaled, as the decoder saw it
    reached_final: bool
    lattice: Lattice | None = None
    # the decoder's best path: one graph input label per frame (transition-ids on a graph
    # labelled with them, pdf + 1 on a relabelled one) and its words (for word times)
    alignment: np.ndarray | None = None
    path_words: list[int] | None = None
    # False when the word lattice exceeded the determinization limits and is only the
    # 1-best path (asr.lattice.word_lattice.word_lattice); the 1-best is the same
    lattice_full: bool = True


class Searcher:
    """Holds the graph and decoder objects; decode utterance after utterance."""

    def __init__(self, graph, cfg: SearchConfig):
        import kaldi_decoder

        self.graph = graph
        self.cfg = cfg
        self._fast = kaldi_decoder.FasterDecoder(
            graph, kaldi_decoder.FasterDecoderOptions(beam=cfg.beam, max_active=cfg.max_active,
                                                      min_active=min(cfg.min_active, cfg.max_active)))
        self._lat = None

    def best(self, loglik: np.ndarray, tid2pdf: np.ndarray | None = None) -> Result:
        import kaldifst

        if loglik.shape[0] == 0:
            return Result([], 0.0, 0.0, False)
        # block by block (as streaming does): with tid2pdf the decodable is a [T, num_tids]
        # copy, GBs for a file of minutes; same search as decode() over the whole matrix
        self._fast.init_decoding()
        for t in range(0, loglik.shape[0], BLOCK_FRAMES):
            self._fast.advance_decoding(make_decodable(loglik[t:t + BLOCK_FRAMES], tid2pdf, offset=t))
        reached = bool(self._fast.reached_final())
        ok, lat = self._fast.get_best_path(use_final_probs=True)
        if not ok:
            raise DecodeError("decoder found no path (graph and acoustic model do not match?)")
        ok, ali, words, w = kaldifst.get_linear_symbol_sequence(lat)
        return Result(list(words), float(w.value1), float(w.value2), reached,
                      alignment=np.asarray(ali, dtype=np.int32), path_words=list(words))

    def lattice(self, loglik: np.ndarray, tid2pdf: np.ndarray | None = None, with_alignment: bool = False) -> Result:
        import kaldi_decoder

        from asr.lattice.word_lattice import word_lattice

        if self._lat is None:
            self._lat = kaldi_decoder.LatticeSimpleDecoder(
                self.graph, kaldi_decoder.LatticeSimpleDecoderConfig(beam=self.cfg.beam,
                                                                     lattice_beam=self.cfg.lattice_beam))
        if loglik.shape[0] == 0:
            return Result([], 0.0, 0.0, False, word_lattice_empty())
        dec = make_decodable(loglik, tid2pdf)
        self._lat.decode(dec)
        ok, raw = self._lat.get_raw_lattice(use_final_probs=True)
        if not ok:
            raise DecodeError("lattice decoder produced no lattice")
        lat, full = word_lattice(raw, self.cfg.lattice_beam, self.cfg.acoustic_scale)
        bp = best_path(lat, lmwt=1.0 / self.cfg.acoustic_scale)
        if bp is None:
            raise DecodeError("empty word lattice")
        ali = words = None
        if with_alignment:
            import kaldifst

            ok, path = self._lat.get_best_path(use_final_probs=True)
            if ok:
                _, ali, words, _ = kaldifst.get_linear_symbol_sequence(path)
                ali, words = np.asarray(ali, dtype=np.int32), list(words)
        return Result([int(w) for w in bp.words], bp.graph, bp.acoustic * self.cfg.acoustic_scale, True, lat,
                      alignment=ali, path_words=words, lattice_full=full)


def word_lattice_empty() -> Lattice:
    z = np.zeros(0)
    return Lattice(z, z, z, z, z, z, z, -1)
