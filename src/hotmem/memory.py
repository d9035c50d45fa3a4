"""drivers/base/memory.c as hotmem models it: memory block devices seen as a
list (what a udev rule or a shell loop writing memoryN/state does), onlined or
offlined in order with the result of doing them one by one; runs of
consecutive blocks that the design lets through are done in one pass."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .constants import (
    FREE_STRATEGIES,
    MEM_OFFLINE,
    MEM_ONLINE,
    MMOP_ONLINE,
    MMOP_ONLINE_KERNEL,
    MMOP_ONLINE_MOVABLE,
    P_BUDDY,
    SECTION_IS_ONLINE,
    ZONE_MOVABLE,
    IntArray,
)
from .errors import HotplugError
from .memory_hotplug import (
    check_block,
    check_online_type,
    default_kernel_zone_for_pfn,
    offline_block,
    online_block,
    shrink_zone_span,
)
from .mmzone import Zone
from .page_alloc import init_per_zone_wmark_min
from .state import MachineState

BlockResult = tuple[int, HotplugError | None]


def block_list(ids: Iterable[int]) -> str:
    """memory33..memory63,memory65 style, for messages."""
    runs: list[list[int]] = []
    for b in sorted(int(b) for b in ids):
        if runs and b == runs[-1][1] + 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    return ",".join(f"memory{a}" if a == b else f"memory{a}..memory{b}" for a, b in runs)


def _runs(blocks: list[int]) -> list[tuple[int, int]]:
    """(first, count) of each run of consecutive block ids, in the given order."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][0] + out[-1][1] == b:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((b, 1))
    return out


def _wmark_steps(m: MachineState, zone: Zone, managed0: int, present0: int, per_managed: int,
                 per_present: int, n: int) -> None:
    """The watermark recomputations of n sequential onlines (or offlines, with
    negative steps) of one block each, ending in the state the kernel reaches.
    From 6.12 ZONE_MOVABLE does not feed the other zones' watermarks, so once
    they are stable only the last step needs computing."""
    independent = zone.ztype == ZONE_MOVABLE and m.kernel.movable_wmark_like_highmem
    prev = None
    for k in range(1, n + 1):
        zone.managed_pages = managed0 + k * per_managed
        zone.present_pages = present0 + k * per_present
        if independent and k < n:
            init_per_zone_wmark_min(m)
            state = (m.min_free_kbytes,) + tuple(
                (z.wmark_min, z.wmark_high) for z in m.zones if z is not zone)
            if state == prev:
                zone.managed_pages = managed0 + n * per_managed
                zone.present_pages = present0 + n * per_present
                init_per_zone_wmark_min(m)
                return
            prev = state
        else:
            init_per_zone_wmark_min(m)


def _group_present(m: MachineState, blocks: IntArray, zone: Zone, pages_per_block: int) -> None:
    gids, counts = np.unique(m.blk_group[blocks], return_counts=True)
    for gid, c in zip(gids.tolist(), counts.tolist(), strict=True):
        g = m.groups.get(gid)
        if g is None:
            continue
        if zone.ztype == ZONE_MOVABLE:
            g.present_movable_pages += c * pages_per_block
        else:
            g.present_kernel_pages += c * pages_per_block


def _batch_zone(m: MachineState, first: int, n: int, online_type: int) -> Zone | None:
    """The zone every block of the run would get when onlined one by one in
    order, when that is known up front; else None (go block by block)."""
    start = first * m.pages_per_block
    nr = n * m.pages_per_block
    nid = int(m.blk_nid[first])
    if online_type == MMOP_ONLINE_MOVABLE:
        return m.zone(nid, ZONE_MOVABLE)
    kernel_zone = default_kernel_zone_for_pfn(m, nid, start, nr)
    if kernel_zone.ztype < 2 and kernel_zone.intersects(start, nr):
        return None  # DMA / DMA32 boundaries: per block
    if online_type == MMOP_ONLINE_KERNEL:
        return kernel_zone
    if online_type == MMOP_ONLINE and m.online_policy == "contig-zones" and not m.movable_node:
        # the run grows the kernel zone block by block and never meets Movable
        if not m.zone(nid, ZONE_MOVABLE).intersects(start, nr):
            return kernel_zone
    return None


