"""Downloading OpenSLR resources (``asr download-openslr``): LibriSpeech (12), its LMs and
lexicon (11), mini_librispeech (31).

``download(resource, names, dest)`` fetches ``BASE/RESOURCE/NAME`` for each name into
``dest``:

- resumable: bytes go to ``NAME.part``; an interrupted transfer (a dropped connection, or
  a ``.part`` left by an earlier run) continues with an HTTP ``Range`` request; a server that
  ignores ``Range`` makes it start over;
- verified: the size must equal the size OpenSLR publishes (the table below, from Kaldi's
  download scripts) and, where known, the SHA-256 (LibriSpeech parts: the values torchaudio
  publishes); ``--checksums FILE`` (``sha256sum`` output lines) adds or overrides values,
  e.g. for a mirror. Otherwise the transfer must match the server's Content-Length. A
  mismatch removes the file and is an error naming it; only a verified file gets its name;
- skipped when present: a file already there with the expected size (or of unknown size)
  is kept; an archive whose corpus part is already extracted (``DEST/LibriSpeech/PART``, as
  Kaldi's ``download_and_untar.sh`` checks) is not fetched again; a part without its
  ``.complete`` mark whose archive is still in ``dest`` (an interrupted extraction) is
  extracted again;
- archives (``.tar.gz``) are extracted into ``dest`` (path-safe, ``tarfile`` ``data``
  filter; read to the end of the compressed stream, so a damaged archive fails its CRC check
  and nothing of it is kept) and marked ``DEST/LibriSpeech/PART/.complete``;
  ``remove_archive`` deletes them after.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from asr.errors import AsrError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.openslr.org/resources"
_CHUNK = 1 << 20


class DownloadError(AsrError):
    """A file could not be fetched or did not verify."""


@dataclass(frozen=True)
class Expected:
    size: int | None = None
    sha256: str | None = None


# Sizes from Kaldi's egs/librispeech/s5/local/download_{and_untar,lm}.sh and
# egs/mini_librispeech/s5/local/download_and_untar.sh; SHA-256 of the parts from torchaudio.
KNOWN: dict[tuple[str, str], Expected] = {
    ("12", "dev-clean.tar.gz"): Expected(337926286, "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3"),
    ("12", "dev-other.tar.gz"): Expected(314305928, "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365"),
    ("12", "test-clean.tar.gz"): Expected(346663984, "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"),
    ("12", "test-other.tar.gz"): Expected(328757843, "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29"),
    ("12", "train-clean-100.tar.gz"): Expected(
        6387309499, "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2"),
    ("12", "train-clean-360.tar.gz"): Expected(
        23049477885, "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf"),
    ("12", "train-other-500.tar.gz"): Expected(
        30593501606, "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2"),
    ("11", "3-gram.arpa.gz"): Expected(759636181),
    ("11", "3-gram.pruned.1e-7.arpa.gz"): Expected(34094057),
    ("11", "3-gram.pruned.3e-7.arpa.gz"): Expected(13654242),
    ("11", "4-gram.arpa.gz"): Expected(1355172078),
    ("11", "4-gram.pruned.1e-7.arpa.gz"): Expected(32174144),
    ("11", "4-gram.pruned.3e-7.arpa.gz"): Expected(11970993),
    ("11", "librispeech-vocab.txt"): Expected(1737588),
    ("11", "librispeech-lexicon.txt"): Expected(5627646),
    ("31", "dev-clean-2.tar.gz"): Expected(126046265),
    ("31", "train-clean-5.tar.gz"): Expected(332954390),
}


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """``sha256sum`` output (``HEX  NAME`` or ``HEX *NAME``) → name → hex digest."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = re.match(r"^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$", line)
            if not m:
                raise DownloadError(f"{path}:{lineno}: expected 'SHA256  NAME'")
            out[Path(m.group(2)).name] = m.group(1).lower()
    return out


