"""Scoring command: ``asr compute-wer``."""

from __future__ import annotations

import argparse

from asr.cli import DefaultsHelpFormatter
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
            "the reference, a reference without words, or (--mode strict) a reference utterance absent "
            "from the hypothesis."
        ),
        epilog="e.g.: asr compute-wer data/test/text exp/lstmp/decode_test/hyp.txt",
        formatter_class=DefaultsHelpFormatter,
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

    p = subparsers.add_parser(
        "compute-wer-bootci",
        help="95%% confidence intervals of WER and the significance of two systems' difference "
             "(bootstrap, sclite's MAPSSWE)",
        description=(
            "Kaldi compute-wer-bootci: bootstrap (Bisani & Ney) 95% intervals of the WER of HYP against REF "
            "(Kaldi text files), and with HYP2 the paired comparison: the interval of WER(HYP) - WER(HYP2), "
            "the probability that HYP2 improves HYP (share of draws where it makes fewer errors), and NIST "
            "sclite's matched-pairs sentence-segment word error test (MAPSSWE, as sc_stats -t mapsswe: Z and "
            "two-sided p). The interval is the 2.5-97.5 percentile of the draws around the observed WER "
            "(Kaldi prints the draws' mean +- 1.96 std). Prints `Set1: %WER 1.34 95% Conf Interval [ 1.02, "
            "1.68 ] (66 / 4925)`, the same for Set2, `Difference Set1 - Set2: ...`, `Probability of Set2 "
            "improving Set1: 99.87` and a `MAPSSWE: ...` line."
        ),
        epilog="e.g.: asr compute-wer-bootci data/test/text exp/lstmp/decode_test/hyp.txt exp/dnn/decode_test/hyp.txt",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("ref", metavar="REF", help="reference text")
    p.add_argument("hyp", metavar="HYP", help="hypothesis text of system 1")
    p.add_argument("hyp2", metavar="HYP2", nargs="?", default=None, help="hypothesis text of system 2")
    p.add_argument("--mode", choices=("strict", "present", "all"), default="strict",
                   help="reference utterances missing from a HYP (as compute-wer): strict = error; "
                        "present = left out (from both systems); all = scored as empty")
    p.add_argument("--replications", type=int, default=10000, help="bootstrap draws")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws")
    p.add_argument("--names", default="Set1,Set2", help="names of the two systems in the output")
    p.set_defaults(func=run_compute_wer_bootci)



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
    if res.num_words == 0:  # Kaldi prints %WER -nan (or inf) and succeeds: no rate to report
        raise FormatError(f"{args.ref}: the reference has no words to score")
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


def run_compute_wer_bootci(args: argparse.Namespace) -> int:
    from asr.score.significance import compare
    from asr.score.wer import read_text

    names = tuple(n.strip() for n in args.names.split(","))
    if len(names) != 2 or not all(names):
        from asr.errors import ConfigError

        raise ConfigError(f"--names wants two comma-separated names, got {args.names!r}")
    hyp2 = read_text(args.hyp2) if args.hyp2 else None
    c = compare(read_text(args.ref), read_text(args.hyp), hyp2, replications=args.replications, seed=args.seed,
                mode=args.mode, ref_name=args.ref, hyp_names=(args.hyp, args.hyp2))
    print("\n".join(c.lines(names)))
    return 0
