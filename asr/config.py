"""Configuration files: YAML configs (models, training, decoding) and Kaldi-style option
files (``--name=value`` per line, e.g. ``conf/fbank.conf``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from asr.errors import ConfigError


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Load a YAML mapping; errors name the file."""
    import yaml

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (not a YAML config)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level, got {type(data).__name__}")
    return data


def read_kaldi_options(path: str | os.PathLike) -> dict[str, str]:
    """Read a Kaldi option file: ``--name=value`` per line, ``#`` comments. Keys keep Kaldi's
    dashes (``num-mel-bins``); values stay strings. Boolean flags without ``=`` map to "true"."""
    path = Path(path)
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not an option file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (not a Kaldi option file)") from None
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--"):
            raise ConfigError(f"{path}:{lineno}: expected --name=value, got {raw.strip()!r}")
        name, sep, value = line[2:].partition("=")
        out[name.strip()] = value.strip() if sep else "true"
    return out
