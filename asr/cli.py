"""The ``asr`` command: one subcommand per pipeline stage.

Each stage package that offers commands has a module ``asr/<stage>/commands.py`` with a
function ``register(subparsers)`` that adds its subcommands (``parser.set_defaults(func=...)``;
the function takes the parsed args and returns an exit code or None). Those modules
import only argparse-level things at top level, so ``asr --help`` stays fast; heavy
imports (torch, kaldifst) happen inside the command functions.

Library code raises ``asr.errors.AsrError``; this module turns it into a one-line
message on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from asr import __version__
from asr.errors import AsrError

# Packages searched for a ``commands`` module, in the order their commands are listed.
COMMAND_PACKAGES = (
    "asr.data",
    "asr.data.synth",
    "asr.features",
    "asr.lang",
    "asr.hmm",
    "asr.align",
    "asr.nnet",
    "asr.train",
    "asr.lm",
    "asr.graph",
    "asr.decode",
    "asr.score",
    "asr.lattice",
    "asr.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr",
        description="Hybrid HMM/LSTM speech recognition: Kaldi-style pipeline in Python and PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for pkg in COMMAND_PACKAGES:
        name = f"{pkg}.commands"
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            importlib.import_module(name).register(sub)
    return parser


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args._argv = list(sys.argv[1:] if argv is None else argv)  # e.g. `asr train --workers N` starts `asr ...` again
    setup_logging(args.verbose, args.quiet)
    try:
        rc = args.func(args)
    except AsrError as e:
        print(f"asr {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
