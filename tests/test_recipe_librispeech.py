"""The LibriSpeech and mini_librispeech recipes end to end on the LibriSpeech-shaped fixture
(synthesised FLAC speech, lexicon and ARPA LMs in the real formats): data prep, dict + lang
(the Kaldi experiment's), LM perplexity, features, Kaldi experiment import, HCLG (ours, or the
imported Kaldi graph), tiny LSTMP training, parallel decoding of the eval sets, rescoring,
RESULTS.md with real WERs; then transcribe, safe re-runs, and --alignments flat."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kaldi_exp_fixture import make_kaldi_exp

from asr.align.ali_dir import AliDir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY = """model: {family: lstmp, num_layers: 2, cell_dim: 96, proj_dim: 48, peepholes: false, cell_clip: null}
training:
  optimizer: adam
  lr: 0.005
  schedule: {type: warmup_cosine, warmup_updates: 10, final_lr_factor: 0.1}
  grad_clip: 5.0
  epochs: 5
  streams: 8
  chunk: 20
  output_delay: 5
  seed: 1
  cmvn: speaker
"""


def _checkout(tmp: Path) -> Path:
    """The recipes, scripts and conf in a scratch checkout (outputs stay out of the repo)."""
    top = tmp / "checkout"
    for d in ("recipes/librispeech", "recipes/mini_librispeech"):
        shutil.copytree(ROOT / d, top / d, ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    shutil.copytree(ROOT / "scripts", top / "scripts")
    shutil.copytree(ROOT / "conf", top / "conf")
    (top / "asr").symlink_to(ROOT / "asr")
    (top / "tiny.yaml").write_text(TINY)
    return top


def _env():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                OMP_NUM_THREADS="1")


def _recipe(top, name, *args, timeout=900):
    return subprocess.run(["bash", f"recipes/{name}/run.sh", *map(str, args)], cwd=top, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _common_args(corpus, kaldi, top):
    return ["--stage", 1, "--corpus-dir", corpus.root, "--lm-dir", corpus.lm_dir, "--kaldi-ali-dir", kaldi.exp,
            "--kaldi-lang-dir", kaldi.lang, "--train-conf", top / "tiny.yaml", "--cv-utts", 8, "--nj", 2,
            "--decode-opts", "--beam 6 --lattice-beam 3"]


def _check_results(recipe: Path, sets: list[str]):
    systems = json.loads((recipe / "exp" / "results.json").read_text())
    lstmp = next(s for s in systems if s["name"] == "lstmp")
    for s in sets:
        for p in ("first_pass", "rescored"):
            w = lstmp["sets"][s][p]
            assert isinstance(w, float) and 0 <= w <= 300, (s, p, w)
    assert lstmp["dev_frame_acc"] > 0.05
    report = (recipe / "RESULTS.md").read_text()
    for s in sets:
        assert f"| {s}" in report or f" {s} |" in report
    assert "| lstmp | " in report and "first pass" in report and "rescored" in report
    assert "perplexity under the first-pass LM" in report
    assert "--decode-opts --beam\\ 6\\ --lattice-beam\\ 3" in report  # the command, quoted for the shell
    times = (recipe / "exp" / "stage_seconds.txt").read_text()
    assert all(f"stage {n}:" in times for n in range(1, 11))
    return lstmp


@pytest.fixture(scope="module")
def librispeech_run(librispeech_corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipe_ls")
    kaldi = make_kaldi_exp(librispeech_corpus, ["train-clean-100", "train-clean-360", "train-other-500"],
                           tmp / "kaldi", num_leaves=80)
    top = _checkout(tmp)
    r = _recipe(top, "librispeech", *_common_args(librispeech_corpus, kaldi, top))
    return top / "recipes" / "librispeech", r, kaldi


def test_librispeech_recipe_end_to_end(librispeech_run, librispeech_corpus):
    recipe, r, kaldi = librispeech_run
    assert r.returncode == 0, r.stderr[-5000:]
    _check_results(recipe, ["dev_clean", "test_clean", "dev_other", "test_other"])
    # the three train parts combined; the odd cases of train-clean-360 skipped
    prep = json.loads((recipe / "data" / "train" / "prep.json").read_text())
    fx = librispeech_corpus
    assert prep["utterances"] == sum(len(fx.utts[p]) for p in ("train-clean-100", "train-clean-360", "train-other-500"))
    assert prep["skipped"]
    # the Kaldi experiment's senones and lang dir were used
    assert (recipe / "data" / "lang" / "phones.txt").read_text() == (kaldi.lang / "phones.txt").read_text()
    imp = json.loads((recipe / "exp" / "ali" / "kaldi_exp.json").read_text())
    assert imp["tree_format"] == "binary"
    assert (recipe / "exp" / "final" / "graph" / "HCLG.fst").is_file()
    # the model dir transcribes a FLAC file of the corpus
    flac = fx.utts["test-clean"][0].flac
    out = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--model-dir", str(recipe / "exp" / "final"),
                          str(flac)], capture_output=True, text=True, timeout=300, env=_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == flac.stem


def prep_utts(recipe: Path) -> int:
    return sum(1 for _ in open(recipe / "data" / "train" / "text"))


def test_librispeech_rerun_skips_and_flat_start_works(librispeech_run, librispeech_corpus):
    recipe, r, kaldi = librispeech_run
    assert r.returncode == 0
    top = recipe.parent.parent
    again = _recipe(top, "librispeech", *_common_args(librispeech_corpus, kaldi, top), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert any("data/test_other: " in ln and "jobs already finished (skipped)" in ln for ln in again.stderr.splitlines())
    for line in ("stage 1: data/train is up to date", "stage 1: data/test_other is up to date",
                 "data/lang is the Kaldi lang dir", "data/test_other/cmvn.scp is up to date",
                 "data/train_tr and data/train_cv are up to date", "exp/ali is up to date", "exp/graph is up to date",
                 "exp/lstmp is trained; skipping", "exp/lstmp/final is up to date",
                 "exp/lstmp/decode_test_other is up to date", "exp/lstmp/decode_dev_clean_rescore is up to date"):
        assert line in again.stderr, line
    # a changed training config retrains (EXP/.trained and .model_dir go first, so an interrupted
    # retraining leaves nothing that looks finished); a changed --cv-utts splits data/train anew
    (top / "tiny2.yaml").write_text(TINY.replace("epochs: 5", "epochs: 2"))
    old_sig = (recipe / "exp" / "lstmp" / ".trained").read_text()
    changed = _recipe(top, "librispeech", *_common_args(librispeech_corpus, kaldi, top), "--stage", 5, "--stop-stage", 7,
                      "--train-conf", top / "tiny2.yaml", "--cv-utts", 6, timeout=600)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "held-out speakers (about 6 utterances) into data/train_cv" in changed.stderr
    assert "training exp/lstmp" in changed.stderr and "is trained; skipping" not in changed.stderr
    assert "epochs: 2" in (recipe / "exp" / "lstmp" / "config.yaml").read_text()
    assert (recipe / "exp" / "lstmp" / ".trained").read_text() != old_sig
    assert (recipe / "exp" / "lstmp" / ".model_dir").is_file()
    # --alignments flat: exp/ali from the transcripts alone (one CI round, a small tree), an
    # alignment dir like the import's, on which the next stages run
    # the built-in CD network warms up for 200 updates: the tiny fixture gets a CD config with
    # a constant learning rate and a few epochs (else the trainer's chance guard stops it)
    import copy

    import yaml

    from asr.flatstart.pipeline import CD_CONFIG

    cd = copy.deepcopy(CD_CONFIG)
    cd["training"].update(epochs=6, schedule={"type": "constant"})
    (top / "cd_tiny.yaml").write_text(yaml.safe_dump(cd))
    flat = _recipe(top, "librispeech", "--stage", 5, "--stop-stage", 6, "--lm-dir", librispeech_corpus.lm_dir,
                   "--alignments", "flat", "--flat-opts",
                   f"--rounds 1 --context-rounds 0 --num-leaves 40 --num-threads 1 --cd-config {top / 'cd_tiny.yaml'}", timeout=600)
    assert flat.returncode == 0, flat.stderr[-3000:]
    ali = AliDir.load(recipe / "exp" / "ali", need_tids=True, need_model=True)
    assert ali.kind == "flat_start" and ali.info["utterances"] > 0.9 * prep_utts(recipe)
    assert (recipe / "data" / "train_cv" / "spk2utt").is_file() and (recipe / "exp" / "graph" / "HCLG.fst").is_file()
    # our own 5-gram from librispeech-lm-norm.txt.gz (full and pruned) instead of the official LMs
    own = _recipe(top, "librispeech", "--stage", 3, "--stop-stage", 3, "--own-lm", "true", "--own-lm-prune", "1e-5",
                  "--lm-dir", librispeech_corpus.lm_dir, timeout=300)
    assert own.returncode == 0, own.stderr[-3000:]
    lm5 = (recipe / "exp" / "lm" / "lm5.arpa").read_text()
    pruned = (recipe / "exp" / "lm" / "lm5_pruned.arpa").read_text()
    assert "ngram 5=" in lm5 and "ngram 5=" in pruned and len(pruned) < len(lm5)
    assert "ppl=" in (recipe / "exp" / "lm" / "ppl_first_pass_test_clean.txt").read_text()
    # another threshold: the pruned LM only is made again
    own2 = _recipe(top, "librispeech", "--stage", 3, "--stop-stage", 3, "--own-lm", "true", "--own-lm-prune", "1e-4",
                   "--lm-dir", librispeech_corpus.lm_dir, timeout=300)
    assert own2.returncode == 0, own2.stderr[-3000:]
    assert "exp/lm/lm5.arpa is up to date" in own2.stderr and "lm5_pruned.arpa is up to date" not in own2.stderr
    assert (recipe / "exp" / "lm" / "lm5_pruned.arpa").read_text() != pruned
    # data/lang: our own lang dir replaces the Kaldi one, and the Kaldi one ours (content signatures)
    for lang_args, made in (([], "data/lang from data/local/dict"),
                            (["--kaldi-lang-dir", kaldi.lang], "using the Kaldi lang dir")):
        r2 = _recipe(top, "librispeech", "--stage", 2, "--stop-stage", 2, "--lm-dir", librispeech_corpus.lm_dir,
                     *lang_args, timeout=300)
        assert r2.returncode == 0 and made in r2.stderr, r2.stderr[-3000:]
    assert (recipe / "data" / "lang" / "L.fst").read_bytes() == (kaldi.lang / "L.fst").read_bytes()


def test_mini_librispeech_recipe_with_the_kaldi_graph(librispeech_corpus, kaldi_exp_mini, tmp_path):
    top = _checkout(tmp_path)
    r = _recipe(top, "mini_librispeech", *_common_args(librispeech_corpus, kaldi_exp_mini, top),
                "--kaldi-graph-dir", kaldi_exp_mini.exp / "graph", "--graph", "kaldi", "--train-workers", 2)
    assert r.returncode == 0, r.stderr[-5000:]
    recipe = top / "recipes" / "mini_librispeech"
    _check_results(recipe, ["dev_clean_2"])
    # --train-workers 2 trained with 2 DDP processes (asr train --workers 2), each on its share
    assert "rank 0/2: " in r.stderr and "rank 1/2: " in r.stderr
    # decoded with the imported Kaldi graph, byte for byte the experiment's
    assert (recipe / "exp" / "lstmp" / "final" / "graph" / "HCLG.fst").read_bytes() == \
        (kaldi_exp_mini.exp / "graph" / "HCLG.fst").read_bytes()
    assert not (recipe / "exp" / "graph").exists()


def _tiny_mini_corpus(root: Path) -> None:
    """train-clean-5 and dev-clean-2 with one chapter of two utterances each, SPEAKERS.TXT and
    a lexicon without one of the training words (as the real one): enough for stages 1, 2, 4, 5."""
    import numpy as np
    import soundfile as sf

    ls = root / "LibriSpeech"
    ls.mkdir(parents=True)
    (ls / "SPEAKERS.TXT").write_text(";ID  |SEX| SUBSET           |MINUTES| NAME\n"
                                     "19   | F | train-clean-100  | 25.19 | Kara Shallenberg\n"
                                     "84   | F | dev-clean        |  8.02 | Christie Nowak\n")
    rng = np.random.default_rng(0)
    for part, reader, chapter, lines in (("train-clean-5", 19, 198, ["DON'T GO THERE", "'EM AND THE BRONTOSAURUSES"]),
                                         ("dev-clean-2", 84, 121123, ["GO THERE", "THE END"])):
        d = ls / part / str(reader) / str(chapter)
        d.mkdir(parents=True)
        with open(d / f"{reader}-{chapter}.trans.txt", "w") as f:
            for i, words in enumerate(lines):
                f.write(f"{reader}-{chapter}-{i:04d} {words}\n")
                sf.write(d / f"{reader}-{chapter}-{i:04d}.flac", rng.standard_normal(16000) * 0.1, 16000,
                         format="FLAC", subtype="PCM_16")
    (root / "lm").mkdir()
    (root / "lm" / "librispeech-lexicon.txt").write_text(
        "DON'T\tD OW1 N T\n'EM\tAH0 M\nAND\tAH0 N D\nTHE\tDH AH0\nGO\tG OW1\nTHERE\tDH EH1 R\nEND\tEH1 N D\n")


def test_corpus_dir_with_spaces_relative_or_given_as_librispeech_itself(tmp_path):
    top = _checkout(tmp_path)
    corpus = tmp_path / "my corpora" / "mini librispeech"
    _tiny_mini_corpus(corpus)
    r = _recipe(top, "mini_librispeech", "--stage", 1, "--stop-stage", 2, "--corpus-dir", corpus, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    data = top / "recipes" / "mini_librispeech" / "data"
    wav = (data / "train" / "wav.scp").read_text().splitlines()
    assert wav[0] == f"19-198-0000 {corpus}/LibriSpeech/train-clean-5/19/198/19-198-0000.flac"
    assert (data / "dev_clean_2" / "text").read_text() == "84-121123-0000 GO THERE\n84-121123-0001 THE END\n"
    assert (data / "lang" / "words.txt").is_file()
    # the LibriSpeech dir itself as --corpus-dir: a clear error before stage 0 fetches every part
    # into LibriSpeech/LibriSpeech
    r = _recipe(top, "mini_librispeech", "--corpus-dir", corpus / "LibriSpeech", timeout=300)
    assert r.returncode == 1
    assert f"holds the part train-clean-5 itself; give the dir above it, which holds LibriSpeech/train-clean-5: " \
           f"--corpus-dir {corpus}" in r.stderr, r.stderr[-3000:]
    assert not (corpus / "LibriSpeech" / "LibriSpeech").exists()
    # a relative --corpus-dir is relative to where run.sh is started (it works in its own dir)
    (data / "train" / ".prep.sig").unlink()
    r = subprocess.run(["bash", top / "recipes" / "mini_librispeech" / "run.sh", "--stage", "1", "--stop-stage", "1",
                        "--corpus-dir", "mini librispeech"], cwd=corpus.parent, env=_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (data / "train" / "wav.scp").read_text().splitlines()[0] == wav[0]


def test_flat_start_maps_words_missing_from_the_lexicon_to_unk(tmp_path):
    # real train transcripts hold words librispeech-lexicon.txt lacks: flat start maps them to
    # <UNK> (as Kaldi's recipe) instead of stopping the recipe at stage 5
    top = _checkout(tmp_path)
    corpus = tmp_path / "corpus"
    _tiny_mini_corpus(corpus)
    for stages in ((1, 2), (4, 5)):
        r = _recipe(top, "mini_librispeech", "--stage", stages[0], "--stop-stage", stages[1], "--corpus-dir", corpus,
                    "--nj", 1, "--alignments", "flat", "--cv-utts", 1, timeout=300)
    assert "not in the lexicon" not in r.stderr, r.stderr[-3000:]
    # (two utterances are too few for the flat start to learn from: only how the words went matters)
    assert "1 word ('BRONTOSAURUSES' (19-198-0001)) mapped to the OOV word <UNK>" in r.stderr, r.stderr[-3000:]
