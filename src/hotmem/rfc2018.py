"""The 2018 RFC design: "mm, memory_hotplug: allocate memmap from the added memory
range for sparse-vmemmap" (O. Salvador, RFC PATCH 3/4, 2018-11-16, never merged),
on its 4.20 base.  Selected with ``design = "rfc2018"``; hotplug.py dispatches here
after its generic checks.

What differs from mainline (docs: kernel-semantics.md §2.1, §3.1.4, §3.2.3, §3.3,
§3.4.3, §3.5.3, §3.6):

* hot-add: **one** altmap for the whole request.  Sections are populated in
  ascending order from it; after each section the flush callback
  ``mark_vmemmap_pages`` marks the pfns that section consumed PageVmemmap
  (PG_reserved + ``mapping = VMEMMAP_PAGE``: the P_VMEMMAP and P_RESERVED
  planes), bumps the refcount of the head (the first vmemmap page) and
  advances ``base_pfn``.  The memmap of every block is therefore packed at the
  start of the request: 10 GiB on x86_64 fills block 0 entirely and 8192 pages
  of block 1 (head refcount 80).  The marking stays until hot-remove.  s390
  clears MHP_MEMMAP_FROM_RANGE, so its memmap comes from the buddy.
* online: ``online_pages`` moves the whole block into the zone; the RFC's
  ``online_pages_range`` scans the block for a PageVmemmap page, then per
  section frees ``[section_start + m, section_end)`` with the 4.20
  ``online_pages_blocks`` rule (order from the remaining size, no alignment
  check; ``rfc_alignment_fix`` selects the 2019 fix).  present and managed grow
  by the pages freed only.
* offline: the whole block is isolated and offlined; PageVmemmap pages are
  skipped by has_unmovable_pages, test_pages_isolated and
  __offline_isolated_pages.  Nothing stops a block that holds the memmap of
  other online blocks from going offline, or being removed while they are
  present: :func:`hazards` reports it and ``rfc_refuse_hazard`` refuses it.
* remove: every removed section drops a reference on the head; when it
  reaches zero the memmap is unmapped **backwards**, one section-memmap at a
  time, down to the head (:attr:`MemoryGroup.rfc_teardown`).

Not modelled: the compaction migrate scanner (hotmem has no compaction),
free_pages_check and do_migrate_range skips (no vmemmap page ever reaches them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _core
from .altmap import VmemAltmap
from .errors import HotplugError
from .hotplug import (_addr, adjust_present_page_count, auto_online, check_memmap_room,
                      memmap_from_buddy, move_pfn_range_to_zone, offline_pages,
                      offline_precheck, online_mem_sections, register_added_range)
from .machine import (MEM_OFFLINE, MEM_ONLINE, MIGRATE_MOVABLE, P_BUDDY, P_HEAD, P_RESERVED,
                      P_UNMOVABLE, P_VMEMMAP, STATE_NAMES, MemoryGroup)
from .zone import ONLINE_TYPE_NAMES, zone_for_pfn_range

if TYPE_CHECKING:
    from .machine import Machine


def free_strategy(m: "Machine") -> str:
    """online_pages_blocks() as the RFC's base had it, or with the 2019 fix."""
    return "get_order_aligned" if m.rfc_alignment_fix else "get_order"


def block_list(ids) -> str:
    """memory33..memory63,memory65 style, for messages."""
    ids = sorted(int(b) for b in ids)
    runs: list[list[int]] = []
    for b in ids:
        if runs and b == runs[-1][1] + 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    return ",".join(f"memory{a}" if a == b else f"memory{a}..memory{b}" for a, b in runs)


def _which(ids, state: str) -> str:
    return f"which {'is' if len(ids) == 1 else 'are'} {state}" if state == "online" else \
        f"which {'stays' if len(ids) == 1 else 'stay'} {state}"


def is_rfc_group(g: MemoryGroup | None) -> bool:
    """A request whose memmap was allocated from its own range."""
    return g is not None and g.rfc_head_pfn >= 0


# ---------------------------------------------------------------- hot-add

