"""Commands of the graph stage: ``asr make-graph``."""

from __future__ import annotations

from asr.cli import DefaultsHelpFormatter, non_negative_float


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "make-graph",
        help="build the decoding graph HCLG.fst (Kaldi mkgraph.sh)",
        description="Build HCLG.fst as Kaldi's utils/mkgraph.sh does: G from an ARPA LM (arpa2fst, #0 on "
        "back-off arcs) or a given G.fst, L_disambig o G determinized and minimized, context expansion "
        "(triphone or monophone, from the tree), H from the transition model and tree, disambiguation "
        "symbols removed, HMM self-loops added (reordered), arcs sorted. GRAPH_DIR gets HCLG.fst "
        "(OpenFst ConstFst by default), words.txt, phones.txt, disambig_tid.int, num_pdfs and graph.json "
        "(SHA-256 of the lang dir files, tree, final.mdl and LM it was built from; decoding refuses a model "
        "whose tree/transition model differs). GRAPH_DIR is replaced only when the build succeeded; when it "
        "is complete and was built from the same inputs and options, nothing is done (--force rebuilds). "
        "E.g.: asr make-graph data/lang exp/tree exp/lm/lm5_pruned.arpa exp/graph",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("lang_dir", metavar="LANG_DIR", help="lang dir (L_disambig.fst, words.txt, phones.txt, phones/)")
    p.add_argument("tree_dir", metavar="TREE_DIR", help="dir with tree and final.mdl")
    p.add_argument("lm", metavar="LM", help="ARPA LM (.arpa or .arpa.gz) or an OpenFst G.fst")
    p.add_argument("graph_dir", metavar="GRAPH_DIR",
                   help='the graph dir to write (HCLG.fst, words.txt, graph.json, ...)')
    p.add_argument("--transition-scale", type=non_negative_float, default=1.0,
                   help="scale of the HMM transition log-probabilities on H's forward arcs (Kaldi mkgraph.sh "
                   "--transition-scale)")
    p.add_argument("--self-loop-scale", type=non_negative_float, default=0.1,
                   help="scale of the HMM self-loop log-probabilities when self-loops are added (Kaldi "
                   "mkgraph.sh --self-loop-scale; 0.1 for chain-free hybrid models, 1.0 for chain models)")
    p.add_argument("--fst-type", choices=("const", "vector"), default="const",
                   help="OpenFst type of HCLG.fst (const decodes faster)")
    p.add_argument("--force", action="store_true", help="rebuild even when GRAPH_DIR is up to date")
    p.set_defaults(func=_make_graph)


def _make_graph(args) -> int:
    import json

    from asr.graph.mkgraph import make_graph

    stats = make_graph(args.lang_dir, args.tree_dir, args.lm, args.graph_dir,
                       transition_scale=args.transition_scale, self_loop_scale=args.self_loop_scale,
                       fst_type=args.fst_type, force=args.force)
    print(json.dumps(stats))
    return 0
