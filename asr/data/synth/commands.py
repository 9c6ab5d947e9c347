"""``asr synth-corpus``: the embedded default corpus (synthetic speech with exact phone times)."""

from __future__ import annotations

from asr.cli import DefaultsHelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth-corpus",
        help="generate the synthetic default corpus (espeak-ng speech, noise, exact phone CTMs)",
        description=(
            "Generate a Resource-Management-like corpus: prompts from a built-in grammar (about 1,100 words), "
            "spoken by espeak-ng voices (accent x voice variant; train/dev/test speakers disjoint) with random "
            "rate and pitch (some words faster or slower, pauses between some words), through a noisy channel "
            "(white/pink/brown/babble noise at a random SNR, random gain, sometimes reverberation), 16 kHz. "
            "test_unseen is spoken by voice variants that no other split uses. "
            "Writes OUT_DIR/{train,dev,test,test_unseen}/ (wav/, wav.scp, text, "
            "utt2spk, spk2utt, utt2dur, phones.ctm, words.ctm: 'utt 1 start dur label' on the 10 ms grid, "
            "covering each utterance, SIL for silence), OUT_DIR/local/lm_text.txt (LM sentences; no dev/test "
            "prompt among them), OUT_DIR/local/dict/ (Kaldi dict dir with lexiconp.txt from espeak's "
            "pronunciations in context), local/excluded.txt and local/corpus.json (sizes; written last). "
            "The same seed and sizes give a bit-identical corpus; an existing complete corpus with the same "
            "settings is kept (use --force to regenerate)."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output directory (e.g. data)")
    p.add_argument("--quick", action="store_true",
                   help="small corpus for CI: train 10 min, dev, test and test_unseen 3 min each, 20k LM sentences "
                        "(explicit size options below still override)")
    p.add_argument("--nj", type=int, default=2, help="parallel worker processes")
    p.add_argument("--seed", type=int, default=1, help="random seed of everything")
    p.add_argument("--train-minutes", type=float, default=None, help="train size (default 195, quick 10)")
    p.add_argument("--dev-minutes", type=float, default=None, help="dev size (default 15, quick 3)")
    p.add_argument("--test-minutes", type=float, default=None, help="test size (default 25, quick 3)")
    p.add_argument("--unseen-minutes", type=float, default=None,
                   help="size of test_unseen, the held-out voice variants (default 20, quick 3)")
    p.add_argument("--lm-sentences", type=int, default=None, help="LM text sentences (default 200000, quick 20000)")
    p.add_argument("--train-speakers", type=int, default=120, help="number of training speakers")
    p.add_argument("--dev-speakers", type=int, default=8, help="number of dev speakers")
    p.add_argument("--test-speakers", type=int, default=10, help="number of test speakers")
    p.add_argument("--unseen-speakers", type=int, default=8,
                   help="number of test_unseen speakers (held-out voice variants, at most 64)")
    p.add_argument("--rate", type=float, nargs=2, default=(110.0, 240.0), metavar=("MIN", "MAX"),
                   help="range of the speaking rate in words per minute")
    p.add_argument("--word-rate-prob", type=float, default=0.25,
                   help="share of words spoken at 75-135%% of the utterance's rate")
    p.add_argument("--pause-prob", type=float, default=0.08,
                   help="share of word boundaries with a pause of 80-400 ms")
    p.add_argument("--snr", type=float, nargs=2, default=(5.0, 30.0), metavar=("MIN", "MAX"),
                   help="range of the signal-to-noise ratio in dB")
    p.add_argument("--reverb-prob", type=float, default=0.2, help="fraction of utterances with room reverberation")
    p.add_argument("--min-phone-frames", type=int, default=3,
                   help="minimum frames (10 ms) of a speech phone in the CTM (3 fits a 3-state HMM)")
    p.add_argument("--force", action="store_true", help="regenerate even if a complete corpus exists")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import json
    import logging

    from asr.data.synth.corpus import QUICK, CorpusConfig, build_corpus
    from asr.errors import ConfigError

    if args.nj < 1:
        raise ConfigError("--nj must be at least 1")
    from pathlib import Path

    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise ConfigError(f"{args.out_dir}: exists and is not a directory")
    sizes = dict(QUICK) if args.quick else {}
    for name in ("train_minutes", "dev_minutes", "test_minutes", "unseen_minutes", "lm_sentences"):
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    config = CorpusConfig(
        seed=args.seed, train_speakers=args.train_speakers, dev_speakers=args.dev_speakers,
        test_speakers=args.test_speakers, unseen_speakers=args.unseen_speakers, rate_wpm=tuple(args.rate),
        word_rate_prob=args.word_rate_prob, pause_prob=args.pause_prob,
        snr_db=tuple(args.snr), reverb_prob=args.reverb_prob,
        min_phone_frames=args.min_phone_frames, **sizes,
    )
    summary = build_corpus(args.out_dir, config, nj=args.nj, force=args.force)
    brief = {k: v for k, v in summary.items() if k != "config"}
    for split in brief.get("splits", {}).values():
        split.pop("speakers", None)
    logging.getLogger(__name__).info("corpus summary: %s", json.dumps(brief))
    return 0
