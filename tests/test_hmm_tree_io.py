"""Kaldi text/binary tree format and the monophone tree constructor."""

import pytest

from asr.errors import FormatError
from asr.hmm.tree import ContextDependency, monophone_tree

KALDI_TREE = """ContextDependency 3 1 ToPdf TE 1 4 ( NULL TE -1 1 ( CE 0 )
SE -1 [ 0 ]
{ SE 2 [ 1 3 ]
{ CE 1 CE 2 }
CE 3 }
TE -1 2 ( CE 4 CE 5 )
)
EndContextDependency
"""


def test_read_kaldi_text_tree(tmp_path):
    p = tmp_path / "tree"
    p.write_text(KALDI_TREE)
    t = ContextDependency.read(p)
    assert (t.context_width, t.central_position, t.num_pdfs) == (3, 1, 6)
    assert t.compute((2, 1, 3), 0) == 0
    assert t.compute((1, 2, 3), 0) == 1 and t.compute((1, 2, 2), 0) == 2 and t.compute((1, 2, 0), 1) == 3
    assert t.compute((0, 3, 0), 1) == 5
    assert t.compute((0, 4, 0), 0) is None
    info = t.get_pdf_info([1, 2, 3], {1: 1, 2: 2, 3: 2})
    assert info == [[(1, 0)], [(2, 0)], [(2, 0)], [(2, 1)], [(3, 0)], [(3, 1)]]
    import numpy as np

    got = t.compute_many(np.array([[1, 2, 3], [1, 2, 3], [0, 3, 0]]), np.array([0, 1, 1]))
    assert got.tolist() == [1, 3, 5]
    # write (text and binary) and read back
    t.write(tmp_path / "t2")
    assert ContextDependency.read(tmp_path / "t2").to_text() == t.to_text()
    t.write(tmp_path / "t3", binary=True)
    assert (tmp_path / "t3").read_bytes().startswith(b"\x00BContextDependency \x04\x03\x00\x00\x00")
    assert ContextDependency.read(tmp_path / "t3").to_text() == t.to_text()
    # whitespace-normalised equal to Kaldi's own text
    assert t.to_text().split() == KALDI_TREE.split()


def test_monophone_tree_like_gmm_init_mono():
    t = monophone_tree([[1], [2], [3]], {1: 5, 2: 3, 3: 3})
    assert t.to_text().split() == (
        "ContextDependency 1 0 ToPdf TE 0 4 ( NULL TE -1 5 ( CE 0 CE 1 CE 2 CE 3 CE 4 ) "
        "TE -1 3 ( CE 5 CE 6 CE 7 ) TE -1 3 ( CE 8 CE 9 CE 10 ) ) EndContextDependency").split()
    assert t.num_pdfs == 11


def test_bad_tree(tmp_path):
    p = tmp_path / "tree"
    p.write_text("ContextDependency 3 1 ToPdf XE 1 EndContextDependency")
    with pytest.raises(FormatError, match="tree:1"):
        ContextDependency.read(p)
    p.write_text("ContextDependency 3 1 ToPdf TE 1 4 ( NULL CE 0")
    with pytest.raises(FormatError, match="end of file"):
        ContextDependency.read(p)


def _tok(s):
    return s.encode() + b" "


def _i32(v):
    import struct

    return b"\x04" + struct.pack("<i", v)


def _u32(v):
    import struct

    return b"\xfc" + struct.pack("<I", v)


def _ivec(vs):
    import struct

    return b"\x04" + struct.pack("<i", len(vs)) + b"".join(struct.pack("<i", v) for v in vs)


# KALDI_TREE as Kaldi's build-tree writes it (binary) and copy-tree --binary=false prints it,
# laid out from base/io-funcs (WriteToken, WriteBasicType, WriteIntegerVector) and
# tree/event-map.cc, context-dep.cc
KALDI_TREE_BINARY = (
    b"\0B" + _tok("ContextDependency") + _i32(3) + _i32(1) + _tok("ToPdf")
    + _tok("TE") + _i32(1) + _u32(4) + _tok("(") + _tok("NULL")
    + _tok("TE") + _i32(-1) + _u32(1) + _tok("(") + _tok("CE") + _i32(0) + _tok(")")
    + _tok("SE") + _i32(-1) + _ivec([0]) + _tok("{")
    + _tok("SE") + _i32(2) + _ivec([1, 3]) + _tok("{") + _tok("CE") + _i32(1) + _tok("CE") + _i32(2) + _tok("}")
    + _tok("CE") + _i32(3) + _tok("}")
    + _tok("TE") + _i32(-1) + _u32(2) + _tok("(") + _tok("CE") + _i32(4) + _tok("CE") + _i32(5) + _tok(")")
    + _tok(")") + _tok("EndContextDependency")
)
KALDI_TREE_TEXT = (b"ContextDependency 3 1 ToPdf TE 1 4 ( NULL TE -1 1 ( CE 0 ) \nSE -1 [ 0 ]\n"
                   b"{ SE 2 [ 1 3 ]\n{ CE 1 CE 2 } \nCE 3 } \nTE -1 2 ( CE 4 CE 5 ) \n) \nEndContextDependency ")


def test_binary_and_text_trees_round_trip_byte_for_byte(tmp_path):
    for data, binary in ((KALDI_TREE_BINARY, True), (KALDI_TREE_TEXT, False)):
        p = tmp_path / "tree"
        p.write_bytes(data)
        t = ContextDependency.read(p)
        assert t.to_text().split() == KALDI_TREE.split()
        t.write(tmp_path / "again", binary=binary)
        assert (tmp_path / "again").read_bytes() == data
        # and the other form
        assert t.to_bytes(not binary) == (KALDI_TREE_TEXT if binary else KALDI_TREE_BINARY)
    with pytest.raises(FormatError, match="truncated|end of file"):
        (tmp_path / "cut").write_bytes(KALDI_TREE_BINARY[:-30])
        ContextDependency.read(tmp_path / "cut")
