"""Row numbers of features, looked up many at a time in C: what scoring a message against a big model costs.

Scoring a message looks up about 900 word features and 1,700 4-grams in models of 100,000-200,000 entries.
One dictionary lookup per feature costs about 100 ns in CPython (the table, the entry, the key and the
value are four cache misses), a third of a millisecond per message. :class:`Rows` keeps the model's keys
in one open-addressing table of plain integers (linear probing, at most a quarter full) and looks up a
whole array of keys with a few numpy operations; the weights sit in arrays indexed by row. (Keeping
each key and its weights in one record, to take one cache miss instead of two, measured no faster:
numpy's structured and two-dimensional gathers cost what the misses saved.)

Keys are 64-bit integers: a 4-gram's value, or a word feature's key (keys.py, the same in every process).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .keys import Keys

Found = npt.NDArray[np.intp]

_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key × this pick the slot
_EMPTY = -1


class Rows:
    """An exact map from distinct 64-bit keys to their positions 0..n-1 in the array it was built from."""

    def __init__(self, keys: Keys) -> None:
        self.size = len(keys)
        bits = max(4, (4 * self.size).bit_length())
        self._shift = np.uint64(64 - bits)
        self._mask = (1 << bits) - 1
        self._keys: Keys = np.zeros(1 << bits, dtype=np.uint64)
        self._rows: Found = np.full(1 << bits, _EMPTY, dtype=np.intp)
        pending = np.arange(self.size, dtype=np.intp)
        slot = self._slots(keys)
        while len(pending):  # each round places, in every free slot wanted, the first key wanting it
            free = np.flatnonzero(self._rows[slot] == _EMPTY)
            _, first = np.unique(slot[free], return_index=True)
            placed = free[first]
            self._rows[slot[placed]] = pending[placed]
            self._keys[slot[placed]] = keys[pending[placed]]
            waiting = np.ones(len(pending), dtype=bool)
            waiting[placed] = False
            pending, slot = pending[waiting], (slot[waiting] + 1) & self._mask
        # How far past its first slot a key may sit: a search looks at the first slot, then at all of the
        # next ones that far at once (two steps in all, where one step per slot took 5-8 on real models).
        occupied = np.flatnonzero(self._rows != _EMPTY)
        moved = (occupied - self._slots(self._keys[occupied])) & self._mask
        self._further = np.arange(1, int(moved.max(initial=0)) + 1, dtype=np.intp)

    def find(self, keys: Keys) -> Found:
        """The row of each key, or :attr:`size` for a key not in the table (give the weight arrays one
        extra zero at the end and the result indexes them directly)."""
        slot = self._slots(keys)
        rows = self._rows[slot]
        taken = rows != _EMPTY
        hit = taken & (self._keys[slot] == keys)
        found: Found = np.where(hit, rows, self.size)
        elsewhere = np.flatnonzero(taken & ~hit)  # its first slot holds another key: look further on
        if len(elsewhere) and len(self._further):
            window = (slot[elsewhere, None] + self._further) & self._mask
            window_rows = self._rows[window]
            match = (self._keys[window] == keys[elsewhere, None]) & (window_rows != _EMPTY)
            at = match.argmax(axis=1)
            each = np.arange(len(elsewhere))
            is_there = match[each, at]
            found[elsewhere[is_there]] = window_rows[each[is_there], at[is_there]]
        return found

    def _slots(self, keys: Keys) -> Found:
        with np.errstate(over="ignore"):  # the product wraps around by design
            return ((keys * _SPREAD) >> self._shift).astype(np.intp)


def total(values: npt.NDArray[np.float64]) -> float:
    """The sum of values looked up for a set (sorted first: a set's order differs between processes, and
    the sum must not), in place."""
    values.sort()
    return float(values.sum())
