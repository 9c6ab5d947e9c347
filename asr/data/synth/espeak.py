"""libespeak-ng through ctypes (library and data from the ``espeakng-loader`` wheel).

Synchronous synthesis with phoneme events: every phoneme event carries the espeak
phoneme mnemonic and the absolute sample index where its sound starts; word events carry
the character position of the word in the input text. The library keeps global state
and is not thread-safe: use one ``Espeak`` per process (``Espeak.instance()``). Its
state also carries over from one synthesis to the next (pitch-flutter and waveform
phase, sample counters), so repeatable audio needs a fresh engine per text:
``asr.data.synth.zygote``. This module imports nothing heavy (no numpy), which keeps
that fork server small.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

from asr.errors import AudioError

log = logging.getLogger(__name__)

# espeak_AUDIO_OUTPUT, options and event types (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
# espeak_PARAMETER
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Synthesis:
    """One synthesised text: ``pcm`` (int16 native-endian bytes) at ``sample_rate`` and its events.

    ``events``: in the order espeak emitted them, ``("P", start_sample, mnemonic)`` for a
    phoneme (mnemonics include stress marks, and pauses such as ``_`` or ``_:``) and
    ``("W", start_sample, text_position)`` for a word (1-based character offset of the
    word in the text). A phoneme belongs to the word announced last before it.
    """

    pcm: bytes
    sample_rate: int
    events: list[tuple[str, int, object]]

    @property
    def samples(self):
        """The samples as an int16 numpy array."""
        import numpy as np

        return np.frombuffer(self.pcm, dtype=np.int16)


class Espeak:
    """A process-wide espeak-ng engine in synchronous mode with phoneme events."""

    _instance: "Espeak | None" = None

    @classmethod
    def instance(cls) -> "Espeak":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - dependency declared in pyproject
            raise AudioError("espeakng-loader is not installed (pip install espeakng-loader)") from e
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise AudioError(f"espeak-ng failed to initialise (data path {data.decode()})")
        self.sample_rate = rate
        self._chunks: list[bytes] = []
        self._events: list[tuple[str, int, object]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, 2 * num_samples))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                self._events.append(("P", int(ev.sample), ev.id.string.decode("utf-8", "replace")))
            elif ev.type == _EVENT_WORD:
                self._events.append(("W", int(ev.sample), int(ev.text_position)))
            i += 1
        return 0

    def _set_voice(self, voice: str) -> None:
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise AudioError(f"espeak-ng has no voice {voice!r}")
            self._voice = voice

    def phonemize(self, text: str, voice: str) -> list[list[str]]:
        """espeak's phoneme mnemonics for ``text`` without synthesis, one list per word
        group as espeak groups them (it may join a function word to its neighbour)."""
        self._set_voice(voice)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        groups: list[list[str]] = []
        while ptr.value:
            res = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, ord("|") << 8)
            if res is None:
                break
            groups.extend([m for m in g.split("|") if m] for g in res.decode("utf-8", "replace").split())
        return groups

    def synthesize(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   seed: int = 0, ssml: bool = False) -> Synthesis:
        """Speak ``text`` with ``voice`` (e.g. ``en-us+m3``); rate in words per minute,
        pitch and range 0..100; ``seed`` seeds espeak's noise generator (which espeak
        otherwise seeds from the clock); ``ssml``: the text is SSML (``<speak>...``; word
        events then give positions in the SSML text)."""
        self._set_voice(voice)
        self._lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        for param, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (VOLUME, 100), (WORDGAP, 0)):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        buf = text.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        err = self._lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, flags, None, None)
        if err != 0:
            raise AudioError(f"espeak-ng synthesis failed (error {err}) for {text!r}")
        return Synthesis(b"".join(self._chunks), self.sample_rate, self._events)
