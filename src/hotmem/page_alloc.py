"""mm/page_alloc.c as hotmem models it: watermarks and lowmem_reserve, the one
NR_FREE_PAGES, and page allocation on top of the buddy state (user
allocations of movable pages and unmovable kernel pages, migration targets,
and memmap pages for hot-add without memmap on memory).

Which free pages an allocation takes: ``lowest`` takes the lowest free pfns of
each zone in zonelist order, ``random`` spreads the pages uniformly (seeded) over
the free pages of the zones, and ``kernel`` follows __rmqueue() for order-0
pages: the smallest free block of the wanted migratetype first (free lists in
ascending pfn order, as onlining and expand() leave them; per-cpu lists are not
modelled), else __rmqueue_fallback(), which steals the largest free block of a
fallback type and claims its pageblocks for the wanted type.  Either way every
zone keeps its min watermark plus the lowmem reserve against the allocation's
highest zone, as ``zone_watermark_ok`` demands.
"""
from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from math import isqrt

import numpy as np

from . import _core
from .constants import (
    ALLOC_KINDS,
    LOWMEM_RESERVE_RATIO,
    MAX_NR_ZONES,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    P_BUDDY,
    P_OFFLINE,
    P_RESERVED,
    P_UNMOVABLE,
    P_VMEMMAP,
    PB_MIGRATETYPE_MASK,
    PLACEMENTS,
    ZONE_DEVICE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
    AllocKind,
    IntArray,
    Placement,
)
from .errors import ConfigError, HotplugError
from .mmzone import Zone
from .state import MachineState
from .validate import check_node, check_seed

SWAP_CLUSTER_MAX = 32
WATERMARK_SCALE_FACTOR = 10  # vm.watermark_scale_factor default
MIGRATE_PCPTYPES = 3


# ---------------------------------------------------------------- free pages

def zone_nr_free_pages(m: MachineState, z: Zone) -> int:
    """NR_FREE_PAGES of a zone: the pages on its free lists, less those on the
    MIGRATE_ISOLATE list (the kernel takes isolated pages out of the count)."""
    return int(_core.zone_free_pages(m.pages.nr_free, z.zid))


def nr_free_pages(m: MachineState) -> int:
    """global NR_FREE_PAGES."""
    return sum(zone_nr_free_pages(m, z) for z in m.zones)


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
    """__setup_per_zone_wmarks(); ZONE_MOVABLE is treated like highmem from 6.12:

    lowmem_pages = managed pages of the zones but ZONE_DEVICE (and ZONE_MOVABLE
    when like highmem); per zone, tmp = pages_min * managed / lowmem_pages;
    min = tmp, or like highmem clamp(managed / 1024, SWAP_CLUSTER_MAX, 128);
    tmp = max(tmp / 4, managed * watermark_scale_factor / 10000); low, high
    and promo are min + tmp, 2 tmp, 3 tmp.  The arithmetic runs in the compiled
    core: it is redone on every online and offline."""
    _core.setup_per_zone_wmarks(zones, min_free_kbytes >> (page_shift - 10),
                                movable_like_highmem, ZONE_MOVABLE, ZONE_DEVICE,
                                SWAP_CLUSTER_MAX, WATERMARK_SCALE_FACTOR)


def _min_free_kbytes(m: MachineState, like_highmem: bool) -> int:
    """min_free_kbytes as init_per_zone_wmark_min() leaves it (the zones'
    watermarks are computed on the way, and rewritten by the caller)."""
    a = m.arch
    mfk = m.min_free_kbytes
    if m.user_min_free_kbytes is None:
        mfk = calculate_min_free_kbytes(m.zones, a.page_size)
    if m.thp:
        setup_per_zone_wmarks(m.zones, mfk, a.page_shift, like_highmem)
        rec = recommended_min_free_kbytes(m.zones, a.pageblock_nr_pages, a.page_shift)
        if rec > mfk:
            mfk = rec
    return mfk


_WMARK_MEMO_MAX = 1 << 12


