"""Commands of the lang stage: ``asr prepare-dict``, ``asr prepare-lang``."""

from __future__ import annotations

from asr.cli import DefaultsHelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare-dict",
        help="Kaldi dict dir from a CMUdict-style lexicon (e.g. librispeech-lexicon.txt)",
        description="Write a Kaldi dict dir (lexicon.txt, silence_phones.txt, nonsilence_phones.txt, "
        "optional_silence.txt, extra_questions.txt) from LEXICON ('WORD PH1 PH2 ...' lines; vowels may "
        "carry stress digits), as Kaldi's LibriSpeech local/prepare_dict.sh: stress variants of a phone "
        "share one line (tree root), one extra question per stress level, silence phones SIL and SPN, "
        "and the words !SIL (SIL), <SPOKEN_NOISE> and <UNK> (SPN) added. The whole lexicon is checked "
        "first (an error names its file and line); DICT_DIR is then replaced as a whole, so a failed run "
        "leaves an existing DICT_DIR as it was. "
        "E.g.: asr prepare-dict corpus/lm/librispeech-lexicon.txt data/local/dict",
    )
    p.add_argument("lexicon", metavar="LEXICON",
                   help='CMUdict-style lexicon (WORD PH1 PH2 ..., e.g. librispeech-lexicon.txt)')
    p.add_argument("dict_dir", metavar="DICT_DIR", help='the dict dir to write')
    p.set_defaults(func=_prepare_dict)

    p = subparsers.add_parser(
        "prepare-lang",
        help="build a Kaldi lang dir (phones.txt, words.txt, topo, L.fst, ...) from a dict dir",
        description="Build a Kaldi lang dir from a Kaldi dict dir, as utils/prepare_lang.sh does. "
        "DICT_DIR holds lexicon.txt or lexiconp.txt, silence_phones.txt, nonsilence_phones.txt, "
        "optional_silence.txt and optionally extra_questions.txt. LANG_DIR gets phones.txt, words.txt "
        "(with #0 <s> </s>), topo, L.fst, L_disambig.fst, oov.txt/oov.int and phones/*.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("dict_dir", metavar="DICT_DIR",
                   help='dict dir (lexicon.txt, silence_phones.txt, nonsilence_phones.txt, optional_silence.txt)')
    p.add_argument("lang_dir", metavar="LANG_DIR", help='the lang dir to write')
    p.add_argument("--oov", default="<UNK>", help="OOV word; given the garbage phone if not in the lexicon")
    p.add_argument("--garbage-phone", default="SPN", help="phone of the OOV word when the lexicon has none")
    p.add_argument("--position-dependent-phones", default="true", choices=["true", "false"],
                   help="word-position phone variants _B _E _I _S")
    p.add_argument("--sil-prob", type=float, default=0.5, help="optional silence probability between words")
    p.add_argument("--num-sil-states", type=int, default=5,
                   help="HMM states per silence phone in topo: 1, or 3 to 100 (as Kaldi's gen_topo.pl)")
    p.add_argument("--num-nonsil-states", type=int, default=3,
                   help="HMM states per non-silence phone in topo, left to right: 1 to 100")
    p.add_argument("--share-silence-phones", default="false", choices=["true", "false"],
                   help="one shared tree root (pdfs) for all silence phones")
    p.set_defaults(func=_prepare_lang)


def _prepare_lang(args) -> int:
    from asr.lang.prepare import prepare_lang

    prepare_lang(
        args.dict_dir,
        args.lang_dir,
        oov_word=args.oov,
        position_dependent_phones=args.position_dependent_phones == "true",
        sil_prob=args.sil_prob,
        num_sil_states=args.num_sil_states,
        num_nonsil_states=args.num_nonsil_states,
        share_silence_phones=args.share_silence_phones == "true",
        garbage_phone=args.garbage_phone,
    )
    return 0


def _prepare_dict(args) -> int:
    from asr.lang.dict_dir import dict_dir_from_lexicon

    info = dict_dir_from_lexicon(args.lexicon, args.dict_dir)
    print(f"{args.dict_dir}: {info['words']} words, {info['pronunciations']} pronunciations, "
          f"{info['base_phones']} base phones")
    return 0
