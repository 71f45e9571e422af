"""The SMTP envelope of a message: reverse-path, recipients and their DSN requests (RFC 3461).

Stored beside each delivered message (JSON) and, later, with each queue entry, so bounces and
success notices can honour NOTIFY, RET, ENVID and ORCPT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    address: str  # as the client gave it in RCPT TO, normalised
    notify: tuple[str, ...] = ()  # RFC 3461 §4.1: SUCCESS, FAILURE, DELAY or NEVER; () = not given
    orcpt: str | None = None  # RFC 3461 §4.2, "addr-type;address"


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    mail_from: str  # "" for the null reverse-path
    recipients: tuple[Recipient, ...] = field(default=())
    body: str | None = None  # 7BIT, 8BITMIME or BINARYMIME
    is_smtputf8: bool = False
    ret: str | None = None  # RFC 3461 §4.3: FULL or HDRS
    envid: str | None = None  # RFC 3461 §4.4

    def dumps(self) -> bytes:
        return json.dumps(
            {
                "from": self.mail_from,
                "rcpt": [[r.address, list(r.notify), r.orcpt] for r in self.recipients],
                "body": self.body,
                "utf8": self.is_smtputf8,
                "ret": self.ret,
                "envid": self.envid,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @classmethod
    def loads(cls, data: bytes) -> Envelope:
        raw = json.loads(data)
        return cls(
            mail_from=raw["from"],
            recipients=tuple(Recipient(address=a, notify=tuple(n), orcpt=o) for a, n, o in raw["rcpt"]),
            body=raw["body"],
            is_smtputf8=raw["utf8"],
            ret=raw["ret"],
            envid=raw["envid"],
        )

    def only(self, recipients: tuple[Recipient, ...]) -> Envelope:
        """This envelope with just `recipients` (what one account's copy records)."""
        return Envelope(
            mail_from=self.mail_from,
            recipients=recipients,
            body=self.body,
            is_smtputf8=self.is_smtputf8,
            ret=self.ret,
            envid=self.envid,
        )
