"""The row lookup table: exact for keys in it, `size` for keys not in it, whatever the keys look like."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pochta.filters.spam.table import Rows, total

_KEYS = st.lists(st.integers(min_value=0, max_value=2**64 - 1), unique=True, max_size=300)


@given(_KEYS, st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=100))
def test_every_key_finds_its_row_and_others_find_none(keys: list[int], others: list[int]) -> None:
    rows = Rows(np.array(keys, dtype=np.uint64))
    asked = keys[::-1] + others
    expected = [keys.index(key) if key in keys else len(keys) for key in asked]
    assert rows.find(np.array(asked, dtype=np.uint64)).tolist() == expected


def test_many_keys_of_one_pattern() -> None:
    keys = np.arange(0, 40_000, dtype=np.uint64) * np.uint64(1 << 40)  # differing in their high bits only
    rows = Rows(keys)
    assert rows.find(keys).tolist() == list(range(len(keys)))
    assert rows.find(keys + np.uint64(1)).tolist() == [len(keys)] * len(keys)
    assert Rows(np.empty(0, dtype=np.uint64)).find(keys[:3]).tolist() == [0, 0, 0]


def test_keys_with_one_first_slot_line_up_after_it() -> None:
    probe = Rows(np.arange(200, dtype=np.uint64))  # the same size of table as below
    candidates = np.random.default_rng(7).integers(0, 2**63, size=200_000, dtype=np.uint64)
    slots = probe._slots(candidates)
    crowded = candidates[slots == slots[0]][:12]  # twelve keys wanting one slot
    keys = np.concatenate([np.arange(188, dtype=np.uint64) * np.uint64(7919), crowded])
    rows = Rows(keys)
    assert len(rows._further) >= 11
    assert rows.find(keys).tolist() == list(range(len(keys)))
    assert rows.find(crowded + np.uint64(1)).tolist() == [len(keys)] * len(crowded)


def test_an_order_free_sum() -> None:
    values = [0.1, 0.2, 0.3, 1e16, -1e16]
    assert total(np.array(values)) == total(np.array(values[::-1]))
