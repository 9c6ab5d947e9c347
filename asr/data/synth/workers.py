"""Worker processes for corpus generation.

espeak-ng keeps global state and is not thread-safe, so each worker process (``spawn``:
nothing inherited from the caller) initialises its own engine. That state also carries
over from one synthesis to the next (pitch flutter phase, frame timing), so the same text
would come out slightly differently depending on what the process spoke before. Each
utterance is therefore synthesised in a ``fork`` of its worker taken right after the
worker's (identical) initialisation: every utterance starts from the same engine state,
whichever worker and job count runs it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

_STATE: dict[str, Any] = {}
_BABBLE_SENTENCES = 16


def init_worker(seed: int, known_prons: dict | None, config) -> None:
    """Per-process state: the known pronunciations and a babble bank (speech of other
    sentences and voices, 16 kHz, unit RMS), identical in every process."""
    _STATE["known"] = known_prons
    _STATE["config"] = config
    _STATE["channel"] = config.channel() if config is not None else None
    _STATE["babble"] = make_babble_bank(seed) if config is not None else []


def make_babble_bank(seed: int) -> list[np.ndarray]:
    import soxr

    from asr.data.synth.espeak import Espeak
    from asr.data.synth.grammar import Grammar
    from asr.data.synth.speakers import all_speakers
    from asr.data.synth.utterance import SAMPLE_RATE

    rng = np.random.default_rng([seed, 5])
    grammar, speakers = Grammar(), all_speakers(seed)
    bank = []
    for _ in range(_BABBLE_SENTENCES):
        words = grammar.sample(rng)
        spk = speakers[int(rng.integers(len(speakers)))]
        syn = Espeak.instance().synthesize(" ".join(words), spk.voice, int(rng.integers(140, 190)),
                                           int(rng.integers(30, 70)), seed=int(rng.integers(1 << 30)))
        x = soxr.resample(syn.samples.astype(np.float64) / 32768.0, syn.sample_rate, SAMPLE_RATE)
        rms = np.sqrt(np.mean(x * x))
        bank.append(x / rms if rms > 0 else x)
    return bank


def pronounce_task(task: tuple[str, str]):
    from asr.data.synth.utterance import context_pronunciations

    word, voice = task
    return context_pronunciations(word, voice)


def render_task(task):
    from asr.data.synth.utterance import render_utterance

    spec, wav_path = task
    cfg = _STATE["config"]
    return in_fresh_fork(render_utterance, spec, wav_path, _STATE["channel"], _STATE["babble"], _STATE["known"],
                         cfg.min_phone_frames)


def in_fresh_fork(fn: Callable, *args):
    """``fn(*args)`` in a forked child (which sees this process's state as it is now and
    changes nothing here); the result comes back pickled through a pipe."""
    from asr.errors import AudioError

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(rfd)
            try:
                data = pickle.dumps((True, fn(*args)))
            except Exception as e:  # noqa: BLE001 - reported in the parent
                data = pickle.dumps((False, f"{type(e).__name__}: {e}"))
            with os.fdopen(wfd, "wb") as f:
                f.write(data)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        raise AudioError("a synthesis worker died without a result")
    ok, result = pickle.loads(data)
    if not ok:
        raise AudioError(f"synthesis failed: {result}")
    return result


def run_tasks(fn: Callable, tasks: Sequence, nj: int, init_args: tuple, what: str) -> list:
    """``[fn(t) for t in tasks]`` over ``nj`` fresh worker processes (even when nj == 1, so
    that the caller's espeak state never matters), results in task order, with a progress bar."""
    from tqdm import tqdm

    chunk = max(1, min(64, len(tasks) // (nj * 8)))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(nj, initializer=init_worker, initargs=init_args) as pool:
        return list(tqdm(pool.imap(fn, tasks, chunksize=chunk), total=len(tasks), desc=what, unit="",
                         leave=False, mininterval=1.0))
