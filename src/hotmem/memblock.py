"""Boot memory: the firmware's memory map, memblock reservations and
memblock_free_all() (mm/memblock.c, mm/mm_init.c, arch setup), up to the
moment memory hotplug can start.

x86_64 follows a QEMU pc machine's e820; other arches get one range at the
arch's RAM base.  Boot-time kernel allocations are the memblock reservations
only: low memory, the kernel image, the boot memmap and SWIOTLB.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .arch import Arch
from .constants import (
    MEM_ONLINE,
    MIGRATE_MOVABLE,
    P_RESERVED,
    SECTION_HAS_MEM_MAP,
    SECTION_IS_EARLY,
    SECTION_IS_ONLINE,
    SECTION_MARKED_PRESENT,
    ZONE_NORMAL,
    GiB,
)
from .errors import ConfigError
from .page_alloc import init_per_zone_wmark_min
from .state import MachineState

ZoneSplitter = Callable[[int, int], list[tuple[int, int, int]]]


def zone_splitter(a: Arch) -> ZoneSplitter:
    """Split a boot pfn range at the arch's zone limits: [(start, end, zone type)]."""
    limits = [(zt, lim >> a.page_shift) for zt, lim in a.zone_limits]

    def split(s: int, e: int) -> list[tuple[int, int, int]]:
        out = []
        lo = s
        for zt, lim in limits:
            if lo >= e:
                break
            if lo < lim:
                hi = min(e, lim)
                out.append((lo, hi, zt))
                lo = hi
        if lo < e:
            out.append((lo, e, ZONE_NORMAL))
        return out
    return split


def boot(m: MachineState) -> None:
    """Boot memory online on node 0: zones spanned, sections and blocks present
    and online, reservations PG_reserved, the rest in the buddy, watermarks set."""
    a, p = m.arch, m.pages
    pps = a.pages_per_section
    split = zone_splitter(a)
    # present pages per zone and zone spans (node 0)
    for s, e in m.boot_ranges:
        for zs, ze, zt in split(s, e):
            z = m.zone(0, zt)
            z.boot_ranges.append((zs, ze))
            z.present_pages += ze - zs
            z.present_early_pages += ze - zs
            z.resize_range(zs, ze - zs)
    # memmap_init: every pageblock of a zone span gets the zone, MOVABLE
    pb = a.pageblock_nr_pages
    for z in m.zones:
        if z.nid == 0 and not z.is_empty():
            s = z.zone_start_pfn // pb * pb
            e = -(-z.zone_end_pfn // pb) * pb
            p.set_pageblocks(s, e, MIGRATE_MOVABLE, z.zid)
    # sections and blocks of boot memory
    for s, e in m.boot_ranges:
        secs = np.arange(s // pps, -(-e // pps))
        m.sec_flags[secs] = (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
                             | SECTION_IS_ONLINE | SECTION_IS_EARLY)
    # holes inside online sections are PG_reserved (init_unavailable_range)
    for s, e in _holes_in_sections(m):
        p.set(P_RESERVED, s, e)
    # memblock reservations: low memory, the kernel image, the boot memmap
    reserved = _reservations(m)
    for s, e, _ in reserved:
        p.set(P_RESERVED, s, e)
    m.boot_reserved = reserved
    # memblock_free_all(): the rest goes to the buddy
    for s, e in m.boot_ranges:
        pfn = s
        while pfn < e:
            r = p.find_set(P_RESERVED, pfn, e)
            stop = e if r < 0 else r
            if stop > pfn:
                _free_memory_core(m, split, pfn, stop)
            if r < 0:
                break
            nxt = p.find_clear(P_RESERVED, r, e)
            if nxt < 0:
                break
            pfn = nxt
    end = max(e for _, e in m.boot_ranges)
    for blk in range(m.nr_blocks):
        bs = blk * m.pages_per_block
        if bs >= end:
            break
        if any(s < bs + m.pages_per_block and e > bs for s, e in m.boot_ranges):
            m.blk_state[blk] = MEM_ONLINE
            m.blk_early[blk] = True
            m.blk_nid[blk] = 0
            m.blk_zone[blk] = _early_zone_for_block(m, bs)
    init_per_zone_wmark_min(m)
    m.max_pfn_seen = m.max_pfn()


def _free_memory_core(m: MachineState, split: ZoneSplitter, s: int, e: int) -> None:
    # __free_pages_memory(): ctz chunks clamped to the end, with merging; the
    # pages become managed by the zone of each chunk
    for zs, ze, zt in split(s, e):
        m.pages.free_range(zs, ze)
        m.zone(0, zt).managed_pages += ze - zs


def _holes_in_sections(m: MachineState) -> list[tuple[int, int]]:
    pps = m.arch.pages_per_section
    holes = []
    secs = sorted({sec for s, e in m.boot_ranges for sec in range(s // pps, -(-e // pps))})
    for sec in secs:
        lo, hi = sec * pps, (sec + 1) * pps
        cur = lo
        for s, e in m.boot_ranges:
            if e <= lo or s >= hi:
                continue
            if s > cur:
                holes.append((cur, s))
            cur = max(cur, e)
        if cur < hi:
            holes.append((cur, hi))
    return holes


def _reservations(m: MachineState) -> list[tuple[int, int, str]]:
    a = m.arch
    out = []
    first = min(s for s, _ in m.boot_ranges)
    if a.reserve_low:
        out.append((first, (a.ram_base + a.reserve_low) >> a.page_shift, "low memory"))
    ks = (a.ram_base + a.kernel_image[0]) >> a.page_shift
    ke = ks + (a.kernel_image[1] >> a.page_shift)
    out.append((ks, ke, "kernel image"))
    # sparse_init(): the memmap of every present boot section, allocated
    # top-down by memblock from the end of boot memory
    nsec = int(np.count_nonzero(m.sec_flags & SECTION_IS_EARLY))
    need = nsec * a.memmap_pages_per_section
    for s, e in sorted(m.boot_ranges, reverse=True):
        take = min(need, e - s)
        if take:
            out.append((e - take, e, "boot memmap"))
        need -= take
        if not need:
            break
    if need:
        raise ConfigError(f"boot_memory {m.boot_memory:#x} is too small for its own memmap")
    if a.swiotlb:
        # memblock_alloc_low(): top-down below 4 GiB, under what is already taken
        low = [(s, e) for s, e in m.boot_ranges if e <= (4 * GiB) >> a.page_shift]
        s, e = max(low)
        taken = [r for r in out if s <= r[0] < e]
        top = min([r[0] for r in taken if r[1] == e or r[2] == "boot memmap"] + [e])
        n = a.swiotlb >> a.page_shift
        ends = [r[1] for r in out if s <= r[0] < top]
        if top - n >= max(ends + [s]):   # else the kernel boots without it
            out.append((top - n, top, "swiotlb"))
    return out


def _early_zone_for_block(m: MachineState, start_pfn: int) -> int:
    """early_node_zone_for_memory_block(): the single zone whose span
    intersects the block, else -1 (valid_zones 'none')."""
    hit = [z for z in m.zones if z.nid == 0 and z.intersects(start_pfn, m.pages_per_block)]
    return hit[0].zid if len(hit) == 1 else -1
