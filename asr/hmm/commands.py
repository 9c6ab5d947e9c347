"""Commands of the hmm stage: ``asr build-tree``."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build-tree",
        help="tie context-dependent HMM states with a decision tree (Kaldi-style senones)",
        description="Accumulate single diagonal-Gaussian statistics of the (CMVN-normalised) features per "
        "(phone window, HMM state) from the alignments in ALI_DIR (ali.tid.ark + final.mdl, e.g. from "
        "`asr import-ali`), build questions by clustering phones (plus phones/extra_questions.txt), grow "
        "the tree greedily to --num-leaves, and write TREE_DIR: tree (Kaldi text format), final.mdl "
        "(Kaldi binary transition model), ali.pdf.ark / ali.tid.ark / phones.ark mapped to the new "
        "pdfs, num_pdfs, silence_pdfs.int, build_tree.json. Context-independent phones (--ci-phones; by "
        "default the lang's silence phones) are never split on their context: silence has one set of "
        "pdfs whatever its neighbours. "
        "Example: asr build-tree --lang data/lang --num-leaves 1500 data/train exp/ali_mono exp/tri",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with feats.scp (and cmvn.scp)")
    p.add_argument("ali_dir", metavar="ALI_DIR", help="dir with ali.tid.ark and final.mdl")
    p.add_argument("tree_dir", metavar="TREE_DIR")
    p.add_argument("--lang", required=True, help="lang dir (roots.txt, sets, extra_questions, topo)")
    p.add_argument("--num-leaves", type=int, default=1500, help="target number of leaves (pdfs)")
    p.add_argument("--context-width", type=int, default=3, help="N: 3 = triphone, 1 = monophone")
    p.add_argument("--central-position", type=int, default=None, help="P (default N // 2)")
    p.add_argument("--min-count", type=float, default=50.0, help="minimum frames on each side of a split")
    p.add_argument("--thresh", type=float, default=0.0, help="minimum likelihood gain of a split")
    p.add_argument("--cmvn", default="speaker", choices=["speaker", "utterance", "global", "none"])
    p.add_argument("--ci-phones", default=None, metavar="LIST",
                   help="colon-separated ids of context-independent phones, whose states are shared across "
                        "contexts (Kaldi acc-tree-stats --ci-phones); default: the lang's "
                        "phones/context_indep.csl (the silence phones); '' for none")
    p.set_defaults(func=_build_tree)


def _build_tree(args) -> int:
    from asr.errors import ConfigError
    from asr.hmm.tree_dir import build_tree_dir

    ci_phones = None
    if args.ci_phones is not None:
        try:
            ci_phones = [int(x) for x in args.ci_phones.replace(",", ":").split(":") if x.strip()]
        except ValueError:
            raise ConfigError(f"--ci-phones {args.ci_phones!r}: expected colon-separated phone ids") from None

    build_tree_dir(args.data_dir, args.ali_dir, args.tree_dir, args.lang, num_leaves=args.num_leaves,
                   context_width=args.context_width, central_position=args.central_position,
                   min_count=args.min_count, thresh=args.thresh, cmvn=args.cmvn, ci_phones=ci_phones)
    return 0
