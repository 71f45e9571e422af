"""SEARCH: flags, sizes, dates, sets, header/body/text with RFC 2047 and transfer decoding; ESEARCH, SEARCHRES."""

from __future__ import annotations

from .harness import Imap

ANN = (
    b"From: Ann <ann@example.test>\r\nSubject: =?utf-8?b?Q2Fmw6kgbWVudQ==?=\r\n"
    b"Date: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\nlunch at noon\r\n"
)
BOB = (
    b"From: bob@example.test\r\nSubject: invoice\r\nDate: Wed, 4 Nov 2026 09:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"R3LDvMOfZSBhdXMgQmVybGlu\r\n"
)
CAROL = b"From: carol@example.test\r\nSubject: big one\r\nX-Tag: blue\r\n\r\n" + b"x" * 2000 + b"\r\n"
MESSAGES = [(ANN, "\\Seen"), (BOB, "\\Flagged"), (CAROL, "")]


async def _mailbox(imap: Imap, *, enable: str = ""):  # type: ignore[no-untyped-def]
    client = await imap.session()
    if enable:
        assert (await client.command(f"ENABLE {enable}"))[0] == f"* ENABLED {enable.upper()}"
    for message, flags in MESSAGES:
        await client.append("INBOX", message, flags=flags)
    await client.command("SELECT INBOX")
    return client


async def test_search_keys(imap: Imap) -> None:
    client = await _mailbox(imap)
    cases = {
        "ALL": "1 2 3",
        "SEEN": "1",
        "UNSEEN": "2 3",
        "FLAGGED UNSEEN": "2",
        "OR SEEN FLAGGED": "1 2",
        "NOT SEEN": "2 3",
        'SUBJECT "café"': "1",
        "SUBJECT {5+}\r\nCAFÉ": "1",
        "FROM ann": "1",
        "FROM EXAMPLE.TEST": "1 2 3",
        'HEADER X-Tag ""': "3",
        "HEADER x-tag BLUE": "3",
        "BODY berlin": "2",
        'BODY "grüße"': "2",
        "TEXT invoice": "2",
        "TEXT noon": "1",
        "LARGER 1000": "3",
        "SMALLER 1000": "1 2",
        "SENTBEFORE 3-Nov-2026": "1",
        "SENTSINCE 3-Nov-2026": "2",
        "SENTON 4-Nov-2026": "2",
        "2:*": "2 3",
        "UID 1,3": "1 3",
        "YOUNGER 3600": "1 2 3",
        "OLDER 3600": "",
        "SAVEDATESUPPORTED": "1 2 3",
        "MODSEQ 4": "3",
        "ON 1-Jan-2000": "",
        "(SEEN) (NOT DELETED)": "1",
    }
    for criteria, expected in cases.items():
        lines = await client.command(f"SEARCH CHARSET UTF-8 {criteria}".encode())
        got = lines[-2].removeprefix("* SEARCH").split("(MODSEQ")[0].strip()
        assert got == expected, (criteria, lines)
    assert (await client.command("SEARCH CHARSET KOI8-R ALL"))[-1].endswith(
        "NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"
    )


async def test_esearch_and_searchres(imap: Imap) -> None:
    client = await _mailbox(imap)
    await imap.transcript(
        """
        C: a SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN
        S: * ESEARCH (TAG "a") MIN 2 MAX 3 ALL 2:3 COUNT 2
        S: a OK SEARCH completed
        C: b UID SEARCH RETURN () ALL
        S: * ESEARCH (TAG "b") UID ALL 1:3
        S: b OK SEARCH completed
        C: c SEARCH RETURN (COUNT) KEYWORD nothing
        S: * ESEARCH (TAG "c") COUNT 0
        S: c OK SEARCH completed
        C: d SEARCH RETURN (SAVE) FLAGGED
        S: d OK SEARCH completed
        C: e FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: e OK FETCH completed
        C: f UID SEARCH NOT UID $
        S: * SEARCH 1 3
        S: f OK SEARCH completed
        C: g SEARCH MODSEQ 2
        S: * OK [HIGHESTMODSEQ 4] CONDSTORE enabled
        S: * SEARCH 1 2 3 (MODSEQ 4)
        S: g OK SEARCH completed
        """,
        client,
    )


async def test_imap4rev2_search_answers_with_esearch(imap: Imap) -> None:
    client = await _mailbox(imap, enable="IMAP4rev2")
    assert (await client.command("SEARCH SEEN", tag="s"))[0] == '* ESEARCH (TAG "s") ALL 1'


async def test_address_keys_match_the_parsed_address(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", b"From: <ann (work) @ (dept) example.test>\r\nTo: Bo <bo@example.test>\r\n\r\nx\r\n")
    await client.command("SELECT INBOX")
    assert (await client.command("SEARCH FROM ann@example.test"))[0] == "* SEARCH 1"  # comments are not part of it
    assert (await client.command('SEARCH TO "Bo <bo@example.test>"'))[0] == "* SEARCH 1"
    assert (await client.command("SEARCH FROM dept.example"))[0] == "* SEARCH"


async def test_esearch_min_max_report_the_modseq_of_what_they_return(imap: Imap) -> None:
    client = await _mailbox(imap)
    await client.command("STORE 3 +FLAGS.SILENT (\\Answered)")  # message 3 gets the highest MODSEQ
    lines = await client.command("SEARCH RETURN (MIN) MODSEQ 1")
    assert lines[-2].endswith(" MIN 1 MODSEQ 2")  # RFC 7162 §3.1.5: MIN's own MODSEQ
    lines = await client.command("SEARCH RETURN (MIN MAX) MODSEQ 1")
    assert lines[-2].endswith(" MIN 1 MAX 3 MODSEQ 5")


async def test_recent_keys(imap: Imap) -> None:
    client = await _mailbox(imap)  # this session selected first: every message is \\Recent for it
    assert (await client.command("SEARCH RECENT"))[0] == "* SEARCH 1 2 3"
    assert (await client.command("SEARCH NEW"))[0] == "* SEARCH 2 3"
    assert (await client.command("SEARCH OLD"))[0] == "* SEARCH"
    other = await imap.session()
    await other.command("SELECT INBOX")
    assert (await other.command("SEARCH RECENT"))[0] == "* SEARCH"
