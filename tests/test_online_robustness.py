"""Streaming front end under long or hostile input: memory bounded by the stream's state,
not its length; bad messages answered, not crashed on."""

import numpy as np
import pytest

from online_fixtures import make_tone_model, tone_audio


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tone_model(tmp_path_factory.mktemp("tones"))


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


def test_one_best_search_with_word_times_is_blockwise(tones, tmp_path, monkeypatch):
    """The 1-best search with word times (transition-id graph: ``asr transcribe --ctm``,
    ``asr decode``) must not copy the scores of a whole file into one [T, num_tids] matrix
    (3.8 GB for 3 minutes of the default model); blockwise it finds the same path."""
    import soundfile as sf

    from asr.decode import decodable, search
    from asr.decode.decode_dir import transcribe_files

    fx = tones
    x = np.concatenate([tone_audio(fx, ["TAB", "CAT", "AT"]), tone_audio(fx, ["BAT", "TAB", "A"], seed=1)])
    sf.write(tmp_path / "u.wav", x, 16000)

    def ctm():
        return list(transcribe_files(fx["model_dir"], [str(tmp_path / "u.wav")], word_times=True))

    monkeypatch.setattr(search, "BLOCK_FRAMES", 10 ** 9, raising=False)  # one block: the whole-matrix search
    whole = ctm()
    rows = []
    tid_matrix = decodable.tid_matrix
    monkeypatch.setattr(decodable, "tid_matrix", lambda ll, t2p: rows.append(len(ll)) or tid_matrix(ll, t2p))
    monkeypatch.setattr(search, "BLOCK_FRAMES", 50, raising=False)
    blocks = ctm()
    assert whole[0][1] == ["TAB", "CAT", "AT", "BAT", "TAB", "A"]
    assert blocks == whole and len(rows) > 3 and max(rows) <= 50


def test_a_directory_is_named_as_such(tmp_path):
    """``asr transcribe DIR`` (offline and --stream read files with load_recording): the error
    says it is a directory, not that no such file exists."""
    from asr.data.audio import load_recording
    from asr.errors import AudioError

    with pytest.raises(AudioError, match="is a directory, not an audio file"):
        load_recording(tmp_path)
    with pytest.raises(AudioError, match="no such audio file"):
        load_recording(tmp_path / "missing.wav")


def test_a_long_chunk_goes_through_the_network_in_pieces(tones, monkeypatch):
    """The network's memory grows with the frames of one forward: a chunk of minutes (a 1 MiB
    server message at 1000 Hz is 524 s; --chunk-seconds) is fed a second at a time, with the
    same results as small chunks."""
    from asr.online.recognizer import OnlineModel

    model = OnlineModel(tones["model_dir"])
    x = np.concatenate([tone_audio(tones, ["TAB", "CAT", "AT"]), np.zeros(16000, np.float32),
                        tone_audio(tones, ["BAT", "TAB", "A"], seed=1)])

    def run(chunk):
        s = model.new_stream()
        segs = [g for i in range(0, len(x), chunk) for g in s.accept_waveform(x[i:i + chunk])]
        return [(w.word, w.start, w.end) for g in segs + s.finish() for w in g.words]

    small = run(1600)
    sizes = []
    forward = model.net.forward
    monkeypatch.setattr(model.net, "forward", lambda st, feats, final=False: sizes.append(len(feats)) or
                        forward(st, feats, final))
    whole = run(len(x))
    assert [w[0] for w in small] == ["TAB", "CAT", "AT", "BAT", "TAB", "A"]
    assert whole == small and len(x) > 5 * 16000 and max(sizes) <= 101


@pytest.mark.parametrize("cfg", [
    {"family": "lstmp", "num_layers": 2, "cell_dim": 12, "proj_dim": 6, "init_scale": 0.3},
    {"family": "dnn", "splice": 3, "hidden_dim": 16, "num_layers": 2},
    {"family": "highway_lstm", "num_layers": 3, "cell_dim": 16, "proj_dim": 8, "init_scale": 0.3},
])
def test_offline_forward_of_a_long_file_runs_in_windows(cfg, monkeypatch):
    """Offline inference (asr transcribe, decode, align) of a file of minutes: one forward
    call over all its frames took ~35 KB a frame (3.8 GB for 3 minutes with --ctm, 12 GB an
    hour); windows of CHUNK_FRAMES steps with the state carried give the same posteriors."""
    import torch

    from asr.nnet import inference
    from asr.nnet.registry import build_model

    torch.manual_seed(0)
    model = build_model(cfg, 12, 17).eval()
    rng = np.random.default_rng(1)
    feats = [rng.standard_normal((n, 12)).astype(np.float32) for n in (53, 20, 0)]
    whole = inference.log_posteriors(model, feats, 5)
    steps = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x, state=None: steps.append(x.shape[1]) or forward(x, state))
    monkeypatch.setattr(inference, "CHUNK_FRAMES", 7, raising=False)
    windows = inference.log_posteriors(model, feats, 5)
    assert max(steps) <= 7 and len(steps) >= 8
    for a, b in zip(windows, whole):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)


