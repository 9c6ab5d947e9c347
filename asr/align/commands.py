"""Commands of the align stage: import-ali, ali-to-pdf, ali-to-phones."""

from __future__ import annotations

import argparse

_F = argparse.ArgumentDefaultsHelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-ali",
        help="import external alignments (CTM, TextGrid, Kaldi ali + final.mdl, pdf arks)",
        description="Import alignments into frame-synchronous arks: OUT_DIR/ali.pdf.ark, ali.tid.ark, "
        "phones.ark (one entry per feature frame), plus the tree/final.mdl used, num_pdfs and "
        "silence_pdfs.int. Frame counts are checked against DATA_DIR/utt2num_frames. "
        "Examples: asr import-ali --format ctm --lang data/lang data/train data/train/phones.ctm exp/ali_mono; "
        "asr import-ali --format kaldi data/train exp/tri3_ali/ali.*.gz exp/ali_kaldi; "
        "asr import-ali --format textgrid --lang data/lang data/train mfa_out/ exp/ali_mfa",
        formatter_class=_F,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="data dir with utt2num_frames (and text)")
    p.add_argument("sources", metavar="SRC", nargs="+",
                   help="CTM file(s); TextGrid dir/files; Kaldi ali files or their dir; pdf arks")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--format", required=True, choices=["ctm", "textgrid", "kaldi", "pdf"])
    p.add_argument("--lang", help="lang dir (needed for ctm/textgrid; gives silence_pdfs.int otherwise)")
    p.add_argument("--tree-dir", help="map HMM states through this dir's tree and final.mdl "
                   "(default: a monophone model built from --lang; for kaldi: the alignments' own model)")
    p.add_argument("--mdl", help="kaldi format: the final.mdl of the alignments (default: next to them)")
    p.add_argument("--words-ctm", help="word CTM giving word boundaries when the transcript cannot")
    p.add_argument("--tolerance", type=int, default=1, help="frames of length mismatch to pad/trim")
    p.add_argument("--frame-convention", choices=["center", "kaldi"], default="center",
                   help="center: frame k belongs to the label holding k*shift+length/2; "
                   "kaldi: the label holding (k+0.5)*shift")
    p.add_argument("--frame-shift", type=float, default=0.01)
    p.add_argument("--frame-length", type=float, default=0.025)
    p.add_argument("--reorder", default="true", choices=["true", "false"],
                   help="transition-id order as Kaldi's --reorder (self-loops after the forward transition)")
    p.add_argument("--phone-map", help="file of 'label phone' lines applied to CTM/TextGrid labels "
                   "(a line with one phone maps the empty label)")
    p.add_argument("--phone-tier", default="phones")
    p.add_argument("--word-tier", default="words")
    p.set_defaults(func=_import_ali)

    p = subparsers.add_parser(
        "ali-to-pdf", help="transition-id alignments to pdf ids (Kaldi ali-to-pdf)",
        description="As Kaldi's ali-to-pdf MDL ark:ALI_IN ark,t:OUT. ALI_IN: int-vector ark, text or "
        "binary, gzipped or not. OUT: text ark 'utt pdf pdf ...' ('-' for stdout).", formatter_class=_F)
    p.add_argument("mdl", metavar="MDL")
    p.add_argument("ali_in", metavar="ALI_IN")
    p.add_argument("out", metavar="OUT")
    p.set_defaults(func=_ali_to_pdf)

    p = subparsers.add_parser(
        "ali-to-phones", help="transition-id alignments to phone sequences (Kaldi ali-to-phones)",
        description="As Kaldi's ali-to-phones MDL ark:ALI_IN ark,t:OUT: one phone per phone instance, "
        "or one per frame with --per-frame.", formatter_class=_F)
    p.add_argument("mdl", metavar="MDL")
    p.add_argument("ali_in", metavar="ALI_IN")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--per-frame", action="store_true", help="one phone per frame")
    p.set_defaults(func=_ali_to_phones)


def _import_ali(args) -> int:
    from asr.align.import_ali import import_alignments

    import_alignments(
        args.format, args.data_dir, args.sources, args.out_dir, lang_dir=args.lang, tree_dir=args.tree_dir,
        mdl=args.mdl, words_ctm=args.words_ctm, tolerance=args.tolerance, convention=args.frame_convention,
        frame_shift=args.frame_shift, frame_length=args.frame_length, reorder=args.reorder == "true",
        phone_map=args.phone_map, phone_tier=args.phone_tier, word_tier=args.word_tier,
    )
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

    from asr.align.kaldi_ali import ali_to_pdf
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
    from asr.align.kaldi_ali import ali_to_phones
    from asr.hmm.transition_model import TransitionModel
    from asr.io.int_ark import iter_int_ark

    tm = TransitionModel.read(args.mdl)
    _write_text_ark(args.out, ((utt, ali_to_phones(tm, ali, args.per_frame, utt))
                               for utt, ali in iter_int_ark(args.ali_in)))
    return 0
