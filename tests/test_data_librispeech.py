"""asr prep-librispeech on a fixture laid out exactly like LibriSpeech (synthesised FLAC speech)."""

import json
import shutil
import subprocess
import sys

import pytest

from asr.data.audio import read_audio
from asr.data.librispeech import prepare_librispeech, read_speakers_txt
from asr.errors import DataDirError, FormatError
from asr.io.tables import read_table
from conftest import LIBRISPEECH_PARTS


@pytest.fixture(scope="module")
def fixture(librispeech_corpus):
    return librispeech_corpus


def _run(*args):
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True, timeout=300)


def _expect_dir(d, utts):
    """The data dir holds exactly these fixture utterances, one for one."""
    assert read_table(d / "text") == {u.utt: u.text for u in utts}
    assert read_table(d / "utt2spk") == {u.utt: u.speaker for u in utts}
    assert read_table(d / "wav.scp") == {u.utt: str(u.flac) for u in utts}
    spk2gender = read_table(d / "spk2gender")
    assert spk2gender == {u.speaker: u.gender for u in utts}
    spk2utt = read_table(d / "spk2utt")
    assert {s: v.split() for s, v in spk2utt.items()} == {
        s: sorted(u.utt for u in utts if u.speaker == s) for s in {u.speaker for u in utts}}
    durs = read_table(d / "utt2dur")
    assert set(durs) == {u.utt for u in utts} and all(0.5 < float(v) < 30 for v in durs.values())


def test_one_part_matches_the_corpus_one_for_one(fixture, tmp_path):
    d = tmp_path / "train_clean_100"
    r = _run("prep-librispeech", fixture.part("train-clean-100"), d)
    assert r.returncode == 0, r.stderr
    utts = fixture.utts["train-clean-100"]
    _expect_dir(d, utts)
    # Kaldi's ids: speaker = reader-chapter (the two folders), utterance = speaker-NNNN
    assert all(u.utt.startswith(u.speaker + "-") for u in utts)
    assert {u.speaker for u in utts} == {f"{u.flac.parent.parent.name}-{u.flac.parent.name}" for u in utts}
    readers, speakers = {u.reader for u in utts}, {u.speaker for u in utts}
    assert len(speakers) > len(readers)  # readers with two chapters are two speakers
    assert f"{len(utts)} utterances, {len(speakers)} speakers ({len(readers)} readers" in r.stdout
    assert "skipped" not in r.stdout
    v = _run("validate-data-dir", d)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "0 problems" in v.stdout
    # wav.scp holds FLAC paths that the audio reader decodes directly (soundfile, no flac binary)
    utt, path = next(iter(read_table(d / "wav.scp").items()))
    x = read_audio(path, utt=utt)
    assert abs(len(x) / 16000 - float(read_table(d / "utt2dur")[utt])) < 1e-3 and 0 < abs(x).max() <= 1


def test_train_parts_combine(fixture, tmp_path):
    d = tmp_path / "train"
    r = _run("prep-librispeech", fixture.part("train-clean-100"), fixture.part("train-clean-360"), d)
    assert r.returncode == 0, r.stderr
    _expect_dir(d, fixture.utts["train-clean-100"] + fixture.utts["train-clean-360"])
    summary = json.loads((d / "prep.json").read_text())
    n = len(fixture.utts["train-clean-100"]) + len(fixture.utts["train-clean-360"])
    assert summary["utterances"] == n and len(summary["parts"]) == 2 and summary["skipped"]
    assert _run("validate-data-dir", d).returncode == 0


def test_odd_cases_are_skipped_counted_and_named(fixture, tmp_path):
    d = tmp_path / "train_clean_360"
    r = _run("prep-librispeech", fixture.part("train-clean-360"), d)
    assert r.returncode == 0, r.stderr
    _expect_dir(d, fixture.utts["train-clean-360"])
    odd = fixture.odd["train-clean-360"]
    # utterances of the chapter without transcript
    n_chapter_utts = LIBRISPEECH_PARTS["train-clean-360"] - len(fixture.utts["train-clean-360"]) - 1
    assert n_chapter_utts >= 1
    assert "skipped 3 (1 audio without transcript, 1 chapter without transcript, 1 utterance without audio)" in r.stdout
    # each skipped item named on stderr and in prep_skipped.txt
    listed = (d / "prep_skipped.txt").read_text()
    for what in (odd["chapter_without_transcript"][0], odd["utterance_without_audio"][0],
                 odd["audio_without_transcript"][0]):
        assert what in r.stderr and what in listed
    assert f"its {n_chapter_utts} FLAC files are left out" in listed
    assert _run("validate-data-dir", d).returncode == 0


