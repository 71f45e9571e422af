"""The linear model and its 4-gram features: exact and stable features, training on error, user models."""

from __future__ import annotations

import math

import pytest

from pochta.filters.spam import linear
from pochta.filters.spam.linear import Weights
from pochta.filters.spam.tokens import WINDOW, features, grams

from .processes import outputs_under_hash_seeds
from .samples import ham, message, spam


def test_grams_are_the_octets_read_as_little_endian_numbers() -> None:
    data = b"Subject: hi\n\nabcdef"
    expected = {int.from_bytes(data[i : i + 4], "little") for i in range(len(data) - 3)}
    found = grams(data, data.index(b"\n\n") + 2)
    assert found.tolist() == sorted(expected)  # ascending, each once
    assert grams(b"", 0).tolist() == [] and grams(b"abc", 0).tolist() == []
    assert grams(b"aaaaaaaa", 0).tolist() == [int.from_bytes(b"aaaa", "little")]


def test_grams_ignore_line_ends_and_the_fields_we_write() -> None:
    plain = b"From: a@b.example\nSubject: hi\n\nbody text here\n"
    stored = b"X-Spam-Status: Yes, score=9.0 required=5.0\r\nX-Spam-Score: 9.0\r\n" + plain.replace(
        b"\n", b"\r\n"
    ).replace(b"Subject: hi\r\n", b"Subject: hi\r\nDate: Fri, 27 Nov 2026\r\n\tfolded\r\n")
    assert features(stored).grams.tolist() == features(plain).grams.tolist()


def test_grams_look_at_the_first_window_only() -> None:
    head = b"Subject: long\n\n"
    data = head + b"a" * (WINDOW - len(head)) + b"the tail after the window"
    expected = {int.from_bytes(b"aaaa", "little"), *grams(head + b"aaa", len(head)).tolist()}
    assert features(data).grams.tolist() == sorted(expected)


def _trained() -> Weights:
    model = Weights()
    examples = [(f.tokens - f.head, f.head, f.grams, True) for f in map(features, map(spam, range(10)))]
    examples += [(f.tokens - f.head, f.head, f.grams, False) for f in map(features, map(ham, range(10)))]
    assert linear.train(model, examples) > 0
    for body, head, found, is_spam in examples:  # bulk training ends with every message right by the margin
        parts = linear.blocks(model, body, head, found)
        assert min(parts) > linear.MARGIN if is_spam else max(parts) < -linear.MARGIN
    return model


def test_bulk_training_keeps_the_mean_of_the_models_trained_in_each_order(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = [(f.tokens - f.head, f.head, f.grams, n % 2 == 0) for n, f in enumerate(map(features, _mixed(16)))]
    together = Weights()
    linear.train(together, examples)
    monkeypatch.setattr(linear, "ORDERS", 1)
    apart = []
    for number in range(3):  # what order `number` of three sees: the seeds of its passes
        alone = Weights()
        linear.train(alone, examples, seed=linear.order_seed(0, number, 0))
        apart.append(alone)
    assert len({tuple(sorted(model.words.items())) for model in apart}) == 3  # the orders differ
    for found in map(features, _mixed(4, start=100)):
        expected = sum(linear.logit(model, found) for model in apart) / 3
        assert linear.logit(together, found) == pytest.approx(expected, abs=1e-9)


def test_the_mean_change_is_what_the_orders_moved_and_nothing_else() -> None:
    start = Weights(words={"a": 0.1, "b": 1 / 3, "c": -2.7}, grams={1: 0.3, 2: 1 / 7})
    copies = [Weights(words=dict(start.words), grams=dict(start.grams)) for _ in range(3)]
    assert not linear.mean_change(copies, start)  # no order moved: no change at all, not rounding errors
    copies[0].words["a"] += 0.3
    copies[1].words["new"] = 0.6
    copies[2].grams[2] -= 0.9
    change = linear.mean_change(copies, start)
    assert change.words == pytest.approx({"a": 0.1, "new": 0.2}) and change.grams == pytest.approx({2: -0.3})


def _mixed(count: int, start: int = 0) -> list[bytes]:
    return [spam(start + n) if n % 2 == 0 else ham(start + n) for n in range(count)]


def test_scoring_from_the_sorted_copy_gives_what_training_sees() -> None:
    model = _trained()
    user = Weights()
    note = features(spam(300))
    linear.learn(user, note.tokens - note.head, note.head, note.grams, is_spam=False, base=model)
    for found in (note, features(ham(300)), features(message("nothing known here at all"))):
        for mine in (None, user):
            body_part, head_part, gram_part = linear.blocks(
                model, found.tokens - found.head, found.head, found.grams, mine
            )
            expected = body_part + linear.HEAD_SHARE * head_part + linear.GRAM_SHARE * gram_part
            assert abs(linear.logit(model, found, mine) - expected) < 1e-9
    before = linear.logit(model, note)
    model.add(Weights(grams={int(note.grams[0]): 100.0}))  # a change drops the sorted copy
    moved = linear.GRAM_SHARE * 100.0 / math.sqrt(len(note.grams) + 1)
    assert abs(linear.logit(model, note) - before - moved) < 1e-9


def test_training_tells_new_spam_from_ham() -> None:
    model = _trained()
    for n in range(100, 105):
        assert linear.logit(model, features(spam(n))) > 5
        assert linear.logit(model, features(ham(n))) < -5


def test_a_step_only_on_error() -> None:
    model = _trained()
    right = features(spam(200))
    before = Weights(dict(model.words), dict(model.grams))
    change = Weights()
    assert not linear.learn(model, right.tokens - right.head, right.head, right.grams, is_spam=True, change=change)
    assert model == before and not change
    assert linear.learn(
        model, right.tokens - right.head, right.head, right.grams, is_spam=False, change=change
    )  # "it was ham"
    assert linear.logit(model, right) < linear.logit(before, right)
    before.add(change)  # the changes, added as the store adds them, give the same model
    assert before == model


def test_a_users_steps_are_taken_against_the_sum_and_stay_theirs() -> None:
    model = _trained()
    shared = Weights(dict(model.words), dict(model.grams))
    user = Weights()
    note = features(message("gardening club newsletter tulips compost seedlings"))
    before = linear.logit(model, note, user)
    for _ in range(3):
        linear.learn(user, note.tokens - note.head, note.head, note.grams, is_spam=True, base=model)
    after = linear.logit(model, note, user)
    assert after > before and after > linear.MARGIN * linear.GRAM_SHARE
    assert model == shared  # the global model did not move
    assert not linear.learn(user, note.tokens - note.head, note.head, note.grams, is_spam=True, base=model)  # no step


_CHILD = """
from pochta.filters.spam import linear
from pochta.filters.spam.tokens import features
from tests.filters.spam.test_linear import _trained
from tests.filters.spam.samples import message
note = features(message("free lunch offers for the team meeting"))
print(sorted(note.grams)[:5], repr(linear.logit(_trained(), note)))
"""


def test_features_and_scores_are_the_same_in_every_process() -> None:
    runs = outputs_under_hash_seeds(_CHILD, ("1", "4242"))
    (output,) = runs  # string hashing (and so set order) differs between the two; the result does not
    assert output.startswith("[") and float(output.split()[-1]) != 0
