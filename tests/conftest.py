"""Session fixtures shared by several test modules."""

import pytest

from product_fixtures import make_world


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The product world (tests/product_fixtures.py), made once."""
    return make_world(tmp_path_factory.mktemp("world"))
