"""CLI: make-lm, prune-lm, lm-ppl, make-g."""

from __future__ import annotations

import argparse
import logging

from asr.cli import non_negative_float

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "make-lm",
        help="estimate an interpolated modified Kneser-Ney n-gram LM (ARPA) from text",
        description="Count n-grams of TEXT (one sentence per line; <s> and </s> are added) and "
        "estimate an interpolated modified Kneser-Ney back-off LM (Chen & Goodman: D1, D2, D3+ "
        "per order), written as an ARPA file. Optionally prune it (SRILM -prune semantics).",
        epilog="e.g.: asr make-lm --order 5 --vocab data/lang/words.txt data/train/lm_text.txt exp/lm/lm5.arpa",
    )
    p.add_argument("--order", type=int, default=5, help="n-gram order (default 5)")
    p.add_argument("--vocab", metavar="WORDS", help="closed vocabulary: a word list or a Kaldi words.txt "
                   "(<eps> and #N are ignored); other words become <unk> (counted and reported)")
    p.add_argument("--prune", type=non_negative_float, metavar="THRESHOLD",
                   help="relative-entropy pruning threshold, as SRILM's ngram -prune (e.g. 1e-8); context "
                   "probabilities P(h) come from the training counts (as SRILM -prune-history-lm)")
    p.add_argument("--target-ngrams", type=int, metavar="K",
                   help="instead of --prune: prune to at most K n-grams (all orders)")
    p.add_argument("--unk", default="<unk>", metavar="SYMBOL",
                   help="symbol for out-of-vocabulary words (default <unk>; e.g. <UNK> to match a LibriSpeech lexicon)")
    p.add_argument("--min-counts", metavar="C2[,C3,...]", type=_int_list, default=[],
                   help="count cutoffs: drop n-grams of order 2, 3, ... seen fewer times (last value repeats)")
    p.add_argument("--chunk-words", type=int, default=20_000_000, metavar="N",
                   help="a TEXT of more words is counted in chunks of about N words, written to disk as sorted runs "
                   "and merged, so memory holds one chunk and the merged n-grams, not the corpus; --min-counts is "
                   "then applied while merging, before estimation (default 20000000)")
    p.add_argument("--tmp-dir", metavar="DIR", help="where the sorted runs go (default: the system's temp dir)")
    p.add_argument("text", metavar="TEXT", help='training text, one sentence per line')
    p.add_argument("arpa_out", metavar="ARPA_OUT", help='the ARPA file to write')
    p.set_defaults(func=_make_lm)

    p = subparsers.add_parser(
        "prune-lm",
        help="prune an ARPA LM by relative entropy (SRILM -prune) or to a target size",
        description="Stolcke relative-entropy pruning of a back-off LM with SRILM's ngram -prune "
        "semantics (unigrams kept; back-off weights recomputed). --target-ngrams K picks the "
        "smallest threshold that leaves at most K n-grams (all orders).",
        epilog="e.g.: asr prune-lm --threshold 1e-7 --history-text data/train/lm_text.txt exp/lm/lm5.arpa "
        "exp/lm/lm5_pruned.arpa",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--threshold", type=non_negative_float, metavar="T", help="prune n-grams whose removal changes perplexity by less than T (relative)")
    g.add_argument("--target-ngrams", type=int, metavar="K", help="prune to at most K n-grams")
    p.add_argument("--minorder", type=int, default=2, help="lowest order that may be pruned (default 2)")
    p.add_argument("--history-text", metavar="TEXT",
                   help="take the context probabilities P(h) from this text's n-gram frequencies (normally the "
                   "training text; the role of SRILM -prune-history-lm) instead of from the model itself. "
                   "Recommended for Kneser-Ney models, whose lower orders are poor estimates of P(h)")
    p.add_argument("arpa_in", metavar="ARPA_IN", help='the ARPA LM to prune')
    p.add_argument("arpa_out", metavar="ARPA_OUT", help='the pruned ARPA file to write')
    p.set_defaults(func=_prune_lm)

    p = subparsers.add_parser(
        "lm-ppl",
        help="perplexity of a text under an ARPA LM (SRILM ngram -ppl output)",
        description="Print SRILM-style perplexity lines: 'file TEXT: N sentences, M words, K OOVs' and "
        "'Z zeroprobs, logprob= X ppl= Y ppl1= W'. </s> is scored; OOV words are counted and excluded "
        "unless --unk maps them to <unk>.",
        epilog="e.g.: asr lm-ppl exp/lm/lm5.arpa data/test/lm_text.txt",
    )
    p.add_argument("--unk", action="store_true", help="score OOV words as <unk> (like SRILM -unk)")
    p.add_argument("arpa", metavar="ARPA", help='the ARPA LM')
    p.add_argument("text", metavar="TEXT", help='the text to score, one sentence per line')
    p.set_defaults(func=_lm_ppl)

    p = subparsers.add_parser(
        "make-g",
        help="compile an ARPA LM into G.fst (kaldilm arpa2fst, words.txt labels, #0 on back-off arcs)",
        description="Kaldi arpa2fst: G.fst (OpenFst binary) with word ids from WORDS_TXT, the disambiguation "
        "symbol on back-off arcs and <s>/</s> as epsilons. N-grams with words not in WORDS_TXT are skipped (reported). "
        "ARPA may be gzipped (.gz); a malformed ARPA is an error naming it, G_FST is then not written.",
        epilog="e.g.: asr make-g exp/lm/lm5_pruned.arpa data/lang/words.txt exp/lm/G.fst",
    )
    p.add_argument("--disambig", default="#0", help="back-off disambiguation symbol (default #0)")
    p.add_argument("arpa", metavar="ARPA", help='the ARPA LM to compile')
    p.add_argument("words_txt", metavar="WORDS_TXT", help="the lang dir's words.txt (G's labels)")
    p.add_argument("g_fst", metavar="G_FST", help='the G.fst to write')
    p.set_defaults(func=_make_g)


def _int_list(s: str) -> list[int]:
    try:
        vals = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("count cutoffs must be >= 1")
    return vals


def _make_lm(args) -> int:
    from asr.lm.arpa import write_arpa
    from asr.lm.build import make_lm

    from asr.io.atomic import check_distinct_output

    check_distinct_output(args.arpa_out, args.text, args.vocab)
    if args.chunk_words < 1000:
        from asr.errors import LMError

        raise LMError(f"--chunk-words must be at least 1000, got {args.chunk_words}")
    lm = make_lm(args.text, args.order, args.vocab, args.prune, args.target_ngrams, args.min_counts, args.unk,
                 chunk_words=args.chunk_words, tmp_dir=args.tmp_dir)
    write_arpa(lm, args.arpa_out)
    logger.info("wrote %s: n-grams per order %s", args.arpa_out, lm.num_ngrams())
    return 0


def _prune_lm(args) -> int:
    from asr.lm.arpa import read_arpa, write_arpa
    from asr.lm.pruning import prune_entropy

    from asr.io.atomic import check_distinct_output

    check_distinct_output(args.arpa_out, args.arpa_in, args.history_text)
    lm = read_arpa(args.arpa_in)
    history = None
    if args.history_text:
        from asr.lm.counting import count_ngrams, read_corpus

        from asr.lm.ngram_lm import BOS, EOS, UNK

        unk = lm.words[lm.unk] if lm.unk >= 0 else UNK
        corpus = read_corpus(args.history_text, lm.words + [w for w in (BOS, EOS, unk) if w not in lm.vocab], unk)
        history = count_ngrams(corpus, max(1, lm.order - 1))
    pruned, threshold = prune_entropy(lm, args.threshold, args.target_ngrams, args.minorder, history)
    write_arpa(pruned, args.arpa_out)
    logger.info("wrote %s: threshold %.6g, n-grams per order %s -> %s", args.arpa_out, threshold,
                lm.num_ngrams(), pruned.num_ngrams())
    return 0


def _lm_ppl(args) -> int:
    from asr.lm.arpa import read_arpa
    from asr.lm.perplexity import perplexity

    lm = read_arpa(args.arpa)
    print(perplexity(lm, args.text, map_unk=args.unk).srilm_lines())
    return 0


def _make_g(args) -> int:
    from asr.lm.grammar_fst import make_grammar_fst

    info = make_grammar_fst(args.arpa, args.words_txt, args.g_fst, args.disambig)
    logger.info("wrote %s (%d LM words, %d not in %s)", args.g_fst, info["arpa_words"], info["missing_words"], args.words_txt)
    return 0