def init_per_zone_wmark_min(m: MachineState) -> None:
    """init_per_zone_wmark_min(), with khugepaged's recommendation when THP is on.

    The watermarks are a function of min_free_kbytes and each zone's managed
    pages (__setup_per_zone_wmarks), so they are computed once from the final
    min_free_kbytes.  That value depends only on the zones up to ZONE_NORMAL
    (managed, present, and the high watermark the previous call left), on the
    pages counted as lowmem, and on the settings: it is memoised on exactly
    those, so onlining or offlining ZONE_MOVABLE memory where it does not
    count as lowmem (6.12+) costs one pass over the zones."""
    like_highmem = m.wmark_like_highmem
    zones = m.zones
    k = (m.user_min_free_kbytes, m.min_free_kbytes, m.thp, like_highmem) + _core.wmark_inputs(
        zones, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE, like_highmem)
    memo: dict[tuple[int | bool | None, ...], int] = m.wmark_memo
    mfk = memo.get(k)
    if mfk is None:
        mfk = _min_free_kbytes(m, like_highmem)
        if len(memo) >= _WMARK_MEMO_MAX:
            memo.clear()
        memo[k] = mfk
    m.min_free_kbytes = mfk
    # setup_per_zone_wmarks(), called straight: this runs on every online and offline
    _core.setup_per_zone_wmarks(zones, mfk >> (m.arch.page_shift - 10), like_highmem,
                                ZONE_MOVABLE, ZONE_DEVICE, SWAP_CLUSTER_MAX,
                                WATERMARK_SCALE_FACTOR)
    # setup_per_zone_lowmem_reserve(): the reserves count every managed page now
    if m.managed_unreserved:
        for z in zones:
            z.managed_unreserved = 0
        m.managed_unreserved = False


def adjust_managed_page_count(m: MachineState, zone: Zone, count: int) -> None:
    """adjust_managed_page_count() of a driver (balloon, virtio-mem fake
    offline / online): the zone's managed pages move, the watermarks stay
    until the next online or offline; lowmem_reserve and totalreserve_pages
    follow from 6.14 (setup_per_zone_lowmem_reserve() there), before they keep
    the managed pages of the last init_per_zone_wmark_min()."""
    zone.managed_pages += count
    if count and not m.kernel.lowmem_reserve_follows_managed:
        zone.managed_unreserved += count
        m.managed_unreserved = True


def reserve_managed(zone: Zone) -> int:
    """The zone's managed pages as its lowmem_reserve and totalreserve_pages
    last saw them."""
    return zone.managed_pages - zone.managed_unreserved


def lowmem_reserve(m: MachineState, zone: Zone) -> list[int]:
    """zone->lowmem_reserve[] (setup_per_zone_lowmem_reserve): pages this zone
    keeps back from allocations that could have used a higher zone j."""
    ratio = LOWMEM_RESERVE_RATIO[zone.ztype]
    out = [0] * MAX_NR_ZONES
    if not ratio or not reserve_managed(zone):
        return out
    managed = 0
    for j in range(zone.ztype + 1, MAX_NR_ZONES):
        managed += reserve_managed(m.zone(zone.nid, j))
        out[j] = managed // ratio
    return out


# ---------------------------------------------------------------- allocation

# fallbacks[] of mm/page_alloc.c for the two kinds hotmem allocates
FALLBACKS = {MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
             MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)}


def zonelist(m: MachineState, nid: int, kind: AllocKind) -> list[Zone]:
    """The node's zones from the highest usable one down (GFP_HIGHUSER_MOVABLE
    may use ZONE_MOVABLE; GFP_KERNEL stops at ZONE_NORMAL), then other nodes."""
    top = ZONE_MOVABLE if kind == "movable" else ZONE_NORMAL
    order = [z for z in (ZONE_MOVABLE, ZONE_NORMAL, ZONE_DMA32, ZONE_DMA) if z <= top]
    nids = [nid] + [n for n in range(m.nr_nodes) if n != nid]
    return [m.zone(n, zt) for n in nids for zt in order if m.zone(n, zt).configured]


def zone_runs(m: MachineState, zone: Zone) -> list[tuple[int, int]]:
    """pfn runs of whole pageblocks that belong to ``zone`` and are not isolated."""
    if zone.is_empty():
        return []
    pbo = m.arch.pageblock_order
    s = zone.zone_start_pfn >> pbo << pbo
    e = -(-zone.zone_end_pfn >> pbo) << pbo
    return m.pages.zone_runs(zone.zid, s, e)


