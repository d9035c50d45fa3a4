"""/proc/buddyinfo, /proc/zoneinfo and /proc/pagetypeinfo as mm/vmstat.c prints them."""
from __future__ import annotations

import numpy as np

from ..constants import MAX_NR_ZONES, MIGRATE_ISOLATE, SECTION_IS_ONLINE, pageblock_lists
from ..mmzone import Zone
from ..page_alloc import lowmem_reserve, nr_free_pages, zone_nr_free_pages
from ..state import MachineState
from .meminfo import balloon_pages, config_cma

# migratetype_names[] (mm/page_alloc.c) of a kernel without CONFIG_CMA (Debian's
# amd64 6.1 and 6.12); with CONFIG_CMA, "CMA" comes before "Isolate".  hotmem
# has no CMA areas: the CMA column always counts 0.
MIGRATETYPE_COLUMNS = ((0, "Unmovable"), (1, "Movable"), (2, "Reclaimable"),
                       (3, "HighAtomic"), (MIGRATE_ISOLATE, "Isolate"))
MIGRATE_CMA_COLUMN = -1
PAGETYPEINFO_CAP = 100000


def migratetype_columns(m: MachineState) -> tuple[tuple[int, str], ...]:
    """(migratetype, name) of each /proc/pagetypeinfo column, in order."""
    if not config_cma(m):
        return MIGRATETYPE_COLUMNS
    return MIGRATETYPE_COLUMNS[:4] + ((MIGRATE_CMA_COLUMN, "CMA"),) + MIGRATETYPE_COLUMNS[4:]


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
            lines.append(f"Node {nid}, zone {z.name:>8} "
                         + "".join(f"{int(c):6d} " for c in counts))
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
    return {int(k): int(c) for k, c in zip(*np.unique(kinds, return_counts=True), strict=True)}


def pagetypeinfo(m: MachineState) -> str:
    """/proc/pagetypeinfo: free blocks per migratetype and order, pageblock counts."""
    orders = m.arch.max_page_order + 1
    out = [f"Page block order: {m.arch.pageblock_order}\n",
           f"Pages per block:  {m.arch.pageblock_nr_pages}\n", "\n",
           f"{'Free pages count per migrate type at order':<43} "
           + "".join(f"{o:6d} " for o in range(orders)) + "\n"]
    columns = migratetype_columns(m)
    populated = [(nid, z) for nid in online_nodes(m) for z in node_zones(m, nid) if z.populated()]
    for nid, z in populated:
        for mt, name in columns:
            row = (m.pages.nr_free[z.zid, mt] if mt != MIGRATE_CMA_COLUMN
                   else np.zeros(orders, dtype=np.int64))
            cells = "".join((">" if c >= PAGETYPEINFO_CAP else "")
                            + f"{min(int(c), PAGETYPEINFO_CAP):6d} " for c in row)
            out.append(f"Node {nid:4d}, zone {z.name:>8}, type {name:>12} {cells}\n")
    out.append(f"\n{'Number of blocks type ':<23}"
               + "".join(f"{name:>12} " for _, name in columns) + "\n")
    for nid, z in populated:
        counts = pageblock_counts(m, z)
        out.append(f"Node {nid}, zone {z.name:>8} "
                   + "".join(f"{counts.get(mt, 0):12d} " for mt, _ in columns) + "\n")
    return "".join(out)


def zone_nr_free_pages_blocks(m: MachineState, z: Zone) -> int:
    """NR_FREE_PAGES_BLOCKS (6.15): free pages in buddy blocks of order >=
    pageblock_order that are not on MIGRATE_ISOLATE lists (__add_to_free_list,
    __del_page_from_free_list, move_to_free_list)."""
    nf = m.pages.nr_free[z.zid]
    pbo = m.arch.pageblock_order
    sizes = 1 << np.arange(nf.shape[1], dtype=np.int64)
    big = nf[:, pbo:] * sizes[pbo:]
    return int(big.sum() - big[MIGRATE_ISOLATE].sum())


