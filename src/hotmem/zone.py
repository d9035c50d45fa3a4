"""Zones and nodes: spans, present / managed accounting, watermarks, zone choice.

Names follow include/linux/mmzone.h and mm/memory_hotplug.c.
"""
from __future__ import annotations

from math import isqrt
from typing import TYPE_CHECKING

from .arch import MAX_NR_ZONES, ZONE_DEVICE, ZONE_MOVABLE, ZONE_NAMES, ZONE_NORMAL

if TYPE_CHECKING:
    from .machine import Machine

# online types (enum mmop)
MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE = range(4)
ONLINE_TYPES = {"offline": MMOP_OFFLINE, "online": MMOP_ONLINE,
                "online_kernel": MMOP_ONLINE_KERNEL, "online_movable": MMOP_ONLINE_MOVABLE}
ONLINE_TYPE_NAMES = {v: k for k, v in ONLINE_TYPES.items()}

SWAP_CLUSTER_MAX = 32
WATERMARK_SCALE_FACTOR = 10  # vm.watermark_scale_factor default
MIGRATE_PCPTYPES = 3


class Zone:
    """struct zone: one zone of one node."""

    __slots__ = ("nid", "ztype", "zid", "configured", "zone_start_pfn", "spanned_pages",
                 "present_pages", "present_early_pages", "managed_pages",
                 "nr_isolate_pageblock", "cma_pages", "wmark_min", "wmark_low",
                 "wmark_high", "wmark_promo", "boot_ranges")

    def __init__(self, nid: int, ztype: int, configured: bool):
        self.nid = nid
        self.ztype = ztype
        self.zid = nid * MAX_NR_ZONES + ztype
        self.configured = configured
        self.zone_start_pfn = 0
        self.spanned_pages = 0
        self.present_pages = 0
        self.present_early_pages = 0
        self.managed_pages = 0
        self.nr_isolate_pageblock = 0
        self.cma_pages = 0
        self.wmark_min = self.wmark_low = self.wmark_high = self.wmark_promo = 0
        self.boot_ranges: list[tuple[int, int]] = []

    @property
    def name(self) -> str:
        return ZONE_NAMES[self.ztype]

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    def is_empty(self) -> bool:
        """zone_is_empty(): spans nothing."""
        return self.spanned_pages == 0

    def populated(self) -> bool:
        """populated_zone(): has present pages."""
        return self.present_pages != 0

    def intersects(self, start_pfn: int, nr_pages: int) -> bool:
        """zone_intersects()."""
        if self.is_empty():
            return False
        if start_pfn >= self.zone_end_pfn or start_pfn + nr_pages <= self.zone_start_pfn:
            return False
        return True

    def resize_range(self, start_pfn: int, nr_pages: int) -> None:
        """resize_zone_range(): grow the span to cover [start_pfn, +nr_pages)."""
        old_end = self.zone_end_pfn
        if self.is_empty() or start_pfn < self.zone_start_pfn:
            self.zone_start_pfn = start_pfn
        self.spanned_pages = max(start_pfn + nr_pages, old_end) - self.zone_start_pfn

    def span_state(self) -> tuple:
        return (self.zone_start_pfn, self.spanned_pages, self.present_pages,
                self.present_early_pages, self.managed_pages, self.nr_isolate_pageblock,
                self.wmark_min, self.wmark_low, self.wmark_high, self.wmark_promo)

    def restore(self, state: tuple) -> None:
        (self.zone_start_pfn, self.spanned_pages, self.present_pages,
         self.present_early_pages, self.managed_pages, self.nr_isolate_pageblock,
         self.wmark_min, self.wmark_low, self.wmark_high, self.wmark_promo) = state


def shrink_zone_span(m: "Machine", zone: Zone, start_pfn: int, end_pfn: int) -> None:
    """shrink_zone_span(): after [start_pfn, end_pfn) left the zone, move the span
    edges to the nearest pfn still online in the zone (subsection granularity)."""
    if zone.zone_start_pfn == start_pfn:
        pfn = m.find_zone_pfn(zone.zid, end_pfn, zone.zone_end_pfn, reverse=False)
        if pfn >= 0:
            zone.spanned_pages = zone.zone_end_pfn - pfn
            zone.zone_start_pfn = pfn
        else:
            zone.zone_start_pfn = 0
            zone.spanned_pages = 0
    elif zone.zone_end_pfn == end_pfn:
        pfn = m.find_zone_pfn(zone.zid, zone.zone_start_pfn, start_pfn, reverse=True)
        if pfn >= 0:
            zone.spanned_pages = pfn - zone.zone_start_pfn + 1
        else:
            zone.zone_start_pfn = 0
            zone.spanned_pages = 0


# ---------------------------------------------------------------- watermarks

def nr_free_buffer_pages(zones: list[Zone]) -> int:
    """nr_free_zone_pages(gfp_zone(GFP_USER)): managed above the high watermark."""
    n = 0
    for z in zones:
        if z.ztype <= ZONE_NORMAL and z.managed_pages > z.wmark_high:
            n += z.managed_pages - z.wmark_high
    return n


