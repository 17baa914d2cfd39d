"""Memory of the similar-case index (相似案例推荐) with several server processes: each holding its
own copy (as an index built in the process) against every process mapping the one published
file read-only (``layers.intelligence.similar_files``, what ``gridcore learn`` publishes).

    python benchmarks/bench_similar_shared.py [--data ../shared/data] [--scale 1000000]
        [--processes 2] [--keep DIR]

Builds bench_intelligence's synthetic index (real Chinese messages perturbed, 30 classes, 2,000
grids), writes it as the published files, then starts ``--processes`` worker processes for each
way of loading; each answers 300 queries (k = 10) and reports its resident memory (RSS) and its
proportional share (PSS: a page shared by two processes counts half to each) from
/proc/self/smaps_rollup, and its query latency. Linux only (smaps_rollup).

Publication time (``--new N``, default 10,000; 0 skips): the full publication (the synthetic
build of every case, then the files written) against the incremental one of
``similar_files.publish`` — the published version mapped, N new cases (real messages) weighed
with its vectoriser and merged, the new version written (``SimilarIndex.merged``). The full
build here starts from counted rows, so a real refit (every description read from the database
and hashed) takes longer than the figure printed: the gain shown is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def memory_kib() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            out[key.lower()] = int(rest.split()[0])
    return out


def worker(folder: Path, data: Path, mapped: bool, go: Path) -> None:
    """One server process: open the index, answer queries, wait until every worker has
    loaded (so the shared pages are shared at the moment of measuring), then report."""
    from bench_intelligence import hotline_texts, query_latencies

    from layers.intelligence.similar_files import open_folder

    texts = hotline_texts(data)
    before = memory_kib()  # the process as it is before it has an index
    t0 = time.perf_counter()
    index, meta = open_folder(folder, mmap=mapped)
    opened = time.perf_counter() - t0
    lat = query_latencies(index, texts, seed=7)  # the pages a real load touches
    print(json.dumps({"ready": True}), flush=True)
    while not go.exists():
        time.sleep(0.05)
    print(json.dumps({"cases": meta["n"], "open_s": round(opened, 2),
                      "p50_ms": round(float(np.median(lat)), 1),
                      "p95_ms": round(float(np.percentile(lat, 95)), 1),
                      "before": before, "after": memory_kib()}), flush=True)


def run(folder: Path, data: Path, mapped: bool, processes: int) -> list[dict[str, object]]:
    go = folder.parent / f"go-{'mmap' if mapped else 'private'}"
    go.unlink(missing_ok=True)
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(folder), "--data",
                               str(data), "--mapped" if mapped else "--private", "--go", str(go)],
                              stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    for p in procs:
        assert p.stdout is not None
        json.loads(p.stdout.readline())  # ready
    go.touch()
    results = []
    for p in procs:
        assert p.stdout is not None
        results.append(json.loads(p.stdout.readline()))
        p.wait()
    return results


def publication(base: Path, folder: Path, data: Path, new: int, full_s: float) -> None:
    """Incremental publication of ``new`` cases into the published ``folder`` (timed as
    ``similar_files.publish`` does it), next to the full publication's ``full_s``."""
    from bench_intelligence import hotline_texts

    from gridcore.intelligence.similar import StoredCase
    from layers.intelligence.similar_files import open_folder, write_version

    texts = hotline_texts(data)
    r = np.random.default_rng(11)
    t0 = time.perf_counter()
    index, meta = open_folder(folder)
    start, now = int(meta["last_id"]) + 1, datetime.now(UTC)
    cases = [StoredCase(start + i, texts[j], f"c{j % 30}", f"g{int(r.integers(2000))}", now)
             for i, j in enumerate(r.integers(0, len(texts), new))]
    made = time.perf_counter()
    arrays, out = index.merged(cases).arrays()
    merged = time.perf_counter()
    written = write_version(base, arrays, out, datetime.now(UTC))
    end = time.perf_counter()
    took = end - t0
    del arrays
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"  publication, {meta['n']:,} cases indexed (load {load}):")
    print(f"    full (build every case + write)              {full_s:6.1f} s")
    print(f"    incremental ({new:,} new cases merged + write) {took:6.1f} s "
          f"(open {made - t0:.1f} s, weigh + merge {merged - made:.1f} s, write "
          f"{end - merged:.1f} s) -> {written.name}, {out['n']:,} cases")
    print(f"    incremental / full: {took / full_s:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--scale", type=int, default=1_000_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="write the index here and keep it")
    ap.add_argument("--new", type=int, default=10_000,
                    help="cases of the incremental publication timed (0: skip)")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mapped", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--private", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--go", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.mapped, args.go)
        return

    from bench_intelligence import synthetic_index

    from layers.intelligence.similar_files import write_version

    with tempfile.TemporaryDirectory(dir=args.keep.parent if args.keep else None) as tmp:
        base = args.keep or Path(tmp)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"similar-case index memory, {args.processes} server processes, "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {load}")
        t0 = time.perf_counter()
        idx, _, build = synthetic_index(args.data, args.scale)
        arrays, meta = idx.arrays()
        del idx
        folder = write_version(base, arrays, meta, datetime.now(UTC))
        del arrays
        full_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"  {args.scale:,} cases built in {build:.0f} s; published files "
              f"{size / 2 ** 20:.0f} MiB in {folder}")
        for mapped in (False, True) if args.processes else ():  # 0: publication only
            label = "mapped read-only (published file)" if mapped else \
                "own copy per process (as built in process)"
            rows = run(folder, args.data, mapped, args.processes)
            rss = sum(r["after"]["rss"] for r in rows) / 1024  # type: ignore[index]
            pss = sum(r["after"]["pss"] for r in rows) / 1024  # type: ignore[index]
            grown = sum(r["after"]["pss"] - r["before"]["pss"] for r in rows) / 1024  # type: ignore[index]
            print(f"  {label}:")
            for i, r in enumerate(rows, 1):
                print(f"    process {i}: opened in {r['open_s']} s, RSS "
                      f"{r['after']['rss'] / 1024:.0f} MiB, PSS {r['after']['pss'] / 1024:.0f} "  # type: ignore[index]
                      f"MiB; 300 queries p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
            print(f"    all {len(rows)}: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB (index and "
                  f"queries added {grown:.0f} MiB of PSS)")
        if args.new:
            publication(base, folder, args.data, args.new, full_s)


if __name__ == "__main__":
    main()
