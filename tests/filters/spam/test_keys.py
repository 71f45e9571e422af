"""Word feature keys from octets: the words the defining pattern finds, the keys their strings get, the same
from C and from numpy, in every process and on every machine."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pochta.filters.spam import keys, tokens
from pochta.filters.spam.keys import Keys, pair_keys, string_keys, unique, word_keys
from pochta.filters.spam.tokens import features

from .processes import outputs_under_hash_seeds
from .samples import ham, message, spam

# What a body word is: the pattern the tokeniser once ran over the lowercased text.
_WORD = re.compile(r"[^\s\"'`<>()\[\]{},;:|*=]{2,40}")
_T = TypeVar("_T")
_CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "spam" / "spamassassin"
_PIECES = [*"ab c:;*=\t\n\x1c\x85\xa0\u2003\u3000éİ\U0001f600\ud800\x00", "z" * 7]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=200).map("".join)


@pytest.fixture(params=["C", "numpy"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "numpy":
        monkeypatch.setattr(keys, "_wordkeys", None)
    elif not keys.IN_C:
        assert os.environ.get("CI") != "true", "the C extension was not built (setup.py; gcc and Python's headers)"
        pytest.skip("the C extension is not built here")
    yield request.param


def _distinct(found: Keys) -> bool:
    return len(unique(found)) == len(found)


def _in_numpy(run: Callable[[], _T]) -> _T:
    """What `run` gives with keys.py's numpy implementation in place of the C extension."""
    module, keys._wordkeys = keys._wordkeys, None
    try:
        return run()
    finally:
        keys._wordkeys = module


def _words_of(text: str) -> tuple[list[str], np.ndarray]:
    found = tokens.Features()
    tokens._text_features(text, found)
    return found.words.strings(), found.words.keys


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # it holds for every input, as meant
@given(text=_TEXT, run=st.integers(min_value=0, max_value=130))
def test_body_words_are_the_patterns_words_and_keyed_as_strings(implementation: str, text: str, run: int) -> None:
    text += " " + "q" * run + "é" * (run // 3)  # runs longer than 40 characters are cut into pieces
    strings, found = _words_of(text)
    words = _WORD.findall(text.lower())
    assert strings == words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    assert np.array_equal(found, string_keys(strings))


@given(text=_TEXT)
def test_c_and_numpy_give_the_same_keys(text: str) -> None:
    if not keys.IN_C:
        assert os.environ.get("CI") != "true", "the C extension was not built"
        return
    octets = text.lower().encode("utf-8", "surrogatepass")
    from_c = word_keys(octets), string_keys([text, text.lower(), f"x {text}"])
    from_numpy = _in_numpy(lambda: (word_keys(octets), string_keys([text, text.lower(), f"x {text}"])))
    assert np.array_equal(from_c[0][0], from_numpy[0][0]) and np.array_equal(from_c[0][1], from_numpy[0][1])
    assert np.array_equal(from_c[1], from_numpy[1])


def test_a_messages_keys_are_its_tokens_keys(implementation: str) -> None:
    samples = [spam(n) for n in range(5)] + [ham(n) for n in range(5)] + [message("Fwd: a b", number=3)]
    corpus = sorted((_CORPUS / "spam").iterdir())[:100] if _CORPUS.is_dir() else []
    for data in samples + [path.read_bytes() for path in corpus]:
        found = features(data)
        assert len(found.keys) == len(found.tokens)
        body = found.body_count
        assert np.array_equal(found.keys[:body], unique(string_keys(found.tokens - found.head)))
        assert np.array_equal(found.keys[body:], unique(string_keys(found.head)))
        # The header's tokens have prefixes no other feature has (so each block's keys are its own).
        assert found.head and all(":" in token for token in found.head)
        assert not {t.partition(":")[0] for t in found.head} & {t.partition(":")[0] for t in found.named}
        assert not any(":" in word for word in found.words.strings())


def test_pairs_keep_their_order_and_every_token_has_its_own_key(implementation: str) -> None:
    left, right = string_keys(["cheap", "pills"])
    assert string_keys(["cheap pills"])[0] == pair_keys(np.array([left]), np.array([right]))[0]
    assert string_keys(["pills cheap"])[0] != string_keys(["cheap pills"])[0]
    assert _distinct(string_keys(["cheap", "pills", "cheap pills", "s:cheap", "", " ", "\x00", "\x00\x00", "a  b"]))
    assert not _distinct(string_keys(["cheap", "cheap"]))
    assert len(string_keys([])) == 0 and len(word_keys(b"")[0]) == 0 and len(word_keys(b"a ; b")[0]) == 0


def test_keys_are_the_same_in_every_process_and_on_every_machine(implementation: str) -> None:
    # The definition pinned: a change to it must be deliberate (keys are never stored, but the C and numpy
    # implementations and every process must agree).
    pinned = [2705097367907323598, 14643186000696625282, 11286133854226296554, 5436000694942776601]
    assert string_keys(["cheap", "cheap pills", "", "s:héllo"]).tolist() == pinned
    child = "from pochta.filters.spam.keys import string_keys; print(string_keys(['cheap', 'a b']).tolist())"
    seen = outputs_under_hash_seeds(child, ("1", "2"))
    assert seen == {f"{string_keys(['cheap', 'a b']).tolist()}\n"}


@given(octets=st.binary(max_size=300), run=st.integers(min_value=0, max_value=130))
def test_c_and_numpy_agree_on_any_octets(octets: bytes, run: int) -> None:
    # The tokeniser gives them UTF-8 only; on other octets they must still agree (and C stay in bounds).
    octets += b"\x80" * (run % 3) + b"q" * run
    if not keys.IN_C:
        assert os.environ.get("CI") != "true", "the C extension was not built"
        return
    from_c = word_keys(octets)
    from_numpy = _in_numpy(lambda: word_keys(octets))
    assert np.array_equal(from_c[0], from_numpy[0]) and np.array_equal(from_c[1], from_numpy[1])
