"""Sweep throughput: points per second with two local workers against one, on
a grid of small scenarios (x86_64, 1 GiB boot memory: add, online movable,
allocate, offline), both measured in the same run, alternately.

    HOTMEM_BENCH_FULL=1 pytest benchmarks/test_bench_sweep.py --benchmark-enable -s

The default run (--benchmark-disable) sweeps 8 points once per worker count.
"""
import os
import statistics
import time

import pytest

from hotmem.sweep import Grid, sweep

BASE = {
    "machine": {"arch": "x86_64", "kernel": "6.12", "boot_memory": "1G",
                "memmap_on_memory": "y", "on_error": "continue"},
    "step": [{"op": "add", "size": "512M"},
             {"op": "online", "blocks": "offline", "type": "online_movable"},
             {"op": "alloc", "zone": "Movable", "pages": 20000, "seed": 1},
             {"op": "offline", "blocks": "online"}],
}
FULL = os.environ.get("HOTMEM_BENCH_FULL") == "1"


def small_grid() -> Grid:
    seeds = list(range(1, 33 if FULL else 3))
    return Grid(BASE, "<bench>", {"seed": seeds,
                                  "step.0.size": ["128M", "256M", "512M", "1G"]})


def timed(grid: Grid, workers: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    rows = sweep(grid, None, workers=workers).rows
    return time.perf_counter() - t0, rows


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_points_per_second(benchmark, workers):
    benchmark.group = "sweep"
    grid = small_grid()
    res = benchmark.pedantic(sweep, args=(grid, None), kwargs={"workers": workers},
                             rounds=3 if FULL else 1, iterations=1)
    assert len(res.rows) == len(grid) and res.errors == 0
    t = benchmark.stats.stats.median if benchmark.stats else None
    benchmark.extra_info.update({"points": len(grid), "workers": workers,
                                 "points_per_s": len(grid) / t if t else None})


def test_sweep_two_workers_vs_one(benchmark):
    """The headline ratio: each round sweeps with one worker, then with two;
    the medians of the rounds give it."""
    benchmark.group = "sweep ratio"
    grid = small_grid()
    one, two = [], []

    def pair():
        t1, rows1 = timed(grid, 1)
        t2, rows2 = timed(grid, 2)
        assert rows1 == rows2           # where a point ran does not change its row
        one.append(t1)
        two.append(t2)

    benchmark.pedantic(pair, rounds=3 if FULL else 1, iterations=1)
    ratio = statistics.median(one) / statistics.median(two)
    n = len(grid)
    print(f"\nsweep of {n} points: 1 worker {n / statistics.median(one):.1f} points/s, "
          f"2 workers {n / statistics.median(two):.1f} points/s, ratio {ratio:.2f}x "
          f"(cpus {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f})")
    benchmark.extra_info.update({"points": n, "one_worker_s": one, "two_workers_s": two,
                                 "ratio": ratio, "loadavg_1min": os.getloadavg()[0]})
