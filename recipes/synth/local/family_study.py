#!/usr/bin/env python3
"""Helpers of the LSTM-family comparison (recipes/synth/local/compare_families.sh).

    family_study.py make-config BASE.yaml SYSTEM --num-inputs 40 --num-pdfs N --budget P \\
        --layers L --out EXP/SYSTEM/config.yaml
        Write BASE's config with its model: section replaced by SYSTEM's family (sized to
        about P parameters); prints "SYSTEM PARAMS".

    family_study.py table --title T --study S --command CMD --results exp/results.json \\
        --markdown RESULTS.md SYSTEM=EXP_DIR,DECODE_DIR ...
        Read each system's training log (EXP_DIR/log.csv), parameter count
        (EXP_DIR/nnet-info.txt, "num-params N") and test WER (DECODE_DIR/wer, "%WER x"),
        append a table to RESULTS.md and put one entry per system into results.json
        (replacing entries of the same name).

SYSTEM names: lstmp, lstm (Greff's vanilla: peephole LSTM, no projection), lstm_<flag> for
the eight Greff variants (lstm_nig, lstm_nfg, lstm_nog, lstm_niaf, lstm_noaf, lstm_np,
lstm_cifg, lstm_fgr), residual_lstm, highway_lstm, ltlstm; a suffix _<L>l (e.g.
residual_lstm_8l) only names a depth-study run.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import re
import sys
from pathlib import Path

GREFF = ("nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")

# model: sections before sizing (shapes: the scale factor keeps their ratios)
TEMPLATES = {
    "lstmp": {"family": "lstmp", "cell_dim": 512, "proj_dim": 256},
    "lstm": {"family": "lstm", "cell_dim": 512},
    "residual_lstm": {"family": "residual_lstm", "cell_dim": 512, "proj_dim": 512},
    "highway_lstm": {"family": "highway_lstm", "cell_dim": 512},
    "ltlstm": {"family": "ltlstm", "cell_dim": 512, "layer_cell_dim": 512},
}
# keys of the base config's model: section that every system inherits
INHERITED = ("cell_clip", "init_scale")


def split_name(system: str) -> tuple[str, str, int | None]:
    """'lstm_cifg' -> ('lstm', 'CIFG', None); 'residual_lstm_8l' -> ('residual_lstm', '', 8)."""
    layers = None
    m = re.fullmatch(r"(.+)_(\d+)l", system)
    if m:
        system, layers = m.group(1), int(m.group(2))
    if system in TEMPLATES:
        return system, "", layers
    if system.startswith("lstm_") and system[5:] in GREFF:
        return "lstm", system[5:].upper(), layers
    raise ValueError(f"unknown system {system!r}; known: {', '.join(known_systems())}")


def known_systems() -> list[str]:
    return list(TEMPLATES) + [f"lstm_{v}" for v in GREFF]


def model_section(system: str, num_layers: int, base_model: dict) -> dict:
    family, variant, _ = split_name(system)
    cfg = copy.deepcopy(TEMPLATES[family])
    cfg["num_layers"] = num_layers
    for key in INHERITED:
        if key in base_model:
            cfg[key] = base_model[key]
    if family in ("lstm", "lstmp"):
        cfg["peepholes"] = True
        cfg["implementation"] = "custom"  # all systems on the same TorchScript cell code
    if variant:
        cfg["variant"] = [variant]
    return cfg


def make_config(args) -> int:
    import yaml

    from asr.config import load_yaml
    from asr.nnet.param_budget import scale_to_budget

    base = load_yaml(args.base)
    model = model_section(args.system, args.layers, base.get("model") or {})
    sized, params = scale_to_budget(model, args.num_inputs, args.num_pdfs, args.budget)
    cfg = dict(base)
    cfg["model"] = sized
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    print(f"{args.system} {params}")
    return 0


# ---------------------------------------------------------------- results


def read_params(exp: Path) -> int | None:
    f = exp / "nnet-info.txt"
    if f.exists():
        m = re.search(r"^num-params (\d+)", f.read_text(encoding="utf-8"), re.M)
        if m:
            return int(m.group(1))
    return None


def read_training_log(exp: Path) -> dict:
    """Best dev frame accuracy (%), updates and train frames/s from EXP/log.csv."""
    f = exp / "log.csv"
    if not f.exists():
        return {}
    with open(f, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}

    def col(name):
        vals = []
        for r in rows:
            try:
                vals.append(float(r[name]))
            except (KeyError, TypeError, ValueError):
                pass
        return vals

    out = {}
    dev = col("dev_acc")
    if dev:
        best = max(dev)
        out["dev_frame_acc"] = round(100 * best if best <= 1.0 else best, 2)
    frames, seconds = col("train_frames"), col("seconds")
    if frames and seconds and len(frames) == len(seconds) and sum(seconds) > 0:
        out["train_frames_per_s"] = round(sum(frames) / sum(seconds), 1)
    elif col("frames_per_second"):
        fps = col("frames_per_second")
        out["train_frames_per_s"] = round(sum(fps) / len(fps), 1)
    upd = col("updates")
    if upd:
        out["updates"] = int(max(upd))
    return out


def read_wer(decode_dir: Path) -> float | None:
    f = decode_dir / "wer"
    if f.exists():
        m = re.search(r"%WER\s+([0-9.]+)", f.read_text(encoding="utf-8"))
        if m:
            return float(m.group(1))
    return None


def collect(system: str, exp: Path, decode_dir: Path, study: str) -> dict:
    family, variant, layers = split_name(system)
    entry = {"name": system, "study": study, "family": family, "variant": variant or "vanilla"}
    cfg_file = exp / "config.yaml"
    if cfg_file.exists():
        import yaml

        model = (yaml.safe_load(cfg_file.read_text(encoding="utf-8")) or {}).get("model") or {}
        layers = model.get("num_layers", layers)
    entry["layers"] = layers
    entry["params"] = read_params(exp)
    entry.update(read_training_log(exp))
    entry["test_wer"] = read_wer(decode_dir)
    return entry


def fmt(v, spec=""):
    return "n/a" if v is None else format(v, spec)


def markdown_table(title: str, command: str, entries: list[dict], note: str = "") -> str:
    lines = [f"### {title}", "", f"Command: `{command}`", ""]
    lines += ["| system | family | variant | layers | params | dev frame acc % | test WER % | train frames/s |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for e in entries:
        lines.append(f"| {e['name']} | {e['family']} | {e['variant']} | {fmt(e.get('layers'))} | "
                     f"{fmt(e.get('params'), ',')} | {fmt(e.get('dev_frame_acc'), '.2f')} | "
                     f"{fmt(e.get('test_wer'), '.2f')} | {fmt(e.get('train_frames_per_s'), ',.0f')} |")
    missing = [e["name"] for e in entries if e.get("test_wer") is None or e.get("dev_frame_acc") is None]
    if missing:
        lines += ["", f"Incomplete (training or decoding output missing): {', '.join(missing)}."]
    depth = depth_lines(entries)
    if depth:
        lines += [""] + depth
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def depth_lines(entries: list[dict]) -> list[str]:
    """For families run at several depths: how WER changes from the shallowest to the deepest."""
    by_family: dict[str, list[dict]] = {}
    for e in entries:
        if e.get("layers") is not None and e.get("test_wer") is not None:
            by_family.setdefault(f"{e['family']}{'_' + e['variant'].lower() if e['variant'] != 'vanilla' else ''}", []).append(e)
    out = []
    for fam, es in by_family.items():
        es = sorted(es, key=lambda e: e["layers"])
        if len(es) < 2 or es[0]["layers"] == es[-1]["layers"]:
            continue
        a, b = es[0], es[-1]
        rel = (b["test_wer"] - a["test_wer"]) / a["test_wer"] * 100 if a["test_wer"] > 0 else float("nan")
        trend = "worse" if b["test_wer"] > a["test_wer"] else ("better" if b["test_wer"] < a["test_wer"] else "equal")
        out.append(f"- {fam}: test WER {a['test_wer']:.2f} % ({a['layers']} layers) → {b['test_wer']:.2f} % "
                   f"({b['layers']} layers), {rel:+.1f} % relative ({trend} when deeper)")
    return out


def update_results_json(path: Path, entries: list[dict]) -> None:
    data = []
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        data = json.loads(text) if text else []
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of systems")
    names = {e["name"] for e in entries}
    data = [d for d in data if d.get("name") not in names] + entries
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def table(args) -> int:
    entries = []
    for spec in args.systems:
        name, sep, dirs = spec.partition("=")
        exp, sep2, dec = dirs.partition(",")
        if not sep or not sep2:
            raise ValueError(f"expected SYSTEM=EXP_DIR,DECODE_DIR, got {spec!r}")
        entries.append(collect(name, Path(exp), Path(dec), args.study))
    md = Path(args.markdown)
    md.parent.mkdir(parents=True, exist_ok=True)
    old = md.read_text(encoding="utf-8") if md.exists() else ""
    sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    md.write_text(old + sep + markdown_table(args.title, args.command, entries, args.note), encoding="utf-8")
    update_results_json(Path(args.results), entries)
    incomplete = sum(1 for e in entries if e.get("test_wer") is None or e.get("dev_frame_acc") is None)
    print(f"{len(entries)} systems written to {md} and {args.results}; {incomplete} incomplete")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-config", help="write a system's training config at a parameter budget")
    p.add_argument("base", help="base training config (YAML with training: and model: sections)")
    p.add_argument("system", help="system name, e.g. lstmp, lstm_cifg, residual_lstm")
    p.add_argument("--num-inputs", type=int, default=40)
    p.add_argument("--num-pdfs", type=int, required=True)
    p.add_argument("--budget", type=int, required=True, help="target number of parameters")
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=make_config)
    p = sub.add_parser("table", help="append a results table to RESULTS.md and results.json")
    p.add_argument("--title", required=True)
    p.add_argument("--study", default="families", help="tag stored with each results.json entry")
    p.add_argument("--command", required=True, help="the command that made the table (shown above it)")
    p.add_argument("--note", default="")
    p.add_argument("--results", required=True, help="exp/results.json")
    p.add_argument("--markdown", required=True, help="RESULTS.md")
    p.add_argument("systems", nargs="+", metavar="SYSTEM=EXP_DIR,DECODE_DIR")
    p.set_defaults(func=table)
    args = ap.parse_args(argv)
    from asr.errors import AsrError

    try:
        return args.func(args)
    except (ValueError, AsrError) as e:
        print(f"family_study.py {args.cmd}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
