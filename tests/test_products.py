"""The typed products and their fingerprints: "already done" means same inputs (a changed
input is redone), Kaldi graphs accepted when consistent by content, transcribe feeds the
model's own feature options (80 bins, 8 kHz), one channel rule for make-fbank and
transcribe, digital silence transcribes as no words, threads from the job count."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from product_fixtures import copy, copy_wav_dir


def _log_text(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def test_make_fbank_redoes_a_replaced_wav_and_retries_a_stale_error(world, tmp_path, caplog):
    import kaldiio

    from asr.features.make_fbank import make_fbank

    d = copy_wav_dir(world, tmp_path)
    wav = tmp_path / "wav" / "s1-u1.wav"
    good = wav.read_bytes()
    wav.write_bytes(b"RIFF broken")
    r = make_fbank(d, nj=2, max_failures=0.5, progress=False)
    assert [u for u, _ in r.failed] == ["s1-u1"]
    # repaired: the stale error is retried (same path, new size/mtime), without --force
    wav.write_bytes(good)
    r = make_fbank(d, nj=2, max_failures=0.5, progress=False)
    assert r.failed == [] and r.jobs_skipped == 1
    before = kaldiio.load_scp(str(d / "feats.scp"))["s1-u1"]
    # replaced by another recording: recomputed
    from helpers_datadir import write_wav

    write_wav(wav, 1.5, seed=7)
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    (d / "global_cmvn.stats").write_bytes(b"stats of the old features")
    r = make_fbank(d, nj=2, progress=False)
    after = kaldiio.load_scp(str(d / "feats.scp"))["s1-u1"]
    assert r.jobs_skipped == 1 and after.shape[0] > before.shape[0]
    # what describes the old audio goes: utt2dur follows it, the global CMVN stats are removed
    assert abs(float(dict(line.split() for line in (d / "utt2dur").read_text().splitlines())["s1-u1"]) - 1.5) < 0.01
    assert not (d / "global_cmvn.stats").exists()
    # unchanged: nothing recomputed; every option recorded for pack-model-dir
    assert make_fbank(d, nj=2, progress=False).jobs_skipped == 2
    conf = (d / "fbank.conf").read_text()
    assert "--num-mel-bins=40" in conf and "--sample-frequency=16000" in conf and "--window-type=povey" in conf


def test_make_fbank_refuses_an_ark_dir_holding_another_data_dirs_features(world, tmp_path):
    """Two data dirs of the same base name sharing ARK_DIR (a/train, b/train -> fbank/): the
    second does not overwrite the arks the first one's feats.scp points to."""
    import kaldiio

    from asr.errors import FeatureError
    from asr.features.make_fbank import make_fbank

    a = copy_wav_dir(world, tmp_path / "a")
    b = copy(a, tmp_path / "b" / a.name)
    ids, paths = zip(*(line.split() for line in (b / "wav.scp").read_text().splitlines()))
    (b / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in zip(ids, paths[1:] + paths[:1])))  # other audio
    make_fbank(b, ark_dir=tmp_path / "fbank", progress=False)
    before = kaldiio.load_scp(str(b / "feats.scp"))
    with pytest.raises(FeatureError, match=f"holds the features of {b.absolute()}"):
        make_fbank(a, ark_dir=tmp_path / "fbank", progress=False)
    after = kaldiio.load_scp(str(b / "feats.scp"))
    assert all(np.array_equal(before[u], after[u]) for u in before)
    make_fbank(a, ark_dir=tmp_path / "fbank_a", progress=False)  # its own ARK_DIR: fine
    (tmp_path / "link").symlink_to(tmp_path / "b")  # b reached by another path: the same dir, fine
    make_fbank(tmp_path / "link" / b.name, ark_dir=tmp_path / "fbank", progress=False)