def download(resource: str, names: list[str], dest: str | os.PathLike, base_url: str = DEFAULT_BASE_URL,
             checksums: dict[str, str] | None = None, extract: bool = True, remove_archive: bool = False,
             retries: int = 5, timeout: float = 60.0) -> list[str]:
    """Fetch, verify and (archives) extract each name; returns one status line per name."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise DownloadError(f"{name!r} is not a file name of an OpenSLR resource")
        exp = KNOWN.get((resource, name), Expected())
        if checksums and name in checksums:
            exp = Expected(None, checksums[name])  # the digest decides (the size may be a mirror's)
        part = _part_dir(dest, name)
        target = dest / name
        if part is not None and part.is_dir():
            if (part / ".complete").exists():
                lines.append(f"{name}: {part} present; skipped")
                continue
            if not (extract and target.exists()):
                lines.append(f"{name}: {part} present (not extracted by us: not verified); skipped")
                continue
            # the archive is here but its part is not marked complete: an extraction was interrupted
            log.warning("%s: %s is not marked complete: extracting %s again", name, part, target)
        if target.exists() and (exp.size is None or target.stat().st_size == exp.size):
            lines.append(f"{name}: present; skipped")
        else:
            if target.exists():
                log.warning("%s: size %d, expected %d: downloading again", target, target.stat().st_size, exp.size)
                target.unlink()
            url = f"{base_url.rstrip('/')}/{resource}/{name}"
            nbytes = _fetch(url, target, exp, retries, timeout)
            lines.append(f"{name}: downloaded {nbytes} bytes, verified"
                         + (" (sha256)" if exp.sha256 else " (size)" if exp.size else " (Content-Length)"))
        if extract and name.endswith((".tar.gz", ".tgz")):
            _extract(target, dest)
            lines[-1] += f"; extracted into {dest}"
            if remove_archive:
                target.unlink()
    return lines


def _part_dir(dest: Path, name: str) -> Path | None:
    """``DEST/LibriSpeech/PART`` for a LibriSpeech part archive, else None."""
    m = re.fullmatch(r"((?:dev|test|train)-(?:clean|other)(?:-\d+)?)\.tar\.gz", name)
    return dest / "LibriSpeech" / m.group(1) if m else None


def _fetch(url: str, target: Path, exp: Expected, retries: int, timeout: float) -> int:
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    total = exp.size
    attempt = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=None, leave=False) as bar:
        while True:
            have = part.stat().st_size if part.exists() else 0
            if total is not None and have > total:
                part.unlink()
                have = 0
            if total is not None and have == total:
                break
            req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    if have and resp.status != 206:
                        log.info("%s: the server ignores Range; starting over", url)
                        have = 0
                    length = resp.headers.get("Content-Length")
                    if length is not None and total is None:
                        total = have + int(length)
                        bar.total = total
                    bar.n = have
                    bar.refresh()
                    with open(part, "ab" if have else "wb") as f:
                        while True:
                            block = resp.read(_CHUNK)
                            if not block:
                                break
                            f.write(block)
                            bar.update(len(block))
                if total is None or part.stat().st_size >= total:
                    break
                raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")
            except urllib.error.HTTPError as e:
                if e.code == 416 and total is not None and have >= total:
                    break
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(f"{url}: {getattr(e, 'reason', e)} (gave up after {retries} retries; "
                                        f"run again to resume from {part})") from None
                got = part.stat().st_size if part.exists() else 0
                log.warning("%s: %s; resuming at byte %d (retry %d of %d)", url, getattr(e, "reason", e), got,
                            attempt, retries)
                time.sleep(min(2 ** (attempt - 1), 30))
    size = part.stat().st_size
    if total is not None and size != total:
        part.unlink()
        raise DownloadError(f"{target}: {size} bytes, expected {total}; removed")
    if exp.sha256 is not None:
        digest = _sha256(part)
        if digest != exp.sha256:
            part.unlink()
            raise DownloadError(f"{target}: SHA-256 {digest} does not match the expected {exp.sha256}; removed")
    os.replace(part, target)
    return size


def _extract(archive: Path, dest: Path) -> None:
    """Extract into a scratch dir beside the corpus, then move the files into place (over
    those of an interrupted earlier extraction) and mark the LibriSpeech parts complete."""
    tmp = dest / f".{archive.name}.extracting"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            parts = sorted({Path(m.name).parts[1] for m in members
                            if len(Path(m.name).parts) > 2 and Path(m.name).parts[0] == "LibriSpeech"})
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python without extraction filters: refuse unsafe names ourselves
                for m in members:
                    if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                        raise tarfile.TarError(f"unsafe member {m.name!r}")
                tar.extractall(tmp)
            # tar stops at its end-of-archive blocks, before the end of the compressed stream,
            # where gzip checks its CRC: read on to it, or a damaged archive passes unnoticed
            while tar.fileobj.read(_CHUNK):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot extract: a damaged archive ({' '.join(str(e).split())}); nothing extracted: delete it "
                            "and run again to download it afresh") from None
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot extract: {e}") from None
    # move the extracted tree into place, then mark the parts complete
    for src in sorted(tmp.rglob("*"), key=lambda p: len(p.parts)):
        rel = src.relative_to(tmp)
        dst = dest / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            os.replace(src, dst)
    shutil.rmtree(tmp, ignore_errors=True)
    for p in parts:
        (dest / "LibriSpeech" / p / ".complete").touch()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()