# Per-node counters (node_stat_name(), vmstat_text[] in mm/vmstat.c) of the
# Debian amd64 config, each with the first release that prints it and the first
# that no longer does.  Verified lists: 6.1.192, 6.12.117, 7.2.13 and 7.3.4
# (captures and Debian's source packages).  "taken": the first merge window
# after the patch mail (docs/kernel-notes.md §11.2), not checked against a tag.
_ALWAYS = (0, 0)
# "mm/vmstat: Move pgdemote_* to per-node stats" (PM v2 2023-11-03, during
# 6.7's merge window: taken as 6.8); "mm: move pgscan and pgsteal to node
# stats" (PM 2026-02-11: taken as 7.1).  Before, /proc/vmstat prints them among
# the vm events (views/vmstat.py VM_EVENTS), from then on among these.
PGDEMOTE_NODE_STATS = (6, 8)
RECLAIM_NODE_STATS = (7, 1)
NODE_STATS: tuple[tuple[str, tuple[int, int], tuple[int, int] | None], ...] = tuple(
    (name, since, until) for name, since, until in (
        ("nr_inactive_anon", _ALWAYS, None), ("nr_active_anon", _ALWAYS, None),
        ("nr_inactive_file", _ALWAYS, None), ("nr_active_file", _ALWAYS, None),
        ("nr_unevictable", _ALWAYS, None), ("nr_slab_reclaimable", _ALWAYS, None),
        ("nr_slab_unreclaimable", _ALWAYS, None), ("nr_isolated_anon", _ALWAYS, None),
        ("nr_isolated_file", _ALWAYS, None), ("workingset_nodes", _ALWAYS, None),
        ("workingset_refault_anon", _ALWAYS, None), ("workingset_refault_file", _ALWAYS, None),
        ("workingset_activate_anon", _ALWAYS, None),
        ("workingset_activate_file", _ALWAYS, None),
        ("workingset_restore_anon", _ALWAYS, None), ("workingset_restore_file", _ALWAYS, None),
        ("workingset_nodereclaim", _ALWAYS, None), ("nr_anon_pages", _ALWAYS, None),
        ("nr_mapped", _ALWAYS, None), ("nr_file_pages", _ALWAYS, None),
        ("nr_dirty", _ALWAYS, None), ("nr_writeback", _ALWAYS, None),
        ("nr_writeback_temp", _ALWAYS, (6, 17)),         # removed 6.17 (taken)
        ("nr_shmem", _ALWAYS, None), ("nr_shmem_hugepages", _ALWAYS, None),
        ("nr_shmem_pmdmapped", _ALWAYS, None), ("nr_file_hugepages", _ALWAYS, None),
        ("nr_file_pmdmapped", _ALWAYS, None), ("nr_anon_transparent_hugepages", _ALWAYS, None),
        ("nr_vmscan_write", _ALWAYS, None), ("nr_vmscan_immediate_reclaim", _ALWAYS, None),
        ("nr_dirtied", _ALWAYS, None), ("nr_written", _ALWAYS, None),
        ("nr_throttled_written", _ALWAYS, None), ("nr_kernel_misc_reclaimable", _ALWAYS, None),
        ("nr_foll_pin_acquired", _ALWAYS, None), ("nr_foll_pin_released", _ALWAYS, None),
        ("nr_vmalloc", (7, 1), None),                     # 7.1 (taken)
        ("nr_kernel_stack", _ALWAYS, None), ("nr_page_table_pages", _ALWAYS, None),
        ("nr_sec_page_table_pages", _ALWAYS, None),
        ("nr_iommu_pages", (6, 10), None),                # CONFIG_IOMMU_SUPPORT; 6.10 (taken)
        ("nr_swapcached", _ALWAYS, None),
        ("pgpromote_success", _ALWAYS, None), ("pgpromote_candidate", _ALWAYS, None),
        ("pgpromote_candidate_nrl", (6, 18), None),       # 6.18 (taken)
        ("pgdemote_kswapd", PGDEMOTE_NODE_STATS, None),   # 6.8 (taken)
        ("pgdemote_direct", PGDEMOTE_NODE_STATS, None),
        ("pgdemote_khugepaged", PGDEMOTE_NODE_STATS, None),
        ("pgdemote_proactive", (6, 15), None),            # 6.15 (taken)
        # pgsteal_* / pgscan_* / pgrefill moved from vm events: 7.1 (taken)
        ("pgsteal_kswapd", RECLAIM_NODE_STATS, None),
        ("pgsteal_direct", RECLAIM_NODE_STATS, None),
        ("pgsteal_khugepaged", RECLAIM_NODE_STATS, None),
        ("pgsteal_proactive", RECLAIM_NODE_STATS, None),
        ("pgsteal_anon", RECLAIM_NODE_STATS, None), ("pgsteal_file", RECLAIM_NODE_STATS, None),
        ("pgscan_kswapd", RECLAIM_NODE_STATS, None), ("pgscan_direct", RECLAIM_NODE_STATS, None),
        ("pgscan_khugepaged", RECLAIM_NODE_STATS, None),
        ("pgscan_proactive", RECLAIM_NODE_STATS, None),
        ("pgscan_anon", RECLAIM_NODE_STATS, None), ("pgscan_file", RECLAIM_NODE_STATS, None),
        ("pgrotate_anon", (7, 3), None), ("pgrotate_file", (7, 3), None),  # not in 7.2.13
        ("pgrefill", RECLAIM_NODE_STATS, None),
        ("nr_hugetlb", (6, 13), None),                    # CONFIG_HUGETLB_PAGE; 6.13 (taken)
        ("nr_balloon_pages", (6, 15), None),              # NR_BALLOON_PAGES, 6.15
        ("nr_kernel_file_pages", (6, 18), None),          # 6.18 (taken)
        ("nr_gpu_active", (7, 0), None), ("nr_gpu_reclaim", (7, 0), None),  # 7.0 (taken)
    ))

