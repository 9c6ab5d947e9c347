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
                  data_dirs: list[str] | None = None, notes: list[str] | None = None,
                  test_sets: list[str] | None = None, pairs: list | None = None,
                  breakdowns: list[str] | None = None) -> str:
    """``breakdowns``: markdown blocks of ``asr.report.breakdown.breakdown_tables`` (one per
    test set that has them), shown under "Where the errors are"."""
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
                  "5-gram lattice rescoring. LMWT/WIP (dev): the pair the dev sweep chose (after rescoring "
                  "when there is one; acoustic scale = 1/LMWT), \"at edge\" when it is the smallest or largest "
                  "value swept. RTF: network forward + search, test set."
                  + (" 95% CI: bootstrap interval of the rescored WER (10,000 draws of the test utterances)."
                     if test_sets else ""))
    out += ["## Systems", "", legend, ""] + [f"- {n}" for n in notes or []] + ([""] if notes else []) + \
        [markdown_table(entries, test_sets)]
    if best:
        out += [f"Best system on dev: **{best['name']}** (`exp/final` links to its model dir).", ""]
    if pairs:
        from asr.report.comparison import claims_table, significance_table

        out += ["## Significance", "",
                "Every pair of systems of the same seed on the same test utterances (`asr compute-wer-bootci`): "
                "the bootstrap interval of the WER difference (paired), the probability that B makes fewer "
                "errors, and sclite's matched-pairs (MAPSSWE) p. Significant: p < 0.05 and the interval "
                "excludes 0.", "", significance_table(pairs),
                "## Which claims hold", "",
                "Each pair's ranking on the first seed and test set, checked on every test set and seed "
                "(holds / reversed: significant; n.s.: same or opposite sign, not significant).", "",
                claims_table(pairs)]
    if breakdowns:
        out += ["## Where the errors are", "",
                "Each system's WER (rescored when there are rescored lattices) on the utterances of one "
                "recording condition (as `reco2aug` records it) or one speaker.", ""] + breakdowns
    curves = [(e["name"], Path(e["exp_dir"]) / "training_curves.png") for e in entries]
    curves = [(n, p) for n, p in curves if p.is_file()]
    if curves:
        out += ["## Training curves", ""]
        for name, p in curves:
            rel = os.path.relpath(p, base) if base else str(p)
            out += [f"![{name}]({rel})", ""]
    return "\n".join(out)
