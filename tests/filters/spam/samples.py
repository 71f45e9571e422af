"""Small made-up mail for the spam tests: a few kinds of ham and spam, different in words and in form."""

from __future__ import annotations

import random

_HAM_WORDS = [
    "meeting",
    "project",
    "review",
    "schedule",
    "agenda",
    "budget",
    "release",
    "notes",
    "patch",
    "build",
    "server",
    "deploy",
    "team",
    "lunch",
    "thanks",
    "attached",
    "minutes",
    "report",
    "quarter",
    "design",
    "document",
    "question",
    "tomorrow",
    "friday",
    "kernel",
    "compile",
]
_SPAM_WORDS = [
    "cheap",
    "pills",
    "winner",
    "prize",
    "claim",
    "offer",
    "limited",
    "viagra",
    "casino",
    "bonus",
    "unsubscribe",
    "guaranteed",
    "income",
    "click",
    "free",
    "money",
    "loan",
    "credit",
    "lowest",
    "rates",
    "act",
    "now",
    "exclusive",
    "deal",
    "million",
    "inheritance",
]


def ham(number: int, *, words: int = 40) -> bytes:
    rng = random.Random(number)
    text = " ".join(rng.choice(_HAM_WORDS) for _ in range(words))
    return (
        f"From: Colleague {number} <colleague{number}@work.example>\r\n"
        "To: alice@example.test\r\n"
        f"Subject: {rng.choice(_HAM_WORDS)} {rng.choice(_HAM_WORDS)}\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <ham{number}@work.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Hi Alice,\r\n\r\n{text}\r\n\r\nRegards\r\n"
    ).encode()


def spam(number: int, *, words: int = 40) -> bytes:
    rng = random.Random(1000 + number)
    text = " ".join(rng.choice(_SPAM_WORDS) for _ in range(words))
    return (
        f"From: Lucky Draw <promo{number}@offers.example>\r\n"
        "To: alice@example.test\r\n"
        f"Subject: {rng.choice(_SPAM_WORDS).upper()} {rng.choice(_SPAM_WORDS).upper()}!!!\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <spam{number}@offers.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        f'<html><body><p>{text}</p><a href="http://win.offers.example/claim">claim</a></body></html>\r\n'
    ).encode()


def message(body: str, *, subject: str = "a note", number: int = 1, sender: str = "someone@elsewhere.example") -> bytes:
    """A neutral message with the given body text."""
    return (
        f"From: {sender}\r\n"
        "To: alice@example.test\r\n"
        f"Subject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <note{number}@elsewhere.example>\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()
