"""Learning from what users do: IMAP reports moves into and out of Junk and the $Junk/$NotJunk keywords;
this task trains each user's model in the background, so the IMAP command answers at once.

Reports wait in a bounded queue (a flood of them drops the excess with a warning: training is advice,
not data). Each message is trained once per class: the model remembers what it was taught, by blob id.
Training counts the message's tokens and takes one step of the user's linear model toward its class
(on error: a message the user's model already puts far enough on that side leaves the weights alone).
A message moved from one class to the other is un-counted, counted the other way, and stepped toward
its new class (models.py, linear.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pochta.store.api import Blobs, Mailboxes, NotFound, StoreError

from .models import Example, Models
from .tokens import features

log = logging.getLogger(__name__)

MAX_PENDING = 10_000  # reports waiting
MAX_MESSAGE = 1 * 2**20  # octets of a message read for training (the head holds what the tokens need)
# Messages taught at a time. Counting and stepping run on the event loop (the models are shared with
# scoring), about 1 ms a message: a move of 1,000 messages into Junk in one batch held every session of
# the process for 0.3-0.7 s, and a move of 10,000 would for seconds. Batches of 50 held it 40-80 ms.
CHUNK = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class _Report:
    account_id: int
    mailbox_id: int
    uids: tuple[int, ...]
    is_spam: bool


class Learner:
    def __init__(self, *, models: Models, mailboxes: Mailboxes, blobs: Blobs) -> None:
        self._models = models
        self._mailboxes = mailboxes
        self._blobs = blobs
        self._queue: asyncio.Queue[_Report] = asyncio.Queue(MAX_PENDING)
        self.trained = 0  # messages taught so far (for tests and the log)

    def learn(self, *, account_id: int, mailbox_id: int, uids: Sequence[int], is_spam: bool) -> None:
        try:
            self._queue.put_nowait(
                _Report(account_id=account_id, mailbox_id=mailbox_id, uids=tuple(uids), is_spam=is_spam)
            )
        except asyncio.QueueFull:
            log.warning("spam training queue full, report dropped account=%d", account_id)

    async def idle(self) -> None:
        """Wait until every report made so far is trained."""
        await self._queue.join()

    async def run(self) -> None:
        while True:
            report = await self._queue.get()
            try:
                await self._train(report)
            except StoreError as exc:
                log.warning("spam training failed account=%d: %s", report.account_id, exc)
            except Exception:
                log.exception("spam training failed account=%d", report.account_id)
            finally:
                self._queue.task_done()

    async def _train(self, report: _Report) -> None:
        for first in range(0, len(report.uids), CHUNK):
            uids = report.uids[first : first + CHUNK]
            messages = await self._mailboxes.messages(report.mailbox_id, uids=uids)
            examples: list[Example] = []
            for message in messages:
                try:
                    data = await self._blobs.read(message.blob_id, 0, min(message.size, MAX_MESSAGE))
                except NotFound:  # expunged and its blob removed meanwhile: nothing to learn from
                    continue
                examples.append(await asyncio.to_thread(_example, data, message.blob_id, report.is_spam))
            if not examples:
                continue
            # Each chunk is written on its own: it is counted and logged as it lands, so a later chunk's
            # failure leaves the log saying what was taught.
            result = await self._models.learn(report.account_id, examples)
            self.trained += result.learned + result.relearned
            log.info(
                "spam trained account=%d class=%s learned=%d relearned=%d skipped=%d",
                report.account_id,
                "spam" if report.is_spam else "ham",
                result.learned,
                result.relearned,
                result.skipped,
            )


def _example(data: bytes, digest: str, is_spam: bool) -> Example:
    """A message tokenised for training, its token strings made too (in a worker thread: ~0.6 ms)."""
    return Example.of(features(data), digest=digest, is_spam=is_spam)  # Example.of makes the strings
