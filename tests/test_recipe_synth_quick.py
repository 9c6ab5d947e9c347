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
    for key in ("params", "dev_frame_acc", "dev_wer", "test_wer_first_pass", "test_wer_rescored", "decode_rtf"):
        assert lstmp[key] is not None, key
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


def test_stage_without_inputs_names_the_stage_to_run(tmp_path):
    shutil.copytree(ROOT / "recipes" / "synth", tmp_path / "recipes" / "synth",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    r = subprocess.run(["bash", "recipes/synth/run.sh", "--stage", "6", "--stop-stage", "6"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "run stage 3 first" in r.stderr
