"""asr align: forced alignment over lexicon variants, optional silence and tree context."""

import json

import kaldiio
import numpy as np

from asr.cli import main
from asr.io.int_ark import read_int_ark
from hmm_test_helpers import make_data, make_lang, synth_corpus


def peaked_loglikes(path, pdf_alis, num_pdfs, seed=0, drop=()):
    rng = np.random.default_rng(seed)
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as w:
        for u, p in sorted(pdf_alis.items()):
            ll = rng.normal(-8, 1, (len(p), num_pdfs)).astype(np.float32)
            ll[np.arange(len(p)), p] = 0.0
            if u in drop:
                ll = ll[:5]
            w[u] = ll
    return f"{path}.scp"


def test_align_recovers_monophone_alignment(tmp_path):
    lang, data = make_lang(tmp_path), make_data(tmp_path)
    ref = tmp_path / "ref"
    main(["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    pdfs = read_int_ark(ref / "ali.pdf.ark")
    num_pdfs = int((ref / "num_pdfs").read_text())
    scp = peaked_loglikes(tmp_path / "ll", pdfs, num_pdfs, drop=("u3",))
    (data / "utt2num_frames").unlink()
    out = tmp_path / "fa"
    assert main(["align", "--max-failures", "1", "--lang", str(lang), "--tree-dir", str(ref), str(data), scp, str(out)]) == 0
    s = json.loads((out / "align_stats.json").read_text())
    assert s["aligned"] == 2 and s["failed"] == 1  # u3 has 5 frames for 4 phones (12+ states)
    assert "u3 utterance u3: no path through the transcript" in (out / "excluded.txt").read_text()
    got_tid = read_int_ark(out / "ali.tid.ark")
    ref_tid = read_int_ark(ref / "ali.tid.ark")
    # u2: exact; u1 (pronunciation variant of TAB, optional silences): same phones per frame
    assert np.array_equal(got_tid["u2"], ref_tid["u2"])
    assert np.array_equal(read_int_ark(out / "phones.ark")["u1"], read_int_ark(ref / "phones.ark")["u1"])
    assert (read_int_ark(out / "ali.pdf.ark")["u1"] == pdfs["u1"]).mean() > 0.95
    # log posteriors with zero log priors: the same alignment; wrong prior length: error
    np.save(tmp_path / "prior.npy", np.zeros(num_pdfs, np.float32))
    out2 = tmp_path / "fa2"
    assert main(["align", "--max-failures", "1", "--log-priors", str(tmp_path / "prior.npy"), "--lang", str(lang), "--tree-dir",
                 str(ref), str(data), scp, str(out2)]) == 0
    assert (out2 / "ali.tid.ark").read_text() == (out / "ali.tid.ark").read_text()
    np.save(tmp_path / "prior.npy", np.zeros(num_pdfs + 1, np.float32))
    assert main(["align", "--max-failures", "1", "--log-priors", str(tmp_path / "prior.npy"), "--lang", str(lang), str(data), scp,
                 str(out2)]) == 1


def test_align_triphone_tree(tmp_path):
    lang_dir, data, ali, lang = synth_corpus(tmp_path, n_utts=30)
    tree_dir = tmp_path / "tree"
    main(["build-tree", "--lang", str(lang_dir), "--cmvn", "none", "--num-leaves", "40", "--min-count", "10",
          str(data), str(ali), str(tree_dir)])
    pdfs = read_int_ark(tree_dir / "ali.pdf.ark")
    pdfs = {u: pdfs[u] for u in sorted(pdfs)[:4]}
    scp = peaked_loglikes(tmp_path / "ll", pdfs, int((tree_dir / "num_pdfs").read_text()))
    out = tmp_path / "fa"
    assert main(["align", "--max-failures", "1", "--lang", str(lang_dir), "--tree-dir", str(tree_dir), str(data), scp, str(out)]) == 0
    got = read_int_ark(out / "ali.pdf.ark")
    assert len(got) == 4
    acc = np.mean(np.concatenate([got[u] == pdfs[u] for u in got]))
    assert acc > 0.95
    ref_ph = read_int_ark(tree_dir / "phones.ark")
    for u in got:
        assert (read_int_ark(out / "phones.ark")[u] == ref_ph[u]).mean() > 0.9


def test_align_refuses_bad_loglikes_and_counts_missing_utterances(tmp_path, capsys):
    lang, data = make_lang(tmp_path), make_data(tmp_path)
    ref = tmp_path / "ref"
    main(["import-ali", "--format", "ctm", "--lang", str(lang), str(data), str(data / "phones.ctm"), str(ref)])
    pdfs = read_int_ark(ref / "ali.pdf.ark")
    num_pdfs = int((ref / "num_pdfs").read_text())
    args = ["align", "--lang", str(lang), "--tree-dir", str(ref), str(data)]
    # another model's log-likelihoods (more columns than pdfs): refused, naming the file and utterance
    wide = peaked_loglikes(tmp_path / "wide", pdfs, num_pdfs + 10)
    assert main(args + [wide, str(tmp_path / "fa0")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wide.scp: utterance u1:" in err and f"has {num_pdfs} pdfs" in err
    assert not (tmp_path / "fa0").exists()
    # an utterance of the data dir missing from LOGLIKES is excluded and counted as a failure
    scp = peaked_loglikes(tmp_path / "ll", {u: p for u, p in pdfs.items() if u != "u2"}, num_pdfs)
    out = tmp_path / "fa"
    assert main(args[:1] + ["--max-failures", "0.5"] + args[1:] + [scp, str(out)]) == 0
    s = json.loads((out / "align_stats.json").read_text())
    assert s["utterances"] == 3 and s["aligned"] == 2 and s["no_loglikes"] == 1
    assert "u2 no log-likelihoods in" in (out / "excluded.txt").read_text()
    assert main(args + [scp, str(tmp_path / "fa1")]) == 1  # 1 of 3 failed > the default --max-failures
    assert "1 of 3 utterances failed" in capsys.readouterr().err
    # a malformed utt2num_frames is an error, not skipped
    lines = (data / "utt2num_frames").read_text().splitlines()
    (data / "utt2num_frames").write_text("\n".join(lines[:1] + [lines[1].split()[0] + " x"] + lines[2:]) + "\n")
    assert main(args + [scp, str(tmp_path / "fa2")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "utt2num_frames" in err and "not an integer" in err
