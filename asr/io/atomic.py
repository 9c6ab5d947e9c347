"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted run leaves the old file (or
none) in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it onto ``path``.

    ``mode`` is "w" (text) or "wb" (binary). On an exception the temporary file is removed
    and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replaces: tuple[str, ...] = ()) -> Iterator[Path]:
    """Build a whole directory at once: yield a fresh temporary dir beside ``path``; on
    success it replaces ``path`` (an older ``path`` is moved aside, then removed); on an
    exception it is removed and ``path`` is left as it was. A reader never sees a
    half-written product dir under ``path``.

    ``path`` may contain inputs of the build (e.g. packing a model dir in place): they stay
    readable until the build succeeded. ``replaces``: files of which an existing non-empty
    ``path`` must hold at least one to be replaced (e.g. ``("utt2spk", "wav.scp")`` for a
    data dir), so that a mistyped output (``data`` for ``data/train``, a corpus folder) is a
    ConfigError, not deleted."""
    import shutil

    path = Path(path)
    check_replaceable(path, replaces)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "d")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_replaceable(path: str | os.PathLike, replaces: tuple[str, ...]) -> None:
    """ConfigError when ``path`` is a file, or a non-empty directory holding none of the files
    ``replaces`` names (not an earlier output of the command about to replace it)."""
    from asr.errors import ConfigError

    path = Path(path)
    if not replaces:
        return
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        raise ConfigError(f"{path}: exists and is not a directory: not replaced (it would be deleted)")
    if not path.is_dir() or path.is_symlink() or not any(path.iterdir()):
        return
    if not any((path / name).exists() for name in replaces):
        raise ConfigError(f"{path}: exists and holds none of {', '.join(replaces)}: not replaced (it would be "
                          f"deleted); give a new or empty directory, or remove it yourself")


def check_distinct_output(output: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """ConfigError when ``output`` names the same file as one of ``inputs`` (writing it would
    destroy an input)."""
    from asr.errors import ConfigError

    out = Path(output).resolve()
    for i in inputs:
        if i is not None and Path(i).resolve() == out:
            raise ConfigError(f"{output}: the output would overwrite the input {i}")
