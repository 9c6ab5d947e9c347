"""Streaming front end under long or hostile input: memory bounded by the stream's state,
not its length; bad messages answered, not crashed on."""

import numpy as np


class _CountingFbank:
    """Wraps kaldi-native-fbank's OnlineFbank; counts the frames it still holds."""

    def __init__(self, fb):
        self.fb = fb
        self.popped = 0

    def pop(self, n):
        self.popped += n
        self.fb.pop(n)

    @property
    def held(self):
        return self.fb.num_frames_ready - self.popped

    def __getattr__(self, name):
        return getattr(self.fb, name)


def test_online_features_do_not_keep_the_frames_they_returned():
    """A stream of hours (asr serve) must not hold every fbank frame since its start."""
    from asr.features.fbank import FbankComputer
    from asr.online.features import OnlineFeatures

    fb = FbankComputer(None)
    f = OnlineFeatures(fb, cmvn_mode="none")
    f._fb = spy = _CountingFbank(f._fb)
    x = (np.random.default_rng(0).standard_normal(16000 * 20) * 3000).astype(np.float32)
    parts = []
    for i in range(0, len(x), 1600):
        f.accept_waveform(x[i:i + 1600])
        parts.append(f.read())
        assert spy.held == 0
    f.input_finished()
    parts.append(f.read())
    assert spy.held == 0 and f.num_frames == len(fb.compute(x))
    np.testing.assert_array_equal(np.concatenate(parts), fb.compute(x))  # same frames as before
