"""Flat start: equal alignment, transcript checks, realignment rounds, the flat-start pipeline."""

import json
import shutil

import numpy as np
import pytest
from flat_fixtures import learnable_corpus, tiny_net_config
from hmm_test_helpers import make_lang

from asr.align.ali_dir import AliDir
from asr.cli import main
from asr.hmm.kaldi_ali import split_to_phones
from asr.hmm.transition_model import TransitionModel
from asr.io.int_ark import read_int_ark
from asr.lang.lang_dir import LangDir

IMPORT_LAYOUT = {"ali.pdf.ark", "ali.tid.ark", "phones.ark", "tree", "final.mdl", "num_pdfs", "silence_pdfs.int",
                 "phones.txt", "excluded.txt"}


def _data(tmp, texts: dict[str, tuple[str, int]]):
    d = tmp / "data"
    d.mkdir()
    (d / "text").write_text("".join(f"{u} {t}\n" for u, (t, _) in sorted(texts.items())))
    (d / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, (_, n) in sorted(texts.items())))
    return d


def _state_runs(tm, tids):
    """Lengths of the runs of one HMM state within a phone instance (visits)."""
    phones, lengths = split_to_phones(tm, tids)
    inst = np.repeat(np.arange(len(lengths)), lengths)
    key = inst * 100 + tm.tid2hmm_state[tids]
    change = np.nonzero(np.diff(key))[0] + 1
    return np.diff(np.concatenate([[0], change, [len(tids)]])), phones


def test_equal_alignment_tiles_each_utterance(tmp_path):
    lang_dir = make_lang(tmp_path)
    lang = LangDir(lang_dir)
    data = _data(tmp_path, {"u1": ("CAT AT TAB", 100), "u2": ("A BAT", 37), "u3": ("CAT CAT CAT BAT", 9),
                            "u4": ("TAB A", 3100)})
    out = tmp_path / "eq"
    # 1 of 4 skipped is more than the default --max-failures 0.1: an error, nothing written
    assert main(["align-equal", str(data), str(lang_dir), str(out)]) == 1
    assert not out.exists()
    assert main(["align-equal", "--nj", "2", "--max-failures", "1", str(data), str(lang_dir), str(out)]) == 0
    stats = json.loads((out / "align_stats.json").read_text())
    assert stats["aligned"] == 3 and stats["too_short"] == 1 and stats["long_utterances"] == 1
    assert (out / "excluded.txt").read_text().startswith("u3 too_short: utterance u3: 9 frames are too few")
    assert IMPORT_LAYOUT <= {p.name for p in out.iterdir()}
    tm = TransitionModel.read(out / "final.mdl")
    tids = read_int_ark(out / "ali.tid.ark")
    assert read_int_ark(out / "ali.pdf.ark")["u1"].tolist() == tm.tid2pdf[tids["u1"]].tolist()
    prons = {w: [tuple(p) for p in lang.align_lexicon[lang.words[w]]] for w in ("CAT", "AT", "TAB", "A", "BAT")}
    sil = set(lang.silence_phones)
    for utt, (text, n) in {"u1": ("CAT AT TAB", 100), "u2": ("A BAT", 37), "u4": ("TAB A", 3100)}.items():
        ali = tids[utt]
        assert len(ali) == n  # tiles the utterance exactly
        runs, phones = _state_runs(tm, ali)
        assert runs.max() - runs.min() <= 1  # every HMM-state visit gets the same share
        words = [p for p in phones.tolist() if p not in sil]
        candidates = [()]
        for w in text.split():
            candidates = [c + p for c in candidates for p in prons[w]]
        assert tuple(words) in candidates  # a path of the training graph
    phones = read_int_ark(out / "phones.ark")["u1"]
    assert len(phones) == 100 and set(phones.tolist()) <= set(lang.phone_names)
    # the same result with one job (seeds are per utterance id); --seed changes the path choice
    out1 = tmp_path / "eq1"
    assert main(["align-equal", "--max-failures", "1", str(data), str(lang_dir), str(out1)]) == 0
    assert (out1 / "ali.tid.ark").read_text() == (out / "ali.tid.ark").read_text()
    # --shortest, --max-duration
    out2 = tmp_path / "eq2"
    assert main(["align-equal", "--shortest", "2", "--max-duration", "30", "--max-failures", "1", str(data), str(lang_dir), str(out2)]) == 0
    assert sorted(read_int_ark(out2 / "ali.tid.ark")) == ["u2"]  # u3 (9 frames) too short
    assert main(["align-equal", "--max-duration", "30", "--max-failures", "1", str(data), str(lang_dir), str(out2)]) == 0
    s2 = json.loads((out2 / "align_stats.json").read_text())
    assert s2["too_long"] == 1 and s2["aligned"] == 2


