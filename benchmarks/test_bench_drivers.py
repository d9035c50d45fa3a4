"""virtio-mem at scale: a device plugged to its full size and unplugged again
in 2 MiB subblocks (SBM, 64 subblocks per 128 MiB block: 524,288 subblock
operations for 1 TiB), beside the per-block ACPI path over the same memory
(one 128 MiB DIMM add auto-onlined online_movable, offline and remove per
block), timed in
the same run.  Default run: 1 GiB; ``HOTMEM_BENCH_SIZES=1T`` for the issue's
1 TiB figure."""
import time

import pytest

from bench_support import SIZES, median_of
from hotmem import bench
from hotmem.machine import Machine

BOOT = "32G"     # virtio-mem never self-hosts its memmap: 16 GiB of it for 1 TiB
START = 64 << 30


def _machine(size: int) -> Machine:
    return Machine("x86_64", kernel="6.12", boot_memory=BOOT, max_memory=START + size,
                   auto_online_blocks="online_movable")


def virtio_mem_cycle(m: Machine, size: int) -> float:
    t0 = time.perf_counter()
    m.attach({"name": "vm0", "driver": "virtio-mem", "start": START, "size": size,
              "block_size": "2M", "requested_size": size})
    m.resize("vm0", 0)
    return time.perf_counter() - t0


def acpi_per_block_cycle(m: Machine, size: int) -> float:
    bs = m.block_size
    t0 = time.perf_counter()
    for base in range(START, START + size, bs):
        m.add(base, bs)              # auto-onlined online_movable, as the virtio-mem blocks
    for base in range(START, START + size, bs):
        m.offline(base // bs)
        m.remove(base, bs)
    return time.perf_counter() - t0


@pytest.mark.parametrize("size", [max(SIZES)], ids=bench.fmt_size)
def test_virtio_mem_plug_unplug(benchmark, size):
    benchmark.group = f"virtio-mem plug+unplug {bench.fmt_size(size)}"
    m = _machine(size)
    once = virtio_mem_cycle(m, size)
    dev_blocks = size // m.block_size
    assert not m.devices or m.device("vm0").plugged == 0
    assert m.zone_by_name("Movable").present_pages == 0
    rounds = max(1, min(5, int(10.0 / max(once, 1e-6))))
    benchmark.pedantic(lambda mm: virtio_mem_cycle(mm, size),
                       setup=lambda: ((_machine(size),), {}), rounds=rounds)
    t = median_of(benchmark, once)
    acpi = min(acpi_per_block_cycle(_machine(size), size) for _ in range(2))
    benchmark.extra_info.update({
        "blocks": dev_blocks, "subblocks": dev_blocks * 64,
        "seconds": t, "acpi_per_block_seconds": acpi, "ratio_vs_acpi_per_block": acpi / t,
    })
    print(f"\nvirtio-mem {bench.fmt_size(size)}: {dev_blocks * 64} subblocks plugged and unplugged "
          f"in {t:.3f} s; ACPI per block {acpi:.3f} s; ratio {acpi / t:.2f}")