def test_one_channel_rule_for_make_fbank_and_transcribe(world, tmp_path, caplog, monkeypatch):
    import kaldiio

    from asr.decode import decode_dir
    from asr.features.make_fbank import make_fbank
    from helpers_datadir import write_wav

    d = copy_wav_dir(world, tmp_path)
    stereo = tmp_path / "wav" / "s1-u0.wav"
    write_wav(stereo, 1.0, seed=3, channels=2)
    caplog.set_level(logging.INFO)
    make_fbank(d, progress=False)
    assert "1 utterances have multi-channel audio: features from channel 0" in _log_text(caplog)
    want = kaldiio.load_scp(str(d / "feats.scp"))["s1-u0"]
    seen = []
    monkeypatch.setattr(decode_dir.Recognizer, "recognize",
                        lambda self, feats, lattice=False: (seen.append(feats[0]), ([_Empty()], None))[1])
    monkeypatch.setattr(decode_dir, "apply_cmvn", lambda f, s: f, raising=False)
    list(decode_dir.transcribe_files(world.model, [str(stereo)]))
    assert "2 channels: using channel 0" in _log_text(caplog)
    assert np.allclose(seen[0], want, atol=1e-4)  # the model dir's cmvn is none


class _Empty:
    words: list = []


def test_transcribe_feeds_the_model_dirs_feature_options(world, tmp_path, caplog, monkeypatch):
    """A model trained on 80-bin 8 kHz features gets 80-bin 8 kHz features (resampled, logged)."""
    from asr.decode import decode_dir
    from asr.features.fbank import FbankComputer
    from asr.hmm.transition_model import TransitionModel
    from asr.nnet.model_dir import ModelDir, save_model_dir
    from asr.nnet.registry import build_model

    P = TransitionModel.read(world.mono / "final.mdl").num_pdfs
    m = tmp_path / "m80"
    cfg = {"family": "dnn", "splice": 0, "hidden_dim": 16, "num_layers": 1, "activation": "relu"}
    save_model_dir(m, build_model(cfg, 80, P), cfg, 80, P, output_delay=0, cmvn="utterance")
    np.save(m / "log_priors.npy", np.full(P, -np.log(P), np.float32))
    opts = FbankComputer(None, overrides={"num-mel-bins": "80", "sample-frequency": "8000",
                                          "high-freq": "3800"}).all_options
    ModelDir.pack(m, m, world.mono, world.lang, opts, graph_dir=world.graph)
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "a16k.wav", x, 16000)
    seen = []
    orig = decode_dir.Recognizer.recognize

    def spy(self, feats, lattice=False):
        seen.append(feats[0])
        return orig(self, feats, lattice)

    monkeypatch.setattr(decode_dir.Recognizer, "recognize", spy)
    caplog.set_level(logging.INFO)
    out = list(decode_dir.transcribe_files(m, [str(tmp_path / "a16k.wav")]))
    assert out[0][0] == "a16k" and out[0][2] is None
    assert seen[0].shape == (98, 80)  # 1 s at 8 kHz, 25/10 ms frames, 80 bins
    assert "resampling 16000 Hz -> 8000 Hz" in _log_text(caplog)
    md = ModelDir.load(m)
    assert md.fbank["num-mel-bins"] == "80" and md.fbank["sample-frequency"] == "8000"
    assert set(md.fbank) >= {"frame-length", "frame-shift", "dither", "preemphasis-coefficient", "snip-edges"}


def test_digital_silence_transcribes_as_no_words(world, tmp_path, capsys, caplog):
    sf.write(tmp_path / "silence.wav", np.zeros(5 * 16000, np.int16), 16000)
    caplog.set_level(logging.INFO)
    assert main(["transcribe", "--model-dir", str(world.model), str(tmp_path / "silence.wav")]) == 0
    assert capsys.readouterr().out.splitlines() == ["silence"]
    assert "digital silence" in _log_text(caplog)


