"""The classifier: probabilities from counts, exact un-learning, per-user models."""

from __future__ import annotations

from pochta.filters.spam.bayes import MIN_TRAINED, Classifier, Counts, deltas
from pochta.filters.spam.tokens import features

from .samples import ham, message, spam


def _trained(count: int = 20) -> Counts:
    counts = Counts()
    for n in range(count):
        counts.add(features(ham(n)).tokens, is_spam=False)
        counts.add(features(spam(n)).tokens, is_spam=True)
    return counts


def test_an_untrained_model_does_not_judge() -> None:
    counts = Counts()
    for n in range(MIN_TRAINED - 1):
        counts.add(features(spam(n)).tokens, is_spam=True)
        counts.add(features(ham(n)).tokens, is_spam=False)
    result = Classifier(counts).classify(features(spam(99)))
    assert result.probability == 0.5 and not result.is_trained


def test_new_spam_and_ham_are_told_apart() -> None:
    classifier = Classifier(_trained())
    for n in range(100, 110):
        assert classifier.classify(features(spam(n))).probability > 0.99
        assert classifier.classify(features(ham(n))).probability < 0.01
    explained = classifier.classify(features(spam(100)), explain=True)
    assert explained.clues and all(p > 0.5 for _, p in explained.clues[:5])


def test_unlearning_restores_the_counts_exactly() -> None:
    counts = _trained(8)
    before = (dict(counts.tokens), counts.spam, counts.ham)
    tokens = features(spam(50)).tokens
    counts.add(tokens, is_spam=True)
    counts.add(tokens, is_spam=True, sign=-1)
    assert (counts.tokens, counts.spam, counts.ham) == before
    counts.add(tokens, is_spam=False, sign=-1)  # never below zero, never a (0, 0) row
    assert counts.ham == before[2] - 1 and all(pair != (0, 0) for pair in counts.tokens.values())


def test_summed_deltas_equal_one_by_one_training() -> None:
    one_by_one = Counts()
    batched = Counts()
    examples = [(features(spam(n)).tokens, True, 1) for n in range(5)] + [
        (features(ham(n)).tokens, False, 1) for n in range(5)
    ]
    for tokens, is_spam, _ in examples:
        one_by_one.add(tokens, is_spam=is_spam)
    batched.apply(deltas(examples), spam=5, ham=5)
    assert batched == one_by_one


def test_a_users_model_moves_only_that_users_scores() -> None:
    classifier = Classifier(_trained())
    newsletter = features(message("gardening club newsletter seeds compost tulips spring planting"))
    before = classifier.classify(newsletter).probability
    user = Counts()
    for n in range(3):
        user.add(features(message("gardening club newsletter seeds compost tulips", number=n)).tokens, is_spam=True)
    assert classifier.classify(newsletter, user).probability > before
    assert classifier.classify(newsletter).probability == before


def test_the_body_and_header_parts_come_from_their_own_clues_on_both_paths() -> None:
    classifier = Classifier(_trained())
    user = Counts()
    for n in range(3):
        user.add(features(message("gardening club tulips", sender=f"club{n}@garden.example")).tokens, is_spam=True)
    # Ham words, sent the way the spam is: the header speaks for spam, the body for ham.
    mixed = features(spam(500).split(b"\r\n\r\n")[0] + b"\r\n\r\n" + ham(500).split(b"\r\n\r\n")[1])
    for found in (mixed, features(spam(501)), features(ham(502)), features(message("gardening club tulips"))):
        for own in (None, user):
            fast = classifier.classify(found, own)
            listed = classifier.classify(found, own, explain=True)  # every clue by its token
            for part in ("probability", "body", "head"):
                assert abs(getattr(fast, part) - getattr(listed, part)) < 1e-9, part
    result = classifier.classify(mixed)
    assert result.head > 0.99 and result.body < 0.5  # (the body still has the spam's text/html type)
