"""The default recipe in --quick mode, end to end: corpus -> lang -> fbank -> CTM import +
tree -> 5-gram LMs -> HCLG -> LSTMP training -> lattice decoding -> rescoring -> results,
then `asr transcribe` with the model dir it selected. Runs in a copy of the recipe so the
checkout stays clean. Takes a few minutes on 2 cores."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asr.align.ali_dir import AliDir

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    top = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "recipes" / "synth", top / "recipes" / "synth",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    shutil.copytree(ROOT / "scripts", top / "scripts")
    shutil.copytree(ROOT / "conf", top / "conf")
    (top / "asr").symlink_to(ROOT / "asr")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", "recipes/synth/run.sh", "--quick", "true", "--baselines", "false", "--nj", "2"],
                       cwd=top, env=env, capture_output=True, text=True, timeout=2400)
    return top / "recipes" / "synth", r


def test_quick_recipe_produces_a_wer(recipe_run):
    recipe, r = recipe_run
    assert r.returncode == 0, r.stderr[-4000:]
    systems = json.loads((recipe / "exp" / "results.json").read_text())
    lstmp = next(s for s in systems if s["name"] == "lstmp")
    for key in ("params", "dev_frame_acc", "dev_wer", "test_wer_first_pass", "test_wer_rescored", "decode_rtf",
                "test_hard_wer_rescored", "test_hard_wer_ci", "chosen_lmwt_wip"):
        assert lstmp[key] is not None, key
    # trained on the augmented data; the hard test set is the unseen voices in unseen rooms
    assert (recipe / "data" / "train_aug" / "augment.json").is_file()
    assert "room=test-" in (recipe / "data" / "test_hard" / "reco2aug").read_text()
    assert 0.01 < float((recipe / "exp" / "lstmp" / "acoustic_scale").read_text()) < 0.3
    # loose bound: a tiny model trained for a few minutes on 10 minutes of speech
    assert lstmp["test_wer_rescored"] < 60.0, lstmp
    assert lstmp["dev_frame_acc"] > 0.2, lstmp
    # the committed RESULTS.md (default-size results) is not overwritten by a quick run
    assert not (recipe / "RESULTS.md").exists()
    report = (recipe / "exp" / "RESULTS.quick.md").read_text()
    assert "| lstmp |" in report and "perplexity" in report
    assert (recipe / "exp" / "final" / "graph" / "HCLG.fst").is_file()
    assert (recipe / "exp" / "lstmp" / "training_curves.png").is_file()


def test_quick_recipe_model_dir_transcribes(recipe_run):
    recipe, r = recipe_run
    assert r.returncode == 0
    wav = sorted((recipe / "data" / "test" / "wav").glob("*.wav"))[0]
    out = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--model-dir", str(recipe / "exp" / "final"),
                          str(wav)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    line = out.stdout.strip().splitlines()[0]
    assert line.split()[0] == wav.stem and len(line.split()) > 1


def test_rerunning_finished_stages_is_safe(recipe_run):
    recipe, r = recipe_run
    assert r.returncode == 0
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    again = subprocess.run(["bash", "run.sh", "--quick", "true", "--baselines", "false", "--stage", "3",
                            "--stop-stage", "8"], cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "exp/lstmp is trained; skipping" in again.stderr
    # every product is left as it is: same inputs (fingerprints)
    for product in ("exp/ali_train_mono", "exp/tree", "exp/ali_dev", "exp/graph", "exp/lstmp/final",
                    "exp/lstmp/decode_dev", "exp/lstmp/decode_test_rescore"):
        assert f"{product} is up to date" in again.stderr, product
    # the acoustic scale follows this run's --lmwts: one LMWT of 5 -> 0.2, then back to the default grid
    scale = recipe / "exp" / "lstmp" / "acoustic_scale"
    chosen = scale.read_text()
    for lmwts, want in (("5:5", "0.2\n"), ("4:20", chosen)):
        r = subprocess.run(["bash", "run.sh", "--quick", "true", "--baselines", "false", "--stage", "7", "--stop-stage",
                            "7", "--test-sets", "", "--lmwts", lmwts], cwd=recipe, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert scale.read_text() == want, lmwts
    # another --lm-target-ngrams re-prunes the first-pass LM (the full one is kept); back to the
    # default, the same pruned LM as before
    pruned = recipe / "exp" / "lm" / "lm5_pruned.arpa"
    before, full = pruned.read_bytes(), (recipe / "exp" / "lm" / "lm5.arpa").stat().st_mtime_ns
    for target, same in (("3000", False), ("8000", True)):
        r = subprocess.run(["bash", "run.sh", "--quick", "true", "--stage", "4", "--stop-stage", "4",
                            "--lm-target-ngrams", target], cwd=recipe, env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "stage 4: pruned 5-gram" in r.stderr and "stage 4: full 5-gram LM" not in r.stderr
        assert (pruned.read_bytes() == before) == same, target
    assert (recipe / "exp" / "lm" / "lm5.arpa").stat().st_mtime_ns == full


def test_flat_start_recipe_reads_no_ctm(recipe_run):
    """--alignments flat: the synthesiser's CTMs are moved away (any read would fail), the
    recipe still trains and decodes from stage 3 on, writes exp/ali_train_flat, and stage 9
    reports the flat-start system beside the CTM-aligned one."""
    recipe, r = recipe_run
    assert r.returncode == 0
    hidden = []
    for ctm in sorted((recipe / "data").glob("*/*.ctm")):
        ctm.rename(ctm.with_name(ctm.name + ".hidden"))
        hidden.append(ctm)
    assert len(hidden) >= 6  # phones.ctm and words.ctm of train, dev, test
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    try:
        flat = subprocess.run(["bash", "run.sh", "--quick", "true", "--baselines", "false", "--alignments", "flat",
                               "--stage", "3"], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800)
        again = subprocess.run(["bash", "run.sh", "--quick", "true", "--alignments", "flat", "--stage", "3",
                                "--stop-stage", "3"], cwd=recipe, env=env, capture_output=True, text=True,
                               timeout=600)
    finally:
        for ctm in hidden:
            ctm.with_name(ctm.name + ".hidden").rename(ctm)
    assert flat.returncode == 0, flat.stderr[-4000:]
    assert again.returncode == 0, again.stderr[-3000:]
    for product in ("exp/ali_train_flat", "exp/tree_flat", "exp/flat_ali_dev", "exp/ali_dev_flat"):
        assert f"{product} is up to date" in again.stderr, product
    ali = recipe / "exp" / "ali_train_flat"
    assert AliDir.load(ali, need_tids=True, need_model=True).kind == "flat_start"
    for name in ("ali.pdf.ark", "ali.tid.ark", "phones.ark", "tree", "final.mdl", "num_pdfs", "silence_pdfs.int",
                 "phones.txt", "flat_start.json"):
        assert (ali / name).is_file(), name
    summary = json.loads((ali / "flat_start.json").read_text())
    rounds = [s for s in summary["steps"] if s["kind"] == "align"]
    assert rounds[-1]["aligned"] > 0.95 * summary["utterances"]
    systems = {s["name"]: s for s in json.loads((recipe / "exp" / "results.json").read_text())}
    assert {"lstmp", "lstmp_flat"} <= set(systems)
    # relative to the CTM-aligned system of the same tiny run (an absolute 60 % failed on one
    # machine): measured on 2026-12-01, lstmp 48.22 %, lstmp_flat 58.22 and 62.22 % in two runs
    # (1.21-1.29x); a broken flat start scores near 100 %
    assert systems["lstmp_flat"]["test_wer_rescored"] < 1.5 * systems["lstmp"]["test_wer_rescored"], systems
    report = (recipe / "exp" / "RESULTS.quick.md").read_text()
    assert "| lstmp |" in report and "| lstmp_flat |" in report


def test_stage_without_inputs_names_the_stage_to_run(tmp_path):
    shutil.copytree(ROOT / "recipes" / "synth", tmp_path / "recipes" / "synth",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    r = subprocess.run(["bash", "recipes/synth/run.sh", "--stage", "6", "--stop-stage", "6"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "run stage 3 first" in r.stderr
