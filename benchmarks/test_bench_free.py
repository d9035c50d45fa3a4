"""Freeing a hot-added range to the buddy: page by page, get_order chunks, ctz
chunks.  Every round starts from a fresh page state."""
import time

import pytest

from bench_support import SIZES, info, median_of
from hotmem import bench


@pytest.mark.parametrize("size,strategy", [
    pytest.param(size, c.strategy, id=f"free-{bench.fmt_size(size)}-{c.strategy}")
    for size in SIZES for c in bench.free_cases(size)])
def test_free_range(benchmark, size, strategy):
    case = next(c for c in bench.free_cases(size) if c.strategy == strategy)
    benchmark.group = f"free {bench.fmt_size(size)}"
    args = case.setup()
    t0 = time.perf_counter()
    case.check(case.run(*args))
    once = time.perf_counter() - t0
    # slow strategies at big sizes: fewer rounds
    rounds = max(1, min(10, int(2.0 / max(once, 1e-6))))
    result = benchmark.pedantic(case.run, setup=lambda: (case.setup(), {}), rounds=rounds)
    case.check(result)
    benchmark.extra_info.update(info(case, median_of(benchmark, once)))
