import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
from helpers_datadir import make_data_dir, write_wav

from asr.data.audio import read_audio
from asr.errors import FeatureError
from asr.features.cmvn import apply_cmvn
from asr.features.fbank import FbankComputer
from asr.features.make_fbank import make_fbank
from asr.features.reader import FeatureReader


def asr(*args):
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True)


def table(path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


@pytest.fixture
def data(tmp_path):
    return make_data_dir(tmp_path, speakers=("spk1", "spk2", "spk3"), per_speaker=2, seconds=0.8)


def test_make_fbank_cli_matches_fbank_and_kaldiio(data):
    r = asr("make-fbank", "--nj", 2, "--config", "conf/fbank.conf", "--no-progress", data)
    assert r.returncode == 0, r.stderr
    assert "features for 6 of 6 utterances, 0 failed" in r.stdout
    scp = table(data / "feats.scp")
    n2f = table(data / "utt2num_frames")
    assert list(scp) == sorted(scp) and len(scp) == 6
    computer = FbankComputer("conf/fbank.conf")
    wavs = table(data / "wav.scp")
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    for utt, path in wavs.items():
        x = read_audio(path)
        ref = computer.compute(x * 32768)
        got = feats[utt]
        assert got.dtype == np.float32 and np.array_equal(got, ref)
        assert int(n2f[utt]) == got.shape[0] == 1 + (len(x) - 400) // 160
        assert float(table(data / "utt2dur")[utt]) == round(len(x) / 16000, 4)
    # the arks are Kaldi binary float matrices; kaldiio reads them sequentially too
    arks = sorted((data / "data").glob("raw_fbank_data.*.ark"))
    assert [a.name for a in arks] == ["raw_fbank_data.1.ark", "raw_fbank_data.2.ark"]
    assert arks[0].read_bytes().startswith(b"spk1-u0 \x00BFM \x04")
    seq = dict(kaldiio.load_ark(str(arks[0])))
    assert set(seq) == {"spk1-u0", "spk1-u1", "spk2-u0", "spk2-u1"}
    for utt, m in seq.items():
        assert np.array_equal(m, feats[utt])


def test_rerun_skips_finished_jobs_and_redoes_changed_ones(data):
    make_fbank(data, nj=3, progress=False)
    arks = {p.name: p.stat().st_mtime_ns for p in (data / "data").glob("*.ark")}
    r = make_fbank(data, nj=3, progress=False)
    assert r.jobs_skipped == 3 and r.num_done == 6 and r.audio_seconds == 0
    assert {p.name: p.stat().st_mtime_ns for p in (data / "data").glob("*.ark")} == arks
    # change the audio of one speaker's utterance: only its job is recomputed
    wav = (data / "wav.scp").read_text().replace("spk2-u1.wav", "spk2-u0.wav")
    (data / "wav.scp").write_text(wav)
    r = make_fbank(data, nj=3, progress=False)
    assert r.jobs_skipped == 2
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    assert np.array_equal(feats["spk2-u1"], feats["spk2-u0"])
    # an interrupted job (no .done marker) is recomputed; a stale feats.scp is never left behind
    (data / "data" / "raw_fbank_data.1.done").unlink()
    r = make_fbank(data, nj=3, progress=False)
    assert r.jobs_skipped == 2 and len(table(data / "feats.scp")) == 6
    out = asr("make-fbank", "--nj", 3, "--no-progress", data)
    assert "3 jobs, 3 already done" in out.stdout
    # fewer jobs: everything recomputed, the third job's files removed
    r = make_fbank(data, nj=2, progress=False)
    assert r.jobs_skipped == 0 and len(table(data / "feats.scp")) == 6
    assert sorted(p.name for p in (data / "data").iterdir()) == [
        f"raw_fbank_data.{j}.{ext}" for j in (1, 2) for ext in ("ark", "done", "scp")]


def test_bad_utterances_skipped_and_counted(data, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    write_wav(tmp_path / "short.wav", 0.01)
    wav = (data / "wav.scp").read_text().splitlines()
    wav[0] = f"spk1-u0 {tmp_path}/empty.wav"
    wav[1] = f"spk1-u1 {tmp_path}/short.wav"
    wav[2] = "spk2-u0 sh -c 'echo decoder exploded >&2; exit 1' |"
    (data / "wav.scp").write_text("\n".join(wav) + "\n")
    # --strict: failure, and no feats.scp
    r = asr("make-fbank", "--strict", "--no-progress", data)
    assert r.returncode == 1 and "3 of 6 utterances failed, more than --max-failures 0 " in r.stderr
    assert not (data / "feats.scp").exists()
    # default (at most 10 % failed): also an error
    r = asr("make-fbank", "--no-progress", data)
    assert r.returncode == 1 and "more than --max-failures 0.1" in r.stderr
    assert not (data / "feats.scp").exists()
    # skipped and counted (the finished jobs of the earlier runs are reused)
    r = asr("make-fbank", "--no-progress", "--max-failures", "0.5", data)
    assert r.returncode == 0, r.stderr
    assert "features for 3 of 6 utterances, 3 failed (skipped); 1 jobs, 1 already done" in r.stdout
    assert "utterance spk1-u0: empty audio file" in r.stderr
    assert "utterance spk1-u1: too short for one frame (160 samples at 16000 Hz)" in r.stderr
    assert "utterance spk2-u0: command failed with exit status 1" in r.stderr and "decoder exploded" in r.stderr
    assert sorted(table(data / "feats.scp")) == ["spk2-u1", "spk3-u0", "spk3-u1"]
    # fix-data-dir then drops the utterances without features
    make_fbank(data, max_failures=0.5, progress=False)
    r = asr("fix-data-dir", data)
    assert "utterance spk1-u1 dropped: not in feats.scp" in r.stdout
    assert "utterance spk2-u0 dropped: not in feats.scp" in r.stdout
    assert asr("validate-data-dir", data).returncode == 0


def test_all_failed_is_an_error(data):
    (data / "wav.scp").write_text("".join(f"{u} /nowhere/{u}.wav\n" for u in table(data / "utt2spk")))
    with pytest.raises(FeatureError, match="all 6 utterances failed"):
        make_fbank(data, progress=False)
    assert not (data / "feats.scp").exists()


def test_other_sample_rate_resampled_or_failed(data, tmp_path):
    write_wav(tmp_path / "8k.wav", 1.0, rate=8000)
    wav = (data / "wav.scp").read_text().splitlines()
    wav[0] = f"spk1-u0 {tmp_path}/8k.wav"
    (data / "wav.scp").write_text("\n".join(wav) + "\n")
    r = make_fbank(data, progress=False)
    assert r.failed == [] and table(data / "utt2num_frames")["spk1-u0"] == "98"
    r = make_fbank(data, resample=False, max_failures=0.5, progress=False)
    assert [u for u, _ in r.failed] == ["spk1-u0"] and "sample rate 8000 Hz, expected 16000 Hz" in r.failed[0][1]


def test_segments_features(tmp_path):
    d = make_data_dir(tmp_path, speakers=("s1",), per_speaker=1)
    write_wav(tmp_path / "rec.wav", 3.0)
    (d / "wav.scp").write_text(f"rec {tmp_path}/rec.wav\n")
    (d / "segments").write_text("s1-a rec 0.0 1.2\ns1-b rec 1.0 2.5\ns1-c rec 2.0 4.0\n")
    (d / "utt2spk").write_text("s1-a s1\ns1-b s1\ns1-c s1\n")
    (d / "text").write_text("s1-a a\ns1-b b\ns1-c c\n")
    r = make_fbank(d, max_failures=0.5, progress=False)
    assert [u for u, _ in r.failed] == ["s1-c"] and "past the end of the audio" in r.failed[0][1]
    feats = kaldiio.load_scp(str(d / "feats.scp"))
    x = read_audio(tmp_path / "rec.wav")
    ref = FbankComputer(None).compute(x[16000:40000] * 32768)
    assert np.array_equal(feats["s1-b"], ref)


def test_compute_cmvn_and_reader(data):
    make_fbank(data, nj=2, progress=False)
    r = asr("compute-cmvn", "--global", "--no-progress", data)
    assert r.returncode == 0, r.stderr
    cmvn = kaldiio.load_scp(str(data / "cmvn.scp"))
    assert sorted(cmvn) == ["spk1", "spk2", "spk3"]
    raw = FeatureReader(data, cmvn="none")
    s1 = np.concatenate([raw["spk1-u0"], raw["spk1-u1"]]).astype(np.float64)
    st = cmvn["spk1"]
    assert st.dtype == np.float64 and st.shape == (2, 41)
    np.testing.assert_allclose(st[0, :40], s1.sum(0), rtol=1e-9)
    np.testing.assert_allclose(st[1, :40], (s1**2).sum(0), rtol=1e-9)
    assert st[0, 40] == len(s1) and st[1, 40] == 0
    g = kaldiio.load_mat(str(data / "global_cmvn.stats"))
    assert g[0, 40] == sum(raw.num_frames(u) for u in raw.utt_ids)

    spk = FeatureReader(data, cmvn="speaker")
    assert spk.utt_ids == raw.utt_ids and len(spk) == 6
    assert np.array_equal(spk["spk1-u1"], apply_cmvn(raw["spk1-u1"], st))
    both = np.concatenate([spk["spk1-u0"], spk["spk1-u1"]])
    np.testing.assert_allclose(both.mean(0), 0, atol=1e-3)
    utt = FeatureReader(data, cmvn="utterance")
    np.testing.assert_allclose(utt["spk2-u0"].mean(0), 0, atol=1e-3)
    items = list(FeatureReader(data, cmvn="global", norm_vars=True))
    assert [u for u, _ in items] == raw.utt_ids and items[0][1].shape == (raw.num_frames("spk1-u0"), 40)


def test_compute_cmvn_skips_and_counts_unreadable_features(data):
    make_fbank(data, progress=False)
    scp = (data / "feats.scp").read_text().splitlines()
    ark, offset = scp[1].split()[1].rsplit(":", 1)
    scp[1] = f"spk1-u1 {ark}:{int(offset) + 10**7}"  # past the end of the ark
    (data / "feats.scp").write_text("\n".join(scp) + "\n")

    r = asr("compute-cmvn", "--no-progress", "--max-failures", 0, data)
    assert r.returncode != 0 and not (data / "cmvn.scp").exists()
    assert "1 of 6 utterances failed, more than --max-failures 0" in r.stderr and "spk1-u1" in r.stderr
    assert "Traceback" not in r.stderr

    r = asr("compute-cmvn", "--no-progress", "--max-failures", 0.5, data)
    assert r.returncode == 0, r.stderr
    assert "compute-cmvn: 5 of 6 utterances done, 1 failed (skipped)" in r.stdout
    assert "skipped utterance spk1-u1" in r.stderr and "feats.scp" in r.stderr
    st = kaldiio.load_scp(str(data / "cmvn.scp"))["spk1"]
    u0 = FeatureReader(data, cmvn="none")["spk1-u0"].astype(np.float64)
    np.testing.assert_allclose(st[0, :40], u0.sum(0), rtol=1e-9)
    assert st[0, 40] == len(u0)


def test_reader_errors(data):
    from asr.errors import DataDirError

    with pytest.raises(DataDirError, match="make-fbank"):
        FeatureReader(data)
    make_fbank(data, progress=False)
    with pytest.raises(DataDirError, match="compute-cmvn"):
        FeatureReader(data, cmvn="speaker")
    with pytest.raises(FeatureError, match="no-such-utt has no features"):
        FeatureReader(data, cmvn="none")["no-such-utt"]
    assert os.path.isfile(data / "utt2num_frames")


def test_utterance_without_audio_entry_is_counted(data):
    wav = (data / "wav.scp").read_text().splitlines()
    (data / "wav.scp").write_text("\n".join(wav[1:]) + "\n")
    r = make_fbank(data, max_failures=0.5, progress=False)
    assert r.failed == [("spk1-u0", "utterance spk1-u0: no audio entry in wav.scp/segments")]
    assert r.num_done == 5


def test_interrupted_run_leaves_no_scp_and_resumes(data, monkeypatch):
    make_fbank(data, nj=3, progress=False)
    calls = {"n": 0}
    real = FbankComputer.compute

    def flaky(self, samples):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, samples)

    monkeypatch.setattr(FbankComputer, "compute", flaky)
    (data / "wav.scp").write_text((data / "wav.scp").read_text().replace("spk1-u1.wav", "spk1-u0.wav"))
    with pytest.raises(KeyboardInterrupt):
        make_fbank(data, nj=1, progress=False)  # one job: runs in this process
    ark_dir = data / "data"
    assert not (data / "feats.scp").exists() and not (data / "utt2num_frames").exists()
    assert not list(ark_dir.glob("*.tmp")) and not (ark_dir / "raw_fbank_data.1.done").exists()
    monkeypatch.setattr(FbankComputer, "compute", real)
    r = make_fbank(data, nj=1, progress=False)
    assert r.jobs_skipped == 0 and r.num_done == 6
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    assert np.array_equal(feats["spk1-u1"], feats["spk1-u0"])


def test_dead_worker_is_an_error_not_a_hang(data, monkeypatch):
    if "fork" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("needs fork so the patched method reaches the workers")
    monkeypatch.setattr(FbankComputer, "compute", lambda self, x: os._exit(3))
    with pytest.raises(FeatureError, match="worker process died"):
        make_fbank(data, nj=2, progress=False)
    assert not (data / "feats.scp").exists()
