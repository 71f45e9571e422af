"""The values of features, looked up many at a time: what scoring a message against a big model costs.

Scoring a message looks up about 900 word features and 1,700 4-grams in models of 100,000-250,000 entries.
One dictionary lookup per feature costs about 100 ns in CPython (the table, the entry, the key and the
value are four cache misses). A :class:`Table` keeps each key and its values in one record of an
open-addressing table (linear probing, at most half full, built in numpy), so a feature costs one cache miss, and
looks up a whole array of keys in one loop in C (``_tables.c``: the CPU overlaps the misses of one key
with the next's; numpy's passes over separate arrays of keys, rows and values measured 3-5 times slower,
inside a message's other work that leaves the table out of the caches). Without the C extension the same
records are searched with numpy, more slowly.

Keys are 64-bit integers: a 4-gram's value, or a word feature's key (keys.py, the same in every process).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .keys import Keys

try:
    from . import _tables  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the numpy search below
    _tables = None

Values = npt.NDArray[np.float64]
IN_C = _tables is not None

_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key × this pick the slot


class Table:
    """An exact map from 64-bit keys to rows of float64 values (zeros for a key not in it)."""

    def __init__(self, keys: Keys, values: Values) -> None:
        """`values`: one row per key (n, width); of keys given twice, the first counts."""
        keys, first = np.unique(keys, return_index=True)
        values = values[first]
        self.size = len(keys)
        self.width = values.shape[1]
        self._bits = max(4, (2 * self.size).bit_length())
        empty = np.uint64(0)  # the key of a free record: any that is not a key
        while len(keys) and keys[np.searchsorted(keys, empty) % len(keys)] == empty:
            empty += np.uint64(1)
        self._empty = empty
        # Linear probing without wrapping around: in the order of their first slots, each key goes to that
        # slot or, when it is taken, right after the key before (a running maximum, all in numpy), and the
        # records run on past the 2^bits slots as far as that takes them, plus one free record to end every
        # search.
        home = self._slots(keys)
        order = np.argsort(home, kind="stable")
        rank = np.arange(self.size, dtype=np.intp)
        at = np.maximum.accumulate(home[order] - rank) + rank if self.size else rank
        records = np.zeros((max(1 << self._bits, int(at[-1]) + 1 if self.size else 0) + 1, 1 + self.width), np.uint64)
        records[:, 0] = empty
        records[at, 0] = keys[order]
        records[at, 1:] = values[order].view(np.uint64)
        self._records = records
        self._key_column: Keys | None = None  # the keys alone, for the numpy search

    def find(self, keys: Keys) -> Values:
        """The values of each key, (len(keys), width), zeros for a key not in the table."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        found = np.empty((len(keys), self.width))
        if _tables is not None:
            _tables.find(self._records, self.width + 1, self._bits, int(self._empty), keys, found)
            return found
        # numpy: every key still looking probes one record further each round, in the column of keys alone
        # (gathering whole records per round cost twice as much); the values are gathered once at the end.
        if self._key_column is None:
            self._key_column = np.ascontiguousarray(self._records[:, 0])
        column = self._key_column
        at = np.full(len(keys), len(self._records) - 1, dtype=np.intp)  # the last record: free, all zeros
        pending = np.arange(len(keys), dtype=np.intp)
        slot = self._slots(keys)
        while len(pending):
            stored = column[slot]
            hit = stored == keys[pending]
            at[pending[hit]] = slot[hit]
            looking = ~hit & (stored != self._empty)
            pending, slot = pending[looking], slot[looking] + 1
        found[:] = self._records[at, 1:].view(np.float64)
        return found

    def _slots(self, keys: Keys) -> npt.NDArray[np.intp]:
        return ((keys * _SPREAD) >> np.uint64(64 - self._bits)).astype(np.intp)
