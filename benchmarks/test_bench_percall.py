"""One memory block online or offline per call (a udev rule writing
memoryN/state, through Machine.online / Machine.offline) beside the batched
Machine.online_blocks / offline_blocks of the same blocks, per block, timed
in the same run on the lifecycle machine (x86_64, 4 GiB boot, memmap on
memory, everything added onlined online_movable, or online_kernel, then
offlined); the ratio is what a separate write per block costs over one
batched step.

    HOTMEM_BENCH_SIZES=1T pytest benchmarks/test_bench_percall.py --benchmark-enable -s
"""
import time

import pytest

from bench_support import SIZES
from hotmem import bench
from hotmem.constants import MEM_OFFLINE


def _machine(size):
    from hotmem.machine import Machine
    m = Machine(bench.ARCH, boot_memory=bench.BOOT, memmap_on_memory="y")
    return m, m.add(size=size)


def per_call(size, kind):
    """(us per online, us per offline), one Machine.online / offline call per block."""
    m, blocks = _machine(size)
    online, offline = m.online, m.offline
    t0 = time.perf_counter()
    for b in blocks:
        online(b, kind)
    t1 = time.perf_counter()
    for b in blocks:
        offline(b)
    t2 = time.perf_counter()
    # every write took the compiled one-block path (hotmem._blockops)
    assert m.block_ops.nr_onlined == m.block_ops.nr_offlined == len(blocks)
    return (t1 - t0) / len(blocks) * 1e6, (t2 - t1) / len(blocks) * 1e6


def batched(size, kind):
    """(us per block online, us per block offline) through online_blocks /
    offline_blocks of every block at once."""
    m, blocks = _machine(size)
    t0 = time.perf_counter()
    m.online_blocks(blocks, kind)
    t1 = time.perf_counter()
    out = m.offline_blocks(blocks)
    t2 = time.perf_counter()
    assert all(err is None for _, err in out)
    assert (m.blk_state[blocks] == MEM_OFFLINE).all()
    return (t1 - t0) / len(blocks) * 1e6, (t2 - t1) / len(blocks) * 1e6


def _median(xs):
    return sorted(xs)[len(xs) // 2]


# online_movable: what the lifecycle does; online_kernel: every online changes
# the watermarks' inputs (min_free_kbytes is recomputed on each)
@pytest.mark.parametrize("kind", ["online_movable", "online_kernel"])
@pytest.mark.parametrize("size", sorted({max(SIZES)}), ids=bench.fmt_size)
def test_per_call_vs_batched(benchmark, size, kind):
    benchmark.group = f"one block per call {bench.fmt_size(size)} {kind}"
    rounds = 7 if not getattr(benchmark, "disabled", False) else 1

    def both():
        t = {"online": [], "offline": [], "batched_online": [], "batched_offline": []}
        for _ in range(rounds):      # interleaved: the load of the machine hits both
            on, off = per_call(size, kind)
            bon, boff = batched(size, kind)
            t["online"].append(on)
            t["offline"].append(off)
            t["batched_online"].append(bon)
            t["batched_offline"].append(boff)
        return {k: _median(v) for k, v in t.items()}

    med = benchmark.pedantic(both, rounds=1)
    r_on = med["online"] / med["batched_online"]
    r_off = med["offline"] / med["batched_offline"]
    benchmark.extra_info.update({
        "blocks": size // (128 << 20), "rounds": rounds,
        "online_us_per_call": med["online"], "offline_us_per_call": med["offline"],
        "batched_online_us_per_block": med["batched_online"],
        "batched_offline_us_per_block": med["batched_offline"],
        "online_per_call_over_batched": r_on, "offline_per_call_over_batched": r_off,
    })
    print(f"\none block per call, {bench.fmt_size(size)} ({size // (128 << 20)} blocks, "
          f"median of {rounds}): {kind} {med['online']:.2f} us/call "
          f"(batched {med['batched_online']:.2f} us/block, {r_on:.1f}x), "
          f"offline {med['offline']:.2f} us/call "
          f"(batched {med['batched_offline']:.2f} us/block, {r_off:.1f}x)")
    assert med["online"] > 0 and med["offline"] > 0