def test_missing_lexicon_words_one_error_or_oov_word(tmp_path, capsys):
    lang_dir = make_lang(tmp_path)
    data = _data(tmp_path, {"u1": ("CAT ZOO AT", 100), "u2": ("ZOO MOO", 60), "u3": ("A BAT", 40)})
    out = tmp_path / "eq"
    assert main(["align-equal", str(data), str(lang_dir), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert "2 words ('ZOO' (u1, u2); 'MOO' (u2)) not in the lexicon" in err and "--map-oov" in err
    assert not (out / "ali.tid.ark").exists()
    assert main(["flat-start", str(data), str(lang_dir), str(tmp_path / "exp")]) == 1
    assert "2 words ('ZOO' (u1, u2); 'MOO' (u2)) not in the lexicon" in capsys.readouterr().err
    assert main(["align-equal", "--map-oov", str(data), str(lang_dir), str(out)]) == 0
    stats = json.loads((out / "align_stats.json").read_text())
    assert stats["aligned"] == 3 and stats["oov_tokens"] == 3
    lang = LangDir(lang_dir)
    names = {lang.base_phone(lang.phone_names[p]) for p in read_int_ark(out / "phones.ark")["u2"].tolist()}
    assert "SPN" in names  # <UNK> is spelled SPN


def _compare(ctm, ali_dir, capsys) -> float:
    """Percentage of boundaries within 20 ms, from the printed line."""
    assert main(["compare-ali", str(ctm), str(ali_dir)]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("boundaries within 20 ms: ")
    return float(line.split()[4])


def test_flat_start_rounds_raise_agreement_and_resume(tmp_path, capsys, monkeypatch):
    """One CI round on a learnable corpus raises boundary agreement over the equal
    alignment; the CD round and the outputs; a re-run resumes; the final model aligns other
    data, skipping (and counting) an utterance that cannot be aligned."""
    lang_dir, data, ctm = learnable_corpus(tmp_path, n_utts=70)
    ci = tiny_net_config(tmp_path / "ci.yaml", epochs=4)
    cd = tiny_net_config(tmp_path / "cd.yaml", epochs=4, splice=2)
    exp = tmp_path / "exp"
    args = ["flat-start", "--init-utts", "70", "--rounds", "1", "--context-rounds", "1", "--num-leaves", "24",
            "--nj", "2", "--num-threads", "1", "--ci-config", str(ci), "--context-config", str(cd),
            "--cd-config", str(cd), "--edge-silence", "required", "--work-dir", str(exp),
            str(data), str(lang_dir), str(tmp_path / "ali_flat")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ali1: aligned 70 of 70 utterances" in out and "% of frames changed state" in out
    summary = json.loads((tmp_path / "ali_flat" / "flat_start.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["ali0", "mono1", "ali1", "mono2", "ali2", "tree", "cd", "ali_cd"]
    assert "splice: 2" in (exp / "mono2.yaml").read_text()  # the context round's network
    eq = _compare(ctm, exp / "ali0", capsys)
    r1 = _compare(ctm, exp / "ali1", capsys)
    cd = _compare(ctm, tmp_path / "ali_flat", capsys)
    assert r1 > eq + 10, (eq, r1)
    assert cd > eq + 10, (eq, cd)
    final = tmp_path / "ali_flat"
    assert IMPORT_LAYOUT <= {p.name for p in final.iterdir()}
    assert (final / "num_pdfs").read_text() == (exp / "tree" / "num_pdfs").read_text()
    ali = AliDir.load(final, need_tids=True, need_model=True)  # sealed as every alignment dir
    assert ali.kind == "flat_start" and ali.num_pdfs == int((exp / "tree" / "num_pdfs").read_text())
    # a re-run leaves the up-to-date dir as it is; other options redo only the steps they change
    stamp = (final / "ali_dir.json").stat().st_mtime_ns
    assert main(args) == 0
    assert "is up to date" in capsys.readouterr().out
    assert (final / "ali_dir.json").stat().st_mtime_ns == stamp
    assert main(args[:-3] + ["--num-leaves", "30"] + args[-3:]) == 0
    steps = {ln.split(":")[0]: ln for ln in capsys.readouterr().out.splitlines() if ":" in ln}
    assert all("[up to date]" in steps[s] for s in ("ali0", "mono1", "ali1", "mono2", "ali2")), steps
    assert not any("[up to date]" in steps[s] for s in ("tree", "cd", "ali_cd")), steps
    # the final model dir aligns held-out data; a 10-frame utterance of 5 words is skipped
    _, dev, dev_ctm = learnable_corpus(tmp_path, n_utts=12, seed=5, name="dev")
    lines = (dev / "text").read_text().splitlines()
    lines[0], lines[1] = lines[0].split()[0] + " " + lines[1].split(" ", 1)[1], lines[1].split()[0] + " " + \
        lines[0].split(" ", 1)[1]  # two wrong transcripts: the narrow beam loses them
    (dev / "text").write_text("\n".join(lines) + "\nzz BAT CAT TAB AT A\n")
    import kaldiio

    with kaldiio.WriteHelper(f"ark,scp:{dev}/extra.ark,{dev}/extra.scp") as w:
        w["zz"] = np.zeros((10, 8), np.float32)
    for name, line in (("feats.scp", (dev / "extra.scp").read_text()), ("utt2num_frames", "zz 10\n"),
                       ("utt2spk", "zz zz\n")):
        with open(dev / name, "a") as f:
            f.write(line)
    dev_ali = tmp_path / "dev_ali"
    assert main(["align", "--lang", str(lang_dir), "--model-dir", str(exp / "final"), "--nj", "2",
                 "--beam", "0.0001", str(dev), str(dev_ali)]) == 0
    stats = json.loads((dev_ali / "align_stats.json").read_text())
    assert stats["aligned"] == 12 and stats["failed"] == 1 and stats["retried"] >= 1
    assert "zz failed: utterance zz: no path" in (dev_ali / "excluded.txt").read_text()
    assert _compare(dev_ctm, dev_ali, capsys) > eq  # (two of the 12 have the wrong transcript)
    # the CD network records its training tree: aligning through another tree is refused
    assert main(["align", "--lang", str(lang_dir), "--model-dir", str(exp / "final"), "--tree-dir", str(exp / "ali0"),
                 str(dev), str(tmp_path / "dev_ali_mono")]) == 1
    assert "was trained on alignments of another tree than" in capsys.readouterr().err
    assert not (tmp_path / "dev_ali_mono").exists()
    shutil.rmtree(exp / "ali_cd")  # a lost step is redone (--force: OUT itself is up to date)
    assert main(args + ["--force"]) == 0
    assert "ali_cd: aligned 70 of 70" in capsys.readouterr().out and AliDir.load(final).kind == "flat_start"
    # a redo with other options that fails leaves no OUT that looks finished: the next run redoes it
    from asr.errors import TrainingError
    from asr.flatstart import pipeline

    def fail(*a, **k):
        raise TrainingError("the CD network failed")

    monkeypatch.setattr(pipeline._Runner, "build_tree", fail)
    assert main(args[:-3] + ["--num-leaves", "20"] + args[-3:]) == 1
    capsys.readouterr()
    assert not (final / "ali_dir.json").exists()
    monkeypatch.undo()
    assert main(args) == 0
    assert "is up to date" not in capsys.readouterr().out and AliDir.load(final).kind == "flat_start"


def test_flat_start_option_errors(tmp_path, capsys):
    lang_dir = make_lang(tmp_path)
    data = _data(tmp_path, {"u1": ("CAT AT TAB", 100)})
    for opt, value in (("--rounds", "0"), ("--num-leaves", "-3"), ("--max-duration", "0"), ("--num-threads", "-2")):
        with pytest.raises(SystemExit) as e:
            main(["flat-start", opt, value, str(data), str(lang_dir), str(tmp_path / "exp")])
        assert e.value.code == 2 and f"argument {opt}: expected" in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()
    # OUT naming the data dir, or a dir that is neither an alignment dir nor a flat start's
    # (an exp/ with other systems), is an error that deletes nothing
    assert main(["flat-start", str(data), str(lang_dir), str(data)]) == 1
    assert "the output would overwrite the input" in capsys.readouterr().err
    (tmp_path / "exp" / "lstmp").mkdir(parents=True)
    (tmp_path / "exp" / "lstmp" / "model.bin").write_text("precious\n")
    assert main(["flat-start", str(data), str(lang_dir), str(tmp_path / "exp")]) == 1
    assert "not replaced" in capsys.readouterr().err
    assert (tmp_path / "exp" / "lstmp" / "model.bin").is_file() and not (tmp_path / "exp" / "work").exists()


@pytest.mark.parametrize("bad", ["nothing"])
def test_align_model_dir_needs_two_paths(tmp_path, capsys, bad):
    lang_dir = make_lang(tmp_path)
    assert main(["align", "--lang", str(lang_dir), "--model-dir", str(tmp_path), "d", "l", "o"]) == 1
    assert "give DATA_DIR OUT_DIR" in capsys.readouterr().err


def test_edge_silence_makes_the_path_begin_and_end_with_silence(tmp_path):
    """Log-likelihoods that make silence expensive everywhere: the optional silence of L.fst
    is left out at the edges; with edge_silence the path still begins and ends with it."""
    from asr.align.forced import ForcedAligner
    from asr.align.import_ali import load_model

    lang = LangDir(make_lang(tmp_path))
    tree, tm = load_model(lang, None)
    sil_pdfs = {int(tm.tid2pdf[t]) for t in range(1, len(tm.tid2pdf))
                if tm.tid2phone[t] in set(lang.silence_phones)}
    loglik = np.zeros((40, tm.num_pdfs), np.float32)
    loglik[:, sorted(sil_pdfs)] = -50.0
    words = [lang.words["CAT"], lang.words["AT"]]
    sil = set(lang.silence_phones)
    for edge, expect in ((False, False), (True, True)):
        tids, _, _ = ForcedAligner(lang, tree, tm, edge_silence=edge).align(loglik, words, "u1")
        phones, _ = split_to_phones(tm, tids)
        assert len(tids) == 40
        assert (phones[0] in sil, phones[-1] in sil) == (expect, expect), phones


def test_augmented_copies_get_their_source_alignment(tmp_path):
    """A copy of the same length (utt2uniq) gets its source's alignment, counted; one of
    another length, or whose source is not aligned with it, is aligned on its own."""
    from asr.align.align_data import align_data_dir

    lang_dir = make_lang(tmp_path)
    data = _data(tmp_path, {"u1": ("CAT AT TAB", 100), "rvb-u1": ("CAT AT TAB", 100), "sp-u1": ("CAT AT TAB", 90),
                            "u2": ("A BAT", 50)})
    copies = {"rvb-u1": "u1", "sp-u1": "u1", "x": "u2"}
    stats = align_data_dir(data, lang_dir, tmp_path / "eq", progress=False, copies=copies)
    assert stats["aligned"] == 4 and stats["copied"] == 1
    tids = read_int_ark(tmp_path / "eq" / "ali.tid.ark")
    assert tids["rvb-u1"].tolist() == tids["u1"].tolist() and len(tids["sp-u1"]) == 90
    assert sorted(read_int_ark(tmp_path / "eq" / "phones.ark")) == ["rvb-u1", "sp-u1", "u1", "u2"]
    stats = align_data_dir(data, lang_dir, tmp_path / "eq2", utts=["rvb-u1", "u2"], progress=False, copies=copies)
    assert stats["aligned"] == 2 and not stats.get("copied")


def test_speed_perturbed_copies_get_their_source_alignment_rescaled(tmp_path):
    """A copy made at another speed (reco2aug, as asr augment-data-dir writes it) gets its
    source's alignment rescaled to its own frame count: the same phones, every state kept;
    one too short to hold the source's states is skipped and counted, with the reason."""
    from asr.align.align_data import align_data_dir
    from asr.augment.data_dir import read_speed_factors

    lang_dir = make_lang(tmp_path)
    data = _data(tmp_path, {"u1": ("CAT AT TAB", 100), "sp0.9-u1": ("CAT AT TAB", 111),
                            "sp1.1-u1": ("CAT AT TAB", 91), "u2": ("A BAT", 50), "sp1.1-u2": ("A BAT", 5)})
    (data / "reco2aug").write_text("sp0.9-u1 speed=0.9\nsp1.1-u1 speed=1.1 noise=white snr=10\n"
                                   "sp1.1-u2 speed=1.1\nu1 speed=1\n")
    speeds = read_speed_factors(data)
    assert speeds == {"sp0.9-u1": 0.9, "sp1.1-u1": 1.1, "sp1.1-u2": 1.1}
    copies = {"sp0.9-u1": "u1", "sp1.1-u1": "u1", "sp1.1-u2": "u2"}
    stats = align_data_dir(data, lang_dir, tmp_path / "eq", progress=False, copies=copies, speeds=speeds,
                           max_failures=0.5)
    assert (stats["aligned"], stats["copied"], stats["rescaled"], stats["failed"]) == (4, 2, 2, 1)
    tm = TransitionModel.read(tmp_path / "eq" / "final.mdl")
    tids = read_int_ark(tmp_path / "eq" / "ali.tid.ark")
    runs_src, phones_src = _state_runs(tm, tids["u1"])
    for copy, n in (("sp0.9-u1", 111), ("sp1.1-u1", 91)):
        runs, phones = _state_runs(tm, tids[copy])
        assert len(tids[copy]) == n and list(phones) == list(phones_src) and len(runs) == len(runs_src) and runs.min() >= 1
    assert "sp1.1-u2" not in tids
    assert "sp1.1-u2 failed: its source's alignment at speed 1.1: 5 frames cannot hold" in \
        (tmp_path / "eq" / "excluded.txt").read_text()
    # through segments: the factor of the recording
    (data / "segments").write_text("a-1 sp0.9-rec 0.0 1.0\nb-1 rec 0.0 1.0\n")
    (data / "reco2aug").write_text("sp0.9-rec speed=0.9\nrec speed=1\n")
    assert read_speed_factors(data) == {"a-1": 0.9}
