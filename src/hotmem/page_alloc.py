"""Page allocation on top of the buddy state: user allocations (movable pages,
unmovable kernel pages), migration targets, and memmap pages for hot-add
without memmap on memory.

Which free pages an allocation takes: ``lowest`` takes the lowest free pfns of
each zone in zonelist order, ``random`` spreads the pages uniformly (seeded) over
the free pages of the zones, and ``kernel`` follows __rmqueue() for order-0
pages: the smallest free block of the wanted migratetype first (free lists in
ascending pfn order, as onlining and expand() leave them; per-cpu lists are not
modelled), else __rmqueue_fallback(), which steals the largest free block of a
fallback type and claims its pageblocks for the wanted type.  Either way every zone keeps its min
watermark plus the lowmem reserve against the allocation's highest zone, as
``zone_watermark_ok`` demands.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .arch import ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NORMAL
from .errors import ConfigError, HotplugError
from .machine import MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, P_UNMOVABLE

if TYPE_CHECKING:
    from .machine import Machine
    from .zone import Zone

KINDS = ("movable", "unmovable")
PLACEMENTS = ("lowest", "random", "kernel")
MIGRATE_RECLAIMABLE = 2
# fallbacks[] of mm/page_alloc.c for the two kinds hotmem allocates
FALLBACKS = {MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
             MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)}


def zonelist(m: "Machine", nid: int, kind: str) -> list["Zone"]:
    """The node's zones from the highest usable one down (GFP_HIGHUSER_MOVABLE
    may use ZONE_MOVABLE; GFP_KERNEL stops at ZONE_NORMAL), then other nodes."""
    top = ZONE_MOVABLE if kind == "movable" else ZONE_NORMAL
    order = [z for z in (ZONE_MOVABLE, ZONE_NORMAL, ZONE_DMA32, ZONE_DMA) if z <= top]
    nids = [nid] + [n for n in range(m.nr_nodes) if n != nid]
    return [m.zone(n, zt) for n in nids for zt in order if m.zone(n, zt).configured]


def zone_runs(m: "Machine", zone: "Zone") -> list[tuple[int, int]]:
    """pfn runs of whole pageblocks that belong to ``zone`` and are not isolated."""
    if zone.is_empty():
        return []
    pbo = m.arch.pageblock_order
    s = zone.zone_start_pfn >> pbo << pbo
    e = -(-zone.zone_end_pfn >> pbo) << pbo
    mt, zn = m.pages.pageblock_bytes(s, e)
    ok = (zn == zone.zid + 1) & ((mt & 0x80) == 0)
    if not ok.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([False], ok, [False])).astype(np.int8)))
    return [(s + (int(a) << pbo), s + (int(b) << pbo)) for a, b in zip(edges[::2], edges[1::2])]


def usable_free_pages(m: "Machine", zone: "Zone", highest_zone: int, withheld: int = 0) -> int:
    """Free pages the allocator may take from ``zone`` (not isolated, above the
    min watermark plus the lowmem reserve against ``highest_zone``), when
    ``withheld`` more of its free pages were isolated."""
    nf = m.pages.nr_free[zone.zid]
    sizes = 1 << np.arange(nf.shape[1], dtype=np.int64)
    free = int((nf * sizes).sum()) - int((nf[MIGRATE_ISOLATE] * sizes).sum()) - withheld
    reserve = m.lowmem_reserve(zone)[highest_zone] if highest_zone > zone.ztype else 0
    return max(free - zone.wmark_min - reserve, 0)


def _pick_pfns(m: "Machine", runs: list[tuple[int, int]], n: int, placement: str,
               rng: np.random.Generator | None) -> np.ndarray:
    p = m.pages
    if placement == "lowest":
        out, need = [], n
        for s, e in runs:
            got = p.first_free(s, e, need)
            out.append(got)
            need -= len(got)
            if not need:
                break
        return np.concatenate(out) if out else np.zeros(0, np.int64)
    counts = np.array([p.count(2, s, e) for s, e in runs], dtype=np.int64)
    total = int(counts.sum())
    ranks = np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    out = []
    for i, (s, e) in enumerate(runs):
        lo, hi = np.searchsorted(ranks, [bounds[i], bounds[i + 1]])
        if hi > lo:
            out.append(p.free_by_rank(s, e, np.ascontiguousarray(ranks[lo:hi] - bounds[i])))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _claim_pageblocks(m: "Machine", pfns: np.ndarray) -> None:
    """An unmovable allocation from a MOVABLE pageblock claims the pageblock
    (try_to_claim_block on a mostly free block): it becomes MIGRATE_UNMOVABLE."""
    pbo = m.arch.pageblock_order
    for pb in np.unique(pfns >> pbo):
        s = int(pb) << pbo
        mt, _, _ = m.pages.pageblock(s)
        if mt == MIGRATE_MOVABLE:
            m.pages.set_migratetype(s, s + (1 << pbo), MIGRATE_UNMOVABLE)


def _kernel_pick(m: "Machine", z: "Zone", n: int, kind: str):
    """n order-0 allocations of ``kind`` from zone z as __rmqueue() makes them.
    Returns (pfns, claims): the pages, and the pageblock ranges whose type the
    fallback steals changed, as (start, end, migratetype)."""
    want = MIGRATE_UNMOVABLE if kind == "unmovable" else MIGRATE_MOVABLE
    pbo, maxo = m.arch.pageblock_order, m.arch.max_page_order
    lists = {mt: [deque() for _ in range(maxo + 1)] for mt in range(4)}
    where: dict[int, tuple[int, int]] = {}
    for s, e in zone_runs(m, z):
        heads, orders = m.pages.free_blocks(s, e)
        mts, _ = m.pages.pageblock_bytes(s, e)
        for h, o in zip(heads.tolist(), orders.tolist()):
            mt = int(mts[(h - s) >> pbo]) & 7
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


def _take(m: "Machine", zones: list["Zone"], n: int, kind: str, placement: str,
          seed: int, highest_zone: int) -> np.ndarray:
    """Take n pages from ``zones`` (caller has checked that they fit)."""
    rng = np.random.default_rng(seed) if placement == "random" else None
    got = []
    need = n
    for z in zones:
        k = min(need, usable_free_pages(m, z, highest_zone))
        if k <= 0:
            continue
        if placement == "kernel":
            pfns, claims = _kernel_pick(m, z, k, kind)
            for s, e, mt in claims:
                m.pages.set_migratetype(s, e, mt)
        else:
            pfns = _pick_pfns(m, zone_runs(m, z), k, placement, rng)
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


def _set_runs(m: "Machine", plane: int, pfns: np.ndarray) -> None:
    if not len(pfns):
        return
    breaks = np.flatnonzero(np.diff(pfns) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(pfns)]))
    for a, b in zip(starts, ends):
        m.pages.set(plane, int(pfns[a]), int(pfns[b - 1]) + 1)


def _check_count(pages, what: str) -> int:
    if isinstance(pages, bool) or not isinstance(pages, int) or pages <= 0:
        raise ConfigError(f"{what}: pages must be a positive whole number, got {pages!r}")
    return pages


def alloc_pages(m: "Machine", pages: int, kind: str = "movable", zone: str | None = None,
                placement: str = "random", seed: int = 0, nid: int = 0) -> np.ndarray:
    """Allocate ``pages`` order-0 pages; returns their pfns (sorted).

    Raises ENOMEM, leaving the machine unchanged, when the zones cannot give
    that many pages above their watermarks.
    """
    _check_count(pages, "alloc")
    if kind not in KINDS:
        raise ConfigError(f"alloc: kind {kind!r} is not one of {', '.join(KINDS)}")
    if placement not in PLACEMENTS:
        raise ConfigError(f"alloc: placement {placement!r} is not one of {', '.join(PLACEMENTS)}")
    if not 0 <= nid < m.nr_nodes:
        raise ConfigError(f"alloc: node {nid} does not exist")
    if zone is not None:
        zones = [m.zone_by_name(zone, nid)]
        if kind == "unmovable" and zones[0].ztype == ZONE_MOVABLE:
            raise HotplugError("ENOMEM", "unmovable (GFP_KERNEL) allocations are never "
                               "served from ZONE_MOVABLE")
    else:
        zones = zonelist(m, nid, kind)
    highest = max(z.ztype for z in zones)
    avail = sum(usable_free_pages(m, z, highest) for z in zones)
    if avail < pages:
        names = "/".join(f"{z.name}" for z in zones)
        raise HotplugError("ENOMEM", f"cannot allocate {pages} {kind} pages from {names} of "
                           f"node {nid}: {avail} free above the watermarks")
    return _take(m, zones, pages, kind, placement, seed, highest)


def allocated_pages(m: "Machine", kind: str, zone: str | None = None, nid: int = 0) -> np.ndarray:
    """pfns of the pages a user allocation holds (memmap pages excluded)."""
    zones = [m.zone_by_name(zone, nid)] if zone else [z for z in m.zones if z.nid == nid]
    out = []
    for z in zones:
        for s, e in zone_runs(m, z):
            out.append(m.pages.allocated_pfns(s, e, kind == "unmovable"))
    pfns = np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)
    if kind == "unmovable" and m.memmap_from_buddy:
        memmap = np.concatenate(list(m.memmap_from_buddy.values()))
        pfns = pfns[~np.isin(pfns, memmap)]
    return pfns


def free_allocated(m: "Machine", pages=None, kind: str = "movable", zone: str | None = None,
                   seed: int = 0, nid: int = 0) -> np.ndarray:
    """Free ``pages`` allocated pages of ``kind`` chosen at random (all if None)."""
    if kind not in KINDS:
        raise ConfigError(f"free: kind {kind!r} is not one of {', '.join(KINDS)}")
    held = allocated_pages(m, kind, zone, nid)
    if pages is None or pages == "all":
        pfns = held
    else:
        _check_count(pages, "free")
        if pages > len(held):
            raise HotplugError("EINVAL", f"cannot free {pages} {kind} pages: only {len(held)} "
                               "are allocated")
        rng = np.random.default_rng(seed)
        pfns = np.sort(rng.choice(held, size=pages, replace=False))
    m.pages.free_pages(np.ascontiguousarray(pfns, dtype=np.int64))
    return pfns


def _migration_zones(m: "Machine", nid: int) -> list["Zone"]:
    zones = zonelist(m, nid, "movable")
    # alloc_migration_target() prefers other nodes when the node has them
    return [z for z in zones if z.nid != nid] + [z for z in zones if z.nid == nid]


def migration_room(m: "Machine", nid: int, withheld_zone: "Zone | None" = None,
                   withheld: int = 0) -> int:
    """Pages migration could allocate on behalf of node nid's memory, with
    ``withheld`` free pages of ``withheld_zone`` about to be isolated."""
    return sum(usable_free_pages(m, z, ZONE_MOVABLE, withheld if z is withheld_zone else 0)
               for z in _migration_zones(m, nid))


def migration_targets(m: "Machine", n: int, nid: int) -> np.ndarray:
    """Allocate n movable pages outside the isolated range (the caller checked
    migration_room)."""
    return _take(m, _migration_zones(m, nid), n, "movable", "lowest", 0, ZONE_MOVABLE)


def memmap_chunks_needed(m: "Machine", nr_pages: int, chunk: int, nid: int) -> str | None:
    """Why the memmap of a hot-add cannot come from the node's memory, or None."""
    zones = zonelist(m, nid, "unmovable")
    avail = sum(usable_free_pages(m, z, ZONE_NORMAL) for z in zones)
    if avail < nr_pages:
        return (f"the memmap needs {nr_pages} pages ({nr_pages << m.arch.page_shift >> 20} MiB) "
                f"of online memory and node {nid} has {avail} free above the watermarks")
    return None