def _populate_range(m: "Machine", spfn: int, epfn: int) -> dict:
    """__add_pages() with the RFC's stack altmap over the whole request:
    sparse_add_one_section() per section ascending, vmemmap_populate() from the
    altmap, then the flush callback mark_vmemmap_pages().  Pure: returns the
    plan, changes nothing."""
    a = m.arch
    pps = a.pages_per_section
    unit = a.vmemmap_chunk_pages
    unit_bytes = unit << a.page_shift
    alt = VmemAltmap(base_pfn=spfn, end_pfn=epfn - 1, free=epfn - spfn)
    # sections whose memmap fills one whole section: the head refcount passes a
    # multiple of this each time nr_sects grows (64 on x86_64)
    per_full = max(pps // a.memmap_pages_per_section, 1)
    head_refcount = nr_sects = 0
    total_alloc = total_align = 0
    unit_pfn: dict[int, int] = {}
    section_memmap: list[tuple[int, int]] = []
    flush_log: list[tuple[int, int, int]] = []
    marked: list[tuple[int, int]] = []
    for sec in range(spfn // pps, epfn // pps):
        vs = sec * pps * a.struct_page_size
        ve = vs + a.memmap_bytes_per_section
        lo = hi = None
        for u in range(vs // unit_bytes, -(-ve // unit_bytes)):
            if u not in unit_pfn:
                pfn = alt.alloc_block_buf(unit)
                if pfn is None:
                    raise HotplugError("ENOMEM", f"the altmap of [mem {_addr(m, spfn):#x}-"
                                       f"{_addr(m, epfn) - 1:#x}] cannot hold the memmap of "
                                       f"section {sec}", pfn=sec * pps)
                unit_pfn[u] = pfn
            lo = unit_pfn[u] if lo is None else min(lo, unit_pfn[u])
            hi = unit_pfn[u] + unit if hi is None else max(hi, unit_pfn[u] + unit)
        section_memmap.append((lo, hi))
        # mark_vmemmap_pages(): the pfns this section consumed become
        # PageVmemmap with refcount 1; the head gains one reference per section
        first = alt.base_pfn + alt.align
        if alt.alloc:
            marked.append((first, first + alt.alloc))
        flush_log.append((sec, first, alt.alloc))
        head_refcount += 1
        if head_refcount % per_full == 0:
            nr_sects += 1
        total_alloc += alt.alloc
        total_align += alt.align
        consumed = alt.alloc + alt.align
        alt.base_pfn += consumed
        alt.free -= consumed
        alt.alloc = alt.align = 0
    return {"head_refcount": head_refcount, "nr_sects": nr_sects, "alloc": total_alloc,
            "align": total_align, "section_memmap": section_memmap, "flush_log": flush_log,
            "marked": _merge(marked)}


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def add_memory(m: "Machine", spfn: int, epfn: int, nid: int, supported: bool) -> list[int]:
    """add_memory_resource() with MHP_MEMMAP_FROM_RANGE (always set by the RFC;
    s390's arch_add_memory clears it, as does memmap_on_memory=n here).
    hotplug.add_memory has done the generic checks."""
    blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
    plan = None
    if supported:
        plan = _populate_range(m, spfn, epfn)
    else:
        check_memmap_room(m, spfn, epfn, nid)

    # nothing can fail from here on
    g = register_added_range(m, spfn, epfn, nid, memmap_on_memory=plan is not None)
    if plan is not None:
        # whole-range accounting of the altmap: alloc = vmemmap pages mapped
        g.rfc_altmap = VmemAltmap(base_pfn=spfn, end_pfn=epfn - 1, free=epfn - spfn,
                                  alloc=plan["alloc"], align=plan["align"])
        g.rfc_head_pfn = plan["marked"][0][0] if plan["marked"] else spfn
        g.rfc_head_refcount = plan["head_refcount"]
        g.rfc_nr_sects = plan["nr_sects"]
        g.rfc_vmemmap_pages = plan["alloc"]
        g.rfc_section_memmap = plan["section_memmap"]
        g.rfc_flush_log = plan["flush_log"]
        for s, e in plan["marked"]:
            m.pages.set(P_VMEMMAP, s, e)
            m.pages.set(P_RESERVED, s, e)
    else:
        memmap_from_buddy(m, blocks, nid)
    return auto_online(m, blocks, g)


# ---------------------------------------------------------------- online

def online_ranges(m: "Machine", start: int, end: int) -> tuple[list[tuple[int, int]], int]:
    """The RFC's online_pages_range(): look at every pfn of the block for a
    PageVmemmap page; if there is one, go section by section, count its vmemmap
    pages m and online [section_start + m, section_end) (nothing when the whole
    section is memmap).  Returns the ranges and the pfns the scans read."""
    p = m.pages
    first = p.find_set(P_VMEMMAP, start, end)  # the linear scan's answer
    if first < 0:
        return [(start, end)], end - start
    scanned = first - start + 1
    pps = m.arch.pages_per_section
    out = []
    for s in range(start, end, pps):
        e = s + pps
        nv = p.count(P_VMEMMAP, s, e)
        scanned += pps if nv == pps else nv + 1
        if nv < pps:
            out.append((s + nv, e))
    return out, scanned


def online_block(m: "Machine", blk: int, online_type: int):
    """memory_block_action(MEM_ONLINE) -> online_pages() of the RFC.  The block
    is offline (checked by hotplug.online_block).  Returns the zone."""
    start, end = m.block_range(blk)
    nid = int(m.blk_nid[blk])
    g = m.group_of_block(blk)
    zone = zone_for_pfn_range(m, online_type, nid, g, start, m.pages_per_block)
    # move_pfn_range_to_zone(): the whole block, vmemmap included, joins the
    # zone; memmap_init_zone() leaves PageVmemmap pages as they are
    move_pfn_range_to_zone(m, zone, start, end - start, MIGRATE_MOVABLE)
    ranges, scanned = online_ranges(m, start, end)
    strategy = _core.FREE_STRATEGIES[free_strategy(m)]
    misaligned: list[tuple[int, int]] = []
    freed = 0
    for s, e in ranges:
        freed += m.pages.free_range(s, e, strategy, misaligned)
    # __free_pages_core: managed grows per chunk; online_pages: present grows
    # by the pages onlined, which leaves the vmemmap out
    zone.managed_pages += freed
    adjust_present_page_count(m, zone, blk, freed)
    online_mem_sections(m, start, end)
    m.init_per_zone_wmark_min()
    if g is not None:
        g.rfc_misaligned[blk] = misaligned
        g.rfc_scan_pfns[blk] = scanned
        if not freed:
            g.notes.append(f"memory{blk} went online with 0 pages: it is all memmap "
                           f"({ONLINE_TYPE_NAMES.get(online_type, online_type)})")
    m.blk_zone[blk] = zone.zid
    m.blk_state[blk] = MEM_ONLINE
    return zone


def misaligned_chunks(m: "Machine") -> dict[int, list[tuple[int, int]]]:
    """Per online block: the (pfn, order) buddy blocks its online freed misaligned."""
    out = {}
    for g in m.groups.values():
        for blk, chunks in g.rfc_misaligned.items():
            if m.blk_state[blk] == MEM_ONLINE and int(m.blk_group[blk]) == g.gid:
                out[blk] = list(chunks)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- memmap layout

def _section_rows(m: "Machine", g: MemoryGroup):
    """(section pfn start, block, memmap start pfn, memmap end pfn) per section."""
    pps = m.arch.pages_per_section
    first = g.rfc_altmap.base_pfn if g.rfc_altmap is not None else g.start_pfn
    for i, (ms, me) in enumerate(g.rfc_section_memmap):
        s = first + i * pps
        yield s, s // m.pages_per_block, ms, me


def vmemmap_pages_by_block(m: "Machine") -> dict[int, int]:
    """PageVmemmap pages per present hot-added block (the marking survives offline)."""
    out = {}
    for blk in np.flatnonzero((m.blk_state != 0) & ~m.blk_early):
        g = m.group_of_block(int(blk))
        if not is_rfc_group(g):
            continue
        s, e = m.block_range(int(blk))
        n = m.pages.count(P_VMEMMAP, s, e)
        if n:
            out[int(blk)] = n
    return out


def memmap_holders(m: "Machine", blk: int) -> dict[int, list[int]]:
    """Blocks whose memmap sits in ``blk`` (other than blk itself): block -> its
    sections' start pfns whose struct pages are backed by blk."""
    g = m.group_of_block(blk)
    out: dict[int, list[int]] = {}
    if not is_rfc_group(g):
        return out
    for s, dep, ms, me in _section_rows(m, g):
        if dep == blk:
            continue
        holders = {ms // m.pages_per_block, (me - 1) // m.pages_per_block}
        if blk in holders:
            out.setdefault(dep, []).append(s)
    return out


def dependents(m: "Machine", blk: int, states=(MEM_ONLINE,)) -> list[int]:
    """Blocks in one of ``states`` whose struct pages live in ``blk``."""
    gid = int(m.blk_group[blk])
    return [d for d in memmap_holders(m, blk)
            if m.blk_state[d] in states and int(m.blk_group[d]) == gid]


def hazards(m: "Machine") -> list[dict]:
    """The cross-block memmap dependencies of the RFC layout, one entry per block
    that holds the memmap of other present blocks (or held it: ``holder_state``
    "removed" means their struct pages are mapped onto memory that is gone).

    Each entry: holder, holder_state, group, dependents (present blocks whose
    struct pages sit in the holder), online_dependents, vmemmap_pfns (the pfn
    ranges of the holder that back them), struct_page_pfns (the pfn ranges
    whose struct pages an offline + unplug or remove of the holder would
    unmap), and risk: "offline" (an offline would leave online blocks' memmap
    on offline memory), "remove" (a remove would unmap struct pages of present
    blocks), "realized" (already happened: the holder is offline while
    dependents are online, or the holder was removed)."""
    out = []
    ppb = m.pages_per_block
    pps = m.arch.pages_per_section
    for gid, g in sorted(m.groups.items()):
        if not is_rfc_group(g):
            continue
        per_holder: dict[int, dict] = {}
        for s, dep, ms, me in _section_rows(m, g):
            if m.blk_state[dep] == 0 or int(m.blk_group[dep]) != gid:
                continue
            for holder in sorted({ms // ppb, (me - 1) // ppb}):
                if holder == dep:
                    continue
                h = per_holder.setdefault(holder, {"deps": set(), "vm": [], "pfns": []})
                h["deps"].add(dep)
                h["vm"].append((max(ms, holder * ppb), min(me, (holder + 1) * ppb)))
                h["pfns"].append((s, s + pps))
        for holder, h in sorted(per_holder.items()):
            present = m.blk_state[holder] != 0 and int(m.blk_group[holder]) == gid
            hstate = STATE_NAMES[int(m.blk_state[holder])] if present else "removed"
            deps = sorted(h["deps"])
            online = [d for d in deps if m.blk_state[d] == MEM_ONLINE]
            if not present or (hstate == "offline" and online):
                risk = "realized"
            elif online and hstate == "online":
                risk = "offline"
            else:
                risk = "remove"
            out.append({"holder": holder, "holder_state": hstate, "group": gid,
                        "dependents": deps, "online_dependents": online,
                        "vmemmap_pfns": _merge(h["vm"]), "struct_page_pfns": _merge(h["pfns"]),
                        "risk": risk})
    return out


def format_hazard(h: dict) -> str:
    vm = ", ".join(f"{s:#x}-{e - 1:#x}" for s, e in h["vmemmap_pfns"])
    return (f"memory{h['holder']} ({h['holder_state']}) holds the struct pages of "
            f"{block_list(h['dependents'])} ({len(h['online_dependents'])} online) "
            f"in pfns {vm}: {h['risk']}")


# ---------------------------------------------------------------- offline

def offline_check(m: "Machine", blk: int) -> HotplugError | None:
    """Every reason the RFC's offline of ``blk`` would fail, or None."""
    if m.blk_state[blk] != MEM_ONLINE:
        return HotplugError("EINVAL", f"memory{blk} is already offline", block=blk)
    if m.rfc_refuse_hazard:
        deps = dependents(m, blk, (MEM_ONLINE,))
        if deps:
            return HotplugError("EBUSY", f"memory{blk} holds the memmap (struct pages) of "
                                f"{block_list(deps)}, {_which(deps, 'online')}; refusing to "
                                "offline it (rfc_refuse_hazard)", block=blk)
    start, end = m.block_range(blk)
    # the RFC passes the whole block; PageVmemmap pages are skipped
    return offline_precheck(m, blk, skip_vmemmap=True, start=start, end=end)


def offline_block(m: "Machine", blk: int) -> None:
    """memory_block_action(MEM_OFFLINE) -> offline_pages() of the whole block."""
    err = offline_check(m, blk)
    if err is not None:
        raise err
    zone = m.zones[int(m.blk_zone[blk])]
    start, end = m.block_range(blk)
    nr_vmemmap = m.pages.count(P_VMEMMAP, start, end)
    # offline_pages() takes the whole block out of present, but the RFC's
    # online counted only the pages it freed: give the vmemmap back first, so
    # that present is right when offline_pages() recomputes the watermarks
    adjust_present_page_count(m, zone, blk, nr_vmemmap)
    # isolation, migration, test_pages_isolated and __offline_isolated_pages
    # over the whole block, skipping PageVmemmap; managed drops by the free
    # pages taken off the lists
    offline_pages(m, zone, blk, start, end, nr_vmemmap=0, skip_vmemmap=True)
    # PageVmemmap stays until hot-remove
    m.pages.release(start, end, planes=(P_BUDDY, P_HEAD, P_UNMOVABLE))
    m.blk_zone[blk] = -1
    m.blk_state[blk] = MEM_OFFLINE


# ---------------------------------------------------------------- hot-remove

def remove_check(m: "Machine", spfn: int, epfn: int, blocks) -> HotplugError | None:
    """rfc_refuse_hazard: a remove that would unmap the struct pages of blocks
    that stay present."""
    if not m.rfc_refuse_hazard:
        return None
    inside = {int(b) for b in blocks}
    for blk in sorted(inside):
        deps = [d for d in dependents(m, blk, (MEM_ONLINE, MEM_OFFLINE)) if d not in inside]
        if deps:
            s, e = m.block_range(blk)
            return HotplugError("EBUSY", f"memory{blk} [mem {_addr(m, s):#x}-"
                                f"{_addr(m, e) - 1:#x}] holds the memmap (struct pages) of "
                                f"{block_list(deps)}, {_which(deps, 'present')}; refusing to "
                                "remove it (rfc_refuse_hazard)", block=blk)
    return None


def _free_vmemmap_range(m: "Machine", g: MemoryGroup, upto: int) -> list[tuple[int, int]]:
    """free_vmemmap_range(head, start, end): vmemmap_free() of one section-memmap
    at a time, from the memmap of section row ``upto`` back to the head."""
    # PageVmemmap backing pages are not freed to the buddy (free_pagetable
    # skips them): the whole-range altmap gets them back
    calls = [g.rfc_section_memmap[i] for i in range(upto, -1, -1)]
    alt = g.rfc_altmap
    if alt is not None:
        rows = g.rfc_section_memmap[:upto + 1]
        alt.alloc -= sum(e - s for s, e in _merge(rows))
    return calls


def remove_memory(m: "Machine", spfn: int, epfn: int, blocks) -> list[tuple[int, int]]:
    """try_remove_memory() of the RFC; every block exists and is offline.
    Returns the vmemmap_free() calls made, as (start_pfn, end_pfn) of the
    section-memmap each unmapped, in call order."""
    err = remove_check(m, spfn, epfn, blocks)
    if err is not None:
        raise err
    a = m.arch
    pps = a.pages_per_section
    # what the remove does to others, before anything changes
    notes: dict[int, list[str]] = {}
    inside = {int(b) for b in blocks}
    for blk in sorted(inside):
        deps = [d for d in dependents(m, blk, (MEM_ONLINE, MEM_OFFLINE)) if d not in inside]
        if deps:
            notes.setdefault(int(m.blk_group[blk]), []).append(
                f"remove of memory{blk} unmapped the memory under the struct pages of "
                f"{block_list(deps)}, which stay present")
    calls: list[tuple[int, int]] = []
    # __remove_pages(): sections ascending; each drops a reference on the head
    for sec in range(spfn // pps, epfn // pps):
        blk = sec * pps // m.pages_per_block
        g = m.group_of_block(blk)
        if not is_rfc_group(g):
            continue
        row = sec - g.rfc_altmap.base_pfn // pps
        g.rfc_sections_removed.append(sec)
        g.rfc_head_refcount -= 1
        if g.rfc_head_refcount == 0:
            done = _free_vmemmap_range(m, g, row)
            g.rfc_teardown.extend(done)
            calls.extend(done)
            leaked = [s for s in g.rfc_sections_removed
                      if s - g.rfc_altmap.base_pfn // pps > row]
            if leaked:
                notes.setdefault(g.gid, []).append(
                    f"sections {leaked} were removed before the last reference: their "
                    "memmap was never unmapped")
            if any(m.blk_state[b] == 0 or int(m.blk_group[b]) != g.gid
                   for b in {ms // m.pages_per_block for ms, _ in done} - inside):
                notes.setdefault(g.gid, []).append(
                    "the backwards teardown read PageVmemmap of struct pages on memory "
                    "that was already removed")
    for blk in blocks:
        memmap = m.memmap_from_buddy.pop(int(blk), None)
        if memmap is not None:
            m.pages.free_pages(memmap)
    m.sec_flags[spfn // pps:epfn // pps] = 0
    m.blk_state[blocks] = 0
    m.blk_zone[blocks] = -1
    for gid in sorted(set(int(x) for x in m.blk_group[blocks])):
        g = m.groups[gid]
        g.nr_pages -= int(np.count_nonzero(m.blk_group[blocks] == gid)) * m.pages_per_block
        g.notes.extend(notes.get(gid, []))
        if g.nr_pages <= 0:
            del m.groups[gid]
    m.blk_group[blocks] = -1
    # the removed memory is gone, PageVmemmap pages with it
    m.pages.release(spfn, epfn)
    m.init_per_zone_wmark_min()
    return calls
