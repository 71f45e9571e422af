"""The record table: a key's values for keys in it, zeros for keys not in it, whatever the keys look like;
the same from C and from numpy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pochta.filters.spam import table
from pochta.filters.spam.table import Table

_KEYS = st.lists(st.integers(min_value=0, max_value=2**64 - 1), unique=True, max_size=300)


@pytest.fixture(params=["C", "numpy"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "numpy":
        monkeypatch.setattr(table, "_tables", None)
    elif table._tables is None:
        assert os.environ.get("CI") != "true", "the C extension was not built (setup.py; gcc and Python's headers)"
        pytest.skip("the C extension is not built here")
    yield request.param


def _values(count: int, width: int) -> np.ndarray:
    return np.arange(1, count * width + 1, dtype=np.float64).reshape(count, width) / 7


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # it holds for every input, as meant
@given(
    keys=_KEYS,
    others=st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=100),
    width=st.sampled_from([1, 2, 3, 5]),  # the C search copies 1 and 3 values (the models' widths) its own way
)
def test_every_key_finds_its_values_and_others_find_zeros(
    implementation: str, keys: list[int], others: list[int], width: int
) -> None:
    values = _values(len(keys), width)
    found = Table(np.array(keys, dtype=np.uint64), values)
    asked = keys[::-1] + others
    expected = [values[keys.index(key)] if key in keys else np.zeros(width) for key in asked]
    assert np.array_equal(found.find(np.array(asked, dtype=np.uint64)), np.array(expected).reshape(-1, width))


def test_many_keys_of_one_pattern_and_edge_cases(implementation: str) -> None:
    keys = np.arange(0, 40_000, dtype=np.uint64) * np.uint64(1 << 40)  # differing in their high bits only
    values = _values(len(keys), 1)
    found = Table(keys, values)
    assert np.array_equal(found.find(keys), values)
    assert not found.find(keys + np.uint64(1)).any()
    assert Table(np.empty(0, dtype=np.uint64), np.empty((0, 2))).find(keys[:3]).tolist() == [[0, 0]] * 3
    assert len(found.find(np.empty(0, dtype=np.uint64))) == 0
    zero = Table(np.array([0, 1, 2], dtype=np.uint64), _values(3, 1))  # 0 is a key: the free mark is another
    assert zero.find(np.array([2, 0, 3, 1], dtype=np.uint64)).ravel().tolist() == [3 / 7, 1 / 7, 0.0, 2 / 7]
    twice = Table(np.array([5, 5], dtype=np.uint64), np.array([[1.0], [2.0]]))  # of a key given twice, the first
    assert twice.find(np.array([5], dtype=np.uint64)).tolist() == [[1.0]]


def test_keys_wanting_one_slot_line_up_after_it(implementation: str) -> None:
    probe = Table(np.arange(200, dtype=np.uint64), _values(200, 1))  # the same size of table as below
    candidates = np.random.default_rng(7).integers(0, 2**63, size=200_000, dtype=np.uint64)
    slots = probe._slots(candidates)
    crowded = candidates[slots == slots[0]][:12]  # twelve keys wanting one slot, and the slots after it
    keys = np.concatenate([np.arange(188, dtype=np.uint64) * np.uint64(7919), crowded])
    values = _values(len(keys), 2)
    found = Table(keys, values)
    assert np.array_equal(found.find(keys), values)
    assert not found.find(crowded + np.uint64(1)).any()


def test_the_c_search_refuses_buffers_that_do_not_fit() -> None:
    if table._tables is None:
        assert os.environ.get("CI") != "true", "the C extension was not built"
        return
    records = np.zeros((16, 2), dtype=np.uint64)
    keys = np.zeros(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="do not match"):
        table._tables.find(records, 2, 5, 1, keys, np.empty(4))  # 2^5 records claimed, 16 there
    with pytest.raises(ValueError, match="do not match"):
        table._tables.find(records, 2, 4, 1, keys, np.empty(3))  # room for 3 results, 4 keys