def usable_free_pages(m: MachineState, zone: Zone, highest_zone: int, withheld: int = 0) -> int:
    """Free pages the allocator may take from ``zone`` (not isolated, above the
    min watermark plus the lowmem reserve against ``highest_zone``), when
    ``withheld`` more of its free pages were isolated."""
    free = zone_nr_free_pages(m, zone) - withheld
    reserve = lowmem_reserve(m, zone)[highest_zone] if highest_zone > zone.ztype else 0
    return max(free - zone.wmark_min - reserve, 0)


def _pick_lowest(m: MachineState, runs: list[tuple[int, int]], n: int) -> IntArray:
    """The n lowest free pfns of the runs."""
    p = m.pages
    out: list[IntArray] = []
    need = n
    for s, e in runs:
        got = p.first_free(s, e, need)
        out.append(got)
        need -= len(got)
        if not need:
            break
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _pick_random(m: MachineState, runs: list[tuple[int, int]], n: int,
                 rng: np.random.Generator) -> IntArray:
    """n free pfns of the runs, uniformly at random."""
    p = m.pages
    counts = np.array([p.count(P_BUDDY, s, e) for s, e in runs], dtype=np.int64)
    total = int(counts.sum())
    ranks = np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    out: list[IntArray] = []
    for i, (s, e) in enumerate(runs):
        lo, hi = np.searchsorted(ranks, [bounds[i], bounds[i + 1]])
        if hi > lo:
            out.append(p.free_by_rank(s, e, np.ascontiguousarray(ranks[lo:hi] - bounds[i])))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _claim_pageblocks(m: MachineState, pfns: IntArray) -> None:
    """An unmovable allocation from a MOVABLE pageblock claims the pageblock
    (try_to_claim_block on a mostly free block): it becomes MIGRATE_UNMOVABLE."""
    pbo = m.arch.pageblock_order
    first, last = int(pfns[0]), int(pfns[-1])
    if last - first + 1 == len(pfns):   # one run (a memmap block): no need to sort
        pageblocks: Iterable[int] = range(first >> pbo, (last >> pbo) + 1)
    else:
        pageblocks = np.unique(pfns >> pbo).tolist()
    for pb in pageblocks:
        s = pb << pbo
        mt, _, _ = m.pages.pageblock(s)
        if mt == MIGRATE_MOVABLE:
            m.pages.set_migratetype(s, s + (1 << pbo), MIGRATE_UNMOVABLE)


def _kernel_pick(m: MachineState, z: Zone, n: int,
                 kind: AllocKind) -> tuple[IntArray, list[tuple[int, int, int]]]:
    """n order-0 allocations of ``kind`` from zone z as __rmqueue() makes them.
    Returns (pfns, claims): the pages, and the pageblock ranges whose type the
    fallback steals changed, as (start, end, migratetype)."""
    want = MIGRATE_UNMOVABLE if kind == "unmovable" else MIGRATE_MOVABLE
    pbo, maxo = m.arch.pageblock_order, m.arch.max_page_order
    lists: dict[int, list[deque[int]]] = {mt: [deque() for _ in range(maxo + 1)]
                                          for mt in range(4)}
    where: dict[int, tuple[int, int]] = {}
    for s, e in zone_runs(m, z):
        heads, orders = m.pages.free_blocks(s, e)
        mts, _ = m.pages.pageblock_bytes(s, e)
        for h, o in zip(heads.tolist(), orders.tolist(), strict=True):
            mt = int(mts[(h - s) >> pbo]) & PB_MIGRATETYPE_MASK
            lists[mt][o].append(h)
            where[h] = (mt, o)
    taken_in: dict[int, int] = {}

    def take(mt: int, o: int) -> int:
        h = lists[mt][o].popleft()
        del where[h]
        for i in range(o - 1, -1, -1):  # expand(): the upper halves go back
            lists[mt][i].appendleft(h + (1 << i))
            where[h + (1 << i)] = (mt, i)
        taken_in[h >> pbo] = taken_in.get(h >> pbo, 0) + 1
        return h

    def claim(s: int, e: int, old: int) -> None:
        for h, (mt, o) in list(where.items()):
            if s <= h < e and mt == old:
                lists[old][o].remove(h)
                lists[want][o].append(h)
                where[h] = (want, o)
        claims.append((s, e, want))

    out: list[int] = []
    claims: list[tuple[int, int, int]] = []
    while len(out) < n:
        o = next((o for o in range(maxo + 1) if lists[want][o]), None)
        if o is not None:  # __rmqueue_smallest()
            out.append(take(want, o))
            continue
        found = next(((fmt, o) for o in range(maxo, -1, -1) for fmt in FALLBACKS[want]
                      if lists[fmt][o]), None)
        if found is None:
            break
        fmt, o = found
        can_steal = o >= pbo // 2 or want == MIGRATE_UNMOVABLE
        if not can_steal:
            # steal and split the smallest block instead (find_smallest)
            fmt, o = next((f, o2) for o2 in range(maxo + 1) for f in FALLBACKS[want]
                          if lists[f][o2])
            out.append(take(fmt, o))
            continue
        h = lists[fmt][o][0]
        if o >= pbo:  # change_pageblock_range(): the whole block changes type
            claim(h, h + (1 << o), fmt)
            continue
        pbs = h >> pbo << pbo
        free = sum(1 << oo for hh, (mt, oo) in where.items() if pbs <= hh < pbs + (1 << pbo))
        alike = taken_in.get(h >> pbo, 0)
        if want == MIGRATE_UNMOVABLE:
            alike += m.pages.count(P_UNMOVABLE, pbs, pbs + (1 << pbo))
        if free + alike >= 1 << (pbo - 1):  # try_to_claim_block()
            claim(pbs, pbs + (1 << pbo), fmt)
            continue
        out.append(take(fmt, o))  # a single page; the rest keeps its type
    return np.array(out, dtype=np.int64), claims


