"""struct zone: spans and page counters of one zone of one node
(include/linux/mmzone.h).  Data only; what changes a zone lives in
page_alloc (watermarks) and memory_hotplug (spans on online / offline)."""
from __future__ import annotations

from .constants import MAX_NR_ZONES, ZONE_NAMES

ZoneSpanState = tuple[int, int, int, int, int, int, int, int, int, int]


class Zone:
    """struct zone: one zone of one node."""

    __slots__ = ("nid", "ztype", "zid", "configured", "zone_start_pfn", "spanned_pages",
                 "present_pages", "present_early_pages", "managed_pages",
                 "nr_isolate_pageblock", "cma_pages", "wmark_min", "wmark_low",
                 "wmark_high", "wmark_promo", "boot_ranges", "managed_unreserved")

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
        # managed pages adjust_managed_page_count() moved since the last
        # init_per_zone_wmark_min(), which lowmem_reserve does not count yet
        # (before 6.14, Kernel.lowmem_reserve_follows_managed)
        self.managed_unreserved = 0

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

    def span_state(self) -> ZoneSpanState:
        return (self.zone_start_pfn, self.spanned_pages, self.present_pages,
                self.present_early_pages, self.managed_pages, self.nr_isolate_pageblock,
                self.wmark_min, self.wmark_low, self.wmark_high, self.wmark_promo)

    def restore(self, state: ZoneSpanState) -> None:
        (self.zone_start_pfn, self.spanned_pages, self.present_pages,
         self.present_early_pages, self.managed_pages, self.nr_isolate_pageblock,
         self.wmark_min, self.wmark_low, self.wmark_high, self.wmark_promo) = state
