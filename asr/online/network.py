"""The acoustic model run chunk by chunk with its recurrent state carried between chunks.

For a causal model (every family in ``asr.nnet.registry.CAUSAL_FAMILIES``: the LSTMs see
only the past, the DNN's splice window is covered by its state and the output delay) the
chunked outputs equal the whole-utterance forward of ``asr.nnet.inference.log_posteriors``:

- the target of frame t is emitted at step t + d (``output_delay`` d), so the first d
  outputs of the stream are dropped and frame t's row is ready once frame t + d is in;
- at the end of the stream the last frame is fed d more times (as in training and
  offline decoding) to get the last d rows.

``StreamingNetwork`` is shared by all streams (model, priors; read-only); each stream keeps
a ``NetworkState``. Outputs are scaled log-likelihoods ``acoustic_scale * (log p(s|x) -
log p(s))`` ready for the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asr.errors import ModelError


@dataclass
class NetworkState:
    """Per-stream state: the model's recurrent state, steps fed, the last input frame."""

    state: object = None
    steps: int = 0
    last_frame: np.ndarray | None = field(default=None, repr=False)
    flushed: bool = False


def check_streamable(config: dict, where: str = "model") -> None:
    """Raise ModelError unless the model family is causal (can stream exactly)."""
    from asr.nnet.registry import CAUSAL_FAMILIES

    family = str((config.get("model") or {}).get("family", "?"))
    if family not in CAUSAL_FAMILIES:
        raise ModelError(f"{where}: model family {family!r} is not causal (its output for a frame depends on "
                         f"frames beyond its output delay), so it cannot stream; streaming needs one of "
                         f"{', '.join(sorted(CAUSAL_FAMILIES))}")


class StreamingNetwork:
    def __init__(self, model, config: dict, log_priors: np.ndarray | None, acoustic_scale: float = 1.0,
                 where: str = "model"):
        check_streamable(config, where)
        self.model = model.eval()
        self.config = config
        self.delay = int(config.get("output_delay", 0))
        self.log_priors = None if log_priors is None else np.asarray(log_priors, dtype=np.float32)
        self.acoustic_scale = float(acoustic_scale)
        self.num_pdfs = int(model.num_pdfs)

    def new_state(self) -> NetworkState:
        return NetworkState()

    def forward(self, st: NetworkState, feats: np.ndarray, final: bool = False) -> np.ndarray:
        """Feed ``feats [n, D]`` (may be empty); with ``final`` also flush the delay.
        Returns the rows that became ready, float32 ``[m, num_pdfs]``: log-posteriors when
        the network was built without priors, else scaled log-likelihoods."""
        import torch

        feats = np.asarray(feats, dtype=np.float32)
        if st.flushed and (len(feats) or final):
            raise ModelError("stream already finished")
        if len(feats):
            st.last_frame = feats[-1]
        if final:
            st.flushed = True
            if st.last_frame is not None and self.delay:
                feats = np.concatenate([feats, np.repeat(st.last_frame[None], self.delay, axis=0)])
        if len(feats) == 0:
            return np.zeros((0, self.num_pdfs), dtype=np.float32)
        with torch.no_grad():
            logits, st.state = self.model(torch.from_numpy(feats)[None], st.state)
            logp = torch.log_softmax(logits[0].float(), dim=-1).numpy()
        skip = max(0, self.delay - st.steps)  # outputs before step d belong to no frame
        st.steps += len(feats)
        out = logp[skip:]
        if self.log_priors is not None:
            from asr.decode.decodable import scaled_loglikes

            out = scaled_loglikes(out, self.log_priors, self.acoustic_scale)
        return np.ascontiguousarray(out, dtype=np.float32)
