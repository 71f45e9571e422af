"""Spam filter accuracy and speed on the SpamAssassin corpus, beside bogofilter.

    .venv/bin/python bench/spam_accuracy.py            # train on split-train, score split-test
    .venv/bin/python bench/spam_accuracy.py --cv       # also: 5-fold cross-validation on split-train of
                                                      # the alternatives the classifier was chosen among

Prints, for Pochta and for bogofilter (Debian package `bogofilter`, skipped when missing): FP% (ham called
spam) and FN% at the default junk threshold, FN% at the threshold where FP <= 0.1%, 1-ROCA% (the area
above the ROC curve), and messages per second of CPU (tokenise + classify + rules, one core).
Nothing here is tuned on the test half; --cv only ever looks at the training half.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pochta.filters.spam import rules
from pochta.filters.spam.bayes import Classifier, Counts, worth_learning
from pochta.filters.spam.check import assess
from pochta.filters.spam.tokens import features

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spam" / "spamassassin"
JUNK_THRESHOLD = 5.0  # the [spam] junk_threshold default


def load(name: str) -> list[tuple[bool, Path]]:
    rows = [line.split("\t") for line in (CORPUS / name).read_text().splitlines() if line]
    return [(label == "spam", CORPUS / path) for label, path in rows]


def figures(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, float]:
    ham = sorted(s for s, is_spam in zip(scores, labels, strict=True) if not is_spam)
    spam = sorted(s for s, is_spam in zip(scores, labels, strict=True) if is_spam)
    wrong = 0.0  # spam/ham pairs ordered wrongly (ties count half): 1 - area under the ROC curve
    for s in spam:
        low, high = bisect.bisect_left(ham, s), bisect.bisect_right(ham, s)
        wrong += (len(ham) - high) + 0.5 * (high - low)
    allowed = int(0.001 * len(ham))  # hams allowed above the threshold for FP <= 0.1%
    strict = ham[-1 - allowed]  # scores above this are spam
    return {
        "fp": 100 * sum(s >= threshold for s in ham) / len(ham),
        "fn": 100 * sum(s < threshold for s in spam) / len(spam),
        "fn_at_fp": 100 * sum(s <= strict for s in spam) / len(spam),
        "roca": 100 * wrong / (len(ham) * len(spam)),
    }


def show(name: str, result: dict[str, float], rate: float | None) -> None:
    speed = f"{rate:8.0f} msg/s" if rate is not None else ""
    print(
        f"{name:<28} FP {result['fp']:6.2f}%  FN {result['fn']:6.2f}%  FN@FP<=0.1% {result['fn_at_fp']:6.2f}%"
        f"  1-ROCA {result['roca']:7.4f}%  {speed}"
    )


def pochta(train: list[tuple[bool, Path]], test: list[tuple[bool, Path]]) -> None:
    counts = Counts()
    started = time.process_time()
    order = list(train)
    random.Random(0).shuffle(order)  # as `pochta spam train` does
    counted = 0
    for is_spam, path in order:
        tokens = features(path.read_bytes()).tokens
        if worth_learning(counts, tokens, is_spam=is_spam):
            counts.add(tokens, is_spam=is_spam)
            counted += 1
    classifier = Classifier(counts)
    trained = time.process_time() - started
    messages = [(is_spam, path.read_bytes()) for is_spam, path in test]
    size = sum(len(data) for _, data in messages) / len(messages)
    started = time.process_time()
    scores = []
    probabilities = []
    for _, data in messages:
        found = features(data)
        result = classifier.classify(found.tokens)
        scores.append(assess(result, rules.message_hits(found, {})).score)
        probabilities.append(result.probability)
    spent = time.process_time() - started
    near_10k = [data for _, data in messages if 8 * 1024 <= len(data) <= 12 * 1024]
    started = time.process_time()
    for data in near_10k:
        found = features(data)
        assess(classifier.classify(found.tokens), rules.message_hits(found, {}))
    per_message = (time.process_time() - started) / len(near_10k) * 1000
    print(
        f"trained on {len(train)} messages ({counted} counted) in {trained:.1f} s CPU ({len(counts.tokens)} tokens);"
        f" test: {len(messages)} messages, {size / 1024:.1f} KiB on average"
    )
    labels = [label for label, _ in messages]
    show("pochta (bayes + rules)", figures(labels, scores, JUNK_THRESHOLD), len(scores) / spent)
    show("pochta (bayes alone)", figures(labels, probabilities, 0.75), None)
    print(f"{'':28} {per_message:.2f} ms CPU per message of 8-12 KiB ({len(near_10k)} of them)")


def bogofilter(train: list[tuple[bool, Path]], test: list[tuple[bool, Path]]) -> None:
    program = shutil.which("bogofilter")
    if program is None:
        print("bogofilter: not installed (apt-get install bogofilter), skipped")
        return
    with tempfile.TemporaryDirectory() as home:
        for flag, is_spam in (("-n", False), ("-s", True)):
            paths = [str(path) for label, path in train if label is is_spam]
            for start in range(0, len(paths), 500):
                subprocess.run([program, "-d", home, flag, "-B", *paths[start : start + 500]], check=True)
        scores: dict[str, float] = {}
        started = time.perf_counter()
        paths = [str(path) for _, path in test]
        for start in range(0, len(paths), 500):
            out = subprocess.run(
                [program, "-d", home, "-T", "-B", *paths[start : start + 500]],
                check=False,  # exit status says spam/ham/unsure
                capture_output=True,
                text=True,
            ).stdout
            for line in out.splitlines():
                name, _, score = line.rsplit(" ", 2)
                scores[name] = float(score)
        spent = time.perf_counter() - started
    labels = [label for label, _ in test]
    # bogofilter's default spam_cutoff is 0.99 (Debian's bogofilter.cf)
    show("bogofilter 1.2", figures(labels, [scores[str(path)] for _, path in test], 0.99), len(test) / spent)


# ---- --cv: the alternatives, 5-fold cross-validation on the training half only ----------------------


def _fisher(train: list[tuple[bool, set[str]]], test: list[set[str]]) -> list[float]:
    counts = Counts()
    for is_spam, tokens in train:
        counts.add(tokens, is_spam=is_spam)
    classifier = Classifier(counts)
    return [classifier.classify(tokens).probability for tokens in test]


def _fisher_on_error(train: list[tuple[bool, set[str]]], test: list[set[str]], *, seed: int = 0) -> list[float]:
    counts = Counts()
    order = list(train)
    random.Random(seed).shuffle(order)  # the order matters: results vary with it, hence three orders
    for is_spam, tokens in order:
        if worth_learning(counts, tokens, is_spam=is_spam):
            counts.add(tokens, is_spam=is_spam)
    classifier = Classifier(counts)
    return [classifier.classify(tokens).probability for tokens in test]


def _logistic(
    train: list[tuple[bool, set[str]]],
    test: list[set[str]],
    *,
    epochs: int = 20,
    rate: float = 30.0,
    margin: float = 4.0,
) -> list[float]:
    """Online logistic regression over the same binary features, each vector scaled to unit length; a message
    already scored right by `margin` (in log-odds) is not trained on (TOE)."""
    weights: dict[str, float] = {}
    bias = 0.0
    order = list(train)
    shuffle = random.Random(0).shuffle
    for _ in range(epochs):
        shuffle(order)
        for is_spam, tokens in order:
            norm = 1 / math.sqrt(len(tokens) + 1)
            z = bias + sum(weights.get(token, 0.0) for token in tokens) * norm
            if (z if is_spam else -z) > margin:
                continue
            error = float(is_spam) - 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))
            step = rate * error * norm
            for token in tokens:
                weights[token] = weights.get(token, 0.0) + step
            bias += rate * error * 0.01
    return [bias + sum(weights.get(t, 0.0) for t in tokens) / math.sqrt(len(tokens) + 1) for tokens in test]


def cross_validate(train: list[tuple[bool, Path]]) -> None:
    data = [(is_spam, features(path.read_bytes()).tokens) for is_spam, path in train]
    order = list(range(len(data)))
    random.Random(1).shuffle(order)
    folds = [order[k::5] for k in range(5)]
    methods: dict[str, Callable[[list[tuple[bool, set[str]]], list[set[str]]], list[float]]] = {
        "fisher chi2, all counted": _fisher,
        "fisher chi2, TOE (chosen)": _fisher_on_error,
        "fisher chi2, TOE, order 1": functools.partial(_fisher_on_error, seed=1),
        "fisher chi2, TOE, order 2": functools.partial(_fisher_on_error, seed=2),
        "logistic regression": _logistic,
    }
    labels = [is_spam for is_spam, _ in data]
    for name, method in methods.items():
        started = time.process_time()
        scores = [0.0] * len(data)
        for k, fold in enumerate(folds):
            rest = [data[i] for j, other in enumerate(folds) if j != k for i in other]
            for i, score in zip(fold, method(rest, [data[i][1] for i in fold]), strict=True):
                scores[i] = score
        threshold = 0.75 if name.startswith("fisher") else 0.0
        result = figures(labels, scores, threshold)
        show(f"cv {name}", result, None)
        print(f"{'':28} ({time.process_time() - started:.0f} s CPU for 5 folds)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", action="store_true", help="also cross-validate the alternatives on the train half")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus missing at {CORPUS}", file=sys.stderr)
        return 1
    train, test = load("split-train.tsv"), load("split-test.tsv")
    if args.cv:
        cross_validate(train)
    pochta(train, test)
    bogofilter(train, test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
