"""The models in memory, over their durable copy in the store; training goes through here.

A model is two: the token counts of the Fisher classifier (bayes.py) and the weights of the linear model
(linear.py). A message's log-odds is the linear model's plus :data:`FISHER_SHARE` times the log-odds of
each of the Fisher classifier's two probabilities, from the clues of the message's body and from those
of its header fields (chosen by cross-validation, docs/spam.md); while the linear model has no weights
(a store from before it, not yet retrained), the Fisher classifier alone decides, as it did before.

The global model is loaded once and kept with its clue table; per-user models are loaded when a
recipient's mail is first scored (a few hundred kept, least recently used out). A cached model whose
generation in the store moved on (trained by `pochta spam train` or another node) is reloaded, checked at
most every :data:`REFRESH` seconds. Training writes the count changes first, then updates the cache.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field

import numpy as np

from pochta.store.api import GLOBAL_MODEL, SpamModel, SpamStore, SpamTraining

from . import bayes, linear, rules
from .bayes import Classifier, Counts, Logs, deltas
from .keys import string_keys
from .linear import Weights
from .table import Table
from .tokens import Features, Grams

REFRESH = 30.0  # seconds between staleness checks of a cached model
MAX_USERS = 500  # per-user models kept in memory
FISHER_SHARE = 0.3  # weight of each part of the Fisher classifier's log-odds beside the linear model's
_FISHER_LIMIT = 1e-6  # Fisher probabilities are taken within [limit, 1 - limit] for their log-odds


@dataclass(slots=True)
class Model:
    """One model in memory: counts and weights."""

    counts: Counts = field(default_factory=Counts)
    weights: Weights = field(default_factory=Weights)


@dataclass(slots=True)
class _Cached:
    model: Model
    generation: int
    checked: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """One message to learn: its digest (blob id), its word features (`head`: those of them from its
    header fields), its 4-grams and its class."""

    digest: str
    tokens: Set[str]
    grams: Grams
    is_spam: bool
    head: Set[str] = frozenset()

    @classmethod
    def of(cls, found: Features, *, digest: str, is_spam: bool) -> Example:
        return cls(digest=digest, tokens=found.tokens, grams=found.grams, is_spam=is_spam, head=found.head)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """The classifiers' judgement of one message."""

    logit: float  # log-odds of spam, combined (0: undecided); rules.bayes_hit turns it into points
    probability: float  # the Fisher classifier's alone: 0 ham … 1 spam, 0.5 when it does not know
    clues: tuple[tuple[str, float], ...] = ()  # the Fisher classifier's most telling tokens, for --explain
    is_trained: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Learned:
    learned: int  # messages counted for the first time
    relearned: int  # messages moved from the other class
    skipped: int  # already taught as this class


def _model(stored: SpamModel) -> Model:
    # The store hands over fresh dicts: take them as they are rather than copy half a million entries.
    tokens = stored.tokens if isinstance(stored.tokens, dict) else dict(stored.tokens)
    words = stored.words if isinstance(stored.words, dict) else dict(stored.words)
    grams = stored.grams if isinstance(stored.grams, dict) else dict(stored.grams)
    return Model(counts=Counts(tokens=tokens, spam=stored.spam, ham=stored.ham), weights=Weights(words, grams))


@dataclass(frozen=True, slots=True)
class Looked:
    """A message's features as found in the global model's :class:`Index`."""

    sums: linear.Sums  # the linear model's summed weights of each block (linear.global_sums)
    logs: Logs  # ln f and ln (1 - f) of each token for the Fisher classifier, 0 where not a clue


