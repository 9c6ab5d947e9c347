"""Session-wide fixtures shared by several test files."""

import pytest

from product_fixtures import make_world

# One LibriSpeech-shaped corpus (synthesised FLAC speech, lexicon, ARPA LMs) for the data-prep,
# Kaldi-import and recipe tests. train-clean-360 carries the odd cases data prep must skip.
LIBRISPEECH_PARTS = {
    "train-clean-100": 40, "train-clean-360": 14, "train-other-500": 10, "train-clean-5": 40,
    "dev-clean": 8, "dev-other": 6, "dev-clean-2": 8,
    "test-clean": 8, "test-other": 6,
}


@pytest.fixture(scope="session")
def librispeech_corpus(tmp_path_factory):
    from librispeech_fixture import make_librispeech_fixture

    return make_librispeech_fixture(tmp_path_factory.mktemp("librispeech"), LIBRISPEECH_PARTS,
                                    odd_parts=("train-clean-360",))


@pytest.fixture(scope="session")
def kaldi_exp_mini(librispeech_corpus, tmp_path_factory):
    """A Kaldi tri1-style experiment on train-clean-5, in Kaldi's binary formats, with graph."""
    from kaldi_exp_fixture import make_kaldi_exp

    return make_kaldi_exp(librispeech_corpus, ["train-clean-5"], tmp_path_factory.mktemp("kaldi_mini"))


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The product world of test_bad_input.py / test_products.py (tests/product_fixtures.py), made once."""
    return make_world(tmp_path_factory.mktemp("world"))
