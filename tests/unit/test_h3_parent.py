"""The vector tiles' H3 parent cells by bit arithmetic equal h3's own."""

from __future__ import annotations

import h3

from layers.ogc.tiles import h3_parent_masks


def test_h3_parent_by_bit_arithmetic_matches_h3() -> None:
    cell = h3.latlng_to_cell(60.1685, 24.941, 10)
    for res in range(4, 10):
        clear, setbits = h3_parent_masks(res)
        assert h3.int_to_str((h3.str_to_int(cell) & clear) | setbits) \
            == h3.cell_to_parent(cell, res)

