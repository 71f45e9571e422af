"""Domains, accounts and aliases in SQLite."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pochta.store.api import (
    DEFAULT_MAILBOXES,
    Account,
    Alias,
    AlreadyExists,
    Conflict,
    DkimKey,
    Domain,
    Lookup,
    NotFound,
    ScramCredentials,
)
from pochta.store.sqlite.engine import Engine, WriteResult
from pochta.store.sqlite.mailboxes import insert_mailbox

_ACCOUNT_COLUMNS = (
    "id, address, domain_id, password_hash, scram_salt, scram_iterations, scram_stored_key,"
    " scram_server_key, quota_bytes, used_bytes, created"
)


def _account(row: tuple[Any, ...]) -> Account:
    salt, iterations, stored_key, server_key = row[4:8]
    scram = (
        ScramCredentials(salt=salt, iterations=iterations, stored_key=stored_key, server_key=server_key)
        if salt is not None
        else None
    )
    return Account(
        id=row[0],
        address=row[1],
        domain_id=row[2],
        password_hash=row[3],
        scram=scram,
        quota_bytes=row[8],
        used_bytes=row[9],
        created=datetime.fromtimestamp(row[10], UTC),
    )


def _alias(row: tuple[int, str, int, str]) -> Alias:
    return Alias(id=row[0], address=row[1], domain_id=row[2], targets=tuple(json.loads(row[3])))


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _domain_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM domains WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"domain {name} is not served here")
    return int(row[0])


def _scram_values(
    scram: ScramCredentials | None,
) -> tuple[bytes | None, int | None, bytes | None, bytes | None]:
    if scram is None:
        return (None, None, None, None)
    return (scram.salt, scram.iterations, scram.stored_key, scram.server_key)


class SqliteDirectory:
    """Expects `self._db` (Engine); mixed into SqliteStore."""

    _db: Engine

    async def lookup(self, addresses: Sequence[str], domains: Sequence[str]) -> Lookup:
        def run(conn: sqlite3.Connection) -> Lookup:
            wanted = sorted(set(addresses))
            marks = ",".join("?" * len(wanted))
            accounts = {
                row[1]: _account(row)
                for row in conn.execute(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address IN ({marks})", wanted
                ).fetchall()
            }
            aliases = {
                row[1]: _alias(row)
                for row in conn.execute(
                    f"SELECT id, address, domain_id, targets FROM aliases WHERE address IN ({marks})", wanted
                ).fetchall()
            }
            names = sorted(set(domains))
            served = conn.execute(
                f"SELECT name FROM domains WHERE name IN ({','.join('?' * len(names))})", names
            ).fetchall()
            return Lookup(domains=frozenset(row[0] for row in served), accounts=accounts, aliases=aliases)

        return await self._db.read(run, is_quick=True)

    # ---- domains ----

    async def add_domain(self, name: str) -> Domain:
        def run(conn: sqlite3.Connection) -> WriteResult[Domain]:
            try:
                cursor = conn.execute("INSERT INTO domains (name, created) VALUES (?, ?)", (name, int(time.time())))
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"domain {name} exists") from exc
            return WriteResult(Domain(id=int(cursor.lastrowid or 0), name=name))

        return await self._db.write(run)

    async def remove_domain(self, name: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            domain_id = _domain_id(conn, name)
            (accounts,) = conn.execute("SELECT count(*) FROM accounts WHERE domain_id = ?", (domain_id,)).fetchone()
            if accounts:
                raise Conflict(f"domain {name} still has {accounts} account(s); remove them first")
            conn.execute("DELETE FROM aliases WHERE domain_id = ?", (domain_id,))
            conn.execute("DELETE FROM dkim_keys WHERE domain = ?", (name,))
            conn.execute("DELETE FROM domains WHERE id = ?", (domain_id,))
            return WriteResult(None)

        await self._db.write(run)

    async def list_domains(self) -> list[Domain]:
        def run(conn: sqlite3.Connection) -> list[Domain]:
            rows = conn.execute("SELECT id, name FROM domains ORDER BY name").fetchall()
            return [Domain(id=row[0], name=row[1]) for row in rows]

        return await self._db.read(run)

    async def get_domain(self, name: str) -> Domain | None:
        def run(conn: sqlite3.Connection) -> Domain | None:
            row = conn.execute("SELECT id, name FROM domains WHERE name = ?", (name,)).fetchone()
            return Domain(id=row[0], name=row[1]) if row else None

        return await self._db.read(run)

    # ---- accounts ----

    async def add_account(
        self, address: str, *, password_hash: str, scram: ScramCredentials | None, quota_bytes: int = 0
    ) -> Account:
        def run(conn: sqlite3.Connection) -> WriteResult[Account]:
            domain_id = _domain_id(conn, _domain_of(address))
            if conn.execute("SELECT 1 FROM aliases WHERE address = ?", (address,)).fetchone():
                raise AlreadyExists(f"{address} is an alias")
            try:
                cursor = conn.execute(
                    "INSERT INTO accounts (address, domain_id, password_hash, scram_salt, scram_iterations,"
                    " scram_stored_key, scram_server_key, quota_bytes, created) VALUES (?,?,?,?,?,?,?,?,?)",
                    (address, domain_id, password_hash, *_scram_values(scram), quota_bytes, int(time.time())),
                )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"account {address} exists") from exc
            account_id = int(cursor.lastrowid or 0)
            for name, special_use in DEFAULT_MAILBOXES:
                insert_mailbox(conn, account_id, name, special_use=special_use, subscribe=True)
            row = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)).fetchone()
            return WriteResult(_account(row), touched={account_id})

        return await self._db.write(run)

    async def set_password(self, address: str, *, password_hash: str, scram: ScramCredentials | None) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            cursor = conn.execute(
                "UPDATE accounts SET password_hash = ?, scram_salt = ?, scram_iterations = ?,"
                " scram_stored_key = ?, scram_server_key = ? WHERE address = ?",
                (password_hash, *_scram_values(scram), address),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no account {address}")
            return WriteResult(None)

        await self._db.write(run)

    async def set_quota(self, address: str, *, quota_bytes: int) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            cursor = conn.execute("UPDATE accounts SET quota_bytes = ? WHERE address = ?", (quota_bytes, address))
            if cursor.rowcount == 0:
                raise NotFound(f"no account {address}")
            return WriteResult(None)

        await self._db.write(run)

    async def remove_account(self, address: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            conn.execute("DELETE FROM accounts WHERE id = ?", (row[0],))  # cascades to mailboxes, messages
            return WriteResult(None, touched={int(row[0])})

        await self._db.write(run)

    async def get_account(self, address: str) -> Account | None:
        def run(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)).fetchone()
            return _account(row) if row else None

        return await self._db.read(run)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        def run(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)).fetchone()
            return _account(row) if row else None

        return await self._db.read(run)

    async def list_accounts(self) -> list[Account]:
        def run(conn: sqlite3.Connection) -> list[Account]:
            rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY address").fetchall()
            return [_account(row) for row in rows]

        return await self._db.read(run)

    # ---- aliases ----

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        def run(conn: sqlite3.Connection) -> WriteResult[Alias]:
            domain_id = _domain_id(conn, _domain_of(address))
            if conn.execute("SELECT 1 FROM accounts WHERE address = ?", (address,)).fetchone():
                raise AlreadyExists(f"{address} is an account")
            encoded = json.dumps(list(targets))
            try:
                cursor = conn.execute(
                    "INSERT INTO aliases (address, domain_id, targets) VALUES (?, ?, ?)",
                    (address, domain_id, encoded),
                )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"alias {address} exists") from exc
            return WriteResult(
                Alias(
                    id=int(cursor.lastrowid or 0),
                    address=address,
                    domain_id=domain_id,
                    targets=tuple(targets),
                )
            )

        return await self._db.write(run)

    async def remove_alias(self, address: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            if conn.execute("DELETE FROM aliases WHERE address = ?", (address,)).rowcount == 0:
                raise NotFound(f"no alias {address}")
            return WriteResult(None)

        await self._db.write(run)

    async def get_alias(self, address: str) -> Alias | None:
        def run(conn: sqlite3.Connection) -> Alias | None:
            row = conn.execute(
                "SELECT id, address, domain_id, targets FROM aliases WHERE address = ?", (address,)
            ).fetchone()
            return _alias(row) if row else None

        return await self._db.read(run)

    async def list_aliases(self) -> list[Alias]:
        def run(conn: sqlite3.Connection) -> list[Alias]:
            rows = conn.execute("SELECT id, address, domain_id, targets FROM aliases ORDER BY address").fetchall()
            return [_alias(row) for row in rows]

        return await self._db.read(run)

    # ---- DKIM keys ----

    async def add_dkim_key(self, key: DkimKey) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            _domain_id(conn, key.domain)
            try:
                conn.execute(
                    "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, created)"
                    " VALUES (?,?,?,?,?,?)",
                    (
                        key.domain,
                        key.selector,
                        key.algorithm,
                        key.private_key,
                        key.public_key,
                        int(key.created.timestamp()),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"DKIM selector {key.selector} exists for {key.domain}") from exc
            return WriteResult(None)

        await self._db.write(run)

    async def remove_dkim_key(self, domain: str, selector: str) -> None:
        def run(conn: sqlite3.Connection) -> WriteResult[None]:
            cursor = conn.execute("DELETE FROM dkim_keys WHERE domain = ? AND selector = ?", (domain, selector))
            if cursor.rowcount == 0:
                raise NotFound(f"no DKIM key {selector} for {domain}")
            return WriteResult(None)

        await self._db.write(run)

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        def run(conn: sqlite3.Connection) -> list[DkimKey]:
            sql = "SELECT domain, selector, algorithm, private_key, public_key, created FROM dkim_keys"
            rows = (
                conn.execute(sql + " WHERE domain = ? ORDER BY algorithm DESC, selector", (domain,))
                if domain is not None
                else conn.execute(sql + " ORDER BY domain, selector")
            ).fetchall()
            return [
                DkimKey(
                    domain=r[0],
                    selector=r[1],
                    algorithm=r[2],
                    private_key=r[3],
                    public_key=r[4],
                    created=datetime.fromtimestamp(r[5], UTC),
                )
                for r in rows
            ]

        return await self._db.read(run)
