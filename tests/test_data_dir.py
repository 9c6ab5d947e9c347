import subprocess
import sys

import pytest
from helpers_datadir import make_data_dir, write_wav

from asr.data.datadir import DataDir
from asr.data.split import split_by_speaker, split_data_dir
from asr.data.validate import validate_data_dir
from asr.errors import DataDirError, FormatError


def asr(*args):
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True)


def lines(path):
    return path.read_text().splitlines()


def test_valid_dir_has_no_problems(tmp_path):
    d = make_data_dir(tmp_path)
    assert validate_data_dir(d) == []
    r = asr("validate-data-dir", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == f"{d}: 0 problems (6 utterances, 3 speakers, 6 recordings)"


def test_every_problem_reported_with_file_and_line(tmp_path):
    d = make_data_dir(tmp_path)
    wav = lines(d / "wav.scp")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 10)
    wav[1] = f"spk1-u1 {tmp_path}/bad.wav"  # undecodable
    whole = open(wav[2].split()[1], "rb").read()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    wav[2] = f"spk2-u0 {tmp_path}/cut.wav"  # truncated: libsndfile reads the part that is there
    wav.append(f"spk3-u2 {tmp_path}/missing.wav")  # missing file
    wav.append(wav[0])  # duplicate id
    (d / "wav.scp").write_text("\n".join(wav) + "\n")
    text = lines(d / "text")
    text[2], text[3] = text[3], text[2]  # unsorted
    text[0] = "spk1-u0"  # empty text
    (d / "text").write_text("\n".join(text) + "\n")
    (d / "utt2spk").write_text((d / "utt2spk").read_text() + "spk3-u2 spk3\n")  # no text
    (d / "spk2utt").write_text((d / "spk2utt").read_text() + "spk4\n")  # speaker without utterances
    r = asr("validate-data-dir", d)
    assert r.returncode == 1
    out = r.stdout
    expected = [
        f"{d}/wav.scp:2: recording spk1-u1: cannot read audio {tmp_path}/bad.wav",
        f"{d}/wav.scp:3: recording spk2-u0: cannot read audio {tmp_path}/cut.wav: truncated: its wav header declares",
        f"{d}/wav.scp:7: recording spk3-u2: audio file {tmp_path}/missing.wav does not exist",
        f"{d}/wav.scp:8: duplicate id 'spk1-u0' (first on line 1)",
        f"{d}/utt2spk:7: utterance spk3-u2 has no text",
        f"{d}/utt2spk:7: utterance spk3-u2 (speaker spk3) is missing from spk2utt",
        f"{d}/spk2utt:4: speaker spk4 has no utterances",
        f"{d}/text:1: utterance spk1-u0: empty text",
        f"{d}/text:4: not sorted: 'spk2-u0' after 'spk2-u1' (line 3)",
    ]
    for e in expected:
        assert e in out, f"missing {e!r} in\n{out}"
    problem_lines = [x for x in out.splitlines() if x.startswith(str(d) + "/")]
    assert out.splitlines()[-1].startswith(f"{d}: {len(problem_lines)} problems")
    assert len(problem_lines) == len(expected)


def test_segments_problems(tmp_path):
    d = make_data_dir(tmp_path, speakers=("spk1",), per_speaker=1)
    rec = tmp_path / "long.wav"
    write_wav(rec, 3.0)
    (d / "wav.scp").write_text(f"rec1 {rec}\n")
    (d / "segments").write_text("spk1-a rec1 0.0 1.0\nspk1-b rec1 1.0 4.0\nspk1-c rec9 0 1\nspk1-d rec1 2.0 1.0\n")
    (d / "utt2spk").write_text("spk1-a spk1\nspk1-b spk1\nspk1-c spk1\nspk1-d spk1\n")
    (d / "spk2utt").write_text("spk1 spk1-a spk1-b spk1-c spk1-d\n")
    (d / "text").write_text("spk1-a a\nspk1-b b\nspk1-c c\nspk1-d d\n")
    msgs = [p.format(d) for p in validate_data_dir(d)]
    assert msgs == [
        f"{d}/segments:2: utterance spk1-b: ends at 4.0 s, past the end of rec1 (3.000 s)",
        f"{d}/segments:3: utterance spk1-c: recording rec9 is not in wav.scp",
        f"{d}/segments:4: utterance spk1-d: end time 1.0 is not after start time 2.0",
    ]
    r = asr("fix-data-dir", d)
    assert r.returncode == 0, r.stderr
    assert lines(d / "utt2spk") == ["spk1-a spk1"]
    assert validate_data_dir(d) == []
    assert DataDir.load(d).audio_spec("spk1-a") == ("rec1", str(rec), 0.0, 1.0)


def test_utt2spk_spk2utt_disagreement(tmp_path):
    d = make_data_dir(tmp_path)
    (d / "spk2utt").write_text("spk1 spk1-u0 spk2-u0\nspk2 spk2-u1\nspk3 spk3-u0 spk3-u1 spk1-u1\n")
    msgs = [p.format(d) for p in validate_data_dir(d)]
    assert f"{d}/spk2utt:1: speaker spk1: utterance spk2-u0 belongs to speaker spk2 in utt2spk (line 3)" in msgs
    assert f"{d}/spk2utt:3: speaker spk3: utterance spk1-u1 belongs to speaker spk1 in utt2spk (line 2)" in msgs
    assert len(msgs) == 2


