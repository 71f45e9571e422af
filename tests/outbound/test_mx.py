"""MX selection against a table resolver (the internet is outside the machine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from pochta.dns import DomainNotFound, TemporaryLookupFailure
from pochta.outbound.mx import Resolver, Route, Unroutable, find_route

T = TypeVar("T")


@dataclass
class TableResolver:
    mx_records: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    address_records: dict[str, list[str]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        self.asked.append(f"MX {domain}")
        return self._get(self.mx_records, domain)

    async def addresses(self, host: str) -> list[str]:
        self.asked.append(f"A {host}")
        return self._get(self.address_records, host)

    def _get(self, table: dict[str, list[T]], name: str) -> list[T]:
        if name in self.failing:
            raise TemporaryLookupFailure("SERVFAIL")
        if name not in table and name not in self.mx_records and name not in self.address_records:
            raise DomainNotFound(name)
        return table.get(name, [])


def _reverse(hosts: list[str]) -> None:
    hosts.reverse()


def _keep(hosts: list[str]) -> None:
    pass


async def _route(resolver: Resolver, domain: str = "example.test", **kwargs: object) -> Route | Unroutable:
    return await find_route(domain, resolver=resolver, shuffle=kwargs.pop("shuffle", _keep), **kwargs)  # type: ignore[arg-type]


async def test_preference_order_and_shuffle_within_a_preference() -> None:
    records = [(20, "c.example.test."), (10, "A.example.test"), (10, "b.example.test"), (30, "b.example.test")]
    resolver = TableResolver(mx_records={"example.test": records})
    assert await _route(resolver) == Route(hosts=("a.example.test", "b.example.test", "c.example.test"))
    assert await _route(resolver, shuffle=_reverse) == Route(
        hosts=("b.example.test", "a.example.test", "c.example.test")
    )


async def test_implicit_mx_from_addresses() -> None:
    resolver = TableResolver(mx_records={"example.test": []}, address_records={"example.test": ["192.0.2.1"]})
    assert await _route(resolver) == Route(hosts=("example.test",), is_implicit=True)
    assert resolver.asked == ["MX example.test", "A example.test"]


async def test_no_mx_and_no_address_is_permanent() -> None:
    result = await _route(TableResolver(mx_records={"example.test": []}))
    assert isinstance(result, Unroutable) and result.reply.status == "5.1.2"


async def test_null_mx() -> None:
    result = await _route(TableResolver(mx_records={"example.test": [(0, ".")]}))
    assert isinstance(result, Unroutable)
    assert (result.reply.code, result.reply.status) == (556, "5.1.10")
    assert "does not accept mail" in result.reply.lines[0]


async def test_null_mx_among_others_is_ignored() -> None:
    resolver = TableResolver(mx_records={"example.test": [(0, "."), (10, "mx.example.test")]})
    assert await _route(resolver) == Route(hosts=("mx.example.test",))


async def test_nxdomain_is_permanent() -> None:
    result = await _route(TableResolver())
    assert isinstance(result, Unroutable)
    assert (result.reply.code, result.reply.status) == (550, "5.1.2")


@pytest.mark.parametrize("table", ["mx", "addresses"])
async def test_servfail_is_temporary(table: str) -> None:
    if table == "mx":
        resolver = TableResolver(mx_records={"example.test": []}, failing={"example.test"})
    else:
        resolver = TableResolver(mx_records={"example.test": []})
        original = resolver.addresses

        async def failing(host: str) -> list[str]:
            await original(host)
            raise TemporaryLookupFailure("timeout")

        resolver.addresses = failing  # type: ignore[method-assign]
    result = await _route(resolver)
    assert isinstance(result, Unroutable)
    assert (result.reply.code, result.reply.status) == (451, "4.4.3")


async def test_ourselves_and_less_preferred_are_dropped() -> None:
    records = [(10, "backup.example.test"), (5, "primary.example.test"), (20, "other.example.test")]
    resolver = TableResolver(mx_records={"example.test": records})
    result = await _route(resolver, local_names={"BACKUP.example.test."})
    assert result == Route(hosts=("primary.example.test",))
    loop = await _route(resolver, local_names={"primary.example.test"})
    assert isinstance(loop, Unroutable) and loop.reply.status == "5.4.6"


async def test_address_literal_needs_no_lookup() -> None:
    resolver = TableResolver()
    assert await _route(resolver, "[192.0.2.7]") == Route(hosts=("192.0.2.7",), is_implicit=True)
    assert await _route(resolver, "[IPv6:2001:db8::1]") == Route(hosts=("2001:db8::1",), is_implicit=True)
    assert resolver.asked == []
