import gzip

import numpy as np
import pytest

from asr.errors import FormatError
from asr.io.atomic import atomic_write, atomic_write_text
from asr.io.int_ark import read_int_ark, write_int_ark
from asr.io.tables import read_table, write_table


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write("new")
            raise RuntimeError("boom")
    assert p.read_text() == "old\n"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_table_roundtrip_sorted_and_duplicate_error(tmp_path):
    p = tmp_path / "text"
    write_table(p, [("b", "two words"), ("a", "one")])
    assert p.read_text() == "a one\nb two words\n"
    assert read_table(p) == {"a": "one", "b": "two words"}
    p.write_text("a x\nb y\na z\n")
    with pytest.raises(FormatError, match=r"text:3: duplicate key 'a' \(first on line 1\)"):
        read_table(p)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_int_ark_roundtrip(tmp_path, binary, gz):
    items = {"u1": np.array([1, 2, 3, 70000], np.int32), "u2": np.array([], np.int32), "u3": np.array([-1], np.int32)}
    p = tmp_path / ("ali.ark.gz" if gz else "ali.ark")
    write_int_ark(p, items.items(), binary=binary)
    if gz:
        assert gzip.open(p).read(2)
    back = read_int_ark(p)
    assert list(back) == list(items)
    for k in items:
        np.testing.assert_array_equal(back[k], items[k])


def test_int_ark_binary_layout_matches_kaldi(tmp_path):
    p = tmp_path / "a.ark"
    write_int_ark(p, [("u", np.array([7, 8], np.int32))], binary=True)
    assert p.read_bytes() == b"u \x00B\x04\x02\x00\x00\x00\x04\x07\x00\x00\x00\x04\x08\x00\x00\x00"


def test_int_ark_bad_text_names_line(tmp_path):
    p = tmp_path / "a.ark"
    p.write_text("u1 1 2\nu2 3 x\n")
    with pytest.raises(FormatError, match=r"a.ark:2: utterance u2"):
        read_int_ark(p)


def test_atomic_write_gives_umask_mode(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("block", [1, 3, 7, 1 << 20])
def test_int_ark_read_in_blocks(tmp_path, monkeypatch, block):
    """Arks are read block by block (never whole): entries across block edges, mixed
    text/binary entries, empty values and line numbers in errors come out the same."""
    import asr.io.int_ark as m

    monkeypatch.setattr(m, "_BLOCK", block)
    items = {"a": np.array([1, 2, 30]), "b": np.array([], dtype=np.int32), "c": np.arange(40) - 5}
    write_int_ark(tmp_path / "t.ark", items.items())
    write_int_ark(tmp_path / "b.ark", items.items(), binary=True)
    mixed = tmp_path / "m.ark"
    mixed.write_bytes((tmp_path / "b.ark").read_bytes() + (tmp_path / "t.ark").read_bytes().replace(b"a ", b"x ", 1))
    for path, keys in ((tmp_path / "t.ark", "abc"), (tmp_path / "b.ark", "abc"), (mixed, "abcxbc")):
        got = list(m.iter_int_ark(path))
        assert [k for k, _ in got] == list(keys)
        for k, v in got:
            assert v.tolist() == items["a" if k == "x" else k].tolist()
    (tmp_path / "bad.ark").write_text("a 1 2\nb 3\nc 4 x 5\n")
    with pytest.raises(FormatError, match="bad.ark:3: utterance c: non-integer value"):
        list(m.iter_int_ark(tmp_path / "bad.ark"))


def test_audio_stamp_sees_the_files_behind_a_pipe(tmp_path):
    """A wav.scp pipe is stamped with the files it names: audio replaced, or a missing file
    restored, behind an unchanged command changes the stamp (make-fbank and augment-data-dir
    redo it)."""
    import os

    from asr.io.fingerprint import audio_stamp

    wav = tmp_path / "a.wav"
    pipe = f"sox {wav} -t wav - |"
    missing = audio_stamp(pipe)
    assert f"{wav} missing" in missing
    wav.write_bytes(b"x" * 10)
    first = audio_stamp(pipe)
    assert first != missing and f"{wav} 10 " in first
    wav.write_bytes(b"y" * 20)
    os.utime(wav, ns=(0, 10**9))
    assert audio_stamp(pipe) != first
    assert audio_stamp(f"cat '{wav}' |") != audio_stamp("cat other |")  # quoted paths too
    assert audio_stamp(str(wav)) == f"{wav} 20 {10**9}"