def _take(m: MachineState, zones: list[Zone], n: int, kind: AllocKind, placement: Placement,
          seed: int, highest_zone: int) -> IntArray:
    """Take n pages from ``zones`` (caller has checked that they fit)."""
    rng: np.random.Generator | None = None   # one stream over all the zones
    got: list[IntArray] = []
    need = n
    for z in zones:
        k = min(need, usable_free_pages(m, z, highest_zone))
        if k <= 0:
            continue
        if placement == "kernel":
            pfns, claims = _kernel_pick(m, z, k, kind)
            for s, e, mt in claims:
                m.pages.set_migratetype(s, e, mt)
        elif placement == "random":
            if rng is None:
                rng = np.random.default_rng(seed)
            pfns = _pick_random(m, zone_runs(m, z), k, rng)
        else:
            pfns = _pick_lowest(m, zone_runs(m, z), k)
        got.append(pfns)
        need -= len(pfns)
        if not need:
            break
    pfns = np.sort(np.concatenate(got)) if got else np.zeros(0, np.int64)
    m.pages.take_pages(pfns)
    if kind == "unmovable" and len(pfns):
        _set_runs(m, P_UNMOVABLE, pfns)
        if placement != "kernel":
            _claim_pageblocks(m, pfns)
    return pfns


def _set_runs(m: MachineState, plane: int, pfns: IntArray) -> None:
    """Set ``plane`` on the sorted pfns, one call per run of consecutive pfns."""
    if not len(pfns):
        return
    if int(pfns[-1]) - int(pfns[0]) + 1 == len(pfns):
        m.pages.set(plane, int(pfns[0]), int(pfns[-1]) + 1)
        return
    breaks = np.flatnonzero(np.diff(pfns) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(pfns)]))
    for a, b in zip(starts, ends, strict=True):
        m.pages.set(plane, int(pfns[a]), int(pfns[b - 1]) + 1)


def _check_count(pages: object, what: str) -> int:
    if isinstance(pages, bool) or not isinstance(pages, int) or pages <= 0:
        raise ConfigError(f"{what}: pages must be a positive whole number, got {str(pages)[:40]}")
    return pages


def _alloc_kind(kind: object, what: str) -> AllocKind:
    for k in ALLOC_KINDS:
        if kind == k:
            return k
    raise ConfigError(f"{what}: kind {kind!r} is not one of {', '.join(ALLOC_KINDS)}")


def _placement(placement: object, what: str) -> Placement:
    for p in PLACEMENTS:
        if placement == p:
            return p
    raise ConfigError(f"{what}: placement {placement!r} is not one of {', '.join(PLACEMENTS)}")