def test_fix_keeps_intersection_sorts_and_backs_up(tmp_path):
    d = make_data_dir(tmp_path)
    orig_text = (d / "text").read_text()
    text = lines(d / "text")
    del text[1]  # spk1-u1 has no text
    text[2] = "spk2-u1"  # empty text
    text.reverse()  # unsorted
    (d / "text").write_text("\n".join(text) + "\n")
    (d / "wav.scp").write_text((d / "wav.scp").read_text() + f"zzz-1 {tmp_path}/nowhere.wav\nspk1-u0 dup.wav\n")
    (d / "utt2spk").write_text((d / "utt2spk").read_text() + "zzz-1 zzz\n")
    (d / "spk2utt").unlink()
    assert asr("validate-data-dir", d).returncode == 1
    r = asr("fix-data-dir", d)
    assert r.returncode == 0, r.stderr
    assert f"{d}/utt2spk:2: utterance spk1-u1 dropped: no text" in r.stdout
    assert f"{d}/utt2spk:4: utterance spk2-u1 dropped: empty text" in r.stdout
    assert f"{d}/wav.scp:7: recording zzz-1 dropped: audio file {tmp_path}/nowhere.wav missing or unreadable" in r.stdout
    assert f"{d}/wav.scp:8: duplicate id 'spk1-u0' (first on line 1) (dropped)" in r.stdout
    assert "kept 4 utterances, 3 speakers, 4 recordings; dropped 3 utterances" in r.stdout
    assert lines(d / "utt2spk") == ["spk1-u0 spk1", "spk2-u0 spk2", "spk3-u0 spk3", "spk3-u1 spk3"]
    assert lines(d / "spk2utt") == ["spk1 spk1-u0", "spk2 spk2-u0", "spk3 spk3-u0 spk3-u1"]
    assert [x.split()[0] for x in lines(d / "text")] == ["spk1-u0", "spk2-u0", "spk3-u0", "spk3-u1"]
    assert (d / ".backup" / "text").read_text() != orig_text  # the broken one, as it was
    assert "zzz-1" in (d / ".backup" / "wav.scp").read_text()
    r = asr("validate-data-dir", d)
    assert r.returncode == 0 and "0 problems" in r.stdout


def test_fix_twice_never_overwrites_the_backup(tmp_path):
    d = make_data_dir(tmp_path)
    (d / "wav.scp").write_text("".join(x + "\n" for x in lines(d / "wav.scp") if not x.startswith("spk2-u1 ")))
    broken = {name: (d / name).read_bytes() for name in ("wav.scp", "text", "utt2spk", "spk2utt")}
    r = asr("fix-data-dir", d)
    assert r.returncode == 0, r.stderr
    # the dropped utterance is reported with its transcript
    assert f"{d}/utt2spk:4: utterance spk2-u1 dropped: no usable audio; text: hello world 1" in r.stdout
    assert r.stdout.rstrip().endswith(f"originals in {d}/.backup")
    fixed = {name: (d / name).read_bytes() for name in broken}
    # run again on the fixed dir: nothing to change, no backup made, nothing touched
    r = asr("fix-data-dir", d)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("dropped 0 utterances (0 items); nothing changed (no backup made)")
    assert not (d / ".backup.1").exists() and {name: (d / name).read_bytes() for name in broken} == fixed
    # broken again and fixed again: a new backup beside the first, which keeps the originals
    (d / "text").write_bytes(fixed["text"] + b"zzz-9 nobody\n")
    r = asr("fix-data-dir", d)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith(f"originals in {d}/.backup.1")
    assert {name: (d / ".backup" / name).read_bytes() for name in broken} == broken  # the originals, kept
    assert (d / ".backup.1" / "text").read_bytes() == fixed["text"] + b"zzz-9 nobody\n"
    assert {name: (d / name).read_bytes() for name in broken} == fixed
    assert not list(d.glob(".fix.*"))


def test_lines_not_utf8_are_named_and_dropped_never_rewritten(tmp_path):
    d = make_data_dir(tmp_path)
    text = (d / "text").read_bytes().splitlines(keepends=True)
    text[0] = "spk1-u0 caf\u00e9 cr\u00e8me\n".encode()  # UTF-8: kept as it is
    text[1] = b"spk1-u1 caf\xe9 au lait\n"  # Latin-1: not UTF-8
    (d / "text").write_bytes(b"".join(text))
    r = asr("validate-data-dir", d)
    assert r.returncode == 1
    assert f"{d}/text:2: not valid UTF-8 (byte 0xe9 at column 12)" in r.stdout
    r = asr("fix-data-dir", d)
    assert r.returncode == 0, r.stderr
    assert f"{d}/text:2: not valid UTF-8 (byte 0xe9 at column 12) (dropped)" in r.stdout
    assert f"{d}/utt2spk:2: utterance spk1-u1 dropped: no text" in r.stdout
    assert "kept 5 utterances, 3 speakers, 5 recordings; dropped 1 utterances" in r.stdout
    assert (d / "text").read_bytes() == b"".join(text[:1] + text[2:])
    assert b"\xef\xbf\xbd" not in b"".join((d / name).read_bytes() for name in ("text", "utt2spk", "wav.scp"))
    assert (d / ".backup" / "text").read_bytes() == b"".join(text)
    assert asr("validate-data-dir", d).returncode == 0


