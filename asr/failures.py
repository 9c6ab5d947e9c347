"""Skip-and-count for per-utterance loops (features, alignment import, forced alignment,
decoding): a bad utterance is named with its reason, counted, and the loop goes on; the
run ends with one summary line, and fails only when nothing is left or when more than
``--max-failures`` (a fraction of the utterances) failed.

Example::

    failures = Failures("make-fbank", total=len(utts))
    for utt in utts:
        try:
            ...
        except AsrError as e:
            failures.add(utt, str(e))
    failures.log(log)                                 # one warning per failure (first 20)
    print(failures.summary())                         # "make-fbank: 98 of 100 utterances done, 2 failed (skipped)"
    failures.check(max_failures=0.1, error=FeatureError, where="data/train")
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field

MAX_LOGGED = 20
DEFAULT_MAX_FAILURES = 0.1


@dataclass
class Failures:
    what: str  # the step, as it appears in messages ("make-fbank", "decode", ...)
    total: int = 0  # utterances attempted
    failed: list[tuple[str, str]] = field(default_factory=list)  # (utterance, reason)

    def add(self, utt: str, reason: str) -> None:
        self.failed.append((utt, reason))

    def extend(self, items) -> None:
        self.failed.extend(items)

    @property
    def done(self) -> int:
        return self.total - len(self.failed)

    def log(self, logger: logging.Logger) -> None:
        """One warning per failed utterance (the first ``MAX_LOGGED``), then a count."""
        for utt, reason in self.failed[:MAX_LOGGED]:
            logger.warning("%s: skipped utterance %s: %s", self.what, utt, _one_line(reason, utt))
        if len(self.failed) > MAX_LOGGED:
            logger.warning("%s: ... and %d more failed utterances", self.what, len(self.failed) - MAX_LOGGED)

    def summary(self) -> str:
        return f"{self.what}: {self.done} of {self.total} utterances done, {len(self.failed)} failed (skipped)"

    def check(self, max_failures: float, error: type[Exception], where: str) -> None:
        """Raise ``error`` when nothing succeeded, or when the failed fraction exceeds ``max_failures``."""
        if not self.failed:
            return
        first = f" (first: {self.failed[0][0]}: {_one_line(self.failed[0][1], self.failed[0][0])})"
        if self.done <= 0:
            raise error(f"{where}: all {self.total} utterances failed{first}")
        if len(self.failed) > max_failures * self.total:
            raise error(f"{where}: {len(self.failed)} of {self.total} utterances failed, more than --max-failures "
                        f"{max_failures:g}{first}")


def _one_line(reason: str, utt: str) -> str:
    text = " ".join(str(reason).split())
    prefix = f"utterance {utt}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def add_max_failures_option(parser: argparse.ArgumentParser, default: float = DEFAULT_MAX_FAILURES) -> None:
    parser.add_argument("--max-failures", type=_fraction, default=default, metavar="FRACTION",
                        help="fail (nonzero exit, no finished output) when more than this fraction of the "
                             f"utterances failed; failed utterances are skipped and counted (default {default:g}; "
                             "the run always fails when no utterance is left)")


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}")
    return v
