"""Commands of the align stage: import-ali, build-tree, import-kaldi-exp, ali-to-pdf, ali-to-phones, align,
align-equal, compare-ali, ali-stats, plot-ali."""

from __future__ import annotations

from asr.cli import DefaultsHelpFormatter

from asr.cli import non_negative_float, non_negative_int, positive_float, positive_int
from asr.failures import add_max_failures_option

_F = DefaultsHelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-ali",
        help="import external alignments (CTM, TextGrid, Kaldi ali + final.mdl, pdf arks)",
        description="Import alignments into frame-synchronous arks: OUT_DIR/ali.pdf.ark, ali.tid.ark, "
        "phones.ark (one entry per feature frame), plus the tree/final.mdl used, num_pdfs, "
        "silence_pdfs.int, import_stats.json, excluded.txt and ali_dir.json (docs/contracts.md: OUT_DIR is "
        "written at once, and left as it is when imported from the same inputs and options). Frame counts are "
        "checked against DATA_DIR/utt2num_frames; utterances that cannot be imported are excluded and counted. "
        "Examples: asr import-ali --format ctm --lang data/lang data/train data/train/phones.ctm exp/ali_mono; "
        "asr import-ali --format kaldi data/train exp/tri3_ali/ali.*.gz exp/ali_kaldi; "
        "asr import-ali --format textgrid --lang data/lang data/train mfa_out/ exp/ali_mfa",
        formatter_class=_F,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with utt2num_frames (and text)")
    p.add_argument("sources", metavar="SRC", nargs="+",
                   help="CTM file(s); TextGrid dir/files; Kaldi ali files or their dir; pdf arks")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help='the alignment dir to write (ali.tid.ark, ali.pdf.ark, final.mdl, ali_dir.json, ...)')
    p.add_argument("--format", required=True, choices=["ctm", "textgrid", "kaldi", "pdf"],
                   help="what SRC holds: ctm = phone CTM lines 'utt channel start duration phone'; textgrid = "
                   "Praat TextGrids <utt>.TextGrid (a dir is searched); kaldi = Kaldi transition-id alignments "
                   "(ali.*.gz, text or binary, with their final.mdl); pdf = pdf-id arks as ali-to-pdf writes")
    p.add_argument("--lang", help="lang dir (needed for ctm/textgrid; gives silence_pdfs.int otherwise)")
    p.add_argument("--tree-dir", help="map HMM states through this dir's tree and final.mdl "
                   "(default: a monophone model built from --lang; for kaldi: the alignments' own model)")
    p.add_argument("--mdl", help="kaldi format: the final.mdl of the alignments (default: next to them)")
    p.add_argument("--words-ctm", help="word CTM giving word boundaries when the transcript cannot")
    p.add_argument("--tolerance", type=non_negative_int, default=1, help="frames of length mismatch to pad/trim")
    p.add_argument("--frame-convention", choices=["center", "kaldi"], default="center",
                   help="center: frame k belongs to the label holding k*shift+length/2; "
                   "kaldi: the label holding (k+0.5)*shift")
    p.add_argument("--frame-shift", type=positive_float, default=0.01,
                   help="seconds between the starts of consecutive feature frames (ctm/textgrid times to frames)")
    p.add_argument("--frame-length", type=positive_float, default=0.025,
                   help="seconds of audio in one feature frame (its window)")
    p.add_argument("--reorder", default="true", choices=["true", "false"],
                   help="transition-id order as Kaldi's --reorder (self-loops after the forward transition)")
    p.add_argument("--phone-map", help="file of 'label phone' lines applied to CTM/TextGrid labels "
                   "(a line with one phone maps the empty label)")
    p.add_argument("--phone-tier", default="phones",
                   help="textgrid: name of the tier of phone intervals (else the first tier named *phone*)")
    p.add_argument("--word-tier", default="words",
                   help="textgrid: name of the tier of word intervals (word positions when the transcript "
                   "cannot give them)")
    add_max_failures_option(p)
    p.add_argument("--force", action="store_true", help="import even when OUT_DIR is up to date")
    p.set_defaults(func=_import_ali)

    p = subparsers.add_parser(
        "build-tree",
        help="tie context-dependent HMM states with a decision tree (Kaldi-style senones)",
        description="Accumulate single diagonal-Gaussian statistics of the (CMVN-normalised) features per "
        "(phone window, HMM state) from the alignments in ALI_DIR (ali.tid.ark + final.mdl, e.g. from "
        "`asr import-ali`), build questions by clustering phones (plus phones/extra_questions.txt), grow "
        "the tree greedily to --num-leaves, and write TREE_DIR: tree (Kaldi text format), final.mdl "
        "(Kaldi binary transition model), ali.pdf.ark / ali.tid.ark / phones.ark mapped to the new "
        "pdfs, num_pdfs, silence_pdfs.int, build_tree.json, ali_dir.json (TREE_DIR is an alignment dir, "
        "written at once; left as it is when built from the same features, alignments, lang dir and options). "
        "Context-independent phones (--ci-phones; by default the lang's silence phones) are never split on "
        "their context: silence has one set of pdfs whatever its neighbours. "
        "Example: asr build-tree --lang data/lang --num-leaves 1500 data/train exp/ali_mono exp/tri",
        formatter_class=_F,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with feats.scp (and cmvn.scp)")
    p.add_argument("ali_dir", metavar="ALI_DIR", help="dir with ali.tid.ark and final.mdl")
    p.add_argument("tree_dir", metavar="TREE_DIR",
                   help='the tree dir to write (tree, final.mdl, ali.pdf.ark, num_pdfs, ...)')
    p.add_argument("--lang", required=True, help="lang dir (roots.txt, sets, extra_questions, topo)")
    p.add_argument("--num-leaves", type=positive_int, default=1500, help="target number of leaves (pdfs)")
    p.add_argument("--context-width", type=positive_int, default=3, help="N: 3 = triphone, 1 = monophone")
    p.add_argument("--central-position", type=non_negative_int, default=None, help="P (default N // 2)")
    p.add_argument("--min-count", type=non_negative_float, default=50.0, help="minimum frames on each side of a split")
    p.add_argument("--thresh", type=float, default=0.0, help="minimum likelihood gain of a split")
    p.add_argument("--cmvn", default="speaker", choices=["speaker", "utterance", "global", "online", "none"],
                   help="mean/variance normalisation of the features before the statistics are accumulated: per "
                   "speaker (DATA_DIR/cmvn.scp), per utterance, one global one, online (moving window) or none")
    p.add_argument("--ci-phones", default=None, metavar="LIST",
                   help="colon-separated ids of context-independent phones, whose states are shared across "
                        "contexts (Kaldi acc-tree-stats --ci-phones); default: the lang's "
                        "phones/context_indep.csl (the silence phones); '' for none")
    p.add_argument("--force", action="store_true", help="rebuild even when TREE_DIR is up to date")
    p.set_defaults(func=_build_tree)

    p = subparsers.add_parser(
        "import-kaldi-exp",
        help="import a Kaldi GMM experiment (final.mdl, tree, ali.*.gz, graph) as our tree/alignment dir",
        description="Import the Kaldi experiment EXP_DIR (a tri*/tri*_ali dir: final.mdl, binary or text tree, "
        "ali.*.gz, phones.txt, num_jobs) trained with the Kaldi lang dir LANG_DIR into OUT_DIR, laid out as "
        "import-ali's output (ali.pdf.ark exactly as ali-to-pdf, ali.tid.ark, phones.ark, tree byte for byte, "
        "final.mdl, num_pdfs, silence_pdfs.int, phones.txt) plus kaldi_exp.json; with --graph-dir also "
        "OUT_DIR/graph (Kaldi's HCLG.fst, words.txt, phones.txt, disambig_tid.int) for decoding with "
        "Kaldi's graph. Checks the phone set, tree, transition model, topology and graph against each other "
        "and frame counts against DATA_DIR/utt2num_frames. OUT_DIR is an alignment dir (ali_dir.json), written "
        "at once, and left as it is when imported from the same experiment, graph, data and options. "
        "E.g.: asr import-kaldi-exp data/train_960 kaldi/data/lang kaldi/exp/tri6b_ali_960 exp/kaldi_ali "
        "--graph-dir kaldi/exp/tri6b/graph_tgsmall",
        formatter_class=_F,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="our data dir of the aligned utterances (utt2num_frames)")
    p.add_argument("lang_dir", metavar="LANG_DIR", help="the Kaldi lang dir the experiment was trained with")
    p.add_argument("exp_dir", metavar="EXP_DIR", help="Kaldi GMM exp or alignment dir")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the alignment dir to write (the layout of asr import-ali's)")
    p.add_argument("--graph-dir", help="Kaldi graph dir (HCLG.fst, words.txt, phones.txt, disambig_tid.int) to "
                   "import with the model")
    p.add_argument("--tolerance", type=non_negative_int, default=1, help="frames of length mismatch to pad/trim")
    add_max_failures_option(p)
    p.add_argument("--force", action="store_true", help="import even when OUT_DIR is up to date")
    p.set_defaults(func=_import_kaldi_exp)

    p = subparsers.add_parser(
        "ali-to-pdf", help="transition-id alignments to pdf ids (Kaldi ali-to-pdf)",
        description="As Kaldi's ali-to-pdf MDL ark:ALI_IN ark,t:OUT. ALI_IN: int-vector ark, text or "
        "binary, gzipped or not. OUT: text ark 'utt pdf pdf ...' ('-' for stdout).", formatter_class=_F)
    p.add_argument("mdl", metavar="MDL", help='Kaldi transition model (final.mdl, binary or text)')
    p.add_argument("ali_in", metavar="ALI_IN", help='transition-id alignments (int-vector ark)')
    p.add_argument("out", metavar="OUT", help="text ark to write ('-': stdout)")
    p.set_defaults(func=_ali_to_pdf)

    p = subparsers.add_parser(
        "ali-to-phones", help="transition-id alignments to phone sequences (Kaldi ali-to-phones)",
        description="As Kaldi's ali-to-phones MDL ark:ALI_IN ark,t:OUT: one phone per phone instance, "
        "or one per frame with --per-frame.", formatter_class=_F)
    p.add_argument("mdl", metavar="MDL", help='Kaldi transition model (final.mdl, binary or text)')
    p.add_argument("ali_in", metavar="ALI_IN", help='transition-id alignments (int-vector ark)')
    p.add_argument("out", metavar="OUT", help="text ark to write ('-': stdout)")
    p.add_argument("--per-frame", action="store_true", help="one phone per frame")
    p.set_defaults(func=_ali_to_phones)

    p = subparsers.add_parser(
        "align", help="Viterbi forced alignment of transcripts to per-frame log-likelihoods",
        description="Align DATA_DIR/text over each utterance's training graph (lexicon variants, optional "
        "silence, tree context, HMMs) with kaldi-decoder's C++ Viterbi search, to LOGLIKES (Kaldi matrix "
        ".ark/.scp, one row per frame, one column per pdf, e.g. log p(s|x) - log p(s)), or with --model-dir "
        "to a network's scaled likelihoods computed here in --nj parallel jobs (then give DATA_DIR OUT_DIR "
        "only; utterances failing at --retry-beam are skipped and counted). "
        "OUT_DIR gets ali.tid.ark, ali.pdf.ark, phones.ark, tree, final.mdl, num_pdfs, silence_pdfs.int, "
        "phones.txt, excluded.txt, align_stats.json (the layout of import-ali). "
        "Examples: asr align --lang data/lang --tree-dir exp/tri data/train exp/lstm/loglikes.scp exp/lstm_ali; "
        "asr align --lang data/lang --model-dir exp/dnn/final --nj 4 data/train exp/dnn_ali",
        formatter_class=_F)
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with text (and utt2num_frames; feats.scp "
                   "with --model-dir)")
    p.add_argument("loglikes", metavar="LOGLIKES", help="Kaldi matrix ark or scp of per-pdf log-likelihoods "
                   "(left out with --model-dir)")
    p.add_argument("out_dir", metavar="OUT_DIR", nargs="?",
                   help="the alignment dir to write (with --model-dir it takes LOGLIKES' place)")
    p.add_argument("--lang", required=True, help="lang dir (L.fst, phones.txt, words.txt, topo) of the transcripts")
    p.add_argument("--tree-dir", help="tree + final.mdl (default: --model-dir when it has them, else a "
                   "monophone model from --lang)")
    p.add_argument("--model-dir", help="acoustic model dir (model.safetensors, model.yaml, log_priors.npy): "
                   "align with its log p(s|x) - log p(s)")
    p.add_argument("--nj", type=positive_int, default=1, help="parallel jobs with --model-dir (one torch thread each)")
    p.add_argument("--map-oov", action="store_true", help="with --model-dir: map words missing from the "
                   "lexicon to the lang's OOV word (oov.txt) instead of stopping with the list of them")
    p.add_argument("--max-duration", type=positive_float, default=None, help="with --model-dir: skip (and count) "
                   "utterances longer than this many seconds")
    p.add_argument("--acoustic-scale", type=positive_float, default=0.1,
                   help="weight of the log-likelihoods against the transition costs (Kaldi's --acoustic-scale)")
    p.add_argument("--transition-scale", type=non_negative_float, default=1.0,
                   help="weight of the log transition probabilities, self-loops aside (Kaldi's --transition-scale)")
    p.add_argument("--self-loop-scale", type=non_negative_float, default=0.1,
                   help="weight of the log self-loop probabilities (Kaldi's --self-loop-scale)")
    p.add_argument("--beam", type=positive_float, default=10.0,
                   help="Viterbi search beam (cost units); an utterance whose path falls out of it is retried")
    p.add_argument("--retry-beam", type=positive_float, default=40.0,
                   help="the wider beam of the retry (LOGLIKES: then an unpruned search; --model-dir: then the "
                   "utterance is skipped and counted)")
    p.add_argument("--edge-silence", action="store_true",
                   help="with --model-dir: every utterance's path begins and ends with silence (by default "
                   "silence is optional there, as in L.fst); for recordings known to start and end in silence")
    p.add_argument("--log-priors", help="LOGLIKES are log posteriors: subtract these log priors "
                   "(a model dir's log_priors.npy, or a text vector)")
    add_max_failures_option(p)
    p.add_argument("--force", action="store_true", help="align even when OUT_DIR is up to date")
    p.set_defaults(func=_align)

    p = subparsers.add_parser(
        "align-equal", help="equal alignment of transcripts (flat start; Kaldi align-equal-compiled)",
        description="Equally align each utterance's training graph to its frames (Kaldi align-equal-compiled): "
        "a random path through the graph (lexicon variants and optional silence between words chosen with "
        "equal probability, seeded by the utterance id), every HMM state on it getting the same number of "
        "frames. Utterances with too few frames for their transcript are skipped and counted. OUT_DIR: an "
        "alignment dir laid out as import-ali's, with a monophone model built from LANG_DIR (transition "
        "probabilities estimated from the result) unless --tree-dir. "
        "Example: asr align-equal --shortest 1000 data/train data/lang exp/mono_ali0",
        formatter_class=_F)
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with text and utt2num_frames (or feats.scp)")
    p.add_argument("lang_dir", metavar="LANG_DIR",
                   help='lang dir (L.fst, phones.txt, words.txt, topo) of the transcripts')
    p.add_argument("out_dir", metavar="OUT_DIR", help='the alignment dir to write')
    p.add_argument("--tree-dir", help="tree + final.mdl to align with (default: monophone model from LANG_DIR)")
    p.add_argument("--shortest", type=positive_int, metavar="N", help="only the N shortest utterances (as Kaldi's "
                   "subset_data_dir.sh --shortest for monophone training)")
    p.add_argument("--nj", type=positive_int, default=1, help="parallel jobs")
    p.add_argument("--seed", type=int, default=0, help="added to each utterance's random seed")
    p.add_argument("--silence", choices=["edges", "random"], default="edges",
                   help="path through the graph: edges = silence at the start and end only, pronunciation "
                   "variants at random; random = Kaldi's EqualAlign (optional silences and variants at random)")
    p.add_argument("--max-duration", type=positive_float, default=None, help="skip (and count) utterances longer than "
                   "this many seconds")
    p.add_argument("--map-oov", action="store_true", help="map words missing from the lexicon to the lang's "
                   "OOV word (oov.txt) instead of stopping with the list of them")
    add_max_failures_option(p)
    p.add_argument("--force", action="store_true", help="align even when OUT_DIR is up to date")
    p.set_defaults(func=_align_equal)

    p = subparsers.add_parser(
        "compare-ali", help="phone-boundary and frame agreement of two alignments (CTM or alignment dirs)",
        description="Compare HYP with REF at the phone level (base phones: word-position suffixes dropped, "
        "all silences one label). Each is a phone CTM (gaps are silence) or an alignment dir (ali.tid.ark + "
        "final.mdl or phones.ark, and phones.txt). Prints the share of REF's phone boundaries that HYP "
        "places within 10, 20 and 40 ms (label sequences matched by edit distance; a boundary whose phones "
        "HYP does not have counts as missed), the frame-level phone agreement, and the number of utterances "
        "compared, e.g. 'boundaries within 20 ms: 93.4 % (41,203 boundaries, 503 utts); frame phone "
        "agreement 95.1 %', then the mean and median signed boundary offset (HYP minus REF: a systematic "
        "shift shows here). Example: asr compare-ali data/test/phones.ctm exp/ali_test_flat",
        formatter_class=_F)
    p.add_argument("ref", metavar="REF", help="reference: phone CTM or alignment dir")
    p.add_argument("hyp", metavar="HYP", help="hypothesis: phone CTM or alignment dir")
    p.add_argument("--lang", help="lang dir whose silence phones are silence (default: SIL, SPN, NSN, sil, "
                   "spn, sp, <sil>)")
    p.add_argument("--frame-convention", choices=["center", "kaldi"], default="center",
                   help="time of frame boundaries (center: between window centres, as import-ali; kaldi: k*shift)")
    p.add_argument("--frame-shift", type=positive_float, default=0.01,
                   help="seconds between the starts of consecutive frames of an alignment dir")
    p.add_argument("--frame-length", type=positive_float, default=0.025,
                   help="seconds of audio in one frame (with --frame-convention center, frame k stands for "
                   "k*shift + length/2)")
    p.add_argument("--json", help="also write the figures (and mean/median absolute and signed boundary error, "
                   "a histogram of the signed error in frames) as JSON here")
    p.set_defaults(func=_compare_ali)

    p = subparsers.add_parser(
        "ali-stats", help="per-phone duration statistics of an alignment dir",
        description="Print per-phone duration statistics (frames) of ALI_DIR (ali.tid.ark + final.mdl, or "
        "phones.ark): instances, mean, std, min, 5th/50th/95th percentile, max, share of frames.",
        formatter_class=_F)
    p.add_argument("ali_dir", metavar="ALI_DIR", help='alignment dir (ali.tid.ark + final.mdl, or phones.ark)')
    p.add_argument("--lang", help="lang dir for phone names (default: ALI_DIR/phones.txt if present)")
    p.add_argument("--base-phones", action="store_true", help="group word-position variants (AA_B, AA_E ...)")
    p.add_argument("--json", help="also write the table as JSON here")
    p.set_defaults(func=_ali_stats)

    p = subparsers.add_parser(
        "plot-ali", help="PNG of one utterance's alignment over its spectrogram",
        description="Write a PNG: the utterance's filterbank features (from --data) with phone boundaries and "
        "labels (solid lines) and HMM-state boundaries (dotted), and the pdf-id track below.",
        formatter_class=_F)
    p.add_argument("ali_dir", metavar="ALI_DIR", help='alignment dir (ali.tid.ark + final.mdl)')
    p.add_argument("utt", metavar="UTT", help='the utterance id to plot')
    p.add_argument("out_png", metavar="OUT_PNG", help='the PNG file to write')
    p.add_argument("--data", help="data dir whose feats.scp gives the spectrogram")
    p.add_argument("--lang", help="lang dir for phone names (default: ALI_DIR/phones.txt if present)")
    p.set_defaults(func=_plot_ali)


def _import_kaldi_exp(args) -> int:
    from asr.align.kaldi_exp import import_kaldi_exp

    s = import_kaldi_exp(args.data_dir, args.lang_dir, args.exp_dir, args.out_dir, args.graph_dir, args.tolerance,
                         max_failures=args.max_failures, force=args.force)
    a = s["alignments"]
    excluded = sum(v for k, v in a.items() if k.startswith("excluded_"))
    print(f"{args.out_dir}: {s['num_pdfs']} pdfs (context width {s['context_width']}), "
          f"{a['utterances_imported']} utterances, {a['frames_imported']} frames imported, {excluded} excluded"
          + (f"; graph {s['graph']['states']} states, {s['graph']['arcs']} arcs" if s["graph"] else ""))
    return 0


def _import_ali(args) -> int:
    from asr.align.import_ali import import_alignments

    import_alignments(
        args.format, args.data_dir, args.sources, args.out_dir, lang_dir=args.lang, tree_dir=args.tree_dir,
        mdl=args.mdl, words_ctm=args.words_ctm, tolerance=args.tolerance, convention=args.frame_convention,
        frame_shift=args.frame_shift, frame_length=args.frame_length, reorder=args.reorder == "true",
        phone_map=args.phone_map, phone_tier=args.phone_tier, word_tier=args.word_tier,
        max_failures=args.max_failures, force=args.force,
    )
    return 0


def _build_tree(args) -> int:
    from asr.align.tree_dir import build_tree_dir
    from asr.errors import ConfigError

    ci_phones = None
    if args.ci_phones is not None:
        try:
            ci_phones = [int(x) for x in args.ci_phones.replace(",", ":").split(":") if x.strip()]
        except ValueError:
            raise ConfigError(f"--ci-phones {args.ci_phones!r}: expected colon-separated phone ids") from None

    build_tree_dir(args.data_dir, args.ali_dir, args.tree_dir, args.lang, num_leaves=args.num_leaves,
                   context_width=args.context_width, central_position=args.central_position,
                   min_count=args.min_count, thresh=args.thresh, cmvn=args.cmvn, ci_phones=ci_phones,
                   force=args.force)
    return 0


def _align(args) -> int:
    from asr.errors import ConfigError

    if args.model_dir:
        from pathlib import Path

        from asr.align.align_data import AlignConfig, align_data_dir

        if args.out_dir is not None:
            raise ConfigError("with --model-dir give DATA_DIR OUT_DIR (the network computes the log-likelihoods)")
        if args.log_priors:
            raise ConfigError("--log-priors goes with LOGLIKES; with --model-dir the model dir's priors are used")
        tree_dir = args.tree_dir
        if tree_dir is None and (Path(args.model_dir) / "tree").is_file():
            tree_dir = args.model_dir
        cfg = AlignConfig(acoustic_scale=args.acoustic_scale, transition_scale=args.transition_scale,
                          self_loop_scale=args.self_loop_scale, beam=args.beam, retry_beam=args.retry_beam,
                          nj=args.nj, map_oov=args.map_oov, max_duration=args.max_duration,
                          edge_silence=args.edge_silence)
        align_data_dir(args.data_dir, args.lang, args.loglikes, tree_dir=tree_dir, model_dir=args.model_dir, cfg=cfg,
                       max_failures=args.max_failures, force=args.force)
        return 0
    from asr.align.forced import align_dir

    if args.edge_silence:
        raise ConfigError("--edge-silence goes with --model-dir")
    if args.out_dir is None:
        raise ConfigError("give DATA_DIR LOGLIKES OUT_DIR (or --model-dir with DATA_DIR OUT_DIR)")
    align_dir(args.data_dir, args.loglikes, args.out_dir, args.lang, args.tree_dir, args.acoustic_scale,
              args.beam, args.retry_beam, args.transition_scale, args.self_loop_scale, args.log_priors,
              max_failures=args.max_failures, force=args.force)
    return 0


def _align_equal(args) -> int:
    from asr.align.align_data import AlignConfig, align_data_dir, shortest_utterances

    utts = None
    if args.shortest is not None:
        from pathlib import Path

        from asr.align.import_ali import read_num_frames

        utts = shortest_utterances(read_num_frames(Path(args.data_dir)), args.shortest)
    cfg = AlignConfig(nj=args.nj, seed=args.seed, silence=args.silence, map_oov=args.map_oov,
                      max_duration=args.max_duration,
                      update_transitions=args.tree_dir is None)
    align_data_dir(args.data_dir, args.lang_dir, args.out_dir, tree_dir=args.tree_dir, utts=utts, cfg=cfg,
                   desc="align-equal", max_failures=args.max_failures, force=args.force)
    return 0


def _compare_ali(args) -> int:
    import json

    from asr.align.compare import (
        DEFAULT_SILENCE_PHONES,
        compare_alignments,
        silence_phones_of_lang,
    )

    if args.json:
        from asr.io.atomic import check_distinct_output

        check_distinct_output(args.json, args.ref, args.hyp)
    sil = list(DEFAULT_SILENCE_PHONES) + (silence_phones_of_lang(args.lang) if args.lang else [])
    res = compare_alignments(args.ref, args.hyp, sil, args.frame_convention, args.frame_shift, args.frame_length)
    for line in res.lines():
        print(line)
    if res.only_ref or res.only_hyp:
        import logging

        logging.getLogger("asr.align").warning("%d utterances only in REF, %d only in HYP (not compared)",
                                               res.only_ref, res.only_hyp)
    if args.json:
        from asr.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(res.to_json(), indent=1) + "\n")
    return 0


def _phone_names(ali_dir: str, lang: str | None) -> dict[int, str] | None:
    from pathlib import Path

    from asr.lang.lang_dir import read_symbol_table

    path = Path(lang) / "phones.txt" if lang else Path(ali_dir) / "phones.txt"
    if not path.exists():
        return None
    return {i: p for p, i in read_symbol_table(path).items()}


def _ali_stats(args) -> int:
    import json
    import re
    import sys

    from asr.align.inspect import ali_stats, format_stats

    if args.json:
        from pathlib import Path

        from asr.io.atomic import check_distinct_output

        check_distinct_output(args.json, *(Path(args.ali_dir) / n for n in ("ali.tid.ark", "final.mdl", "phones.ark",
                                                                            "phones.txt")),
                              Path(args.lang) / "phones.txt" if args.lang else None)
    names = _phone_names(args.ali_dir, args.lang)
    base = (lambda n: re.sub(r"_[BEIS]$", "", n)) if args.base_phones else None
    rows = ali_stats(args.ali_dir, names, base)
    sys.stdout.write(format_stats(rows))
    if args.json:
        from asr.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return 0


def _plot_ali(args) -> int:
    from asr.align.inspect import plot_alignment

    plot_alignment(args.ali_dir, args.utt, args.out_png, args.data, _phone_names(args.ali_dir, args.lang))
    return 0


def _write_text_ark(out: str, items) -> None:
    import sys

    from asr.io.int_ark import write_int_ark

    if out == "-":
        for key, arr in items:
            sys.stdout.write(" ".join([key, *map(str, arr.tolist())]) + "\n")
    else:
        write_int_ark(out, items)


def _ali_to_pdf(args) -> int:
    import logging

    from asr.hmm.kaldi_ali import ali_to_pdf
    from asr.hmm.transition_model import TransitionModel
    from asr.io.int_ark import iter_int_ark

    tm = TransitionModel.read(args.mdl)
    n = [0]

    def items():
        for utt, ali in iter_int_ark(args.ali_in):
            n[0] += 1
            yield utt, ali_to_pdf(tm, ali, utt)

    _write_text_ark(args.out, items())
    logging.getLogger("asr.align").info("converted %d alignments", n[0])
    return 0


def _ali_to_phones(args) -> int:
    from asr.hmm.kaldi_ali import ali_to_phones
    from asr.hmm.transition_model import TransitionModel
    from asr.io.int_ark import iter_int_ark

    tm = TransitionModel.read(args.mdl)
    _write_text_ark(args.out, ((utt, ali_to_phones(tm, ali, args.per_frame, utt))
                               for utt, ali in iter_int_ark(args.ali_in)))
    return 0
