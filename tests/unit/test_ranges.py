"""Range header parsing (RFC 9110 §14)."""

import pytest

from adapters.inbound.http.ranges import ByteRange, Unsatisfiable, parse_range


@pytest.mark.parametrize("header, expected", [
    ("bytes=0-9", ByteRange(0, 10)),
    ("bytes=10-", ByteRange(10, 100)),
    ("bytes=-5", ByteRange(95, 100)),
    ("bytes=-500", ByteRange(0, 100)),
    ("bytes=90-5000", ByteRange(90, 100)),
    ("bytes=0-0", ByteRange(0, 1)),
    (" bytes=1-2 ", ByteRange(1, 3)),
])
def test_single_ranges_of_all_three_forms(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", [
    None, "", "bytes=", "bytes=-", "items=0-5", "bytes=a-b", "bytes=5-1", "bytes=0-1,5-6",
    "bytes=0-1, 3-", "bytes 0-5", "bytes=" + "9" * 30 + "-", "bytes=--5", "bytes=1-2-3",
])
def test_malformed_reversed_multi_and_absurd_ranges_are_ignored(header):
    assert parse_range(header, 100) is None


@pytest.mark.parametrize("header, size", [("bytes=100-", 100), ("bytes=500-600", 100), ("bytes=-0", 100),
                                          ("bytes=0-", 0), ("bytes=-5", 0)])
def test_ranges_outside_the_object_are_unsatisfiable(header, size):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_content_range_names_inclusive_positions():
    assert ByteRange(10, 20).content_range(100) == "bytes 10-19/100"
