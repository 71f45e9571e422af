"""Models over a real SQLite store: learning once per class, moving a message between classes, caches."""

from __future__ import annotations

from pochta.filters.spam import rules
from pochta.filters.spam.models import REFRESH, Example, Index, Model, Models, judge
from pochta.filters.spam.tokens import features
from pochta.store.api import GLOBAL_MODEL, Store

from .samples import ham, message, spam


def _example(data: bytes, *, is_spam: bool, digest: str) -> Example:
    return Example.of(features(data), digest=digest, is_spam=is_spam)


async def _train_global(models: Models, count: int = 10) -> None:
    await models.learn(
        GLOBAL_MODEL,
        [_example(spam(n), is_spam=True, digest=f"s{n}") for n in range(count)]
        + [_example(ham(n), is_spam=False, digest=f"h{n}") for n in range(count)],
    )


async def test_learning_is_durable_and_counted_once(store: Store) -> None:
    models = Models(store)
    await _train_global(models)
    again = await models.learn(GLOBAL_MODEL, [_example(spam(0), is_spam=True, digest="s0")])
    assert (again.learned, again.relearned, again.skipped) == (0, 0, 1)
    model = await store.spam_model(GLOBAL_MODEL)
    assert (model.spam, model.ham) == (10, 10)
    fresh = Models(store)  # a new process sees the same model
    assert (await fresh.classify(features(spam(77)), None)).probability > 0.99


async def test_a_message_changing_class_is_moved_over(store: Store) -> None:
    models = Models(store)
    await _train_global(models)
    account = 5
    note = message("gardening club newsletter tulips compost")
    first = await models.learn(account, [_example(note, is_spam=True, digest="n1")])
    assert first.learned == 1
    spammy = (await models.user(account)).counts.tokens["gardening"]
    assert spammy == (1, 0)
    moved = await models.learn(account, [_example(note, is_spam=False, digest="n1")])
    assert (moved.learned, moved.relearned) == (0, 1)
    user = (await models.user(account)).counts
    assert (user.spam, user.ham, user.tokens["gardening"]) == (0, 1, (0, 1))
    assert await store.spam_trained(account, ["n1", "other"]) == {"n1": False}
    stored = await store.spam_model(account)
    assert stored.tokens == user.tokens and stored.generation == 2


async def test_a_message_given_as_both_classes_in_one_batch_counts_once_as_the_last(store: Store) -> None:
    models = Models(store)
    await _train_global(models)
    note = message("gardening club newsletter tulips compost")
    classes = (True, False, True, True)  # spam, then ham after all, then spam again (twice)
    result = await models.learn(5, [_example(note, is_spam=is_spam, digest="n1") for is_spam in classes])
    assert (result.learned, result.relearned, result.skipped) == (1, 2, 1)
    user = (await models.user(5)).counts
    assert (user.spam, user.ham, user.tokens["gardening"]) == (1, 0, (1, 0))
    assert await store.spam_trained(5, ["n1"]) == {"n1": True}
    stored = await store.spam_model(5)
    assert (stored.spam, stored.ham, stored.tokens) == (1, 0, user.tokens)
    await models.learn(6, [_example(note, is_spam=True, digest="n1")])  # given once, as spam
    once = await store.spam_model(6)
    assert (stored.words, stored.grams) == (once.words, once.grams) and stored.words  # one step, toward spam


async def test_another_writers_training_is_seen_after_the_refresh(store: Store) -> None:
    now = [0.0]
    reader = Models(store, clock=lambda: now[0])
    await _train_global(Models(store))
    newsletter = features(message("gardening club newsletter tulips compost"))
    before = (await reader.classify(newsletter, 9)).logit
    writer = Models(store)
    await writer.learn(
        9,
        [
            _example(message("gardening club newsletter tulips", number=n), is_spam=True, digest=f"g{n}")
            for n in range(3)
        ],
    )
    await _train_global(writer, 12)  # the global model moved on too
    assert (await reader.classify(newsletter, 9)).logit == before  # cached
    now[0] += REFRESH + 1
    assert (await reader.classify(newsletter, 9)).logit > before
    assert (await reader.global_model()).counts.spam == 12