def alloc_pages(m: MachineState, pages: int, kind: str = "movable", zone: str | None = None,
                placement: str = "random", seed: int = 0, nid: int = 0) -> IntArray:
    """Allocate ``pages`` order-0 pages; returns their pfns (sorted).

    Raises ENOMEM, leaving the machine unchanged, when the zones cannot give
    that many pages above their watermarks.
    """
    _check_count(pages, "alloc")
    seed = check_seed(seed)
    akind = _alloc_kind(kind, "alloc")
    how = _placement(placement, "alloc")
    check_node(nid, m.nr_nodes)
    if zone is not None:
        zones = [m.zone_by_name(zone, nid)]
        if akind == "unmovable" and zones[0].ztype == ZONE_MOVABLE:
            raise HotplugError("ENOMEM", "unmovable (GFP_KERNEL) allocations are never "
                               "served from ZONE_MOVABLE")
    else:
        zones = zonelist(m, nid, akind)
    highest = max(z.ztype for z in zones)
    avail = sum(usable_free_pages(m, z, highest) for z in zones)
    if avail < pages:
        names = "/".join(f"{z.name}" for z in zones)
        raise HotplugError("ENOMEM", f"cannot allocate {pages} {kind} pages from {names} of "
                           f"node {nid}: {avail} free above the watermarks")
    return _take(m, zones, pages, akind, how, seed, highest)


def allocated_pages(m: MachineState, kind: AllocKind, zone: str | None = None,
                    nid: int = 0) -> IntArray:
    """pfns of the pages a user allocation holds (memmap pages excluded)."""
    zones = [m.zone_by_name(zone, nid)] if zone else [z for z in m.zones if z.nid == nid]
    out: list[IntArray] = []
    for z in zones:
        for s, e in zone_runs(m, z):
            out.append(m.pages.allocated_pfns(s, e, kind == "unmovable"))
    pfns = np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)
    if kind == "unmovable" and m.memmap_from_buddy:
        memmap = np.concatenate(list(m.memmap_from_buddy.values()))
        pfns = pfns[~np.isin(pfns, memmap)]
    return pfns


def free_allocated(m: MachineState, pages: int | str | None = None, kind: str = "movable",
                   zone: str | None = None, seed: int = 0, nid: int = 0) -> IntArray:
    """Free ``pages`` allocated pages of ``kind`` chosen at random (all if None
    or "all")."""
    seed = check_seed(seed)
    check_node(nid, m.nr_nodes)
    akind = _alloc_kind(kind, "free")
    held = allocated_pages(m, akind, zone, nid)
    if pages is None or pages == "all":
        pfns = held
    else:
        n = _check_count(pages, "free")
        if n > len(held):
            raise HotplugError("EINVAL", f"cannot free {n} {kind} pages: only {len(held)} "
                               "are allocated")
        rng = np.random.default_rng(seed)
        pfns = np.sort(rng.choice(held, size=n, replace=False))
    m.pages.free_pages(np.ascontiguousarray(pfns, dtype=np.int64))
    return pfns


def _migration_zones(m: MachineState, nid: int) -> list[Zone]:
    zones = zonelist(m, nid, "movable")
    # alloc_migration_target() prefers other nodes when the node has them
    return [z for z in zones if z.nid != nid] + [z for z in zones if z.nid == nid]


def migration_room(m: MachineState, nid: int, withheld_zone: Zone | None = None,
                   withheld: int = 0) -> int:
    """Pages migration could allocate on behalf of node nid's memory, with
    ``withheld`` free pages of ``withheld_zone`` about to be isolated."""
    return sum(usable_free_pages(m, z, ZONE_MOVABLE, withheld if z is withheld_zone else 0)
               for z in _migration_zones(m, nid))


def migration_targets(m: MachineState, n: int, nid: int) -> IntArray:
    """Allocate n movable pages outside the isolated range (the caller checked
    migration_room)."""
    return _take(m, _migration_zones(m, nid), n, "movable", "lowest", 0, ZONE_MOVABLE)


def memmap_chunks_needed(m: MachineState, nr_pages: int, chunk: int, nid: int) -> str | None:
    """Why the memmap of a hot-add cannot come from the node's memory, or None."""
    zones = zonelist(m, nid, "unmovable")
    avail = sum(usable_free_pages(m, z, ZONE_NORMAL) for z in zones)
    if avail < nr_pages:
        return (f"the memmap needs {nr_pages} pages ({nr_pages << m.arch.page_shift >> 20} MiB) "
                f"of online memory and node {nid} has {avail} free above the watermarks")
    return None


