"""`pochta spam ...`: train the filter in bulk, score messages, keep the allow and block lists."""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from pochta.filters.spam import linear, rules
from pochta.filters.spam.bayes import Counts, worth_learning
from pochta.filters.spam.check import assess, list_hit, senders
from pochta.filters.spam.models import Example, Models
from pochta.filters.spam.tokens import Grams, features
from pochta.store.api import GLOBAL_MODEL, SpamListEntry, Store

from .cli import _address, _config, _fail, _run, cli

_MBOX_SEPARATOR = re.compile(rb"(?:\A|\n\r?\n)From \S+[^\n]*\n")
_BATCH = 2000  # messages per store write while training


@dataclass(frozen=True, slots=True)
class _Source:
    name: str  # the path, with ":N" for the N-th message of an mbox
    data: bytes


_NOT_MAIL = ("dovecot", "maildirfolder", "courier", "subscriptions", ".")  # index and state files in Maildirs


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found: list[Path] = []
        for root, directories, names in os.walk(path):
            directories[:] = sorted(d for d in directories if d != "tmp" and not d.startswith("."))  # tmp: unfinished
            found += [Path(root) / name for name in sorted(names) if not name.startswith(_NOT_MAIL)]
        return [file for file in found if file.is_file()]
    if path.is_file():
        return [path]
    _fail(f"{path}: no such file or directory")


def _messages(path: Path) -> Iterator[_Source]:
    """The messages in a file (one message, or an mbox of several) or under a folder (Maildir or any tree).
    A file is mapped, not read: an mbox of gigabytes costs the memory of one message at a time."""
    for file in _files(path):
        with file.open("rb") as handle:
            try:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # empty (ValueError), or on a file system that cannot map files
                mapped = None
            if mapped is None:
                yield _Source(str(file), handle.read())
                continue
            with mapped as data:
                if data[:5] != b"From ":
                    yield _Source(str(file), data[:])
                    continue
                separators = [(match.start(), match.end()) for match in _MBOX_SEPARATOR.finditer(data)]
                if len(separators) <= 1:
                    yield _Source(str(file), data[separators[0][1] :] if separators else data[:])
                    continue
                ends = [start for start, _ in separators[1:]] + [len(data)]
                for number, ((_, start), end) in enumerate(zip(separators, ends, strict=True), 1):
                    yield _Source(f"{file}:{number}", data[start:end])


def _split_classes(words: Sequence[str]) -> tuple[list[Path], list[Path]]:
    ham: list[Path] = []
    spam: list[Path] = []
    current: list[Path] | None = None
    for word in words:
        if word == "--ham":
            current = ham
        elif word == "--spam":
            current = spam
        elif word.startswith("--"):
            _fail(f"unknown option {word}")
        elif current is None:
            _fail(f"{word}: say --ham or --spam before the paths")
        else:
            current.append(Path(word))
    if not ham and not spam:
        _fail("nothing to train: give --ham PATH... and/or --spam PATH...")
    return ham, spam


async def _account_id(store: Store, address: str | None) -> int:
    if address is None:
        return GLOBAL_MODEL
    account = await store.get_account(_address(address))
    if account is None:
        _fail(f"{address}: no such account")
    return account.id


@cli.group()
def spam() -> None:
    """The learning spam filter (docs/spam.md)."""