@dataclass(frozen=True, slots=True)
class Index:
    """The global model's features in tables: one (table.Table) of every word feature either classifier
    knows, with the linear weight, ln f and ln (1 - f) of each, so that a message's words are searched
    once for both; and one of the 4-grams."""

    words: Table  # weight, ln f, ln (1 - f); the logarithms 0 for a token that is not a clue
    grams: Table

    @classmethod
    def of(cls, classifier: Classifier, weights: Weights) -> Index:
        # Merged by key in numpy: a dictionary lookup per token of 250,000 took 0.3 s (cold memory).
        clues = classifier.clues
        word_keys, clue_keys = string_keys(weights.words.keys()), string_keys(clues.keys())
        keys, row = np.unique(np.concatenate((word_keys, clue_keys)), return_inverse=True)
        columns = np.zeros((len(keys), 3))
        columns[row[: len(word_keys)], 0] = np.fromiter(weights.words.values(), dtype=np.float64, count=len(word_keys))
        f = np.fromiter(clues.values(), dtype=np.float64, count=len(clue_keys))
        columns[row[len(word_keys) :], 1] = np.log(f)
        columns[row[len(word_keys) :], 2] = np.log1p(-f)
        return cls(Table(keys, columns), linear.grams_table(weights))

    def look(self, message: Features) -> Looked:
        """The message's word features and 4-grams, looked up."""
        found = self.words.find(message.keys)
        return Looked(sums=linear.block_sums(found[:, 0], message, self.grams), logs=(found[:, 1], found[:, 2]))


def _prepare(model: Model) -> tuple[Classifier, Index]:
    """What scoring with the global model uses, built once (a few tenths of a second on a big model)."""
    classifier = Classifier(model.counts)
    return classifier, Index.of(classifier, model.weights)


def judge(
    classifier: Classifier,
    weights: Weights,
    message: Features,
    user: Model | None = None,
    *,
    explain: bool = False,
    index: Index | None = None,
    looked: Looked | None = None,
) -> Result:
    """A message scored by the global model (its Fisher classifier and linear `weights`, and their
    `index` when built) plus, given one, a user's model; no store involved (bench/spam_accuracy.py scores
    this way too). `looked`: what the message found in `index`, when the caller has it already."""
    if looked is None and index is not None:
        looked = index.look(message)
    fisher = classifier.classify(
        message,
        user.counts if user is not None else None,
        explain=explain,
        logs=looked.logs if looked is not None else None,
    )
    own = user.weights if user is not None and user.weights else None
    has_weights = bool(weights or own)
    sums = looked.sums if looked is not None else None
    linear_logit = linear.logit(weights, message, own, sums=sums) if has_weights else 0.0
    return Result(
        logit=combine(linear_logit, fisher, has_weights=has_weights),
        probability=fisher.probability,
        clues=fisher.clues,
        is_trained=fisher.is_trained,
    )


def combine(linear_logit: float, fisher: bayes.Result, *, has_weights: bool) -> float:
    """The log-odds of a message from the linear model's and the Fisher classifier's: FISHER_SHARE times
    the log-odds of each of its two parts (the body's clues, the header's). Without weights, the
    log-odds that rules.bayes_hit turns into the points the Fisher classifier alone always gave."""
    if not has_weights:
        p = _limited(fisher.probability)
        return rules.logit_of_points(rules.BAYES_POINTS * (2.0 * p - 1.0))
    body, head = _limited(fisher.body), _limited(fisher.head)
    return linear_logit + FISHER_SHARE * (math.log(body / (1.0 - body)) + math.log(head / (1.0 - head)))


def _limited(probability: float) -> float:
    return min(1.0 - _FISHER_LIMIT, max(_FISHER_LIMIT, probability))