def alloc_memmap(m: MachineState, nr_chunks: int, chunk: int, nid: int) -> IntArray:
    """vmemmap_alloc_block(): nr_chunks blocks of ``chunk`` pages (a PMD leaf when
    possible, else base pages) from the node's kernel zones; returns all pfns.
    Takes the lowest-pfn free block of the smallest order that fits, as
    __rmqueue_smallest takes the smallest order first."""
    order = chunk.bit_length() - 1
    zones = zonelist(m, nid, "unmovable")
    out: list[IntArray] = []
    remaining = nr_chunks
    for z in zones:
        if not remaining:
            break
        budget = usable_free_pages(m, z, ZONE_NORMAL)
        # which orders the zone has free blocks of (isolated ones aside)
        have = _core.free_blocks_per_order(m.pages.nr_free, z.zid)
        for s, e in zone_runs(m, z):
            # smallest order first, then lowest pfn; each block taken whole
            for o in range(order, m.arch.max_page_order + 1):
                if not have[o]:
                    continue
                pos = s
                while remaining and budget >= chunk:
                    h = m.pages.first_free_block(pos, e, o)
                    if h < 0:
                        break
                    for k in range(1 << (o - order)):
                        if not remaining or budget < chunk:
                            break
                        pfn = h + k * chunk
                        m.pages.take_range(pfn, pfn + chunk)
                        out.append(np.arange(pfn, pfn + chunk, dtype=np.int64))
                        budget -= chunk
                        remaining -= 1
                    pos = h + (1 << o)
    pfns = np.concatenate(out) if out else np.zeros(0, np.int64)
    if remaining:
        # no block of that order left: base pages (vmemmap_populate_basepages)
        base = _take(m, zones, remaining * chunk, "unmovable", "lowest", 0, ZONE_NORMAL)
        pfns = np.concatenate((pfns, base))
    if len(pfns):
        pfns = np.sort(pfns)
        _set_runs(m, P_UNMOVABLE, pfns)
        _claim_pageblocks(m, pfns)
    return pfns


# ---------------------------------------------------------------- contiguous ranges

def alloc_contig_range(m: MachineState, start: int, end: int) -> HotplugError | None:
    """alloc_contig_range() of [start, end) (the pages of one zone, pageblock
    aligned): migrate what is movable out of the range, then take every page.
    EBUSY (nothing changed) when a page cannot move: reserved, an unmovable
    allocation, PageOffline, or a memmap page; ENOMEM when the movable pages
    find no room elsewhere.  On success every page of the range is allocated."""
    p = m.pages
    zid = p.pageblock(start)[2]
    if zid < 0 or p.pageblock(end - 1)[2] != zid:
        return HotplugError("EBUSY", f"alloc_contig_range [{start:#x}, {end:#x}) is not in "
                            "one zone", pfn=start)
    for plane, what in ((P_RESERVED, "reserved"), (P_UNMOVABLE, "unmovable"),
                        (P_OFFLINE, "PageOffline"), (P_VMEMMAP, "memmap")):
        pfn = p.find_set(plane, start, end)
        if pfn >= 0:
            return HotplugError("EBUSY", f"alloc_contig_range: {what} page at pfn {pfn:#x} "
                                "cannot be migrated", pfn=pfn)
    movable = p.allocated_pfns(start, end, False)
    if len(movable):
        zone = m.zones[zid]
        room = migration_room(m, zone.nid, zone, p.count(P_BUDDY, start, end))
        if room < len(movable):
            return HotplugError("ENOMEM", f"alloc_contig_range: {len(movable)} pages to migrate, "
                                f"room for {room}", pfn=int(movable[0]))
        # isolate first, so that the migration targets come from elsewhere
        isolated = p.isolate(start, end)
        zone.nr_isolate_pageblock += isolated
        migration_targets(m, len(movable), zone.nid)
        p.free_pages(movable)
        zone.nr_isolate_pageblock -= p.unisolate(start, end)
    p.take_range(start, end)
    return None


def free_contig_range(m: MachineState, start: int, end: int) -> int:
    """Hand allocated (or never onlined) pages [start, end) back to the buddy;
    returns the pages freed."""
    return m.pages.free_range(start, end)


# ---------------------------------------------------------------- balloon allocations

