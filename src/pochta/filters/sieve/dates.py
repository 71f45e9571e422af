"""Date parts for the date and currentdate tests (RFC 5260 §4.2)."""

from __future__ import annotations

import datetime as dt

from pochta.mail.headers import parse_date

_MJD_EPOCH = dt.date(1858, 11, 17)  # RFC 5260 §4.2 "julian": the Modified Julian Day
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def zone(text: str) -> dt.timezone | None:
    """``+hhmm``/``-hhmm`` as a timezone, or None when malformed."""
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        return None
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    if minutes >= 24 * 60:
        return None
    return dt.timezone(dt.timedelta(minutes=-minutes if text[0] == "-" else minutes))


def header_date(value: str) -> dt.datetime | None:
    """A header's date; for Received, the date after the last ';' (RFC 5260 §4.1)."""
    if ";" in value:
        value = value.rsplit(";", 1)[1]
    return parse_date(value)


def _offset(moment: dt.datetime) -> str:
    offset = moment.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def part(moment: dt.datetime, name: str) -> str | None:
    """One date part as RFC 5260 §4.2 writes it; None for an unknown part name."""
    name = name.lower()
    if name == "year":
        return f"{moment.year:04d}"
    if name == "month":
        return f"{moment.month:02d}"
    if name == "day":
        return f"{moment.day:02d}"
    if name == "date":
        return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    if name == "julian":
        return str((moment.date() - _MJD_EPOCH).days)
    if name == "hour":
        return f"{moment.hour:02d}"
    if name == "minute":
        return f"{moment.minute:02d}"
    if name == "second":
        return f"{moment.second:02d}"
    if name == "time":
        return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if name == "iso8601":  # RFC 3339 date-time; UTC is "Z" (as Dovecot writes it)
        offset = _offset(moment)
        zone_text = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"
        return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{part(moment, 'time')}{zone_text}"
    if name == "std11":  # RFC 5322 §3.3
        return (
            f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {_offset(moment)}"
        )
    if name == "zone":
        return _offset(moment)
    if name == "weekday":
        return str((moment.weekday() + 1) % 7)  # 0 is Sunday
    return None
