"""/proc/buddyinfo, /proc/zoneinfo and /proc/pagetypeinfo as mm/vmstat.c prints them."""
from __future__ import annotations

import numpy as np

from ..constants import MAX_NR_ZONES, MIGRATE_ISOLATE, SECTION_IS_ONLINE, pageblock_lists
from ..mmzone import Zone
from ..page_alloc import lowmem_reserve, nr_free_pages, zone_nr_free_pages
from ..state import MachineState

# migratetype_names[] of a kernel without CONFIG_CMA (Debian's 6.1 and 6.12)
MIGRATETYPE_COLUMNS = ((0, "Unmovable"), (1, "Movable"), (2, "Reclaimable"),
                       (3, "HighAtomic"), (MIGRATE_ISOLATE, "Isolate"))
PAGETYPEINFO_CAP = 100000


def online_nodes(m: MachineState) -> list[int]:
    """Nodes with memory or memory blocks (node 0 always)."""
    nids = {0} | {int(n) for n in np.unique(m.blk_nid[m.blk_state != 0])}
    return sorted(nids)


def node_zones(m: MachineState, nid: int) -> list[Zone]:
    return [z for z in m.zones[nid * MAX_NR_ZONES:(nid + 1) * MAX_NR_ZONES] if z.configured]


def buddyinfo(m: MachineState) -> str:
    """/proc/buddyinfo: free blocks per order of every populated zone."""
    lines = []
    for nid in online_nodes(m):
        for z in node_zones(m, nid):
            if not z.populated():
                continue
            counts = m.pages.nr_free[z.zid].sum(axis=0)
            lines.append(f"Node {nid}, zone {z.name:>8} " + "".join(f"{int(c):6d} " for c in counts))
    return "".join(line + "\n" for line in lines)


def pageblock_counts(m: MachineState, z: Zone) -> dict[int, int]:
    """Pageblocks of a zone by migratetype, over its span, in online sections only."""
    if z.is_empty():
        return {}
    pbo = m.arch.pageblock_order
    s = z.zone_start_pfn >> pbo << pbo
    e = -(-z.zone_end_pfn >> pbo) << pbo
    mt, zn = m.pages.pageblock_bytes(s, e)
    pfns = s + (np.arange(len(mt), dtype=np.int64) << pbo)
    sec = pfns >> (m.arch.section_size_bits - m.arch.page_shift)
    ok = (zn == z.zid + 1) & ((m.sec_flags[sec] & SECTION_IS_ONLINE) != 0)
    kinds = pageblock_lists(mt)[ok]
    return {int(k): int(c) for k, c in zip(*np.unique(kinds, return_counts=True))}


def pagetypeinfo(m: MachineState) -> str:
    """/proc/pagetypeinfo: free blocks per migratetype and order, pageblock counts."""
    orders = m.arch.max_page_order + 1
    out = [f"Page block order: {m.arch.pageblock_order}\n",
           f"Pages per block:  {m.arch.pageblock_nr_pages}\n", "\n",
           f"{'Free pages count per migrate type at order':<43} "
           + "".join(f"{o:6d} " for o in range(orders)) + "\n"]
    populated = [(nid, z) for nid in online_nodes(m) for z in node_zones(m, nid) if z.populated()]
    for nid, z in populated:
        for mt, name in MIGRATETYPE_COLUMNS:
            row = m.pages.nr_free[z.zid, mt]
            cells = "".join((">" if c >= PAGETYPEINFO_CAP else "")
                            + f"{min(int(c), PAGETYPEINFO_CAP):6d} " for c in row)
            out.append(f"Node {nid:4d}, zone {z.name:>8}, type {name:>12} {cells}\n")
    out.append(f"\n{'Number of blocks type ':<23}"
               + "".join(f"{name:>12} " for _, name in MIGRATETYPE_COLUMNS) + "\n")
    for nid, z in populated:
        counts = pageblock_counts(m, z)
        out.append(f"Node {nid}, zone {z.name:>8} "
                   + "".join(f"{counts.get(mt, 0):12d} " for mt, _ in MIGRATETYPE_COLUMNS) + "\n")
    return "".join(out)


def zoneinfo(m: MachineState) -> str:
    """/proc/zoneinfo: every zone of every online node.  The counters hotmem
    models are printed in the kernel's layout; the per-node and per-zone vm
    event statistics and the per-cpu pagesets, which it does not model, are
    left out (nr_free_pages is kept)."""
    out = []
    promo = m.kernel.zoneinfo_promo
    for nid in online_nodes(m):
        for z in node_zones(m, nid):
            free = zone_nr_free_pages(m, z)
            prot = ", ".join(str(x) for x in lowmem_reserve(m, z))
            out.append(f"Node {nid}, zone {z.name:>8}"
                       f"\n  pages free     {free}"
                       f"\n        boost    0"
                       f"\n        min      {z.wmark_min}"
                       f"\n        low      {z.wmark_low}"
                       f"\n        high     {z.wmark_high}"
                       + (f"\n        promo    {z.wmark_promo}" if promo else "")
                       + f"\n        spanned  {z.spanned_pages}"
                       f"\n        present  {z.present_pages}"
                       f"\n        managed  {z.managed_pages}"
                       f"\n        cma      {z.cma_pages}"
                       f"\n        protection: ({prot})")
            if not z.populated():
                out.append("\n")
                continue
            out.append(f"\n      {'nr_free_pages':<12} {free}"
                       f"\n  node_unreclaimable:  0"
                       f"\n  start_pfn:           {z.zone_start_pfn}\n")
    return "".join(out)


def meminfo_kb(m: MachineState) -> dict[str, int]:
    """MemTotal / MemFree in kB (the two /proc/meminfo lines hotmem models)."""
    kb = m.arch.page_size >> 10
    return {"MemTotal": m.totalram_pages() * kb,
            "MemFree": nr_free_pages(m) * kb}
