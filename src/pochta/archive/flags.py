"""IMAP flags in the forms other mail software keeps them: mbox status headers and Maildir info letters."""

from __future__ import annotations

from collections.abc import Mapping

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
RECENT = "\\Recent"  # a session's property, never stored or carried over
FORWARDED = "$Forwarded"

# X-Status letters, as mutt and Dovecot write them
_X_STATUS = {"A": ANSWERED, "F": FLAGGED, "T": DRAFT, "D": DELETED}
# Maildir info letters (https://cr.yp.to/proto/maildir.html), in the ASCII order the spec asks for
MAILDIR_LETTERS: Mapping[str, str] = {
    "D": DRAFT,
    "F": FLAGGED,
    "P": FORWARDED,
    "R": ANSWERED,
    "S": SEEN,
    "T": DELETED,
}


def flags_from_status(status: str, x_status: str, keywords: str) -> frozenset[str]:
    flags = {SEEN} if "R" in status else set()
    flags |= {flag for letter, flag in _X_STATUS.items() if letter in x_status}
    flags |= {word for word in keywords.replace(",", " ").split() if _is_keyword(word)}
    return frozenset(flags)


def status_headers(flags: frozenset[str]) -> list[bytes]:
    """Status, X-Status and X-Keywords lines for `flags` (always all three, in this order)."""
    x_status = "".join(letter for letter, flag in _X_STATUS.items() if flag in flags)
    keywords = " ".join(sorted(flag for flag in flags if not flag.startswith("\\")))
    return [
        b"Status: RO\n" if SEEN in flags else b"Status: O\n",
        f"X-Status: {x_status}\n".encode() if x_status else b"X-Status:\n",
        f"X-Keywords: {keywords}\n".encode() if keywords else b"X-Keywords:\n",
    ]


def _is_keyword(word: str) -> bool:
    # RFC 9051 flag-keyword: an atom (no specials, no controls, printable ASCII)
    return all(0x21 <= ord(c) <= 0x7E and c not in '(){%*"\\]' for c in word) and bool(word)


def clean_flags(flags: frozenset[str] | set[str]) -> frozenset[str]:
    """Flags we store: system flags we know and valid keywords; \\Recent and junk dropped."""
    system = {SEEN, ANSWERED, FLAGGED, DELETED, DRAFT}
    out = set()
    for flag in flags:
        if flag.startswith("\\"):
            match = next((known for known in system if known.lower() == flag.lower()), None)
            if match:
                out.add(match)
        elif _is_keyword(flag):
            out.add(flag)
    return frozenset(out)


def maildir_flags(info: str, keywords: Mapping[str, str]) -> frozenset[str]:
    """Flags of a Maildir info part ("2,FRSa"): capital letters are flags, small letters Dovecot keywords."""
    if not info.startswith("2,"):
        return frozenset()
    flags = set()
    for letter in info[2:]:
        if letter in MAILDIR_LETTERS:
            flags.add(MAILDIR_LETTERS[letter])
        elif letter in keywords:
            flags.add(keywords[letter])
    return clean_flags(flags)


def maildir_info(flags: frozenset[str], letters: Mapping[str, str]) -> str:
    """The info part for `flags`; `letters` maps keywords to Dovecot's a..z."""
    out = [letter for letter, flag in MAILDIR_LETTERS.items() if flag in flags]
    out += sorted(letters[flag] for flag in flags if flag in letters)
    return "2," + "".join(out)
