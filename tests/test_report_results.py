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
    (exp / "decode_test").mkdir()
    (exp / "decode_test" / "wer").write_text(f"%WER {test_wer:.2f} [ 3 / 100, 1 ins, 1 del, 1 sub ]\n%SER 5.00 [ 1 / 20 ]\n")
    (exp / "decode_test" / "decode.json").write_text(json.dumps({"rtf": 0.042}))
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
    text = md.read_text()
    assert "vocabulary: 1082 words" in text and "perplexity under the full 5-gram: 12.34" in text
    assert "| dnn | " in text and "n/a" in text
    assert link.is_symlink() and os.readlink(link) == "lstmp/final"
    assert (link / "model.yaml").is_file()


def test_results_rejects_bad_spec(capsys):
    assert main(["results", "no-equals-sign"]) == 1
    assert "expected NAME=EXP_DIR" in capsys.readouterr().err


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
