"""``benchmarks/bench_scale.py --small`` runs (a smoke test: the figures are not checked, the
benchmark's own table is; the real figures come from --cases 1000000 and up, see
benchmarks/README.md)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.data import REPO


def test_bench_scale_small_runs(admin_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "GRIDCORE_BENCH_ADMIN_URL": admin_url}
    out = subprocess.run([sys.executable, "benchmarks/bench_scale.py", "--small", "--json",
                          str(tmp_path / "small.json")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for line in ("health 30d", "evaluation month", "cases first page", "tiles cases p99",
                 "load average"):
        assert line in out.stdout
    assert (tmp_path / "small.json").exists()
    plotted = subprocess.run([sys.executable, "benchmarks/bench_scale.py", "--plot",
                              str(tmp_path / "small.json"), "-o", str(tmp_path / "s.png")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert plotted.returncode == 0 and (tmp_path / "s.png").stat().st_size > 1000
