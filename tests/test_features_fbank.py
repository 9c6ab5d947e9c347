import numpy as np
import pytest
import soundfile as sf

from asr.data.audio import read_audio
from asr.errors import ConfigError, FeatureError
from asr.features.cmvn import apply_cmvn, cmvn_stats
from asr.features.fbank import FbankComputer

CONF = "conf/fbank.conf"


def _wav(path, seconds=1.37, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 8000 * np.sin(2 * np.pi * (200 + 900 * t) * t) + rng.normal(0, 500, len(t))
    x = np.clip(x, -32768, 32767).astype(np.int16)
    sf.write(path, x, rate, subtype="PCM_16")
    return x


def test_fbank_bit_exact_with_kaldi_native_fbank(tmp_path):
    import kaldi_native_fbank as knf

    x = _wav(tmp_path / "a.wav")
    ours = FbankComputer(CONF).compute(read_audio(tmp_path / "a.wav") * 32768)

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 40
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, x.astype(np.float32).tolist())
    fb.input_finished()
    ref = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
    assert ours.dtype == np.float32 and ours.shape == (ref.shape[0], 40)
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("n", [400, 401, 559, 560, 16000, 21920])
def test_frame_count_is_kaldi_snip_edges_formula(n):
    fc = FbankComputer(CONF)
    feats = fc.compute(np.random.default_rng(n).normal(0, 1000, n))
    assert feats.shape[0] == 1 + (n - 400) // 160 == fc.num_frames(n)


def test_too_short_gives_no_frames():
    fc = FbankComputer(None)
    assert fc.compute(np.zeros(399)).shape == (0, 40)
    assert fc.num_frames(0) == 0


def test_no_snip_edges_frame_count():
    fc = FbankComputer(None, overrides={"snip-edges": "false"})
    assert fc.compute(np.ones(16000) * 100).shape[0] == fc.num_frames(16000) == 100


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("--num-mel-bins=40\n--no-such-option=1\n")
    with pytest.raises(ConfigError, match="no-such-option"):
        FbankComputer(bad)
    bad.write_text("--num-mel-bins=forty\n")
    with pytest.raises(ConfigError, match="num-mel-bins"):
        FbankComputer(bad)
    with pytest.raises(ConfigError, match="no such config"):
        FbankComputer(tmp_path / "missing.conf")


def test_config_values_are_used(tmp_path):
    conf = tmp_path / "f.conf"
    conf.write_text("--num-mel-bins=23\n--sample-frequency=8000\n")
    fc = FbankComputer(conf)
    assert fc.sample_rate == 8000 and fc.dim == 23
    assert fc.compute(np.ones(8000) * 100).shape == (98, 23)
    assert FbankComputer.from_options(fc.options).options == fc.options


def test_cmvn_mean_and_var():
    rng = np.random.default_rng(1)
    feats = rng.normal(5.0, 3.0, size=(200, 4)).astype(np.float32)
    stats = cmvn_stats(feats)
    assert stats.shape == (2, 5) and stats.dtype == np.float64 and stats[0, 4] == 200
    out = apply_cmvn(feats, stats)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), feats.std(0), rtol=1e-5)
    outv = apply_cmvn(feats, stats, norm_vars=True)
    np.testing.assert_allclose(outv.std(0), 1, rtol=1e-4)
    with pytest.raises(FeatureError, match="count"):
        apply_cmvn(feats, np.zeros((2, 5)))
    with pytest.raises(FeatureError, match="dim"):
        apply_cmvn(feats, np.zeros((2, 7)))
