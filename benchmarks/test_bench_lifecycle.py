"""Full lifecycle on x86_64 with memmap on memory: add, online every block
online_movable, offline all, remove.  Time with its pure-Python-reference ratio,
and peak RSS per simulated page in a child process."""
import time

import pytest

from bench_support import BIG, SIZES, median_of
from hotmem import bench

LIFECYCLE_SIZES = sorted({min(SIZES), max(SIZES)})


@pytest.mark.parametrize("mode", bench.LIFECYCLE_MODES)
@pytest.mark.parametrize("size", LIFECYCLE_SIZES, ids=bench.fmt_size)
def test_lifecycle(benchmark, size, mode):
    from hotmem.machine import Machine
    benchmark.group = f"lifecycle {bench.fmt_size(size)}"

    def setup():
        return ((Machine(bench.ARCH, boot_memory=bench.BOOT, memmap_on_memory="y"), size),
                {"mode": mode})

    t0 = time.perf_counter()
    r = bench._lifecycle_on(*setup()[0], mode=mode)
    once = time.perf_counter() - t0
    assert r["blocks"] == size // (128 << 20)
    rounds = max(1, min(7, int(5.0 / max(once, 1e-6))))
    benchmark.pedantic(bench._lifecycle_on, setup=setup, rounds=rounds)
    t = median_of(benchmark, once)
    per_block, ref_blocks = bench.lifecycle_reference_per_block()
    ref = per_block * r["blocks"]
    benchmark.extra_info.update({
        "pages": size >> 12, "blocks": r["blocks"], "phases_s": r,
        "ratio_vs_reference": ref / t, "reference_s": ref,
        "ref_extrapolated_from_blocks": 0 if ref_blocks == r["blocks"] else ref_blocks,
        "ref_extrapolated_from_pages": 0 if ref_blocks == r["blocks"] else ref_blocks * 32768,
    })


RSS_CASES = [pytest.param(max(SIZES), None, id=f"rss-{bench.fmt_size(max(SIZES))}")]
if BIG:
    RSS_CASES.append(pytest.param(-1, "64T", id="rss-64T-machine"))


@pytest.mark.parametrize("size,max_memory", RSS_CASES)
def test_lifecycle_peak_rss(benchmark, size, max_memory):
    if size < 0:
        size = bench.largest_add(max_memory)
    benchmark.group = "lifecycle peak RSS"
    r = benchmark.pedantic(bench.lifecycle_rss, args=(size, max_memory), rounds=1)
    assert r["blocks"] == size // (128 << 20)
    benchmark.extra_info.update(r)
