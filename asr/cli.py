"""The ``asr`` command: one subcommand per pipeline stage.

Each stage package that offers commands has a module ``asr/<stage>/commands.py`` with a
function ``register(subparsers)`` that adds its subcommands (``parser.set_defaults(func=...)``;
the function takes the parsed args and returns an exit code or None). Those modules
import only argparse-level things at top level, so ``asr --help`` stays fast; heavy
imports (torch, kaldifst) happen inside the command functions.

Library code raises ``asr.errors.AsrError``; this module turns it into a one-line
message on stderr and exit code 1. No Python traceback reaches a user: an OSError (a path
that cannot be read or written) and a file that is not UTF-8 text are reported in one line
naming the file; anything else is reported in one line as unexpected (a bug or an
unforeseen bad input), with the traceback only under ``-vv``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import math
import sys

from asr import __version__
from asr.errors import AsrError

# Packages searched for a ``commands`` module, in the order their commands are listed.
COMMAND_PACKAGES = (
    "asr.data",
    "asr.data.synth",
    "asr.augment",
    "asr.features",
    "asr.lang",
    "asr.hmm",
    "asr.align",
    "asr.nnet",
    "asr.train",
    "asr.lm",
    "asr.graph",
    "asr.decode",
    "asr.online",
    "asr.score",
    "asr.lattice",
    "asr.report",
    "asr.flatstart",
)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """The commands' help formatter: an option's default is appended to its help unless the
    help already states it (``(default ...``) or there is none (``None``: the help says what
    happens then), so no default is printed twice."""

    def _get_help_string(self, action):
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr",
        description="Hybrid HMM/LSTM speech recognition: Kaldi-style pipeline in Python and PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="asr_command", metavar="COMMAND")
    for pkg in COMMAND_PACKAGES:
        name = f"{pkg}.commands"
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            importlib.import_module(name).register(sub)
    return parser


def number_type(kind: type, minimum: float, inclusive: bool = True):
    """An argparse ``type=`` for options that take a finite ``kind`` (int or float) of at least
    ``minimum`` (above it when not ``inclusive``): anything else is a usage error naming the option."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"
    what = f"{'an integer' if kind is int else 'a number'} {bound}"

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(v) or v < minimum or (v == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


positive_int = number_type(int, 1)  # counts: --nj, --num-leaves, --shortest
non_negative_int = number_type(int, 0)
positive_float = number_type(float, 0, inclusive=False)  # times and scales: --frame-shift, --beam
non_negative_float = number_type(float, 0)


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
        return _error(args.asr_command, str(e))
    except KeyboardInterrupt:
        print(f"asr {args.asr_command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:
        if args.verbose > 1:
            raise
        where = f"{e.filename}: " if e.filename else ""
        return _error(args.asr_command, f"{where}{e.strerror or e}")
    except UnicodeDecodeError as e:
        if args.verbose > 1:
            raise
        return _error(args.asr_command, f"{_non_utf8_file(e, argv if argv is not None else sys.argv[1:])}: not "
                                    f"valid UTF-8 text ({e.reason}, byte {e.object[e.start:e.start + 1].hex()})")
    except Exception as e:  # noqa: BLE001 - the last resort: one line, traceback with -vv
        if args.verbose > 1:
            raise
        return _error(args.asr_command, f"unexpected {type(e).__name__}: {e} (a bug, or a bad input not checked yet: "
                                    "please report it; -vv shows the traceback)")
    return int(rc or 0)


def _error(command: str, message: str) -> int:
    first = " ".join(str(message).split("\n")[0].split()) or "error"
    print(f"asr {command}: error: {first}", file=sys.stderr)
    return 1


_BINARY_SUFFIXES = {".gz", ".ark", ".fst", ".npy", ".safetensors", ".pt", ".mdl", ".wav", ".flac", ".png"}


def _non_utf8_file(e: UnicodeDecodeError, argv: list[str]) -> str:
    """The file that is not UTF-8 text: a text file the failing code had open (innermost frame
    first), else the first file named on the command line (or directly inside a directory named
    there); "an input file" when none is found. Only a file that really is not UTF-8 is named."""
    import io
    from pathlib import Path

    frames, tb = [], e.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    candidates = [Path(v.name) for frame in reversed(frames) for v in frame.f_locals.values()
                  if isinstance(v, io.TextIOWrapper) and isinstance(v.name, str)]
    for arg in argv:
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        p = Path(value)
        try:
            candidates += [p] if p.is_file() else sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else []
        except OSError:
            continue
    for f in candidates:
        if f.suffix in _BINARY_SUFFIXES or f.name == "final.mdl":
            continue
        try:
            f.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return str(f)
        except OSError:
            continue
    return "an input file"


if __name__ == "__main__":
    raise SystemExit(main())
