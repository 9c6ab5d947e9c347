"""asr augment-data-dir: speed (alignments and CTMs follow), reverberation, noise at an SNR,
telephone channel, volume, seeded byte-identical output, bad input skip-and-count."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.hmm.kaldi_ali import split_to_phones
from asr.augment.alignments import new_boundaries, warp_runs
from asr.augment.rooms import RoomRanges, measure_rt60, simulate_room_set
from asr.cli import main
from asr.data.audio import read_audio
from asr.features.fbank import FbankComputer
from asr.hmm.transition_model import TransitionModel
from asr.io.int_ark import read_int_ark
from asr.io.tables import read_table
from hmm_test_helpers import make_data, make_lang
from helpers_datadir import make_data_dir, write_wav

FAST_ROOMS = ["--num-rooms", "2", "--rt60", "0.2", "0.3"]


def ctm_by_utt(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        t = line.split()
        out.setdefault(t[0], []).append((float(t[2]), float(t[3]), t[4]))
    return out


@pytest.fixture()
def aligned(tmp_path):
    """hmm_test_helpers' CTM data dir (u1-u3) with audio as long as each CTM, features'
    frame counts, and its imported alignment dir."""
    lang = make_lang(tmp_path)
    data = make_data(tmp_path)
    fb = FbankComputer()
    ends = {u: max(s + d for s, d, _ in ivs) for u, ivs in ctm_by_utt(data / "phones.ctm").items()}
    wav, frames = [], []
    for i, (u, end) in enumerate(sorted(ends.items())):
        p = tmp_path / f"{u}.wav"
        write_wav(p, end, seed=i)
        wav.append(f"{u} {p}\n")
        frames.append(f"{u} {fb.num_frames(int(round(end * 16000)))}\n")
    (data / "wav.scp").write_text("".join(wav))
    (data / "utt2spk").write_text("u1 s1\nu2 s1\nu3 s2\n")
    (data / "utt2num_frames").write_text("".join(frames))
    ali = tmp_path / "ali"
    assert main(["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"),
                 str(ali)]) == 0
    return lang, data, ali, tmp_path


def test_speed_perturbation_carries_ctm_and_alignments(aligned, capsys):
    lang, data, ali, tmp = aligned
    out, out_ali = tmp / "sp", tmp / "ali_sp"
    assert main(["augment-data-dir", "--speed", "0.9,1.0,1.1", "--ali-dir", str(ali), "--out-ali-dir", str(out_ali),
                 str(data), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: 9 utterances from 3 (3 copies each), 0 recordings skipped" in printed
    assert f"{out_ali}: 9 alignments (6 rescaled, 3 copied), 0 without" in printed
    from asr.align.ali_dir import AliDir

    assert AliDir.load(out_ali, need_tids=True).info["utterances"] == 9  # a finished alignment dir
    u2s = read_table(out / "utt2spk")
    assert u2s["sp0.9-u1"] == "sp0.9-s1" and u2s["u1"] == "s1" and u2s["sp1.1-u3"] == "sp1.1-s2"
    assert read_table(out / "utt2uniq")["sp1.1-u2"] == "u2"
    assert read_table(out / "text")["sp0.9-u1"] == "CAT AT TAB"
    assert (out / "spk2utt").read_text().splitlines()[0] == "s1 u1 u2"
    ctm = ctm_by_utt(out / "phones.ctm")
    fb = FbankComputer()
    tm = TransitionModel.read(out_ali / "final.mdl")
    tids, pdfs = read_int_ark(out_ali / "ali.tid.ark"), read_int_ark(out_ali / "ali.pdf.ark")
    src_tids = read_int_ark(ali / "ali.tid.ark")
    dur = {u: float(v) for u, v in read_table(out / "utt2dur").items()}
    for utt, spec in read_table(out / "wav.scp").items():
        x = read_audio(spec)
        factor = float(utt[2:5]) if utt.startswith("sp") else 1.0
        src = utt.split("-", 1)[1] if factor != 1.0 else utt
        assert abs(len(x) - len(read_audio(read_table(data / "wav.scp")[src])) / factor) <= 1
        assert abs(dur[utt] - len(x) / 16000) < 1e-3
        # the CTM tiles the new audio: contiguous, ending at the new duration (±1 frame)
        ivs = ctm[utt]
        assert ivs[0][0] == 0.0
        assert all(abs(a[0] + a[1] - b[0]) < 2e-4 for a, b in zip(ivs, ivs[1:]))
        assert abs(ivs[-1][0] + ivs[-1][1] - len(x) / 16000) <= 0.01
        # frame alignments: one per feature frame of the new audio, same phones in order
        assert len(tids[utt]) == fb.num_frames(len(x))
        assert np.array_equal(pdfs[utt], tm.tid2pdf[tids[utt]])
        phones, lengths = split_to_phones(tm, tids[utt])
        src_phones, src_lengths = split_to_phones(tm, src_tids[src])
        assert np.array_equal(phones, src_phones)
        assert np.all(np.abs(lengths - src_lengths / factor) <= 2)
    assert np.array_equal(tids["u1"], src_tids["u1"])
    # the rescaled CTMs import again: every utterance, nothing excluded
    frames = {u: fb.num_frames(len(read_audio(s))) for u, s in read_table(out / "wav.scp").items()}
    (out / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in sorted(frames.items())))
    assert main(["import-ali", "--format", "ctm", "--lang", str(lang), str(out), str(out / "phones.ctm"),
                 str(tmp / "ali_sp_ctm")]) == 0
    stats = json.loads((tmp / "ali_sp_ctm" / "import_stats.json").read_text())
    assert stats["utterances_imported"] == 9 and stats.get("length_fixed_within_tolerance", 0) == 0, stats


def test_boundaries_keep_one_frame_per_state():
    # 1-frame states compressed by 1.1 keep a frame each; the end is the new frame count
    b = new_boundaries(np.arange(0, 11), 1.1, 10)
    assert b[0] == 0 and b[-1] == 10 and np.all(np.diff(b) == 1)
    b = new_boundaries(np.array([0, 30, 33, 100]), 0.9, 111)
    assert b.tolist() == [0, 33, 37, 111]
    # boundary 10 lies at 10.75 window-centre frames (0.75 = (length - shift) / 2 shift): 21.5 - 0.75
    assert warp_runs(np.array([5] * 10 + [7] * 3), 0.5, 25).tolist() == [5] * 21 + [7] * 4
    with pytest.raises(Exception, match="cannot hold"):
        new_boundaries(np.arange(0, 11), 1.1, 9)


def burst_dir(tmp, name="burst"):
    """One recording: 0.25 s of noise, then 1.25 s of silence."""
    d = tmp / name
    d.mkdir()
    x = np.zeros(24000)
    x[:4000] = np.random.default_rng(0).uniform(-0.3, 0.3, 4000)
    sf.write(str(tmp / f"{name}.wav"), x, 16000, subtype="PCM_16")
    (d / "wav.scp").write_text(f"b1 {tmp / name}.wav\n")
    (d / "utt2spk").write_text("b1 b1\n")
    return d


def test_reverberation_has_the_rooms_decay(tmp_path):
    d = burst_dir(tmp_path)
    out = tmp_path / "rvb"
    assert main(["augment-data-dir", "--reverb-prob", "1", "--num-rooms", "1", "--rt60", "0.5", "0.5",
                 str(d), str(out)]) == 0
    room = json.loads((out / "rooms.json").read_text())[0]
    y = read_audio(read_table(out / "wav.scp")["rvb1-b1"])
    tail = y[4000:]
    assert np.abs(y[8000:]).max() > 0.01  # reverberation continues after the burst
    assert abs(measure_rt60(tail, 16000) - room["rt60"]) < 0.15 * room["rt60"]
    assert 0.3 < room["rt60"] < 0.8
    assert "room=train-0" in (out / "reco2aug").read_text()


def test_room_sets_are_disjoint_and_repeatable():
    ranges = RoomRanges(rt60=(0.2, 0.3))
    a, b = simulate_room_set("train", 2, 16000, ranges), simulate_room_set("test", 2, 16000, ranges)
    again = simulate_room_set("train", 2, 16000, ranges)
    assert all(np.array_equal(r.rir, s.rir) for r, s in zip(a, again))
    for r in a:
        for s in b:
            assert r.dims != s.dims and not (len(r.rir) == len(s.rir) and np.allclose(r.rir, s.rir))


@pytest.mark.parametrize("kind", ["colored", "babble", "music"])
def test_noise_at_the_requested_snr(tmp_path, kind):
    d = make_data_dir(tmp_path, seconds=1.5)
    for snr in (3.0, 15.0):
        out = tmp_path / f"noise{snr}"
        assert main(["augment-data-dir", "--noise-prob", "1", "--noise-types", kind, "--snr", str(snr), str(snr),
                     str(d), str(out)]) == 0
        aug = {k: dict(kv.split("=") for kv in v.split()) for k, v in read_table(out / "reco2aug").items()}
        for utt, spec in read_table(d / "wav.scp").items():
            x = read_audio(spec).astype(np.float64)
            y = read_audio(read_table(out / "wav.scp")[f"noise1-{utt}"]).astype(np.float64)
            y /= float(aug[f"noise1-{utt}"].get("clip_gain", 1.0))
            assert aug[f"noise1-{utt}"]["noise"] == kind
            measured = 10 * np.log10(np.mean(x * x) / np.mean((y - x) ** 2))
            assert abs(measured - snr) < 0.5, (utt, measured)


def test_telephone_band_and_volume(tmp_path):
    d = make_data_dir(tmp_path, speakers=("a",), per_speaker=1, seconds=1.0)
    out = tmp_path / "tel"
    assert main(["augment-data-dir", "--telephone-prob", "1", "--volume", "--volume-range", "0.5", "0.6",
                 str(d), str(out)]) == 0
    y = read_audio(read_table(out / "wav.scp")["tel1-a-u0"]).astype(np.float64)
    x = read_audio(read_table(d / "wav.scp")["a-u0"])
    assert len(y) == len(x)
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / 16000)
    assert spec[f > 4200].sum() < 1e-4 * spec.sum()  # nothing above the 8 kHz rate's band
    gain = float(dict(kv.split("=") for kv in read_table(out / "reco2aug")["tel1-a-u0"].split())["volume"])
    assert 0.5 <= gain <= 0.6


def test_seeded_output_is_byte_identical(tmp_path):
    d = make_data_dir(tmp_path, seconds=1.0)
    opts = ["--speed", "0.9,1.1", "--reverb-prob", "0.7", "--noise-prob", "0.7", "--telephone-prob", "0.3",
            "--volume", "--num-copies", "2", *FAST_ROOMS]
    assert main(["augment-data-dir", *opts, "--nj", "1", str(d), str(tmp_path / "a")]) == 0
    assert main(["augment-data-dir", *opts, "--nj", "2", str(d), str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) > 20 and Path("wav/rvb2-sp1.1-spk3-u1.wav") in files
    for f in files:
        if f.name not in ("augment.json", "wav.scp"):
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    # a different seed changes the audio
    assert main(["augment-data-dir", *opts, "--seed", "2", str(d), str(tmp_path / "c")]) == 0
    f = "wav/rvb1-sp0.9-spk1-u0.wav"
    assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes()


def test_bad_input_is_skipped_and_counted(tmp_path, capsys):
    d = make_data_dir(tmp_path, seconds=1.0)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(8000, np.int16), 16000)
    with open(d / "wav.scp", "a") as f:
        f.write(f"zz-gone {tmp_path}/missing.wav\nzz-silent {tmp_path}/silent.wav\n")
    with open(d / "utt2spk", "a") as f:
        f.write("zz-gone zz\nzz-silent zz\n")
    out = tmp_path / "out"
    assert main(["augment-data-dir", "--noise-prob", "1", "--noise-types", "colored", str(d), str(out)]) == 0
    assert "6 utterances from 8 (1 copies each), 2 recordings skipped" in capsys.readouterr().out
    excluded = (out / "excluded.txt").read_text()
    assert "zz-gone utterance zz-gone: no such audio file" in excluded
    assert "zz-silent" in excluded and "silent" in excluded
    assert "noise1-zz-gone" not in (out / "utt2spk").read_text()
    # a finished dir with the same settings is kept; bad options are one-line errors
    first = (out / "augment.json").stat().st_mtime_ns
    assert main(["augment-data-dir", "--noise-prob", "1", "--noise-types", "colored", str(d), str(out)]) == 0
    assert (out / "augment.json").stat().st_mtime_ns == first
    capsys.readouterr()
    # the missing recording restored under the same wav.scp: augmented again, nothing left over
    (out / "feats.scp").write_text("stale\n")
    write_wav(tmp_path / "missing.wav", 1.0, seed=3)
    assert main(["augment-data-dir", "--noise-prob", "1", "--noise-types", "colored", str(d), str(out)]) == 0
    assert "7 utterances from 8 (1 copies each), 1 recording skipped" in capsys.readouterr().out
    assert "noise1-zz-gone" in (out / "utt2spk").read_text() and not (out / "feats.scp").exists()
    # an output that is not a data dir is not cleaned out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x\n")
    assert main(["augment-data-dir", "--noise-prob", "1", str(d), str(tmp_path / "mine")]) == 1
    assert "not replaced" in capsys.readouterr().err and (tmp_path / "mine" / "notes.txt").is_file()
    assert main(["augment-data-dir", "--speed", "0,1.1", str(d), str(tmp_path / "x")]) == 1
    assert "speed factors must be positive" in capsys.readouterr().err
    assert main(["augment-data-dir", str(d), str(tmp_path / "x")]) == 1
    assert "nothing to do" in capsys.readouterr().err


def test_warp_keeps_the_alignment_order(aligned):
    """Reordered (Kaldi's default) and non-reordered alignments rescale to the same states."""
    from asr.augment.alignments import warp_tids
    from asr.hmm.kaldi_ali import is_reordered

    _, _, ali, _ = aligned
    tm = TransitionModel.read(ali / "final.mdl")
    tids = read_int_ark(ali / "ali.tid.ark")["u1"]
    assert is_reordered(tm, tids)
    # non-reordered form: each visit's leaving transition moved from its first frame to its last
    starts = np.nonzero(~tm.is_self_loop[tids])[0]
    plain = tids.copy()
    for a, b in zip(starts, list(starts[1:]) + [len(tids)]):
        plain[a:b] = np.concatenate([tids[a + 1:b], tids[a:a + 1]])
    assert not is_reordered(tm, plain)
    for factor, frames in ((0.9, 134), (1.1, 110)):
        r, p = warp_tids(tids, factor, frames, tm), warp_tids(plain, factor, frames, tm)
        assert len(r) == len(p) == frames and is_reordered(tm, r) and not is_reordered(tm, p)
        assert np.array_equal(split_to_phones(tm, r)[1], split_to_phones(tm, p)[1])
        assert np.array_equal(np.sort(r), np.sort(p))  # same tids, only their order within visits differs


def test_random_speed_copies(aligned, capsys):
    _, data, ali, tmp = aligned
    out = tmp / "rs"
    assert main(["augment-data-dir", "--speed", "0.9,1.1", "--random-speed", "--noise-prob", "1", "--num-copies", "2",
                 "--include-original", "--noise-types", "colored", "--ali-dir", str(ali), "--out-ali-dir",
                 str(tmp / "ali_rs"), str(data), str(out)]) == 0
    utts = sorted(read_table(out / "utt2spk"))
    assert len(utts) == 9 and {"u1", "u2", "u3"} <= set(utts)
    copies = [u for u in utts if u.startswith("noise")]
    assert all(re.fullmatch(r"noise[12]-sp(0\.9|1\.1)-u[123]", u) for u in copies) and len(copies) == 6
    assert len({u.split("-")[1] for u in copies}) == 2  # both factors drawn
    tids = read_int_ark(tmp / "ali_rs" / "ali.tid.ark")
    fb = FbankComputer()
    for u, spec in read_table(out / "wav.scp").items():
        assert len(tids[u]) == fb.num_frames(len(read_audio(spec)))


def test_segments_are_carried_and_scaled(tmp_path):
    """A recording with two segments: speed-perturbed as a whole, segment times / factor."""
    d = tmp_path / "seg"
    d.mkdir()
    write_wav(tmp_path / "rec.wav", 3.0, seed=4)
    (d / "wav.scp").write_text(f"rec1 {tmp_path}/rec.wav\n")
    (d / "segments").write_text("a-1 rec1 0.20 1.40\na-2 rec1 1.50 -1\n")
    (d / "utt2spk").write_text("a-1 a\na-2 a\n")
    (d / "text").write_text("a-1 one\na-2 two\n")
    out = tmp_path / "out"
    assert main(["augment-data-dir", "--speed", "0.9,1.1", str(d), str(out)]) == 0
    assert sorted(read_table(out / "wav.scp")) == ["sp0.9-rec1", "sp1.1-rec1"]
    seg = {u: v.split() for u, v in read_table(out / "segments").items()}
    assert seg["sp0.9-a-1"] == ["sp0.9-rec1", f"{0.2 / 0.9:.3f}", f"{1.4 / 0.9:.3f}"]
    assert seg["sp1.1-a-2"] == ["sp1.1-rec1", f"{1.5 / 1.1:.3f}", "-1"]
    dur = read_table(out / "utt2dur")
    n = len(read_audio(read_table(out / "wav.scp")["sp1.1-rec1"]))
    assert abs(float(dur["sp1.1-a-2"]) - (n / 16000 - 1.5 / 1.1)) < 2e-3
    assert read_table(out / "utt2spk")["sp0.9-a-2"] == "sp0.9-a"