def _watermark_ok(m: MachineState, z: Zone, order: int, mark: int, highest_zone: int) -> bool:
    """__zone_watermark_ok() of an unmovable order-``order`` request: the free
    pages less the block keep more than ``mark`` plus the lowmem reserve, and
    for order > 0 a free block of that order or more is on a list it may use."""
    reserve = lowmem_reserve(m, z)[highest_zone] if highest_zone > z.ztype else 0
    if zone_nr_free_pages(m, z) - (1 << order) + 1 <= mark + reserve:
        return False
    if not order:
        return True
    nf = m.pages.nr_free[z.zid]
    return any(nf[mt][o] for o in range(order, m.arch.max_page_order + 1)
               for mt in (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE))


class _UnmovableLists:
    """The free lists of zone z that an unmovable order-``order`` request
    looks at (blocks of that order or more), built once and kept up to date
    by the allocations made through them: min-heaps of block pfns per
    (migratetype, order), the lowest pfn first as _kernel_pick has them."""

    def __init__(self, m: MachineState, z: Zone, order: int) -> None:
        self.m, self.order = m, order
        pbo = m.arch.pageblock_order
        self.heaps: dict[tuple[int, int], list[int]] = {}
        self.where: dict[int, tuple[int, int]] = {}
        for s, e in zone_runs(m, z):
            heads, orders = m.pages.free_blocks(s, e)
            mts, _ = m.pages.pageblock_bytes(s, e)
            for h, o in zip(heads.tolist(), orders.tolist(), strict=True):
                if o >= order:
                    self._push(h, (int(mts[(h - s) >> pbo]) & PB_MIGRATETYPE_MASK, o))

    def _push(self, h: int, key: tuple[int, int]) -> None:
        heapq.heappush(self.heaps.setdefault(key, []), h)
        self.where[h] = key

    def _peek(self, key: tuple[int, int]) -> int:
        heap = self.heaps.get(key)
        while heap and self.where.get(heap[0]) != key:
            heapq.heappop(heap)          # moved by a claim: a stale entry
        return heap[0] if heap else -1

    def take(self) -> int:
        """__rmqueue() of one block: the smallest unmovable block that fits,
        else the largest block of a fallback type, whose pageblocks it claims
        (try_to_claim_block: all of them for a block of pageblock order or
        more; else the pageblock when at least half of it is free or
        unmovable).  Takes the block; returns its pfn, or -1."""
        m, order = self.m, self.order
        pbo, maxo = m.arch.pageblock_order, m.arch.max_page_order

        def smallest() -> tuple[int, int] | None:   # __rmqueue_smallest()
            return next(((MIGRATE_UNMOVABLE, o) for o in range(order, maxo + 1)
                         if self._peek((MIGRATE_UNMOVABLE, o)) >= 0), None)
        key = smallest()
        if key is None:
            key = next(((fmt, o) for o in range(maxo, order - 1, -1)
                        for fmt in FALLBACKS[MIGRATE_UNMOVABLE] if self._peek((fmt, o)) >= 0),
                       None)
            if key is None:
                return -1
            h, o = self._peek(key), key[1]
            if o >= pbo:
                m.pages.set_migratetype(h, h + (1 << o), MIGRATE_UNMOVABLE)
            else:
                pbs = h >> pbo << pbo
                pbe = pbs + (1 << pbo)
                if (m.pages.count(P_BUDDY, pbs, pbe) + m.pages.count(P_UNMOVABLE, pbs, pbe)
                        >= 1 << (pbo - 1)):
                    m.pages.set_migratetype(pbs, pbe, MIGRATE_UNMOVABLE)
                    for hh, kk in list(self.where.items()):
                        if pbs <= hh < pbe and kk[0] == key[0]:
                            self._push(hh, (MIGRATE_UNMOVABLE, kk[1]))
                    key = smallest() or key
        h = self._peek(key)
        heapq.heappop(self.heaps[key])
        del self.where[h]
        o = key[1]
        # expand(): the upper halves go back on their pageblock's list
        for i in range(o - 1, order - 1, -1):
            half = h + (1 << i)
            mt = m.pages.pageblock(half)[0] & PB_MIGRATETYPE_MASK
            self._push(half, (mt, i))
        m.pages.take_range(h, h + (1 << order))
        return h


