"""Worker processes for corpus generation.

espeak-ng keeps global state and is not thread-safe, so work is spread over processes
(``spawn``), each with its own synthesis server (``asr.data.synth.zygote``: every
utterance from a freshly initialised engine, so the corpus does not depend on which
worker ran what, or on the number of jobs).
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

_STATE: dict[str, Any] = {}
_BABBLE_SENTENCES = 16


def init_worker(seed: int, known_prons: dict | None, config) -> None:
    """Per-process state: the known pronunciations and a babble bank (speech of other
    sentences and voices, 16 kHz, unit RMS), identical in every process."""
    from asr.data.synth.zygote import FreshEspeak

    old = _STATE.get("engine")
    if old is not None:
        old.close()
    _STATE["engine"] = FreshEspeak()
    _STATE["known"] = known_prons
    _STATE["config"] = config
    _STATE["channel"] = config.channel()
    _STATE["babble"] = make_babble_bank(seed, _STATE["engine"])


def close_worker() -> None:
    engine = _STATE.pop("engine", None)
    if engine is not None:
        engine.close()


def make_babble_bank(seed: int, engine) -> list[np.ndarray]:
    import soxr

    from asr.data.synth.grammar import Grammar
    from asr.data.synth.speakers import all_speakers
    from asr.data.synth.utterance import SAMPLE_RATE

    rng = np.random.default_rng([seed, 5])
    grammar, speakers = Grammar(), all_speakers(seed)
    bank = []
    for _ in range(_BABBLE_SENTENCES):
        words = grammar.sample(rng)
        spk = speakers[int(rng.integers(len(speakers)))]
        syn = engine.synthesize(" ".join(words), spk.voice, int(rng.integers(140, 190)),
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
    return render_utterance(_STATE["engine"], spec, wav_path, _STATE["channel"], _STATE["babble"], _STATE["known"],
                            cfg.min_phone_frames)


def run_tasks(fn: Callable, tasks: Sequence, nj: int, init_args: tuple, what: str) -> list:
    """``[fn(t) for t in tasks]`` over ``nj`` worker processes (in this process when nj == 1),
    results in task order, with a progress bar."""
    from tqdm import tqdm

    if nj <= 1:
        init_worker(*init_args)
        try:
            return [fn(t) for t in tqdm(tasks, desc=what, unit="", leave=False, mininterval=1.0)]
        finally:
            close_worker()
    chunk = max(1, min(64, len(tasks) // (nj * 8)))
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(nj, initializer=_init_pool_worker, initargs=init_args)
    try:
        results = list(tqdm(pool.imap(fn, tasks, chunksize=chunk), total=len(tasks), desc=what, unit="",
                            leave=False, mininterval=1.0))
        pool.close()  # let workers exit normally so their synthesis servers are shut down
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return results


def _init_pool_worker(*args) -> None:
    from multiprocessing.util import Finalize

    init_worker(*args)
    Finalize(None, close_worker, exitpriority=10)
