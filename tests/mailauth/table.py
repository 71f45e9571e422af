"""A table resolver for the pure mailauth tests: our Resolver protocol answered from a dict.

The table is `{"name.": {"TXT": ["v=spf1 -all"], "A": [...], "MX": ["10 mx.example."], "PTR": [...]}}`,
TXT values as their joined text. Names in `broken` answer as a SERVFAIL would (TemporaryLookupFailure).
`to_zone()` turns the same table into `tests/dnsserver.py`'s zone so the socket tests can serve it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dns.reversename

from pochta.dns import DomainNotFound, TemporaryLookupFailure

from ..dnsserver import Zone

Table = Mapping[str, Mapping[str, list[str]]]


class TableResolver:
    def __init__(self, table: Table, *, broken: Iterable[str] = ()) -> None:
        self.table = {name.lower(): records for name, records in table.items()}
        self.broken = {name.lower().rstrip(".") + "." for name in broken}
        self.queries: list[tuple[str, str]] = []

    def _records(self, name: str, kind: str) -> list[str]:
        key = name.lower().rstrip(".") + "."
        self.queries.append((kind, key))
        if key in self.broken:
            raise TemporaryLookupFailure(f"{name} {kind}: SERVFAIL")
        if key not in self.table:
            raise DomainNotFound(name)
        return list(self.table[key].get(kind, []))

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        found = []
        for value in self._records(domain, "MX"):
            preference, exchange = value.split()
            found.append((int(preference), exchange.rstrip(".").lower() or "."))
        return found

    async def addresses(self, host: str) -> list[str]:
        return self._records(host, "A") + self._records(host, "AAAA")

    async def a(self, host: str) -> list[str]:
        return self._records(host, "A")

    async def aaaa(self, host: str) -> list[str]:
        return self._records(host, "AAAA")

    async def ptr(self, ip: str) -> list[str]:
        name = dns.reversename.from_address(ip).to_text()
        return [value.rstrip(".").lower() for value in self._records(name, "PTR")]

    async def txt(self, name: str) -> list[bytes]:
        return [value.encode() for value in self._records(name, "TXT")]


def to_zone(table: Table) -> Zone:
    """The table for tests/dnsserver.py: TXT texts quoted in strings of at most 255 octets."""
    zone: dict[str, dict[str, list[str]]] = {}
    for name, records in table.items():
        zone[name] = {}
        for kind, values in records.items():
            zone[name][kind] = [_txt(value) for value in values] if kind == "TXT" else list(values)
    return zone


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _txt(text: str) -> str:
    return " ".join(_quoted(text[i : i + 255]) for i in range(0, max(len(text), 1), 255))
