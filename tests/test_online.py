"""Streaming recognition: online CMVN, chunked forward = whole forward for every causal
family, endpointing, word times, and ``asr transcribe --stream`` / ``--ctm``."""

import io
import math
import subprocess
import sys

import numpy as np
import pytest

from online_fixtures import make_tone_model, tone_audio

D, PDFS, DELAY = 12, 17, 5

FAMILY_CONFIGS = {
    "lstmp": {"family": "lstmp", "num_layers": 2, "cell_dim": 12, "proj_dim": 6, "init_scale": 0.3},
    "lstmp_fused": {"family": "lstmp", "num_layers": 2, "cell_dim": 12, "proj_dim": 6, "peepholes": False},
    "lstmp_FGR": {"family": "lstmp", "num_layers": 1, "cell_dim": 8, "proj_dim": 4, "variant": "FGR"},
    "lstm": {"family": "lstm", "num_layers": 2, "cell_dim": 12},
    "dnn": {"family": "dnn", "splice": 3, "hidden_dim": 16, "num_layers": 2},
    "residual_lstm": {"family": "residual_lstm", "num_layers": 3, "cell_dim": 16, "proj_dim": 8, "init_scale": 0.3},
    "highway_lstm": {"family": "highway_lstm", "num_layers": 3, "cell_dim": 16, "proj_dim": 8, "init_scale": 0.3},
    "ltlstm": {"family": "ltlstm", "num_layers": 3, "cell_dim": 16, "proj_dim": 8, "init_scale": 0.3},
}


def test_every_causal_family_is_tested():
    from asr.nnet.registry import CAUSAL_FAMILIES, FAMILIES

    assert CAUSAL_FAMILIES <= set(FAMILIES)
    assert {c["family"] for c in FAMILY_CONFIGS.values()} == set(CAUSAL_FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILY_CONFIGS))
def test_chunked_forward_equals_whole_forward(name):
    """Online CMVN over the whole utterance, then the offline forward (last frame repeated
    DELAY times, first DELAY outputs dropped) == the same features fed in uneven chunks."""
    import torch

    from asr.nnet.inference import log_posteriors
    from asr.nnet.registry import build_model
    from asr.features.online_cmvn import OnlineCmvn
    from asr.online.network import StreamingNetwork

    torch.manual_seed(0)
    cfg = FAMILY_CONFIGS[name]
    model = build_model(cfg, D, PDFS).eval()
    rng = np.random.default_rng(1)
    raw = (rng.standard_normal((53, D)) * 2 + 5).astype(np.float32)
    gstats = np.zeros((2, D + 1))
    gstats[0, :D], gstats[1, :D], gstats[0, D] = 4.0 * 100, 30.0 * 100, 100
    feats = OnlineCmvn(D, gstats).apply(raw)
    whole = log_posteriors(model, [feats], DELAY)[0]
    net = StreamingNetwork(model, {"model": cfg, "output_delay": DELAY}, None)
    st = net.new_state()
    cmvn = OnlineCmvn(D, gstats)
    rows, pos = [], 0
    for n in [1, 3, 0, 7, 2, 11, 4, 25]:  # = 53 frames
        rows.append(net.forward(st, cmvn.apply(raw[pos:pos + n])))
        pos += n
    assert sum(len(r) for r in rows) == len(raw) - DELAY  # frame t is ready once t + DELAY is in
    rows.append(net.forward(st, np.zeros((0, D), np.float32), final=True))
    chunked = np.concatenate(rows)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, atol=2e-5, rtol=0)


def test_non_causal_family_refused(monkeypatch):
    from asr.errors import ModelError
    from asr.nnet import registry
    from asr.online.network import check_streamable

    monkeypatch.setitem(registry.FAMILIES, "blstm", "nowhere:build")
    with pytest.raises(ModelError, match="'blstm' is not causal.*cannot stream"):
        check_streamable({"model": {"family": "blstm"}}, "exp/blstm/final")


def _kaldi_online_cmvn(raw, gstats, window, global_frames):
    """Frame-by-frame transcription of Kaldi's OnlineCmvn::GetFrame + SmoothOnlineCmvnStats."""
    out = []
    for t in range(len(raw)):
        win = raw[max(0, t - window + 1):t + 1].astype(np.float64)
        s, n = win.sum(0), len(win)
        if gstats is not None and n < window:
            take = min(window - n, global_frames)
            s = s + take / gstats[0, -1] * gstats[0, :-1]
            n = n + take
        out.append(raw[t] - s / n)
    return np.array(out)


