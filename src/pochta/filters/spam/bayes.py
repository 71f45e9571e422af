"""The statistical classifier: token counts, Robinson's per-token probabilities, Fisher's chi-squared combining.

This is the SpamBayes/bogofilter method. For each token, the share of spam and of ham messages that held
it gives a probability that a message with the token is spam; Robinson's correction pulls tokens seen
only a few times toward "unknown" (0.5). The most telling tokens (at most :data:`MAX_CLUES`, each at
least :data:`MIN_DISTANCE` from 0.5) are combined with Fisher's method twice, once testing "spam", once
testing "ham"; the result is near 1 for spam, near 0 for ham and near 0.5 when the evidence disagrees.

Its log-odds is one part of a message's score, beside the linear model's (linear.py, mixed in models.py):
in 5-fold cross-validation on the training half of the SpamAssassin corpus (bench/spam_accuracy.py --cv)
it alone measured 1-ROCA 0.063%, the linear model alone 0.025%, both 0.021%. Counts can be un-learned
exactly when a user changes their mind, added up per user, and kept in the store as they are.

A per-user model adds its counts to the global ones (weighted by :data:`USER_WEIGHT`), so what one user
taught moves only that user's scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .keys import Keys, string_keys
from .table import Table
from .tokens import Features

# Chosen by 5-fold cross-validation on the training half (bench/spam_accuracy.py --cv and the commit
# message): s=0.45/x=0.5/min 0.2/150 clues (SpamBayes' defaults) gave FN 13.4% at FP <= 0.1% and 1-ROCA
# 0.139%; these (close to bogofilter's) gave 8.1% and 0.083%.
STRENGTH = 0.3  # Robinson's s: how strongly a rare token is pulled toward UNKNOWN
UNKNOWN = 0.52  # Robinson's x: the probability of a token never seen (a little toward spam, as bogofilter)
MIN_DISTANCE = 0.375  # tokens with |f - 0.5| below this are not clues
MAX_CLUES = 2000  # bounds the work for huge messages; fewer (150) measured worse
MIN_TRAINED = 5  # messages of each class a model needs before it says anything
USER_WEIGHT = 4  # a message a user trained counts as this many of the global model's
# Bulk training counts a message only when the model being built does not already put it this far on the
# right side of 0.5 ("train on error" with a thick threshold). Chosen by 5-fold cross-validation on the
# training half: 1-ROCA 0.062% against 0.163% counting every message; margins 0.3/0.4/0.48/0.49 measured
# 0.093/0.139/0.147/0.140%, and a second pass over the messages changed nothing. The figures depend on the
# training order (0.063-0.138% over three orders); every order tried beat counting every message.
TRAIN_MARGIN = 0.45

Logs = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # ln f and ln (1 - f) of each of a message's tokens


@dataclass(slots=True)
class Counts:
    """A model: how many spam and ham messages held each token, and how many there were of each."""

    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)  # token → (spam, ham)
    spam: int = 0
    ham: int = 0

    def add(self, tokens: Iterable[str], *, is_spam: bool, sign: int = 1) -> None:
        """Count one message (``sign=-1`` un-counts it, never below zero)."""
        table = self.tokens
        if is_spam:
            self.spam = max(0, self.spam + sign)
            for token in tokens:
                spam, ham = table.get(token, (0, 0))
                spam = max(0, spam + sign)
                if spam or ham:
                    table[token] = (spam, ham)
                else:
                    table.pop(token, None)
        else:
            self.ham = max(0, self.ham + sign)
            for token in tokens:
                spam, ham = table.get(token, (0, 0))
                ham = max(0, ham + sign)
                if spam or ham:
                    table[token] = (spam, ham)
                else:
                    table.pop(token, None)

    def apply(self, deltas: Mapping[str, tuple[int, int]], *, spam: int, ham: int) -> None:
        """Add count changes as computed by :func:`deltas`."""
        table = self.tokens
        self.spam = max(0, self.spam + spam)
        self.ham = max(0, self.ham + ham)
        for token, (ds, dh) in deltas.items():
            old_spam, old_ham = table.get(token, (0, 0))
            new = (max(0, old_spam + ds), max(0, old_ham + dh))
            if new == (0, 0):
                table.pop(token, None)
            else:
                table[token] = new


def deltas(messages: Iterable[tuple[Iterable[str], bool, int]]) -> dict[str, tuple[int, int]]:
    """Summed count changes of (tokens, is_spam, +1 learn / -1 unlearn) messages, for one store write."""
    out: dict[str, tuple[int, int]] = {}
    for tokens, is_spam, sign in messages:
        if is_spam:
            for token in tokens:
                spam, ham = out.get(token, (0, 0))
                out[token] = (spam + sign, ham)
        else:
            for token in tokens:
                spam, ham = out.get(token, (0, 0))
                out[token] = (spam, ham + sign)
    return out


def probability(model: Counts, tokens: Iterable[str]) -> float:
    """The classifier's probability computed straight from the counts (no clue table, no user model): what
    training on error asks after every message it counts, where rebuilding the clue table would be too slow."""
    spam_total, ham_total = model.spam, model.ham
    table = model.tokens
    log_spam = log_ham = 0.0
    count = 0
    for token in tokens:
        found = table.get(token)
        if found is None:
            continue
        f = _probability(found[0], found[1], spam_total, ham_total)
        if abs(f - 0.5) >= MIN_DISTANCE:
            log_spam += math.log(f)
            log_ham += math.log(1.0 - f)
            count += 1
    return _combine(log_spam, log_ham, count) if count else 0.5


def worth_learning(model: Counts, tokens: Iterable[str], *, is_spam: bool) -> bool:
    """Whether bulk training should count this message: the model is still new, or it does not score the
    message right by at least :data:`TRAIN_MARGIN`."""
    if model.spam < MIN_TRAINED or model.ham < MIN_TRAINED:
        return True
    p = probability(model, tokens)
    return (p - 0.5 if is_spam else 0.5 - p) < TRAIN_MARGIN


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    probability: float  # 0 ham … 1 spam; 0.5 when the model does not know
    clues: tuple[tuple[str, float], ...] = ()  # the most telling tokens and their probabilities, strongest first
    is_trained: bool = True
    # The same from the clues of the message's body alone and of its header fields alone (tokens.Features:
    # head), which models.py mixes as two parts: measured better than the one probability (docs/spam.md).
    body: float = 0.5
    head: float = 0.5


class Classifier:
    """Scores token sets against a global model and, optionally, a user's model.

    The global model's clues (tokens far enough from 0.5) and their logarithms are computed once into
    a table (table.Table), so scoring a message is one lookup of all its tokens and two sums in C (the
    server looks them up in models.Index instead, one table for both classifiers); call :meth:`changed`
    after the global model is trained.
    """

    def __init__(self, model: Counts) -> None:
        self.model = model
        self._clues: dict[str, float] = {}  # token → f, for --explain and the slow path
        self._table: Table | None = None  # of the clues' ln f and ln (1 - f), built on first use
        self.changed()

    def changed(self) -> None:
        model = self.model
        spam_total, ham_total = model.spam, model.ham
        clues: dict[str, float] = {}
        for token, (spam, ham) in model.tokens.items():
            f = _probability(spam, ham, spam_total, ham_total)
            if abs(f - 0.5) >= MIN_DISTANCE:
                clues[token] = f
        self._clues = clues
        self._table = None

    @property
    def clues(self) -> Mapping[str, float]:
        """The global model's clues: each token far enough from 0.5, and its f."""
        return self._clues

    def clue_logs(self, keys: Keys) -> Logs:
        """ln f and ln (1 - f) of each of a message's token keys (keys.py), 0 for a token that is not a
        clue: what does not depend on the recipient, so a message for many is looked up once."""
        if self._table is None:
            probabilities = np.fromiter(self._clues.values(), dtype=np.float64, count=len(self._clues))
            logs = np.stack((np.log(probabilities), np.log1p(-probabilities)), axis=1)
            self._table = Table(string_keys(self._clues.keys()), logs)
        found = self._table.find(keys)
        return found[:, 0], found[:, 1]

    def classify(
        self, message: Features, user: Counts | None = None, *, explain: bool = False, logs: Logs | None = None
    ) -> Result:
        """`logs`: clue_logs(message.keys), or the same from a table of the global model's (models.Index),
        when the caller has them already. The message's tokens as strings are made only for a user's
        model, for `explain` and for a message with more than MAX_CLUES clues."""
        model = self.model
        spam_total = model.spam
        ham_total = model.ham
        if user is not None and (user.spam or user.ham):
            spam_total += USER_WEIGHT * user.spam
            ham_total += USER_WEIGHT * user.ham
        else:
            user = None
        if spam_total < MIN_TRAINED or ham_total < MIN_TRAINED:
            return Result(probability=0.5, is_trained=False)
        personal: list[tuple[float, str]] = []  # the user's clues: tokens the user's counts speak for
        mine: set[str] = set()
        if user is not None:
            mine = message.tokens & user.tokens.keys()
            table = model.tokens
            for token in mine:
                user_spam, user_ham = user.tokens[token]
                spam, ham = table.get(token, (0, 0))
                f = _probability(spam + USER_WEIGHT * user_spam, ham + USER_WEIGHT * user_ham, spam_total, ham_total)
                if abs(f - 0.5) >= MIN_DISTANCE:
                    personal.append((f, token))
        if explain:
            return self._classify_listed(message, (message.tokens - mine) & self._clues.keys(), personal, explain=True)
        log_f, log_1f = self.clue_logs(message.keys) if logs is None else logs
        is_clue = log_f != 0.0  # ln f of a clue is never 0: f < 1
        if mine:  # the user's counts speak for these
            is_clue &= ~np.isin(message.keys, string_keys(mine))
        count = int(np.count_nonzero(is_clue)) + len(personal)
        if count == 0:
            return Result(probability=0.5)
        if count > MAX_CLUES:
            return self._classify_listed(message, (message.tokens - mine) & self._clues.keys(), personal, explain=False)
        # In the keys' order, which is the same in every process: so are the sums.
        sums = []
        head = message.head
        for part, extra in (
            (slice(0, message.body_count), [f for f, token in personal if token not in head]),
            (slice(message.body_count, None), [f for f, token in personal if token in head]),
        ):
            chosen = is_clue[part]
            sums.append(
                (
                    float(log_f[part][chosen].sum()) + math.fsum(map(math.log, extra)),
                    float(log_1f[part][chosen].sum()) + math.fsum(math.log(1.0 - f) for f in extra),
                    int(np.count_nonzero(chosen)) + len(extra),
                )
            )
        (body_spam, body_ham, body_count), (head_spam, head_ham, head_count) = sums
        return Result(
            probability=_combine(body_spam + head_spam, body_ham + head_ham, count),
            body=_combine(body_spam, body_ham, body_count),
            head=_combine(head_spam, head_ham, head_count),
        )

    def _classify_listed(
        self, message: Features, shared: set[str], personal: list[tuple[float, str]], *, explain: bool
    ) -> Result:
        """The slow path: every clue with its token, the strongest MAX_CLUES of them, for --explain."""
        found = [(self._clues[token], token) for token in shared] + personal
        if not found:
            return Result(probability=0.5)
        found.sort(key=_strength, reverse=True)
        del found[MAX_CLUES:]
        head = [f for f, token in found if token in message.head]
        body = [f for f, token in found if token not in message.head]
        clues = tuple((token, f) for f, token in found[:20]) if explain else ()
        return Result(probability=_fisher([f for f, _ in found]), clues=clues, body=_fisher(body), head=_fisher(head))


