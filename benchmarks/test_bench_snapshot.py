"""Snapshot of a machine and a Machine back from it: x86_64 with 4 GiB of boot
memory and SIZE hot-added and onlined movable, exported (not timed); timed:
read_snapshot of the export (kpageflags included) + save + load +
build_machine.  The issue's bound: a 1 TiB machine snapshots and loads in
under 2 s (HOTMEM_BENCH_FULL=1 or HOTMEM_BENCH_SIZES=1T; the default run
checks it at 1 GiB)."""
import time

import pytest

from bench_support import SIZES, median_of
from hotmem import bench
from hotmem.machine import Machine
from hotmem.snapshot import build_machine, load_snapshot, read_snapshot, save_snapshot
from hotmem.views import procfs
from hotmem.views.export import export

BOUND_S = 2.0


def snapshot_and_load(root, out):
    save_snapshot(read_snapshot(root), out)
    return build_machine(load_snapshot(out))


@pytest.mark.parametrize("size", sorted({min(SIZES), max(SIZES)}), ids=bench.fmt_size)
def test_snapshot_and_load(benchmark, size, tmp_path):
    benchmark.group = "snapshot"
    m = Machine("x86_64", boot_memory="4G", memmap_on_memory="y")
    m.online_blocks(m.add(None, size), "online_movable")
    export(m, tmp_path / "root")
    snapshot_and_load(tmp_path / "root", tmp_path / "s.json")   # warm the page cache
    t0 = time.perf_counter()
    m2 = snapshot_and_load(tmp_path / "root", tmp_path / "s.json")
    once = time.perf_counter() - t0
    assert procfs.buddyinfo(m2) == procfs.buddyinfo(m)
    assert procfs.zoneinfo(m2) == procfs.zoneinfo(m)
    benchmark.pedantic(snapshot_and_load, args=(tmp_path / "root", tmp_path / "s.json"),
                       rounds=3 if size >= 1 << 40 else 5)
    t = median_of(benchmark, once)
    benchmark.extra_info.update({"pages": size >> 12, "kpageflags_bytes":
                                 (tmp_path / "root/proc/kpageflags").stat().st_size,
                                 "snapshot_bytes": (tmp_path / "s.json").stat().st_size})
    assert t < BOUND_S, f"{bench.fmt_size(size)}: {t:.2f} s"