@pytest.mark.parametrize("use_global", [True, False])
def test_online_cmvn_matches_kaldi_and_ignores_chunking(use_global):
    from asr.features.online_cmvn import OnlineCmvn, OnlineCmvnOptions

    rng = np.random.default_rng(0)
    raw = (rng.standard_normal((70, 4)) + np.linspace(0, 5, 70)[:, None]).astype(np.float32)
    g = np.array([[10.0, 20, 30, 40, 10], [0, 0, 0, 0, 0]]) if use_global else None
    opts = OnlineCmvnOptions(cmn_window=20, global_frames=8)
    ref = _kaldi_online_cmvn(raw, g, 20, 8)
    c = OnlineCmvn(4, g, opts)
    got = np.concatenate([c.apply(raw[i:i + k]) for i, k in [(0, 5), (5, 1), (6, 30), (36, 34)]])
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(OnlineCmvn(4, g, opts).apply(raw), ref, atol=1e-5)


def test_online_fbank_equals_offline_fbank():
    from asr.features.fbank import FbankComputer
    from asr.online.features import OnlineFeatures

    fb = FbankComputer(None)
    x = (np.random.default_rng(0).standard_normal(16000 + 123) * 3000).astype(np.float32)
    f = OnlineFeatures(fb, cmvn_mode="none")
    parts = []
    for i in range(0, len(x), 777):
        f.accept_waveform(x[i:i + 777])
        parts.append(f.read())
    f.input_finished()
    parts.append(f.read())
    np.testing.assert_array_equal(np.concatenate(parts), fb.compute(x))


def test_endpoint_rules():
    from asr.online.endpoint import EndpointConfig

    cfg = EndpointConfig()
    fs = 0.01
    assert cfg.detected(100, 20, fs, math.inf) is None  # speech + 0.2 s silence
    assert cfg.detected(100, 60, fs, 1.0) == "rule2"  # 0.6 s silence, likely final
    assert cfg.detected(100, 60, fs, math.inf) is None  # ... but no final state active
    assert cfg.detected(300, 210, fs, math.inf) == "rule4"  # 2.1 s silence after speech
    assert cfg.detected(499, 499, fs, math.inf) is None  # only silence: needs 5 s
    assert cfg.detected(500, 500, fs, math.inf) == "rule1"
    assert cfg.detected(2000, 0, fs, math.inf) == "rule5"  # maximum utterance length


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tone_model(tmp_path_factory.mktemp("tones"))


def _run_stream(model, x, chunk=1600):
    s = model.new_stream()
    segs, partials = [], []
    for i in range(0, len(x), chunk):
        segs += s.accept_waveform(x[i:i + chunk])
        partials.append(s.partial)
    return segs + s.finish(), partials


def test_stream_endpoints_and_word_times(tones):
    from asr.online.endpoint import EndpointConfig
    from asr.online.recognizer import OnlineModel, StreamOptions

    rate = 16000
    a, b = tone_audio(tones, ["CAT", "AT"]), tone_audio(tones, ["BAT", "TAB", "A"], seed=1)
    gap = np.zeros(rate, np.float32)  # 1 s of digital silence between the two utterances
    x = np.concatenate([a, gap, b])
    model = OnlineModel(tones["model_dir"])
    segs, partials = _run_stream(model, x)
    texts = [s.text for s in segs if s.words]
    assert texts == ["CAT AT", "BAT TAB A"]
    assert segs[0].endpoint.startswith("rule") and segs[-1].endpoint == "eof"
    assert "CAT" in partials and "CAT AT" in partials  # the partial grows word by word
    # word times: 0.3 s lead silence + SIL (5 states x 6 frames) -> the first word starts at 0.6 s;
    # every phone lasts 3 x 6 frames = 0.18 s (frame t covers t*10 ms .. t*10 + 25 ms, so starts show 2 frames early)
    w = segs[0].words
    assert [round(v.start, 2) for v in w] == [0.58, 1.42] and [round(v.end - v.start, 2) for v in w] == [0.56, 0.38]
    off = len(a) / rate + 1.0
    w2 = [v for s in segs[1:] for v in s.words]
    assert abs(w2[0].start - (off + 0.58)) < 0.015
    assert all(0.5 < v.conf <= 1.0 for v in w + w2)
    # no endpointing: one segment; the 1-best finals give the same words
    one = OnlineModel(tones["model_dir"], opts=StreamOptions(endpoint=None, lattice_final=False))
    segs1, _ = _run_stream(one, x, chunk=3333)
    assert [s.text for s in segs1] == ["CAT AT BAT TAB A"] and segs1[0].endpoint == "eof"
    assert all(v.conf == 1.0 for v in segs1[0].words)
    # maximum utterance length (rule5 at 1.5 s) cuts the stream into short segments
    cfg = EndpointConfig()
    cfg.rule5.min_utterance_length = 1.5
    short = OnlineModel(tones["model_dir"], opts=StreamOptions(endpoint=cfg))
    segs5, _ = _run_stream(short, np.concatenate([a, b]))
    assert sum(s.endpoint == "rule5" for s in segs5) >= 2
    assert all(s.end - s.start <= 1.5 + 0.1 + 1e-6 for s in segs5)  # checked every 10 frames


