"""``asr results``: the results table of a recipe's systems (RESULTS.md, results.json)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results",
        help="collect systems' figures from exp dirs into RESULTS.md and results.json",
        description=(
            "For each NAME=EXP_DIR read EXP_DIR/log.csv (dev frame accuracy, train time), "
            "EXP_DIR/final/model.yaml (parameters), EXP_DIR/decode_{dev,test}[_rescore] (WER: dev "
            "from the LMWT/WIP sweep, test at the dev-chosen pair) and decode_test/decode.json "
            "(RTF). Writes a markdown report, merges one entry per system into a results.json "
            "list, optionally links the best system's model dir (lowest dev WER), and prints the table. "
            "A test WER scored at another LMWT/WIP than its dev dir's sweep chose is an error "
            "(asr score-lattices --best-from records the pair)."
        ),
        epilog="e.g.: asr results --markdown RESULTS.md --json exp/results.json lstmp=exp/lstmp dnn=exp/dnn",
    )
    p.add_argument("systems", nargs="+", metavar="NAME=EXP_DIR",
                   help="a system's name in the report and its exp dir (decode_dev*, decode_test*, final/), "
                   "e.g. lstmp=exp/lstmp")
    p.add_argument("--markdown", metavar="RESULTS.md", help="write the report here")
    p.add_argument("--json", metavar="results.json", help="merge the entries into this JSON list")
    p.add_argument("--corpus-json", metavar="FILE", help="corpus facts (asr synth-corpus's corpus.json)")
    p.add_argument("--lm-ppl", metavar="FILE", help="output of `asr lm-ppl` on the test text")
    p.add_argument("--link-best", metavar="PATH", help="make PATH a symlink to the best system's model dir")
    p.add_argument("--test-set", action="append", default=[], metavar="NAME=DATA_DIR",
                   help="a test set to report (repeatable): WER from EXP_DIR/decode_NAME[_rescore]/wer with the "
                        "95%% bootstrap interval against DATA_DIR/text, and every pair of systems of the same seed "
                        "(systems NAME_sN are seed N) compared on it: interval of the difference, MAPSSWE p, and "
                        "a table of which claims hold on which set and seed; a set made by asr augment-data-dir "
                        "(DATA_DIR/reco2aug) also gets every system's WER per recording condition (room, noise, "
                        "SNR, channel, speed) and per speaker")
    p.add_argument("--title", default="Results", help="report title")
    p.add_argument("--eval-pairs", nargs="+", metavar="TUNE[=TEST]", default=None,
                   help="several evaluation sets (e.g. dev_clean=test_clean dev_other=test_other; a TUNE alone has "
                   "no test set): WER per set from EXP_DIR/decode_<set>[_rescore], test sets scored at their tune "
                   "set's LM weight")
    p.add_argument("--data-dirs", nargs="+", metavar="DIR", default=None,
                   help="data dirs made by prep-librispeech whose sizes the report lists")
    p.add_argument("--note", action="append", default=[], help="a line for the report (repeatable)")
    p.add_argument("--command", default="", help="the command that produced the results (shown in the report)")
    p.set_defaults(func=run_results)


def run_results(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from asr.errors import ConfigError
    from asr.io.atomic import atomic_write_text
    from asr.report.report import render_report
    from asr.report.results import best_system, collect_system, markdown_table, upsert_results_json

    test_sets = {}
    for spec in args.test_set:
        name, sep, data = spec.partition("=")
        if not sep or not name or not data:
            raise ConfigError(f"--test-set: expected NAME=DATA_DIR, got {spec!r}")
        test_sets[name] = data
    eval_pairs = None
    if args.eval_pairs:
        eval_pairs = []
        for spec in args.eval_pairs:
            tune, sep, test = spec.partition("=")
            if not tune or (sep and not test):
                raise ConfigError(f"--eval-pairs: expected TUNE or TUNE=TEST, got {spec!r}")
            eval_pairs.append((tune, test or None))
    entries = []
    for spec in args.systems:
        name, sep, exp = spec.partition("=")
        if not sep or not name or not exp:
            raise ConfigError(f"expected NAME=EXP_DIR, got {spec!r}")
        entries.append(collect_system(name, exp, eval_pairs, test_sets))
    best = best_system(entries)
    pairs = None
    if test_sets:
        from asr.report.comparison import pairwise

        pairs = pairwise(entries, test_sets)
    breakdowns = []
    for ts, data_dir in test_sets.items() if args.markdown else ():
        if (Path(data_dir) / "reco2aug").is_file() and (Path(data_dir) / "text").is_file():
            from asr.report.breakdown import breakdown_tables
            from asr.report.results import best_hyp

            hyps = [(e["name"], best_hyp(e["exp_dir"], ts)) for e in entries]
            block = breakdown_tables(ts, data_dir, [(n, h) for n, h in hyps if h is not None])
            if block:
                breakdowns.append(block)
    print(markdown_table(entries, list(test_sets) or None), end="")
    if best:
        print(f"best system (lowest dev WER): {best['name']}")
    if args.markdown:
        atomic_write_text(args.markdown, render_report(args.title, entries, best, args.corpus_json, args.lm_ppl,
                                                       args.command, Path(args.markdown).parent, args.data_dirs,
                                                       args.note, list(test_sets) or None, pairs, breakdowns))
    if args.json:
        upsert_results_json(args.json, entries)
    if args.link_best and best:
        link = Path(args.link_best)
        target = os.path.relpath(Path(best["exp_dir"]) / "final", link.parent)
        tmp = link.with_name(f".{link.name}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)
    return 0
