"""Journey characters and classes: every code a character, none a regex or space one."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pulse.analytics.journeys import MAX_CODE, THEN, char, char_class


def test_codes_skip_ascii_and_the_surrogates():
    assert char(1) == "\u0100"
    last_before = 0xD7FF - 0xFF
    assert char(last_before) == "\ud7ff"
    assert char(last_before + 1) == "\ue000"
    assert char(MAX_CODE) == "\U0010ffff"


@given(st.sets(st.integers(1, MAX_CODE), min_size=1, max_size=40), st.integers(1, MAX_CODE))
def test_a_class_matches_exactly_its_codes(codes, probe):
    pattern = re.compile(char_class(sorted(codes)))
    assert bool(pattern.fullmatch(char(probe))) == (probe in codes)
    assert all(pattern.fullmatch(char(code)) for code in codes)


def test_then_needs_a_later_instant():
    a, b = char_class([1]), char_class([2])
    later = re.compile(a + THEN + b)
    assert later.search(f"{char(1)} {char(2)}")
    assert later.search(f"{char(3)}{char(1)} {char(3)} {char(2)}{char(4)}")
    assert not later.search(f"{char(1)}{char(2)}")  # the same instant
    assert not later.search(f"{char(2)} {char(1)}")  # the wrong order