def test_lattice_final_over_the_limits_keeps_the_one_best(tones, monkeypatch, caplog):
    """A final whose lattice is over the determinization effort cap gets the 1-best words
    (as with a full lattice), is marked, counted and named in a one-line warning."""
    import asr.lattice.word_lattice as wl
    from asr.online.recognizer import OnlineModel

    x = tone_audio(tones, ["BAT", "TAB", "A"], seed=1)
    model = OnlineModel(tones["model_dir"])
    full, _ = _run_stream(model, x)
    monkeypatch.setattr(wl, "MAX_WORK", 1)
    s = model.new_stream(name="u1")
    with caplog.at_level("WARNING"):
        segs = s.accept_waveform(x) + s.finish()
    assert [g.text for g in segs] == [g.text for g in full] and "BAT TAB A" in [g.text for g in segs]
    assert all(g.lattice_full for g in full)
    assert [g.lattice_full for g in segs if g.words] == [False] and s.lattice_fallbacks == 1
    warn = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "retrying" not in r.getMessage()]
    assert len(warn) == 1 and warn[0].startswith("u1: ") and "1-best" in warn[0] and "\n" not in warn[0]


def test_stream_silence_only_and_sample_rate(tones):
    import soxr

    from asr.online.recognizer import OnlineModel

    model = OnlineModel(tones["model_dir"])
    rng = np.random.default_rng(0)
    segs, partials = _run_stream(model, (1e-4 * rng.standard_normal(16000 * 6)).astype(np.float32))
    assert all(not s.words for s in segs) and segs[0].endpoint == "rule1" and not any(partials)
    # 44.1 kHz input is resampled per stream (soxr)
    x = tone_audio(tones, ["TAB", "CAT", "AT"])
    s = model.new_stream(44100)
    y = soxr.resample(x, 16000, 44100).astype(np.float32)
    segs = []
    for i in range(0, len(y), 4410):
        segs += s.accept_waveform(y[i:i + 4410])
    segs += s.finish()
    assert " ".join(g.text for g in segs if g.words) == "TAB CAT AT"


def _asr(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, input=stdin,
                          timeout=120)


def test_transcribe_stream_cli(tones, tmp_path):
    import soundfile as sf

    md = tones["model_dir"]
    x = np.concatenate([tone_audio(tones, ["CAT", "AT"]), np.zeros(16000, np.float32), tone_audio(tones, ["TAB"])])
    sf.write(tmp_path / "two.wav", x, 16000)
    sf.write(tmp_path / "one.flac", tone_audio(tones, ["BAT", "TAB", "A"]), 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFFjunk")
    r = _asr("transcribe", "--model-dir", md, "--stream", tmp_path / "two.wav", tmp_path / "bad.wav",
             tmp_path / "one.flac", "--ctm", tmp_path / "out.ctm")
    out = r.stdout.decode()
    assert r.returncode == 1, r.stderr
    assert out.splitlines() == ["two CAT AT", "two TAB", "one BAT TAB A"]  # one line per segment, no partials
    err = r.stderr.decode().strip().splitlines()
    assert len([e for e in err if "error" in e]) == 1 and "bad" in err[-2]
    assert err[-1] == "asr transcribe: 2 of 3 files transcribed, 1 failed"  # as offline
    ctm = [ln.split() for ln in (tmp_path / "out.ctm").read_text().splitlines()]
    assert [c[4] for c in ctm] == ["CAT", "AT", "TAB", "BAT", "TAB", "A"]
    assert ctm[0][:4] == ["two", "1", "0.58", "0.56"]
    # raw PCM on stdin, 8 kHz
    import soxr

    y = (soxr.resample(x, 16000, 8000) * 32767).astype("<i2").tobytes()
    r = _asr("transcribe", "--model-dir", md, "--stream", "-", "--sample-rate", 8000, stdin=y)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["stdin CAT AT", "stdin TAB"]
    r = _asr("transcribe", "--model-dir", md, "-", stdin=y)
    assert r.returncode == 1 and b"needs --stream" in r.stderr
    # a trailing odd byte: the transcript of the complete samples, then a one-line warning
    r = _asr("transcribe", "--model-dir", md, "--stream", "-", "--sample-rate", 8000, stdin=y + b"\x01")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["stdin CAT AT", "stdin TAB"]
    assert "stdin: the PCM stream ended in the middle of a 16-bit sample" in r.stderr.decode()
    # empty stdin: one error, prefixed once
    r = _asr("transcribe", "--model-dir", md, "--stream", "-", stdin=b"")
    err = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("asr transcribe: error:")]
    assert r.returncode == 1 and err == ["asr transcribe: error: stdin: empty audio (0 samples)"], err
    # --sample-rate must be a positive integer: a usage error, not a crash
    r = _asr("transcribe", "--model-dir", md, "--stream", "-", "--sample-rate", 0, stdin=y)
    err = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and "--sample-rate" in err[-1] and "unexpected" not in r.stderr.decode()


