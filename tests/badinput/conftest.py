"""The ``bad_corpus`` fixture: every bad input of make_corpus.py, written once per test module (read-only)."""

from __future__ import annotations

import pytest
from make_corpus import Corpus, make_corpus


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory) -> Corpus:
    pytest.importorskip("av")
    return make_corpus(tmp_path_factory.mktemp("badinput"))