class Models:
    def __init__(self, store: SpamStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._global: _Cached | None = None
        self._classifier: Classifier | None = None
        self._index: Index | None = None  # of the global model (see _looked())
        self._index_is_stale = False
        self._users: OrderedDict[int, _Cached] = OrderedDict()
        self._lock = asyncio.Lock()

    async def classifier(self) -> Classifier:
        """The Fisher classifier over the global model (loaded, or reloaded when stale)."""
        await self.global_model()
        assert self._classifier is not None
        return self._classifier

    async def global_model(self) -> Model:
        cached = self._global
        now = self._clock()
        if cached is not None and self._classifier is not None and now - cached.checked < REFRESH:
            return cached.model
        async with self._lock:
            cached = self._global
            if cached is not None and self._classifier is not None:
                if now - cached.checked < REFRESH:
                    return cached.model
                cached.checked = now
                if await self._store.spam_generation(GLOBAL_MODEL) == cached.generation:
                    return cached.model
            stored = await self._store.spam_model(GLOBAL_MODEL)
            model = _model(stored)
            classifier, index = await asyncio.to_thread(_prepare, model)
            self._global = _Cached(model=model, generation=stored.generation, checked=now)
            self._classifier, self._index, self._index_is_stale = classifier, index, False
            return model

    async def user(self, account_id: int) -> Model:
        now = self._clock()
        cached = self._users.get(account_id)
        if cached is not None:
            self._users.move_to_end(account_id)
            if now - cached.checked < REFRESH:
                return cached.model
            cached.checked = now
            if await self._store.spam_generation(account_id) == cached.generation:
                return cached.model
        stored = await self._store.spam_model(account_id)
        cached = _Cached(model=_model(stored), generation=stored.generation, checked=now)
        self._users[account_id] = cached
        self._users.move_to_end(account_id)
        while len(self._users) > MAX_USERS:
            self._users.popitem(last=False)
        return cached.model

    async def classify(self, message: Features, account_id: int | None, *, explain: bool = False) -> Result:
        """Score a message with the global model plus, given an account, that user's."""
        return (await self.classify_each(message, [account_id], explain=explain))[account_id]

    async def classify_each(
        self, message: Features, account_ids: Sequence[int | None], *, explain: bool = False
    ) -> dict[int | None, Result]:
        """Score a message for each of its recipients (None: the global model alone). The global model's
        part is looked up once (a message for a list of 50 cost 50 lookups of every feature before);
        a recipient without a model of their own gets the global judgement."""
        model = await self.global_model()
        classifier = await self.classifier()
        users = {account_id: await self.user(account_id) for account_id in account_ids if account_id is not None}
        # From here on nothing awaits: the global tables cannot change under the rows found in them.
        looked = self._looked(classifier, model.weights, message)
        results: dict[int | None, Result] = {}
        plain: Result | None = None
        for account_id in account_ids:
            user = users.get(account_id) if account_id is not None else None
            if user is not None and not (user.counts.spam or user.counts.ham or user.weights):
                user = None
            if user is None and plain is not None:
                results[account_id] = plain
                continue
            results[account_id] = judge(classifier, model.weights, message, user, explain=explain, looked=looked)
            if user is None:
                plain = results[account_id]
        return results

    def _looked(self, classifier: Classifier, weights: Weights, message: Features) -> Looked:
        """A message's features in the global model. Its index is rebuilt here, on the event loop, after
        the global model was trained in this process (rare: bulk training runs in the CLI, and a model
        trained elsewhere is reloaded in a thread)."""
        if self._index is None or self._index_is_stale:
            self._index, self._index_is_stale = Index.of(classifier, weights), False
        return self._index.look(message)

    async def learn(self, account_id: int, examples: Sequence[Example], *, step: bool = True) -> Learned:
        """Teach a model (GLOBAL_MODEL or a user's): new messages are counted, messages taught the other
        way before are moved over, messages taught the same way are skipped. With `step`, each message
        counted or moved over also takes a step of the linear model toward its class, on error (a message
        moved over: the step toward its new class is how the linear model un-learns, see linear.py)."""
        known = await self._store.spam_trained(account_id, [example.digest for example in examples])
        changes: list[tuple[Iterable[str], bool, int]] = []
        last: dict[str, Example] = {}  # of each message taught, its last occurrence here
        spam = ham = learned = relearned = skipped = 0
        for example in examples:
            # as taught so far: earlier in this batch (the same message given twice), else in the store
            was = last[example.digest].is_spam if example.digest in last else known.get(example.digest)
            if was is example.is_spam:
                skipped += 1
                continue
            tokens = list(example.tokens)
            if was is not None:  # taught the other way before: take that back first
                changes.append((tokens, was, -1))
                spam -= was
                ham -= not was
                relearned += 1
            else:
                learned += 1
            changes.append((tokens, example.is_spam, 1))
            last[example.digest] = example
            spam += example.is_spam
            ham += not example.is_spam
        if not changes:
            return Learned(learned=0, relearned=0, skipped=skipped)
        change = deltas(changes)
        # A message given both ways here steps once, toward its last class, and not at all when that is the
        # class the store had: the counts end as if only the last occurrence had been given.
        chosen = [example for digest, example in last.items() if known.get(digest) is not example.is_spam]
        weights, _ = await self._steps(account_id, chosen) if step else (Weights(), 0)
        await self._write(
            SpamTraining(
                account_id=account_id,
                deltas=change,
                words=weights.words,
                grams=weights.grams,
                spam=spam,
                ham=ham,
                trained={digest: example.is_spam for digest, example in last.items()},
            ),
            counts=change,
        )
        return Learned(learned=learned, relearned=relearned, skipped=skipped)

    async def bulk_start(self, account_id: int) -> tuple[Weights, Weights, Counts]:
        """What bulk training of a model (GLOBAL_MODEL or a user's) steps from, read from the store once:
        the weights its linear steps are judged against as well (the global model's), the model's own
        weights (empty for the global model, which is that base itself), and its counts."""
        base = await self.global_model()
        if account_id == GLOBAL_MODEL:
            return base.weights, Weights(), base.counts
        own = await self.user(account_id)
        return base.weights, own.weights, own.counts

    async def add_weights(self, account_id: int, change: Weights) -> None:
        """Add weight changes made apart (bulk training's, see linear.train) to a model: in the store and in
        the cached copy."""
        if not change:
            return
        cached = self._global if account_id == GLOBAL_MODEL else self._users.get(account_id)
        if cached is not None:
            cached.model.weights.add(change)
            if account_id == GLOBAL_MODEL:
                self._index_is_stale = True
        await self._write(SpamTraining(account_id=account_id, deltas={}, words=change.words, grams=change.grams))

    async def _steps(self, account_id: int, examples: Sequence[Example]) -> tuple[Weights, int]:
        """Train the cached linear model in place, returning the changes (for the store) and how many
        messages made one. A user's steps are judged by the global model plus theirs."""
        base = await self.global_model()
        if account_id == GLOBAL_MODEL:
            target, over = base.weights, None
        else:
            target, over = (await self.user(account_id)).weights, base.weights
        change = Weights()
        moved = 0
        for example in examples:
            moved += linear.learn(
                target,
                example.tokens - example.head,
                example.head,
                example.grams,
                is_spam=example.is_spam,
                base=over,
                change=change,
            )
        if moved and account_id == GLOBAL_MODEL:
            self._index_is_stale = True
        return change, moved

    async def _write(self, training: SpamTraining, *, counts: dict[str, tuple[int, int]] | None = None) -> None:
        """Store the changes; the cached copy (its weights already trained in place) takes the counts, or
        is reloaded on next use when the store refused or someone else trained the model meanwhile."""
        account_id = training.account_id
        cached = self._global if account_id == GLOBAL_MODEL else self._users.get(account_id)
        try:
            generation = await self._store.train_spam(training)
        except BaseException:
            if cached is not None:
                cached.generation, cached.checked = -1, float("-inf")
            raise
        if cached is None:
            return
        if cached.generation != generation - 1:  # someone else trained it meanwhile: reload on next use
            cached.checked = float("-inf")
            return
        if counts:
            cached.model.counts.apply(counts, spam=training.spam, ham=training.ham)
            if account_id == GLOBAL_MODEL and self._classifier is not None:
                self._classifier.changed()
                self._index_is_stale = True
        cached.generation = generation