def test_fix_with_nothing_left_fails_and_changes_nothing(tmp_path):
    d = make_data_dir(tmp_path, speakers=("s",), per_speaker=1)
    (d / "text").write_text("s-u0\n")
    before = (d / "utt2spk").read_text()
    r = asr("fix-data-dir", d)
    assert r.returncode == 1 and "nothing left" in r.stderr
    assert (d / "utt2spk").read_text() == before


def test_load_rejects_duplicates(tmp_path):
    d = make_data_dir(tmp_path)
    (d / "utt2spk").write_text((d / "utt2spk").read_text() + "spk1-u0 spk1\n")
    with pytest.raises(FormatError, match=r"utt2spk:7: duplicate key 'spk1-u0' \(first on line 1\)"):
        DataDir.load(d)


def test_split_by_speaker(tmp_path):
    d = make_data_dir(tmp_path, speakers=("a", "b", "c", "d", "e"), per_speaker=2, seconds=0.1)
    (d / "utt2spk").write_text((d / "utt2spk").read_text() + "e-u2 e\ne-u3 e\n")
    jobs = split_by_speaker(d, 3)
    assert [len(j) for j in jobs] == [4, 4, 4]
    assert sorted(u for j in jobs for u in j) == sorted(DataDir.load(d).utt2spk)
    spk_sets = [{u.split("-")[0] for u in j} for j in jobs]
    assert all(not (a & b) for i, a in enumerate(spk_sets) for b in spk_sets[i + 1 :])
    assert all(j == sorted(j) and j for j in jobs)
    assert len(split_by_speaker(d, 5)) == 5
    with pytest.raises(DataDirError, match="cannot split 5 speakers into 6 jobs"):
        split_by_speaker(d, 6)


def test_split_and_subset_dirs(tmp_path):
    d = make_data_dir(tmp_path, speakers=("a", "b", "c", "d"), per_speaker=2, seconds=0.1)
    parts = split_data_dir(d, 2)
    assert parts == [d / "split2" / "1", d / "split2" / "2"]
    assert sum(len(lines(p / "utt2spk")) for p in parts) == 8
    for p in parts:
        assert validate_data_dir(p) == []
    r = asr("subset-data-dir", "--first", 3, d, tmp_path / "sub")
    assert r.returncode == 0, r.stderr
    assert lines(tmp_path / "sub" / "utt2spk") == ["a-u0 a", "a-u1 a", "b-u0 b"]
    assert len(lines(tmp_path / "sub" / "wav.scp")) == 3
    assert validate_data_dir(tmp_path / "sub") == []
    # a subset written again holds only what the source has now: an earlier subset's
    # cmvn.scp (stats of features since recomputed) does not survive
    (tmp_path / "sub" / "cmvn.scp").write_text("a /old/cmvn.ark:7\n")
    assert asr("subset-data-dir", "--first", 2, d, tmp_path / "sub").returncode == 0
    assert not (tmp_path / "sub" / "cmvn.scp").exists()
    assert lines(tmp_path / "sub" / "utt2spk") == ["a-u0 a", "a-u1 a"]


def test_subset_rejects_what_would_be_empty_or_wrong(tmp_path):
    d = make_data_dir(tmp_path, speakers=("a", "b"), per_speaker=2, seconds=0.1)
    for n in ("-2", "0"):
        r = asr("subset-data-dir", "--first", n, d, tmp_path / "sub")
        assert r.returncode == 2 and f"argument --first: expected an integer >= 1, got '{n}'" in r.stderr
    (tmp_path / "spk").write_text("a\nnobody\n")
    r = asr("subset-data-dir", "--spk-list", tmp_path / "spk", d, tmp_path / "sub")
    assert r.returncode == 1
    assert r.stderr == f"asr subset-data-dir: error: {d}: 1 requested speakers not in utt2spk, e.g. nobody\n"
    (tmp_path / "spk").write_text("")
    r = asr("subset-data-dir", "--spk-list", tmp_path / "spk", d, tmp_path / "sub")
    assert r.returncode == 1 and f"{tmp_path / 'spk'}: lists no ids; an empty subset is not written" in r.stderr
    assert not (tmp_path / "sub").exists()
    (tmp_path / "spk").write_text("b\n")
    r = asr("subset-data-dir", "--spk-list", tmp_path / "spk", d, tmp_path / "sub")
    assert r.returncode == 0, r.stderr
    assert lines(tmp_path / "sub" / "utt2spk") == ["b-u0 b", "b-u1 b"]