def alloc_memmap(m: "Machine", nr_chunks: int, chunk: int, nid: int) -> np.ndarray:
    """vmemmap_alloc_block(): nr_chunks blocks of ``chunk`` pages (a PMD leaf when
    possible, else base pages) from the node's kernel zones; returns all pfns.
    Takes the lowest-pfn free block of the smallest order that fits, as
    __rmqueue_smallest takes the smallest order first."""
    order = chunk.bit_length() - 1
    zones = zonelist(m, nid, "unmovable")
    out = []
    remaining = nr_chunks
    for z in zones:
        if not remaining:
            break
        budget = usable_free_pages(m, z, ZONE_NORMAL)
        for s, e in zone_runs(m, z):
            if not remaining or budget < chunk:
                break
            heads, orders = m.pages.free_blocks(s, e)
            big = orders >= order
            # smallest order first, then lowest pfn
            idx = np.lexsort((heads[big], orders[big]))
            for h, o in zip(heads[big][idx], orders[big][idx]):
                h, o = int(h), int(o)
                for k in range(1 << (o - order)):
                    if not remaining or budget < chunk:
                        break
                    pfn = h + k * chunk
                    m.pages.take_range(pfn, pfn + chunk)
                    out.append(np.arange(pfn, pfn + chunk, dtype=np.int64))
                    budget -= chunk
                    remaining -= 1
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
