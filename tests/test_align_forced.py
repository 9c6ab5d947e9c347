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
