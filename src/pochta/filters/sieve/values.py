"""The values each matching test compares (RFC 5228 §5 and the extensions' tests): header values,
address parts, envelope parts, body texts, date parts, flags, filter facts, environment items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pochta.filters.sieve import dates
from pochta.filters.sieve.grammar import is_valid_flag
from pochta.filters.sieve.message import address_part, addresses, body_texts, header_text, split_envelope
from pochta.filters.sieve.parser import Node

if TYPE_CHECKING:
    from pochta.filters.sieve.runtime import Frame, Runner

_SPAMTEST_NOT_TESTED = "0"


def join_flags(first: Sequence[str], second: Sequence[str]) -> tuple[str, ...]:
    """Both flag lists in order, each flag once (flags compare without case, RFC 3501 §2.3.2)."""
    out = list(first)
    seen = {flag.lower() for flag in first}
    for flag in second:
        if flag.lower() not in seen:
            seen.add(flag.lower())
            out.append(flag)
    return tuple(out)


def usable_flags(items: Sequence[str]) -> list[str]:
    """Flags from a script, without those IMAP cannot carry (dropped, as Dovecot does)."""
    return [flag for flag in split_flags(items) if is_valid_flag(flag)]


def split_flags(items: Sequence[str]) -> list[str]:
    """RFC 5232 §3: flag lists are space-separated; duplicates (any case) go."""
    return list(join_flags((), [flag for item in items for flag in item.split()]))


def _header_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    return [header_text(raw) for raw in runner.header_fields(frame, node, runner.strings(frame, node.args[0]))]


def _address_part_name(node: Node) -> str:
    for part in ("localpart", "domain", "user", "detail"):
        if part in node.tags:
            return part
    return "all"


def _address_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    part = _address_part_name(node)
    out: list[str] = []
    for raw in runner.header_fields(frame, node, runner.strings(frame, node.args[0])):
        for local, domain in addresses(raw):
            value = address_part(local, domain, part)
            if value is not None:
                out.append(value)
    return out


def _envelope_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    part = _address_part_name(node)
    out: list[str] = []
    for written in runner.strings(frame, node.args[0]):
        name = written.lower()
        if name == "from":
            address = runner.message.envelope_from
        elif name == "to":
            address = runner.message.envelope_to
        else:
            continue
        local, domain = split_envelope(address)
        if part == "all":
            value: str | None = address  # as the SMTP path gave it; "" for the null sender (RFC 5228 §5.4)
        else:
            value = address_part(local, domain, part) if address else None
        if value is not None:
            out.append(value)
    return out


def _body_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    types: tuple[str, ...] = ()
    if "raw" in node.tags:
        transform = "raw"
    elif "content" in node.tags:
        transform, types = "content", tuple(runner.strings(frame, node.tags["content"]))
    else:
        transform = "text"
    key = (transform, types)
    if key not in runner.body_cache:
        runner.body_cache[key] = body_texts(runner.message.content, runner.root, transform, types)
    return runner.body_cache[key]


def _string_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    values = runner.strings(frame, node.args[0])
    if "count" in node.tags:
        return [value for value in values if value]  # RFC 5229 §5: empty strings are not counted
    return values


def _hasflag_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    if len(node.args) == 2:
        texts = [
            runner.variables_of(frame, name.lower()).get(name.lower(), "")
            for name in runner.strings(frame, node.args[0])
        ]
        return split_flags(texts)
    return list(runner.flags)


def _date_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    part = runner.string(frame, node.args[1])
    out: list[str] = []
    fields = runner.header_fields(frame, node, [runner.string(frame, node.args[0])])
    # without :index only the first field counts (a later one does not stand in for a broken first,
    # as in Dovecot)
    for raw in fields if "index" in node.tags else fields[:1]:
        moment = dates.header_date(header_text(raw))
        if moment is None:
            continue
        if "originalzone" not in node.tags:
            zone = _zone(runner, frame, node)
            if zone is None:
                continue
            try:
                moment = moment.astimezone(zone)
            except OverflowError:  # year 1 or 9999 moved past the calendar's end
                continue
        value = dates.part(moment, part)
        if value is not None:
            out.append(value)
    return out or None


def _zone(runner: Runner, frame: Frame, node: Node) -> dt.tzinfo | None:
    """The :zone asked for; a malformed one is ignored, as RFC 5260 §4.1.1 leaves it (Dovecot does too)."""
    if "zone" in node.tags:
        zone = dates.zone(runner.string(frame, node.tags["zone"]))
        if zone is not None:
            return zone
    return runner.env.now.tzinfo


def _currentdate_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    zone = _zone(runner, frame, node)
    if zone is None:
        return None
    value = dates.part(runner.env.now.astimezone(zone), runner.string(frame, node.args[0]))
    return None if value is None else [value]


def _spamtest_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    """RFC 5235 §3.2: "0" untested, "1".."10" (not spam .. spam); with :percent 0..100."""
    facts = runner.env.facts
    value = facts.get("spamtest", _SPAMTEST_NOT_TESTED).strip()
    if "percent" not in node.tags:
        return [value]
    if "spamtest.percent" in facts:
        return [facts["spamtest.percent"]]
    try:
        level = int(value)
    except ValueError:
        return ["0"]
    return ["0" if level <= 1 else str((min(level, 10) - 1) * 100 // 9)]  # truncated, as Dovecot does


def _virustest_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    """RFC 5235 §3.3: "0" untested, "1" clean .. "5" infected and not cleaned."""
    return [runner.env.facts.get("virustest", "0").strip()]


def _environment_values(runner: Runner, frame: Frame, node: Node) -> list[str] | None:
    """RFC 5183 §4.1 items; an unknown item makes the test false."""
    env = runner.env
    items = {
        "domain": env.domain,
        "host": env.host,
        "location": "MDA",
        "name": "Pochta",
        "phase": "during",
        "remote-host": env.remote_host,
        "remote-ip": env.remote_ip,
        "version": "0.1",
    }
    item = runner.string(frame, node.args[0]).lower()
    if item not in items or (item.startswith("remote-") and not items[item]):
        return None
    return [items[item]]


TEST_VALUES: dict[str, Callable[[Runner, Frame, Node], list[str] | None]] = {
    "header": _header_values,
    "address": _address_values,
    "envelope": _envelope_values,
    "body": _body_values,
    "string": _string_values,
    "hasflag": _hasflag_values,
    "date": _date_values,
    "currentdate": _currentdate_values,
    "spamtest": _spamtest_values,
    "virustest": _virustest_values,
    "environment": _environment_values,
}
