"""/proc/vmstat as mm/vmstat.c prints it (vmstat_show: "%s %lu").

Every counter of the era's file is printed.  hotmem models nr_free_pages
(NR_FREE_PAGES), nr_free_cma (0: no CMA), and nr_memmap_pages /
nr_memmap_boot_pages, the struct pages of hot-added and of boot sections
(mm/sparse-vmemmap.c memmap_pages_add() / memmap_boot_pages_add(): one
memmap per present section, whether it sits on the memory through an
altmap or came from the buddy; removed with the section).  They appear in
6.11 (15995a352474, named nr_memmap / nr_memmap_boot until a fix in the 6.11
cycle renamed them and made them system-wide); Debian's 6.12 prints them,
6.1 does not.  Every other counter is **0** (no reclaim, paging, NUMA
balancing or event is simulated).

Key sets: Debian's 6.1 config for releases before 6.11 and its 6.12 config
from 6.11 on, as captured in tests/data/oracle.
"""
from __future__ import annotations

import numpy as np

from ..constants import SECTION_IS_EARLY, SECTION_MARKED_PRESENT
from ..page_alloc import nr_free_pages
from ..state import MachineState
from .meminfo import balloon_pages

VMSTAT_6_1 = tuple("""
nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_mlock nr_bounce
nr_zspages nr_free_cma numa_hit numa_miss numa_foreign numa_interleave numa_local
numa_other nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file nr_unevictable
nr_slab_reclaimable nr_slab_unreclaimable nr_isolated_anon nr_isolated_file
workingset_nodes workingset_refault_anon workingset_refault_file workingset_activate_anon
workingset_activate_file workingset_restore_anon workingset_restore_file
workingset_nodereclaim nr_anon_pages nr_mapped nr_file_pages nr_dirty nr_writeback
nr_writeback_temp nr_shmem nr_shmem_hugepages nr_shmem_pmdmapped nr_file_hugepages
nr_file_pmdmapped nr_anon_transparent_hugepages nr_vmscan_write
nr_vmscan_immediate_reclaim nr_dirtied nr_written nr_throttled_written
nr_kernel_misc_reclaimable nr_foll_pin_acquired nr_foll_pin_released nr_kernel_stack
nr_page_table_pages nr_sec_page_table_pages nr_swapcached pgpromote_success
pgpromote_candidate nr_dirty_threshold nr_dirty_background_threshold pgpgin pgpgout pswpin
pswpout pgalloc_dma pgalloc_dma32 pgalloc_normal pgalloc_movable pgalloc_device
allocstall_dma allocstall_dma32 allocstall_normal allocstall_movable allocstall_device
pgskip_dma pgskip_dma32 pgskip_normal pgskip_movable pgskip_device pgfree pgactivate
pgdeactivate pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgreuse pgsteal_kswapd
pgsteal_direct pgdemote_kswapd pgdemote_direct pgscan_kswapd pgscan_direct
pgscan_direct_throttle pgscan_anon pgscan_file pgsteal_anon pgsteal_file
zone_reclaim_failed pginodesteal slabs_scanned kswapd_inodesteal
kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun pgrotated
drop_pagecache drop_slab oom_kill numa_pte_updates numa_huge_pte_updates numa_hint_faults
numa_hint_faults_local numa_pages_migrated pgmigrate_success pgmigrate_fail
thp_migration_success thp_migration_fail thp_migration_split compact_migrate_scanned
compact_free_scanned compact_isolated compact_stall compact_fail compact_success
compact_daemon_wake compact_daemon_migrate_scanned compact_daemon_free_scanned
htlb_buddy_alloc_success htlb_buddy_alloc_fail unevictable_pgs_culled
unevictable_pgs_scanned unevictable_pgs_rescued unevictable_pgs_mlocked
unevictable_pgs_munlocked unevictable_pgs_cleared unevictable_pgs_stranded thp_fault_alloc
thp_fault_fallback thp_fault_fallback_charge thp_collapse_alloc thp_collapse_alloc_failed
thp_file_alloc thp_file_fallback thp_file_fallback_charge thp_file_mapped thp_split_page
thp_split_page_failed thp_deferred_split_page thp_split_pmd thp_scan_exceed_none_pte
thp_scan_exceed_swap_pte thp_scan_exceed_share_pte thp_split_pud thp_zero_page_alloc
thp_zero_page_alloc_failed thp_swpout thp_swpout_fallback balloon_inflate balloon_deflate
balloon_migrate swap_ra swap_ra_hit ksm_swpin_copy cow_ksm zswpin zswpout
direct_map_level2_splits direct_map_level3_splits nr_unstable
""".split())
VMSTAT_6_12 = tuple("""
nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_mlock nr_bounce
nr_zspages nr_free_cma nr_unaccepted numa_hit numa_miss numa_foreign numa_interleave
numa_local numa_other nr_inactive_anon nr_active_anon nr_inactive_file nr_active_file
nr_unevictable nr_slab_reclaimable nr_slab_unreclaimable nr_isolated_anon nr_isolated_file
workingset_nodes workingset_refault_anon workingset_refault_file workingset_activate_anon
workingset_activate_file workingset_restore_anon workingset_restore_file
workingset_nodereclaim nr_anon_pages nr_mapped nr_file_pages nr_dirty nr_writeback
nr_writeback_temp nr_shmem nr_shmem_hugepages nr_shmem_pmdmapped nr_file_hugepages
nr_file_pmdmapped nr_anon_transparent_hugepages nr_vmscan_write
nr_vmscan_immediate_reclaim nr_dirtied nr_written nr_throttled_written
nr_kernel_misc_reclaimable nr_foll_pin_acquired nr_foll_pin_released nr_kernel_stack
nr_page_table_pages nr_sec_page_table_pages nr_iommu_pages nr_swapcached pgpromote_success
pgpromote_candidate pgdemote_kswapd pgdemote_direct pgdemote_khugepaged nr_dirty_threshold
nr_dirty_background_threshold nr_memmap_pages nr_memmap_boot_pages pgpgin pgpgout pswpin
pswpout pgalloc_dma pgalloc_dma32 pgalloc_normal pgalloc_movable pgalloc_device
allocstall_dma allocstall_dma32 allocstall_normal allocstall_movable allocstall_device
pgskip_dma pgskip_dma32 pgskip_normal pgskip_movable pgskip_device pgfree pgactivate
pgdeactivate pglazyfree pgfault pgmajfault pglazyfreed pgrefill pgreuse pgsteal_kswapd
pgsteal_direct pgsteal_khugepaged pgscan_kswapd pgscan_direct pgscan_khugepaged
pgscan_direct_throttle pgscan_anon pgscan_file pgsteal_anon pgsteal_file
zone_reclaim_success zone_reclaim_failed pginodesteal slabs_scanned kswapd_inodesteal
kswapd_low_wmark_hit_quickly kswapd_high_wmark_hit_quickly pageoutrun pgrotated
drop_pagecache drop_slab oom_kill numa_pte_updates numa_huge_pte_updates numa_hint_faults
numa_hint_faults_local numa_pages_migrated pgmigrate_success pgmigrate_fail
thp_migration_success thp_migration_fail thp_migration_split compact_migrate_scanned
compact_free_scanned compact_isolated compact_stall compact_fail compact_success
compact_daemon_wake compact_daemon_migrate_scanned compact_daemon_free_scanned
htlb_buddy_alloc_success htlb_buddy_alloc_fail unevictable_pgs_culled
unevictable_pgs_scanned unevictable_pgs_rescued unevictable_pgs_mlocked
unevictable_pgs_munlocked unevictable_pgs_cleared unevictable_pgs_stranded thp_fault_alloc
thp_fault_fallback thp_fault_fallback_charge thp_collapse_alloc thp_collapse_alloc_failed
thp_file_alloc thp_file_fallback thp_file_fallback_charge thp_file_mapped thp_split_page
thp_split_page_failed thp_deferred_split_page thp_underused_split_page thp_split_pmd
thp_scan_exceed_none_pte thp_scan_exceed_swap_pte thp_scan_exceed_share_pte thp_split_pud
thp_zero_page_alloc thp_zero_page_alloc_failed thp_swpout thp_swpout_fallback
balloon_inflate balloon_deflate balloon_migrate swap_ra swap_ra_hit swpin_zero swpout_zero
ksm_swpin_copy cow_ksm zswpin zswpout zswpwb direct_map_level2_splits
direct_map_level3_splits nr_unstable
""".split())