def test_transcript_line_not_utf8_is_skipped_counted_and_named(fixture, tmp_path):
    part = tmp_path / "dev-clean"
    shutil.copytree(fixture.part("dev-clean"), part)
    trans = sorted(part.glob("*/*/*.trans.txt"))[0]
    lines = trans.read_bytes().splitlines(keepends=True)
    bad_utt = lines[1].split()[0].decode()
    lines[1] = lines[1].rstrip(b"\n") + b" CAF\xc9\n"  # Latin-1
    trans.write_bytes(b"".join(lines))
    d = tmp_path / "dev_clean"
    r = _run("prep-librispeech", "--speakers", fixture.corpus / "SPEAKERS.TXT", part, d)
    assert r.returncode == 0, r.stderr
    message = f"{trans}:2: not valid UTF-8 (byte 0xc9 at column {len(lines[1]) - 1}) (bad_transcript_line; skipped)"
    assert message in r.stderr and message in (d / "prep_skipped.txt").read_text()
    assert "skipped 1 (1 bad transcript line)" in r.stdout  # its FLAC is not also "audio without transcript"
    assert read_table(d / "text") == {u.utt: u.text for u in fixture.utts["dev-clean"] if u.utt != bad_utt}


def test_speakers_txt_quirks_and_errors(fixture, tmp_path):
    genders = read_speakers_txt(fixture.corpus / "SPEAKERS.TXT")
    assert genders["60"] in ("m", "f")  # the name "|CBW|Simon" holds the separator
    bad = tmp_path / "SPEAKERS.TXT"
    bad.write_text(";ID |SEX| SUBSET |MINUTES| NAME\n14 | X | dev-clean | 1.0 | Someone\n")
    with pytest.raises(FormatError, match=r"SPEAKERS.TXT:2:"):
        read_speakers_txt(bad)


def test_part_linked_from_another_disk_takes_genders_from_speakers_txt_beside_the_link(fixture, tmp_path):
    # a 960 h copy spread over disks: LibriSpeech/train-other-500 -> /disk2/train-other-500
    ls, disk2 = tmp_path / "LibriSpeech", tmp_path / "disk2"
    ls.mkdir()
    shutil.copy(fixture.corpus / "SPEAKERS.TXT", ls / "SPEAKERS.TXT")
    shutil.copytree(fixture.part("dev-clean"), disk2 / "dev-clean")  # no SPEAKERS.TXT beside it there
    (ls / "dev-clean").symlink_to(disk2 / "dev-clean")
    s = prepare_librispeech([ls / "dev-clean"], tmp_path / "d")
    assert s.readers_without_gender == [] and sum(s.genders.values()) == s.readers
    utts = fixture.utts["dev-clean"]
    assert read_table(tmp_path / "d" / "spk2gender") == {u.speaker: u.gender for u in utts}


def test_reader_missing_from_speakers_txt_keeps_utterances_without_spk2gender(fixture, tmp_path):
    spk = tmp_path / "SPEAKERS.TXT"
    reader = fixture.utts["dev-clean"][0].reader
    spk.write_text("".join(line for line in (fixture.corpus / "SPEAKERS.TXT").read_text().splitlines(True)
                           if not line.startswith(reader + " ")))
    s = prepare_librispeech([fixture.part("dev-clean")], tmp_path / "d", speakers_txt=spk)
    assert s.utterances == len(fixture.utts["dev-clean"]) and s.readers_without_gender == [reader]
    assert not (tmp_path / "d" / "spk2gender").exists()
    assert _run("validate-data-dir", tmp_path / "d").returncode == 0


def test_bad_inputs(tmp_path):
    r = _run("prep-librispeech", tmp_path / "nope", tmp_path / "out")
    assert r.returncode == 1 and "no such LibriSpeech part directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "empty" / "19" / "198").mkdir(parents=True)
    with pytest.raises(DataDirError, match="no usable utterance"):
        prepare_librispeech([tmp_path / "empty"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_destination_that_is_not_a_data_dir_is_refused_and_kept(fixture, tmp_path):
    """A mistyped DST (the corpus part itself, a folder of data dirs) is an error that
    deletes nothing; an earlier data dir there is replaced."""
    part = fixture.part("dev-other")
    flacs = sorted(part.rglob("*.flac"))
    r = _run("prep-librispeech", part, part)
    assert r.returncode == 1
    assert f"{part}: exists and holds none of utt2spk" in r.stderr.strip().splitlines()[-1]
    assert sorted(part.rglob("*.flac")) == flacs
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "keep.txt").write_text("x\n")
    r = _run("prep-librispeech", part, data)
    assert r.returncode == 1 and (data / "train" / "keep.txt").is_file()
    d = data / "dev"
    assert _run("prep-librispeech", fixture.part("train-clean-100"), d).returncode == 0
    r = _run("prep-librispeech", part, d)
    assert r.returncode == 0, r.stderr
    _expect_dir(d, fixture.utts["dev-other"])


def test_validate_checks_spk2gender(fixture, tmp_path):
    d = tmp_path / "d"
    prepare_librispeech([fixture.part("dev-other")], d)
    lines = (d / "spk2gender").read_text().splitlines()
    (d / "spk2gender").write_text("".join(f"{line[:-1]}x\n" for line in lines[:1]) + "".join(x + "\n" for x in lines[2:]))
    r = _run("validate-data-dir", d)
    assert r.returncode == 1
    assert f"spk2gender:1: speaker {lines[0].split()[0]}: gender" in r.stdout
    assert f"speaker {lines[1].split()[0]} has no gender" in r.stdout
