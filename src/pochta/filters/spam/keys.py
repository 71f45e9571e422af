"""64-bit keys of word features, computed straight from a text's octets, without a str per word.

Scoring a message used to make a Python string of each of its ~1,100 body words and word pairs, put
them in a set and hash them: a quarter of its CPU. :func:`word_keys` finds the words of a text's UTF-8
and hashes them and each neighbouring pair at once; :func:`string_keys` gives any token string the same
key (a model's tokens, a message's header tokens), so a model keyed by strings is looked up with keys
from octets. The work is done by a small C extension (``_wordkeys.c``, built when a C compiler and
Python's headers are there) or, without it, by the same arithmetic in numpy: the same keys, slower.

A key is polynomial over the octets (the sum of (octet + 1) × P^i, i counted from the word's start,
modulo 2^64), its length mixed in, finished with MurmurHash3's 64-bit mixer. It is the same in every
process and on every machine (unlike Python's ``hash()`` of a str). A token with a space is keyed as a
pair: its part before the first space and the rest, each hashed, then combined, which is what a body
word pair "a b" is. Two tokens with one key (about one chance in 10^9 for a model of 200,000) count as
one feature; crafting one only buys what adding the other word would.

A body word is a run of 2-40 characters between separators (``"'`<>()[]{},;:|*=`` and whitespace;
non-ASCII whitespace is made a space before, see tokens.py), a longer run being cut into pieces of 40
characters and a last piece of one character dropped: what the pattern
``[^\\s"'`<>()\\[\\]{},;:|*=]{2,40}`` finds (the tests check both implementations against it).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

import numpy as np
import numpy.typing as npt

try:
    from . import _wordkeys  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the numpy implementation below
    _wordkeys = None

Keys = npt.NDArray[np.uint64]
Offsets = npt.NDArray[np.intp]
Spans = npt.NDArray[np.int64]  # (n, 2): start and end of each word in the octets
_Integer = TypeVar("_Integer", bound=np.unsignedinteger)

IN_C = _wordkeys is not None
MIN_WORD, MAX_WORD = 2, 40
SEPARATORS = b"\"'`<>()[]{},;:|*=" + b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"

_P = 0x100000001B3  # FNV's 64-bit prime: odd, so it has an inverse modulo 2^64
_P_INVERSE = pow(_P, -1, 1 << 64)
_LENGTH = np.uint64(0x9E3779B97F4A7C15)
_PAIR = np.uint64(0xC2B2AE3D27D4EB4F)
_PAIRED = np.uint64(0x165667B19E3779F9)  # so that no pair's key is a word's by construction
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_INSIDE = bytes(0 if code in SEPARATORS else 1 for code in range(256))  # for bytes.translate
_NO_OFFSETS: Offsets = np.empty(0, dtype=np.intp)
_powers: Keys = np.ones(1, dtype=np.uint64)  # P^i and P^-i modulo 2^64, grown on demand
_inverses: Keys = np.ones(1, dtype=np.uint64)


def word_keys(octets: bytes) -> tuple[Keys, Spans]:
    """The words of a text's UTF-8: the keys of each word, then of each pair of neighbours (repeats
    included); and where each word is."""
    if _wordkeys is not None:
        keys, spans = _wordkeys.word_keys(octets)
        return np.frombuffer(keys, dtype=np.uint64), np.frombuffer(spans, dtype=np.int64).reshape(-1, 2)
    spans = _words(octets)
    found = _Sums(octets).keys(spans[:, 0], spans[:, 1])
    return np.concatenate((found, pair_keys(found[:-1], found[1:]))), spans


def string_keys(strings: Collection[str]) -> Keys:
    """The key of each string (a token with a space as the pair of its part before and after the first)."""
    if _wordkeys is not None:
        return np.frombuffer(_wordkeys.string_keys(list(strings)), dtype=np.uint64)
    encoded = [string.encode("utf-8", "surrogatepass") for string in strings]
    joined = b"".join(encoded)
    lengths = np.fromiter(map(len, encoded), dtype=np.intp, count=len(encoded))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    spaces = np.flatnonzero(np.frombuffer(joined, dtype=np.uint8) == 0x20)
    if len(spaces):  # each string's first space, where it comes before the string's end
        after = np.searchsorted(spaces, starts)
        space = spaces[np.minimum(after, len(spaces) - 1)]
        paired = np.flatnonzero((after < len(spaces)) & (space < ends))
    else:
        space = paired = _NO_OFFSETS
    lefts = ends.copy()
    lefts[paired] = space[paired]
    sums = _Sums(joined)
    keys = sums.keys(starts, lefts)
    keys[paired] = pair_keys(keys[paired], sums.keys(space[paired] + 1, ends[paired]))
    return keys


def pair_keys(left: Keys, right: Keys) -> Keys:
    """The keys of word pairs from the keys of their two words (in order: "a b" is not "b a")."""
    return _mix((left * _PAIR + right) ^ _PAIRED)


def unique(keys: npt.NDArray[_Integer]) -> npt.NDArray[_Integer]:
    """The distinct keys (or 4-grams) in ascending order (np.unique measured five times slower for a
    message's)."""
    keys = np.sort(keys)
    if len(keys) < 2:
        return keys
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


# ---- the numpy implementation (uint64 arrays wrap around modulo 2^64 without a warning, by design) ----


def _words(octets: bytes) -> Spans:
    edges = np.diff(np.frombuffer(b"\0" + octets.translate(_INSIDE) + b"\0", dtype=np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    first = None
    if octets.isascii():
        lengths = ends - starts
    else:  # characters, not octets: count the octets that start one
        first = (np.frombuffer(octets, dtype=np.uint8) & 0xC0) != 0x80
        chars = np.zeros(len(octets) + 1, dtype=np.intp)
        np.cumsum(first, out=chars[1:])
        lengths = chars[ends] - chars[starts]
    kept = (lengths >= MIN_WORD) & (lengths <= MAX_WORD)
    pieces = [(int(start), int(end)) for start, end in zip(starts[kept], ends[kept], strict=True)]
    for run in np.flatnonzero(lengths > MAX_WORD).tolist():  # rare: base64 or a long URL in a text part
        start, end = int(starts[run]), int(ends[run])
        offsets = range(start, end) if first is None else (start + np.flatnonzero(first[start:end])).tolist()
        cuts = [start, *offsets[MAX_WORD::MAX_WORD]]  # as C cuts: at the first octet of each 41st character
        for piece, (cut, after) in enumerate(zip(cuts, [*cuts[1:], end], strict=True)):
            if len(offsets) - piece * MAX_WORD >= MIN_WORD:
                pieces.append((cut, after))
    pieces.sort()
    return np.array(pieces, dtype=np.int64).reshape(-1, 2)


def _grow(size: int) -> None:
    global _powers, _inverses
    if len(_powers) >= size:
        return
    size = max(size, 2 * len(_powers), 4096)
    powers, inverses = _powers, _inverses  # doubling: the powers beyond n are the first n times P^n
    step, step_inverse = pow(_P, len(powers), 1 << 64), pow(_P_INVERSE, len(powers), 1 << 64)
    while len(powers) < size:
        powers = np.concatenate((powers, powers * np.uint64(step)))
        inverses = np.concatenate((inverses, inverses * np.uint64(step_inverse)))
        step, step_inverse = step * step % (1 << 64), step_inverse * step_inverse % (1 << 64)
    _powers, _inverses = powers, inverses


def _mix(values: Keys) -> Keys:
    """MurmurHash3's finaliser: every bit of the input moves every bit of the output."""
    values = values ^ (values >> _S33)
    values *= _M1
    values ^= values >> _S33
    values *= _M2
    values ^= values >> _S33
    return values


class _Sums:
    """A text's octets summed once, so that the key of any span of it is a few operations."""

    def __init__(self, octets: bytes) -> None:
        _grow(len(octets) + 1)
        values = np.frombuffer(octets, dtype=np.uint8).astype(np.uint64)
        values += np.uint64(1)  # so that a NUL octet counts
        values *= _powers[: len(values)]
        self._sums = np.zeros(len(values) + 1, dtype=np.uint64)
        np.cumsum(values, out=self._sums[1:])

    def keys(self, starts: npt.NDArray[np.integer], ends: npt.NDArray[np.integer]) -> Keys:
        hashed = self._sums[ends] - self._sums[starts]
        hashed *= _inverses[starts]  # now the sum of (octet + 1) × P^(i - start)
        hashed ^= (ends - starts + 1).astype(np.uint64) * _LENGTH  # + 1: the empty string's is not 0
        return _mix(hashed)