async def test_the_linear_model_learns_online_and_a_move_steps_the_other_way(store: Store) -> None:
    models = Models(store)
    await _train_global(models)
    assert (await store.spam_model(GLOBAL_MODEL)).grams  # bulk-learned weights are in the store
    account = 5
    note = features(message("gardening club newsletter tulips compost seedlings"))
    before = (await models.classify(note, account)).logit
    await models.learn(account, [Example.of(note, digest="n1", is_spam=True)])
    spammy = (await models.classify(note, account)).logit
    assert spammy > before + 10
    stored = await store.spam_model(account)
    assert stored.words and stored.grams and not (await store.spam_model(GLOBAL_MODEL)).words.keys() & {"tulips"}
    assert (await Models(store).classify(note, account)).logit == spammy  # another process computes the same
    global_only = (await models.classify(note, None)).logit
    await models.learn(account, [Example.of(note, digest="n1", is_spam=False)])  # moved out of Junk
    assert (await models.classify(note, account)).logit < before
    assert (await models.classify(note, 6)).logit == (await models.classify(note, None)).logit == global_only


async def test_without_weights_the_fisher_classifier_alone_decides_as_before(store: Store) -> None:
    models = Models(store)  # a store trained before the linear model existed: counts only
    await models.learn(
        GLOBAL_MODEL,
        [_example(spam(n), is_spam=True, digest=f"s{n}") for n in range(10)]
        + [_example(ham(n), is_spam=False, digest=f"h{n}") for n in range(10)],
        step=False,
    )
    result = await Models(store).classify(features(spam(77)), None)
    hit = rules.bayes_hit(result.logit, is_trained=result.is_trained)
    assert hit is not None and hit.points == round(rules.BAYES_POINTS * (2 * result.probability - 1), 2)


async def test_a_message_for_many_is_judged_for_each_as_alone(store: Store) -> None:
    models = Models(store)
    await _train_global(models)
    note = features(message("gardening club newsletter tulips compost seedlings"))
    await models.learn(5, [Example.of(note, digest="n1", is_spam=True)])  # 5 has a model of their own
    await models.learn(7, [Example.of(note, digest="n1", is_spam=False)])  # and 7 the other way
    each = await models.classify_each(note, [5, 6, 7, 8, None])
    alone = {account: await Models(store).classify(note, account) for account in (5, 6, 7, 8, None)}
    assert each == alone
    assert each[6] is each[8] is each[None]  # no model of their own: the global judgement, computed once
    assert each[5].logit > each[None].logit > each[7].logit


async def test_the_shared_index_scores_as_each_classifiers_own_tables_and_follows_training(store: Store) -> None:
    models = Models(store)
    await _train_global(models)
    model = await models.global_model()
    classifier = await models.classifier()
    index = Index.of(classifier, model.weights)
    assert index is not None
    user = Model()
    user.counts.add(features(message("gardening club newsletter tulips")).tokens, is_spam=True)
    for data in [spam(n) for n in range(20, 30)] + [ham(n) for n in range(20, 30)]:
        found = features(data)
        for own in (None, user):
            shared = judge(classifier, model.weights, found, own, index=index)
            apart = judge(classifier, model.weights, found, own)  # the classifier's and the weights' tables
            assert shared.probability == apart.probability
            assert abs(shared.logit - apart.logit) < 1e-9
    note = features(message("gardening club newsletter tulips compost seedlings"))
    before = (await models.classify(note, None)).logit
    await models.learn(GLOBAL_MODEL, [Example.of(note, digest="n1", is_spam=True)])  # trained here, in place
    after = (await models.classify(note, None)).logit
    assert after > before
    assert after == (await Models(store).classify(note, None)).logit  # as a fresh process scores it