def calculate_min_free_kbytes(zones: list[Zone], page_size: int) -> int:
    """calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16), clamped."""
    lowmem_kbytes = nr_free_buffer_pages(zones) * (page_size >> 10)
    return min(max(isqrt(lowmem_kbytes * 16), 128), 262144)


def recommended_min_free_kbytes(zones: list[Zone], pageblock_nr_pages: int,
                                page_shift: int) -> int:
    """khugepaged's set_recommended_min_free_kbytes() (THP enabled)."""
    nr_zones = 0
    for z in zones:
        if z.present_pages and z.ztype <= ZONE_NORMAL:
            nr_zones += 1
    rec = pageblock_nr_pages * nr_zones * 2
    rec += pageblock_nr_pages * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    rec = min(rec, nr_free_buffer_pages(zones) // 20)
    return rec << (page_shift - 10)


def setup_per_zone_wmarks(zones: list[Zone], min_free_kbytes: int, page_shift: int,
                          movable_like_highmem: bool = True) -> None:
    """__setup_per_zone_wmarks(); ZONE_MOVABLE is treated like highmem from 6.12."""
    pages_min = min_free_kbytes >> (page_shift - 10)
    lowmem_pages = 0
    for z in zones:
        if z.ztype != ZONE_DEVICE and (z.ztype != ZONE_MOVABLE or not movable_like_highmem):
            lowmem_pages += z.managed_pages
    for z in zones:
        managed = z.managed_pages
        tmp = pages_min * managed // lowmem_pages if lowmem_pages else 0
        if z.ztype == ZONE_MOVABLE and movable_like_highmem:
            # like highmem: a small min that does not depend on lowmem
            wmin = min(max(managed // 1024, SWAP_CLUSTER_MAX), 128)
        else:
            wmin = tmp
        tmp = max(tmp >> 2, managed * WATERMARK_SCALE_FACTOR // 10000)
        z.wmark_min = wmin
        z.wmark_low = wmin + tmp
        z.wmark_high = wmin + 2 * tmp
        z.wmark_promo = wmin + 3 * tmp


# ---------------------------------------------------------------- zone choice

def default_kernel_zone_for_pfn(m: "Machine", nid: int, start_pfn: int, nr_pages: int) -> Zone:
    """The first zone below ZONE_NORMAL intersecting the range, else ZONE_NORMAL."""
    for ztype in range(ZONE_NORMAL):
        z = m.zone(nid, ztype)
        if z.intersects(start_pfn, nr_pages):
            return z
    return m.zone(nid, ZONE_NORMAL)


def default_zone_for_pfn(m: "Machine", nid: int, start_pfn: int, nr_pages: int) -> Zone:
    """contig-zones: keep the range in the one zone it already intersects."""
    kernel_zone = default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    movable_zone = m.zone(nid, ZONE_MOVABLE)
    in_kernel = kernel_zone.intersects(start_pfn, nr_pages)
    in_movable = movable_zone.intersects(start_pfn, nr_pages)
    if in_kernel ^ in_movable:
        return kernel_zone if in_kernel else movable_zone
    return movable_zone if m.movable_node else kernel_zone


def auto_movable_can_online_movable(m: "Machine", nid: int | None, nr_pages: int) -> bool:
    """Would nr_pages more in ZONE_MOVABLE keep MOVABLE:KERNEL_EARLY within the ratio?"""
    kernel_early = movable = 0
    for z in m.zones:
        if nid is not None and z.nid != nid:
            continue
        if not z.populated():
            continue
        if z.ztype == ZONE_MOVABLE:
            movable += z.present_pages
        else:
            kernel_early += z.present_early_pages - z.cma_pages
            movable += z.cma_pages
    movable += nr_pages
    return movable <= (m.auto_movable_ratio * kernel_early) // 100


def auto_movable_zone_for_pfn(m: "Machine", nid: int, group, start_pfn: int,
                              nr_pages: int) -> Zone:
    """online_policy=auto-movable; hot-added DIMMs are static memory groups."""
    if m.auto_movable_ratio:
        if group is not None:
            max_pages = group.max_pages
            online_pages = group.present_movable_pages
            if group.present_kernel_pages:
                return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
        else:
            max_pages, online_pages = nr_pages, 0
        want = max_pages - online_pages
        if (auto_movable_can_online_movable(m, None, want)
                and (not m.auto_movable_numa_aware
                     or auto_movable_can_online_movable(m, nid, want))):
            return m.zone(nid, ZONE_MOVABLE)
    return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)


def zone_for_pfn_range(m: "Machine", online_type: int, nid: int, group, start_pfn: int,
                       nr_pages: int) -> Zone:
    """zone_for_pfn_range(): the zone an online of this type would use."""
    if online_type == MMOP_ONLINE_KERNEL:
        return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    if online_type == MMOP_ONLINE_MOVABLE:
        return m.zone(nid, ZONE_MOVABLE)
    if m.online_policy == "auto-movable":
        return auto_movable_zone_for_pfn(m, nid, group, start_pfn, nr_pages)
    return default_zone_for_pfn(m, nid, start_pfn, nr_pages)