def memmap_pages(m: MachineState) -> tuple[int, int]:
    """(nr_memmap_pages, nr_memmap_boot_pages): memmap pages of the present
    hot-added sections and of the boot sections."""
    present = (m.sec_flags & SECTION_MARKED_PRESENT) != 0
    early = (m.sec_flags & SECTION_IS_EARLY) != 0
    per = m.arch.memmap_pages_per_section
    return (int(np.count_nonzero(present & ~early)) * per,
            int(np.count_nonzero(present & early)) * per)


def vmstat_keys(m: MachineState) -> tuple[str, ...]:
    k = m.kernel
    if k.at_least(6, 11):
        return VMSTAT_6_12
    return VMSTAT_6_1


def vmstat_values(m: MachineState) -> dict[str, int]:
    out = dict.fromkeys(vmstat_keys(m), 0)
    out["nr_free_pages"] = nr_free_pages(m)
    if "nr_memmap_pages" in out:
        out["nr_memmap_pages"], out["nr_memmap_boot_pages"] = memmap_pages(m)
    if "nr_balloon_pages" in out:      # in the key sets from 6.15 (NR_BALLOON_PAGES)
        out["nr_balloon_pages"] = balloon_pages(m)
    return out


def vmstat(m: MachineState) -> str:
    return "".join(f"{key} {value}\n" for key, value in vmstat_values(m).items())
