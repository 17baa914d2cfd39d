"""Prepared statements: named parameters become positional, casts and literals stay."""

from __future__ import annotations

from layers.db.prepared import Prepared


def test_named_parameters_become_positional_and_casts_stay() -> None:
    stmt = Prepared("t_cast", "SELECT CAST(:a AS int) + :b::int, :a::text || ':x', :b")
    assert stmt.params == ["a", "b"]
    assert stmt.body == "SELECT CAST($1 AS int) + $2::int, $1::text || ':x', $2"

