"""The IMAP QUOTA extension (RFC 9208): one storage quota per account, the root ``""`` over all its
mailboxes. Limits are set by the administrator (`pochta user quota`), so SETQUOTA is refused and
QUOTASET is not announced. Over-quota APPEND, COPY and MOVE answer ``NO [OVERQUOTA]`` (refusal.py).
"""

from __future__ import annotations

from typing import NoReturn

from pochta.proto.imap import Response
from pochta.proto.imap import commands as c
from pochta.proto.imap.responses import RawData, render_astring, render_mailbox
from pochta.store.api import Account, Store

from .mailboxes import check_name
from .refusal import Refusal

ROOT = ""  # RFC 9208 §3.2: a quota root may be the empty string
CAPABILITIES = ("QUOTA", "QUOTA=RES-STORAGE")


def _kib(octets: int) -> int:
    return octets // 1024  # RFC 9208 §5.1: STORAGE counts units of 1024 octets


def quota_data(account: Account) -> Response:
    """``QUOTA "" (STORAGE used limit)`` (RFC 9208 §4.2.1)."""
    usage = b"STORAGE %d %d" % (_kib(account.used_bytes), _kib(account.quota_bytes))
    return RawData(data=b"QUOTA %b (%b)" % (render_astring(ROOT), usage))


async def _account(store: Store, account_id: int) -> Account:
    account = await store.get_account_by_id(account_id)
    if account is None:
        raise Refusal.no("account is gone", "UNAVAILABLE")
    return account


async def get_quota(store: Store, account_id: int, command: c.GetQuota) -> list[Response]:
    account = await _account(store, account_id)
    if command.root != ROOT or not account.quota_bytes:
        raise Refusal.no("no such quota root", "NONEXISTENT")  # RFC 9208 §4.1.1
    return [quota_data(account)]


async def get_quota_root(store: Store, account_id: int, command: c.GetQuotaRoot, *, is_utf8: bool) -> list[Response]:
    """``QUOTAROOT mailbox ""`` and its QUOTA, or the mailbox with no root when the account has no limit."""
    name = check_name(command.mailbox)
    if await store.get_mailbox(account_id, name) is None:
        raise Refusal.no("no such mailbox", "NONEXISTENT")
    account = await _account(store, account_id)
    mailbox = render_mailbox(name, is_utf8=is_utf8)
    if not account.quota_bytes:
        return [RawData(data=b"QUOTAROOT " + mailbox)]  # RFC 9208 §4.2.2: no roots
    return [RawData(data=b"QUOTAROOT %b %b" % (mailbox, render_astring(ROOT))), quota_data(account)]


def set_quota(command: c.SetQuota) -> NoReturn:
    raise Refusal.no("quotas are set by the administrator", "NOPERM")  # RFC 9208 §4.1.3, RFC 5530
