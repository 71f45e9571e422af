"""Evaluate a SEARCH criteria tree (RFC 9051 §6.4.4, RFC 5032 WITHIN, RFC 7162 MODSEQ, RFC 8514, RFC 8474).

Text keys compare case-insensitively (Unicode casefold) against header values with RFC 2047 words
decoded and against bodies with their transfer encoding and charset undone. Messages are read only
when a text key is present.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pochta.mail.addresslist import parse_address_list
from pochta.mail.headers import decode_words, header_value, header_values, parse_date
from pochta.mail.mime import ParsedMessage, Part
from pochta.proto.imap import search as s
from pochta.store.api import Message

from .content import body_text

_ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})


@dataclass(kw_only=True)
class Candidate:
    """One message as SEARCH sees it."""

    message: Message
    sequence_number: int
    flags: frozenset[str]
    modseq: int
    content: bytes | None = None  # the whole message, read only for text keys
    is_recent: bool = False  # this session holds \Recent (RFC 3501 §2.3.2)

    @functools.cached_property
    def root(self) -> Part:
        structure = self.message.structure
        assert structure is not None
        return ParsedMessage.loads(structure).root


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    count: int  # messages in the mailbox (``*`` of a sequence set)
    largest_uid: int
    saved: frozenset[int]  # the ``$`` result (UIDs)
    now: datetime


def needs_content(criteria: s.Criteria) -> bool:
    match criteria:
        case s.Header() | s.Body() | s.Text():
            return True
        case s.Date(field=s.DateField.SENT):
            return True
        case s.Not(key=key):
            return needs_content(key)
        case s.Or(left=left, right=right):
            return needs_content(left) or needs_content(right)
        case s.And(keys=keys):
            return any(needs_content(key) for key in keys)
    return False


def uses_modseq(criteria: s.Criteria) -> bool:
    match criteria:
        case s.Modseq():
            return True
        case s.Not(key=key):
            return uses_modseq(key)
        case s.Or(left=left, right=right):
            return uses_modseq(left) or uses_modseq(right)
        case s.And(keys=keys):
            return any(uses_modseq(key) for key in keys)
    return False


def matches(criteria: s.Criteria, candidate: Candidate, context: Context) -> bool:
    message = candidate.message
    match criteria:
        case s.All() | s.SaveDateSupported():
            return True
        case s.Flag(flag=flag, is_set=is_set):
            return _has_flag(candidate.flags, flag) == is_set
        case s.Recent(is_set=is_set):
            return candidate.is_recent == is_set
        case s.Size(is_larger=is_larger, size=size):
            return message.size > size if is_larger else message.size < size
        case s.Within(is_younger=is_younger, seconds=seconds):
            is_young = message.internal_date >= context.now - timedelta(seconds=seconds)
            return is_young == is_younger
        case s.Date():
            return _date_matches(criteria, candidate)
        case s.Sequence(sequence_set=sequence_set, is_uid=is_uid):
            if sequence_set.is_saved:
                return message.uid in context.saved
            if is_uid:
                return sequence_set.contains(message.uid, largest=context.largest_uid)
            return sequence_set.contains(candidate.sequence_number, largest=context.count)
        case s.Modseq(modseq=modseq):
            return candidate.modseq >= modseq
        case s.ObjectId(is_thread=is_thread, object_id=object_id):
            return not is_thread and message.blob_id == object_id
        case s.Header(name=name, value=value):
            return _header_matches(candidate, name, value)
        case s.Body(text=text):
            return _contains(_body(candidate), text)
        case s.Text(text=text):
            return _contains(_header_text(candidate), text) or _contains(_body(candidate), text)
        case s.Not(key=key):
            return not matches(key, candidate, context)
        case s.Or(left=left, right=right):
            return matches(left, candidate, context) or matches(right, candidate, context)
        case s.And(keys=keys):
            return all(matches(key, candidate, context) for key in keys)
    raise AssertionError(f"unhandled search key {criteria!r}")


def _has_flag(flags: frozenset[str], flag: str) -> bool:
    if flag.startswith("\\"):
        return flag in flags
    wanted = flag.lower()  # keywords compare case-insensitively, like Dovecot
    return any(have.lower() == wanted for have in flags)


def _date_matches(criteria: s.Date, candidate: Candidate) -> bool:
    message = candidate.message
    moment: date | None
    if criteria.field is s.DateField.INTERNAL:
        moment = message.internal_date.date()
    elif criteria.field is s.DateField.SAVED:
        moment = message.save_date.date()
    else:  # RFC 9051 §6.4.4: the Date header, disregarding time and timezone
        sent = parse_date(header_value(_header_block(candidate), "Date"))
        moment = sent.date() if sent else None
        if moment is None:
            return False
    match criteria.relation:
        case s.DateRelation.BEFORE:
            return moment < criteria.date
        case s.DateRelation.ON:
            return moment == criteria.date
        case s.DateRelation.SINCE:
            return moment >= criteria.date


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


def _header_block(candidate: Candidate) -> bytes:
    content = candidate.content or b""
    start, end = candidate.root.header
    return content[start:end]


def _header_matches(candidate: Candidate, name: str, value: str) -> bool:
    values = header_values(_header_block(candidate), name)
    if not value:
        return bool(values)  # RFC 9051 §6.4.4: an empty string matches any message with the field
    if any(_contains(decode_words(raw), value) for raw in values):
        return True
    if name.lower() in _ADDRESS_FIELDS:  # also the addresses as parsed: comments and spacing gone
        return any(_contains(_addresses_text(raw), value) for raw in values)
    return False


def _addresses_text(raw: bytes) -> str:
    words: list[str] = []
    for address in parse_address_list(raw):
        if address.mailbox is None or address.host is None:
            continue  # a group marker
        spec = f"{address.mailbox.decode(errors='replace')}@{address.host.decode(errors='replace')}"
        words.append(f"{decode_words(address.name)} <{spec}>" if address.name else spec)
    return ", ".join(words)


def _header_text(candidate: Candidate) -> str:
    return decode_words(_header_block(candidate))


def _body(candidate: Candidate) -> str:
    content = candidate.content or b""
    root = candidate.root
    texts: list[str] = []
    for part in root.walk():
        if part.children or part.message is not None:
            continue
        if part is not root and not (part.content_type.startswith("text/") or part.content_type == "message/rfc822"):
            continue
        header = content[part.start : part.body_start]
        texts.append(body_text(header, content[part.body_start : part.end]))
    return "\n".join(texts)
