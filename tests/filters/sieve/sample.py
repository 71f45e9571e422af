"""Messages and a runner for the Sieve tests: a script and a message in, the Result out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pochta.filters.sieve import Environment, MessageView, Result, parse, run

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)

PLAIN = (
    "Return-Path: <alice@example.org>\n"
    "Received: from mx.example.org by mx.example.com; Fri, 27 Nov 2026 09:59:58 +0000\n"
    "Received: from laptop by mx.example.org; Fri, 27 Nov 2026 09:59:50 +0000\n"
    "From: Alice Example <alice@example.org>\n"
    "To: Bob <bob@example.com>\n"
    "Cc: carol@example.net, team@lists.example.com\n"
    "Subject: Lunch on Friday?\n"
    "Date: Fri, 27 Nov 2026 10:59:40 +0100\n"
    "Message-ID: <lunch-1@example.org>\n"
    "X-Priority: 1\n"
    "\n"
    "Hi Bob,\nlunch on Friday at noon?\nAlice\n"
)


def message(
    text: str = PLAIN,
    *,
    envelope_from: str = "alice@example.org",
    envelope_to: str = "bob@example.com",
) -> MessageView:
    content = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return MessageView(content=content, envelope_from=envelope_from, envelope_to=envelope_to, size=len(content))


def environment(**changes: Any) -> Environment:
    values: dict[str, Any] = {"now": NOW, "user": "bob@example.com", "domain": "example.com", "host": "mx.example.com"}
    values.update(changes)
    return Environment(**values)


def outcome(script: str, mail: MessageView | None = None, **changes: Any) -> Result:
    return run(parse(script), mail or message(), environment(**changes))
