"""The markdown report of a recipe run: corpus facts, the systems table, training curves."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from asr.report.results import markdown_table


def corpus_facts(corpus_json: str | os.PathLike | None, lm_ppl: str | os.PathLike | None,
                 data_dirs: list[str] | None = None) -> list[str]:
    """Bullet lines: hours per split, vocabulary, test perplexity (whatever is known).
    ``data_dirs``: data dirs made by ``asr prep-librispeech`` (their prep.json)."""
    lines = []
    for d in data_dirs or []:
        p = Path(d) / "prep.json"
        if p.is_file():
            info = json.loads(p.read_text(encoding="utf-8"))
            lines.append(f"- {Path(d).name}: {info['hours']:.2f} h, {info['utterances']} utterances, "
                         f"{info['speakers']} speakers ({info['readers']} readers)"
                         + (f", {sum(info['skipped'].values())} skipped" if info.get("skipped") else ""))
    if corpus_json and Path(corpus_json).is_file():
        info = json.loads(Path(corpus_json).read_text(encoding="utf-8"))
        for split, s in info.get("splits", {}).items():
            spk = s.get("speakers")
            nspk = len(spk) if isinstance(spk, list) else spk
            lines.append(f"- {split}: {s.get('hours', 0):.2f} h, {s.get('utterances')} utterances"
                         + (f", {nspk} speakers" if nspk else ""))
        if "vocabulary_size" in info:
            lines.append(f"- vocabulary: {info['vocabulary_size']} words")
        if "lm_sentences" in info:
            lines.append(f"- LM training text: {info['lm_sentences']} sentences")
    if lm_ppl and Path(lm_ppl).is_file():
        m = re.search(r"ppl=\s*([0-9.]+)", Path(lm_ppl).read_text(encoding="utf-8"))
        if m:
            lines.append(f"- test-set perplexity under the full 5-gram: {float(m.group(1)):.2f}")
    return lines


def render_report(title: str, entries: list[dict[str, Any]], best: dict[str, Any] | None,
                  corpus_json=None, lm_ppl=None, command: str = "", base: Path | None = None,
                  data_dirs: list[str] | None = None, notes: list[str] | None = None) -> str:
    out = [f"# {title}", ""]
    if command:
        out += ["Made by:", "", "```", command, "```", ""]
    facts = corpus_facts(corpus_json, lm_ppl, data_dirs)
    if facts:
        out += ["## Corpus", ""] + facts + [""]
    if any("sets" in e for e in entries):
        legend = ("WER in %. Dev sets: best LM weight / insertion penalty of their own sweep; test sets: the pair "
                  "chosen on the matching dev set. First pass: HCLG with the pruned LM; rescored: lattice "
                  "rescoring with the big LM. RTF: network forward + search, mean over the sets.")
    else:
        legend = ("WER in %. Dev WER: best LM weight / insertion penalty of the sweep on dev; test WER: "
                  "the dev-chosen pair applied to test. First pass: pruned 5-gram HCLG; rescored: full "
                  "5-gram lattice rescoring. RTF: network forward + search, test set.")
    out += ["## Systems", "", legend, ""] + [f"- {n}" for n in notes or []] + ([""] if notes else []) + \
        [markdown_table(entries)]
    if best:
        out += [f"Best system on dev: **{best['name']}** (`exp/final` links to its model dir).", ""]
    curves = [(e["name"], Path(e["exp_dir"]) / "training_curves.png") for e in entries]
    curves = [(n, p) for n, p in curves if p.is_file()]
    if curves:
        out += ["## Training curves", ""]
        for name, p in curves:
            rel = os.path.relpath(p, base) if base else str(p)
            out += [f"![{name}]({rel})", ""]
    return "\n".join(out)