def test_transcribe_channel_alike_offline_and_streaming(tones, tmp_path):
    """--channel picks one channel of a stereo file (default 0, -1 = average) with --stream
    as offline (asr.data.audio.extract, the make-fbank rule)."""
    import soundfile as sf

    md = tones["model_dir"]
    a, b = tone_audio(tones, ["CAT", "AT"]), tone_audio(tones, ["TAB"], seed=2)
    n = max(len(a), len(b))
    st = np.zeros((n, 2), np.float32)
    st[:len(a), 0], st[:len(b), 1] = a, b
    sf.write(tmp_path / "st.wav", st, 16000)
    for mode in ([], ["--stream"]):
        for ch, want in (([], "st CAT AT"), (["--channel", 0], "st CAT AT"), (["--channel", 1], "st TAB")):
            r = _asr("transcribe", "--model-dir", md, *mode, *ch, tmp_path / "st.wav")
            assert r.returncode == 0, r.stderr
            assert r.stdout.decode().splitlines() == [want], (mode, ch)
        r = _asr("transcribe", "--model-dir", md, *mode, "--channel", 2, tmp_path / "st.wav")
        assert r.returncode == 1 and "channel 2 requested but the audio has 2 channel(s)" in r.stderr.decode()


def test_offline_cmn_options_need_an_online_cmvn_model(tones, tmp_path):
    """--cmn-window/--global-frames offline: applied for a cmvn: online model (see the
    features test), an error for other CMVN modes (they would be ignored)."""
    import soundfile as sf

    sf.write(tmp_path / "u.wav", tone_audio(tones, ["CAT"]), 16000)
    r = _asr("transcribe", "--model-dir", tones["model_dir"], "--cmn-window", 100, tmp_path / "u.wav")
    err = [ln for ln in r.stderr.decode().splitlines() if "error" in ln]
    assert r.returncode == 1 and len(err) == 1 and "--cmn-window/--global-frames apply offline only" in err[0], err
    r = _asr("transcribe", "--model-dir", tones["model_dir"], "--stream", "--cmn-window", 100, tmp_path / "u.wav")
    assert r.returncode == 0 and r.stdout.decode().splitlines() == ["u CAT"], r.stderr


def test_transcribe_checks_audio_alike_offline_and_streaming(tones, tmp_path):
    import soundfile as sf

    md = tones["model_dir"]
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    sf.write(tmp_path / "short.wav", np.full(100, 0.1, np.float32), 16000)  # under one 25 ms frame
    sf.write(tmp_path / "ok.wav", tone_audio(tones, ["CAT"]), 16000)
    errs = {}
    for mode in ([], ["--stream"]):
        r = _asr("transcribe", "--model-dir", md, *mode, tmp_path / "zero.wav", tmp_path / "short.wav", tmp_path / "ok.wav")
        assert r.returncode == 1 and r.stdout.decode().splitlines() == ["ok CAT"]
        errs[bool(mode)] = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("asr transcribe: error:")]
    assert errs[True] == errs[False] and len(errs[True]) == 2
    assert errs[True][0] == f"asr transcribe: error: {tmp_path / 'zero.wav'}: empty audio (0 samples)"
    assert f"{tmp_path / 'short.wav'}: too short for one frame (100 samples at 16000 Hz" in errs[True][1]
    r = _asr("transcribe", "--model-dir", md, "--stream", "-", stdin=b"\0\0" * 50)
    assert r.returncode == 1 and b"stdin: too short for one frame (50 samples" in r.stderr
    # two inputs with the same id: refused before anything is transcribed
    (tmp_path / "a1").mkdir(), (tmp_path / "a2").mkdir()
    for d in ("a1", "a2"):
        sf.write(tmp_path / d / "x.wav", tone_audio(tones, ["CAT"]), 16000)
    for mode in ([], ["--stream"]):
        r = _asr("transcribe", "--model-dir", md, *mode, tmp_path / "a1" / "x.wav", tmp_path / "a2" / "x.wav")
        err = r.stderr.decode().strip().splitlines()
        assert r.returncode == 1 and r.stdout == b"" and len(err) == 1
        assert "a2/x.wav have the same id 'x'" in err[0]


