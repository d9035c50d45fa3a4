"""Consistency checks of a machine's state, recounted from the page planes."""
from __future__ import annotations

import numpy as np

from .constants import (
    MEM_ONLINE,
    MIGRATE_ISOLATE,
    P_BUDDY,
    P_VMEMMAP,
    SECTION_IS_ONLINE,
    pages_in_free_area,
)
from .state import MachineState


class InvariantError(AssertionError):
    """The machine's counters disagree with its pages."""


def check(m: MachineState) -> None:
    """Raise InvariantError unless every counter matches a recount."""
    p = m.pages
    end = m.max_pfn()
    problems = []
    nf = p.nr_free
    if (nf < 0).any():
        problems.append("negative nr_free")
    heads, orders = p.free_blocks(0, end) if end else (np.zeros(0, np.int64), np.zeros(0, np.int8))
    recount = np.zeros_like(nf)
    for h, o in zip(heads.tolist(), orders.tolist(), strict=True):
        mt, iso, zid = p.pageblock(h)
        if zid < 0:
            problems.append(f"free block at pfn {h:#x} has no zone")
            continue
        recount[zid, MIGRATE_ISOLATE if iso else mt, o] += 1
        if h & ((1 << o) - 1) and m.design.free_blocks_aligned:
            problems.append(f"free block at pfn {h:#x} of order {o} is not aligned")
    if not np.array_equal(recount, nf):
        bad = np.argwhere(recount != nf)[0]
        problems.append(f"nr_free{tuple(int(x) for x in bad)} = {nf[tuple(bad)]} but the "
                        f"planes hold {recount[tuple(bad)]}")
    buddy_pages = int((np.int64(1) << orders.astype(np.int64)).sum())
    if end and p.count(P_BUDDY, 0, end) != buddy_pages:
        problems.append(f"{p.count(P_BUDDY, 0, end)} buddy pages but the free blocks "
                        f"cover {buddy_pages}")
    if end:
        both = [pfn for pfn in heads.tolist() if p.test(P_VMEMMAP, pfn)]
        if both:
            problems.append(f"pfn {both[0]:#x} is both vmemmap and free")
        vm = p.find_set(P_VMEMMAP, 0, end)
        if vm >= 0 and not m.design.memmap_stays_marked_offline and p.count(
                P_VMEMMAP, 0, end) != int(m.alt_free[m.blk_state == MEM_ONLINE].sum()):
            problems.append("vmemmap pages do not match the online blocks' altmaps")
    for z in m.zones:
        if not (0 <= z.managed_pages <= z.present_pages <= z.spanned_pages or
                (z.present_pages == 0 and z.managed_pages == 0)):
            problems.append(f"zone {z.nid}/{z.name}: managed {z.managed_pages} present "
                            f"{z.present_pages} spanned {z.spanned_pages}")
        free = pages_in_free_area(nf[z.zid])
        if free > z.managed_pages:
            problems.append(f"zone {z.nid}/{z.name}: {free} free pages > managed {z.managed_pages}")
        if z.nr_isolate_pageblock:
            problems.append(f"zone {z.nid}/{z.name}: {z.nr_isolate_pageblock} pageblocks "
                            "left isolated")
    offline_alloc = m.alt_alloc[(m.blk_state == 0)]
    if offline_alloc.any():
        problems.append("an absent block keeps altmap alloc != 0")
    if len(heads):
        secs = heads // m.arch.pages_per_section
        if not (m.sec_flags[secs] & SECTION_IS_ONLINE).all():
            problems.append("a free block lies in an offline section")
    if problems:
        raise InvariantError("; ".join(problems))
