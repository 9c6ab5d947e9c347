"""Simulated rooms: impulse responses from pyroomacoustics' image-source method.

A room set is a pool of ``count`` shoebox rooms drawn from a generator seeded by the
set's *name* only (``train``, ``test``, ...): every run, job and process gets the same
rooms for the same name, and two names share no room (their rooms are independent draws,
so a test set augmented with ``--room-set test`` is reverberated in rooms the training set
never saw). Each room has random dimensions, a random reverberation time (turned into
wall absorption and image-source order by Sabine's formula, ``pyroomacoustics.inverse_sabine``),
a talker and a microphone at random positions (at least ``WALL_MARGIN`` from every wall,
``distance`` apart).

Example::

    rooms = simulate_room_set("train", 20, 16000)
    rooms[0].rir          # float32 impulse response, direct path normalised to 1
    rooms[0].describe()   # {"name": "train-0", "dims": [...], "rt60": 0.41, ...}
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass

import numpy as np

from asr.errors import ConfigError
from asr.workers import die_with_parent

log = logging.getLogger(__name__)

WALL_MARGIN = 0.5  # metres between a talker / microphone and any wall


@dataclass(frozen=True)
class RoomRanges:
    """Ranges the rooms are drawn from (uniformly)."""

    length: tuple[float, float] = (3.0, 10.0)  # metres
    width: tuple[float, float] = (3.0, 8.0)
    height: tuple[float, float] = (2.4, 4.0)
    rt60: tuple[float, float] = (0.2, 0.7)  # seconds (Sabine target)
    distance: tuple[float, float] = (0.5, 3.5)  # talker to microphone, metres

    def check(self) -> None:
        for name in ("length", "width", "height", "rt60", "distance"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"room {name} range {lo}..{hi} is not positive and increasing")
        if self.rt60[1] > 2.0:
            raise ConfigError(f"reverberation time up to {self.rt60[1]} s: at most 2 s is supported")


@dataclass
class SimulatedRoom:
    name: str
    dims: tuple[float, float, float]
    rt60_target: float
    absorption: float
    max_order: int
    source: tuple[float, float, float]
    mic: tuple[float, float, float]
    rir: np.ndarray  # float32, direct path normalised to 1
    rt60: float  # measured on the RIR (Schroeder integration)

    def describe(self) -> dict:
        r = lambda v: [round(float(a), 2) for a in v]  # noqa: E731
        return {"name": self.name, "dims": r(self.dims), "rt60_target": round(self.rt60_target, 3),
                "rt60": round(self.rt60, 3), "absorption": round(self.absorption, 4), "max_order": self.max_order,
                "source": r(self.source), "mic": r(self.mic),
                "distance": round(float(np.linalg.norm(np.subtract(self.source, self.mic))), 2)}


def set_seed(name: str) -> int:
    """The seed of a room set: a hash of its name (stable across runs and machines)."""
    return zlib.crc32(name.encode("utf-8"))


def simulate_room(name: str, index: int, rate: int, ranges: RoomRanges = RoomRanges()) -> SimulatedRoom:
    """Room ``index`` of set ``name``: drawn from its own seeded generator, so a pool can be
    built in pieces, in any order or process."""
    import pyroomacoustics as pra

    rng = np.random.default_rng([set_seed(name), index])
    dims = np.array([rng.uniform(*ranges.length), rng.uniform(*ranges.width), rng.uniform(*ranges.height)])
    rt60 = float(rng.uniform(*ranges.rt60))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # the room is too large for this short a reverberation time: fully absorbing walls
        absorption, max_order = 1.0, 0
    for _ in range(1000):
        source = np.array([rng.uniform(WALL_MARGIN, d - WALL_MARGIN) for d in dims[:2]] + [rng.uniform(1.2, 1.9)])
        mic = np.array([rng.uniform(WALL_MARGIN, d - WALL_MARGIN) for d in dims[:2]] + [rng.uniform(0.7, 1.5)])
        dist = float(np.linalg.norm(source - mic))
        if ranges.distance[0] <= dist <= ranges.distance[1]:
            break
    else:  # a room too small for the distance range: take the last draw
        log.debug("room %s-%d: no position pair within the distance range", name, index)
    room = pra.ShoeBox(dims.tolist(), fs=rate, materials=pra.Material(float(absorption)), max_order=int(max_order))
    room.add_source(source.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    peak = np.max(np.abs(rir))
    rir = rir / peak if peak > 0 else rir
    return SimulatedRoom(
        name=f"{name}-{index}", dims=tuple(dims.tolist()), rt60_target=rt60, absorption=float(absorption),
        max_order=int(max_order), source=tuple(source.tolist()), mic=tuple(mic.tolist()),
        rir=rir.astype(np.float32), rt60=measure_rt60(rir, rate),
    )


def simulate_room_set(name: str, count: int, rate: int, ranges: RoomRanges = RoomRanges(),
                      nj: int = 1) -> list[SimulatedRoom]:
    """The pool of room set ``name`` (rooms 0 .. count-1), simulated in ``nj`` processes."""
    if count < 1:
        raise ConfigError(f"a room set needs at least one room, got {count}")
    ranges.check()
    args = [(name, i, rate, ranges) for i in range(count)]
    if nj <= 1 or count == 1:
        return [simulate_room(*a) for a in args]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(min(nj, count), mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        return list(pool.map(_simulate, args))


def _simulate(args) -> SimulatedRoom:
    return simulate_room(*args)


def measure_rt60(h: np.ndarray, rate: int, decay_db: float = 20.0) -> float:
    """Reverberation time of an impulse response (or of any decaying tail) from its
    Schroeder energy decay curve: the time from −5 dB to −(5 + ``decay_db``) dB,
    a least-squares line, extrapolated to 60 dB (T20 by default, ISO 3382). NaN if the curve never falls that far."""
    e = np.asarray(h, dtype=np.float64) ** 2
    edc = np.cumsum(e[::-1])[::-1]
    if edc[0] <= 0:
        return float("nan")
    db = 10 * np.log10(np.maximum(edc / edc[0], 1e-300))
    i0 = int(np.argmax(db <= -5.0))
    below = db <= -5.0 - decay_db
    if not below.any():
        return float("nan")
    i1 = int(np.argmax(below))
    if i1 - i0 < 2:
        return float((i1 - i0) / rate * 60.0 / decay_db)
    t = np.arange(i0, i1 + 1) / rate
    slope = np.polyfit(t, db[i0:i1 + 1], 1)[0]  # dB per second (least squares over the range)
    return float(-60.0 / slope) if slope < 0 else float("nan")
