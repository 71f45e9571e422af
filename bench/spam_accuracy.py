"""Spam filter accuracy and speed on the SpamAssassin corpus, beside bogofilter.

    .venv/bin/python bench/spam_accuracy.py            # train on split-train, score split-test
    .venv/bin/python bench/spam_accuracy.py --cv       # also: 5-fold cross-validation on split-train of
                                                      # the alternatives the classifier was chosen among
    .venv/bin/python bench/spam_accuracy.py --spamassassin  # also SpamAssassin (about 5 more minutes)

Prints, for Pochta and for bogofilter (Debian package `bogofilter`, skipped when missing): FP% (ham called
spam) and FN% at the default junk threshold, FN% at the threshold where FP <= 0.1%, 1-ROCA% (the area
above the ROC curve), and messages per second of CPU (tokenise + classify + rules, one core).
With --spamassassin, the same for SpamAssassin (Debian packages `spamassassin` and `spamc`): its stock
rules with the network tests off (-L) and its Bayes classifier trained by sa-learn on the same half,
scoring through spamd with 2 children.
Nothing here is tuned on the test half; --cv only ever looks at the training half.
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pochta.filters.spam import linear, rules
from pochta.filters.spam.bayes import Classifier, Counts, worth_learning
from pochta.filters.spam.check import assess
from pochta.filters.spam.models import FISHER_SHARE, Index, judge
from pochta.filters.spam.tokens import Features, features

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spam" / "spamassassin"
JUNK_THRESHOLD = 5.0  # the [spam] junk_threshold default
_T = TypeVar("_T")


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
    weights = linear.Weights()
    started = time.process_time()
    order = [(is_spam, features(path.read_bytes())) for is_spam, path in train]
    random.Random(0).shuffle(order)  # as `pochta spam train` does
    counted = 0
    for is_spam, found in order:
        if worth_learning(counts, found.tokens, is_spam=is_spam):
            counts.add(found.tokens, is_spam=is_spam)
            counted += 1
    steps = linear.train(weights, [(found.tokens - found.head, found.head, found.grams, s) for s, found in order])
    classifier = Classifier(counts)
    index = Index.of(classifier, weights)  # as the server builds it
    trained = time.process_time() - started
    messages = [(is_spam, path.read_bytes()) for is_spam, path in test]
    size = sum(len(data) for _, data in messages) / len(messages)
    started = time.process_time()
    scores = []
    logits = []
    for _, data in messages:
        found = features(data)
        result = judge(classifier, weights, found, index=index)
        scores.append(assess(result, rules.message_hits(found, {})).score)
        logits.append(result.logit)
    spent = time.process_time() - started
    near_10k = [data for _, data in messages if 8 * 1024 <= len(data) <= 12 * 1024]
    parts = [0.0, 0.0, 0.0]  # tokenising, classifying, rules
    for data in near_10k:
        started = time.process_time()
        found = features(data)
        tokenised = time.process_time()
        result = judge(classifier, weights, found, index=index)
        classified = time.process_time()
        assess(result, rules.message_hits(found, {}))
        parts[0] += tokenised - started
        parts[1] += classified - tokenised
        parts[2] += time.process_time() - classified
    per_message = [part / len(near_10k) * 1000 for part in parts]
    print(
        f"trained on {len(train)} messages in {trained:.1f} s CPU: {counted} counted ({len(counts.tokens)} tokens),"
        f" {steps} linear steps ({len(weights.words)} word and {len(weights.grams)} 4-gram weights);"
        f" test: {len(messages)} messages, {size / 1024:.1f} KiB on average"
    )
    labels = [label for label, _ in messages]
    show("pochta (classifiers + rules)", figures(labels, scores, JUNK_THRESHOLD), len(scores) / spent)
    show("pochta (classifiers alone)", figures(labels, logits, rules.logit_of_points(JUNK_THRESHOLD)), None)
    print(
        f"{'':28} {sum(per_message):.2f} ms CPU per message of 8-12 KiB ({len(near_10k)} of them): tokenising"
        f" {per_message[0]:.2f}, classifying {per_message[1]:.2f}, rules {per_message[2]:.2f}"
    )


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


def spamassassin(train: list[tuple[bool, Path]], test: list[tuple[bool, Path]]) -> None:
    programs = [shutil.which(name) for name in ("sa-learn", "spamd", "spamc")]
    if None in programs:
        print("spamassassin: not installed (apt-get install spamassassin spamc), skipped")
        return
    learn, daemon, client = (str(program) for program in programs)
    with tempfile.TemporaryDirectory() as home:
        config = Path(home)
        for pre in Path("/etc/spamassassin").glob("*.pre"):  # the plugins (Bayes among them) load there
            shutil.copy(pre, config)
        # The whole training half is kept: auto-expiry would drop tokens by age, and these are from 2002.
        (config / "local.cf").write_text(
            f"use_bayes 1\nbayes_auto_learn 0\nbayes_path {home}/bayes/bayes\nbayes_auto_expire 0\n"
            "skip_rbl_checks 1\ndns_available no\n"
        )
        (config / "bayes").mkdir()
        (config / "user_prefs").touch()
        common = ["--siteconfigpath", home, "-L"]
        # No user's preferences are read (they could set Bayes options): sa-learn takes an empty file of them,
        # spamd none. SpamAssassin still makes an empty ~/.spamassassin of the user running it.
        private = {**os.environ, "HOME": home}
        preferences = ["-p", str(config / "user_prefs")]
        for flag, is_spam in (("--ham", False), ("--spam", True)):
            paths = [str(path) for label, path in train if label is is_spam]
            for start in range(0, len(paths), 500):
                subprocess.run(
                    [learn, *common, *preferences, flag, "--no-sync", *paths[start : start + 500]],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    env=private,
                )
        subprocess.run(
            [learn, "--siteconfigpath", home, *preferences, "--sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            env=private,
        )
        socket = f"{home}/spamd.sock"
        as_user = []
        if os.geteuid() == 0:  # spamd will not score as root: it runs as nobody, who must read the model
            as_user = ["-u", "nobody"]
            for path in [config, *config.rglob("*")]:
                path.chmod(0o777 if path.is_dir() else 0o666)
        errors = config / "spamd.log"
        with errors.open("wb") as log:
            server = subprocess.Popen(
                [
                    daemon,
                    *common,
                    "--nouser-config",
                    "-s",
                    "stderr",
                    "--socketpath",
                    socket,
                    "-m",
                    "2",
                    "--min-children",
                    "2",
                    *as_user,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=private,
                start_new_session=True,  # its children in a group of their own, stopped with it
            )
        try:
            for _ in range(600):
                if Path(socket).exists() or server.poll() is not None:
                    break
                time.sleep(0.1)
            if not Path(socket).exists():
                raise RuntimeError(f"spamd did not start: {errors.read_text(errors='replace')[-2000:]}")
            started = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:  # one client per spamd child
                scores = list(pool.map(lambda path: _spamc(client, socket, path), (path for _, path in test)))
            spent = time.perf_counter() - started
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    labels = [label for label, _ in test]
    show("spamassassin 4.0 (-L, Bayes)", figures(labels, scores, 5.0), len(test) / spent)


def _spamc(client: str, socket: str, path: Path) -> float:
    """spamd's score of one message: spamc -c prints "score/threshold" and exits 1 for spam, 0 for ham; -x
    makes it fail rather than print 0/0 when spamd cannot be reached; -s lifts its 500 KB limit, over
    which it would not have the message scored."""
    with path.open("rb") as message:
        done = subprocess.run(
            [client, "-U", socket, "-c", "-x", "-s", "100000000"], check=False, stdin=message, capture_output=True
        )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"spamc failed on {path} (exit status {done.returncode})")
    return float(done.stdout.split(b"/")[0])


# ---- --cv: the alternatives, 5-fold cross-validation on the training half only ----------------------


def _fisher_on_error(
    train: list[tuple[bool, Features]], test: list[Features], *, seed: int = 0
) -> list[tuple[float, float]]:
    """The Fisher classifier's log-odds of each test message: from all its clues, and (as models.combine
    mixes them) the sum of those from its body's clues and from its header's."""
    counts = Counts()
    order = list(train)
    random.Random(seed).shuffle(order)  # the order matters: results vary with it
    for is_spam, found in order:
        if worth_learning(counts, found.tokens, is_spam=is_spam):
            counts.add(found.tokens, is_spam=is_spam)
    classifier = Classifier(counts)
    results = [classifier.classify(found) for found in test]
    return [(_logit(r.probability), _logit(r.body) + _logit(r.head)) for r in results]


def _logit(probability: float, limit: float = 1e-6) -> float:
    p = min(1 - limit, max(limit, probability))
    return math.log(p / (1 - p))


def _linear_blocks(train: list[tuple[bool, Features]], test: list[Features]) -> list[linear.Sums]:
    weights = linear.Weights()
    linear.train(weights, [(found.tokens - found.head, found.head, found.grams, s) for s, found in train])
    return [linear.blocks(weights, found.tokens - found.head, found.head, found.grams) for found in test]


def _folds(
    data: list[tuple[bool, Features]], method: Callable[[list[tuple[bool, Features]], list[Features]], list[_T]]
) -> list[_T]:
    """Each message's score by the model trained on the other four folds."""
    order = list(range(len(data)))
    random.Random(1).shuffle(order)
    folds = [order[k::5] for k in range(5)]
    scores: dict[int, _T] = {}
    for k, fold in enumerate(folds):
        rest = [data[i] for j, other in enumerate(folds) if j != k for i in other]
        scores.update(zip(fold, method(rest, [data[i][1] for i in fold]), strict=True))
    return [scores[i] for i in range(len(data))]


