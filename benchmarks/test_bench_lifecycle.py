"""Full lifecycle on x86_64 with memmap on memory: add, online every block
online_movable, offline all, remove.  Time with its pure-Python-reference ratio,
and peak RSS per simulated page in a child process."""
import os
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


@pytest.mark.parametrize("size", LIFECYCLE_SIZES, ids=bench.fmt_size)
def test_lifecycle_per_block_vs_batched(benchmark, size):
    """Both modes timed in this one run, interleaved, medians: the ratio is
    what one sysfs write per block costs over a scenario's batched step."""
    benchmark.group = f"lifecycle {bench.fmt_size(size)} per_block vs batched"
    rounds = 5 if not getattr(benchmark, "disabled", False) else 1

    def both():
        times = {m: [] for m in bench.LIFECYCLE_MODES}
        for _ in range(rounds):
            for mode in bench.LIFECYCLE_MODES:
                times[mode].append(bench.lifecycle(size, mode=mode)["total"])
        return {m: sorted(t)[len(t) // 2] for m, t in times.items()}

    med = benchmark.pedantic(both, rounds=1)
    ratio = med["per_block"] / med["batched"]
    benchmark.extra_info.update({"batched_s": med["batched"], "per_block_s": med["per_block"],
                                 "per_block_over_batched": ratio})
    print(f"\nlifecycle {bench.fmt_size(size)}: batched {med['batched'] * 1e3:.1f} ms, "
          f"per_block {med['per_block'] * 1e3:.1f} ms, ratio {ratio:.1f}x")
    assert med["batched"] > 0 and med["per_block"] > 0


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


# HOTMEM_BENCH_PETA=1 adds the 1 PiB and 4 PiB machines (up to 5 GiB of RSS and
# half a minute each) and the full RSS curve over 16 TiB
PETA = os.environ.get("HOTMEM_BENCH_PETA") == "1"
MACHINES = bench.BIG_MACHINES if PETA else bench.BIG_MACHINES[:1]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda mc: f"{mc[0]}-boot{mc[1]}")
def test_machine_lifecycle(benchmark, machine):
    """Everything above boot memory added, onlined movable, offlined and
    removed on a machine of up to 4 PiB (x86_64, 5-level paging)."""
    benchmark.group = "big machines (peak RSS)"
    r = benchmark.pedantic(bench.machine_lifecycle, args=machine, rounds=1)
    benchmark.extra_info.update(r)
    print("\n" + bench.format_machine(dict(r, max_memory=machine[0], boot=machine[1])))
    from hotmem.units import parse_size
    # all but the boot layout (and the PCI hole below 4 GiB) was added
    assert r["size"] == r["blocks"] * (r["size"] // r["blocks"])
    assert parse_size(machine[0], "") - r["size"] <= 2 * parse_size(machine[1], "")


def test_rss_vs_touched_sections(benchmark):
    """RSS grows with the sections allocations touch, not with online memory."""
    benchmark.group = "RSS vs touched sections"
    args = ("16T", bench.RSS_CURVE_POINTS) if PETA else ("1T", (16, 256))
    r = benchmark.pedantic(bench.rss_curve, args=args, rounds=1)
    benchmark.extra_info.update(r)
    print("\n" + bench.format_rss(r))
    curve = r["curve"]
    assert curve[1]["sections_touched"] == 16
    assert all(a["sections_touched"] <= b["sections_touched"]
               for a, b in zip(curve[:-1], curve[1:-1], strict=False))
    assert curve[-1]["sections_touched"] == 0   # all freed: folded back
