import numpy as np
import pytest
import soundfile as sf
from helpers_datadir import write_wav

from asr.data.audio import load_recording, read_audio
from asr.errors import AudioError


def test_wav_in_int16_scale_is_exact(tmp_path):
    x = write_wav(tmp_path / "a.wav", 0.5)
    y = read_audio(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.array_equal(y * 32768, x.astype(np.float32))


def test_flac_and_ogg(tmp_path):
    x = write_wav(tmp_path / "a.flac", 0.5)
    assert np.array_equal(read_audio(tmp_path / "a.flac") * 32768, x.astype(np.float32))
    sf.write(tmp_path / "a.ogg", x.astype(np.float32) / 32768, 16000, format="OGG", subtype="VORBIS")
    y = read_audio(tmp_path / "a.ogg")
    assert abs(len(y) - len(x)) < 100 and np.abs(y).max() <= 1.0


def test_channel_choice(tmp_path):
    x = write_wav(tmp_path / "st.wav", 0.3, channels=2)
    assert np.array_equal(read_audio(tmp_path / "st.wav", channel=1) * 32768, x[:, 1].astype(np.float32))
    avg = read_audio(tmp_path / "st.wav", channel=-1)
    np.testing.assert_allclose(avg * 32768, x.astype(np.float32).mean(axis=1), atol=1e-2)
    with pytest.raises(AudioError, match="utterance u7: channel 2 requested but the audio has 2"):
        read_audio(tmp_path / "st.wav", channel=2, utt="u7")


def test_wrong_sample_rate_resampled_or_error(tmp_path):
    write_wav(tmp_path / "a8k.wav", 1.0, rate=8000)
    y = read_audio(tmp_path / "a8k.wav", target_rate=16000)
    assert len(y) == 16000
    assert len(read_audio(tmp_path / "a8k.wav", target_rate=None)) == 8000
    with pytest.raises(AudioError, match="utterance u1: sample rate 8000 Hz, expected 16000 Hz"):
        read_audio(tmp_path / "a8k.wav", resample=False, utt="u1")


def test_unreadable_empty_missing(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="utterance e1: empty audio file"):
        read_audio(tmp_path / "empty.wav", utt="e1")
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00junk" * 50)
    with pytest.raises(AudioError, match="utterance j1: cannot decode audio"):
        read_audio(tmp_path / "junk.wav", utt="j1")
    with pytest.raises(AudioError, match="utterance m1: no such audio file"):
        read_audio(tmp_path / "missing.wav", utt="m1")


def test_pipe_equals_file(tmp_path):
    write_wav(tmp_path / "a.wav", 0.4)
    assert np.array_equal(read_audio(f"cat {tmp_path}/a.wav |"), read_audio(tmp_path / "a.wav"))


def test_failing_pipe_reports_stderr(tmp_path):
    with pytest.raises(AudioError) as e:
        read_audio("sh -c 'echo sox FAIL: cannot open input >&2; exit 3' |", utt="p1")
    msg = str(e.value)
    assert "utterance p1" in msg and "exit status 3" in msg and "sox FAIL: cannot open input" in msg
    with pytest.raises(AudioError, match="utterance p2: command produced no audio"):
        read_audio("true |", utt="p2")


def test_streamed_wav_with_bogus_sizes(tmp_path):
    x = write_wav(tmp_path / "a.wav", 0.25)
    data = bytearray((tmp_path / "a.wav").read_bytes())
    data[4:8] = b"\xff\xff\xff\xff"  # what `sox ... -t wav -` writes to a pipe
    i = data.find(b"data")
    data[i + 4 : i + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "stream.bin").write_bytes(bytes(data))
    rec = load_recording(f"cat {tmp_path}/stream.bin |")
    assert rec.rate == 16000 and np.array_equal(rec.samples[:, 0] * 32768, x.astype(np.float32))


def test_truncated_wav_is_an_error_not_the_part_that_is_there(tmp_path):
    write_wav(tmp_path / "a.wav", 1.0)
    data = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # an interrupted copy: header says 1 s
    assert len(sf.read(tmp_path / "cut.wav")[0]) < 8000  # libsndfile reads the half without a word
    with pytest.raises(AudioError, match=r"utterance t1: truncated audio .*cut.wav: its wav header declares "
                                         r"16000 samples, it holds 79\d\d \(0.49\d of 1.000 s\)"):
        read_audio(tmp_path / "cut.wav", utt="t1")
    with pytest.raises(AudioError, match="truncated audio cat "):
        read_audio(f"cat {tmp_path}/cut.wav |")
    (tmp_path / "short.wav").write_bytes(data[:-100])  # 50 samples (3 ms) short: tolerated
    assert len(read_audio(tmp_path / "short.wav")) == 16000 - 50


def test_segments(tmp_path):
    x = write_wav(tmp_path / "a.wav", 2.0)
    y = read_audio(tmp_path / "a.wav", start=0.5, end=1.25)
    assert np.array_equal(y * 32768, x[8000:20000].astype(np.float32))
    assert len(read_audio(tmp_path / "a.wav", start=1.5, end=-1)) == 8000
    # within Kaldi's 0.5 s overshoot tolerance: truncated at the end
    assert len(read_audio(tmp_path / "a.wav", start=1.0, end=2.3)) == 16000
    with pytest.raises(AudioError, match=r"utterance s1: segment ends at 3.0 s, 1.000 s past the end of the audio \(2.000 s"):
        read_audio(tmp_path / "a.wav", start=1.0, end=3.0, utt="s1")
    with pytest.raises(AudioError, match="utterance s2: segment starts at 2.5 s, after the end"):
        read_audio(tmp_path / "a.wav", start=2.5, end=2.7, utt="s2")
    with pytest.raises(AudioError, match="utterance s3: segment end 1.0 s is not after its start"):
        read_audio(tmp_path / "a.wav", start=1.0, end=1.0, utt="s3")
