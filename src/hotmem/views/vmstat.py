"""/proc/vmstat as mm/vmstat.c prints it (vmstat_show: "%s %lu").

The keys, in order, are vmstat_text[]: the zone counters (zone_stat_names,
as /proc/zoneinfo), the NUMA events, the per-node counters (node_stat_names,
as /proc/zoneinfo's per-node stats), the system-wide ``nr_dirty_threshold``,
``nr_dirty_background_threshold`` and (6.11) ``nr_memmap_pages``,
``nr_memmap_boot_pages``, the vm events (VM_EVENTS), then the legacy
``nr_unstable 0``.  Each key carries the release that added or removed it
(docs/kernel-notes.md §11.5); the key list equals the kernel's in the 6.1,
6.12 and 7.3 x86_64 captures at every step, and the arm64 (6.12, 7.3) and
ppc64el (6.12, 7.2) ones.

hotmem models nr_free_pages (NR_FREE_PAGES) and nr_free_pages_blocks (6.15)
summed over the zones, nr_free_cma (0: no CMA), nr_balloon_pages (6.15, the
Hyper-V and Xen balloons' pages), and nr_memmap_pages /
nr_memmap_boot_pages, the struct pages of hot-added and of boot sections
(mm/sparse-vmemmap.c memmap_pages_add() / memmap_boot_pages_add(): one
memmap per present section, whether it sits on the memory through an
altmap or came from the buddy; removed with the section; 15995a352474,
6.11).  Every other counter is **0** (no reclaim, paging, NUMA balancing or
event is simulated).
"""
from __future__ import annotations

import numpy as np

from ..constants import SECTION_IS_EARLY, SECTION_MARKED_PRESENT, ZONE_NAMES
from ..page_alloc import nr_free_pages
from ..state import MachineState
from .meminfo import balloon_pages, config_cma
from .procfs import (
    NUMA_STATS,
    PGDEMOTE_NODE_STATS,
    RECLAIM_NODE_STATS,
    node_stat_names,
    node_zones,
    online_nodes,
    zone_nr_free_pages_blocks,
    zone_stat_names,
)

_ALWAYS = (0, 0)
#: enum vm_stat_item (NR_DIRTY_THRESHOLD ...): name, first release
VM_STATS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("nr_dirty_threshold", _ALWAYS), ("nr_dirty_background_threshold", _ALWAYS),
    ("nr_memmap_pages", (6, 11)), ("nr_memmap_boot_pages", (6, 11)),
)

# Kconfig conditions of vm events that differ between the configs hotmem
# models (every other #ifdef of vm_event_item.h is set in Debian's configs)
CMA = "CONFIG_CMA"                      # meminfo.config_cma()
X86 = "CONFIG_X86"
PUD_THP = "CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD"
ZONES = "FOR_ALL_ZONES"                 # one key per configured zone

