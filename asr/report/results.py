"""Collect a system's figures from its experiment dir and write the results table.

An experiment dir is what ``asr train`` + ``asr decode`` + ``asr lmrescore`` +
``asr score-lattices`` leave behind (the recipe layout)::

    EXP/log.csv                   training log (dev_acc per epoch, seconds)
    EXP/final/                    model dir (model.yaml: network config)
    EXP/decode_dev/scoring/       LMWT/WIP sweep on dev, first pass (best_wer, lmwt, wip)
    EXP/decode_dev_rescore/scoring/  the same after full-LM rescoring
    EXP/decode_test/wer           test WER at the dev-chosen LMWT/WIP, first pass (its
                                  scoring/fixed.json must record that pair: checked)
    EXP/decode_test_rescore/wer   the same after rescoring
    EXP/decode_test/decode.json   decoding timings (rtf)

Missing pieces become ``None`` (shown as ``n/a``) so a partly run recipe still reports.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from asr.errors import ConfigError, FormatError
from asr.io.atomic import atomic_write_text

log = logging.getLogger(__name__)

_WER_RE = re.compile(r"%WER\s+([0-9.]+)")

# (results.json key, decode dir, file with the %WER line)
WER_SOURCES = (
    ("dev_wer", "decode_dev", "scoring/best_wer"),
    ("dev_wer_rescored", "decode_dev_rescore", "scoring/best_wer"),
    ("test_wer_first_pass", "decode_test", "wer"),
    ("test_wer_rescored", "decode_test_rescore", "wer"),
)


def read_wer(path: str | os.PathLike) -> float | None:
    """The number of the first ``%WER`` line of a file, or None when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    m = _WER_RE.search(path.read_text(encoding="utf-8"))
    if not m:
        raise FormatError(f"{path}: no %WER line")
    return float(m.group(1))


