"""Lattice commands: ``asr score-lattices`` and ``asr lmrescore`` (registered together: the
rescoring and the LM-weight sweep that follows it; library code in this package)."""

from __future__ import annotations

import argparse

from asr.cli import DefaultsHelpFormatter, positive_float, positive_int
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score-lattices",
        help="best paths of a decode dir's lattices over LM weights / insertion penalties, with WER (Kaldi score.sh)",
        description=(
            "Kaldi score.sh style scoring of DECODE_DIR/lat.*.gz against DATA_DIR/text. Sweep "
            "(default): for every LMWT and WIP the best path (min graph + WIP*words + "
            "acoustic/LMWT) -> DECODE_DIR/scoring/hyp_LMWT_WIP.txt and DECODE_DIR/wer_LMWT_WIP; "
            "the best pair -> DECODE_DIR/scoring/{best_wer,lmwt,wip,best_hyp.txt}; prints the "
            "best %WER line. Fixed pair (--lmwt N --wip P with single values, or --best-from "
            "DEV_DECODE_DIR): DECODE_DIR/hyp.txt and, when DATA_DIR/text exists, DECODE_DIR/wer, with the pair "
            "in DECODE_DIR/scoring/fixed.json (asr results checks it against dev's choice). Nothing is written "
            "when scoring fails. "
            "The chosen pair's per-utterance alignments and per-speaker table: "
            "DECODE_DIR/scoring/wer_details/{per_utt,per_spk}."
        ),
        epilog="e.g.: asr score-lattices data/dev exp/lstmp/decode_dev; then "
        "asr score-lattices --best-from exp/lstmp/decode_dev data/test exp/lstmp/decode_test",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with the reference `text`")
    p.add_argument("decode_dir", metavar="DECODE_DIR", help="decode dir with lat.<job>.gz")
    p.add_argument("--lmwt", default="7:17", help="LM weights: range LO:HI (integers), or a comma list")
    p.add_argument("--wip", default="0.0,0.5,1.0", help="word insertion penalties, comma list")
    p.add_argument("--mode", choices=("all", "present"), default="all",
                   help="reference utterances without a hypothesis: all = scored as empty; "
                        "present = skipped (Kaldi score.sh)")
    p.add_argument("--best-from", metavar="DEV_DECODE_DIR", default=None,
                   help="apply the (LMWT, WIP) a sweep chose on this dev decode dir (fixed-pair mode)")
    p.add_argument("--words", metavar="WORDS_TXT", default=None,
                   help="word symbol table (default: DECODE_DIR/words.txt, the graph dir in "
                        "decode.json, or DECODE_DIR/../graph/words.txt)")
    p.set_defaults(func=run_score_lattices)

    p = subparsers.add_parser(
        "lmrescore",
        help="rescore lattices: remove the first-pass LM score, add a bigger LM's (Kaldi lmrescore-const-arpa)",
        description=(
            "Reads IN_DECODE_DIR/lat.*.gz, writes OUT_DECODE_DIR/lat.*.gz (same job numbers). On "
            "every lattice path the old (first-pass) LM's cost is subtracted and LM_SCALE times "
            "the new LM's cost added, both with exact back-off; lattice states are split by "
            "n-gram history as needed (Kaldi's lattice-lmrescore --lm-scale=-1 followed by "
            "lattice-lmrescore-const-arpa). The word table must be the one the lattices were made with "
            "(checked against IN_DECODE_DIR/decode.json). OUT_DECODE_DIR is written at once; when it was made "
            "from the same lattices, LMs and scale it is left as it is (--force redoes it). Then run "
            "`asr score-lattices` on OUT_DECODE_DIR. E.g.: asr lmrescore --old-lm exp/lm/lm5_pruned.arpa "
            "--new-lm exp/lm/lm5.arpa exp/lstmp/decode_test exp/lstmp/decode_test_rescore"
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("in_dir", metavar="IN_DECODE_DIR", help='the decode dir whose lattices are rescored')
    p.add_argument("out_dir", metavar="OUT_DECODE_DIR", help='the decode dir to write')
    p.add_argument("--old-lm", required=True, metavar="PRUNED.arpa", help="the first-pass LM (ARPA, .gz ok)")
    p.add_argument("--new-lm", required=True, metavar="FULL.arpa", help="the rescoring LM (ARPA, .gz ok)")
    p.add_argument("--lm-scale", type=positive_float, default=1.0, help="scale of the new LM's cost")
    p.add_argument("--words", metavar="WORDS_TXT", default=None,
                   help="word symbol table of the lattices (default: looked up as for score-lattices)")
    p.add_argument("--nj", type=positive_int, default=1, help="lattice files rescored in parallel (processes)")
    p.add_argument("--force", action="store_true", help="rescore even when OUT_DECODE_DIR is up to date")
    p.set_defaults(func=run_lmrescore)


def run_score_lattices(args: argparse.Namespace) -> int:
    from asr.lattice.lmrescore import read_words
    from asr.lattice import lattice_scoring as ls
    from asr.score.wer import format_summary

    from asr.lattice.decode_dir import DecodeDir

    if args.best_from is not None:
        lmwt, wip = ls.read_chosen(args.best_from)
        lmwts, wips = [lmwt], [wip]
    else:
        lmwts, wips = ls.parse_lmwts(args.lmwt), ls.parse_wips(args.wip)
    words_path = ls.find_words_table(args.decode_dir, args.words)
    DecodeDir.load_lattices(args.decode_dir).check_words(words_path)
    words = read_words(words_path)
    if len(lmwts) == 1 and len(wips) == 1:
        res = ls.apply_fixed(args.data_dir, args.decode_dir, lmwts[0], wips[0], words, args.mode, args.best_from)
        if res is not None:
            sys.stdout.write(format_summary(res))
        return 0
    best = ls.sweep(args.data_dir, args.decode_dir, lmwts, wips, words, args.mode)
    print(f"{format_summary(best.wer).splitlines()[0]} LMWT={ls.format_lmwt(best.lmwt)} WIP={best.wip}")
    return 0


def run_lmrescore(args: argparse.Namespace) -> int:
    from asr.lattice.lmrescore import rescore_decode_dir

    rescore_decode_dir(args.in_dir, args.out_dir, args.old_lm, args.new_lm, lm_scale=args.lm_scale,
                       words_path=args.words, nj=args.nj, force=args.force)
    return 0
