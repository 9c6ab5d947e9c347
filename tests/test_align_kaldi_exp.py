"""asr import-kaldi-exp on a Kaldi experiment written in Kaldi's binary formats (binary tree,
final.mdl with GMMs, gzipped binary ali.*.gz, graph): pdfs equal ali-to-pdf, the tree is kept
byte for byte, mismatches are refused, training runs on the import, Kaldi's graph decodes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from asr.hmm.kaldi_ali import ali_to_pdf
from asr.hmm.transition_model import TransitionModel
from asr.io.int_ark import iter_int_ark, read_int_ark


@pytest.fixture(scope="module")
def kaldi(kaldi_exp_mini):
    return kaldi_exp_mini


@pytest.fixture(scope="module")
def imported(kaldi, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp") / "ali"
    r = _asr("import-kaldi-exp", kaldi.data, kaldi.lang, kaldi.exp, out, "--graph-dir", kaldi.exp / "graph")
    assert r.returncode == 0, r.stderr
    return out, r


def _asr(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_import_equals_ali_to_pdf(kaldi, imported):
    out, r = imported
    # the exp is binary, as Kaldi writes it
    assert (kaldi.exp / "tree").read_bytes()[:2] == b"\0B" and (kaldi.exp / "final.mdl").read_bytes()[:2] == b"\0B"
    tm = TransitionModel.read(kaldi.exp / "final.mdl")
    kaldi_ali = {}
    for j in (1, 2):
        kaldi_ali.update(iter_int_ark(kaldi.exp / f"ali.{j}.gz"))
    got = read_int_ark(out / "ali.pdf.ark")
    assert set(got) == set(kaldi_ali) == set(kaldi.expected_pdfs)
    for utt, tids in kaldi_ali.items():
        # ali-to-pdf through the transition model, and the pdfs the tree gave when the exp was made
        assert np.array_equal(got[utt], ali_to_pdf(tm, tids, utt))
        assert np.array_equal(got[utt], kaldi.expected_pdfs[utt])
        assert np.array_equal(read_int_ark(out / "ali.tid.ark")[utt], tids)
    assert (out / "tree").read_bytes() == (kaldi.exp / "tree").read_bytes()
    assert TransitionModel.read(out / "final.mdl") == tm
    assert int((out / "num_pdfs").read_text()) == tm.num_pdfs
    assert (out / "phones.txt").read_text() == (kaldi.lang / "phones.txt").read_text()
    summary = json.loads((out / "kaldi_exp.json").read_text())
    assert summary["tree_format"] == "binary" and summary["context_width"] == 3
    assert "tree re-written byte-identically" in summary["checks"]
    assert f"{tm.num_pdfs} pdfs (context width 3), {len(kaldi_ali)} utterances" in r.stdout
    for name in ("HCLG.fst", "words.txt", "phones.txt", "disambig_tid.int"):
        assert (out / "graph" / name).read_bytes() == (kaldi.exp / "graph" / name).read_bytes()


def test_training_runs_on_the_import(imported, kaldi, tmp_path):
    out, _ = imported
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model: {family: lstmp, num_layers: 1, cell_dim: 32, proj_dim: 16}\n"
                   "training: {lr: 0.003, epochs: 1, streams: 4, chunk: 20, output_delay: 5, seed: 1}\n")
    r = _asr("train", "--config", cfg, "--feats", kaldi.data, "--ali", out / "ali.pdf.ark", "--out", tmp_path / "exp",
             "--max-updates", 3, "--num-threads", 1, "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stopped after 3 updates" in r.stdout
    assert (tmp_path / "exp" / "checkpoint.pt").is_file()


def test_kaldi_graph_decodes_with_the_imported_model(imported, kaldi):
    """Oracle likelihoods from Kaldi's alignment, searched in the imported HCLG with the
    imported transition model, give back the transcripts."""
    from asr.decode.model import read_words
    from asr.decode.search import SearchConfig, Searcher
    from asr.graph.mkgraph import load_graph
    from asr.io.tables import read_table

    out, _ = imported
    tm = TransitionModel.read(out / "final.mdl")
    searcher = Searcher(load_graph(out / "graph" / "HCLG.fst", tm.tid2pdf), SearchConfig())
    words = read_words(out / "graph" / "words.txt")
    text = read_table(kaldi.data / "text")
    right = 0
    pdfs = read_int_ark(out / "ali.pdf.ark")
    for utt in sorted(pdfs)[:8]:
        p = pdfs[utt]
        ll = np.full((len(p), tm.num_pdfs), -20.0, np.float32)
        ll[np.arange(len(p)), p] = 0.0
        hyp = " ".join(words[w] for w in searcher.best(ll).words)
        right += hyp == text[utt]
    assert right >= 7, right


def test_mismatches_are_refused(kaldi, librispeech_corpus, tmp_path):
    import shutil

    from asr.cli import main
    from asr.hmm.tree import monophone_tree

    exp = tmp_path / "exp"
    shutil.copytree(kaldi.exp, exp)
    # our own lang dir from the same lexicon: phones in sorted order, not the experiment's
    assert main(["prepare-dict", str(librispeech_corpus.lm_dir / "librispeech-lexicon.txt"), str(tmp_path / "dict")]) == 0
    assert main(["prepare-lang", str(tmp_path / "dict"), str(tmp_path / "lang")]) == 0
    r = _asr("import-kaldi-exp", kaldi.data, tmp_path / "lang", exp, tmp_path / "o1")
    assert r.returncode == 1 and "phone set differs" in r.stderr and str(exp / "phones.txt") in r.stderr
    # a tree from another experiment (monophone) with this final.mdl
    phones = TransitionModel.read(exp / "final.mdl").topo.phones
    monophone_tree([[p] for p in phones], {p: 3 for p in phones}).write(exp / "tree", binary=True)
    r = _asr("import-kaldi-exp", kaldi.data, kaldi.lang, exp, tmp_path / "o2")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(exp) in r.stderr
    shutil.copyfile(kaldi.exp / "tree", exp / "tree")
    # an incomplete alignment run
    (exp / "ali.2.gz").unlink()
    r = _asr("import-kaldi-exp", kaldi.data, kaldi.lang, exp, tmp_path / "o3")
    assert r.returncode == 1 and "num_jobs is 2 but ali.2.gz is missing" in r.stderr
    assert not (tmp_path / "o3" / "ali.pdf.ark").exists()
    # a truncated ali.1.gz: one line naming it, no traceback
    shutil.copyfile(kaldi.exp / "ali.2.gz", exp / "ali.2.gz")
    gz = (kaldi.exp / "ali.1.gz").read_bytes()
    (exp / "ali.1.gz").write_bytes(gz[: len(gz) // 2])
    r = _asr("import-kaldi-exp", kaldi.data, kaldi.lang, exp, tmp_path / "o4")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{exp / 'ali.1.gz'}: truncated or corrupt gzip file" in r.stderr
    assert not (tmp_path / "o4").exists()