@spam.command("train", context_settings={"ignore_unknown_options": True})
@click.option("--user", "user", metavar="ADDRESS", help="train this user's model (default: the global one)")
@click.option(
    "--all",
    "count_all",
    is_flag=True,
    help="count every message (default: only those the model does not already get right)",
)
@click.argument("paths", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def spam_train(ctx: click.Context, user: str | None, count_all: bool, paths: tuple[str, ...]) -> None:
    """Train with messages: --ham PATH... --spam PATH... (files, folders such as Maildirs, or mbox files).

    The messages are read once and taken in a shuffled order, ham and spam interleaved (an mbox is split
    into its messages first). The token counts take a message only when the model built so far does not
    already score it right by a clear margin (training on error, docs/spam.md); the linear model then
    goes over all the messages again, up to 10 passes, stepping on each it gets wrong, in 3 orders, and
    keeps the mean of the 3 models."""
    ham, spam_paths = _split_classes(paths)
    sources = [(path, False) for path in ham] + [(path, True) for path in spam_paths]
    totals = [0, 0, 0, 0]
    done: list[linear.Trained] = []

    async def action(store: Store) -> None:
        account_id = await _account_id(store, user)
        models = Models(store)
        base, start, counts = await models.bulk_start(account_id)
        working = Counts(tokens=dict(counts.tokens), spam=counts.spam, ham=counts.ham)
        files = [(file, is_spam) for path, is_spam in sources for file in _files(path)]
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(), transient=True
        ) as progress:
            # read by octets, so that one big mbox moves the bar too
            reading = progress.add_task("reading", total=sum(file.stat().st_size for file, _ in files))
            order = _read(files, lambda octets: progress.advance(reading, octets))
            random.Random(0).shuffle(order)  # as bench/spam_accuracy.py: the same files give the same model
            counting = progress.add_task("counting", total=len(order))
            for first in range(0, len(order), _BATCH):
                batch = [message.example() for message in order[first : first + _BATCH]]
                await _count(store, models, account_id, working, batch, totals=totals, count_all=count_all)
                progress.advance(counting, len(batch))
            training = progress.add_task("training", total=linear.PASSES * linear.ORDERS)
            trained = linear.train_change(
                base,
                start,
                [(message.body, message.head, message.grams, message.is_spam) for message in order],
                on_pass=lambda: progress.advance(training),
            )
        await models.add_weights(account_id, trained.change)
        done.append(trained)

    _run(ctx, action)
    trained = done[0]
    click.echo(f"linear model: {trained.steps} steps in {trained.passes} passes, {trained.orders} orders")
    click.echo(
        f"learned {totals[0]}, relearned {totals[1]}, already known {totals[2]}, already scored right {totals[3]}"
    )


@spam.command("forget")
@click.option("--user", "user", metavar="ADDRESS", help="this user's model (default: the global one)")
@click.option("--yes", is_flag=True, help="do it (without it, only say what would be forgotten)")
@click.pass_context
def spam_forget(ctx: click.Context, user: str | None, yes: bool) -> None:
    """Forget all a model was taught (counts, weights, which messages), to train it afresh; lists stay."""

    async def action(store: Store) -> tuple[int, int]:
        account_id = await _account_id(store, user)
        if yes:
            forgotten = await store.forget_spam_model(account_id)
            return forgotten.spam, forgotten.ham
        return await store.spam_totals(account_id)

    spam_count, ham_count = _run(ctx, action)
    verb = "forgot" if yes else "would forget (add --yes)"
    click.echo(f"{verb}: {spam_count} spam and {ham_count} ham counted, and the linear model's weights")


@dataclass(frozen=True, slots=True)
class _Message:
    """A message read for bulk training, kept for all its passes. Its word features are tuples of strings
    held once for all messages that have them: about 20 KiB a message with its 4-grams and its share of
    the strings (measured on the SpamAssassin corpus), where its tokens.Features with the token strings
    takes about 100 KiB."""

    digest: str
    body: tuple[str, ...]
    head: tuple[str, ...]
    grams: Grams
    is_spam: bool

    def example(self) -> Example:
        """The message as the models count it."""
        return Example(
            digest=self.digest,
            tokens=set(self.body).union(self.head),
            grams=self.grams,
            is_spam=self.is_spam,
            head=frozenset(self.head),
        )


def _read(files: list[tuple[Path, bool]], advance: Callable[[int], None]) -> list[_Message]:
    """Every message of the files (an mbox gives each of its own), tokenised; `advance` is told the octets
    read as it goes."""
    shared: dict[str, str] = {}
    share = shared.setdefault
    read: list[_Message] = []
    for file, is_spam in files:
        size, told = file.stat().st_size, 0
        for source in _messages(file):
            found = features(source.data)
            head = found.head
            read.append(
                _Message(
                    digest=hashlib.sha256(source.data).hexdigest(),
                    body=tuple(share(token, token) for token in found.tokens if token not in head),
                    head=tuple(share(token, token) for token in head),
                    grams=found.grams,
                    is_spam=is_spam,
                )
            )
            advance(len(source.data))
            told += len(source.data)
        advance(max(0, size - told))  # the mbox's separator lines
    return read


