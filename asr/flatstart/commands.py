"""``asr flat-start``: alignments from transcripts alone (no GMMs, no external aligner)."""

from __future__ import annotations

from asr.cli import DefaultsHelpFormatter, non_negative_int, positive_float, positive_int

from asr.failures import add_max_failures_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flat-start",
        help="alignments from transcripts alone: equal alignment, CI network rounds, tree, CD network",
        description="Train from transcripts alone (GMM-free flat start, Senior et al. 2014). Steps, each a dir of the "
        "work dir, skipped when complete on a re-run: ali0 = equal alignment (align-equal) of the --init-utts"
        " shortest utterances; then --rounds times: train a context-independent network (monophone states) on"
        " the last alignments, realign those utterances (the last round: all) with its log p(s|x) - log p(s), "
        "then --context-rounds more with a network of +-5 frames "
        "(Viterbi over each utterance's training graph, --nj jobs, utterances failing at --retry-beam skipped"
        " and counted, frames that changed state logged); then a decision tree (build-tree, --num-leaves) "
        "from the CI alignments, a context-dependent network, and one CD realignment. OUT becomes an "
        "alignment dir laid out as import-ali's output (with the CD round, a tree dir as build-tree's), "
        "OUT/flat_start.json (written last) records every step; the steps live in --work-dir (default "
        "OUT/work), whose final/ is the last network's model dir (with tree and final.mdl: `asr align "
        "--model-dir OUT/work/final` aligns dev/test data) and log/ the output of every command. Example: asr"
        " flat-start --nj 2 data/train data/lang exp/ali_train_flat",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="training data dir with text, feats.scp, cmvn.scp")
    p.add_argument("lang_dir", metavar="LANG_DIR", help="lang dir (L.fst, topo, phones/, oov.txt)")
    p.add_argument("out_dir", metavar="OUT", help="the alignment dir to make")
    p.add_argument("--work-dir", help="dir of the steps (default OUT/work)")
    p.add_argument("--nj", type=positive_int, default=2, help="parallel alignment jobs (one torch thread each)")
    p.add_argument("--num-threads", type=non_negative_int, default=0, help="torch threads for training (0: all cores)")
    p.add_argument("--init-utts", type=positive_int, default=1000,
                   help="equal alignment and the CI rounds on this many shortest utterances")
    p.add_argument("--init-from", choices=["originals", "all"], default="originals",
                   help="take the --init-utts shortest from the utterances that are not augmented copies "
                   "(utt2uniq, as asr augment-data-dir writes; all of them without utt2uniq), or from all")
    p.add_argument("--augmented-copies", choices=["rescale", "copy", "align"], default="rescale",
                   help="augmented copies (utt2uniq): give those of the same length as their source the source's "
                   "alignment, as Kaldi recipes do for reverberated data, and the speed-perturbed ones (reco2aug, "
                   "as asr augment-data-dir writes) the source's alignment rescaled to their speed (rescale); give "
                   "only the same-length ones theirs and align the speed-perturbed ones on their own (copy); or "
                   "align every copy on its own (align)"),
    p.add_argument("--rounds", type=positive_int, default=3, help="CI rounds with the frame classifier (train, realign; "
                   "the last round of these and the --context-rounds aligns every utterance)")
    p.add_argument("--context-rounds", type=non_negative_int, default=2,
                   help="after the --rounds with the frame classifier, this many more CI rounds with a network "
                   "that sees +-5 frames (--context-config): boundaries nearer the exact ones on noisy data; the "
                   "last round of all aligns every utterance")
    p.add_argument("--silence", choices=["edges", "random"], default="edges",
                   help="equal alignment's path (see asr align-equal --help)")
    p.add_argument("--edge-silence", choices=["required", "optional"], default="required",
                   help="realignments: every utterance begins and ends with silence (required), or silence "
                   "is optional there as between words (optional, as in L.fst)")
    p.add_argument("--num-leaves", type=positive_int, default=1000, help="leaves of the CD tree")
    p.add_argument("--no-cd", action="store_true",
                   help="stop after the CI rounds (no tree, CD network and CD realignment)")
    p.add_argument("--ci-config", help="YAML (model: and training: sections, as conf/dnn.yaml) of the CI "
                   "network (default: the built-in one, written to WORK/mono1.yaml)")
    p.add_argument("--context-config", help="YAML of the network of the --context-rounds (default: the built-in "
                   "one, a DNN with splice 5 and output_delay 5)")
    p.add_argument("--cd-config", help="YAML of the CD network (default: the built-in one, written to WORK/cd.yaml)")
    p.add_argument("--acoustic-scale", type=positive_float, default=0.1, help="scale of the network's log-likelihoods "
                   "in the realignment search")
    p.add_argument("--beam", type=positive_float, default=10.0, help="realignment beam")
    p.add_argument("--retry-beam", type=positive_float, default=40.0, help="beam of the second try; utterances failing "
                   "it are skipped and counted")
    p.add_argument("--map-oov", action="store_true", help="map words missing from the lexicon to the lang's "
                   "OOV word (oov.txt) instead of stopping with the list of them")
    p.add_argument("--max-duration", type=positive_float, default=None, help="skip (and count) utterances longer than "
                   "this many seconds (default: align all; those over 30 s are counted, and never in the "
                   "equal-alignment start unless the set has no shorter ones)")
    add_max_failures_option(p)
    p.add_argument("--force", action="store_true", help="redo OUT even when it is up to date (each step is "
                   "still skipped when its own output is up to date)")
    p.set_defaults(func=_flat_start)


