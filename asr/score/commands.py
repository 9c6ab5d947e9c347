"""Scoring commands: ``asr compute-wer``, ``asr score-lattices``, ``asr lmrescore``.

(``lmrescore`` lives here rather than in asr.decode.commands so that the rescoring and
the LM-weight sweep that follows it are registered together; its library code is
asr.decode.lmrescore.)
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compute-wer",
        help="word error rate of a hypothesis text against a reference text (Kaldi compute-wer)",
        description=(
            "Compare two Kaldi text files (`utt-id word word ...`) and print Kaldi compute-wer's "
            "lines: `%WER 12.34 [ 5 / 40, 1 ins, 2 del, 2 sub ]`, `%SER ...`, `Scored N "
            "sentences, M not present in hyp.`. Default alignment: minimum edit distance with "
            "Kaldi's tie-breaking. --sclite: NIST sclite's weighted alignment (sub 4, ins 3, "
            "del 3, case-insensitive), whose per-utterance counts equal sclite's. Exit code 1 "
            "on a missing file, a duplicate utterance id, a hypothesis utterance absent from "
            "the reference, or (--mode strict) a reference utterance absent from the hypothesis."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("ref", metavar="REF", help="reference text (Kaldi text file)")
    p.add_argument("hyp", metavar="HYP", help="hypothesis text (Kaldi text file); '-' = stdin; "
                   "Kaldi-style `ark:FILE` / `ark,t:-` also work")
    p.add_argument(
        "--mode", choices=("strict", "present", "all"), default="strict",
        help="reference utterances missing from HYP: strict = error; present = skip them; "
             "all = score them as empty (the %%WER line then ends with [PARTIAL])",
    )
    p.add_argument("--text", action="store_true", help=argparse.SUPPRESS)  # Kaldi's deprecated no-op
    p.add_argument("--sclite", action="store_true", help="align as NIST sclite (sub 4, ins 3, del 3)")
    p.add_argument(
        "--details", action="store_true",
        help="print per-utterance alignments after the summary (Kaldi per_utt format: "
             "`utt ref ...`, `utt hyp ...`, `utt op ...`, `utt #csid C S I D`)",
    )
    p.add_argument("--details-out", metavar="FILE", default=None,
                   help="write the per-utterance alignments to FILE instead of stdout")
    p.add_argument(
        "--utt2spk", metavar="FILE", default=None,
        help="also print a per-speaker table (Kaldi per_spk format) using this utt2spk",
    )
    p.add_argument("--per-spk-out", metavar="FILE", default=None,
                   help="write the per-speaker table to FILE instead of stdout (needs --utt2spk)")
    p.set_defaults(func=run_compute_wer)

    register_lattice_commands(subparsers)


def run_compute_wer(args: argparse.Namespace) -> int:
    from asr.errors import FormatError
    from asr.io.atomic import atomic_write_text
    from asr.io.tables import read_table
    from asr.score.wer import format_details, format_per_speaker, format_summary, read_text, score_texts

    if args.per_spk_out and not args.utt2spk:
        raise FormatError("--per-spk-out needs --utt2spk")
    ref = read_text(args.ref)
    hyp = read_text(args.hyp)
    want_details = args.details or args.details_out is not None or args.utt2spk is not None
    res = score_texts(ref, hyp, mode=args.mode, sclite=args.sclite, details=want_details,
                      ref_name=args.ref, hyp_name=args.hyp)
    out = [format_summary(res)]
    if args.details_out is not None:
        atomic_write_text(args.details_out, format_details(res))
    elif args.details:
        out.append(format_details(res))
    if args.utt2spk:
        from pathlib import Path

        if not Path(args.utt2spk).is_file():
            raise FormatError(f"{args.utt2spk}: no such file")
        table = format_per_speaker(res, read_table(args.utt2spk, allow_empty_value=False))
        if args.per_spk_out:
            atomic_write_text(args.per_spk_out, table)
        else:
            out.append(table)
    sys.stdout.write("".join(out))
    return 0


def register_lattice_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score-lattices",
        help="best paths of a decode dir's lattices over LM weights / insertion penalties, with WER (Kaldi score.sh)",
        description=(
            "Kaldi score.sh style scoring of DECODE_DIR/lat.*.gz against DATA_DIR/text. Sweep "
            "(default): for every LMWT and WIP the best path (min graph + WIP*words + "
            "acoustic/LMWT) -> DECODE_DIR/scoring/hyp_LMWT_WIP.txt and DECODE_DIR/wer_LMWT_WIP; "
            "the best pair -> DECODE_DIR/scoring/{best_wer,lmwt,wip,best_hyp.txt}; prints the "
            "best %WER line. Fixed pair (--lmwt N --wip P with single values, or --best-from "
            "DEV_DECODE_DIR): DECODE_DIR/hyp.txt and, when DATA_DIR/text exists, DECODE_DIR/wer. "
            "The chosen pair's per-utterance alignments and per-speaker table: "
            "DECODE_DIR/scoring/wer_details/{per_utt,per_spk}."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
            "lattice-lmrescore-const-arpa). Then run `asr score-lattices` on OUT_DECODE_DIR."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("in_dir", metavar="IN_DECODE_DIR")
    p.add_argument("out_dir", metavar="OUT_DECODE_DIR")
    p.add_argument("--old-lm", required=True, metavar="PRUNED.arpa", help="the first-pass LM (ARPA, .gz ok)")
    p.add_argument("--new-lm", required=True, metavar="FULL.arpa", help="the rescoring LM (ARPA, .gz ok)")
    p.add_argument("--lm-scale", type=float, default=1.0, help="scale of the new LM's cost")
    p.add_argument("--words", metavar="WORDS_TXT", default=None,
                   help="word symbol table of the lattices (default: looked up as for score-lattices)")
    p.add_argument("--nj", type=int, default=1, help="lattice files rescored in parallel (processes)")
    p.set_defaults(func=run_lmrescore)


def run_score_lattices(args: argparse.Namespace) -> int:
    from asr.decode.lmrescore import read_words
    from asr.score import lattice_scoring as ls
    from asr.score.wer import format_summary

    words = read_words(ls.find_words_table(args.decode_dir, args.words))
    if args.best_from is not None:
        lmwt, wip = ls.read_chosen(args.best_from)
        lmwts, wips = [lmwt], [wip]
    else:
        lmwts, wips = ls.parse_lmwts(args.lmwt), ls.parse_wips(args.wip)
    if len(lmwts) == 1 and len(wips) == 1:
        res = ls.apply_fixed(args.data_dir, args.decode_dir, lmwts[0], wips[0], words, args.mode)
        if res is not None:
            sys.stdout.write(format_summary(res))
        return 0
    best = ls.sweep(args.data_dir, args.decode_dir, lmwts, wips, words, args.mode)
    print(f"{format_summary(best.wer).splitlines()[0]} LMWT={ls.format_lmwt(best.lmwt)} WIP={best.wip}")
    return 0


def run_lmrescore(args: argparse.Namespace) -> int:
    from asr.decode.lmrescore import rescore_decode_dir

    rescore_decode_dir(args.in_dir, args.out_dir, args.old_lm, args.new_lm, lm_scale=args.lm_scale,
                       words_path=args.words, nj=args.nj)
    return 0