def test_a_segment_too_long_for_a_lattice_final_keeps_memory_bounded(tones, caplog):
    """Without endpointing a stream is one segment; a lattice final over it needed all its
    scores and the lattice decoder's tokens at once (1.1 GB a minute of audio with the default
    model: asr serve --no-endpointing ran out of memory). Past max_lattice_frames the scores
    are not kept and the final is the incremental 1-best: same words, marked, one warning."""
    from asr.online.recognizer import OnlineModel, StreamOptions

    x = np.concatenate([tone_audio(tones, ["TAB", "CAT", "AT"]), tone_audio(tones, ["BAT", "TAB", "A"], seed=1)])
    results = {}
    for limit in (10 ** 6, 100):
        model = OnlineModel(tones["model_dir"], opts=StreamOptions(endpoint=None, max_lattice_frames=limit))
        s = model.new_stream(name="u1")
        kept = 0
        for i in range(0, len(x), 1600):
            assert not s.accept_waveform(x[i:i + 1600])
            kept = max(kept, sum(map(len, s._seg_rows or [])))
        segs = s.finish()
        results[limit] = (segs, kept, s.lattice_fallbacks)
    (full, kept_full, _), (short, kept_short, fallbacks) = results[10 ** 6], results[100]
    assert [w.word for w in short[0].words] == [w.word for w in full[0].words] == ["TAB", "CAT", "AT", "BAT", "TAB", "A"]
    assert [(w.start, w.end) for w in short[0].words] == [(w.start, w.end) for w in full[0].words]
    assert kept_full > 400 and kept_short <= 110
    assert full[0].lattice_full and not short[0].lattice_full and fallbacks == 1
    assert all(w.conf == 1.0 for w in short[0].words)
    warn = [r.getMessage() for r in caplog.records if "max_lattice_frames" in r.getMessage()]
    assert len(warn) == 1 and warn[0].startswith("u1: ")


def test_digital_silence_warned_alike_offline_and_streaming(tones, tmp_path):
    """``asr transcribe`` documents a warning for digital silence; --stream printed the id
    without it."""
    import subprocess
    import sys

    import soundfile as sf

    sf.write(tmp_path / "zeros.wav", np.zeros(16000, np.float32), 16000)
    for mode in ([], ["--stream"]):
        r = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--model-dir", str(tones["model_dir"]), *mode,
                            str(tmp_path / "zeros.wav")], capture_output=True, timeout=120)
        assert r.returncode == 0 and r.stdout.decode().splitlines() == ["zeros"], (mode, r.stderr)
        warn = [ln for ln in r.stderr.decode().splitlines() if "digital silence" in ln]
        assert len(warn) == 1 and "zeros.wav: digital silence (no sample reaches one 16-bit step)" in warn[0], mode


def test_an_edited_model_yaml_is_refused(tmp_path):
    """model.yaml's settings (output_delay, cmvn, fbank ...) were not fingerprinted: output_delay
    5 -> 0 in a packed model dir shifted every word time by 50 ms without a word of warning."""
    import shutil

    from asr.errors import ModelError
    from asr.nnet.model_dir import CONFIG_FINGERPRINT, ModelDir

    fx = make_tone_model(tmp_path / "tones")
    md = tmp_path / "copy"
    shutil.copytree(fx["model_dir"], md)
    assert ModelDir.load(md).config[CONFIG_FINGERPRINT]  # packed with it; a copy loads
    text = (md / "model.yaml").read_text()
    for old, new in (("output_delay: ", "output_delay: 1"), ("cmvn: none", "cmvn: utterance")):
        assert old in text
        (md / "model.yaml").write_text(text.replace(old, new, 1))
        with pytest.raises(ModelError, match="model.yaml was edited after the model dir was packed"):
            ModelDir.load(md)
    # a model dir packed before the fingerprint existed still loads
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith(CONFIG_FINGERPRINT)]
    (md / "model.yaml").write_text("".join(lines))
    ModelDir.load(md)
