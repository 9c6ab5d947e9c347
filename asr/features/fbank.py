"""Kaldi-compatible log mel filterbanks through kaldi-native-fbank.

``FbankComputer(config)`` reads a Kaldi option file (``conf/fbank.conf``: ``--num-mel-bins=40``
...) and computes features exactly as Kaldi's ``compute-fbank-feats`` does on the same
samples. Samples are given in Kaldi's int16 scale (a 16-bit wav read as integers, i.e.
float samples in [-1, 1] times 32768), which is what makes the numbers equal Kaldi's.

Defaults when no file (or an option is absent from it) are the toolkit's, identical to the
shipped ``conf/fbank.conf``: 40 mel bins, 25 ms / 10 ms, 16 kHz, snip-edges, and **dither 0**
(Kaldi's own default is dither 1.0, which adds random noise and makes features
non-reproducible; set ``--dither=1`` in the config to get Kaldi's behaviour).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from asr.config import read_kaldi_options
from asr.errors import ConfigError, FeatureError

# Kaldi option name -> (section, knf attribute, type). section: "frame", "mel" or "" (top level).
_OPTIONS: dict[str, tuple[str, str, type]] = {
    "sample-frequency": ("frame", "samp_freq", float),
    "frame-shift": ("frame", "frame_shift_ms", float),
    "frame-length": ("frame", "frame_length_ms", float),
    "dither": ("frame", "dither", float),
    "preemphasis-coefficient": ("frame", "preemph_coeff", float),
    "remove-dc-offset": ("frame", "remove_dc_offset", bool),
    "window-type": ("frame", "window_type", str),
    "round-to-power-of-two": ("frame", "round_to_power_of_two", bool),
    "blackman-coeff": ("frame", "blackman_coeff", float),
    "snip-edges": ("frame", "snip_edges", bool),
    "num-mel-bins": ("mel", "num_bins", int),
    "low-freq": ("mel", "low_freq", float),
    "high-freq": ("mel", "high_freq", float),
    "vtln-low": ("mel", "vtln_low", float),
    "vtln-high": ("mel", "vtln_high", float),
    "debug-mel": ("mel", "debug_mel", bool),
    "htk-mode": ("mel", "htk_mode", bool),
    "use-energy": ("", "use_energy", bool),
    "energy-floor": ("", "energy_floor", float),
    "raw-energy": ("", "raw_energy", bool),
    "htk-compat": ("", "htk_compat", bool),
    "use-log-fbank": ("", "use_log_fbank", bool),
    "use-power": ("", "use_power", bool),
}

# The toolkit's defaults (= conf/fbank.conf). Every other option keeps Kaldi's default.
DEFAULT_OPTIONS: dict[str, str] = {
    "num-mel-bins": "40",
    "frame-length": "25",
    "frame-shift": "10",
    "dither": "0",
    "sample-frequency": "16000",
    "snip-edges": "true",
}


def _parse_value(name: str, value: str, typ: type, source: str) -> Any:
    try:
        if typ is bool:
            v = value.lower()
            if v in ("true", "1", "yes"):
                return True
            if v in ("false", "0", "no"):
                return False
            raise ValueError(value)
        return typ(value)
    except ValueError:
        raise ConfigError(f"{source}: option --{name}: invalid value {value!r}") from None


class FbankComputer:
    """Log mel filterbank extractor with Kaldi options.

    ``config``: path to a Kaldi option file, or None for the toolkit defaults.
    ``overrides``: option name -> value (Kaldi names, e.g. ``{"dither": "0"}``), applied last.
    """

    def __init__(self, config: str | os.PathLike | None = None, overrides: dict[str, str] | None = None):
        import kaldi_native_fbank as knf

        options = dict(DEFAULT_OPTIONS)  # options not set here keep Kaldi's defaults (knf = Kaldi)
        source = "default fbank options"
        if config is not None:
            source = str(config)
            options.update(read_kaldi_options(config))
        if overrides:
            options.update({k: str(v) for k, v in overrides.items()})
        opts = knf.FbankOptions()
        for name, value in options.items():
            if name not in _OPTIONS:
                raise ConfigError(f"{source}: unknown fbank option --{name} (known: {', '.join(sorted(_OPTIONS))})")
            section, attr, typ = _OPTIONS[name]
            target = {"frame": opts.frame_opts, "mel": opts.mel_opts, "": opts}[section]
            setattr(target, attr, _parse_value(name, value, typ, source))
        if opts.frame_opts.window_type not in ("hamming", "hanning", "povey", "rectangular", "sine", "blackman"):
            raise ConfigError(f"{source}: unknown --window-type {opts.frame_opts.window_type!r}")
        self.options: dict[str, str] = {k: options[k] for k in sorted(options)}
        self._opts = opts
        self._knf = knf
        self.sample_rate = int(opts.frame_opts.samp_freq)
        self.dim = int(opts.mel_opts.num_bins) + (1 if opts.use_energy else 0)
        self.frame_length = int(round(opts.frame_opts.samp_freq * opts.frame_opts.frame_length_ms / 1000))
        self.frame_shift = int(round(opts.frame_opts.samp_freq * opts.frame_opts.frame_shift_ms / 1000))
        self.snip_edges = bool(opts.frame_opts.snip_edges)

    @property
    def all_options(self) -> dict[str, str]:
        """Every option (Kaldi names, sorted) with its effective value, Kaldi defaults included:
        what a model dir records so that decoding computes exactly the training features."""
        out = {}
        for name, (section, attr, typ) in sorted(_OPTIONS.items()):
            target = {"frame": self._opts.frame_opts, "mel": self._opts.mel_opts, "": self._opts}[section]
            value = getattr(target, attr)
            out[name] = ("true" if value else "false") if typ is bool else (f"{value:.7g}" if typ is float else str(value))
        return out

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "FbankComputer":
        """Build from an option dict as stored in ``.options`` (e.g. from a model.yaml)."""
        return cls(None, overrides=options)

    def num_frames(self, num_samples: int) -> int:
        """Kaldi's frame count for ``num_samples`` samples (feature-window.cc NumFrames)."""
        if self.snip_edges:
            if num_samples < self.frame_length:
                return 0
            return 1 + (num_samples - self.frame_length) // self.frame_shift
        return (num_samples + self.frame_shift // 2) // self.frame_shift

    def compute(self, samples: np.ndarray) -> np.ndarray:
        """Features of one utterance: ``samples`` (1-D, int16 scale, at ``sample_rate``) ->
        float32 ``[T, dim]``; T = ``num_frames(len(samples))`` (0 rows when too short)."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise FeatureError(f"fbank: expected 1-D samples, got shape {samples.shape}")
        fb = self._knf.OnlineFbank(self._opts)
        fb.accept_waveform(self.sample_rate, samples)
        fb.input_finished()
        n = fb.num_frames_ready
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # knf exposes frames one by one (no batch accessor); np.stack copies them out.
        return np.stack([fb.get_frame(i) for i in range(n)])

    def write_config(self, path: str | os.PathLike, every_option: bool = False) -> None:
        """Write the options as a Kaldi option file: those set (default) or, with
        ``every_option``, every option with its effective value (``all_options``)."""
        from asr.io.atomic import atomic_write_text

        options = self.all_options if every_option else self.options
        atomic_write_text(Path(path), "".join(f"--{k}={v}\n" for k, v in options.items()))
