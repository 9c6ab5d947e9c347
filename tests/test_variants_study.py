"""The family-comparison helper of recipes/synth (local/family_study.py) on fake training
and decoding outputs, and model sizing to a parameter budget."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HELPER = Path(__file__).resolve().parents[1] / "recipes" / "synth" / "local" / "family_study.py"


def load_helper():
    spec = importlib.util.spec_from_file_location("family_study", HELPER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fs = load_helper()


def fake_system(root: Path, name, cell_dim, dev_accs, wer, layers=3, fps=(1000.0, 1200.0)):
    """An exp dir as asr train + asr decode leave it: log.csv, final/model.yaml, decode_test/wer."""
    exp = root / name
    (exp / "decode_test").mkdir(parents=True)
    (exp / "final").mkdir()
    model = {"family": "lstm", "num_layers": layers, "cell_dim": cell_dim}
    (exp / "final" / "model.yaml").write_text(yaml.safe_dump({"model": model, "num_inputs": 3, "num_pdfs": 5}))
    rows = ["epoch,updates,lr,train_loss,train_acc,dev_loss,dev_acc,train_frames,seconds,frames_per_second"]
    for k, acc in enumerate(dev_accs, 1):
        rows.append(f"{k},{100 * k},0.001,1.0,0.5,1.1,{acc},{int(fps[k - 1] * 10)},10,{fps[k - 1]}")
    (exp / "log.csv").write_text("\n".join(rows) + "\n")
    if wer is not None:
        (exp / "decode_test" / "wer").write_text(f"%WER {wer:.2f} [ 3 / 100, 1 ins, 1 del, 1 sub ]\n%SER 10.00 [ 1 / 10 ]\n")
    return f"{name}={exp}"


def lstm_params(cell, layers, d=3, p=5):  # peephole LSTM layers (3 peepholes each) + output layer
    return 4 * cell * (d + cell + 1) + (layers - 1) * 4 * cell * (2 * cell + 1) + layers * 3 * cell + cell * p + p


def test_split_name():
    assert fs.split_name("lstm_cifg") == ("lstm", "CIFG", None)
    assert fs.split_name("residual_lstm_8l") == ("residual_lstm", "", 8)
    assert fs.split_name("lstm_3l") == ("lstm", "", 3)
    assert fs.split_name("lstmp") == ("lstmp", "", None)
    assert len(fs.known_systems()) == 5 + 8
    with pytest.raises(ValueError):
        fs.split_name("gru")


def test_model_section_variants_and_inheritance():
    m = fs.model_section("lstm_fgr", 4, {"cell_clip": 30, "init_scale": 0.02, "cell_dim": 9})
    assert m["family"] == "lstm" and m["variant"] == ["FGR"] and m["num_layers"] == 4
    assert m["cell_clip"] == 30 and m["init_scale"] == 0.02 and m["cell_dim"] == 512
    assert "variant" not in fs.model_section("ltlstm", 3, {})


def test_table_appends_markdown_and_json(tmp_path):
    specs = [
        fake_system(tmp_path, "lstm_3l", 4, [0.5, 0.61], 5.0, layers=3),
        fake_system(tmp_path, "lstm_8l", 2, [0.4, 0.45], 9.0, layers=8),
        fake_system(tmp_path, "residual_lstm_3l", 4, [0.55, 0.6], 4.0, layers=3),
        fake_system(tmp_path, "residual_lstm_8l", 4, [0.6, 0.65], 3.0, layers=8),
        fake_system(tmp_path, "ltlstm_3l", 4, [0.6, 0.62], None, layers=3),
    ]
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nearlier table\n")
    results = tmp_path / "exp" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps([{"name": "lstmp", "params": 1}, {"name": "lstm_3l", "params": 0}]))
    rc = subprocess.run([sys.executable, str(HELPER), "table", "--title", "Depth study", "--study", "depth",
                         "--command", "local/compare_families.sh --budget 300000", "--results", str(results),
                         "--markdown", str(md), *specs], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert "5 systems" in rc.stdout and "1 incomplete" in rc.stdout
    text = md.read_text()
    assert text.startswith("# Results\n\nearlier table\n\n### Depth study")
    assert "Command: `local/compare_families.sh --budget 300000`" in text
    p3 = lstm_params(4, 3)
    assert f"| lstm_3l | lstm | vanilla | 3 | {p3:,} | 0.610 | 5.00 | 1,100 |" in text
    assert f"| ltlstm_3l | ltlstm | vanilla | 3 | {p3:,} | 0.620 | n/a | 1,100 |" in text
    assert "Incomplete (training or decoding output missing): ltlstm_3l." in text
    assert "- lstm: test WER 5.00 (3 layers) → 9.00 (8 layers), +80.0 % relative (worse when deeper)" in text
    assert "- residual_lstm: test WER 4.00 (3 layers) → 3.00 (8 layers), -25.0 % relative (better when deeper)" in text
    data = json.loads(results.read_text())
    names = [d["name"] for d in data]
    assert names[0] == "lstmp" and names.count("lstm_3l") == 1 and len(data) == 6
    e = next(d for d in data if d["name"] == "lstm_8l")
    assert {k: e[k] for k in ("study", "family", "variant", "layers", "params", "dev_frame_acc", "train_frames_per_s",
                              "updates", "test_wer_first_pass")} == {
        "study": "depth", "family": "lstm", "variant": "vanilla", "layers": 8, "params": lstm_params(2, 8),
        "dev_frame_acc": 0.45, "train_frames_per_s": 1100.0, "updates": 200, "test_wer_first_pass": 9.0}


def test_rerun_replaces_its_own_section():
    a = fs.markdown_table("Depth", "c1", [])
    b = fs.markdown_table("Families", "c2", [])
    doc = fs.replace_or_append("# Results\n", "Depth", a)
    doc = fs.replace_or_append(doc, "Families", b)
    assert doc == "# Results\n\n" + a + "\n" + b
    a2 = fs.markdown_table("Depth", "c3", [])
    assert fs.replace_or_append(doc, "Depth", a2) == "# Results\n\n" + a2 + "\n" + b
    b2 = fs.markdown_table("Families", "c4", [])
    assert fs.replace_or_append(doc, "Families", b2) == "# Results\n\n" + a + "\n" + b2


def test_table_rejects_bad_spec_and_bad_json(tmp_path):
    rc = subprocess.run([sys.executable, str(HELPER), "table", "--title", "t", "--command", "c",
                         "--results", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "R.md"),
                         "lstm"], capture_output=True, text=True)
    assert rc.returncode == 1 and "SYSTEM=EXP_DIR" in rc.stderr
    bad = tmp_path / "r2.json"
    bad.write_text('{"not": "a list"}')
    spec = fake_system(tmp_path, "lstmp", 4, [0.5], 1.0)
    rc = subprocess.run([sys.executable, str(HELPER), "table", "--title", "t", "--command", "c",
                         "--results", str(bad), "--markdown", str(tmp_path / "R.md"), spec],
                        capture_output=True, text=True)
    assert rc.returncode == 1 and "JSON list" in rc.stderr


def test_missing_outputs_are_na(tmp_path):
    e = fs.collect("lstm_np", tmp_path / "nothing", "families")
    assert e["params"] is None and e["test_wer_first_pass"] is None and e["dev_frame_acc"] is None
    assert "| lstm_np | lstm | NP | n/a | n/a | n/a | n/a | n/a |" in fs.markdown_table("t", "c", [e])


def needs_registry():
    return pytest.importorskip("asr.nnet.registry", reason="model registry (nnet branch) not merged yet")


@pytest.mark.parametrize("system", ["lstmp", "lstm_cifg", "residual_lstm", "highway_lstm", "ltlstm"])
def test_scale_to_budget_hits_the_budget(system):
    needs_registry()
    from asr.nnet.param_budget import count_params, scale_to_budget

    model = fs.model_section(system, 3, {})
    cfg, params = scale_to_budget(model, 40, 300, 200_000)
    assert abs(params - 200_000) / 200_000 < 0.01
    assert params == count_params(cfg, 40, 300)
    if system == "lstmp":  # shape kept: projection = cell / 2
        assert abs(cfg["proj_dim"] / cfg["cell_dim"] - 0.5) < 0.02


def test_make_config_writes_a_trainable_config(tmp_path):
    import yaml

    registry = needs_registry()
    base = tmp_path / "base.yaml"
    base.write_text("model:\n  family: lstmp\n  cell_clip: 50\ntraining:\n  epochs: 2\n  lr: 0.002\n")
    out = tmp_path / "lstm_nog" / "config.yaml"
    rc = subprocess.run([sys.executable, str(HELPER), "make-config", str(base), "lstm_nog", "--num-pdfs", "100",
                         "--budget", "50000", "--layers", "2", "--epochs", "3", "--out", str(out)], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    name, params = rc.stdout.split()
    assert name == "lstm_nog" and abs(int(params) - 50_000) < 1000
    cfg = yaml.safe_load(out.read_text())
    assert cfg["training"] == {"epochs": 3, "lr": 0.002}
    assert cfg["model"]["variant"] == ["NOG"] and cfg["model"]["num_layers"] == 2 and cfg["model"]["cell_clip"] == 50
    registry.build_model(cfg["model"], 40, 100)


SCRIPT = HELPER.parent / "compare_families.sh"


def test_compare_script_help_and_missing_inputs(tmp_path):
    rc = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert rc.returncode == 0 and "--budget 300000" in rc.stdout and "--epochs 6" in rc.stdout
    rc = subprocess.run(["bash", str(SCRIPT), "--train-data", str(tmp_path), "--test-data", str(tmp_path)],
                        capture_output=True, text=True)
    assert rc.returncode != 0 and "run stage 2" in rc.stderr
    (tmp_path / "feats.scp").write_text("")
    rc = subprocess.run(["bash", str(SCRIPT), "--train-data", str(tmp_path), "--test-data", str(tmp_path),
                         "--tree-dir", str(tmp_path / "no_tree")], capture_output=True, text=True)
    assert rc.returncode != 0 and "run stage 3" in rc.stderr and "no_tree/ali.pdf.ark" in rc.stderr
    rc = subprocess.run(["bash", str(SCRIPT), "--bogus", "1"], capture_output=True, text=True)
    assert rc.returncode != 0 and "invalid option --bogus" in rc.stderr
