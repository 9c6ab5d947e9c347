"""The decode dir: what ``asr decode`` (and ``asr lmrescore``) write.

Files::

    decode.json     written last (marks the dir complete): options, timings, counts, and
                    ``inputs`` (SHA-256 of what it was decoded from: the model dir's model.yaml,
                    the graph's graph.json or HCLG.fst, feats.scp, cmvn.scp; the options),
                    ``words_sha256`` (the graph's words.txt: the lattices' word ids),
                    ``lattice_jobs`` (number of lat.<job>.gz files, 0 without lattices),
                    ``lm_sha256`` (the LM the graph was built from, from its graph.json; after
                    ``asr lmrescore`` at scale 1 the new LM's: what ``--old-lm`` must be)
    hyp.txt         1-best (asr decode; asr score-lattices writes it for a rescored dir)
    lat.<job>.gz    word lattices, job = 1..lattice_jobs
    wer             when the data dir has a text (decode.json's ``text_sha256`` records which:
                    an up-to-date decode whose text changed is rescored, not decoded again)
    words.txt       (lmrescore output) the word table of the lattices

A whole decode dir is written at once (``asr.io.atomic.atomic_dir``), so a failed run never
leaves a decode.json beside stale lattices. ``DecodeDir.load`` checks completeness;
``check_words(path)`` refuses a word table other than the graph's the lattices were made with.

Example::

    >>> d = DecodeDir.load("exp/lstmp/decode_test")
    >>> d.lattice_files()                 # [.../lat.1.gz, .../lat.2.gz]
    >>> d.check_words("exp/graph/words.txt")
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.errors import DecodeError
from asr.io.fingerprint import feature_fingerprints, file_hash, first_difference

log = logging.getLogger(__name__)

INFO = "decode.json"
HYP = "hyp.txt"
LM_KEY = "lm_sha256"  # SHA-256 of the LM whose scores the lattices' graph costs hold


@dataclass
class DecodeDir:
    path: Path
    info: dict[str, Any]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DecodeDir":
        path = Path(path)
        if not (path / INFO).is_file():
            raise DecodeError(f"{path}: not a finished decode dir (no {INFO})")
        try:
            info = json.loads((path / INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DecodeError(f"{path / INFO}: unreadable ({type(e).__name__})") from None
        if not isinstance(info, dict):
            raise DecodeError(f"{path / INFO}: not a JSON object")
        d = cls(path, info)
        jobs = info.get("lattice_jobs")
        if isinstance(jobs, int):
            for j in range(1, jobs + 1):
                if not (path / f"lat.{j}.gz").is_file():
                    raise DecodeError(f"{path}: incomplete decode dir: missing lat.{j}.gz")
        if not (path / HYP).is_file() and not list(path.glob("lat.*.gz")):
            raise DecodeError(f"{path}: incomplete decode dir: neither {HYP} nor lattices")
        return d

    @classmethod
    def load_lattices(cls, path: str | os.PathLike) -> "DecodeDir":
        """A decode dir whose lattices are to be read: ours (checked as ``load``), or lattices
        without decode.json (e.g. Kaldi's decode dirs), taken as they are."""
        path = Path(path)
        if (path / INFO).exists():
            return cls.load(path)
        d = cls(path, {})
        d.lattice_files()
        log.info("%s has no %s (not made by asr decode): its lattices are used as they are", path, INFO)
        return d

    def lattice_files(self) -> list[Path]:
        from asr.lattice.lattice_scoring import lattice_files

        return lattice_files(self.path)

    def check_words(self, words: str | os.PathLike) -> None:
        """Refuse a word table that is not the one the lattices were made with."""
        recorded = self.info.get("words_sha256")
        if recorded is None:
            log.info("%s records no word-table fingerprint (made before they were recorded): %s not checked",
                     self.path, words)
            return
        if file_hash(words) != recorded:
            raise DecodeError(f"{words} is not the word table the lattices of {self.path} were made with "
                              f"({self.path / INFO} records words.txt {recorded[:12]}; the graph's words.txt)")


    def check_lm(self, lm: str | os.PathLike, lm_hash: str) -> None:
        """Refuse an LM (``lm_hash``: its SHA-256) other than the one whose scores the lattices
        hold (the first-pass LM the graph was built from, or the LM of an earlier rescoring at
        scale 1), when recorded."""
        recorded = self.info.get(LM_KEY)
        if recorded is None:
            log.info("%s records no first-pass LM fingerprint: --old-lm %s not checked", self.path, lm)
            return
        if lm_hash != recorded:
            raise DecodeError(f"{lm} is not the LM the lattices of {self.path} were made with "
                              f"({self.path / INFO} records LM {recorded[:12]}, this file is {lm_hash[:12]}); "
                              "--old-lm must be the first-pass LM the graph was built from")


def up_to_date(path: str | os.PathLike, inputs: dict[str, Any]) -> bool:
    """True when ``path`` is a finished decode dir made from exactly ``inputs``."""
    try:
        d = DecodeDir.load(path)
    except DecodeError:
        return False
    recorded = d.info.get("inputs")
    if not isinstance(recorded, dict):
        return False
    diff = first_difference(recorded, inputs)
    if diff is not None:
        log.info("%s: %s changed since it was made; redoing it", path, diff)
        return False
    return True


def decode_inputs(model_dir: str | os.PathLike, graph_dir: str | os.PathLike, data_dir: str | os.PathLike,
                  options: dict[str, Any]) -> dict[str, Any]:
    """Fingerprints of what a decode dir is made from (the ``inputs`` of decode.json)."""
    model_dir, graph_dir, data_dir = Path(model_dir), Path(graph_dir), Path(data_dir)
    graph_id = graph_dir / "graph.json" if (graph_dir / "graph.json").is_file() else graph_dir / "HCLG.fst"
    out: dict[str, Any] = {"model.yaml": file_hash(model_dir / "model.yaml"), "graph": file_hash(graph_id)}
    out.update(feature_fingerprints(data_dir))
    out["options"] = json.loads(json.dumps(options))
    return out