def test_kaldi_graph_accepted_when_consistent(world, tmp_path, capsys, caplog):
    g = copy(world.graph, tmp_path / "kaldi_graph")
    (g / "graph.json").unlink()
    caplog.set_level(logging.INFO)
    assert main(["decode", "--no-progress", "--model-dir", str(world.model), "--graph-dir", str(g),
                 str(world.feats), str(tmp_path / "dec")]) == 0
    assert "checked by content: num_pdfs" in _log_text(caplog)
    assert "disambiguation ids from" in _log_text(caplog) and "phones.txt identical" in _log_text(caplog)
    assert "%WER 0.00" in capsys.readouterr().out


def test_decode_redone_only_when_an_input_changed(world, tmp_path, caplog):
    dec = tmp_path / "dec"
    args = ["decode", "--no-progress", "--model-dir", str(world.model), str(world.feats), str(dec)]
    caplog.set_level(logging.INFO)
    assert main(args) == 0
    first = (dec / "decode.json").stat().st_mtime_ns
    caplog.clear()
    assert main(args) == 0
    assert "is up to date" in _log_text(caplog) and (dec / "decode.json").stat().st_mtime_ns == first
    assert main(args[:-2] + ["--beam", "12", str(world.feats), str(dec)]) == 0  # another option: decoded again
    assert (dec / "decode.json").stat().st_mtime_ns != first


def test_changed_text_rescores_the_kept_decode(world, tmp_path, caplog):
    """The transcript does not change the search: the decode is kept, its wer is rescored."""
    import json

    data = copy(world.feats, tmp_path / "data")
    dec = tmp_path / "dec"
    args = ["decode", "--no-progress", "--model-dir", str(world.model), str(data), str(dec)]
    caplog.set_level(logging.INFO)
    assert main(args) == 0
    assert (dec / "wer").read_text().startswith("%WER 0.00")
    hyp = (dec / "hyp.txt").read_text()
    lines = (data / "text").read_text().splitlines()
    utt, *words = lines[0].split()
    (data / "text").write_text("\n".join([f"{utt} {' '.join(words)} EXTRA"] + lines[1:]) + "\n")
    caplog.clear()
    assert main(args) == 0
    assert "is up to date" in _log_text(caplog) and "rescored its hyp.txt" in _log_text(caplog)
    assert (dec / "hyp.txt").read_text() == hyp
    wer = (dec / "wer").read_text()
    assert not wer.startswith("%WER 0.00") and " 1 del" in wer.splitlines()[0]
    assert json.loads((dec / "decode.json").read_text())["wer"] == wer.splitlines()[0]
    caplog.clear()
    assert main(args) == 0  # now in step: nothing rescored
    assert "rescored" not in _log_text(caplog)


def test_make_graph_and_pack_skip_when_up_to_date(world, tmp_path, caplog):
    from asr.graph.mkgraph import make_graph
    from asr.nnet.model_dir import ModelDir

    g = tmp_path / "graph"
    make_graph(world.lang, world.mono, world.lm, g)
    assert make_graph(world.lang, world.mono, world.lm, g).get("skipped")
    lm2 = tmp_path / "lm2.arpa"
    lm2.write_text(world.lm.read_text().replace("-0.2 <s> CAT", "-0.25 <s> CAT"))
    assert not make_graph(world.lang, world.mono, lm2, g).get("skipped")  # another LM: rebuilt
    # a model dir packed with the old graph is repacked with the new one, and only then
    m = copy(world.model, tmp_path / "model")
    md = ModelDir.load(m)
    caplog.set_level(logging.INFO)
    args = ["pack-model-dir", "--tree-dir", str(world.mono), "--lang", str(world.lang), "--fbank-config",
            str(m / "fbank.conf")]
    assert main(args + ["--graph-dir", str(world.graph), str(m)]) == 0
    assert "is up to date" in _log_text(caplog)
    assert main(args + ["--graph-dir", str(g), str(m)]) == 0
    assert ModelDir.load(m).fingerprints["graph/HCLG.fst"] != md.fingerprints["graph/HCLG.fst"]


