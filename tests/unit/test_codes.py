"""Part codes (部件编码) are checked and made by gridcore.codes alone: the importer's
vectorised rules give the same verdicts and words as the scalar ones, and made codes parse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridcore.codes import (
    AreaLevel,
    is_area_code,
    make_part_code,
    make_part_codes,
    parse_part_code,
    part_code_rules,
    part_prefix,
)
from gridcore.errors import InvalidCode

CODES = ["3205820101000001", "32058201010000", "320582010100000A", "3205820101000000",
         "3205820102000007", "", "3205820101123456"]
CLASSES = ["0101", "0101", "0101", "0101", "0101", "0101", "0101"]


def test_vectorised_rules_agree_with_the_scalar_ones() -> None:
    codes, classes = pd.Series(CODES, dtype=object), pd.Series(CLASSES, dtype=object)
    found: dict[int, str] = {}
    for broken, reason in part_code_rules(codes, classes, np.ones(len(CODES), dtype=bool)):
        for i in np.flatnonzero(broken):
            found.setdefault(int(i), reason(int(i)))
    for i, code in enumerate(CODES):
        if not code:
            assert i not in found  # no code given: one is made
            continue
        try:
            parse_part_code(code, CLASSES[i])
        except InvalidCode as exc:
            assert found[i] == exc.message, (code, found.get(i))
        else:
            assert i not in found, code
    assert found[1].endswith("it must have 16 digits") and "digits only" in found[2]
    assert "serial 000000" in found[3] and "holds class 0102" in found[4]


def test_unknown_classes_are_not_compared_and_no_codes_cost_nothing() -> None:
    codes = pd.Series(["3205820102000007"], dtype=object)
    assert not any(b.any() for b, _ in part_code_rules(
        codes, pd.Series(["9999"], dtype=object), np.zeros(1, dtype=bool)))
    assert part_code_rules(pd.Series(["", ""], dtype=object),
                           pd.Series(["0101", "0101"], dtype=object), np.ones(2, bool)) == []


def test_made_codes_are_the_scalar_ones_and_parse() -> None:
    prefixes = [part_prefix("320582", "0101"), part_prefix("990101", "0120")]
    inverse = np.array([0, 1, 0])
    serials = np.array([1, 42, 999_999])
    made = make_part_codes(prefixes, inverse, serials)
    texts = [row.tobytes().decode("ascii") for row in made]
    assert texts == [make_part_code("320582", "0101", 1), make_part_code("990101", "0120", 42),
                     make_part_code("320582", "0101", 999_999)]
    assert parse_part_code(texts[1]).class_code == "0120" and parse_part_code(texts[1]).serial == 42
    with pytest.raises(InvalidCode):
        make_part_code("320582", "0101", 1_000_000)
    with pytest.raises(InvalidCode):
        part_prefix("32058", "0101")


def test_area_codes_by_level() -> None:
    assert is_area_code("320582", AreaLevel.DISTRICT)
    assert not is_area_code("32058X", AreaLevel.DISTRICT)
    assert not is_area_code("320582001", AreaLevel.DISTRICT)
