import pytest

from pochta.proto.imap.seqset import STAR, SequenceSet, SequenceSetError, compress


def test_parse_numbers_ranges_and_star() -> None:
    seqset = SequenceSet.parse("1,3:5,7:*")
    assert seqset.ranges == ((1, 1), (3, 5), (7, STAR))
    assert seqset.render() == "1,3:5,7:*"


def test_reversed_range_is_the_same_set() -> None:
    assert SequenceSet.parse("5:3") == SequenceSet.parse("3:5")  # RFC 9051 §9 seq-range
    assert SequenceSet.parse("*:4") == SequenceSet.parse("4:*")


def test_saved_result() -> None:
    seqset = SequenceSet.parse("$")
    assert seqset.is_saved
    assert seqset.render() == "$"
    with pytest.raises(ValueError, match="saved"):
        seqset.intervals(10)


@pytest.mark.parametrize(
    "text", ["", "0", "1:0", ",", "1,", ",1", "1::2", "a", "1,$", "$:1", "-1", "4294967296", "1 2"]
)
def test_invalid_sets_are_refused(text: str) -> None:
    with pytest.raises(SequenceSetError):
        SequenceSet.parse(text)


def test_intervals_resolve_star_and_merge() -> None:
    seqset = SequenceSet.parse("7:*,1,2,3:4,10")
    assert seqset.intervals(12) == [(1, 4), (7, 12)]
    # RFC 9051 §9: "*" is the largest number in use, so 7:* with 5 messages is 5:7
    assert seqset.intervals(5) == [(1, 7), (10, 10)]
    assert list(seqset.numbers(5)) == [1, 2, 3, 4, 5]
    assert SequenceSet.parse("7:*").intervals(5) == [(5, 7)]


def test_membership() -> None:
    seqset = SequenceSet.parse("2:4,*")
    assert seqset.contains(3, largest=9)
    assert seqset.contains(9, largest=9)
    assert not seqset.contains(5, largest=9)
    assert not seqset.contains(1, largest=9)


def test_numbers_are_clipped_to_the_mailbox() -> None:
    assert list(SequenceSet.parse("1:*").numbers(0)) == []
    assert list(SequenceSet.parse("3:100").numbers(5)) == [3, 4, 5]


def test_of_compresses() -> None:
    assert SequenceSet.of([5, 1, 2, 3, 3, 9]).render() == "1:3,5,9"


def test_compress_keeps_order_for_copyuid() -> None:
    assert compress([1, 2, 3, 7, 8, 10]) == "1:3,7:8,10"
    assert compress([4, 5, 1]) == "4:5,1"
    assert compress([]) == ""