def _unmovable_pick(m: MachineState, z: Zone, n: int) -> IntArray:
    """n order-0 unmovable allocations from zone z, exactly as _kernel_pick
    makes them, taken from the zone.  Whole blocks of pageblock order or more
    go in one step: once the unmovable lists are empty, __rmqueue_fallback
    claims the largest fallback block and the following requests consume it
    from its first pfn up (expand() leaves the smaller halves first), so the
    pages are a run of the block."""
    pbo = m.arch.pageblock_order
    out: list[IntArray] = []

    def pick(k: int) -> None:
        pfns, claims = _kernel_pick(m, z, k, "unmovable")
        for s, e, mt in claims:
            m.pages.set_migratetype(s, e, mt)
        m.pages.take_pages(np.sort(pfns))
        out.append(pfns)

    need = n
    nf = m.pages.nr_free[z.zid]
    own = int((nf[MIGRATE_UNMOVABLE] << np.arange(nf.shape[1])).sum())
    if own:                              # the unmovable lists first
        pick(min(need, own))
        need -= min(need, own)
    if not need:
        return np.concatenate(out)
    # the fallback blocks of pageblock order or more, in the order
    # __rmqueue_fallback finds them: largest first, then fallbacks[], then pfn
    rank = {mt: i for i, mt in enumerate(FALLBACKS[MIGRATE_UNMOVABLE])}
    big: list[tuple[int, int, int]] = []
    for s, e in zone_runs(m, z):
        heads, orders = m.pages.free_blocks(s, e)
        keep = orders >= pbo
        if not keep.any():
            continue
        mts, _ = m.pages.pageblock_bytes(s, e)
        hs = heads[keep]
        types = mts[(hs - s) >> pbo] & PB_MIGRATETYPE_MASK
        for h, o, mt in zip(hs.tolist(), orders[keep].tolist(), types.tolist(), strict=True):
            if mt in rank:
                big.append((-o, rank[mt], h))
    big.sort()
    for neg_o, _, h in big:
        if not need:
            break
        k = min(need, 1 << -neg_o)
        m.pages.set_migratetype(h, h + (1 << -neg_o), MIGRATE_UNMOVABLE)
        m.pages.take_range(h, h + k)
        out.append(np.arange(h, h + k, dtype=np.int64))
        need -= k
    if need:
        pick(need)                       # fragmented: page by page
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def alloc_noretry(m: MachineState, nr: int, order: int, nid: int = 0) -> IntArray:
    """``nr`` calls of alloc_pages(GFP_HIGHUSER | __GFP_NORETRY |
    __GFP_NOMEMALLOC, order), the balloon drivers' allocation, one after the
    other until one fails.  Each is unmovable and stops at ZONE_NORMAL;
    get_page_from_freelist() walks the node's zonelist at the low watermark
    (the fast path), then at the min watermark (the slow path, after waking
    kswapd); with nothing to reclaim __GFP_NORETRY then fails, and compaction
    is not modelled.  Returns the first pfn of each block in allocation order;
    the pages carry no flag (the caller marks them)."""
    zones = zonelist(m, nid, "unmovable")

    def mark(z: Zone, fast: bool) -> int:
        return z.wmark_low if fast else z.wmark_min
    if not order:
        # order-0 pages come in runs per zone and watermark: __rmqueue() as
        # _kernel_pick models it
        got: list[IntArray] = []
        need = nr
        for fast in (True, False):
            for z in zones:
                reserve = lowmem_reserve(m, z)[ZONE_NORMAL] if ZONE_NORMAL > z.ztype else 0
                k = min(need, zone_nr_free_pages(m, z) - mark(z, fast) - reserve)
                if k <= 0:
                    continue
                pfns = _unmovable_pick(m, z, k)
                got.append(pfns)
                need -= len(pfns)
        return np.concatenate(got) if got else np.zeros(0, np.int64)
    out: list[int] = []
    lists: dict[int, _UnmovableLists] = {}
    for _ in range(nr):
        zone = next((z for fast in (True, False) for z in zones
                     if _watermark_ok(m, z, order, mark(z, fast), ZONE_NORMAL)), None)
        if zone is None:
            break
        if zone.zid not in lists:
            lists[zone.zid] = _UnmovableLists(m, zone, order)
        h = lists[zone.zid].take()
        if h < 0:
            break
        out.append(h)
    return np.array(out, dtype=np.int64)
