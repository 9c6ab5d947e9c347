"""Streaming recognizer: audio chunks in, partial hypotheses and endpointed finals out.

``OnlineModel`` holds what all streams share, read-only (network, priors, transition
model, HCLG with transition-id labels, words, phone info); ``OnlineModel.new_stream()``
makes an ``OnlineStream`` with its own state: online features (``OnlineFbank`` + online
CMVN), the network's recurrent state (``StreamingNetwork``), and one kaldi-decoder
``FasterDecoder`` advanced chunk by chunk (``advance_decoding``). Example::

    >>> model = OnlineModel("exp/final")
    >>> s = model.new_stream()
    >>> for chunk in chunks:                  # float samples in [-1, 1] at 16 kHz
    ...     for seg in s.accept_waveform(chunk):
    ...         print(seg.text)               # an endpointed segment
    ...     print(s.partial)                  # words so far in the open segment
    >>> for seg in s.finish(): print(seg.text)

Finals (``Segment``) carry word times (frame-exact, from the decoder's transition-id
alignment) and confidences. With ``StreamOptions.lattice_final`` (default) a segment's
final comes from ``LatticeSimpleDecoder`` run over the segment's stored scores at its
endpoint (the decoder offline decoding uses; confidences are word posteriors of its
lattice); otherwise from the incremental 1-best decoder with confidence 1.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from asr.decode.search import SearchConfig
from asr.errors import AudioError, DecodeError
from asr.features.online_cmvn import OnlineCmvnOptions
from asr.online.endpoint import EndpointConfig

log = logging.getLogger(__name__)

FEED_SECONDS = 1.0  # audio per network forward when a chunk is longer


@dataclass
class StreamOptions:
    search: SearchConfig = field(default_factory=SearchConfig)
    endpoint: EndpointConfig | None = field(default_factory=EndpointConfig)  # None: no endpointing
    lattice_final: bool = True
    cmvn: OnlineCmvnOptions = field(default_factory=OnlineCmvnOptions)
    endpoint_check_frames: int = 10  # decode at most this many frames between endpoint checks
    # a longer segment (no endpointing, or rule5 raised) gets the 1-best final: the lattice decoder
    # needs all its scores and tokens at once (about 1 GB a minute with the default model)
    max_lattice_frames: int = 3000


@dataclass
class WordResult:
    word: str
    start: float  # seconds from the start of the stream
    end: float
    conf: float


@dataclass
class Segment:
    """A final: one endpointed segment of a stream."""

    words: list[WordResult]
    start: float  # seconds from the start of the stream
    end: float
    endpoint: str  # rule name (rule1..rule5) or "eof"
    # False when the lattice final exceeded the determinization limits or the segment was longer
    # than max_lattice_frames: the words are the 1-best as always, the confidences are 1
    lattice_full: bool = True

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


class OnlineModel:
    """The shared, read-only part of streaming recognition (one per process)."""

    def __init__(self, model_dir: str | os.PathLike, graph_dir: str | os.PathLike | None = None,
                 opts: StreamOptions | None = None):
        from asr.decode.model import Recognizer
        from asr.online.network import StreamingNetwork

        self.opts = opts or StreamOptions()
        self.rec = Recognizer(model_dir, graph_dir, self.opts.search, word_times=True)
        self.net = StreamingNetwork(self.rec.model, self.rec.config, self.rec.log_priors,
                                    self.opts.search.acoustic_scale, where=str(model_dir))
        self.fbank = self.rec.md.fbank_computer()
        self.frame_shift = self.fbank.frame_shift / self.fbank.sample_rate
        self.sample_rate = self.fbank.sample_rate
        self.phone_info = self.rec.phone_info
        self.tid2pdf = np.asarray(self.rec.tm.tid2pdf)
        self.tid_silence = np.zeros(len(self.tid2pdf), bool)
        self.tid_silence[1:] = self.phone_info.silence[np.asarray(self.rec.tm.tid2phone)[1:]]
        self.global_cmvn = self.rec.md.global_cmvn_stats()

    def new_stream(self, sample_rate: int | None = None, name: str = "stream") -> "OnlineStream":
        return OnlineStream(self, sample_rate, name)


class OnlineStream:
    """One audio stream's state. Not thread-safe: feed it from one thread at a time."""

    def __init__(self, model: OnlineModel, sample_rate: int | None = None, name: str = "stream"):
        import kaldi_decoder

        from asr.online.features import OnlineFeatures

        self.m = model
        self.name = name  # for log messages
        self.lattice_fallbacks = 0  # finals whose lattice was only the 1-best path
        o = model.opts
        self.sample_rate = int(sample_rate or model.sample_rate)
        if not 1000 <= self.sample_rate <= 384000:
            raise AudioError(f"unsupported sample rate {sample_rate} (expected 1000..384000 Hz)")
        self._resampler = None
        if self.sample_rate != model.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, model.sample_rate, 1, dtype="float32")
        self.features = OnlineFeatures(model.fbank, model.rec.cmvn_mode, model.global_cmvn, o.cmvn)
        self.net_state = model.net.new_state()
        self.decoder = kaldi_decoder.FasterDecoder(
            model.rec.graph, kaldi_decoder.FasterDecoderOptions(
                beam=o.search.beam, max_active=o.search.max_active,
                min_active=min(o.search.min_active, o.search.max_active)))
        self.decoder.init_decoding()
        self._pending = np.zeros((0, model.net.num_pdfs), np.float32)  # scores not decoded yet
        self._seg_rows = self._no_rows()  # the open segment's scores (for the lattice final)
        self.seg_start = 0  # first frame of the open segment (stream frames)
        self.seg_frames = 0  # frames decoded in the open segment
        self.partial_ids: list[int] = []
        self.finished = False
        self.samples_in = 0  # at the model's rate

    # ----------------------------------------------------------------- input
    @property
    def partial(self) -> str:
        return " ".join(self.m.rec.to_words(self.partial_ids))

    def accept_pcm16(self, data: bytes) -> list[Segment]:
        """Little-endian 16-bit mono PCM bytes at this stream's sample rate."""
        if len(data) % 2:
            raise AudioError(f"PCM chunk of {len(data)} bytes is not a whole number of 16-bit samples")
        return self.accept_waveform(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)

    def accept_waveform(self, samples: np.ndarray) -> list[Segment]:
        """Float samples in [-1, 1] at this stream's sample rate. Returns the segments that
        ended (usually none; more than one only for long chunks)."""
        if self.finished:
            raise AudioError("audio after the end of the stream")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(x)):
            raise AudioError("audio chunk contains NaN or infinite samples")
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self.samples_in += len(x)
        # at most FEED_SECONDS through the network at once: its memory grows with the frames of
        # one forward (a 1 MiB message of a client at 1000 Hz is 524 s of audio); chunked = whole
        step = int(FEED_SECONDS * self.m.sample_rate)
        out = []
        for i in range(0, max(len(x), 1), step):
            self.features.accept_waveform(x[i:i + step] * 32768.0)
            out += self._advance(final=False)
        return out

    def finish(self) -> list[Segment]:
        """End of the stream: flush features, the network's delay and the decoder. Returns
        the remaining segments; the last one ends with endpoint ``eof`` (possibly empty)."""
        if self.finished:
            return []
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self.samples_in += len(tail)
            self.features.accept_waveform(tail * 32768.0)
        self.features.input_finished()
        out = self._advance(final=True)
        self.finished = True
        return out

    # ---------------------------------------------------------------- search
    def _advance(self, final: bool) -> list[Segment]:
        feats = self.features.read()
        rows = self.m.net.forward(self.net_state, feats, final=final)
        if len(rows):
            self._pending = np.concatenate([self._pending, rows]) if len(self._pending) else rows
        out = []
        step = max(1, self.m.opts.endpoint_check_frames)
        while len(self._pending):
            piece, self._pending = self._pending[:step], self._pending[step:]
            self._decode(piece)
            rule = self._endpoint()
            if rule is not None:
                out.append(self._finalize(rule))
        if final:
            out.append(self._finalize("eof"))
        return out

    def _decode(self, rows: np.ndarray) -> None:
        from asr.decode.decodable import make_decodable

        dec = make_decodable(rows, self.m.tid2pdf, offset=self.seg_frames)
        self.decoder.advance_decoding(dec)
        self.seg_frames += len(rows)
        if self._seg_rows is not None:
            self._seg_rows.append(rows)
            if self.seg_frames > self.m.opts.max_lattice_frames:
                self._seg_rows = None  # too long for a lattice final: the 1-best one, memory bounded
        ok, tids, words, cost = self._best_path(final_probs=False)
        self.partial_ids = words if ok else []
        self._tids, self._best_cost = tids, cost

    def _best_path(self, final_probs: bool):
        import kaldifst

        if self.seg_frames == 0:
            return False, np.zeros(0, np.int32), [], math.inf
        ok, lat = self.decoder.get_best_path(use_final_probs=final_probs)
        if not ok:
            return False, np.zeros(0, np.int32), [], math.inf
        _, tids, words, w = kaldifst.get_linear_symbol_sequence(lat)
        return True, np.asarray(tids, dtype=np.int32), list(words), float(w.value1) + float(w.value2)

    def _endpoint(self) -> str | None:
        cfg = self.m.opts.endpoint
        if cfg is None or self.seg_frames == 0:
            return None
        sil = self.m.tid_silence[self._tids]
        nonsil = np.flatnonzero(~sil)
        trailing = len(sil) - (int(nonsil[-1]) + 1 if len(nonsil) else 0)
        rel = math.inf
        if cfg.needs_relative_cost() and self.decoder.reached_final():
            ok, _, _, cost_final = self._best_path(final_probs=True)
            if ok and math.isfinite(self._best_cost):
                rel = max(0.0, cost_final - self._best_cost)  # Kaldi FinalRelativeCost
        return cfg.detected(self.seg_frames, trailing, self.m.frame_shift, rel)

    def _finalize(self, endpoint: str) -> Segment:
        from asr.decode.ctm import align_words

        m = self.m
        times, conf = [], None
        words: list[int] = []
        full = True
        if self.seg_frames:
            if self._seg_rows is not None:
                res = self._lattice_result()
                tids, words = res.alignment, res.path_words
                if not res.lattice_full:
                    full = False
                    self.lattice_fallbacks += 1
                    log.warning("%s: the final's word lattice (%.2f-%.2f s) is over the determinization limits: "
                                "kept only its 1-best path", self.name, self.seg_start * m.frame_shift,
                                (self.seg_start + self.seg_frames) * m.frame_shift)
            else:
                ok, tids, words, _ = self._best_path(final_probs=True)
                res = None
                if m.opts.lattice_final:
                    full = False
                    self.lattice_fallbacks += 1
                    log.warning("%s: the segment %.2f-%.2f s is longer than %.0f s (max_lattice_frames): its final is "
                                "the 1-best path of the incremental decoder", self.name, self.seg_start * m.frame_shift,
                                (self.seg_start + self.seg_frames) * m.frame_shift,
                                m.opts.max_lattice_frames * m.frame_shift)
            times = align_words(tids, words, m.rec.tm, m.phone_info, partial=True)
            if res is not None and times:
                from asr.decode.ctm import word_confidences

                conf = word_confidences(res.lattice, [t.word for t in times], m.opts.search.acoustic_scale)
        fs = m.frame_shift
        t0 = self.seg_start * fs
        names = m.rec.to_words([t.word for t in times])
        seg = Segment([WordResult(n, round(t0 + t.start * fs, 6), round(t0 + (t.start + t.frames) * fs, 6),
                                  1.0 if conf is None else float(conf[i]))
                       for i, (n, t) in enumerate(zip(names, times))],
                      round(t0, 6), round((self.seg_start + self.seg_frames) * fs, 6), endpoint, full)
        # next segment
        self.seg_start += self.seg_frames
        self.seg_frames = 0
        self._seg_rows = self._no_rows()
        self.partial_ids = []
        self._tids = np.zeros(0, np.int32)
        self.decoder.init_decoding()
        return seg

    def _no_rows(self) -> list | None:
        """The score store of a new segment: a list for lattice finals, else None."""
        return [] if self.m.opts.lattice_final else None

    def _lattice_result(self):
        """LatticeSimpleDecoder over the segment's scores (one per stream, made on first use)."""
        from asr.decode.search import Searcher

        if getattr(self, "_searcher", None) is None:
            self._searcher = Searcher(self.m.rec.graph, self.m.opts.search)
        res = self._searcher.lattice(np.concatenate(self._seg_rows), self.m.tid2pdf, with_alignment=True)
        if res.alignment is None:
            raise DecodeError("lattice decoder gave no best path")
        return res
