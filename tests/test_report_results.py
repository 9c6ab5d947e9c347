import json
import os

import pytest

from asr.cli import main
from asr.nnet.model_dir import save_model_dir
from asr.nnet.registry import build_model, count_parameters

MODEL = {"family": "dnn", "splice": 1, "hidden_dim": 8, "num_layers": 1, "activation": "relu"}


def make_exp(root, name, dev_wer, test_wer, dev_acc, rescored=True):
    exp = root / "exp" / name
    (exp / "final").mkdir(parents=True)
    model = build_model(MODEL, 4, 5)
    save_model_dir(exp / "final", model, MODEL, 4, 5, output_delay=1)
    (exp / "log.csv").write_text(
        "epoch,updates,lr,train_loss,train_acc,dev_loss,dev_acc,train_frames,seconds,frames_per_second\n"
        f"1,10,0.1,2.0,0.3,2.1,{dev_acc - 0.1},100,12.5,8\n2,20,0.1,1.0,0.5,1.2,{dev_acc},100,10.0,10\n")
    for sub, wer in (("decode_dev", dev_wer), ("decode_dev_rescore", dev_wer - 1 if rescored else None)):
        if wer is None:
            continue
        (exp / sub / "scoring").mkdir(parents=True)
        (exp / sub / "scoring" / "best_wer").write_text(f"%WER {wer:.2f} [ 1 / 100, 0 ins, 0 del, 1 sub ] x/wer_10_0.5\n")
        (exp / sub / "scoring" / "lmwt").write_text("10\n")
        (exp / sub / "scoring" / "wip").write_text("0.5\n")
        (exp / sub / "scoring" / "sweep.json").write_text(json.dumps({"lmwt_at_edge": sub == "decode_dev_rescore",
                                                                      "wip_at_edge": False}))
    (exp / "decode_test").mkdir()
    (exp / "decode_test" / "wer").write_text(f"%WER {test_wer:.2f} [ 3 / 100, 1 ins, 1 del, 1 sub ]\n%SER 5.00 [ 1 / 20 ]\n")
    (exp / "decode_test" / "decode.json").write_text(json.dumps({"rtf": 0.042}))
    (exp / "decode_test" / "scoring").mkdir()  # score-lattices --best-from decode_dev records the pair
    (exp / "decode_test" / "scoring" / "fixed.json").write_text(json.dumps({"lmwt": 10.0, "wip": "0.5"}))
    return exp, count_parameters(model)["total"]


