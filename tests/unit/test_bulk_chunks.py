"""Prefetched COPY chunks of a bulk import keep their order, pass errors on and stop early."""

from __future__ import annotations

import pytest


def test_prefetched_chunks_keep_order_pass_errors_and_stop_early() -> None:
    from layers.db.binary_copy import prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():  # noqa: ANN202
        yield b"one"
        raise ValueError("chunk 2 failed")

    stream = prefetched(failing())
    assert next(stream) == b"one"
    with pytest.raises(ValueError, match="chunk 2 failed"):
        next(stream)
    endless = prefetched(iter(int, 1))  # never ends: closing must stop the producer thread
    assert next(endless) == 0
    endless.close()