async def _count(
    store: Store,
    models: Models,
    account_id: int,
    working: Counts,
    batch: list[Example],
    *,
    totals: list[int],
    count_all: bool,
) -> None:
    known = await store.spam_trained(account_id, [example.digest for example in batch])
    chosen: list[Example] = []
    for example in batch:
        was = known.get(example.digest)
        if was is example.is_spam:
            totals[2] += 1
            continue
        if was is None and not count_all and not worth_learning(working, example.tokens, is_spam=example.is_spam):
            totals[3] += 1
            continue
        if was is not None:  # taught the other way before: always moved over
            working.add(example.tokens, is_spam=was, sign=-1)
        working.add(example.tokens, is_spam=example.is_spam)
        known[example.digest] = example.is_spam
        chosen.append(example)
    if chosen:
        result = await models.learn(account_id, chosen, step=False)
        totals[0] += result.learned
        totals[1] += result.relearned
        totals[2] += result.skipped


@spam.command("check")
@click.option("--user", "user", metavar="ADDRESS", help="score with this user's model and lists as well")
@click.option("--explain", is_flag=True, help="add the rules that fired and the most telling tokens")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def spam_check(ctx: click.Context, user: str | None, explain: bool, paths: tuple[Path, ...]) -> None:
    """Score messages (files, folders or mbox files): one line each, path, score and verdict."""
    settings = _config(ctx).spam

    async def action(store: Store) -> None:
        account_id = await _account_id(store, user)
        models = Models(store)
        account = account_id if account_id != GLOBAL_MODEL else None
        entries = await store.spam_list([GLOBAL_MODEL, account_id])
        for path in paths:
            for source in _messages(path):
                found = features(source.data)
                listed = list_hit(entries, senders(found, ""))
                hits = rules.message_hits(found, {})
                bayes = await models.classify(found, account, explain=explain)
                result = assess(bayes, [*hits, listed] if listed else hits)
                if result.score >= settings.reject_threshold:
                    verdict = "reject"
                elif result.score >= settings.junk_threshold:
                    verdict = "junk"
                else:
                    verdict = "accept"
                line = f"{source.name}\t{result.score:.2f}\t{verdict}"
                if explain:
                    tests = ",".join(f"{hit.name}={hit.points:g}" for hit in result.hits) or "none"
                    clues = " ".join(f"{token!r}={p:.3f}" for token, p in bayes.clues[:10])
                    line += f"\ttests={tests}\tlogit={bayes.logit:.2f}\tp={bayes.probability:.4f}\tclues: {clues}"
                click.echo(line)

    _run(ctx, action)


def _pattern(text: str) -> str:
    if text.startswith("@") and "." in text:
        return text.lower()
    return _address(text).lower()


@spam.command("allow")
@click.option("--user", "user", metavar="ADDRESS", help="this user's list (default: the server-wide one)")
@click.argument("pattern")
@click.pass_context
def spam_allow(ctx: click.Context, user: str | None, pattern: str) -> None:
    """Never call mail from PATTERN (an address or @domain) spam."""
    _list_add(ctx, user, pattern, is_block=False)


@spam.command("block")
@click.option("--user", "user", metavar="ADDRESS", help="this user's list (default: the server-wide one)")
@click.argument("pattern")
@click.pass_context
def spam_block(ctx: click.Context, user: str | None, pattern: str) -> None:
    """Always call mail from PATTERN (an address or @domain) spam."""
    _list_add(ctx, user, pattern, is_block=True)


def _list_add(ctx: click.Context, user: str | None, pattern: str, *, is_block: bool) -> None:
    normalized = _pattern(pattern)

    async def action(store: Store) -> None:
        account_id = await _account_id(store, user)
        await store.add_spam_list_entry(SpamListEntry(account_id=account_id, pattern=normalized, is_block=is_block))

    _run(ctx, action)


@spam.command("unlist")
@click.option("--user", "user", metavar="ADDRESS", help="this user's list (default: the server-wide one)")
@click.argument("pattern")
@click.pass_context
def spam_unlist(ctx: click.Context, user: str | None, pattern: str) -> None:
    """Remove PATTERN from the allow or block list."""
    normalized = _pattern(pattern)

    async def action(store: Store) -> None:
        await store.remove_spam_list_entry(await _account_id(store, user), normalized)

    _run(ctx, action)


@spam.command("lists")
@click.option("--user", "user", metavar="ADDRESS", help="this user's list (default: the server-wide one)")
@click.pass_context
def spam_lists(ctx: click.Context, user: str | None) -> None:
    """Show the allow and block list."""

    async def action(store: Store) -> list[SpamListEntry]:
        return await store.spam_list([await _account_id(store, user)])

    for entry in _run(ctx, action):
        click.echo(f"{'block' if entry.is_block else 'allow'}\t{entry.pattern}")
