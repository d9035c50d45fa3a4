"""Memory hotplug operations with mainline semantics: add_memory, memory block
online / offline (drivers/base/memory.c + mm/memory_hotplug.c), try_remove_memory.

Every operation checks all that can fail before it changes anything, so a
failure leaves the machine exactly as it was (the kernel undoes its work; see
docs/kernel-notes.md for the places where its undo is not exact).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .altmap import VmemAltmap, vmemmap_pages_per_block
from .arch import GiB, ZONE_MOVABLE
from .errors import ConfigError, HotplugError
from .machine import (MEM_OFFLINE, MEM_ONLINE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE,
                      P_BUDDY, P_UNMOVABLE, P_VMEMMAP, SECTION_HAS_MEM_MAP, SECTION_IS_ONLINE,
                      SECTION_MARKED_PRESENT, MemoryGroup)
from .page_alloc import alloc_memmap, memmap_chunks_needed, migration_room, migration_targets
from .units import parse_addr, parse_size
from .zone import (MMOP_OFFLINE, MMOP_ONLINE_MOVABLE, ONLINE_TYPES, shrink_zone_span,
                   zone_for_pfn_range)

if TYPE_CHECKING:
    from .machine import Machine

DRIVERS = ("acpi", "direct")
# offline_pages() retries migration until a signal arrives.  hotmem's state is
# deterministic, so a round that cannot make progress never will: it ends the
# offline at once with the -EINTR a signal (the user's timeout) would give.


def _addr(m: "Machine", pfn: int) -> int:
    return pfn << m.arch.page_shift


def default_add_start(m: "Machine") -> int:
    """Right after the highest present memory, block aligned; on x86 never
    below 4 GiB (the PCI hole), as QEMU's device-memory region starts there."""
    end = max(m.max_pfn() << m.arch.page_shift,
              max(e for _, e in m.boot_ranges) << m.arch.page_shift)
    if m.arch.pc_layout:
        end = max(end, 4 * GiB)
    return -(-end // m.block_size) * m.block_size


# ---------------------------------------------------------------- hot-add

def _populate_altmap(m: "Machine", altmap: VmemAltmap, start_pfn: int) -> None:
    """vmemmap_populate() of one block from its altmap: each mapping unit (a PMD
    leaf, or a base page) of the block's memmap, section by section ascending."""
    a = m.arch
    unit = a.vmemmap_chunk_pages
    unit_bytes = unit << a.page_shift
    mapped: set[int] = set()
    for k in range(m.sections_per_block):
        vs = (start_pfn + k * a.pages_per_section) * a.struct_page_size
        ve = vs + a.memmap_bytes_per_section
        for u in range(vs // unit_bytes, -(-ve // unit_bytes)):
            if u in mapped:
                continue
            if altmap.alloc_block_buf(unit) is None:
                raise HotplugError("ENOMEM", f"altmap of the block at pfn {start_pfn:#x} "
                                   f"cannot hold its memmap", pfn=start_pfn)
            mapped.add(u)


def _memmap_units(m: "Machine") -> tuple[int, int]:
    """(mapping units per block, pages per unit) for a memmap not on the memory."""
    a = m.arch
    unit = a.vmemmap_chunk_pages
    per_block = -(-(m.pages_per_block * a.struct_page_size) // (unit << a.page_shift))
    return per_block, unit


def add_memory(m: "Machine", start=None, size="128M", nid: int = 0,
               driver: str = "acpi") -> list[int]:
    """add_memory() of one device, as the ACPI memory driver calls it (``acpi``)
    or as a caller that always passes MHP_MEMMAP_ON_MEMORY (``direct``).
    Returns the ids of the new memory blocks (offline unless auto-onlined)."""
    size = parse_size(size, "size")
    start = default_add_start(m) if start is None else parse_addr(start, "start")
    if driver not in DRIVERS:
        raise ConfigError(f"add: driver {driver!r} is not one of {', '.join(DRIVERS)}")
    if not isinstance(nid, int) or not 0 <= nid < m.nr_nodes:
        raise HotplugError("EINVAL", f"node {nid} is not possible")
    bs = m.block_size
    if size == 0 or start % bs or size % bs:
        raise HotplugError("EINVAL", f"Block size [{bs:#x}] unaligned hotplug range: "
                           f"start {start:#x}, size {size:#x}")
    if start + size > m.max_phys:
        raise HotplugError("E2BIG", f"Hotplug memory [{start:#x}-{start + size - 1:#x}] exceeds "
                           f"maximum addressable address {m.max_phys - 1:#x}")
    a = m.arch
    spfn, epfn = start >> a.page_shift, (start + size) >> a.page_shift
    for s, e in m.boot_ranges:
        if s < epfn and e > spfn:
            raise HotplugError("EEXIST", f"[mem {start:#x}-{start + size - 1:#x}] overlaps "
                               f"boot System RAM")
    blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
    busy = blocks[m.blk_state[blocks] != 0]
    if len(busy):
        raise HotplugError("EEXIST", f"[mem {start:#x}-{start + size - 1:#x}] overlaps "
                           f"memory{int(busy[0])}, already added", block=int(busy[0]))

    supported, why = m.mode_verdict(size)
    if driver == "direct" and m.memmap_on_memory != "n" and not supported \
            and m.design == "mainline" and m.kernel.explicit_request_fails:
        raise HotplugError("EINVAL", f"MHP_MEMMAP_ON_MEMORY requested for [mem {start:#x}-"
                           f"{start + size - 1:#x}] but not supported: {why}")
    if m.design != "mainline":
        from . import rfc2018
        return rfc2018.add_memory(m, spfn, epfn, nid, supported)

    alt = None
    if supported:
        # one altmap per block (6.8 splits multi-block requests; before, only
        # single-block requests got here)
        alt = VmemAltmap(base_pfn=spfn, end_pfn=spfn + m.pages_per_block - 1,
                         free=vmemmap_pages_per_block(a, bs, m.memmap_on_memory))
        if m.kernel.explicit_request_fails:
            # 5.13 .. 6.5: the altmap offers the whole block; what population
            # consumed becomes memory_block.nr_vmemmap_pages
            alt.free = m.pages_per_block
        _populate_altmap(m, alt, spfn)
        if m.kernel.explicit_request_fails:
            alt.free = alt.alloc + alt.align
    else:
        check_memmap_room(m, spfn, epfn, nid)

    # nothing can fail from here on
    g = register_added_range(m, spfn, epfn, nid, memmap_on_memory=alt is not None)
    blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
    if alt is not None:
        m.blk_altmap[blocks] = True
        m.alt_free[blocks] = alt.free
        m.alt_alloc[blocks] = alt.alloc
        m.alt_align[blocks] = alt.align
    else:
        memmap_from_buddy(m, blocks, nid)
    return auto_online(m, blocks, g)


def check_memmap_room(m: "Machine", spfn: int, epfn: int, nid: int) -> None:
    """ENOMEM unless the node's online memory can hold the memmap of the range."""
    units, unit = _memmap_units(m)
    nblocks = (epfn - spfn) // m.pages_per_block
    why_not = memmap_chunks_needed(m, units * unit * nblocks, unit, nid)
    if why_not:
        raise HotplugError("ENOMEM", f"hot-add of [mem {_addr(m, spfn):#x}-"
                           f"{_addr(m, epfn) - 1:#x}] failed: {why_not}")


def register_added_range(m: "Machine", spfn: int, epfn: int, nid: int,
                         memmap_on_memory: bool) -> MemoryGroup:
    """Sections present, memory blocks offline, one static memory group."""
    gid = m._next_gid
    m._next_gid += 1
    g = MemoryGroup(gid, nid, spfn, epfn - spfn, epfn - spfn,
                    memmap_on_memory=memmap_on_memory)
    m.groups[gid] = g
    pps = m.arch.pages_per_section
    secs = slice(spfn // pps, epfn // pps)
    m.sec_flags[secs] = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
    m.sec_nid[secs] = nid
    m.max_pfn_seen = max(m.max_pfn_seen, epfn)
    blocks = slice(spfn // m.pages_per_block, epfn // m.pages_per_block)
    m.blk_state[blocks] = MEM_OFFLINE
    m.blk_nid[blocks] = nid
    m.blk_group[blocks] = gid
    m.blk_early[blocks] = False
    m.blk_zone[blocks] = -1
    return g


def memmap_from_buddy(m: "Machine", blocks, nid: int) -> None:
    """The memmap of each block from the node's online memory (no altmap)."""
    units, unit = _memmap_units(m)
    for blk in blocks:
        m.memmap_from_buddy[int(blk)] = alloc_memmap(m, units, unit, nid)
    m.init_per_zone_wmark_min()


def auto_online(m: "Machine", blocks, g: MemoryGroup) -> list[int]:
    """Online new blocks with auto_online_blocks; failures are noted, not retried
    (the kernel does not retry either).  Returns the block ids."""
    if m.auto_online_blocks != "offline":
        for blk in blocks:
            try:
                online_block(m, int(blk), m.auto_online_blocks)
            except HotplugError as err:
                g.notes.append(f"auto-online of memory{int(blk)} failed: {err}")
    return [int(b) for b in blocks]


# ---------------------------------------------------------------- online

def _check_block(m: "Machine", blk) -> int:
    if isinstance(blk, bool) or not isinstance(blk, (int, np.integer)):
        raise ConfigError(f"block id must be a whole number, got {blk!r}")
    blk = int(blk)
    if not 0 <= blk < m.nr_blocks or not m.blk_state[blk]:
        raise HotplugError("EINVAL", f"memory{blk} does not exist", block=blk)
    return blk


def move_pfn_range_to_zone(m: "Machine", zone, start: int, nr: int, migratetype: int) -> None:
    """Span the zone over the range and initialise its pageblocks."""
    zone.resize_range(start, nr)
    m.pages.set_pageblocks(start, start + nr, migratetype, zone.zid)


def online_mem_sections(m: "Machine", start: int, end: int, online: bool = True) -> None:
    pps = m.arch.pages_per_section
    secs = slice(start // pps, -(-end // pps))
    if online:
        m.sec_flags[secs] |= SECTION_IS_ONLINE
    else:
        m.sec_flags[secs] &= ~np.uint8(SECTION_IS_ONLINE)


def adjust_present_page_count(m: "Machine", zone, blk: int, nr: int) -> None:
    zone.present_pages += nr
    if m.blk_early[blk]:
        zone.present_early_pages += nr
    group = m.group_of_block(blk)
    if group is not None:
        if zone.ztype == ZONE_MOVABLE:
            group.present_movable_pages += nr
        else:
            group.present_kernel_pages += nr


def online_block(m: "Machine", blk: int, online_type: str = "online"):
    """memory_block_online() through a write of ``online_type`` to memoryN/state.
    Returns the zone the block went to."""
    blk = _check_block(m, blk)
    if online_type not in ONLINE_TYPES or ONLINE_TYPES[online_type] == MMOP_OFFLINE:
        raise HotplugError("EINVAL", f"'{online_type}' is not an online type "
                           "(online, online_kernel, online_movable)", block=blk)
    if m.blk_state[blk] != MEM_OFFLINE:
        raise HotplugError("EINVAL", f"memory{blk} is already online", block=blk)
    if m.design != "mainline":
        from . import rfc2018
        return rfc2018.online_block(m, blk, ONLINE_TYPES[online_type])
    start, end = m.block_range(blk)
    nid = int(m.blk_nid[blk])
    zone = zone_for_pfn_range(m, ONLINE_TYPES[online_type], nid, m.group_of_block(blk),
                              start, m.pages_per_block)
    nr_vmemmap = m.nr_vmemmap_pages(blk)
    p = m.pages
    if nr_vmemmap:
        # mhp_init_memmap_on_memory(): the memmap pages join the zone, unmovable
        move_pfn_range_to_zone(m, zone, start, nr_vmemmap, MIGRATE_UNMOVABLE)
        p.set(P_VMEMMAP, start, start + nr_vmemmap)
        if nr_vmemmap >= m.arch.pages_per_section:
            pps = m.arch.pages_per_section
            online_mem_sections(m, start, (start + nr_vmemmap) // pps * pps)
    online_pages(m, zone, blk, start + nr_vmemmap, end)
    if nr_vmemmap:
        adjust_present_page_count(m, zone, blk, nr_vmemmap)
    m.blk_zone[blk] = zone.zid
    m.blk_state[blk] = MEM_ONLINE
    return zone


def online_pages(m: "Machine", zone, blk: int, start: int, end: int,
                 strategy: str | None = None) -> int:
    """online_pages(): isolated pageblocks, ctz chunks freed to the buddy tail,
    present accounting, un-isolation, watermarks.  Returns pages freed."""
    from . import _core
    nr = end - start
    p = m.pages
    move_pfn_range_to_zone(m, zone, start, nr, MIGRATE_MOVABLE)
    isolated = p.isolate(start, end)
    zone.nr_isolate_pageblock += isolated
    freed = p.free_range(start, end, _core.FREE_STRATEGIES[strategy or
                                                           m.kernel.online_free_strategy])
    zone.managed_pages += freed
    online_mem_sections(m, start, end)
    adjust_present_page_count(m, zone, blk, nr)
    zone.nr_isolate_pageblock -= p.unisolate(start, end)
    m.init_per_zone_wmark_min()
    return freed


# ---------------------------------------------------------------- offline

def _system_ram_pages(m: "Machine", blk: int, start: int, end: int) -> int:
    if not m.blk_early[blk]:
        return end - start
    return sum(max(0, min(e, end) - max(s, start)) for s, e in m.boot_ranges)


def offline_block(m: "Machine", blk: int) -> None:
    """memory_block_offline() through a write of ``offline`` to memoryN/state."""
    blk = _check_block(m, blk)
    if m.design != "mainline":
        from . import rfc2018
        return rfc2018.offline_block(m, blk)
    err = offline_precheck(m, blk)
    if err is not None:
        raise err
    zone = m.zones[int(m.blk_zone[blk])]
    start, end = m.block_range(blk)
    nr_vmemmap = m.nr_vmemmap_pages(blk)
    offline_pages(m, zone, blk, start + nr_vmemmap, end, nr_vmemmap=nr_vmemmap,
                  skip_vmemmap=False)
    if nr_vmemmap:
        # mhp_deinit_memmap_on_memory(): the memmap stays mapped until hot-remove
        pps = m.arch.pages_per_section
        online_mem_sections(m, start, (start + nr_vmemmap) // pps * pps, online=False)
        m.pages.clear(P_VMEMMAP, start, start + nr_vmemmap)
        m.pages.set_pageblocks(start, start + nr_vmemmap, 0, -1)
        shrink_zone_span(m, zone, start, start + nr_vmemmap)
    m.pages.release(start, end)
    m.blk_zone[blk] = -1
    m.blk_state[blk] = MEM_OFFLINE


def offline_range(m: "Machine", blk: int) -> tuple[int, int]:
    """The pfns offline_pages() works on: the block less its own memmap."""
    start, end = m.block_range(blk)
    return start + m.nr_vmemmap_pages(blk), end


def offline_precheck(m: "Machine", blk: int, skip_vmemmap: bool = False,
                     start: int | None = None, end: int | None = None) -> HotplugError | None:
    """Every reason offline_pages() would fail on this block, checked without
    changing anything; None when the offline would succeed."""
    if m.blk_state[blk] != MEM_ONLINE:
        return HotplugError("EINVAL", f"memory{blk} is already offline", block=blk)
    zid = int(m.blk_zone[blk])
    if zid < 0:
        return HotplugError("EINVAL", f"memory{blk} spans more than one zone or node "
                            "(valid_zones: none)", block=blk)
    zone = m.zones[zid]
    p = m.pages
    if start is None:
        start, end = offline_range(m, blk)
    nr = end - start
    rng = f"[mem {_addr(m, start):#010x}-{_addr(m, end) - 1:#010x}]"
    if _system_ram_pages(m, blk, start, end) != nr:
        return HotplugError("EINVAL", f"memory offlining {rng} failed due to memory holes",
                            block=blk)
    if p.pageblock(start)[2] != zid or p.pageblock(end - 1)[2] != zid:
        return HotplugError("EINVAL", f"memory offlining {rng} failed due to multizone range",
                            block=blk)
    # start_isolate_page_range(): an unmovable page fails the isolation
    bad = p.has_unmovable(start, end, zone.ztype == ZONE_MOVABLE, skip_vmemmap)
    if bad >= 0:
        return HotplugError("EBUSY", f"memory offlining {rng} failed due to failure to "
                            f"isolate range: unmovable page at pfn {bad:#x} of memory{blk}",
                            pfn=bad, block=blk)
    stuck = p.find_set(P_UNMOVABLE, start, end)
    if stuck >= 0:
        # only in ZONE_MOVABLE: isolation passes, migration never moves it
        return HotplugError("EINTR", f"memory offlining {rng} failed due to signal backoff: "
                            f"pfn {stuck:#x} is an unmovable page in ZONE_MOVABLE that "
                            "migration never moves, so test_pages_isolated() would fail "
                            "until a signal arrives",
                            pfn=stuck, block=blk)
    movable = movable_pages(m, start, end, skip_vmemmap)
    if len(movable):
        room = migration_room(m, int(m.blk_nid[blk]), zone, p.count(P_BUDDY, start, end))
        if room < len(movable):
            return HotplugError("EINTR", f"memory offlining {rng} failed due to signal backoff: "
                                f"{len(movable)} movable pages of memory{blk} cannot be "
                                f"migrated (room for {room} elsewhere); the kernel would "
                                "retry until a signal arrives", pfn=int(movable[0]), block=blk)
    return None


def movable_pages(m: "Machine", start: int, end: int, skip_vmemmap: bool) -> np.ndarray:
    """Allocated movable pages of [start, end) that migration must move."""
    movable = m.pages.allocated_pfns(start, end, False)
    if skip_vmemmap and len(movable):
        keep = [not m.pages.test(P_VMEMMAP, int(pfn)) for pfn in movable]
        movable = movable[np.array(keep, dtype=bool)]
    return movable


def offline_pages(m: "Machine", zone, blk: int, start: int, end: int, *, nr_vmemmap: int,
                  skip_vmemmap: bool) -> None:
    """offline_pages() once offline_precheck() passed: isolation, migration,
    removal of the free pages from the buddy, accounting."""
    p = m.pages
    nr = end - start
    # memory_block_offline() takes the vmemmap pages out of present first
    adjust_present_page_count(m, zone, blk, -nr_vmemmap)
    isolated = p.isolate(start, end)
    zone.nr_isolate_pageblock += isolated
    movable = movable_pages(m, start, end, skip_vmemmap)
    if len(movable):
        # do_migrate_range(): new pages elsewhere, the old ones are freed
        migration_targets(m, len(movable), int(m.blk_nid[blk]))
        p.free_pages(movable)
    left = p.first_not_free(start, end, skip_vmemmap)
    assert left < 0, f"test_pages_isolated: pfn {left:#x} still in use"
    # __offline_isolated_pages(): sections go offline, the free pages leave the
    # buddy; managed drops by nr (6.1), or by nr less PageOffline pages (6.12),
    # which are the same here since hotmem has no PageOffline pages
    online_mem_sections(m, start, end, online=False)
    removed = p.remove_free_range(start, end)
    zone.nr_isolate_pageblock -= isolated
    zone.managed_pages -= removed
    adjust_present_page_count(m, zone, blk, -nr)
    m.init_per_zone_wmark_min()
    # remove_pfn_range_from_zone(): the whole block's pageblocks leave the zone
    # (its sections are offline, so the span search skips the vmemmap too)
    m.pages.set_pageblocks(start - nr_vmemmap, end, 0, -1)
    shrink_zone_span(m, zone, start, end)


# ---------------------------------------------------------------- hot-remove

def remove_memory(m: "Machine", start, size) -> None:
    """try_remove_memory() of [start, start + size)."""
    start = parse_addr(start, "start")
    size = parse_size(size, "size")
    bs = m.block_size
    if size == 0 or start % bs or size % bs:
        raise HotplugError("EINVAL", f"remove of [mem {start:#x}-{start + size - 1:#x}] is not "
                           f"memory block aligned (block size {bs:#x})")
    a = m.arch
    spfn, epfn = start >> a.page_shift, (start + size) >> a.page_shift
    blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
    absent = blocks[m.blk_state[blocks] == 0] if epfn <= m.nr_pfns else blocks
    if len(absent):
        raise HotplugError("EINVAL", f"no memory was added at memory{int(absent[0])}",
                           block=int(absent[0]))
    if m.blk_early[blocks].any():
        raise HotplugError("EINVAL", "boot memory cannot be hot-removed")
    online = blocks[m.blk_state[blocks] != MEM_OFFLINE]
    if len(online):
        b = int(online[0])
        s, e = m.block_range(b)
        raise HotplugError("EBUSY", f"removing memory fails, because memory [{_addr(m, s):#x}-"
                           f"{_addr(m, e) - 1:#x}] is onlined (memory{b})", block=b)
    if m.design != "mainline":
        from . import rfc2018
        return rfc2018.remove_memory(m, spfn, epfn, blocks)
    has = m.blk_altmap[blocks]
    if has.any() and not has.all():
        raise HotplugError("EINVAL", "range mixes blocks with and without altmaps")
    if has.any() and len(blocks) > 1 and m.kernel.remove_needs_single_block:
        raise HotplugError("EINVAL", f"Refuse to remove {start:#x} - {start + size:#x}, "
                           "wrong granularity")
    # vmemmap_free() returns each leaf to its altmap: alloc goes back to 0
    m.alt_alloc[blocks] = 0
    m.alt_align[blocks] = 0
    m.alt_free[blocks] = 0
    m.blk_altmap[blocks] = False
    if m.memmap_from_buddy:
        for blk in blocks.tolist():
            memmap = m.memmap_from_buddy.pop(blk, None)
            if memmap is not None:
                m.pages.free_pages(memmap)
    pps = a.pages_per_section
    m.sec_flags[spfn // pps:epfn // pps] = 0
    m.blk_state[blocks] = 0
    m.blk_zone[blocks] = -1
    for gid in set(int(g) for g in m.blk_group[blocks]):
        g = m.groups[gid]
        g.nr_pages -= int(np.count_nonzero(m.blk_group[blocks] == gid)) * m.pages_per_block
        if g.nr_pages <= 0:
            del m.groups[gid]
    m.blk_group[blocks] = -1
    m.pages.release(spfn, epfn)
    m.init_per_zone_wmark_min()


# ---------------------------------------------------------------- many blocks

def _runs(blocks: list[int]) -> list[tuple[int, int]]:
    """(first, count) of each run of consecutive block ids, in the given order."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][0] + out[-1][1] == b:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((b, 1))
    return out


def _wmark_steps(m: "Machine", zone, managed0: int, present0: int, per_managed: int,
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
            m.init_per_zone_wmark_min()
            state = (m.min_free_kbytes,) + tuple(
                (z.wmark_min, z.wmark_high) for z in m.zones if z is not zone)
            if state == prev:
                zone.managed_pages = managed0 + n * per_managed
                zone.present_pages = present0 + n * per_present
                m.init_per_zone_wmark_min()
                return
            prev = state
        else:
            m.init_per_zone_wmark_min()


def _group_present(m: "Machine", blocks: np.ndarray, zone, pages_per_block: int) -> None:
    gids, counts = np.unique(m.blk_group[blocks], return_counts=True)
    for gid, c in zip(gids.tolist(), counts.tolist()):
        g = m.groups.get(gid)
        if g is None:
            continue
        if zone.ztype == ZONE_MOVABLE:
            g.present_movable_pages += c * pages_per_block
        else:
            g.present_kernel_pages += c * pages_per_block


def _batch_zone(m: "Machine", first: int, n: int, online_type: int):
    """The zone every block of the run would get when onlined one by one in
    order, when that is known up front; else None (go block by block)."""
    from .zone import MMOP_ONLINE, MMOP_ONLINE_KERNEL, default_kernel_zone_for_pfn
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


def _many(m: "Machine", blocks, stop_on_error: bool, batchable, do_batch,
          do_one) -> list[tuple[int, HotplugError | None]]:
    """Walk the blocks in order.  From each block b the longest run of consecutive
    ids that ``batchable(b, x)`` accepts goes to ``do_batch(b, n)``, which returns
    False to decline; anything else goes to ``do_one(b)``."""
    out: list[tuple[int, HotplugError | None]] = []
    ids = [_check_block(m, b) for b in blocks]
    for first, count in _runs(ids):
        b = first
        while b < first + count:
            n = 0
            if m.design == "mainline":
                while b + n < first + count and batchable(b, b + n):
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


def online_blocks(m: "Machine", blocks, online_type: str = "online",
                  stop_on_error: bool = True) -> list[tuple[int, HotplugError | None]]:
    """Online many blocks, in order, with the result of onlining them one by one;
    runs of consecutive offline blocks of one node and memmap layout are done in
    one pass.  Returns (block, error or None) per block attempted."""
    if online_type not in ONLINE_TYPES or ONLINE_TYPES[online_type] == MMOP_OFFLINE:
        raise HotplugError("EINVAL", f"'{online_type}' is not an online type "
                           "(online, online_kernel, online_movable)")
    from . import _core
    strategy = _core.FREE_STRATEGIES[m.kernel.online_free_strategy]
    ppb = m.pages_per_block

    def batchable(b: int, x: int) -> bool:
        return (m.blk_state[x] == MEM_OFFLINE and not m.blk_early[x]
                and m.blk_nid[x] == m.blk_nid[b]
                and m.nr_vmemmap_pages(x) == m.nr_vmemmap_pages(b))

    def do_batch(b: int, n: int) -> bool:
        zone = _batch_zone(m, b, n, ONLINE_TYPES[online_type])
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


def offline_blocks(m: "Machine", blocks,
                   stop_on_error: bool = True) -> list[tuple[int, HotplugError | None]]:
    """Offline many blocks, in order, with the result of offlining them one by
    one; runs of consecutive online blocks of one zone whose pages are all free
    (but their memmap) are done in one pass."""
    ppb = m.pages_per_block

    def batchable(b: int, x: int) -> bool:
        return (m.blk_state[x] == MEM_ONLINE and not m.blk_early[x]
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