def _flat_start(args) -> int:
    from asr.config import load_yaml
    from asr.flatstart.pipeline import FlatStartConfig, flat_start

    cfg = FlatStartConfig(init_utts=args.init_utts, init_originals=args.init_from == "originals",
                          copy_augmented=args.augmented_copies != "align",
                          rescale_speed=args.augmented_copies == "rescale", rounds=args.rounds, context_rounds=args.context_rounds,
                          silence=args.silence, edge_silence=args.edge_silence == "required",
                          num_leaves=args.num_leaves, cd_realign=not args.no_cd, nj=args.nj,
                          num_threads=args.num_threads, acoustic_scale=args.acoustic_scale, beam=args.beam,
                          retry_beam=args.retry_beam, map_oov=args.map_oov,
                          max_duration=args.max_duration, max_failures=args.max_failures)
    if args.ci_config:
        cfg.ci_config = load_yaml(args.ci_config)
    if args.context_config:
        cfg.ctx_config = load_yaml(args.context_config)
    if args.cd_config:
        cfg.cd_config = load_yaml(args.cd_config)
    summary = flat_start(args.data_dir, args.lang_dir, args.out_dir, args.work_dir, cfg, force=args.force)
    if summary.get("skipped"):
        print(f"{args.out_dir} is up to date (a flat start from the same data, lang dir and options)")
    for step in summary["steps"]:
        print(format_step(step))
    print(f"final alignments: {summary['final_alignments']} ({summary['seconds']:.0f} s)")
    return 0


def format_step(s: dict) -> str:
    """One line per step of flat_start.json."""
    if s["kind"] == "align":
        skipped = sum(s.get(k, 0) for k in ("failed", "too_short", "no_features", "no_transcript"))
        line = (f"{s['step']}: aligned {s['aligned']:,} of {s['utterances']:,} utterances "
                f"({s.get('retried', 0)} retried, {skipped} skipped)")
        if s.get("copied"):
            line += f", {s['copied']:,} augmented copies given their source's alignment"
            if s.get("rescaled"):
                line += f" ({s['rescaled']:,} rescaled to their speed)"
        if "state_changed_percent" in s:
            line += (f", {s['state_changed_percent']:.1f} % of frames changed state "
                     f"({s['phone_changed_percent']:.1f} % phone)")
    elif s["kind"] == "train":
        acc = s.get("train_acc")
        line = f"{s['step']}: trained on {s['alignments']}, train frame accuracy {acc if acc is not None else '?'}"
    else:
        line = f"{s['step']}: {s.get('num_pdfs')} pdfs from {s['alignments']}"
    return f"{line} [" + ("up to date" if s.get("skipped") else f"{s['seconds']:.0f} s") + "]"