def test_pack_refuses_a_network_trained_on_another_trees_alignments(world, tmp_path, capsys):
    """A network whose model.yaml records the tree of its training alignments is packed with
    that tree only: with another one its pdf ids would silently mean other states."""
    import yaml

    from asr.io.fingerprint import file_hash

    m = copy(world.model, tmp_path / "model")
    cfg = yaml.safe_load((m / "model.yaml").read_text())
    args = ["pack-model-dir", "--force", "--tree-dir", str(world.mono), "--lang", str(world.lang),
            "--fbank-config", str(m / "fbank.conf"), "--graph-dir", str(world.graph), str(m)]
    for tree, rc in ((world.tri / "tree", 1), (world.mono / "tree", 0)):
        cfg["training"] = {"epoch": 1, "alignment_tree": file_hash(tree)}
        (m / "model.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        assert main(args) == rc
    err = capsys.readouterr().err
    assert f"the network {m} was trained on alignments of another tree than {world.mono / 'tree'}" in err
    assert err.count("\n") == 1


def test_pack_keeps_the_training_features_options_and_lets_dither_differ(world, tmp_path, capsys):
    """A network recording its training features' options (training.fbank, asr train) is packed
    with those options (dither may differ: train with it, decode without); the record stays in
    the packed model.yaml, and another --fbank-config is refused (test_bad_input.py)."""
    import yaml

    from asr.features.fbank import FbankComputer
    from asr.nnet.model_dir import ModelDir

    m = copy(world.model, tmp_path / "model")
    cfg = yaml.safe_load((m / "model.yaml").read_text())
    trained = FbankComputer(None, overrides={"dither": "1.0", "low-freq": "40"}).all_options
    cfg["training"] = {"epoch": 1, "fbank": trained}
    (m / "model.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    conf = tmp_path / "decode.conf"
    conf.write_text("--dither=0\n--low-freq=40\n")
    args = ["pack-model-dir", "--tree-dir", str(world.mono), "--lang", str(world.lang), "--fbank-config", str(conf),
            "--graph-dir", str(world.graph), str(m)]
    assert main(args) == 0, capsys.readouterr().err
    md = ModelDir.load(m)
    assert md.fbank["dither"] == "0" and md.fbank["low-freq"] == "40"
    assert md.config["training"]["fbank"] == trained


def test_failed_import_then_fixed_import(tmp_path):
    """The reported case: a failed import left an empty ali.tid.ark, so re-running stage 3
    skipped the import. Now nothing is left, and the fixed re-run imports."""
    from asr.align.ali_dir import AliDir
    from hmm_test_helpers import make_data, make_lang

    lang, data = make_lang(tmp_path), make_data(tmp_path)
    good = (data / "phones.ctm").read_text()
    (data / "phones.ctm").write_text("x9 1 0.00 0.20 SIL\n")
    args = ["import-ali", "--max-failures", "0.5", "--format", "ctm", "--lang", str(lang), str(data),
            str(data / "phones.ctm"), str(tmp_path / "ali")]
    assert main(args) == 1
    assert not (tmp_path / "ali").exists()
    (data / "phones.ctm").write_text(good)
    assert main(args) == 0
    assert AliDir.load(tmp_path / "ali", need_tids=True).info["utterances"] == 3


def test_threads_follow_the_job_count(monkeypatch):
    import torch

    from asr import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.default_threads(1) == 8 and threads.default_threads(2) == 4 and threads.default_threads(16) == 1
    old = torch.get_num_threads()
    try:
        assert threads.set_torch_threads(None, jobs=4) == 2 and torch.get_num_threads() == 2
        assert threads.set_torch_threads(3) == 3
    finally:
        torch.set_num_threads(old)


def test_atomic_dir_keeps_the_old_dir_on_failure(tmp_path):
    from asr.io.atomic import atomic_dir

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old").write_text("x")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d") as t:
            (t / "new").write_text("y")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"] and (tmp_path / "d" / "old").exists()
    with atomic_dir(tmp_path / "d") as t:
        (t / "new").write_text("y")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_an_output_naming_another_kind_of_dir_is_refused_and_kept(world, tmp_path, capsys):
    """A product written over a dir that is not one of its kind (a data dir, lang dir or tree
    dir given as OUT by mistake) is a one-line error that deletes nothing; checked before
    the work (decode, align), not after it."""
    data, lang, tree = copy(world.feats, tmp_path / "data"), copy(world.lang, tmp_path / "lang"), copy(
        world.mono, tmp_path / "tree")
    ali = tmp_path / "ali"
    assert main(["align-equal", "--max-failures", "1", str(data), str(lang), str(ali)]) == 0
    listing = {d: sorted(p.name for p in d.iterdir()) for d in (data, lang, tree)}
    cases = [
        (["align-equal", str(data), str(lang), str(data)], data),
        (["build-tree", "--lang", str(lang), "--num-leaves", "4", str(data), str(ali), str(lang)], lang),
        (["decode", "--no-progress", "--model-dir", str(world.model), str(data), str(lang)], lang),
        (["make-graph", str(lang), str(tree), str(world.lm), str(data)], data),
        (["pack-model-dir", "--network", str(world.model), "--tree-dir", str(tree), "--lang", str(lang),
          "--fbank-config", str(world.model / "fbank.conf"), str(tree)], tree),
    ]
    for args, victim in cases:
        capsys.readouterr()
        assert main(args) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert f"{victim}: exists and holds none of" in err[-1] and "not replaced" in err[-1], (args, err)
    assert {d: sorted(p.name for p in d.iterdir()) for d in (data, lang, tree)} == listing
    # an output naming a file (e.g. the source's own text) is refused too, not deleted
    wavs = copy(world.wavs, tmp_path / "wavs")
    text = (wavs / "text").read_bytes()
    assert main(["subset-data-dir", "--first", "1", str(wavs), str(wavs / "text")]) == 1
    assert "exists and is not a directory: not replaced" in capsys.readouterr().err
    assert (wavs / "text").read_bytes() == text


def test_global_and_online_cmvn_models_carry_the_training_stats(world, tmp_path, capsys):
    """A network trained with cmvn global/online is packed only with the training data's
    global stats, and decoding normalises with those (never the test set's own)."""
    import kaldiio
    import yaml

    from asr.features.reader import FeatureReader
    from asr.nnet.model_dir import ModelDir

    m = copy(world.model, tmp_path / "model")
    cfg = yaml.safe_load((m / "model.yaml").read_text())
    cfg["cmvn"] = "online"
    (m / "model.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    args = ["pack-model-dir", "--force", "--tree-dir", str(world.mono), "--lang", str(world.lang),
            "--fbank-config", str(m / "fbank.conf"), "--graph-dir", str(world.graph), str(m)]
    assert main(args) == 1
    assert "trained with cmvn online: give the training data's global CMVN stats (--global-cmvn" in \
        capsys.readouterr().err
    stats = np.zeros((2, 41))
    stats[0, :40], stats[0, 40] = 0.5 * 10, 10  # mean 0.5 in every dim
    kaldiio.save_mat(str(tmp_path / "global_cmvn.stats"), stats)
    assert main(args[:-1] + ["--global-cmvn", str(tmp_path / "global_cmvn.stats"), str(m)]) == 0
    md = ModelDir.load(m)
    assert md.cmvn == "online"
    np.testing.assert_array_equal(md.global_cmvn_stats(), stats)
    # the decoder's reader uses the model's stats even when the data dir has its own
    d = copy(world.feats, tmp_path / "feats")
    kaldiio.save_mat(str(d / "global_cmvn.stats"), np.ones((2, 41)))
    r = FeatureReader(d, cmvn="global", global_stats=md.global_cmvn_stats())
    np.testing.assert_allclose(r["u1"], r.raw("u1") - 0.5)
    # a packed online model without its stats is refused when loaded
    (m / "global_cmvn.stats").unlink()
    with pytest.raises(Exception, match="global_cmvn.stats"):
        ModelDir.load(m)