def read_train_log(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a trainer ``log.csv`` (empty list when absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _floats(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) not in (None, "", "nan")]


def count_model_params(model_dir: str | os.PathLike) -> int | None:
    """Trainable parameters of the network described by ``model_dir/model.yaml``."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.yaml").is_file():
        return None
    from asr.nnet.model_dir import read_model_config
    from asr.nnet.registry import build_model, count_parameters

    cfg = read_model_config(model_dir)
    model = build_model(cfg["model"], int(cfg["num_inputs"]), int(cfg["num_pdfs"]))
    return int(count_parameters(model)["total"])


def collect_system(name: str, exp_dir: str | os.PathLike,
                   pairs: list[tuple[str, str | None]] | None = None,
                   test_sets: dict[str, str | os.PathLike] | None = None) -> dict[str, Any]:
    """One results.json entry for the system trained and decoded in ``exp_dir``.

    ``pairs``: (tune set, test set) names for corpora with several evaluation sets
    (LibriSpeech: dev_clean/test_clean, dev_other/test_other): WERs then come from
    ``decode_<set>[_rescore]`` (tune sets: their own sweep's best; test sets: the tune
    set's LM weight / penalty) into ``entry["sets"]``, and ``dev_wer``/``dev_wer_rescored``
    are the first tune set's (for choosing the best system).

    ``test_sets`` (one dev set, several test sets: the synth recipe): test set name -> data
    dir; for each, ``<name>_wer_first_pass`` and ``<name>_wer_rescored`` (from
    ``decode_<name>[_rescore]/wer``) and ``<name>_wer_ci``, the 95 % bootstrap interval of
    the rescored WER (``asr.score.significance``) from ``decode_<name>_rescore/hyp.txt`` and
    the data dir's ``text``."""
    exp = Path(exp_dir)
    if not exp.is_dir():
        raise ConfigError(f"{exp}: no such experiment dir (system {name})")
    if not any((exp / p).exists() for p in ("log.csv", "final/model.yaml", *(sub for _, sub, _ in WER_SOURCES))):
        raise ConfigError(f"{exp}: not an experiment dir (no log.csv, final/model.yaml nor decode dirs; system {name})")
    rows = read_train_log(exp / "log.csv")
    dev_acc = _floats(rows, "dev_acc")
    seconds = _floats(rows, "seconds")
    entry: dict[str, Any] = {
        "name": name,
        "exp_dir": str(exp),
        "params": count_model_params(exp / "final"),
        "dev_frame_acc": max(dev_acc) if dev_acc else None,
        "train_seconds": round(sum(seconds), 1) if seconds else None,
        "epochs": len(rows) or None,
    }
    if pairs:
        return _collect_sets(entry, exp, pairs)
    for key, sub, file in WER_SOURCES:
        entry[key] = read_wer(exp / sub / file)
    for test in ["test", *(test_sets or {})]:
        for p in ("", "_rescore"):
            check_test_pair(exp / f"decode_{test}{p}", exp / f"decode_dev{p}")
    for sub in ("decode_dev", "decode_dev_rescore"):
        lmwt = exp / sub / "scoring" / "lmwt"
        wip = exp / sub / "scoring" / "wip"
        if lmwt.is_file() and wip.is_file():
            entry[f"{sub[7:]}_lmwt_wip"] = f"{lmwt.read_text().strip()}/{wip.read_text().strip()}"
            entry[f"{sub[7:]}_at_edge"] = sweep_edges(exp / sub)
    # the pair used for the test WERs (rescored when there is one), with the sweep edges it sits on
    for key in ("dev_rescore", "dev"):
        if entry.get(f"{key}_lmwt_wip"):
            edge = entry.get(f"{key}_at_edge")
            entry["chosen_lmwt_wip"] = entry[f"{key}_lmwt_wip"] + (f" ({'+'.join(edge)} at edge)" if edge else "")
            break
    info = exp / "decode_test" / "decode.json"
    entry["decode_rtf"] = json.loads(info.read_text()).get("rtf") if info.is_file() else None
    for ts, data_dir in (test_sets or {}).items():
        entry[f"{ts}_wer_first_pass"] = read_wer(exp / f"decode_{ts}" / "wer")
        entry[f"{ts}_wer_rescored"] = read_wer(exp / f"decode_{ts}_rescore" / "wer")
        hyp = best_hyp(exp, ts)
        entry[f"{ts}_wer_ci"] = None
        if hyp is not None and (Path(data_dir) / "text").is_file():
            from asr.score.significance import compare
            from asr.score.wer import read_text

            c = compare(read_text(Path(data_dir) / "text"), read_text(hyp))
            entry[f"{ts}_wer_ci"] = [round(c.sys1.ci[0], 2), round(c.sys1.ci[1], 2)]
    return entry


def check_test_pair(test_dir: Path, dev_dir: Path) -> None:
    """Refuse (ConfigError naming TEST_DIR) a test WER scored at another (LMWT, WIP) than the
    one DEV_DIR's sweep chose (``asr score-lattices --best-from`` records the pair it used);
    warn when TEST_DIR's wer records no pair (e.g. ``asr decode``'s own, at its acoustic scale)."""
    from asr.lattice.lattice_scoring import format_lmwt, read_chosen, read_fixed

    if not (test_dir / "wer").is_file() or not (dev_dir / "scoring" / "lmwt").is_file():
        return
    lmwt, wip = read_chosen(dev_dir)
    used = read_fixed(test_dir)
    if used is None:
        log.warning("%s/wer records no LMWT/WIP (not scored by asr score-lattices --best-from %s): it is not "
                    "the WER at dev's choice", test_dir, dev_dir)
    elif (used[0], float(used[1])) != (lmwt, float(wip)):
        raise ConfigError(f"{test_dir}/wer was scored at LMWT {format_lmwt(used[0])} WIP {used[1]}, not at the pair "
                          f"{dev_dir} chose (LMWT {format_lmwt(lmwt)} WIP {wip}): rerun asr score-lattices "
                          f"--best-from {dev_dir} on {test_dir}")


def best_hyp(exp_dir: str | os.PathLike, test_set: str) -> Path | None:
    """The hypotheses a system's test WER is reported on: after rescoring when there are
    rescored lattices, else the first pass (``decode_<set>[_rescore]/hyp.txt``)."""
    for sub in (f"decode_{test_set}_rescore", f"decode_{test_set}"):
        p = Path(exp_dir) / sub / "hyp.txt"
        if p.is_file() and (Path(exp_dir) / sub / "wer").is_file():
            return p
    return None


def sweep_edges(decode_dir: Path) -> list[str] | None:
    """Which of LMWT / WIP the dev sweep chose at an edge of its grid (``scoring/sweep.json``
    of ``asr score-lattices``); None when the sweep did not record it."""
    p = decode_dir / "scoring" / "sweep.json"
    if not p.is_file():
        return None
    info = json.loads(p.read_text(encoding="utf-8"))
    return [name for name in ("LMWT", "WIP") if info.get(f"{name.lower()}_at_edge")]


def _collect_sets(entry: dict[str, Any], exp: Path, pairs: list[tuple[str, str | None]]) -> dict[str, Any]:
    sets: dict[str, dict[str, Any]] = {}
    for tune, test in pairs:
        for p in ("", "_rescore"):
            if test is not None:
                check_test_pair(exp / f"decode_{test}{p}", exp / f"decode_{tune}{p}")
        for name, file in ((tune, "scoring/best_wer"), (test, "wer")):
            if name is None:
                continue
            d = sets.setdefault(name, {})
            d["first_pass"] = read_wer(exp / f"decode_{name}" / file)
            d["rescored"] = read_wer(exp / f"decode_{name}_rescore" / file)
            lmwt, wip = exp / f"decode_{tune}_rescore" / "scoring" / "lmwt", exp / f"decode_{tune}_rescore" / "scoring" / "wip"
            if lmwt.is_file() and wip.is_file():
                d["lmwt_wip_rescored"] = f"{lmwt.read_text().strip()}/{wip.read_text().strip()}"
    entry["sets"] = sets
    first = sets[pairs[0][0]]
    entry["dev_wer"], entry["dev_wer_rescored"] = first["first_pass"], first["rescored"]
    rtf = [json.loads(p.read_text()).get("rtf") for p in sorted(exp.glob("decode_*/decode.json"))
           if not p.parent.name.endswith("_rescore")]
    rtf = [x for x in rtf if x is not None]
    entry["decode_rtf"] = round(sum(rtf) / len(rtf), 4) if rtf else None
    return entry


def best_system(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The system with the lowest dev WER (rescored if available, else first pass)."""
    def key(e):
        w = e.get("dev_wer_rescored")
        w = e.get("dev_wer") if w is None else w
        return float("inf") if w is None else w

    scored = [e for e in entries if key(e) != float("inf")]
    return min(scored, key=key) if scored else None


def _fmt(x: Any, spec: str = "") -> str:
    if x is None:
        return "n/a"
    return format(x, spec) if spec else str(x)


COLUMNS = (
    ("system", "name", ""),
    ("params", "params", ","),
    ("dev frame acc", "dev_frame_acc", ".3f"),
    ("dev WER 1st pass", "dev_wer", ".2f"),
    ("dev WER rescored", "dev_wer_rescored", ".2f"),
    ("test WER 1st pass", "test_wer_first_pass", ".2f"),
    ("test WER rescored", "test_wer_rescored", ".2f"),
    ("LMWT/WIP (dev)", "chosen_lmwt_wip", ""),
    ("train time (s)", "train_seconds", ".0f"),
    ("decode RTF", "decode_rtf", ".3f"),
)


def columns(test_sets: list[str] | None = None) -> list[tuple[str, str, str]]:
    """The table's columns: ``COLUMNS``, with first-pass and rescored WER (and its 95 %
    interval) for each test set when ``test_sets`` are given."""
    if not test_sets:
        return list(COLUMNS)
    out = [c for c in COLUMNS if not c[1].startswith("test_")]
    at = [c[1] for c in out].index("chosen_lmwt_wip")
    for ts in test_sets:
        out[at:at] = [(f"{ts} WER 1st pass", f"{ts}_wer_first_pass", ".2f"),
                      (f"{ts} WER rescored [95% CI]", f"{ts}_wer_rescored", "ci")]
        at += 2
    return out


def markdown_table(entries: list[dict[str, Any]], test_sets: list[str] | None = None) -> str:
    if any("sets" in e for e in entries):
        return _sets_table(entries)
    cols = columns(test_sets)
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "---|" * len(cols)]
    for e in entries:
        cells = []
        for _, k, spec in cols:
            if spec == "ci":
                ci = e.get(k.replace("_rescored", "_ci"))
                cells.append(_fmt(e.get(k), ".2f") + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
            else:
                cells.append(_fmt(e.get(k), spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _sets_table(entries: list[dict[str, Any]]) -> str:
    """One row per system and pass; one WER column per evaluation set."""
    names = list(dict.fromkeys(n for e in entries for n in e.get("sets", {})))
    head = ["system", "params", "dev frame acc", "pass"] + names + ["train time (s)", "decode RTF"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        for key, label in (("first_pass", "first pass"), ("rescored", "rescored")):
            row = [e["name"], _fmt(e.get("params"), ","), _fmt(e.get("dev_frame_acc"), ".3f"), label]
            row += [_fmt(e.get("sets", {}).get(n, {}).get(key), ".2f") for n in names]
            row += [_fmt(e.get("train_seconds"), ".0f"), _fmt(e.get("decode_rtf"), ".3f")]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def upsert_results_json(path: str | os.PathLike, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge ``entries`` into ``path`` (a JSON list of systems), replacing entries of the
    same name and keeping the others (e.g. the comparison stage's)."""
    path = Path(path)
    systems: list[dict[str, Any]] = []
    if path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        systems = json.loads(text) if text else []
        if not isinstance(systems, list):
            raise FormatError(f"{path}: expected a JSON list of systems")
    names = {e["name"] for e in entries}
    systems = [s for s in systems if s.get("name") not in names] + entries
    atomic_write_text(path, json.dumps(systems, indent=1) + "\n")
    return systems