def cross_validate(train: list[tuple[bool, Path]]) -> None:
    data = [(is_spam, features(path.read_bytes())) for is_spam, path in train]
    labels = [is_spam for is_spam, _ in data]
    started = time.process_time()
    fisher = _folds(data, _fisher_on_error)
    blocks = _folds(data, _linear_blocks)
    print(f"(5 folds of the Fisher classifier and the linear model: {time.process_time() - started:.0f} s CPU)")
    words = [b + linear.HEAD_SHARE * h for b, h, _ in blocks]
    grams = [g for _, _, g in blocks]
    show("cv fisher chi2, TOE", figures(labels, [f for f, _ in fisher], 0.0), None)
    show("cv fisher, body + head parts", figures(labels, [f for _, f in fisher], 0.0), None)
    one = [w + linear.GRAM_SHARE * g + FISHER_SHARE * f for w, g, (f, _) in zip(words, grams, fisher, strict=True)]
    show(f"cv b+{linear.HEAD_SHARE}h + {linear.GRAM_SHARE} g + {FISHER_SHARE} F(one)", figures(labels, one, 0.0), None)
    show("cv linear, body words alone", figures(labels, [b for b, _, _ in blocks], 0.0), None)
    show("cv linear, header words alone", figures(labels, [h for _, h, _ in blocks], 0.0), None)
    show(f"cv linear, body + {linear.HEAD_SHARE} head", figures(labels, words, 0.0), None)
    show("cv linear, 4-grams alone", figures(labels, grams, 0.0), None)
    for gram_share in (0.3, 0.5, 1.0):
        for fisher_share in (0.0, 0.1, 0.3, 0.5):
            mixed = [w + gram_share * g + fisher_share * f for w, g, (_, f) in zip(words, grams, fisher, strict=True)]
            chosen = gram_share == linear.GRAM_SHARE and fisher_share == FISHER_SHARE
            name = f"cv b+{linear.HEAD_SHARE}h + {gram_share} g + {fisher_share} (Fb+Fh){' (chosen)' if chosen else ''}"
            show(name, figures(labels, mixed, 0.0), None)
            if chosen:
                ham = sorted(z for z, is_spam in zip(mixed, labels, strict=True) if not is_spam)
                strict = ham[-1 - int(0.001 * len(ham))]
                print(f"{'':28} log-odds leaving 0.1% of the ham above: {strict:.2f} (rules.LOGIT_SCALE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", action="store_true", help="also cross-validate the alternatives on the train half")
    parser.add_argument("--spamassassin", action="store_true", help="also train and score SpamAssassin")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus missing at {CORPUS}", file=sys.stderr)
        return 1
    train, test = load("split-train.tsv"), load("split-test.tsv")
    if args.cv:
        cross_validate(train)
    pochta(train, test)
    bogofilter(train, test)
    if args.spamassassin:
        spamassassin(train, test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
