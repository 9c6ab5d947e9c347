"""recipes/synth stages 1-3 on a tiny synthetic corpus (1 minute of training speech): a run
that fails (a broken wav, a truncated CTM), then the fix and a re-run, gives the same
outputs (features, alignment dirs, tree) as a clean run; a re-run of the finished stages
redoes nothing. About a minute on 2 cores."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ["--quick", "--train-minutes", "1", "--dev-minutes", "0.3", "--test-minutes", "0.2",
          "--lm-sentences", "300", "--nj", "2"]
PRODUCTS = ["exp/ali_train_mono", "exp/tree", "exp/ali_dev"]


def _checkout(top: Path) -> Path:
    shutil.copytree(ROOT / "recipes" / "synth", top / "recipes" / "synth",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    shutil.copytree(ROOT / "scripts", top / "scripts")
    shutil.copytree(ROOT / "conf", top / "conf")
    (top / "asr").symlink_to(ROOT / "asr")
    return top / "recipes" / "synth"


def _env():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "run.sh", "--quick", "true", "--nj", "2", "--augment", "false", "--test-sets", "test",
                           *args], cwd=recipe, env=_env(),
                          capture_output=True, text=True, timeout=600)


def _snapshot(recipe: Path) -> dict[str, str]:
    """SHA-256 of every feature matrix and every file of the stage-3 products."""
    import kaldiio

    out = {}
    for x in ("train", "dev", "test"):
        for utt, m in kaldiio.load_scp(str(recipe / "data" / x / "feats.scp")).items():
            out[f"{x}/{utt}"] = hashlib.sha256(m.tobytes()).hexdigest()
        for spk, m in kaldiio.load_scp(str(recipe / "data" / x / "cmvn.scp")).items():
            out[f"{x}/cmvn/{spk}"] = hashlib.sha256(m.tobytes()).hexdigest()
    for d in PRODUCTS:
        for p in sorted((recipe / d).iterdir()):
            if p.name in ("build_tree.json", "ali_dir.json"):  # timings; input fingerprints of paths
                continue
            out[f"{d}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    top = tmp_path_factory.mktemp("corpus")
    recipe = _checkout(top)
    r = subprocess.run([sys.executable, "-m", "asr", "-q", "synth-corpus", *CORPUS, "data"], cwd=recipe, env=_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return top


def _copy(corpus: Path, dst: Path) -> Path:
    """A checkout with the corpus; wav.scp's absolute paths re-pointed to the copy."""
    shutil.copytree(corpus, dst, symlinks=True)
    recipe = dst / "recipes" / "synth"
    for x in ("train", "dev", "test"):
        scp = recipe / "data" / x / "wav.scp"
        scp.write_text(scp.read_text().replace(str(corpus), str(dst)))
    return recipe