def _many(m: MachineState, blocks: Iterable[object], stop_on_error: bool,
          batchable: Callable[[int, int], bool], do_batch: Callable[[int, int], bool],
          do_one: Callable[[int], object]) -> list[BlockResult]:
    """Walk the blocks in order.  From each block b the longest run of consecutive
    ids that ``batchable(b, x)`` accepts goes to ``do_batch(b, n)``, which returns
    False to decline; anything else goes to ``do_one(b)``."""
    out: list[BlockResult] = []
    ids = [check_block(m, b) for b in blocks]
    for first, count in _runs(ids):
        b = first
        while b < first + count:
            n = 0
            if m.design.batchable:
                # a driver's online-page callback or notifiers see every block
                while (b + n < first + count and m.device_of_block(b + n) is None
                       and batchable(b, b + n)):
                    n += 1
            if n > 1 and do_batch(b, n):
                out.extend((x, None) for x in range(b, b + n))
                b += n
                continue
            try:
                do_one(b)
                out.append((b, None))
            except HotplugError as err:
                out.append((b, err))
                if stop_on_error:
                    return out
            b += 1
    return out


def online_blocks(m: MachineState, blocks: Iterable[object], online_type: str = "online",
                  stop_on_error: bool = True) -> list[BlockResult]:
    """Online many blocks, in order, with the result of onlining them one by one;
    runs of consecutive offline blocks of one node and memmap layout are done in
    one pass.  Returns (block, error or None) per block attempted."""
    mmop = check_online_type(online_type)
    strategy = FREE_STRATEGIES[m.kernel.online_free_strategy]
    ppb = m.pages_per_block

    def batchable(b: int, x: int) -> bool:
        return bool(m.blk_state[x] == MEM_OFFLINE and not m.blk_early[x]
                    and m.blk_nid[x] == m.blk_nid[b]
                    and m.nr_vmemmap_pages(x) == m.nr_vmemmap_pages(b))

    def do_batch(b: int, n: int) -> bool:
        zone = _batch_zone(m, b, n, mmop)
        if zone is None:
            return False
        start = b * ppb
        v = m.nr_vmemmap_pages(b)
        managed0, present0 = zone.managed_pages, zone.present_pages
        freed = m.pages.online_blocks(start, n, ppb, v, zone.zid, strategy)
        zone.resize_range(start, n * ppb)
        pps = m.arch.pages_per_section
        m.sec_flags[start // pps:(start + n * ppb) // pps] |= SECTION_IS_ONLINE
        blks = np.arange(b, b + n)
        _group_present(m, blks, zone, ppb)
        _wmark_steps(m, zone, managed0, present0 - v, freed // n, ppb, n)
        zone.present_pages = present0 + n * ppb
        m.blk_zone[blks] = zone.zid
        m.blk_state[blks] = MEM_ONLINE
        return True

    return _many(m, blocks, stop_on_error, batchable, do_batch,
                 lambda b: online_block(m, b, online_type))


def offline_blocks(m: MachineState, blocks: Iterable[object],
                   stop_on_error: bool = True) -> list[BlockResult]:
    """Offline many blocks, in order, with the result of offlining them one by
    one; runs of consecutive online blocks of one zone whose pages are all free
    (but their memmap) are done in one pass."""
    ppb = m.pages_per_block

    def batchable(b: int, x: int) -> bool:
        return bool(m.blk_state[x] == MEM_ONLINE and not m.blk_early[x]
                    and m.blk_zone[b] >= 0 and m.blk_zone[x] == m.blk_zone[b]
                    and m.nr_vmemmap_pages(x) == m.nr_vmemmap_pages(b))

    def do_batch(b: int, n: int) -> bool:
        v = m.nr_vmemmap_pages(b)
        start, end = b * ppb, (b + n) * ppb
        if m.pages.count(P_BUDDY, start, end) != n * (ppb - v):
            return False  # something is allocated: block by block
        zone = m.zones[int(m.blk_zone[b])]
        managed0, present0 = zone.managed_pages, zone.present_pages
        removed = m.pages.offline_blocks(start, n, ppb, v)
        pps = m.arch.pages_per_section
        m.sec_flags[start // pps:end // pps] &= ~np.uint8(SECTION_IS_ONLINE)
        blks = np.arange(b, b + n)
        _group_present(m, blks, zone, -ppb)
        _wmark_steps(m, zone, managed0, present0, -(removed // n), -ppb, n)
        # the span shrinks to the nearest memory still online in the zone,
        # as n shrink_zone_span() calls would leave it
        zs, ze = zone.zone_start_pfn, zone.zone_end_pfn
        if start <= zs and end >= ze:
            zone.zone_start_pfn = zone.spanned_pages = 0
        elif start <= zs:
            shrink_zone_span(m, zone, zs, end)
        elif end >= ze:
            shrink_zone_span(m, zone, start, ze)
        m.blk_zone[blks] = -1
        m.blk_state[blks] = MEM_OFFLINE
        return True

    return _many(m, blocks, stop_on_error, batchable, do_batch, lambda b: offline_block(m, b))
