"""A table of bad inputs across the stages (features, lang, alignment, tree, graph, model
dir, decoding, transcription, rescoring, scoring). For each: the exit code, one message line
naming the culprit (an error, or the warning of a skipped-and-counted utterance), no Python
traceback, and nothing left behind that looks finished (the product is absent, or its
typed ``load()`` refuses it).

The world (tests/product_fixtures.py: lang dir, trees, graphs, a packed model dir, data dirs
with wavs and with features) is made once per session."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from product_fixtures import copy, copy_wav_dir, network

# -- the table --------------------------------------------------------------------------

@dataclass
class Case:
    argv: list
    exit: int
    culprit: str  # must appear in the message line (error, or the warning of a skipped utterance)
    unfinished: list = field(default_factory=list)  # (kind, path) that must not look finished
    message: str = "error"  # "error": one 'asr CMD: error:' line; "warning": a WARNING line


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# features
@case
def nan_samples_skipped_and_counted(w, tmp):
    d = copy_wav_dir(w, tmp)
    x = np.zeros(16000, np.float32)
    x[100] = np.nan
    path = Path(d.parent / "wav" / "s1-u0.wav")
    sf.write(path, x, 16000, subtype="FLOAT")
    return Case(["make-fbank", "--max-failures", "0.5", "--no-progress", d], 0, "s1-u0: the audio has 1 NaN/inf",
                message="warning")


@case
def non_utf8_text_does_not_matter_to_features(w, tmp):
    d = copy_wav_dir(w, tmp)
    (d / "text").write_bytes(b"s1-u0 caf\xe9\ns1-u1 x\ns2-u0 y\ns2-u1 z\n")
    return Case(["make-fbank", "--no-progress", d], 0, "features for 4 of 4 utterances", message="stdout")


@case
def empty_wav_counted_as_failure(w, tmp):
    d = copy_wav_dir(w, tmp)
    sf.write(d.parent / "wav" / "s2-u1.wav", np.zeros(0, np.int16), 16000)
    return Case(["make-fbank", "--max-failures", "0.5", "--no-progress", d], 0, "s2-u1: too short for one frame",
                message="warning")


@case
def too_many_failed_utterances(w, tmp):
    d = copy_wav_dir(w, tmp)
    for u in ("s1-u0", "s1-u1"):
        (d.parent / "wav" / f"{u}.wav").write_bytes(b"RIFF....WAVEjunk")
    return Case(["make-fbank", "--no-progress", d], 1, "2 of 4 utterances failed, more than --max-failures 0.1",
                [("absent", d / "feats.scp"), ("absent", d / "fbank.conf")])


@case
def all_audio_missing(w, tmp):
    d = copy_wav_dir(w, tmp)
    shutil.rmtree(d.parent / "wav")
    return Case(["make-fbank", "--no-progress", d], 1, "all 4 utterances failed", [("absent", d / "feats.scp")])


@case
def unknown_fbank_option(w, tmp):
    d = copy_wav_dir(w, tmp)
    (tmp / "fbank.conf").write_text("--num-mel-bins=40\n--num-ceps=13\n")
    return Case(["make-fbank", "--config", tmp / "fbank.conf", d], 1, "fbank.conf: unknown fbank option --num-ceps",
                [("absent", d / "feats.scp")])


@case
def utt2spk_not_utf8(w, tmp):
    d = copy_wav_dir(w, tmp)
    (d / "utt2spk").write_bytes(b"s1-u0 s1\ns1-u1 s\xff1\ns2-u0 s2\ns2-u1 s2\n")
    return Case(["make-fbank", d], 1, "utt2spk:2: not valid UTF-8", [("absent", d / "feats.scp")])


# lang, alignments, tree
@case
def lexicon_with_unknown_phone(w, tmp):
    d = copy(w.root / "dict", tmp / "dict")
    (d / "lexicon.txt").write_text((d / "lexicon.txt").read_text() + "DOG D AO G\n")
    return Case(["prepare-lang", d, tmp / "lang"], 1, "lexicon", [("absent", tmp / "lang" / "L.fst")])


def _ctm_setup(tmp):
    from hmm_test_helpers import make_data
    from hmm_test_helpers import make_lang as make_hmm_lang

    return make_hmm_lang(tmp), make_data(tmp)


@case
def ctm_of_other_utterances_leaves_no_alignments(w, tmp):
    lang, data = _ctm_setup(tmp)
    (data / "phones.ctm").write_text("x9 1 0.00 0.20 SIL\n")
    return Case(["import-ali", "--format", "ctm", "--lang", lang, data, data / "phones.ctm", tmp / "ali"], 1,
                "all 3 utterances failed", [("ali", tmp / "ali"), ("absent", tmp / "ali" / "ali.tid.ark")])


@case
def ctm_not_utf8(w, tmp):
    lang, data = _ctm_setup(tmp)
    (data / "phones.ctm").write_bytes(b"u1 1 0.00 0.20 SIL\nu1 1 0.20 0.10 \xff\n")
    return Case(["import-ali", "--format", "ctm", "--lang", lang, data, data / "phones.ctm", tmp / "ali"], 1,
                "phones.ctm", [("ali", tmp / "ali")])


@case
def build_tree_on_leftover_of_a_failed_import(w, tmp):
    lang, data = _ctm_setup(tmp)
    (tmp / "ali").mkdir()
    (tmp / "ali" / "ali.tid.ark").write_text("")  # what a failed import used to leave
    return Case(["build-tree", "--lang", lang, data, tmp / "ali", tmp / "tree"], 1,
                f"{tmp / 'ali'}: not a finished alignment dir", [("ali", tmp / "tree")])


@case
def align_with_priors_of_wrong_length(w, tmp):
    lang, data = _ctm_setup(tmp)
    assert main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data),
                 str(data / "phones.ctm"), str(tmp / "ref")]) == 0
    np.save(tmp / "prior.npy", np.zeros(3, np.float32))
    ll = tmp / "ll.ark"
    import kaldiio

    kaldiio.save_ark(str(ll), {"u1": np.zeros((120, 3), np.float32)})
    return Case(["align", "--log-priors", tmp / "prior.npy", "--lang", lang, "--tree-dir", tmp / "ref", data, ll,
                 tmp / "fa"], 1, "prior.npy", [("ali", tmp / "fa")])


@case
def align_with_corrupt_priors(w, tmp):
    lang, data = _ctm_setup(tmp)
    assert main(["import-ali", "--max-failures", "1", "--format", "ctm", "--lang", str(lang), str(data),
                 str(data / "phones.ctm"), str(tmp / "ref")]) == 0
    (tmp / "prior.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    return Case(["align", "--log-priors", tmp / "prior.npy", "--lang", lang, "--tree-dir", tmp / "ref", data,
                 tmp / "ll.ark", tmp / "fa"], 1, "prior.npy", [("ali", tmp / "fa")])


# graph
@case
def graph_from_garbage_lm(w, tmp):
    (tmp / "bad.arpa").write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0 A\n")
    return Case(["make-graph", w.lang, w.mono, tmp / "bad.arpa", tmp / "graph"], 1, "bad.arpa",
                [("graph", tmp / "graph")])


@case
def graph_without_transition_model(w, tmp):
    t = copy(w.mono, tmp / "tree")
    (t / "final.mdl").unlink()
    return Case(["make-graph", w.lang, t, w.lm, tmp / "graph"], 1, "final.mdl", [("graph", tmp / "graph")])


# model dir
@case
def decode_with_graph_of_another_tree(w, tmp):
    # the reported case: an HCLG of another tree decodes without complaint (98 % WER, exit 0)
    return Case(["decode", "--model-dir", w.model, "--graph-dir", w.tri_graph, w.feats, tmp / "dec"], 1,
                f"{w.tri_graph}/graph.json records tree", [("decode", tmp / "dec")])


@case
def decode_with_kaldi_graph_of_another_model(w, tmp):
    g = copy(w.tri_graph, tmp / "kaldi_graph")
    (g / "graph.json").unlink()  # as Kaldi's mkgraph.sh writes it
    return Case(["decode", "--model-dir", w.model, "--graph-dir", g, w.feats, tmp / "dec"], 1,
                f"{g / 'num_pdfs'} says", [("decode", tmp / "dec")])


@case
def graph_words_replaced_after_build(w, tmp):
    g = copy(w.graph, tmp / "graph")
    (g / "words.txt").write_text((g / "words.txt").read_text().replace("CAT", "DOG"))
    return Case(["decode", "--model-dir", w.model, "--graph-dir", g, w.feats, tmp / "dec"], 1,
                f"{g / 'words.txt'} was changed", [("decode", tmp / "dec")])


@case
def network_dir_is_not_a_model_dir(w, tmp):
    m = tmp / "net"
    network(m, 10, eye=False)
    return Case(["decode", "--model-dir", m, "--graph-dir", w.graph, w.feats, tmp / "dec"], 1,
                "not a complete model dir", [("decode", tmp / "dec")])


@case
def model_yaml_of_wrong_shape(w, tmp):
    m = tmp / "net"
    network(m, 10, eye=False)
    (m / "model.yaml").write_text((m / "model.yaml").read_text().replace("num_pdfs: 10", "num_pdfs: [ten]"))
    return Case(["pack-model-dir", "--tree-dir", w.mono, "--lang", w.lang, "--fbank-config", "conf/fbank.conf", m],
                1, f"{m / 'model.yaml'}: num_pdfs must be an integer", [("model", m)])


@case
def model_yaml_garbage(w, tmp):
    m = copy(w.model, tmp / "model")
    (m / "model.yaml").write_bytes(b"\x00\x01model: [\n")
    return Case(["transcribe", "--model-dir", m, w.wavs.parent / "wavs_wav" / "s1-u0.wav"], 1,
                f"{m / 'model.yaml'}", [("model", m)])


@case
def corrupt_priors_when_packing(w, tmp):
    m = tmp / "net"
    network(m, 10, eye=False)
    (m / "log_priors.npy").write_bytes(b"\x93NUMPY garbage")
    return Case(["pack-model-dir", "--tree-dir", w.mono, "--lang", w.lang, "--fbank-config", "conf/fbank.conf", m],
                1, "log_priors.npy: not a .npy array", [("model", m)])


@case
def truncated_weights_when_packing(w, tmp):
    from asr.hmm.transition_model import TransitionModel

    m = tmp / "net"
    network(m, TransitionModel.read(w.mono / "final.mdl").num_pdfs, eye=False)
    data = (m / "model.safetensors").read_bytes()
    (m / "model.safetensors").write_bytes(data[: len(data) // 2])
    return Case(["pack-model-dir", "--tree-dir", w.mono, "--lang", w.lang, "--fbank-config", "conf/fbank.conf", m],
                1, "model.safetensors: cannot read weights", [("model", m)])


@case
def fbank_options_of_another_dimension(w, tmp):
    from asr.hmm.transition_model import TransitionModel

    m = tmp / "net"
    network(m, TransitionModel.read(w.mono / "final.mdl").num_pdfs, eye=False)
    (tmp / "fbank80.conf").write_text("--num-mel-bins=80\n")
    return Case(["pack-model-dir", "--tree-dir", w.mono, "--lang", w.lang, "--fbank-config", tmp / "fbank80.conf",
                 m], 1, "fbank options give 80-dim features but the network takes 40 inputs", [("model", m)])


def _trained_with_low_freq_300(w, m):
    """A network as asr train leaves it, trained on features with --low-freq=300 (training.fbank)."""
    import yaml

    from asr.features.fbank import FbankComputer
    from asr.hmm.transition_model import TransitionModel

    network(m, TransitionModel.read(w.mono / "final.mdl").num_pdfs, eye=False)
    cfg = yaml.safe_load((m / "model.yaml").read_text())
    cfg["training"] = {"fbank": FbankComputer(None, overrides={"low-freq": "300"}).all_options}
    (m / "model.yaml").write_text(yaml.safe_dump(cfg))


@case
def pack_with_other_fbank_options_than_the_training_features(w, tmp):
    m = tmp / "net"
    _trained_with_low_freq_300(w, m)
    return Case(["pack-model-dir", "--tree-dir", w.mono, "--lang", w.lang, "--fbank-config", "conf/fbank.conf", m],
                1, f"the fbank options differ from those the network was trained with ({m / 'model.yaml'} "
                "training.fbank): low-freq 20 vs 300", [("model", m)])


@case
def align_features_made_with_other_options(w, tmp):
    d = copy(w.feats, tmp / "feats")
    (d / "feats.scp").write_text((d / "feats.scp").read_text().replace(str(w.feats), str(d)))
    (d / "fbank.conf").write_text("--num-mel-bins=40\n--low-freq=300\n")
    return Case(["align", "--model-dir", w.model, "--lang", w.lang, d, tmp / "ali"], 1,
                f"{d / 'fbank.conf'} differs from the features the model was trained on ({w.model / 'model.yaml'}): "
                "low-freq 300 vs 20", [("ali", tmp / "ali")])


@case
def model_dir_tree_replaced_after_packing(w, tmp):
    m = copy(w.model, tmp / "model")
    shutil.copy(w.tri / "tree", m / "tree")
    return Case(["decode", "--model-dir", m, w.feats, tmp / "dec"], 1, f"{m / 'tree'} was changed after",
                [("decode", tmp / "dec")])


@case
def decode_features_made_with_other_options(w, tmp):
    d = copy(w.feats, tmp / "feats")
    (d / "feats.scp").write_text((d / "feats.scp").read_text().replace(str(w.feats), str(d)))
    (d / "fbank.conf").write_text("--num-mel-bins=40\n--sample-frequency=8000\n")
    return Case(["decode", "--model-dir", w.model, d, tmp / "dec"], 1, "sample-frequency 8000 vs 16000",
                [("decode", tmp / "dec")])


@case
def decode_with_most_features_missing(w, tmp):
    d = copy(w.feats, tmp / "feats")
    lines = (d / "feats.scp").read_text().replace(str(w.feats), str(d)).splitlines()
    lines[1] = lines[1].split()[0] + f" {d}/nowhere.ark:5"
    lines[2] = lines[2].split()[0] + f" {d}/nowhere.ark:9"
    (d / "feats.scp").write_text("\n".join(lines) + "\n")
    return Case(["decode", "--model-dir", w.model, d, tmp / "dec"], 1, "2 of 3 utterances failed",
                [("decode", tmp / "dec")])


# transcription
@case
def transcribe_zero_sample_wav(w, tmp):
    sf.write(tmp / "empty.wav", np.zeros(0, np.int16), 16000)
    return Case(["transcribe", "--model-dir", w.model, tmp / "empty.wav"], 1, "empty.wav: empty audio (0 samples)")


@case
def transcribe_nan_wav(w, tmp):
    x = np.zeros(8000, np.float32)
    x[5] = np.nan
    sf.write(tmp / "nan.wav", x, 16000, subtype="FLOAT")
    return Case(["transcribe", "--model-dir", w.model, tmp / "nan.wav"], 1, "NaN/inf samples")


# lattices, scoring
@case
def lmrescore_with_another_word_table(w, tmp):
    dec = tmp / "dec"
    assert main(["decode", "--no-progress", "--lattices", "--model-dir", str(w.model), str(w.feats), str(dec)]) == 0
    (tmp / "words.txt").write_text((w.graph / "words.txt").read_text().replace("CAT", "DOG"))
    return Case(["lmrescore", "--old-lm", w.lm, "--new-lm", w.lm, "--words", tmp / "words.txt", dec, tmp / "res"], 1,
                f"{tmp / 'words.txt'} is not the word table the lattices of {dec}", [("decode", tmp / "res")])


@case
def lmrescore_with_garbage_lm(w, tmp):
    dec = tmp / "dec"
    assert main(["decode", "--no-progress", "--lattices", "--model-dir", str(w.model), str(w.feats), str(dec)]) == 0
    (tmp / "new.arpa").write_text("not an arpa file\n")
    return Case(["lmrescore", "--old-lm", w.lm, "--new-lm", tmp / "new.arpa", dec, tmp / "res"], 1, "new.arpa",
                [("decode", tmp / "res")])


@case
def compute_wer_hypothesis_not_utf8(w, tmp):
    (tmp / "hyp").write_bytes(b"u1 CAT AT\nu2 B\xe4T\n")
    return Case(["compute-wer", w.feats / "text", tmp / "hyp"], 1, "hyp:2: not valid UTF-8")


# -- the checks -----------------------------------------------------------------------------

def _looks_finished(kind: str, path: Path) -> bool:
    from asr.align.ali_dir import AliDir
    from asr.errors import AsrError
    from asr.graph.graph_dir import GraphDir
    from asr.lattice.decode_dir import DecodeDir
    from asr.nnet.model_dir import ModelDir

    if kind == "absent":
        return path.exists()
    loader = {"model": ModelDir.load, "graph": GraphDir.load, "ali": AliDir.load, "decode": DecodeDir.load}[kind]
    try:
        loader(path)
    except AsrError:
        return False
    return True


def test_the_table_has_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, world, tmp_path, capsys, caplog, monkeypatch):
    import logging

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # conf/fbank.conf
    c = CASES[name](world, tmp_path)
    capsys.readouterr()
    caplog.clear()
    caplog.set_level(logging.INFO)
    argv = [str(a) for a in c.argv]
    rc = main(argv)
    out = capsys.readouterr()
    err = out.err + "".join(f"{r.levelname} {r.getMessage()}\n" for r in caplog.records)
    assert "Traceback" not in err, err
    assert rc == c.exit, f"exit {rc}, expected {c.exit}: {err[-2000:]}"
    if c.message == "error":
        lines = [ln for ln in err.splitlines() if ln.startswith(f"asr {argv[0]}: error:")]
        assert len(lines) == 1, err
        assert c.culprit in lines[0], lines[0]
        assert "error: unexpected " not in lines[0]
    elif c.message == "warning":
        assert any(c.culprit in ln for ln in err.splitlines() if "WARNING" in ln), err
    else:
        assert c.culprit in out.out, out.out
    for kind, path in c.unfinished:
        assert not _looks_finished(kind, path), f"{path} looks finished after a failed {argv[0]}"