NUMA_STATS = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local",
              "numa_other")
# what zoneinfo prints for the counters and per-cpu fields hotmem does not model
UNMODELLED = 0
# per-cpu pagesets are printed for one CPU: hotmem does not model CPUs
PAGESET_CPUS = (0,)


def node_stat_names(m: MachineState) -> list[str]:
    k = (m.kernel.major, m.kernel.minor)
    return [name for name, since, until in NODE_STATS
            if k >= since and (until is None or k < until)]


def zone_stat_names(m: MachineState) -> list[str]:
    """zone_stat_name() of every enum zone_stat_item in this era."""
    k = m.kernel
    names = ["nr_free_pages"]
    if k.zoneinfo_nr_free_pages_blocks:
        names.append("nr_free_pages_blocks")
    names += ["nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
              "nr_zone_active_file", "nr_zone_unevictable", "nr_zone_write_pending",
              "nr_mlock"]
    if k.zoneinfo_nr_bounce:
        names.append("nr_bounce")
    names += ["nr_zspages", "nr_free_cma"]
    if k.at_least(6, 5) and m.arch.pc_layout:
        # CONFIG_UNACCEPTED_MEMORY: selected by x86's INTEL_TDX_GUEST and
        # AMD_MEM_ENCRYPT only (Debian's amd64 6.12.117 config has it, its
        # arm64 and ppc64el configs not); "mm: Add support for unaccepted
        # memory" (PATCHv12 2023-05-19: taken as 6.5, as meminfo's Unaccepted)
        names.append("nr_unaccepted")
    return names


def zoneinfo(m: MachineState) -> str:
    """/proc/zoneinfo as zoneinfo_show_print() prints it: every line and key of
    the era's Debian amd64 kernel.  Modelled: pages free / nr_free_pages,
    nr_free_pages_blocks, the watermarks, spanned, present, managed, cma,
    protection and start_pfn.  The per-node and per-zone vm statistics, the
    per-cpu pagesets (one CPU) and the highatomic counts, which hotmem does not
    model, print UNMODELLED (0)."""
    k = m.kernel
    out = []
    promo = k.zoneinfo_promo
    zero = UNMODELLED
    for nid in online_nodes(m):
        zones = node_zones(m, nid)
        first = next((z for z in zones if z.populated()), None)
        for z in zones:
            free = zone_nr_free_pages(m, z)
            prot = ", ".join(str(x) for x in lowmem_reserve(m, z))
            out.append(f"Node {nid}, zone {z.name:>8}")
            if z is first:
                node = {"nr_balloon_pages": balloon_pages(m, nid)}
                out.append("\n  per-node stats"
                           + "".join(f"\n      {name:<12} {node.get(name, zero)}"
                                     for name in node_stat_names(m)))
            out.append(f"\n  pages free     {free}"
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
            values = {"nr_free_pages": free,
                      "nr_free_pages_blocks": zone_nr_free_pages_blocks(m, z)}
            out.append("".join(f"\n      {name:<12} {values.get(name, zero)}"
                               for name in zone_stat_names(m) + list(NUMA_STATS)))
            out.append("\n  pagesets")
            for cpu in PAGESET_CPUS:
                if k.zoneinfo_pcp_high_min_max:
                    out.append(f"\n    cpu: {cpu}"
                               f"\n              count:    {zero}"
                               f"\n              high:     {zero}"
                               f"\n              batch:    {zero}"
                               f"\n              high_min: {zero}"
                               f"\n              high_max: {zero}")
                else:
                    out.append(f"\n    cpu: {cpu}"
                               f"\n              count: {zero}"
                               f"\n              high:  {zero}"
                               f"\n              batch: {zero}")
                out.append(f"\n  vm stats threshold: {zero}")
            out.append(f"\n  node_unreclaimable:  0"
                       f"\n  start_pfn:           {z.zone_start_pfn}")
            if k.zoneinfo_highatomic:
                out.append(f"\n  reserved_highatomic: {zero}"
                           f"\n  free_highatomic:     {zero}")
            out.append("\n")
    return "".join(out)


def meminfo_kb(m: MachineState) -> dict[str, int]:
    """MemTotal / MemFree in kB (the two /proc/meminfo lines hotmem models)."""
    kb = m.arch.page_size >> 10
    return {"MemTotal": m.totalram_pages() * kb,
            "MemFree": nr_free_pages(m) * kb}
