"""The models in memory, over their durable copy in the store; training goes through here.

The global model is loaded once and kept with its clue table; per-user models are loaded when a
recipient's mail is first scored (a few hundred kept, least recently used out). A cached model whose
generation in the store moved on (trained by `pochta spam train` or another node) is reloaded, checked at
most every :data:`REFRESH` seconds. Training writes the count changes first, then updates the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pochta.store.api import GLOBAL_MODEL, SpamModel, SpamStore, SpamTraining

from .bayes import Classifier, Counts, Result, deltas

REFRESH = 30.0  # seconds between staleness checks of a cached model
MAX_USERS = 500  # per-user models kept in memory


@dataclass(slots=True)
class _Cached:
    counts: Counts
    generation: int
    checked: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """One message to learn: its digest (blob id), its tokens and its class."""

    digest: str
    tokens: Iterable[str]
    is_spam: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Learned:
    learned: int  # messages counted for the first time
    relearned: int  # messages moved from the other class
    skipped: int  # already taught as this class


def _counts(model: SpamModel) -> Counts:
    # The store hands over a fresh dict: take it as it is rather than copy half a million entries.
    tokens = model.tokens if isinstance(model.tokens, dict) else dict(model.tokens)
    return Counts(tokens=tokens, spam=model.spam, ham=model.ham)


class Models:
    def __init__(self, store: SpamStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._global: _Cached | None = None
        self._classifier: Classifier | None = None
        self._users: OrderedDict[int, _Cached] = OrderedDict()
        self._lock = asyncio.Lock()

    async def classifier(self) -> Classifier:
        cached = self._global
        now = self._clock()
        if cached is not None and self._classifier is not None and now - cached.checked < REFRESH:
            return self._classifier
        async with self._lock:
            cached = self._global
            if cached is not None and self._classifier is not None:
                if now - cached.checked < REFRESH:
                    return self._classifier
                cached.checked = now
                if await self._store.spam_generation(GLOBAL_MODEL) == cached.generation:
                    return self._classifier
            model = await self._store.spam_model(GLOBAL_MODEL)
            counts = _counts(model)
            classifier = await asyncio.to_thread(Classifier, counts)
            self._global = _Cached(counts=counts, generation=model.generation, checked=now)
            self._classifier = classifier
            return classifier

    async def user(self, account_id: int) -> Counts:
        now = self._clock()
        cached = self._users.get(account_id)
        if cached is not None:
            self._users.move_to_end(account_id)
            if now - cached.checked < REFRESH:
                return cached.counts
            cached.checked = now
            if await self._store.spam_generation(account_id) == cached.generation:
                return cached.counts
        model = await self._store.spam_model(account_id)
        cached = _Cached(counts=_counts(model), generation=model.generation, checked=now)
        self._users[account_id] = cached
        self._users.move_to_end(account_id)
        while len(self._users) > MAX_USERS:
            self._users.popitem(last=False)
        return cached.counts

    async def classify(self, tokens: set[str], account_id: int | None, *, explain: bool = False) -> Result:
        classifier = await self.classifier()
        user = await self.user(account_id) if account_id is not None else None
        return classifier.classify(tokens, user, explain=explain)

    async def learn(self, account_id: int, examples: Sequence[Example]) -> Learned:
        """Teach a model (GLOBAL_MODEL or a user's): new messages are counted, messages taught the other
        way before are moved over, messages taught the same way are skipped."""
        known = await self._store.spam_trained(account_id, [example.digest for example in examples])
        changes: list[tuple[Iterable[str], bool, int]] = []
        trained: dict[str, bool | None] = {}
        spam = ham = learned = relearned = skipped = 0
        for example in examples:
            was = known.get(example.digest)
            if was is example.is_spam or trained.get(example.digest) is example.is_spam:
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
            spam += example.is_spam
            ham += not example.is_spam
            trained[example.digest] = example.is_spam
        if not changes:
            return Learned(learned=0, relearned=0, skipped=skipped)
        change = deltas(changes)
        generation = await self._store.train_spam(
            SpamTraining(account_id=account_id, deltas=change, spam=spam, ham=ham, trained=trained)
        )
        self._apply(account_id, change, spam=spam, ham=ham, generation=generation)
        return Learned(learned=learned, relearned=relearned, skipped=skipped)

    def _apply(
        self, account_id: int, change: dict[str, tuple[int, int]], *, spam: int, ham: int, generation: int
    ) -> None:
        cached = self._global if account_id == GLOBAL_MODEL else self._users.get(account_id)
        if cached is None:
            return
        if cached.generation != generation - 1:  # someone else trained it meanwhile: reload on next use
            cached.checked = float("-inf")
            return
        cached.counts.apply(change, spam=spam, ham=ham)
        cached.generation = generation
        if account_id == GLOBAL_MODEL and self._classifier is not None:
            self._classifier.changed()