def test_rerun_after_failure_and_fix_equals_a_clean_run(corpus, tmp_path):
    clean = _copy(corpus, tmp_path / "clean")
    r = _run(clean, "--stage", "1", "--stop-stage", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    want = _snapshot(clean)

    broken = _copy(corpus, tmp_path / "broken")
    data = broken / "data"
    wav = Path((data / "train" / "wav.scp").read_text().splitlines()[3].split()[1])
    wav_bytes, ctm = wav.read_bytes(), (data / "train" / "phones.ctm").read_text()
    wav.write_bytes(wav_bytes[:30])  # a broken recording: that utterance fails, is counted
    lines = ctm.splitlines(keepends=True)
    (data / "train" / "phones.ctm").write_text("".join(lines[: len(lines) // 3]))  # most alignments missing
    r = _run(broken, "--stage", "1", "--stop-stage", "3")
    assert r.returncode != 0
    assert "asr import-ali: error:" in r.stderr and "more than --max-failures" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (broken / "exp" / "ali_train_mono").exists()  # nothing that looks finished

    wav.write_bytes(wav_bytes)  # the fix (a new mtime: make-fbank redoes that job)
    (data / "train" / "phones.ctm").write_text(ctm)
    r = _run(broken, "--stage", "2", "--stop-stage", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _snapshot(broken) == want

    again = _run(broken, "--stage", "2", "--stop-stage", "3")
    assert again.returncode == 0, again.stderr[-3000:]
    # the three products of stage 3 (train alignments, tree, dev alignments) are kept as they are
    assert again.stderr.count("is up to date (") == 3 and "0 already done" not in again.stdout
    assert _snapshot(broken) == want


def test_stage_6_retrains_a_network_of_another_tree(tmp_path):
    """run.sh's trained_on_tree (stage 6 retrains a finished system when it fails): false only
    when the network's model.yaml records the tree of other alignments."""
    script = (ROOT / "recipes" / "synth" / "run.sh").read_text()
    start = script.index("trained_on_tree() {")
    func = script[start:script.index("\n}\n", start) + 3]
    assert 'rm -r exp/$sys$sfx' in script[script.index("! trained_on_tree exp/$sys$sfx/final $tree/tree"):][:300]
    (tmp_path / "net").mkdir()
    for name in ("tree1", "tree2"):
        (tmp_path / name).write_text(name)
    h = hashlib.sha256(b"tree1").hexdigest()
    env = dict(_env(), PYTHONPATH=str(ROOT))
    old, new = 1_000_000_000, 1_000_000_100
    for yaml_text, tree, tree_time, rc in ((f"training:\n  alignment_tree: {h}\n", "tree1", new, 0),
                                           (f"training:\n  alignment_tree: {h}\n", "tree2", old, 1),
                                           # nothing recorded (an older network): the tree's time decides
                                           ("num_pdfs: 3\n", "tree2", old, 0), ("num_pdfs: 3\n", "tree2", new, 1)):
        (tmp_path / "net" / "model.yaml").write_text(yaml_text)
        os.utime(tmp_path / "net" / "model.yaml", (old + 50, old + 50))
        os.utime(tmp_path / tree, (tree_time, tree_time))
        r = subprocess.run(["bash", "-c", func + f"trained_on_tree {tmp_path / 'net'} {tmp_path / tree}"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == rc, (yaml_text, tree, r.stderr)


def test_stage_6_retrains_a_network_trained_with_another_config(tmp_path):
    """run.sh's config_of / same_config: a finished (or started) network whose config.yaml (as
    asr train wrote it) is not the family's config, with the seed of a <family>_sN system, is
    trained again, so an edited conf/lstmp.yaml never leaves the old network in the results;
    a seed system trains with config_of's output too (one rule for both)."""
    import yaml

    script = (ROOT / "recipes" / "synth" / "run.sh").read_text()
    funcs = ""
    for name in ("family_of() {", "seed_of() {", "same_config() {", "config_of() {"):
        start = script.index(name)
        end = script.index("\n}\n", start) + 3 if script[start:].split("\n", 1)[0].endswith("{") else \
            script.index("\n", start) + 1
        funcs += script[start:end]
    loop = script[script.index("config=$conf/$(family_of $sys).yaml"):script.index("config=exp/$sys$sfx/config_seed.yaml")]
    assert 'want=$(config_of $sys)' in loop and 'same_config exp/$sys$sfx/config.yaml <<< "$want"' in loop
    assert "rm -r exp/$sys$sfx" in loop and 'printf \'%s\\n\' "$want" > exp/$sys$sfx/config_seed.yaml' in loop
    config = ROOT / "conf" / "lstmp.yaml"
    used = yaml.safe_load(config.read_text())
    seeded = yaml.safe_load(config.read_text())
    seeded["training"]["seed"] = 2
    edited = yaml.safe_load(config.read_text())
    edited["training"]["cmvn"] = "utterance"
    for sys_name, written, rc in (("lstmp", used, 0), ("lstmp", edited, 1), ("lstmp_s2", seeded, 0),
                                  ("lstmp_s2", used, 1), ("lstmp", seeded, 1)):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(written, sort_keys=False))
        r = subprocess.run(["bash", "-c", funcs + f"conf={ROOT / 'conf'}\n"
                            f'same_config {tmp_path / "config.yaml"} <<< "$(config_of {sys_name})"'],
                           env=_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == rc and not r.stderr, (sys_name, written["training"], r.stderr)