def _fisher(clues: list[float]) -> float:
    """Fisher's combining of the clues' probabilities."""
    return _combine(math.fsum(map(math.log, clues)), math.fsum(math.log(1.0 - f) for f in clues), len(clues))


def _strength(clue: tuple[float, str]) -> float:
    return abs(clue[0] - 0.5)


def _probability(spam: int, ham: int, spam_total: int, ham_total: int) -> float:
    """Robinson's f(w): the token's spam probability, pulled toward UNKNOWN when it was seen rarely."""
    seen = spam + ham
    if seen == 0:
        return UNKNOWN
    spam_ratio = spam / spam_total if spam_total else 0.0
    ham_ratio = ham / ham_total if ham_total else 0.0
    p = spam_ratio / (spam_ratio + ham_ratio) if spam_ratio + ham_ratio else UNKNOWN
    return (STRENGTH * UNKNOWN + seen * p) / (STRENGTH + seen)


def _combine(log_spam: float, log_ham: float, count: int) -> float:
    """Fisher's chi-squared combining of both hypotheses (Robinson; as in SpamBayes), from the sums of
    ln f and ln (1 - f) over the `count` clues (0.5, undecided, for none)."""
    spam_side = _chi2q(-2.0 * log_spam, 2 * count)
    ham_side = _chi2q(-2.0 * log_ham, 2 * count)
    return (spam_side - ham_side + 1.0) / 2.0


def _chi2q(chi: float, freedom: int) -> float:
    """P(chi² ≥ chi) for an even number of degrees of freedom: the Poisson(chi/2) distribution's mass below
    freedom/2, summed outward from its largest term so that nothing underflows (exp(-m) alone would for
    m > 745, that is for messages with many clues)."""
    m = chi / 2.0
    terms = freedom // 2
    if m <= 0.0:
        return 1.0
    peak = min(terms - 1, int(m))
    log_peak = -m + peak * math.log(m) - math.lgamma(peak + 1)
    if log_peak < -745.0:
        return 0.0
    total = term = 1.0
    for i in range(peak, 0, -1):  # t(i-1) = t(i) * i / m
        term *= i / m
        total += term
        if term < total * 1e-17:
            break
    term = 1.0
    for i in range(peak + 1, terms):  # t(i) = t(i-1) * m / i
        term *= m / i
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, math.exp(log_peak) * total)
