"""How a command fails: deep code raises :class:`Refusal`, the session's command loop answers it.

:func:`refusal_for` is the one place where store errors become IMAP response codes (RFC 5530).
"""

from __future__ import annotations

from pochta.proto.imap import Code, Status
from pochta.store.api import AlreadyExists, Conflict, NotFound, OverQuota, StoreError


class Refusal(Exception):
    """A tagged NO or BAD for the command in progress."""

    def __init__(self, status: Status, text: str, code: Code | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code

    @classmethod
    def no(cls, text: str, code: str | None = None) -> Refusal:
        return cls(Status.NO, text, Code(name=code) if code else None)

    @classmethod
    def bad(cls, text: str) -> Refusal:
        return cls(Status.BAD, text)


def refusal_for(exc: StoreError, *, is_target: bool = False) -> Refusal:
    """The answer to a store failure. ``is_target``: the mailbox named was the destination of
    APPEND, COPY or MOVE, where a missing mailbox is ``[TRYCREATE]`` (RFC 9051 §6.3.12, §6.4.7)."""
    match exc:
        case NotFound():
            return Refusal.no("no such mailbox", "TRYCREATE" if is_target else "NONEXISTENT")
        case AlreadyExists():
            return Refusal.no("mailbox already exists", "ALREADYEXISTS")
        case OverQuota():
            return Refusal.no("quota exceeded", "OVERQUOTA")  # RFC 9208 §4.3
        case Conflict():
            return Refusal.no(str(exc) or "not possible", "CANNOT")
        case _:
            return Refusal.no("temporary failure, try again later", "UNAVAILABLE")