def test_results_table_json_and_best_link(tmp_path, capsys):
    a, params = make_exp(tmp_path, "lstmp", 5.0, 6.0, 0.8)
    b, _ = make_exp(tmp_path, "dnn", 9.0, 10.0, 0.7, rescored=False)
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps({"vocabulary_size": 1082, "splits": {"train": {"hours": 5.0, "utterances": 3000}}}))
    ppl = tmp_path / "ppl.txt"
    ppl.write_text("file t: 10 sentences, 90 words, 0 OOVs\n0 zeroprobs, logprob= -100 ppl= 12.34 ppl1= 15\n")
    results = tmp_path / "exp" / "results.json"
    results.write_text(json.dumps([{"name": "lstm_cifg", "test_wer": 7.0}, {"name": "dnn", "stale": True}]))
    md = tmp_path / "RESULTS.md"
    link = tmp_path / "exp" / "final"
    rc = main(["results", "--markdown", str(md), "--json", str(results), "--corpus-json", str(corpus),
               "--lm-ppl", str(ppl), "--link-best", str(link), f"lstmp={a}", f"dnn={b}"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| lstmp | " in out and "best system (lowest dev WER): lstmp" in out
    systems = json.loads(results.read_text())
    assert [s["name"] for s in systems] == ["lstm_cifg", "lstmp", "dnn"]
    lstmp = systems[1]
    assert lstmp["params"] == params
    assert lstmp["dev_frame_acc"] == pytest.approx(0.8)
    assert (lstmp["dev_wer"], lstmp["dev_wer_rescored"], lstmp["test_wer_first_pass"]) == (5.0, 4.0, 6.0)
    assert lstmp["test_wer_rescored"] is None and lstmp["decode_rtf"] == 0.042
    assert lstmp["train_seconds"] == 22.5
    assert "stale" not in systems[2] and systems[2]["dev_wer_rescored"] is None
    assert lstmp["chosen_lmwt_wip"] == "10/0.5 (LMWT at edge)" and systems[2]["chosen_lmwt_wip"] == "10/0.5"
    text = md.read_text()
    assert "vocabulary: 1082 words" in text and "perplexity under the full 5-gram: 12.34" in text
    assert "| dnn | " in text and "n/a" in text
    assert link.is_symlink() and os.readlink(link) == "lstmp/final"
    assert (link / "model.yaml").is_file()


def test_results_refuses_a_test_wer_at_another_pair_than_devs(tmp_path, capsys, caplog):
    a, _ = make_exp(tmp_path, "lstmp", 5.0, 6.0, 0.8, rescored=False)
    fixed = a / "decode_test" / "scoring" / "fixed.json"
    fixed.write_text(json.dumps({"lmwt": 12.0, "wip": "0.0"}))
    rc = main(["results", "--markdown", str(tmp_path / "R.md"), f"lstmp={a}"])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert f"{a / 'decode_test'}/wer was scored at LMWT 12 WIP 0.0, not at the pair {a / 'decode_dev'} chose" in err
    assert not (tmp_path / "R.md").exists()
    fixed.unlink()  # no recorded pair (asr decode's own wer): flagged
    assert main(["results", "--markdown", str(tmp_path / "R.md"), f"lstmp={a}"]) == 0
    assert "decode_test/wer records no LMWT/WIP" in caplog.text


def test_results_rejects_bad_spec(capsys):
    assert main(["results", "no-equals-sign"]) == 1
    assert "expected NAME=EXP_DIR" in capsys.readouterr().err


def test_results_with_test_sets_significance_and_claims(tmp_path, capsys):
    """Two systems x two seeds on two test sets: intervals, pairwise tests, claims table."""
    import numpy as np

    rng = np.random.default_rng(0)
    sets = {}
    for ts in ("test", "test_hard"):
        d = tmp_path / "data" / ts
        d.mkdir(parents=True)
        ref = {f"u{i:03d}": [f"w{j}" for j in rng.integers(0, 50, 8)] for i in range(150)}
        (d / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in ref.items()))
        sets[ts] = ref

    def hyp(ref, p):
        return {u: [("x" if rng.random() < p else w) for w in ws] for u, ws in ref.items()}

    # lstmp clearly better on test with both seeds; on test_hard seed 2 reverses it
    rates = {("lstmp", "test"): 0.02, ("dnn", "test"): 0.12, ("lstmp", "test_hard"): 0.05,
             ("dnn", "test_hard"): 0.15, ("lstmp_s2", "test"): 0.03, ("dnn_s2", "test"): 0.13,
             ("lstmp_s2", "test_hard"): 0.2, ("dnn_s2", "test_hard"): 0.05}
    specs = []
    for name in ("lstmp", "dnn", "lstmp_s2", "dnn_s2"):
        exp, _ = make_exp(tmp_path, name, 5.0, 6.0, 0.8)
        for ts, ref in sets.items():
            d = exp / f"decode_{ts}_rescore"
            d.mkdir(parents=True, exist_ok=True)
            h = hyp(ref, rates[(name, ts)])
            (d / "hyp.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in h.items()))
            (d / "wer").write_text("%WER 1.00 [ 1 / 100, 0 ins, 0 del, 1 sub ]\n")
        specs.append(f"{name}={exp}")
    md = tmp_path / "RESULTS.md"
    assert main(["results", "--markdown", str(md), "--test-set", f"test={tmp_path}/data/test",
                 "--test-set", f"test_hard={tmp_path}/data/test_hard", *specs]) == 0
    out = capsys.readouterr().out
    assert "test_hard WER rescored [95% CI]" in out.splitlines()[0]
    text = md.read_text()
    assert "## Significance" in text and "| test | 1 | lstmp vs dnn |" in text
    claims = text[text.index("## Which claims hold"):]
    row = next(line for line in claims.splitlines() if line.startswith("| lstmp better than dnn"))
    assert row.split(" | ")[1:] == ["holds", "holds", "holds", "reversed |"]
    assert "| claim (seed 1, test) | test, seed 1 | test, seed 2 | test_hard, seed 1 | test_hard, seed 2 |" in claims

def test_results_with_several_eval_sets(tmp_path, capsys):
    """LibriSpeech style: WER per set, test sets at their dev set's LM weight."""
    exp, _ = make_exp(tmp_path, "lstmp", 5.0, 6.0, 0.8)
    wers = {"dev_clean": 4.0, "test_clean": 4.5, "dev_other": 11.0, "test_other": 12.5}
    for s, w in wers.items():
        for sub, delta in (("", 0.0), ("_rescore", -1.0)):
            d = exp / f"decode_{s}{sub}"
            if s.startswith("dev"):
                (d / "scoring").mkdir(parents=True)
                (d / "scoring" / "best_wer").write_text(f"%WER {w + delta:.2f} [ 1 / 100, 0 ins, 0 del, 1 sub ]\n")
            else:
                d.mkdir(parents=True)
                (d / "wer").write_text(f"%WER {w + delta:.2f} [ 1 / 100, 0 ins, 0 del, 1 sub ]\n")
    data = tmp_path / "data" / "dev_clean"
    data.mkdir(parents=True)
    (data / "prep.json").write_text(json.dumps({"hours": 5.39, "utterances": 2703, "speakers": 97, "readers": 40,
                                                "skipped": {}}))
    md = tmp_path / "RESULTS.md"
    assert main(["results", "--eval-pairs", "dev_clean=test_clean", "dev_other=test_other", "--data-dirs", str(data),
                 "--note", "alignments: kaldi", "--markdown", str(md), f"lstmp={exp}"]) == 0
    text = md.read_text()
    assert "| system | params | dev frame acc | pass | dev_clean | test_clean | dev_other | test_other |" in text
    assert "| first pass | 4.00 | 4.50 | 11.00 | 12.50 |" in text and "| rescored | 3.00 | 3.50 | 10.00 | 11.50 |" in text
    assert "- dev_clean: 5.39 h, 2703 utterances, 97 speakers (40 readers)" in text
    assert "- alignments: kaldi" in text
    assert main(["results", f"lstmp={exp}", "--eval-pairs", "dev_clean="]) == 1
    assert "expected TUNE or TUNE=TEST" in capsys.readouterr().err


def test_breakdown_by_condition_and_speaker_hand_computed(tmp_path):
    """Errors land in every group of their utterance: hand-counted WER per condition and speaker."""
    from asr.report.breakdown import breakdown_tables

    data = tmp_path / "test_hard"
    data.mkdir()
    (data / "text").write_text("a-u1 one two three four\nb-u2 five six\nb-u3 seven eight nine ten\n")
    (data / "utt2spk").write_text("a-u1 a\nb-u2 b\nb-u3 b\n")
    (data / "reco2aug").write_text(
        "a-u1 speed=1 room=test-1 rt60=0.55 noise=babble talkers=3 snr=7.5\n"
        "b-u2 speed=1 noise=music snr=21.0 telephone=300-3400Hz\n"
        "b-u3 speed=1\n")
    hyp = tmp_path / "hyp.txt"
    # u1: 2 errors of 4 (one sub, one del); u2: 1 of 2; u3: 0 of 4
    hyp.write_text("a-u1 one TWO three\nb-u2 five\nb-u3 seven eight nine ten\n")
    md = breakdown_tables("test_hard", data, [("sys", hyp)])
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in md.splitlines() if line.startswith("| ")}
    assert rows["room: none"] == ["6", "16.67 |"]          # u2 + u3: 1 / 6
    assert rows["room: RT60 >= 0.4 s"] == ["4", "50.00 |"]  # u1: 2 / 4
    assert rows["noise: babble"] == ["4", "50.00 |"]
    assert rows["noise: music"] == ["2", "50.00 |"]
    assert rows["SNR: < 10 dB"] == ["4", "50.00 |"] and rows["SNR: >= 20 dB"] == ["2", "50.00 |"]
    assert rows["channel: telephone"] == ["2", "50.00 |"] and rows["channel: wideband"] == ["8", "25.00 |"]
    assert rows["all perturbations: clean"] == ["4", "0.00 |"]
    assert rows["all perturbations: perturbed"] == ["6", "50.00 |"]
    assert "speed: 1" not in rows  # one speed only: no row
    assert rows["a"] == ["4", "50.00 |"] and rows["b"] == ["6", "16.67 |"]


def test_breakdown_bad_reco2aug_names_file_and_line(tmp_path):
    from asr.augment.data_dir import read_reco2aug
    from asr.errors import DataDirError

    (tmp_path / "reco2aug").write_text("r1 speed=1\nr2 speed=1 reverb\n")
    with pytest.raises(DataDirError, match=r"reco2aug:2: recording r2: expected key=value, got 'reverb'"):
        read_reco2aug(tmp_path)


def test_results_report_has_condition_tables_for_augmented_test_sets(tmp_path, capsys):
    exp, _ = make_exp(tmp_path, "lstmp", 5.0, 6.0, 0.8)
    data = tmp_path / "data" / "test_hard"
    data.mkdir(parents=True)
    (data / "text").write_text("rvb1-u1 a b c\nrvb1-u2 d e\n")
    (data / "utt2spk").write_text("rvb1-u1 rvb1-s\nrvb1-u2 rvb1-s\n")
    (data / "reco2aug").write_text("rvb1-u1 speed=1 room=test-3 rt60=0.3\nrvb1-u2 speed=1 noise=colored snr=12\n")
    d = exp / "decode_test_hard_rescore"
    d.mkdir(parents=True)
    (d / "hyp.txt").write_text("rvb1-u1 a b x\nrvb1-u2 d e\n")
    (d / "wer").write_text("%WER 20.00 [ 1 / 5, 0 ins, 0 del, 1 sub ]\n")
    md = tmp_path / "RESULTS.md"
    assert main(["results", "--markdown", str(md), "--test-set", f"test_hard={data}", f"lstmp={exp}"]) == 0
    text = md.read_text()
    section = text[text.index("## Where the errors are"):]
    assert "| room: RT60 < 0.4 s | 3 | 33.33 |" in section
    assert "| noise: colored | 2 | 0.00 |" in section
    assert "| rvb1-s | 5 | 20.00 |" in section


def test_breakdown_edge_cases(tmp_path):
    """A hypothesis file of another set is an error naming it; a bad number in reco2aug names
    the file and utterance; a set whose dimensions have one group each gets no condition table;
    speed or volume alone makes an utterance perturbed."""
    from asr.errors import DataDirError, FormatError
    from asr.report.breakdown import breakdown_tables, condition_groups

    data = tmp_path / "set"
    data.mkdir()
    (data / "text").write_text("u1 a b\nu2 c\n")
    (data / "utt2spk").write_text("u1 s\nu2 s\n")
    (data / "reco2aug").write_text("u1 speed=1\nu2 speed=1\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("u1 a b\nu2 c\nu9 x\n")
    with pytest.raises(FormatError, match=r"hyp.txt: 1 hypothesis utterance\(s\) not in the reference .*set/text"):
        breakdown_tables("set", data, [("sys", hyp)])
    hyp.write_text("u1 a b\nu2 c\n")
    md = breakdown_tables("set", data, [("sys", hyp)])
    assert "by recording condition" not in md and "| s | 3 | 0.00 |" in md
    (data / "reco2aug").write_text("u1 speed=1 room=r1 rt60=x\nu2 speed=1\n")
    with pytest.raises(DataDirError, match=r"set/reco2aug: utterance u1: bad 'rt60=x'"):
        breakdown_tables("set", data, [("sys", hyp)])
    # an utterance missing from utt2spk or reco2aug would silently drop out of the tables
    (data / "reco2aug").write_text("u1 speed=1\nu2 speed=1\n")
    (data / "utt2spk").write_text("u1 s\n")
    with pytest.raises(DataDirError, match=r"set/utt2spk: utterance u2 of .*set/text has no entry \(1 utterance"):
        breakdown_tables("set", data, [("sys", hyp)])
    (data / "utt2spk").write_text("u1 s\nu2 s\n")
    (data / "reco2aug").write_text("u2 speed=1\n")
    with pytest.raises(DataDirError, match=r"set/reco2aug: utterance u1 of .*set/text has no entry"):
        breakdown_tables("set", data, [("sys", hyp)])
    assert condition_groups({"speed": "0.9"})["all perturbations"] == "perturbed"
    assert condition_groups({"speed": "1", "volume": "0.5"})["all perturbations"] == "perturbed"
    assert condition_groups({"speed": "1", "room": "r"})["room"] == "RT60 unknown"


def test_reco2aug_reader_errors_name_file_and_line(tmp_path):
    from asr.augment.data_dir import read_speed_factors
    from asr.errors import DataDirError, FormatError

    (tmp_path / "reco2aug").write_text("r1 speed=1\nr1 speed=0.9\n")
    with pytest.raises(FormatError, match=r"reco2aug:2: duplicate key 'r1' \(first on line 1\)"):
        read_speed_factors(tmp_path)
    for text, msg in (("r1 speed=abc speed=0.9\n", r"reco2aug:1: recording r1: speed given twice"),
                      ("r1 speed=1\nr2 speed=abc\n", r"reco2aug:2: recording r2: bad 'speed=abc'"),
                      ("r1 speed=inf\n", r"reco2aug:1: recording r1: bad 'speed=inf'")):
        (tmp_path / "reco2aug").write_text(text)
        with pytest.raises(DataDirError, match=msg):
            read_speed_factors(tmp_path)
