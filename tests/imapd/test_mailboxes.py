"""CREATE, DELETE, RENAME, SUBSCRIBE, LIST (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE), LSUB, STATUS, NAMESPACE."""

from __future__ import annotations

from .harness import Imap


async def test_list_of_a_new_account(imap: Imap) -> None:
    client = await imap.session()
    assert await client.command('LIST "" "*"') == [
        '* LIST (\\HasNoChildren) "/" "INBOX"',
        '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
        '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
        '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
        '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
        "t2 OK LIST completed",
    ]
    assert await client.command('LIST "" ""') == ['* LIST (\\Noselect) "/" ""', "t3 OK LIST completed"]
    assert await client.command('list "" inbox') == ['* LIST (\\HasNoChildren) "/" "INBOX"', "t4 OK LIST completed"]
    assert await client.command("NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL', "t5 OK NAMESPACE completed"]


async def test_create_hierarchy_rename_delete(imap: Imap) -> None:
    client = await imap.session()
    await imap.transcript(
        """
        C: a CREATE Projects/2026/Q4
        S: a OK [MAILBOXID (F15)] CREATE completed
        C: b LIST "" "Projects/%"
        S: * LIST (\\HasChildren) "/" "Projects/2026"
        S: b OK LIST completed
        C: c LIST "" "Projects*"
        S: * LIST (\\HasChildren) "/" "Projects"
        S: * LIST (\\HasChildren) "/" "Projects/2026"
        S: * LIST (\\HasNoChildren) "/" "Projects/2026/Q4"
        S: c OK LIST completed
        C: d CREATE Projects
        S: d NO [ALREADYEXISTS] mailbox already exists
        C: e RENAME Projects/2026 Old/2026
        S: e OK RENAME completed
        C: f LIST "" "Old/*"
        S: * LIST (\\HasChildren) "/" "Old/2026"
        S: * LIST (\\HasNoChildren) "/" "Old/2026/Q4"
        S: f OK LIST completed
        C: g DELETE Old/2026
        S: g OK DELETE completed
        C: h LIST "" "Old/%"
        S: * LIST (\\Noselect \\HasChildren) "/" "Old/2026"
        S: h OK LIST completed
        C: h2 LIST (SUBSCRIBED) "" "Old/%"
        S: h2 OK LIST completed
        C: h3 LIST () "" "Old/%"
        S: * LIST (\\NonExistent \\HasChildren) "/" "Old/2026"
        S: h3 OK LIST completed
        C: i DELETE Old/2026
        S: i NO [NONEXISTENT] no such mailbox
        C: j DELETE INBOX
        S: j NO [CANNOT] INBOX cannot be deleted
        C: k RENAME Nothing Else
        S: k NO [NONEXISTENT] no such mailbox
        """,
        client,
    )


async def test_bad_names_are_refused(imap: Imap) -> None:
    client = await imap.session()
    for name in ('"../bob"', '"/etc"', '"a//b"', '"a/../b"', '"x%"', '"a/./b"', '" lead"'):
        assert (await client.command(f"CREATE {name}"))[-1].endswith("NO [CANNOT] invalid mailbox name"), name
    for name in ('"../bob/INBOX"', '"/INBOX"'):
        assert (await client.command(f"SELECT {name}"))[-1].endswith("NO [CANNOT] invalid mailbox name")


async def test_users_see_only_their_own_mailboxes(imap: Imap) -> None:
    alice = await imap.session()
    assert (await alice.command("CREATE Secret"))[-1].endswith("] CREATE completed")
    bob = await imap.session("bob@example.test")
    assert (await bob.command("SELECT Secret"))[-1].endswith("NO [NONEXISTENT] no such mailbox")
    assert not any("Secret" in line for line in await bob.command('LIST "" "*"'))
    assert (await bob.command("STATUS Secret (MESSAGES)"))[-1].endswith("NO [NONEXISTENT] no such mailbox")


async def test_special_use_create_and_list_extended(imap: Imap) -> None:
    client = await imap.session()
    await imap.transcript(
        """
        C: a CREATE Important (USE (\\Flagged))
        S: a OK [MAILBOXID *
        C: b CREATE Weird (USE (\\Bogus))
        S: b NO [USEATTR] unsupported special use
        C: c LIST (SPECIAL-USE) "" "*"
        S: * LIST (\\HasNoChildren \\Archive) "/" "Archive"
        S: * LIST (\\HasNoChildren \\Drafts) "/" "Drafts"
        S: * LIST (\\HasNoChildren \\Flagged) "/" "Important"
        S: * LIST (\\HasNoChildren \\Junk) "/" "Junk"
        S: * LIST (\\HasNoChildren \\Sent) "/" "Sent"
        S: * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S: c OK LIST completed
        C: d LIST "" "INBOX" RETURN (STATUS (MESSAGES UIDNEXT SIZE))
        S: * LIST (\\HasNoChildren) "/" "INBOX"
        S: * STATUS "INBOX" (MESSAGES 0 UIDNEXT 1 SIZE 0)
        S: d OK LIST completed
        """,
        client,
    )


async def test_subscriptions(imap: Imap) -> None:
    """RFC 9051 §6.3.7: a subscription is a name; it may be made before its mailbox and outlives it."""
    client = await imap.session()
    await imap.transcript(
        """
        C: a CREATE Lists/python
        S: a OK [MAILBOXID *
        C: a2 SUBSCRIBE Lists/python
        S: a2 OK done
        C: b UNSUBSCRIBE Lists
        S: b OK done
        C: c UNSUBSCRIBE Drafts
        S: c OK done
        C: d LSUB "" "*"
        S: * LSUB () "/" "INBOX"
        S: * LSUB () "/" "Archive"
        S: * LSUB () "/" "Junk"
        S: * LSUB () "/" "Lists/python"
        S: * LSUB () "/" "Sent"
        S: * LSUB () "/" "Trash"
        S: d OK LSUB completed
        C: e LIST (SUBSCRIBED RECURSIVEMATCH) "" "Lists"
        S: * LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))
        S: e OK LIST completed
        C: f LIST "" "L*" RETURN (SUBSCRIBED CHILDREN)
        S: * LIST (\\HasChildren) "/" "Lists"
        S: * LIST (\\HasNoChildren \\Subscribed) "/" "Lists/python"
        S: f OK LIST completed
        C: g SUBSCRIBE Nowhere
        S: g OK done
        C: h DELETE Lists/python
        S: h OK DELETE completed
        C: i LIST (SUBSCRIBED) "" "*o*"
        S: * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
        S: * LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Lists/python"
        S: * LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Nowhere"
        S: i OK LIST completed
        C: j LIST "" "*o*" RETURN (SUBSCRIBED)
        S: * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
        S: j OK LIST completed
        C: k LSUB "" "N*"
        S: * LSUB () "/" "Nowhere"
        S: k OK LSUB completed
        C: l CREATE Lists/python
        S: l OK [MAILBOXID *
        C: m LIST "" "Lists/*" RETURN (SUBSCRIBED)
        S: * LIST (\\HasNoChildren \\Subscribed) "/" "Lists/python"
        S: m OK LIST completed
        """,
        client,
    )


async def test_status(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", b"Subject: one\r\n\r\nbody\r\n", flags="\\Seen")
    await client.append("INBOX", b"Subject: two\r\n\r\nbody\r\n", flags="\\Deleted")
    lines = await client.command("STATUS INBOX (MESSAGES UNSEEN DELETED SIZE RECENT)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 2 UNSEEN 1 DELETED 1 SIZE 44 RECENT 2)', "t4 OK STATUS completed"]
    lines = await client.command("STATUS INBOX (MESSAGES MAILBOXID)")
    assert lines[0] == '* STATUS "INBOX" (MESSAGES 2 MAILBOXID (F1))'
    lines = await client.command("STATUS INBOX (UIDNEXT UIDVALIDITY HIGHESTMODSEQ APPENDLIMIT)")
    assert lines[0].startswith('* STATUS "INBOX" (UIDNEXT 3 UIDVALIDITY ') and "APPENDLIMIT 52428800" in lines[0]


async def test_create_does_not_subscribe_and_lsub_percent_shows_unsubscribed_parents(imap: Imap) -> None:
    client = await imap.session()
    await imap.transcript(
        """
        C: a CREATE Box/child
        S: a OK [MAILBOXID *
        C: b LSUB "" "Box*"
        S: b OK LSUB completed
        C: c SUBSCRIBE Box/child
        S: c OK done
        C: d LSUB "" "%"
        S: * LSUB () "/" "INBOX"
        S: * LSUB () "/" "Archive"
        S: * LSUB (\\Noselect) "/" "Box"
        S: * LSUB () "/" "Drafts"
        S: * LSUB () "/" "Junk"
        S: * LSUB () "/" "Sent"
        S: * LSUB () "/" "Trash"
        S: d OK LSUB completed
        C: e LSUB "" "Box*"
        S: * LSUB () "/" "Box/child"
        S: e OK LSUB completed
        C: f LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Box" "Box/child")
        S: * LIST (\\HasNoChildren \\Subscribed) "/" "Box/child"
        S: f OK LIST completed
        """,
        client,
    )


async def test_a_name_that_is_not_modified_utf7_is_no_such_mailbox(imap: Imap) -> None:
    client = await imap.session()
    assert (await client.command("SELECT a&b"))[-1].endswith("NO [NONEXISTENT] no such mailbox")
    assert await client.command('LIST "" a&b%') == ["t3 OK LIST completed"]
    assert (await client.command("CREATE a&b"))[-1].startswith("t4 BAD ")


async def test_status_recent_counts_what_no_session_has_seen(imap: Imap) -> None:
    client = await imap.session()
    await client.append("INBOX", b"Subject: x\r\n\r\nx\r\n")
    await client.append("INBOX", b"Subject: y\r\n\r\ny\r\n")
    assert (await client.command("STATUS INBOX (RECENT)"))[0] == '* STATUS "INBOX" (RECENT 2)'
    assert "* 2 RECENT" in await client.command("EXAMINE INBOX")  # EXAMINE looks, does not take
    assert (await client.command("STATUS INBOX (RECENT)"))[0] == '* STATUS "INBOX" (RECENT 2)'
    assert "* 2 RECENT" in await client.command("SELECT INBOX")
    assert "* 0 RECENT" in await client.command("SELECT INBOX")
    assert (await client.command("STATUS INBOX (RECENT)"))[0] == '* STATUS "INBOX" (RECENT 0)'
