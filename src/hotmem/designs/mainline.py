"""The merged design (5.13, reworked in 6.6 and 6.8): each memory block carries
its own vmem_altmap and self-hosts its memmap in its first pages, which
memory_block_online() initialises as unmovable vmemmap pages before
online_pages() frees the rest; nothing scans for them (memory_block holds
nr_vmemmap_pages), and hot-remove frees each block's memmap with it."""
from __future__ import annotations

import numpy as np

from ..constants import MEM_OFFLINE, MEM_ONLINE, MIGRATE_UNMOVABLE, P_VMEMMAP, IntArray
from ..errors import ConfigError, HotplugError
from ..kernel import Kernel
from ..memory_hotplug import (
    adjust_present_page_count,
    check_memmap_room,
    memmap_from_buddy,
    mhp_supports_memmap_on_memory,
    move_pfn_range_to_zone,
    offline_pages,
    offline_precheck,
    online_pages,
    register_added_range,
    shrink_zone_span,
    unregister_removed_range,
    zone_for_pfn_range,
)
from ..memremap import VmemAltmap
from ..mmzone import Zone
from ..sparse import online_mem_sections, populate_altmap, vmemmap_pages_per_block
from ..state import MachineState, MemoryGroup
from .base import Design

KPF_RESERVED = 1 << 32
KPF_OWNER_PRIVATE = 1 << 37   # PG_vmemmap_self_hosted (PG_owner_priv_1)


class Mainline(Design):
    """Memmap on memory as merged: one altmap per memory block."""

    name = "mainline"
    @property
    def batchable(self) -> bool:
        """The one-pass path does what Mainline's online_block / do_offline
        do; a subclass that changes either (a patch under review) goes block
        by block through its own methods."""
        cls = type(self)
        return all(getattr(cls, n) is getattr(Mainline, n)
                   for n in ("online_block", "do_offline", "offline_check", "verdict"))

    def check_settings(self, kernel: Kernel, memmap_on_memory: str) -> None:
        if memmap_on_memory == "force" and not kernel.has_force_mode:
            raise ConfigError(f"memmap_on_memory=force needs kernel 6.6 or later "
                              f"(kernel {kernel} parses the parameter as a bool)")

    def scenario_overrides(self, machine: dict[str, object]) -> dict[str, object]:
        mode = str(machine.get("memmap_on_memory", "n")).lower()
        return {"memmap_on_memory": mode if mode not in ("n", "0", "false") else "y"}

    def verdict(self, m: MachineState, size: int | None) -> tuple[bool, str]:
        return mhp_supports_memmap_on_memory(m.arch, m.kernel, m.memmap_on_memory,
                                             m.block_size, size)

    def rejects_unsupported_request(self, m: MachineState) -> bool:
        return m.kernel.explicit_request_fails

    # ---- hot-add

    def add_memory(self, m: MachineState, spfn: int, epfn: int, nid: int,
                   supported: bool, group: MemoryGroup) -> None:
        alt = None
        if supported:
            # one altmap per block (6.8 splits multi-block requests; before,
            # only single-block requests got here)
            alt = VmemAltmap(base_pfn=spfn, end_pfn=spfn + m.pages_per_block - 1,
                             free=vmemmap_pages_per_block(m.arch, m.block_size,
                                                          m.memmap_on_memory))
            if m.kernel.explicit_request_fails:
                # 5.13 .. 6.5: the altmap offers the whole block; what population
                # consumed becomes memory_block.nr_vmemmap_pages
                alt.free = m.pages_per_block
            populate_altmap(m, alt, spfn)
            if m.kernel.explicit_request_fails:
                alt.free = alt.alloc + alt.align
        else:
            check_memmap_room(m, spfn, epfn, nid)
        # nothing can fail from here on
        register_added_range(m, group, spfn, epfn)
        blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
        if alt is not None:
            m.blk_altmap[blocks] = True
            m.alt_free[blocks] = alt.free
            m.alt_alloc[blocks] = alt.alloc
            m.alt_align[blocks] = alt.align
        else:
            memmap_from_buddy(m, blocks, nid)

    # ---- online

    def online_block(self, m: MachineState, blk: int, online_type: int) -> Zone:
        start, end = m.block_range(blk)
        nid = int(m.blk_nid[blk])
        zone = zone_for_pfn_range(m, online_type, nid, m.group_of_block(blk),
                                  start, m.pages_per_block)
        nr_vmemmap = m.nr_vmemmap_pages(blk)
        if nr_vmemmap:
            # mhp_init_memmap_on_memory(): the memmap pages join the zone, unmovable
            move_pfn_range_to_zone(m, zone, start, nr_vmemmap, MIGRATE_UNMOVABLE)
            m.pages.set(P_VMEMMAP, start, start + nr_vmemmap)
            if nr_vmemmap >= m.arch.pages_per_section:
                pps = m.arch.pages_per_section
                online_mem_sections(m, start, (start + nr_vmemmap) // pps * pps)
        online_pages(m, zone, blk, start + nr_vmemmap, end)
        if nr_vmemmap:
            adjust_present_page_count(m, zone, blk, nr_vmemmap)
        m.blk_zone[blk] = zone.zid
        m.blk_state[blk] = MEM_ONLINE
        return zone

    # ---- offline

    def offline_check(self, m: MachineState, blk: int) -> HotplugError | None:
        start, end = m.block_range(blk)
        return offline_precheck(m, blk, start + m.nr_vmemmap_pages(blk), end)

    def do_offline(self, m: MachineState, blk: int) -> None:
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

    # ---- hot-remove

    def remove_memory(self, m: MachineState, spfn: int, epfn: int, blocks: IntArray) -> None:
        has = m.blk_altmap[blocks]
        if has.any() and not has.all():
            raise HotplugError("EINVAL", "range mixes blocks with and without altmaps")
        if has.any() and len(blocks) > 1 and m.kernel.remove_needs_single_block:
            raise HotplugError("EINVAL", f"Refuse to remove {m.addr(spfn):#x} - "
                               f"{m.addr(epfn):#x}, wrong granularity")
        # vmemmap_free() returns each leaf to its altmap: alloc goes back to 0
        m.alt_alloc[blocks] = 0
        m.alt_align[blocks] = 0
        m.alt_free[blocks] = 0
        m.blk_altmap[blocks] = False
        unregister_removed_range(m, spfn, epfn, blocks)

    # ---- what the views show

    def memmap_kpageflags(self, m: MachineState) -> int:
        bits = 0
        if m.kernel.vmemmap_reserved:
            bits |= KPF_RESERVED
        if m.kernel.vmemmap_self_hosted_flag:
            bits |= KPF_OWNER_PRIVATE
        return bits

    def vmemmap_pages_by_block(self, m: MachineState) -> dict[int, int]:
        hot = np.flatnonzero((m.blk_state != 0) & ~m.blk_early & m.blk_altmap)
        return {int(b): int(m.alt_free[b]) for b in hot if m.alt_free[b]}


DESIGN = Mainline()
