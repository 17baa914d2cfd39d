"""The short window's numpy sums (layers/health/short.py): the exact p90 interpolates as
PostgreSQL's percentile_cont(0.9) (numpy's "linear" percentile is the same rule), the mean is
the plain mean, keys without handling times get NaN, and grid codes find their key by prefix
(a grid no longer current gets −1). The figures against the recount from the cases:
tests/db/test_health_days.py."""

from __future__ import annotations

import numpy as np

from layers.health.short import exact_work, positions


def test_exact_p90_and_mean_per_key_as_percentile_cont() -> None:
    rng = np.random.default_rng(7)
    sizes = [1, 2, 3, 10, 11, 37, 0, 500]
    ki = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)]).astype(np.int64)
    minutes = rng.lognormal(6, 2, size=len(ki))
    shuffle = rng.permutation(len(ki))
    ki, minutes = ki[shuffle], minutes[shuffle]
    # rows left out: a grid no longer current, a case without a handling time
    ki = np.concatenate([ki, [-1, 2]])
    minutes = np.concatenate([minutes, [1e9, np.nan]])
    mean, p90 = exact_work(ki, minutes, len(sizes) + 1)
    for k, n in enumerate(sizes):
        mine = minutes[(ki == k) & ~np.isnan(minutes)]
        assert len(mine) == n
        if n == 0:
            assert np.isnan(mean[k]) and np.isnan(p90[k])
            continue
        np.testing.assert_allclose(p90[k], np.percentile(mine, 90) / 60, rtol=1e-12)
        np.testing.assert_allclose(mean[k], mine.mean() / 60, rtol=1e-12)
    assert np.isnan(mean[-1]) and np.isnan(p90[-1])
    # three times 0, 10, 20, 30 minutes: rank 0.9 · 3 = 2.7 → 20 + 0.7 · 10 = 27 minutes
    _, p = exact_work(np.zeros(4, dtype=np.int64), np.array([30.0, 0.0, 20.0, 10.0]), 1)
    assert abs(p[0] - 27 / 60) < 1e-12


def test_positions_by_code_prefix() -> None:
    keys = ["110101001", "110101002", "110102001"]
    codes = ["110101002003004", "110102001000001", "999999999000000", "110101001999999"]
    assert positions(codes, keys, 9).tolist() == [1, 2, -1, 0]
    assert positions(codes, ["110102001000001"], 15).tolist() == [-1, 0, -1, -1]
    assert positions([], keys, 9).tolist() == []
    assert positions(codes, [], 9).tolist() == [-1, -1, -1, -1]
