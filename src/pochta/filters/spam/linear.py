"""The linear model: online logistic regression over binary features, trained on error.

Three blocks of features, each scored and trained on its own: the word features of tokens.py that come
from the message's header fields (``head``, tokens.Features.head), its other word features (``body``:
the words and word pairs of its text, its MIME structure, links and tags), and the octet 4-grams of the
first few KB of the raw message (``grams``, tokens.grams). A block's log-odds is the sum of its
features' weights divided by the square root of their number (the binary vector scaled to unit length);
the model's log-odds is ``body + HEAD_SHARE * head + GRAM_SHARE * grams``. This is the method of the
best filters of the TREC spam tracks (Goodman and Yih 2006; Sculley and Wachman 2007), with word blocks
beside the character n-grams; the blocks and their mixing were chosen by 5-fold cross-validation on the
training half of the SpamAssassin corpus (bench/spam_accuracy.py --cv; docs/spam.md). Scored apart, the
hundred or so header features of a message are no longer drowned by the many more of its text: over 8
fold seeds, FN at FP <= 0.1% went from 6.8% to 3.5% and 1-ROCA from 0.034% to 0.029% against one block
of all word features. Header and body features have prefixes of their own, so one table holds both.

Training on error with a thick threshold: a block whose log-odds is already on the right side of 0 by
:data:`MARGIN` is not touched; otherwise every feature of the message gets ``RATE * (y - p) / sqrt(n)``
(one step of gradient ascent on the log-likelihood). Bulk training repeats passes over the messages
until none is wrong by the margin (at most :data:`PASSES`), :data:`ORDERS` times in different orders
from the same start, and keeps the mean of the models so trained: training on error ends where the
order took it, and which ham ends up scored highest (what FN at FP <= 0.1% turns on) changed with the
order; the mean does not (over 8 fold seeds, FN at FP <= 0.1% 3.07 +- 1.01% with one order, 2.81 +-
0.31% with the mean of 3). A user's move over IMAP is one step.
Un-learning a message (moved from one class to the other) is the step towards its new class: the
weights cannot be taken back exactly the way counts can, and need not be: the step moves the message's
score across to the new side, which is what the user asked for.

A user's model is a second set of weights added to the global one's: what one user taught moves only
that user's scores, and their steps are taken against the sum (the global model plus their own).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from .keys import string_keys
from .table import Table
from .tokens import Features, Grams

RATE = 30.0  # step size, in log-odds of a unit-length vector
MARGIN = 4.0  # log-odds by which a block must score a message right to be left alone
PASSES = 10  # bulk training: passes over the messages at most
ORDERS = 3  # bulk training: models trained in this many orders, whose mean is kept
GRAM_SHARE = 0.5  # weight of the 4-gram block's log-odds beside the body block's
HEAD_SHARE = 0.5  # weight of the header block's log-odds beside the body block's
_LIMIT = 30.0  # log-odds beyond which exp() is not worth computing

_K = TypeVar("_K", str, int)


@dataclass(slots=True)
class Weights:
    """One linear model (the global one or a user's): a weight per word feature and per 4-gram.

    Change the weights through :meth:`add` and :func:`learn` only: they drop the copy of the weights in
    tables (:class:`table.Table`) that scoring (:func:`logit`) looks features up in, many times faster
    than a dictionary lookup per feature for a model of 200,000 words and 150,000 4-grams.
    """

    words: dict[str, float] = field(default_factory=dict)
    grams: dict[int, float] = field(default_factory=dict)
    _index: _Index | None = field(default=None, compare=False, repr=False)

    def add(self, change: Weights) -> None:
        """Add the weight changes of :func:`learn` (as the store does)."""
        _add(self.words, change.words)
        _add(self.grams, change.grams)
        self._index = None

    def index(self) -> _Index:
        """The weights in arrays for scoring (built on first use after a change: 0.1 s for a big model)."""
        if self._index is None:
            self._index = _Index.of(self)
        return self._index

    def __bool__(self) -> bool:
        return bool(self.words or self.grams)


@dataclass(frozen=True, slots=True)
class _Index:
    words: Table
    grams: Table

    @classmethod
    def of(cls, model: Weights) -> _Index:
        return cls(
            words=Table(string_keys(model.words.keys()), _column(model.words.values())), grams=grams_table(model)
        )


def grams_table(model: Weights) -> Table:
    """The table of a model's 4-gram weights."""
    keys = np.fromiter(model.grams.keys(), dtype=np.uint64, count=len(model.grams))
    return Table(keys, _column(model.grams.values()))


def _column(values: Collection[float]) -> npt.NDArray[np.float64]:
    return np.fromiter(values, dtype=np.float64, count=len(values)).reshape(-1, 1)


Sums = tuple[float, float, float]  # a message's summed weights: body, head, 4-grams


def global_sums(model: Weights, message: Features) -> Sums:
    """The summed weights of each block of a message in `model` (a global model): what does not depend on
    the recipient, so a message for many is looked up once."""
    index = model.index()
    return block_sums(index.words.find(message.keys)[:, 0], message, index.grams)


def block_sums(word_weights: npt.NDArray[np.float64], message: Features, grams: Table) -> Sums:
    """The blocks' sums from the weights of the message's word features (found for message.keys) and the
    table of 4-gram weights. In the keys' order, which is the same in every process: so are the sums."""
    body = message.body_count
    return float(word_weights[:body].sum()), float(word_weights[body:].sum()), gram_sum(grams, message.grams)


def gram_sum(table: Table, grams: Grams) -> float:
    """The summed weights of 4-grams (which come in ascending order, as the keys of words do: each sum
    adds in the same order in every process)."""
    return float(table.find(grams.astype(np.uint64)).sum()) if len(grams) else 0.0


def logit(model: Weights, message: Features, user: Weights | None = None, *, sums: Sums | None = None) -> float:
    """The model's log-odds that the message is spam (0: undecided), with a user's weights added when
    given (which makes the message's tokens as strings). `sums`: global_sums() of the message, when the
    caller has them already."""
    body_total, head_total, gram_total = sums if sums is not None else global_sums(model, message)
    grams = message.grams
    if user:
        head_total += _word_sum(message.head, user.words)
        body_total += _word_sum(message.tokens - message.head, user.words)
        if user.grams and len(grams):
            gram_total += _gram_sum(grams.tolist(), user.grams)
    head = len(message.keys) - message.body_count
    return (
        _scaled(body_total, message.body_count)
        + HEAD_SHARE * _scaled(head_total, head)
        + GRAM_SHARE * _scaled(gram_total, len(grams))
    )


def blocks(
    model: Weights, body: Collection[str], head: Collection[str], grams: Grams, user: Weights | None = None
) -> Sums:
    """The log-odds of each block, (body, head, grams), while training: features looked up one by one in
    the dictionaries, as the weights change after every step (logit() gives the same from the tables).
    `head`: the word features from the header fields, `body`: the others (tokens.Features.tokens less
    its head; each feature once)."""
    listed = grams.tolist()
    body_total = _word_sum(body, model.words) + (_word_sum(body, user.words) if user else 0.0)
    head_total = _word_sum(head, model.words) + (_word_sum(head, user.words) if user else 0.0)
    gram_total = _gram_sum(listed, model.grams) + (_gram_sum(listed, user.grams) if user else 0.0)
    return _scaled(body_total, len(body)), _scaled(head_total, len(head)), _scaled(gram_total, len(listed))


def _word_sum(words: Iterable[str], table: Mapping[str, float]) -> float:
    # One lookup per feature (an intersection with the table first measured 3 times slower). The order of a
    # set of strings differs between processes (hash randomisation), so the sum is exact (fsum) to come out
    # the same in all of them.
    return math.fsum(map(table.get, words, repeat(0.0))) if table else 0.0


def _gram_sum(grams: list[int], table: Mapping[int, float]) -> float:
    return sum(map(table.get, grams, repeat(0.0))) if table else 0.0  # in ascending order: the same everywhere


def _scaled(total: float, size: int) -> float:
    """A block's log-odds: its summed weights over the length of its binary vector (0 for no features)."""
    return total / math.sqrt(size + 1) if size else 0.0


def learn(
    target: Weights,
    body: Collection[str],
    head: Collection[str],
    grams: Grams,
    *,
    is_spam: bool,
    base: Weights | None = None,
    change: Weights | None = None,
) -> bool:
    """One training step on error: each block that does not score the message right by MARGIN moves its
    weights in `target` toward the message's class (`body` and `head` as for blocks()). The score is
    that of `base` plus `target` when a base is given (a user's model over the global one), of `target`
    alone otherwise. The same weight changes are added to `change` when given (for the store). Returns
    whether anything changed."""
    body_part, head_part, gram_part = (
        blocks(base, body, head, grams, target) if base is not None else blocks(target, body, head, grams)
    )
    steps = [
        (body, _step(body_part, len(body), is_spam=is_spam)),
        (head, _step(head_part, len(head), is_spam=is_spam)),
    ]
    for features, step in steps:
        if step:
            _add_to(target.words, features, step)
            target._index = None
            if change is not None:
                _add_to(change.words, features, step)
    gram_step = _step(gram_part, len(grams), is_spam=is_spam)
    if gram_step:
        listed = grams.tolist()
        _add_to(target.grams, listed, gram_step)
        target._index = None
        if change is not None:
            _add_to(change.grams, listed, gram_step)
    return bool(steps[0][1] or steps[1][1] or gram_step)


def _step(part: float, size: int, *, is_spam: bool) -> float:
    """The change of each feature's weight for a block scoring `part`, 0 when it scores right by MARGIN."""
    if size == 0 or (part if is_spam else -part) > MARGIN:
        return 0.0
    probability = 1.0 / (1.0 + math.exp(-max(-_LIMIT, min(_LIMIT, part))))
    return RATE * (float(is_spam) - probability) / math.sqrt(size + 1)


def _add_to(table: dict[_K, float], features: Iterable[_K], step: float) -> None:
    get = table.get
    for key in features:
        table[key] = get(key, 0.0) + step


def _add(table: dict[_K, float], deltas: Mapping[_K, float]) -> None:
    get = table.get
    for key, delta in deltas.items():
        table[key] = get(key, 0.0) + delta


Example = tuple[Collection[str], Collection[str], Grams, bool]  # body, head, 4-grams, is spam


@dataclass(frozen=True, slots=True)
class Trained:
    """What bulk training did: the change to the model it started from, and how it got there."""

    change: Weights
    steps: int  # messages stepped on, in all passes of all orders
    passes: int
    orders: int


def train(model: Weights, examples: Sequence[Example], *, seed: int = 0) -> int:
    """Bulk training in memory of `model` over (body, head, grams, is_spam) examples (see train_change):
    `model` takes the change. Returns the number of steps taken in all orders."""
    trained = train_change(model, Weights(), examples, seed=seed)
    model.add(trained.change)
    return trained.steps


def train_change(
    base: Weights,
    start: Weights,
    examples: Sequence[Example],
    *,
    seed: int = 0,
    on_pass: Callable[[], None] | None = None,
) -> Trained:
    """Bulk training: for each of ORDERS orders, passes over the examples in a shuffled order until none is
    wrong by MARGIN, at most PASSES, each order from a copy of `start` (scored over `base`: the global
    model, which for the global model itself is all there is and `start` empty); the change kept is
    that of the mean of the ORDERS models so trained. `on_pass` is called after each pass. An order that
    took no step at all means every example was right from the start: the other orders would be too."""
    models: list[Weights] = []
    steps = passes = 0
    for number in range(ORDERS):
        model = Weights(words=dict(start.words), grams=dict(start.grams))
        models.append(model)
        order = list(examples)
        for count in range(PASSES):
            random.Random(order_seed(seed, number, count)).shuffle(order)
            taken = sum(
                learn(model, body, head, grams, is_spam=is_spam, base=base) for body, head, grams, is_spam in order
            )
            steps += taken
            passes += 1
            if on_pass is not None:
                on_pass()
            if not taken:
                break
        if not steps:
            break
    return Trained(change=mean_change(models, start), steps=steps, passes=passes, orders=len(models))


def order_seed(seed: int, order: int, count: int) -> int:
    """The seed of the shuffle of pass `count` of order `order` of bulk training."""
    return seed + 1000 * order + count


def mean_change(models: Sequence[Weights], start: Weights) -> Weights:
    """What the mean of `models`, each trained from a copy of `start`, changes in `start` (a feature one of
    them lacks has weight 0 there). Each model's change is taken before the mean, so that a weight no
    order moved changes by exactly 0 (the mean of three copies of x less x is often a rounding error)."""
    share = 1.0 / len(models)
    change = Weights()
    for model in models:
        _add_moved(change.words, model.words, start.words, share)
        _add_moved(change.grams, model.grams, start.grams, share)
    return change


def _add_moved(change: dict[_K, float], table: Mapping[_K, float], start: Mapping[_K, float], share: float) -> None:
    get = change.get
    for key, value in table.items():
        if (moved := value - start.get(key, 0.0)) != 0.0:
            change[key] = get(key, 0.0) + moved * share