def test_partials_on_a_terminal(tones):
    from asr.online.recognizer import OnlineModel
    from asr.online.stream_input import transcribe_stream

    import soundfile as sf
    import tempfile, os

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "u.wav")
        sf.write(p, tone_audio(tones, ["CAT", "AT"]), 16000)
        out = io.StringIO()
        list(transcribe_stream(OnlineModel(tones["model_dir"]), [p], out=out, show_partials=True))
    text = out.getvalue()
    assert "\r\x1b[Ku CAT" in text  # the partial line is rewritten in place
    assert text.endswith("\r\x1b[Ku CAT AT\n")


def test_offline_transcribe_ctm(tones, tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "u.wav", tone_audio(tones, ["TAB", "CAT", "AT"]), 16000)
    r = _asr("transcribe", "--model-dir", tones["model_dir"], tmp_path / "u.wav", "--ctm", "-")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "u TAB CAT AT"
    assert [ln.split()[2:5] for ln in lines[1:]] == [["0.58", "0.56", "TAB"], ["1.42", "0.56", "CAT"],
                                                       ["2.26", "0.38", "AT"]]


def test_online_cmvn_model_features_equal_offline_and_streaming(tmp_path):
    """A model trained with ``cmvn: online`` sees the same features offline (FeatureReader,
    the trainer's and ``asr decode``'s path; ``normalise_utterance``, ``asr transcribe``'s) as
    streaming (OnlineFeatures fed in uneven chunks): offline and streaming decode the same."""
    import kaldiio

    from asr.errors import FeatureError
    from asr.features.cmvn import cmvn_stats
    from asr.features.fbank import FbankComputer
    from asr.features.reader import FeatureReader, normalise_utterance
    from asr.online.features import OnlineFeatures

    fb = FbankComputer(None)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(16000 * 7 + 321) * 2000 * np.linspace(0.2, 2.0, 16000 * 7 + 321)).astype(np.float32)
    offline = fb.compute(x)  # 7 s: longer than the 600-frame window
    g = cmvn_stats(fb.compute((rng.standard_normal(16000 * 3) * 500).astype(np.float32)))
    d = tmp_path / "data"
    d.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        w("u1", offline)
    reader = FeatureReader(d, cmvn="online", global_stats=g)
    want = reader["u1"]
    f = OnlineFeatures(fb, cmvn_mode="online", global_stats=g)
    parts, pos = [], 0
    for n in [400, 1, 16000, 5555, 80000]:
        f.accept_waveform(x[pos:pos + n])
        parts.append(f.read())
        pos += n
    f.accept_waveform(x[pos:])
    f.input_finished()
    parts.append(f.read())
    np.testing.assert_allclose(np.concatenate(parts), want, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(normalise_utterance(offline, "online", g), want)
    # the first frame is normalised with itself plus 200 frames' worth of the global mean
    # (Kaldi's global-frames), later ones with the window's own mean
    np.testing.assert_allclose(want[0], offline[0] - (offline[0] + 200 * g[0, :-1] / g[0, -1]) / 201, atol=1e-4)
    assert not np.allclose(want[-1], offline[-1] - g[0, :-1] / g[0, -1], atol=1e-2)
    with pytest.raises(FeatureError, match="online CMVN but has no global_cmvn.stats"):
        OnlineFeatures(fb, cmvn_mode="online")
    # --cmn-window / --global-frames: offline (normalise_utterance, asr transcribe) computes
    # exactly what streaming computes with the same options
    from asr.features.online_cmvn import OnlineCmvnOptions

    opts = OnlineCmvnOptions(cmn_window=50, global_frames=10)
    f = OnlineFeatures(fb, cmvn_mode="online", global_stats=g, cmvn_opts=opts)
    f.accept_waveform(x)
    f.input_finished()
    got = normalise_utterance(offline, "online", g, online_opts=opts)
    np.testing.assert_allclose(f.read(), got, atol=1e-4, rtol=0)
    assert not np.allclose(got, want, atol=1e-2)