# enum vm_event_item (include/linux/vm_event_item.h, vmstat_text[]) of the
# Debian configs: name, first release that prints it, first release that no
# longer does, Kconfig condition.  Verified lists: 6.1.192, 6.12.117 and 7.3.4
# (x86_64 captures, Debian source), 7.2.13 (mm/vmstat.c, ppc64el capture).
# "taken": the first merge window after the patch mail, not checked against a
# tag (docs/kernel-notes.md §11.5).
VmEvent = tuple[str, tuple[int, int], tuple[int, int] | None, str | None]
VM_EVENTS: tuple[VmEvent, ...] = (
    ("pgpgin", _ALWAYS, None, None), ("pgpgout", _ALWAYS, None, None),
    ("pswpin", _ALWAYS, None, None), ("pswpout", _ALWAYS, None, None),
    ("pgalloc", _ALWAYS, None, ZONES), ("allocstall", _ALWAYS, None, ZONES),
    ("pgskip", _ALWAYS, None, ZONES),
    ("pgfree", _ALWAYS, None, None), ("pgactivate", _ALWAYS, None, None),
    ("pgdeactivate", _ALWAYS, None, None), ("pglazyfree", _ALWAYS, None, None),
    ("pgfault", _ALWAYS, None, None), ("pgmajfault", _ALWAYS, None, None),
    ("pglazyfreed", _ALWAYS, None, None),
    ("pgrefill", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgreuse", _ALWAYS, None, None),
    ("pgsteal_kswapd", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgsteal_direct", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgsteal_khugepaged", (6, 2), RECLAIM_NODE_STATS, None),     # 6.2 (taken)
    ("pgsteal_proactive", (6, 15), RECLAIM_NODE_STATS, None),     # 6.15 (taken)
    ("pgdemote_kswapd", _ALWAYS, PGDEMOTE_NODE_STATS, None),
    ("pgdemote_direct", _ALWAYS, PGDEMOTE_NODE_STATS, None),
    ("pgdemote_khugepaged", (6, 2), PGDEMOTE_NODE_STATS, None),
    ("pgscan_kswapd", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgscan_direct", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgscan_khugepaged", (6, 2), RECLAIM_NODE_STATS, None),
    ("pgscan_proactive", (6, 15), RECLAIM_NODE_STATS, None),
    ("pgscan_direct_throttle", _ALWAYS, None, None),
    ("pgscan_anon", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgscan_file", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgsteal_anon", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("pgsteal_file", _ALWAYS, RECLAIM_NODE_STATS, None),
    ("zone_reclaim_success", (6, 12), None, None),                # 6.12 (taken)
    ("zone_reclaim_failed", _ALWAYS, None, None),
    ("pginodesteal", _ALWAYS, None, None), ("slabs_scanned", _ALWAYS, None, None),
    ("kswapd_inodesteal", _ALWAYS, None, None),
    ("kswapd_low_wmark_hit_quickly", _ALWAYS, None, None),
    ("kswapd_high_wmark_hit_quickly", _ALWAYS, None, None),
    ("pageoutrun", _ALWAYS, None, None), ("pgrotated", _ALWAYS, None, None),
    ("drop_pagecache", _ALWAYS, None, None), ("drop_slab", _ALWAYS, None, None),
    ("oom_kill", _ALWAYS, None, None),
    ("numa_pte_updates", _ALWAYS, None, None), ("numa_huge_pte_updates", _ALWAYS, None, None),
    ("numa_hint_faults", _ALWAYS, None, None), ("numa_hint_faults_local", _ALWAYS, None, None),
    ("numa_pages_migrated", _ALWAYS, None, None),
    ("pgmigrate_success", _ALWAYS, None, None), ("pgmigrate_fail", _ALWAYS, None, None),
    ("thp_migration_success", _ALWAYS, None, None), ("thp_migration_fail", _ALWAYS, None, None),
    ("thp_migration_split", _ALWAYS, None, None),
    ("compact_migrate_scanned", _ALWAYS, None, None),
    ("compact_free_scanned", _ALWAYS, None, None), ("compact_isolated", _ALWAYS, None, None),
    ("compact_stall", _ALWAYS, None, None), ("compact_fail", _ALWAYS, None, None),
    ("compact_success", _ALWAYS, None, None), ("compact_daemon_wake", _ALWAYS, None, None),
    ("compact_daemon_migrate_scanned", _ALWAYS, None, None),
    ("compact_daemon_free_scanned", _ALWAYS, None, None),
    ("htlb_buddy_alloc_success", _ALWAYS, None, None),
    ("htlb_buddy_alloc_fail", _ALWAYS, None, None),
    ("cma_alloc_success", _ALWAYS, None, CMA), ("cma_alloc_fail", _ALWAYS, None, CMA),
    ("unevictable_pgs_culled", _ALWAYS, None, None),
    ("unevictable_pgs_scanned", _ALWAYS, None, None),
    ("unevictable_pgs_rescued", _ALWAYS, None, None),
    ("unevictable_pgs_mlocked", _ALWAYS, None, None),
    ("unevictable_pgs_munlocked", _ALWAYS, None, None),
    ("unevictable_pgs_cleared", _ALWAYS, None, None),
    ("unevictable_pgs_stranded", _ALWAYS, None, None),
    ("thp_fault_alloc", _ALWAYS, None, None), ("thp_fault_fallback", _ALWAYS, None, None),
    ("thp_fault_fallback_charge", _ALWAYS, None, None),
    ("thp_collapse_alloc", _ALWAYS, None, None),
    ("thp_collapse_alloc_failed", _ALWAYS, None, None),
    ("thp_file_alloc", _ALWAYS, None, None), ("thp_file_fallback", _ALWAYS, None, None),
    ("thp_file_fallback_charge", _ALWAYS, None, None), ("thp_file_mapped", _ALWAYS, None, None),
    ("thp_split_page", _ALWAYS, None, None), ("thp_split_page_failed", _ALWAYS, None, None),
    ("thp_deferred_split_page", _ALWAYS, None, None),
    ("thp_underused_split_page", (6, 12), None, None),            # 6.12 (taken)
    ("thp_split_pmd", _ALWAYS, None, None),
    ("thp_scan_exceed_none_pte", _ALWAYS, None, None),
    ("thp_scan_exceed_swap_pte", _ALWAYS, None, None),
    ("thp_scan_exceed_share_pte", _ALWAYS, None, None),
    ("thp_split_pud", _ALWAYS, None, PUD_THP),
    ("thp_zero_page_alloc", _ALWAYS, None, None),
    ("thp_zero_page_alloc_failed", _ALWAYS, None, None),
    ("thp_swpout", _ALWAYS, None, None), ("thp_swpout_fallback", _ALWAYS, None, None),
    ("balloon_inflate", _ALWAYS, None, None), ("balloon_deflate", _ALWAYS, None, None),
    ("balloon_migrate", _ALWAYS, None, None),
    ("swap_ra", _ALWAYS, None, None), ("swap_ra_hit", _ALWAYS, None, None),
    ("swpin_zero", (6, 12), None, None), ("swpout_zero", (6, 12), None, None),  # 6.12
    ("ksm_swpin_copy", _ALWAYS, None, None), ("cow_ksm", _ALWAYS, None, None),
    ("zswpin", _ALWAYS, None, None), ("zswpout", _ALWAYS, None, None),
    ("zswpwb", (6, 8), None, None),                               # 6.8 (taken)
    ("direct_map_level2_splits", _ALWAYS, None, X86),
    ("direct_map_level3_splits", _ALWAYS, None, X86),
    ("direct_map_level2_collapses", (6, 15), None, X86),          # 6.15 (taken)
    ("direct_map_level3_collapses", (6, 15), None, X86),
    ("nrswpin", (7, 3), None, None), ("nrswpout", (7, 3), None, None),  # 7.3 (verified)
)


def config_pud_thp(m: MachineState) -> bool:
    """CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: x86_64 ("if X86_64") and
    ppc64 book3s (its 6.12 and 7.2 captures print thp_split_pud); not arm64
    (its 6.12 and 7.3 captures do not) nor s390x (not selected); riscv64 "if
    64BIT && MMU" from "riscv: Add support for PUD THP" (PM 2025-03-21, three
    days before 6.15's merge window: taken as 6.16)."""
    name = m.arch.name
    if name.startswith("riscv64"):
        return m.kernel.at_least(6, 16)
    return name.startswith(("x86", "ppc64"))


def _condition(m: MachineState, cond: str | None) -> bool:
    if cond == CMA:
        return config_cma(m)
    if cond == X86:
        return m.arch.name.startswith("x86")
    if cond == PUD_THP:
        return config_pud_thp(m)
    return True


def vm_event_names(m: MachineState) -> list[str]:
    """vmstat_text[] of enum vm_event_item in this era, arch and config."""
    k = (m.kernel.major, m.kernel.minor)
    zones = [ZONE_NAMES[z].lower() for z in sorted(m.arch.zones)]
    names: list[str] = []
    for name, since, until, cond in VM_EVENTS:
        if k < since or (until is not None and k >= until) or not _condition(m, cond):
            continue
        if cond == ZONES:       # TEXTS_FOR_ZONES: DMA, DMA32, Normal, Movable, Device
            names += [f"{name}_{z}" for z in zones]
        else:
            names.append(name)
    return names


def vmstat_keys(m: MachineState) -> tuple[str, ...]:
    """Every key of /proc/vmstat, in vmstat_text[] order."""
    k = (m.kernel.major, m.kernel.minor)
    return tuple(zone_stat_names(m) + list(NUMA_STATS) + node_stat_names(m)
                 + [name for name, since in VM_STATS if k >= since]
                 + vm_event_names(m) + ["nr_unstable"])


def memmap_pages(m: MachineState) -> tuple[int, int]:
    """(nr_memmap_pages, nr_memmap_boot_pages): memmap pages of the present
    hot-added sections and of the boot sections."""
    present = (m.sec_flags & SECTION_MARKED_PRESENT) != 0
    early = (m.sec_flags & SECTION_IS_EARLY) != 0
    per = m.arch.memmap_pages_per_section
    return (int(np.count_nonzero(present & ~early)) * per,
            int(np.count_nonzero(present & early)) * per)


def vmstat_values(m: MachineState) -> dict[str, int]:
    out = dict.fromkeys(vmstat_keys(m), 0)
    out["nr_free_pages"] = nr_free_pages(m)
    if "nr_free_pages_blocks" in out:
        out["nr_free_pages_blocks"] = sum(zone_nr_free_pages_blocks(m, z)
                                          for nid in online_nodes(m)
                                          for z in node_zones(m, nid) if z.populated())
    if "nr_memmap_pages" in out:
        out["nr_memmap_pages"], out["nr_memmap_boot_pages"] = memmap_pages(m)
    if "nr_balloon_pages" in out:
        out["nr_balloon_pages"] = balloon_pages(m)
    return out


def vmstat(m: MachineState) -> str:
    return "".join(f"{key} {value}\n" for key, value in vmstat_values(m).items())
