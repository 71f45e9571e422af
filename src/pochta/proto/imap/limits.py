"""How much an IMAP client may send in one go."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    # A command with its lines and literals, APPEND messages excepted. RFC 7162 §4 asks servers to take
    # lines of at least 8192 octets; long UID sets and SEARCH strings need more.
    max_command: int = 64 * 2**10
    max_append: int = 50 * 2**20  # one APPEND message, advertised as APPENDLIMIT (RFC 7889)
    max_append_messages: int = 1000  # messages in one MULTIAPPEND (RFC 3502)
    max_nonsync_literal: int | None = None  # None: LITERAL+; 4096: LITERAL- (RFC 7888 §5)
    max_errors: int = 20  # BAD replies before the core asks for BYE (like Dovecot's 20)
