"""The 2018 RFC design: "mm, memory_hotplug: allocate memmap from the added memory
range for sparse-vmemmap" (O. Salvador, RFC PATCH 3/4, 2018-11-16, never merged),
on its 4.20 base.  Selected with ``design = "rfc2018"``; memory_hotplug.py asks it
after its generic checks.

What differs from mainline (the patch as posted and its review:
shared/seed/rfc-2018-review-thread.txt; docs/kernel-notes.md §RFC):

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
  time, down to the head (:attr:`RfcGroupState.teardown`).

Not modelled: the compaction migrate scanner (hotmem has no compaction),
free_pages_check and do_migrate_range skips (no vmemmap page ever reaches them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..constants import (
    FREE_STRATEGIES,
    MEM_OFFLINE,
    MEM_ONLINE,
    MIGRATE_MOVABLE,
    ONLINE_TYPE_NAMES,
    P_BUDDY,
    P_HEAD,
    P_RESERVED,
    P_UNMOVABLE,
    P_VMEMMAP,
    STATE_NAMES,
    IntArray,
)
from ..errors import ConfigError, HotplugError
from ..kernel import Kernel
from ..memory import block_list
from ..memory_hotplug import (
    adjust_present_page_count,
    check_memmap_room,
    memmap_from_buddy,
    move_pfn_range_to_zone,
    offline_pages,
    offline_precheck,
    register_added_range,
    unregister_removed_range,
    zone_for_pfn_range,
)
from ..memremap import VmemAltmap
from ..mmzone import Zone
from ..page_alloc import init_per_zone_wmark_min
from ..sparse import online_mem_sections
from ..state import Hazard, MachineState, MemoryGroup
from .base import Design

KPF_RESERVED = 1 << 32


@dataclass
class RfcGroupState:
    """The RFC's record of one add_memory request: the one altmap of the whole
    request (whole-range accounting: alloc = vmemmap pages still mapped), the
    head (first vmemmap pfn) and its refcount (sections served), nr_sects, the
    vmemmap pages of the request, where each section's memmap sits (pfn
    ranges, one row per section of the request), the mark_vmemmap_pages()
    calls, the sections removed and the teardown's vmemmap_free() calls, and
    per block the chunks the 4.20 online rule freed misaligned."""

    altmap: VmemAltmap
    head_pfn: int
    head_refcount: int
    nr_sects: int
    vmemmap_pages: int
    section_memmap: list[tuple[int, int]]
    flush_log: list[tuple[int, int, int]]
    sections_removed: list[int] = field(default_factory=list)
    teardown: list[tuple[int, int]] = field(default_factory=list)
    misaligned: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


def rfc_state(g: MemoryGroup | None) -> RfcGroupState | None:
    """The RFC record of a request whose memmap was allocated from its own range."""
    st = g.design_state if g is not None else None
    return st if isinstance(st, RfcGroupState) else None


def _which(ids: list[int], state: str) -> str:
    return f"which {'is' if len(ids) == 1 else 'are'} {state}" if state == "online" else \
        f"which {'stays' if len(ids) == 1 else 'stay'} {state}"


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


class Rfc2018(Design):
    """The 2018 RFC on its 4.20 base; options ``rfc_alignment_fix`` (the 2019
    fix of online_pages_blocks) and ``rfc_refuse_hazard`` (refuse to offline or
    remove a block holding the memmap of present blocks, with EBUSY)."""

    name = "rfc2018"
    has_cross_block_memmap = True
    memmap_stays_marked_offline = True
    free_blocks_aligned = False
    default_kernel = "4.20"
    default_memmap_on_memory = "y"
    options = ("rfc_alignment_fix", "rfc_refuse_hazard")

    def __init__(self, rfc_alignment_fix: bool = False, rfc_refuse_hazard: bool = False):
        self.alignment_fix = rfc_alignment_fix
        self.refuse_hazard = rfc_refuse_hazard

    def configured(self, **options: Any) -> Rfc2018:
        for k, v in options.items():
            if k not in self.options or not isinstance(v, bool):
                raise ConfigError(f"design rfc2018: option {k}={str(v)[:20]} is not one of "
                                  f"{', '.join(self.options)} (true/false)")
        return Rfc2018(**options)

    def check_settings(self, kernel: Kernel, memmap_on_memory: str) -> None:
        if kernel.has_memmap_on_memory:
            raise ConfigError(f"design rfc2018 is a patch on 4.20; kernel {kernel} has the "
                              "merged memmap_on_memory (use design = \"mainline\")")

    def scenario_overrides(self, machine: dict[str, object]) -> dict[str, object]:
        # the RFC is a patch on 4.20: the scenario's kernel does not apply
        return {"memmap_on_memory": "y", "kernel": "4.20"}

    def verdict(self, m: MachineState, size: int | None) -> tuple[bool, str]:
        if m.memmap_on_memory == "n":
            return False, "memmap_on_memory=n"
        if not m.arch.memmap_from_range:
            return False, "s390 arch_add_memory clears MHP_MEMMAP_FROM_RANGE"
        return True, "MHP_MEMMAP_FROM_RANGE"

    def free_strategy(self) -> str:
        """online_pages_blocks() as the RFC's base had it, or with the 2019 fix."""
        return "get_order_aligned" if self.alignment_fix else "get_order"

    # ---------------------------------------------------------------- hot-add

    def _populate_range(self, m: MachineState, spfn: int, epfn: int) -> RfcGroupState:
        """__add_pages() with the RFC's stack altmap over the whole request:
        sparse_add_one_section() per section ascending, vmemmap_populate() from
        the altmap, then the flush callback mark_vmemmap_pages().  Pure: returns
        the plan, changes nothing."""
        a = m.arch
        pps = a.pages_per_section
        unit = a.vmemmap_chunk_pages
        unit_bytes = unit << a.page_shift
        alt = VmemAltmap(base_pfn=spfn, end_pfn=epfn - 1, free=epfn - spfn)
        # sections whose memmap fills one whole section: the head refcount passes
        # a multiple of this each time nr_sects grows (64 on x86_64)
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
            lo = hi = -1
            for u in range(vs // unit_bytes, -(-ve // unit_bytes)):
                if u not in unit_pfn:
                    pfn = alt.alloc_block_buf(unit)
                    if pfn is None:
                        raise HotplugError("ENOMEM", f"the altmap of [mem {m.addr(spfn):#x}-"
                                           f"{m.addr(epfn) - 1:#x}] cannot hold the memmap "
                                           f"of section {sec}", pfn=sec * pps)
                    unit_pfn[u] = pfn
                lo = unit_pfn[u] if lo < 0 else min(lo, unit_pfn[u])
                hi = max(hi, unit_pfn[u] + unit)
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
        marked = _merge(marked)
        return RfcGroupState(
            altmap=VmemAltmap(base_pfn=spfn, end_pfn=epfn - 1, free=epfn - spfn,
                              alloc=total_alloc, align=total_align),
            head_pfn=marked[0][0] if marked else spfn, head_refcount=head_refcount,
            nr_sects=nr_sects, vmemmap_pages=total_alloc, section_memmap=section_memmap,
            flush_log=flush_log, teardown=[], sections_removed=[],
            misaligned={})

    def add_memory(self, m: MachineState, spfn: int, epfn: int, nid: int,
                   supported: bool, group: MemoryGroup) -> None:
        """add_memory_resource() with MHP_MEMMAP_FROM_RANGE (always set by the
        RFC; s390's arch_add_memory clears it, as does memmap_on_memory=n here)."""
        blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
        plan = None
        if supported:
            plan = self._populate_range(m, spfn, epfn)
        else:
            check_memmap_room(m, spfn, epfn, nid)
        # nothing can fail from here on
        group.memmap_on_memory = plan is not None
        register_added_range(m, group, spfn, epfn)
        if plan is not None:
            group.design_state = plan
            # the pfns each section consumed, PageVmemmap: PG_reserved + mapping
            for s, e in _merge([(first, first + n) for _, first, n in plan.flush_log if n]):
                m.pages.set(P_VMEMMAP, s, e)
                m.pages.set(P_RESERVED, s, e)
        else:
            memmap_from_buddy(m, blocks, nid)

    # ---------------------------------------------------------------- online

    def online_ranges(self, m: MachineState, start: int,
                      end: int) -> tuple[list[tuple[int, int]], int]:
        """The RFC's online_pages_range(): look at every pfn of the block for a
        PageVmemmap page; if there is one, go section by section, count its
        vmemmap pages v and online [section_start + v, section_end) (nothing when
        the whole section is memmap).  Returns the ranges and the pfns the scans
        read."""
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

    def online_block(self, m: MachineState, blk: int, online_type: int) -> Zone:
        """memory_block_action(MEM_ONLINE) -> online_pages() of the RFC."""
        start, end = m.block_range(blk)
        nid = int(m.blk_nid[blk])
        g = m.group_of_block(blk)
        zone = zone_for_pfn_range(m, online_type, nid, g, start, m.pages_per_block)
        # move_pfn_range_to_zone(): the whole block, vmemmap included, joins the
        # zone; memmap_init_zone() leaves PageVmemmap pages as they are
        move_pfn_range_to_zone(m, zone, start, end - start, MIGRATE_MOVABLE)
        ranges, _ = self.online_ranges(m, start, end)
        strategy = FREE_STRATEGIES[self.free_strategy()]
        misaligned: list[tuple[int, int]] = []
        freed = 0
        for s, e in ranges:
            freed += m.pages.free_range(s, e, strategy, misaligned)
        # __free_pages_core: managed grows per chunk; online_pages: present grows
        # by the pages onlined, which leaves the vmemmap out
        zone.managed_pages += freed
        adjust_present_page_count(m, zone, blk, freed)
        online_mem_sections(m, start, end)
        init_per_zone_wmark_min(m)
        st = rfc_state(g)
        if st is not None:
            st.misaligned[blk] = misaligned
        if g is not None and not freed:
            g.notes.append(f"memory{blk} went online with 0 pages: it is all memmap "
                           f"({ONLINE_TYPE_NAMES.get(online_type, online_type)})")
        m.blk_zone[blk] = zone.zid
        m.blk_state[blk] = MEM_ONLINE
        return zone

    def misaligned_chunks(self, m: MachineState) -> dict[int, list[tuple[int, int]]]:
        """Per online block: the (pfn, order) buddy blocks its online freed misaligned."""
        out = {}
        for g in m.groups.values():
            st = rfc_state(g)
            if st is None:
                continue
            for blk, chunks in st.misaligned.items():
                if m.blk_state[blk] == MEM_ONLINE and int(m.blk_group[blk]) == g.gid:
                    out[blk] = list(chunks)
        return dict(sorted(out.items()))

    # ---------------------------------------------------------------- memmap layout

    @staticmethod
    def _section_rows(m: MachineState, st: RfcGroupState) -> list[tuple[int, int, int, int]]:
        """(section pfn start, block, memmap start pfn, memmap end pfn) per section."""
        pps = m.arch.pages_per_section
        first = st.altmap.base_pfn
        return [(first + i * pps, (first + i * pps) // m.pages_per_block, ms, me)
                for i, (ms, me) in enumerate(st.section_memmap)]

    def vmemmap_pages_by_block(self, m: MachineState) -> dict[int, int]:
        """PageVmemmap pages per present hot-added block (the marking survives offline)."""
        out = {}
        for blk in m.hot_blocks():
            if rfc_state(m.group_of_block(int(blk))) is None:
                continue
            s, e = m.block_range(int(blk))
            n = m.pages.count(P_VMEMMAP, s, e)
            if n:
                out[int(blk)] = n
        return out

    def memmap_holders(self, m: MachineState, blk: int) -> dict[int, list[int]]:
        """Blocks whose memmap sits in ``blk`` (other than blk itself): block -> its
        sections' start pfns whose struct pages are backed by blk."""
        st = rfc_state(m.group_of_block(blk))
        out: dict[int, list[int]] = {}
        if st is None:
            return out
        for s, dep, ms, me in self._section_rows(m, st):
            if dep == blk:
                continue
            holders = {ms // m.pages_per_block, (me - 1) // m.pages_per_block}
            if blk in holders:
                out.setdefault(dep, []).append(s)
        return out

    def dependents(self, m: MachineState, blk: int,
                   states: tuple[int, ...] = (MEM_ONLINE,)) -> list[int]:
        """Blocks in one of ``states`` whose struct pages live in ``blk``."""
        gid = int(m.blk_group[blk])
        return [d for d in self.memmap_holders(m, blk)
                if m.blk_state[d] in states and int(m.blk_group[d]) == gid]

    def hazards(self, m: MachineState) -> list[Hazard]:
        """The cross-block memmap dependencies of the RFC layout, one entry per
        block that holds the memmap of other present blocks (or held it:
        ``holder_state`` "removed" means their struct pages are mapped onto
        memory that is gone).

        Each entry: holder, holder_state, group, dependents (present blocks whose
        struct pages sit in the holder), online_dependents, vmemmap_pfns (the pfn
        ranges of the holder that back them), struct_page_pfns (the pfn ranges
        whose struct pages an offline + unplug or remove of the holder would
        unmap), and risk: "offline" (an offline would leave online blocks'
        memmap on offline memory), "remove" (a remove would unmap struct pages of
        present blocks), "realized" (already happened: the holder is offline
        while dependents are online, or the holder was removed)."""
        out: list[Hazard] = []
        ppb = m.pages_per_block
        pps = m.arch.pages_per_section
        for gid, g in sorted(m.groups.items()):
            st = rfc_state(g)
            if st is None:
                continue
            per_holder: dict[int, tuple[set[int], list[tuple[int, int]],
                                        list[tuple[int, int]]]] = {}
            for s, dep, ms, me in self._section_rows(m, st):
                if m.blk_state[dep] == 0 or int(m.blk_group[dep]) != gid:
                    continue
                for holder in sorted({ms // ppb, (me - 1) // ppb}):
                    if holder == dep:
                        continue
                    deps_, vm, pfns = per_holder.setdefault(holder, (set(), [], []))
                    deps_.add(dep)
                    vm.append((max(ms, holder * ppb), min(me, (holder + 1) * ppb)))
                    pfns.append((s, s + pps))
            for holder, (deps_, vm, pfns) in sorted(per_holder.items()):
                present = m.blk_state[holder] != 0 and int(m.blk_group[holder]) == gid
                hstate = STATE_NAMES[int(m.blk_state[holder])] if present else "removed"
                deps = sorted(deps_)
                online = [d for d in deps if m.blk_state[d] == MEM_ONLINE]
                if not present or (hstate == "offline" and online):
                    risk = "realized"
                elif online and hstate == "online":
                    risk = "offline"
                else:
                    risk = "remove"
                out.append({"holder": holder, "holder_state": hstate, "group": gid,
                            "dependents": deps, "online_dependents": online,
                            "vmemmap_pfns": _merge(vm), "struct_page_pfns": _merge(pfns),
                            "risk": risk})
        return out

    def format_hazard(self, h: Hazard) -> str:
        vm = ", ".join(f"{s:#x}-{e - 1:#x}" for s, e in h["vmemmap_pfns"])
        return (f"memory{h['holder']} ({h['holder_state']}) holds the struct pages of "
                f"{block_list(h['dependents'])} ({len(h['online_dependents'])} online) "
                f"in pfns {vm}: {h['risk']}")

    # ---------------------------------------------------------------- offline

    def offline_check(self, m: MachineState, blk: int) -> HotplugError | None:
        """Every reason the RFC's offline of ``blk`` would fail, or None."""
        if m.blk_state[blk] != MEM_ONLINE:
            return HotplugError("EINVAL", f"memory{blk} is already offline", block=blk)
        if self.refuse_hazard:
            deps = self.dependents(m, blk, (MEM_ONLINE,))
            if deps:
                return HotplugError("EBUSY", f"memory{blk} holds the memmap (struct pages) of "
                                    f"{block_list(deps)}, {_which(deps, 'online')}; refusing "
                                    "to offline it (rfc_refuse_hazard)", block=blk)
        start, end = m.block_range(blk)
        # the RFC passes the whole block; PageVmemmap pages are skipped
        return offline_precheck(m, blk, start, end, skip_vmemmap=True)

    def do_offline(self, m: MachineState, blk: int) -> None:
        """memory_block_action(MEM_OFFLINE) -> offline_pages() of the whole block."""
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
        m.pages.release(start, end, planes=[P_BUDDY, P_HEAD, P_UNMOVABLE])
        m.blk_zone[blk] = -1
        m.blk_state[blk] = MEM_OFFLINE

    # ---------------------------------------------------------------- hot-remove

    def remove_check(self, m: MachineState, blocks: IntArray) -> HotplugError | None:
        """rfc_refuse_hazard: a remove that would unmap the struct pages of blocks
        that stay present."""
        if not self.refuse_hazard:
            return None
        inside = {int(b) for b in blocks}
        for blk in sorted(inside):
            deps = [d for d in self.dependents(m, blk, (MEM_ONLINE, MEM_OFFLINE))
                    if d not in inside]
            if deps:
                s, e = m.block_range(blk)
                return HotplugError("EBUSY", f"memory{blk} [mem {m.addr(s):#x}-"
                                    f"{m.addr(e) - 1:#x}] holds the memmap (struct pages) of "
                                    f"{block_list(deps)}, {_which(deps, 'present')}; refusing "
                                    "to remove it (rfc_refuse_hazard)", block=blk)
        return None

    @staticmethod
    def _free_vmemmap_range(st: RfcGroupState, upto: int) -> list[tuple[int, int]]:
        """free_vmemmap_range(head, start, end): vmemmap_free() of one
        section-memmap at a time, from the memmap of section row ``upto`` back to
        the head."""
        # PageVmemmap backing pages are not freed to the buddy (free_pagetable
        # skips them): the whole-range altmap gets them back
        calls = [st.section_memmap[i] for i in range(upto, -1, -1)]
        st.altmap.alloc -= sum(e - s for s, e in _merge(st.section_memmap[:upto + 1]))
        return calls

    def remove_memory(self, m: MachineState, spfn: int, epfn: int, blocks: IntArray) -> None:
        """try_remove_memory() of the RFC; every block exists and is offline.
        The vmemmap_free() calls made land in RfcGroupState.teardown, as
        (start_pfn, end_pfn) of the section-memmap each unmapped, in call order."""
        err = self.remove_check(m, blocks)
        if err is not None:
            raise err
        pps = m.arch.pages_per_section
        # what the remove does to others, before anything changes
        notes: dict[int, list[str]] = {}
        inside = {int(b) for b in blocks}
        for blk in sorted(inside):
            deps = [d for d in self.dependents(m, blk, (MEM_ONLINE, MEM_OFFLINE))
                    if d not in inside]
            if deps:
                notes.setdefault(int(m.blk_group[blk]), []).append(
                    f"remove of memory{blk} unmapped the memory under the struct pages of "
                    f"{block_list(deps)}, which stay present")
        # __remove_pages(): sections ascending; each drops a reference on the head
        for sec in range(spfn // pps, epfn // pps):
            blk = sec * pps // m.pages_per_block
            g = m.group_of_block(blk)
            st = rfc_state(g)
            if g is None or st is None:
                continue
            row = sec - st.altmap.base_pfn // pps
            st.sections_removed.append(sec)
            st.head_refcount -= 1
            if st.head_refcount == 0:
                done = self._free_vmemmap_range(st, row)
                st.teardown.extend(done)
                leaked = [s for s in st.sections_removed if s - st.altmap.base_pfn // pps > row]
                if leaked:
                    notes.setdefault(g.gid, []).append(
                        f"sections {leaked} were removed before the last reference: their "
                        "memmap was never unmapped")
                if any(m.blk_state[b] == 0 or int(m.blk_group[b]) != g.gid
                       for b in {ms // m.pages_per_block for ms, _ in done} - inside):
                    notes.setdefault(g.gid, []).append(
                        "the backwards teardown read PageVmemmap of struct pages on memory "
                        "that was already removed")
        # the removed memory is gone, PageVmemmap pages with it
        unregister_removed_range(m, spfn, epfn, blocks, notes)

    # ---------------------------------------------------------------- views

    def memmap_kpageflags(self, m: MachineState) -> int:
        return KPF_RESERVED  # PageVmemmap: PG_reserved + mapping magic, not exported


DESIGN = Rfc2018()
