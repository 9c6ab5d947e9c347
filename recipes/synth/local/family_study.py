#!/usr/bin/env python3
"""Helpers of the LSTM-family comparison (recipes/synth/local/compare_families.sh).

    family_study.py make-config BASE.yaml SYSTEM --num-inputs 40 --num-pdfs N --budget P \\
        --layers L [--epochs E] --out EXP/SYSTEM/config.yaml
        Write BASE's config with its model: section replaced by SYSTEM's family (sized to
        about P parameters); prints "SYSTEM PARAMS".

    family_study.py table --title T --study S --command CMD --results exp/results.json \\
        --markdown RESULTS.md SYSTEM=EXP_DIR ...
        Collect each system as `asr results` does (asr.report.results: EXP_DIR/log.csv,
        EXP_DIR/final/model.yaml, EXP_DIR/decode_test/wer), add the study's tags (family,
        variant, layers) and train frames/s, append a table to RESULTS.md and merge one entry
        per system into results.json (replacing entries of the same name).

SYSTEM names: lstmp, lstm (Greff's vanilla: peephole LSTM, no projection), lstm_<flag> for
the eight Greff variants (lstm_nig, lstm_nfg, lstm_nog, lstm_niaf, lstm_noaf, lstm_np,
lstm_cifg, lstm_fgr), residual_lstm, highway_lstm, ltlstm; a suffix _<L>l (e.g.
residual_lstm_8l) only names a depth-study run.
"""

from __future__ import annotations

import argparse
import copy
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
    if args.epochs:
        cfg["training"] = {**(cfg.get("training") or {}), "epochs": args.epochs}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    print(f"{args.system} {params}")
    return 0


# ---------------------------------------------------------------- results


def training_speed(exp: Path) -> dict:
    """Train frames/s (all epochs' frames over their seconds) and updates, from EXP/log.csv."""
    from asr.report.results import read_train_log

    rows = read_train_log(exp / "log.csv")

    def column(key):
        vals = []
        for r in rows:
            try:
                vals.append(float(r[key]))
            except (KeyError, TypeError, ValueError):
                pass
        return vals

    out = {}
    frames, seconds = column("train_frames"), column("seconds")
    if frames and len(frames) == len(seconds) and sum(seconds) > 0:
        out["train_frames_per_s"] = round(sum(frames) / sum(seconds), 1)
    updates = column("updates")
    if updates:
        out["updates"] = int(max(updates))
    return out


def collect(system: str, exp: Path, study: str) -> dict:
    """asr results' entry for the system (params, dev frame accuracy, WERs) plus the study's
    tags (family, variant, layers) and training speed."""
    from asr.errors import ConfigError
    from asr.report.results import collect_system

    family, variant, layers = split_name(system)
    try:
        entry = collect_system(system, exp)
    except ConfigError:  # the system left no outputs (its training failed): n/a in the table
        entry = {"name": system, "params": None, "dev_frame_acc": None, "test_wer_first_pass": None}
    entry.update(study=study, family=family, variant=variant or "vanilla")
    model_yaml = exp / "final" / "model.yaml"
    if model_yaml.exists():
        import yaml

        model = (yaml.safe_load(model_yaml.read_text(encoding="utf-8")) or {}).get("model") or {}
        layers = model.get("num_layers", layers)
    entry["layers"] = layers
    entry.update(training_speed(exp))
    return entry


def fmt(v, spec=""):
    return "n/a" if v is None else format(v, spec)


def markdown_table(title: str, command: str, entries: list[dict], note: str = "") -> str:
    lines = [f"### {title}", "", f"Command: `{command}`", ""]
    lines += ["| system | family | variant | layers | params | dev frame acc | test WER % | train frames/s |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for e in entries:
        lines.append(f"| {e['name']} | {e['family']} | {e['variant']} | {fmt(e.get('layers'))} | "
                     f"{fmt(e.get('params'), ',')} | {fmt(e.get('dev_frame_acc'), '.3f')} | "
                     f"{fmt(e.get('test_wer_first_pass'), '.2f')} | {fmt(e.get('train_frames_per_s'), ',.0f')} |")
    missing = [e["name"] for e in entries if e.get("test_wer_first_pass") is None or e.get("dev_frame_acc") is None]
    if missing:
        lines += ["", f"Incomplete (training or decoding output missing): {', '.join(missing)}."]
    depth = depth_lines(entries)
    if depth:
        lines += [""] + depth
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def depth_lines(entries: list[dict], key: str = "test_wer_first_pass", label: str = "test WER") -> list[str]:
    """For systems run at several depths: how the figure changes from the shallowest to the deepest."""
    by_system: dict[str, list[dict]] = {}
    for e in entries:
        if e.get("layers") is not None and e.get(key) is not None:
            base = e["family"] if e["variant"] == "vanilla" else f"{e['family']}_{e['variant'].lower()}"
            by_system.setdefault(base, []).append(e)
    out = []
    for name, es in by_system.items():
        es = sorted(es, key=lambda e: e["layers"])
        a, b = es[0], es[-1]
        if a["layers"] == b["layers"]:
            continue
        rel = f", {(b[key] - a[key]) / a[key] * 100:+.1f} % relative" if a[key] > 0 else ""
        trend = "worse" if b[key] > a[key] else ("better" if b[key] < a[key] else "equal")
        out.append(f"- {name}: {label} {a[key]:.2f} ({a['layers']} layers) → {b[key]:.2f} "
                   f"({b['layers']} layers){rel} ({trend} when deeper)")
    return out


def replace_or_append(doc: str, title: str, section: str) -> str:
    """Put ``section`` in place of an earlier section with the same ``### title`` (a re-run),
    else append it after a blank line."""
    head = f"### {title}\n"
    start = doc.find(head) if doc.startswith(head) else doc.find("\n" + head) + 1
    if start > 0 or doc.startswith(head):
        end = doc.find("\n### ", start + len(head))
        return doc[:start] + section + ("\n" + doc[end + 1:] if end >= 0 else "")
    sep = "" if not doc or doc.endswith("\n\n") else ("\n" if doc.endswith("\n") else "\n\n")
    return doc + sep + section


def table(args) -> int:
    from asr.report.results import upsert_results_json

    entries = []
    for spec in args.systems:
        name, sep, exp = spec.partition("=")
        if not sep or not name or not exp:
            raise ValueError(f"expected SYSTEM=EXP_DIR, got {spec!r}")
        entries.append(collect(name, Path(exp), args.study))
    md = Path(args.markdown)
    text = markdown_table(args.title, args.command, entries, args.note)
    from asr.io.atomic import atomic_write_text

    atomic_write_text(md, replace_or_append(md.read_text(encoding="utf-8") if md.exists() else "", args.title, text))
    upsert_results_json(args.results, entries)
    print(text, end="")
    incomplete = sum(1 for e in entries if e.get("test_wer_first_pass") is None or e.get("dev_frame_acc") is None)
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
    p.add_argument("--epochs", type=int, default=0, help="training epochs (default: the base config's)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=make_config)
    p = sub.add_parser("table", help="append a results table to RESULTS.md and results.json")
    p.add_argument("--title", required=True)
    p.add_argument("--study", default="families", help="tag stored with each results.json entry")
    p.add_argument("--command", required=True, help="the command that made the table (shown above it)")
    p.add_argument("--note", default="")
    p.add_argument("--results", required=True, help="exp/results.json")
    p.add_argument("--markdown", required=True, help="RESULTS.md")
    p.add_argument("systems", nargs="+", metavar="SYSTEM=EXP_DIR")
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
