"""mm/page_isolation.c as hotmem models it: isolating the pageblocks of a range
before offlining, and the two checks around it, as word-wise scans of the
compiled core."""
from __future__ import annotations

from .constants import ZONE_MOVABLE
from .mmzone import Zone
from .state import MachineState


def unmovable_page(m: MachineState, zone: Zone, start: int, end: int,
                   skip_vmemmap: bool = False) -> int:
    """has_unmovable_pages() as start_isolate_page_range() asks it: the first
    pfn of [start, end) that is PG_reserved (vmemmap pages skipped when the
    design asks) or, outside ZONE_MOVABLE, an unmovable allocation; -1."""
    return m.pages.has_unmovable(start, end, zone.ztype == ZONE_MOVABLE, skip_vmemmap)


def start_isolate_page_range(m: MachineState, zone: Zone, start: int, end: int) -> int:
    """Put the pageblocks of [start, end) on MIGRATE_ISOLATE (the caller has
    checked unmovable_page); returns the pageblocks isolated."""
    n = m.pages.isolate(start, end)
    zone.nr_isolate_pageblock += n
    return n


def undo_isolate_page_range(m: MachineState, zone: Zone, start: int, end: int) -> int:
    """Back to their migratetype, free blocks merged again; returns the pageblocks."""
    n = m.pages.unisolate(start, end)
    zone.nr_isolate_pageblock -= n
    return n


def test_pages_isolated(m: MachineState, start: int, end: int, skip_vmemmap: bool = False,
                        skip_offline: bool = False) -> int:
    """The first pfn of [start, end) that is neither free nor (when skipped) a
    vmemmap page or a PageOffline page, or -1 when the whole range is isolated
    and free."""
    return m.pages.first_not_free(start, end, skip_vmemmap, skip_offline)
