"""mm/memory_hotplug.c as hotmem models it: add_memory(), the eligibility of
memmap on memory, zone choice, memory_block_online() / online_pages(),
memory_block_offline() / offline_pages(), and try_remove_memory().

The design (``m.design``, see hotmem.designs) decides where the memmap goes
and how a block is onlined, offlined and removed; what every design shares is
here.  Every operation checks all that can fail before it changes anything,
so a failure leaves the machine exactly as it was (the kernel undoes its
work; see docs/kernel-notes.md for where its undo is not exact).
"""
from __future__ import annotations

import numpy as np

from . import _blockops, _core
from .arch import Arch
from .constants import (
    FREE_STRATEGIES,
    MAX_NR_ZONES,
    MEM_OFFLINE,
    MEM_ONLINE,
    MHP_MEMMAP_ON_MEMORY,
    MIGRATE_MOVABLE,
    MMOP_OFFLINE,
    MMOP_ONLINE,
    MMOP_ONLINE_KERNEL,
    MMOP_ONLINE_MOVABLE,
    ONLINE_TYPES,
    P_BUDDY,
    P_DIRTY,
    P_OFFLINE,
    P_UNMOVABLE,
    P_VMEMMAP,
    SECTION_IS_ONLINE,
    ZONE_DEVICE,
    ZONE_MOVABLE,
    ZONE_NORMAL,
    GiB,
    IntArray,
    MiB,
)
from .errors import ConfigError, HotplugError
from .kernel import Kernel
from .mmzone import Zone
from .page_alloc import (
    MIGRATE_PCPTYPES,
    SWAP_CLUSTER_MAX,
    WATERMARK_SCALE_FACTOR,
    alloc_memmap,
    init_per_zone_wmark_min,
    memmap_chunks_needed,
    migration_room,
    migration_targets,
)
from .page_isolation import (
    start_isolate_page_range,
    test_pages_isolated,
    undo_isolate_page_range,
    unmovable_page,
)
from .sparse import memmap_units, online_mem_sections, sparse_add_sections, vmemmap_pages_per_block
from .state import MachineState, MemoryGroup
from .units import parse_addr, parse_size
from .validate import check_remove_range

# offline_pages() retries migration until a signal arrives.  hotmem's state is
# deterministic, so a round that cannot make progress never will: it ends the
# offline at once with the -EINTR a signal (the user's timeout) would give.


# ---------------------------------------------------------------- memmap on memory

def arch_supports_memmap_on_memory(arch: Arch, vmemmap_size: int) -> bool:
    """arch_supports_memmap_on_memory() on the memmap size in bytes of one block."""
    if arch.memmap_hook == "never":
        return False
    if arch.memmap_hook == "ppc-radix" and arch.page_shift == 16:
        # 64K radix: the memmap is mapped with base pages, no PMD rule
        return True
    return vmemmap_size % arch.pmd_size == 0


def mhp_supports_memmap_on_memory(arch: Arch, kernel: Kernel, mode: str, block_size: int,
                                  size: int | None = None) -> tuple[bool, str]:
    """mhp_supports_memmap_on_memory() as the era has it: (supported, reason).

    ``size`` is the size of the add_memory request for the eras (5.13 .. 6.7)
    that only self-host the memmap of single-block requests.
    """
    if mode == "n":
        return False, "memory_hotplug.memmap_on_memory=N"
    if not kernel.has_memmap_on_memory:
        return False, f"kernel {kernel} has no memmap_on_memory (5.13+)"
    if arch.memmap_on_memory_since is None or not kernel.at_least(*arch.memmap_on_memory_since):
        since = arch.memmap_on_memory_since
        return False, (f"{arch.name} does not select ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE"
                       + (f" before {since[0]}.{since[1]}" if since else ""))
    if mode == "force" and not kernel.has_force_mode:
        return False, f"memmap_on_memory=force needs 6.6 (kernel {kernel})"
    block_pages = arch.block_pages(block_size)
    vmemmap_size = block_pages * arch.struct_page_size
    if kernel.single_block_memmap_on_memory and size is not None and size != block_size:
        return False, (f"request of {size:#x} bytes is not one memory block "
                       f"({block_size:#x}); kernel {kernel} self-hosts single blocks only")
    if not kernel.has_force_mode:
        # 5.13 .. 6.5: PMD-aligned memmap and pageblock-aligned remainder
        remaining = block_size - vmemmap_size
        if vmemmap_size % arch.pmd_size:
            return False, f"memmap of a block ({vmemmap_size:#x} bytes) is not PMD aligned"
        if remaining % (arch.pageblock_nr_pages << arch.page_shift):
            return False, "memory after the memmap is not pageblock aligned"
        return True, "supported"
    if vmemmap_size % arch.page_size:
        return False, "memmap of a block is not a whole number of pages"
    pages = vmemmap_pages_per_block(arch, block_size, mode)
    if pages % arch.pageblock_nr_pages:
        return False, (f"{pages} memmap pages per block are not a multiple of "
                       f"pageblock_nr_pages ({arch.pageblock_nr_pages})")
    if pages == block_pages:
        return False, "the memmap would fill the whole block"
    if not arch_supports_memmap_on_memory(arch, vmemmap_size):
        if arch.memmap_hook == "never":
            return False, f"{arch.name}: the arch hook refuses (no radix MMU)"
        return False, (f"memmap of a block ({vmemmap_size:#x} bytes) is not a multiple "
                       f"of PMD_SIZE ({arch.pmd_size:#x})")
    return True, "supported"


# ---------------------------------------------------------------- zones

def default_kernel_zone_for_pfn(m: MachineState, nid: int, start_pfn: int,
                                nr_pages: int) -> Zone:
    """The first zone below ZONE_NORMAL intersecting the range, else ZONE_NORMAL."""
    for ztype in range(ZONE_NORMAL):
        z = m.zone(nid, ztype)
        if z.intersects(start_pfn, nr_pages):
            return z
    return m.zone(nid, ZONE_NORMAL)


def default_zone_for_pfn(m: MachineState, nid: int, start_pfn: int, nr_pages: int) -> Zone:
    """contig-zones: keep the range in the one zone it already intersects."""
    kernel_zone = default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    movable_zone = m.zone(nid, ZONE_MOVABLE)
    in_kernel = kernel_zone.intersects(start_pfn, nr_pages)
    in_movable = movable_zone.intersects(start_pfn, nr_pages)
    if in_kernel ^ in_movable:
        return kernel_zone if in_kernel else movable_zone
    return movable_zone if m.movable_node else kernel_zone


def auto_movable_can_online_movable(m: MachineState, nid: int | None,
                                    group: MemoryGroup | None, nr_pages: int) -> bool:
    """Would nr_pages more in ZONE_MOVABLE keep MOVABLE:KERNEL_EARLY within the
    ratio?  Kernel memory inside a dynamic memory group buys movable memory in
    that group only: the other dynamic groups' share is taken out first."""
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
    # walk_dynamic_memory_groups(nid, auto_movable_stats_account_group, group)
    req = grp_movable = 0
    for g in m.groups.values():
        if not g.is_dynamic or g is group or (nid is not None and g.nid != nid):
            continue
        pages = g.present_movable_pages * 100 // m.auto_movable_ratio - g.present_kernel_pages
        if pages > 0:
            req += pages
        grp_movable += g.present_movable_pages
    if kernel_early <= req:
        return False
    kernel_early -= req
    movable -= grp_movable
    if group is not None and group.is_dynamic:
        kernel_early += group.present_kernel_pages
    movable += nr_pages
    return movable <= (m.auto_movable_ratio * kernel_early) // 100


def auto_movable_zone_for_pfn(m: MachineState, nid: int, group: MemoryGroup | None,
                              start_pfn: int, nr_pages: int) -> Zone:
    """online_policy=auto-movable (auto_movable_zone_for_pfn, 5.15+): static
    groups online all their memory movable or none; dynamic groups by unit."""
    if m.auto_movable_ratio:
        online = 0
        if group is not None and not group.is_dynamic:
            max_pages = group.max_pages
            online = group.present_movable_pages
            if group.present_kernel_pages:
                return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
        elif group is None or group.unit_pages == nr_pages:
            max_pages = nr_pages
        else:
            # a unit bigger than a block: count what of the aligned unit is
            # online, section by section; any kernel section decides
            max_pages = group.unit_pages
            pps = m.arch.pages_per_section
            ustart = start_pfn // group.unit_pages * group.unit_pages
            for pfn in range(ustart, ustart + group.unit_pages, pps):
                if not m.section_online(pfn):
                    continue
                zid = m.pages.pageblock(pfn)[2]
                if zid < 0 or m.zones[zid].ztype != ZONE_MOVABLE:
                    return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
                online += pps
        want = max_pages - online
        if (auto_movable_can_online_movable(m, None, group, want)
                and (not m.auto_movable_numa_aware
                     or auto_movable_can_online_movable(m, nid, group, want))):
            return m.zone(nid, ZONE_MOVABLE)
    return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)


def zone_for_pfn_range(m: MachineState, online_type: int, nid: int,
                       group: MemoryGroup | None, start_pfn: int, nr_pages: int) -> Zone:
    """zone_for_pfn_range(): the zone an online of this type would use."""
    if online_type == MMOP_ONLINE_KERNEL:
        return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    if online_type == MMOP_ONLINE_MOVABLE:
        return m.zone(nid, ZONE_MOVABLE)
    if m.online_policy == "auto-movable":
        return auto_movable_zone_for_pfn(m, nid, group, start_pfn, nr_pages)
    return default_zone_for_pfn(m, nid, start_pfn, nr_pages)


def shrink_zone_span(m: MachineState, zone: Zone, start_pfn: int, end_pfn: int) -> None:
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


def move_pfn_range_to_zone(m: MachineState, zone: Zone, start: int, nr: int,
                           migratetype: int) -> None:
    """Span the zone over the range and initialise its pageblocks."""
    zone.resize_range(start, nr)
    m.pages.set_pageblocks(start, start + nr, migratetype, zone.zid)


def adjust_present_page_count(m: MachineState, zone: Zone, blk: int, nr: int) -> None:
    zone.present_pages += nr
    if m.blk_early[blk]:
        zone.present_early_pages += nr
    group = m.group_of_block(blk)
    if group is not None:
        if zone.ztype == ZONE_MOVABLE:
            group.present_movable_pages += nr
        else:
            group.present_kernel_pages += nr


# ---------------------------------------------------------------- hot-add

def default_add_start(m: MachineState) -> int:
    """Right after the highest present memory, block aligned; on x86 never
    below 4 GiB (the PCI hole), as QEMU's device-memory region starts there."""
    end = max(m.max_pfn() << m.arch.page_shift,
              max(e for _, e in m.boot_ranges) << m.arch.page_shift)
    if m.arch.pc_layout:
        end = max(end, 4 * GiB)
    return -(-end // m.block_size) * m.block_size


def check_add_range(m: MachineState, start: int, size: int) -> tuple[int, int]:
    """check_hotplug_memory_range() and the resource checks of add_memory():
    the pfn range, or the error the kernel gives."""
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
    return spfn, epfn


def add_memory(m: MachineState, start: int | str | None, size: int | str, nid: int = 0,
               mhp_flags: int = 0, driver: str = "acpi",
               group: MemoryGroup | None = None) -> list[int]:
    """add_memory() of one device with the MHP_* flags its driver passes;
    returns the ids of the new memory blocks (offline unless auto-onlined).

    With MHP_MEMMAP_ON_MEMORY the memmap goes on the memory where the design
    and era support it; where they do not, the design says whether the add
    fails with EINVAL (before 6.6) or falls back to a memmap from online memory.
    Without ``group`` the device gets a static memory group of its own (as
    the ACPI driver registers one per DIMM); with MHP_NID_IS_MGID a driver
    passes its group (add_memory_driver_managed)."""
    size = parse_size(size, "size")
    start = default_add_start(m) if start is None else parse_addr(start, "start")
    if isinstance(nid, bool) or not isinstance(nid, int) or not 0 <= nid < m.nr_nodes:
        raise HotplugError("EINVAL", f"node {str(nid)[:20]} is not possible")
    spfn, epfn = check_add_range(m, start, size)
    supported, why = m.design.verdict(m, size)
    asked = bool(mhp_flags & MHP_MEMMAP_ON_MEMORY)
    if asked and m.memmap_on_memory != "n" and not supported \
            and m.design.rejects_unsupported_request(m):
        raise HotplugError("EINVAL", f"MHP_MEMMAP_ON_MEMORY requested for [mem {start:#x}-"
                           f"{start + size - 1:#x}] but not supported: {why}")
    use = asked and supported
    if group is None:
        group = MemoryGroup(m.next_gid, nid, spfn, 0, epfn - spfn,
                            memmap_on_memory=use, driver=driver)
    # the design checks what can still fail, then places the memmap and
    # registers the range (register_added_range)
    m.design.add_memory(m, spfn, epfn, nid, use, group)
    blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
    return auto_online(m, blocks, group)


def check_memmap_room(m: MachineState, spfn: int, epfn: int, nid: int) -> None:
    """ENOMEM unless the node's online memory can hold the memmap of the range."""
    units, unit = memmap_units(m)
    nblocks = (epfn - spfn) // m.pages_per_block
    why_not = memmap_chunks_needed(m, units * unit * nblocks, unit, nid)
    if why_not:
        raise HotplugError("ENOMEM", f"hot-add of [mem {m.addr(spfn):#x}-"
                           f"{m.addr(epfn) - 1:#x}] failed: {why_not}")


def register_added_range(m: MachineState, group: MemoryGroup, spfn: int, epfn: int) -> None:
    """Sections present, memory blocks offline (create_memory_block_devices),
    linked to the device's memory group, registered with its first range."""
    nid = group.nid
    m.next_gid = max(m.next_gid, group.gid + 1)
    m.groups[group.gid] = group
    if not group.nr_pages:
        group.start_pfn = spfn
    group.nr_pages += epfn - spfn
    sparse_add_sections(m, spfn, epfn, nid)
    blocks = slice(spfn // m.pages_per_block, epfn // m.pages_per_block)
    m.blk_state[blocks] = MEM_OFFLINE
    m.blk_nid[blocks] = nid
    m.blk_group[blocks] = group.gid
    m.blk_early[blocks] = False
    m.blk_zone[blocks] = -1


def memmap_from_buddy(m: MachineState, blocks: IntArray, nid: int) -> None:
    """The memmap of each block from the node's online memory (no altmap)."""
    units, unit = memmap_units(m)
    for blk in blocks:
        m.memmap_from_buddy[int(blk)] = alloc_memmap(m, units, unit, nid)


def auto_online(m: MachineState, blocks: IntArray, g: MemoryGroup) -> list[int]:
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

def check_block(m: MachineState, blk: object) -> int:
    """The memory block device memoryN: EINVAL when there is none."""
    if isinstance(blk, bool) or not isinstance(blk, (int, np.integer)):
        raise ConfigError(f"block id must be a whole number, got {str(blk)[:40]}")
    b = int(blk)
    if not 0 <= b < m.nr_blocks or not m.blk_state[b]:
        raise HotplugError("EINVAL", f"memory{b} does not exist", block=b)
    return b


def check_online_type(online_type: str, blk: int | None = None) -> int:
    """The mmop of a write to memoryN/state that asks for an online."""
    mmop = ONLINE_TYPES.get(online_type) if isinstance(online_type, str) else None
    if mmop is None or mmop == MMOP_OFFLINE:
        raise HotplugError("EINVAL", f"'{str(online_type)[:40]}' is not an online type "
                           "(online, online_kernel, online_movable)", block=blk)
    return mmop


def online_block(m: MachineState, blk: int, online_type: str = "online") -> Zone:
    """memory_block_online() through a write of ``online_type`` to memoryN/state.
    Returns the zone the block went to."""
    ops = m.block_ops
    if ops is not None:
        # online_run() of a run of one, compiled, where it applies (_blockops)
        done = ops.online(m, blk, online_type)
        if done is not None:
            return done
    blk = check_block(m, blk)
    mmop = check_online_type(online_type, blk)
    if m.blk_state[blk] != MEM_OFFLINE:
        raise HotplugError("EINVAL", f"memory{blk} is already online", block=blk)
    zone = m.design.online_block(m, blk, mmop)
    dev = m.device_of_block(blk)
    if dev is not None:
        dev.block_online(m, blk)   # the driver's MEM_ONLINE notifier
    return zone


def online_pages(m: MachineState, zone: Zone, blk: int, start: int, end: int,
                 strategy: str | None = None) -> int:
    """online_pages(): isolated pageblocks, ctz chunks freed to the buddy tail,
    present accounting, un-isolation, watermarks.  Returns pages freed."""
    nr = end - start
    p = m.pages
    move_pfn_range_to_zone(m, zone, start, nr, MIGRATE_MOVABLE)
    start_isolate_page_range(m, zone, start, end)
    how = FREE_STRATEGIES[strategy or m.kernel.online_free_strategy]
    dev = m.device_of_block(blk)
    split = dev.online_split(m, blk, start, end) if dev is not None else None
    if split is None:
        freed = p.free_range(start, end, how)
    else:
        # the driver's online_page_callback: what it does not hand to the
        # buddy stays PageOffline (present, not managed)
        ranges, dirty = split
        freed = 0
        for s, e in ranges:
            freed += p.free_range(s, e, how)
        p.set(P_OFFLINE, start, end)
        if dirty:
            p.set(P_DIRTY, start, end)
        for s, e in ranges:
            p.clear(P_OFFLINE, s, e)
            p.clear(P_DIRTY, s, e)
    zone.managed_pages += freed
    online_mem_sections(m, start, end)
    adjust_present_page_count(m, zone, blk, nr)
    undo_isolate_page_range(m, zone, start, end)
    init_per_zone_wmark_min(m)
    return freed


# ---------------------------------------------------------------- runs of blocks

# A run of consecutive blocks the design lets through (design.batchable: its
# online and offline are the generic ones), none boot memory, none a driver's,
# all of one node and memmap layout, is onlined or offlined in one pass of the
# compiled core that ends where one online_block() / offline_block() per block
# in order ends (tests/test_batch.py, tests/test_reference.py).  One block is
# a run of one, and as every udev write is one, online_block() / offline_block()
# do it in compiled code (_blockops.BlockOps, tests/test_blockops.py).

def setup_block_ops(m: MachineState) -> None:
    """Give a machine on the fast backend its compiled one-block path: typed
    views of its arrays, the kernel's constants, and init_per_zone_wmark_min()
    for the watermark changes it does not redo itself."""
    if not isinstance(m.pages, _core.PageState):
        return
    a = m.arch
    since = a.rejects_vmemmap_leaf_split_since
    leaf = since is not None and m.kernel.at_least(*since)
    m.block_ops = _blockops.BlockOps(
        m.pages, m.blk_state, m.blk_zone, m.blk_nid, m.blk_early, m.blk_group, m.blk_altmap,
        m.alt_free, m.sec_flags, m.zones, dict(ONLINE_TYPES), {
            "pages_per_block": m.pages_per_block, "pages_per_section": a.pages_per_section,
            "pageblock_order": a.pageblock_order, "page_shift": a.page_shift,
            # find_zone_pfn() and splits_vmemmap_leaf()
            "subsection_pages": max((2 * MiB) >> a.page_shift, 1),
            "vmemmap_leaf_bytes": (a.vmemmap_chunk_pages << a.page_shift) if leaf else 0,
            "struct_page_size": a.struct_page_size,
            "SECTION_IS_ONLINE": SECTION_IS_ONLINE, "MEM_ONLINE": MEM_ONLINE,
            "MEM_OFFLINE": MEM_OFFLINE, "MMOP_ONLINE": MMOP_ONLINE,
            "MMOP_ONLINE_KERNEL": MMOP_ONLINE_KERNEL, "MMOP_ONLINE_MOVABLE": MMOP_ONLINE_MOVABLE,
            "FREE_GET_ORDER": FREE_STRATEGIES["get_order"], "MAX_NR_ZONES": MAX_NR_ZONES,
            "ZONE_NORMAL": ZONE_NORMAL, "ZONE_MOVABLE": ZONE_MOVABLE, "ZONE_DEVICE": ZONE_DEVICE,
            "SWAP_CLUSTER_MAX": SWAP_CLUSTER_MAX,
            "WATERMARK_SCALE_FACTOR": WATERMARK_SCALE_FACTOR,
            "MIGRATE_PCPTYPES": MIGRATE_PCPTYPES},
        init_per_zone_wmark_min)


def run_zone(m: MachineState, first: int, n: int, online_type: int) -> Zone | None:
    """The zone every block of the run would get when onlined one by one in
    order, when that is known up front; else None (go block by block)."""
    ppb = m.pages_per_block
    start = first * ppb
    nr = n * ppb
    nid = int(m.blk_nid[first])
    if m.online_free_strategy == FREE_STRATEGIES["get_order"]:
        return None  # 4.20's chunks need free_range()
    if online_type == MMOP_ONLINE_MOVABLE:
        return m.zone(nid, ZONE_MOVABLE)
    kernel_zone = default_kernel_zone_for_pfn(m, nid, start, nr)
    if kernel_zone.ztype < ZONE_NORMAL and kernel_zone.intersects(start, nr):
        return None  # DMA / DMA32 boundaries: per block
    if online_type == MMOP_ONLINE_KERNEL:
        return kernel_zone
    if online_type == MMOP_ONLINE and m.online_policy == "contig-zones" and not m.movable_node:
        # the run grows the kernel zone block by block and never meets Movable
        if not m.zone(nid, ZONE_MOVABLE).intersects(start, nr):
            return kernel_zone
    return None


def wmark_steps(m: MachineState, zone: Zone, managed0: int, present0: int, per_managed: int,
                per_present: int, n: int) -> None:
    """The watermark recomputations of n sequential onlines (or offlines, with
    negative steps) of one block each, ending in the state the kernel reaches.
    From 6.12 ZONE_MOVABLE does not feed the other zones' watermarks, so once
    they are stable only the last step needs computing."""
    independent = zone.ztype == ZONE_MOVABLE and m.kernel.movable_wmark_like_highmem
    # the compiled memo of the one-block path where there is one (same values)
    wmark_min = init_per_zone_wmark_min if m.block_ops is None else \
        m.block_ops.init_per_zone_wmark_min
    prev = None
    for k in range(1, n + 1):
        zone.managed_pages = managed0 + k * per_managed
        zone.present_pages = present0 + k * per_present
        if independent and k < n:
            wmark_min(m)
            state = (m.min_free_kbytes,) + tuple(
                (z.wmark_min, z.wmark_high) for z in m.zones if z is not zone)
            if state == prev:
                zone.managed_pages = managed0 + n * per_managed
                zone.present_pages = present0 + n * per_present
                wmark_min(m)
                return
            prev = state
        else:
            wmark_min(m)


def _group_present(m: MachineState, first: int, n: int, zone: Zone, pages: int) -> None:
    """present_{movable,kernel}_pages of the groups of the run, ``pages`` per block."""
    if n == 1:
        gid = int(m.blk_group[first])
        counts = [(gid, 1)]
    else:
        gids, cnt = np.unique(m.blk_group[first:first + n], return_counts=True)
        counts = list(zip(gids.tolist(), cnt.tolist(), strict=True))
    for gid, c in counts:
        g = m.groups.get(gid)
        if g is None:
            continue
        if zone.ztype == ZONE_MOVABLE:
            g.present_movable_pages += c * pages
        else:
            g.present_kernel_pages += c * pages


def _section_flags(m: MachineState, start: int, end: int, online: bool) -> None:
    pps = m.pages_per_section
    s, e = start // pps, end // pps
    f = m.sec_flags
    if e == s + 1:
        f[s] = (int(f[s]) | SECTION_IS_ONLINE) if online else (int(f[s]) & ~SECTION_IS_ONLINE)
    elif online:
        f[s:e] |= SECTION_IS_ONLINE
    else:
        f[s:e] &= ~np.uint8(SECTION_IS_ONLINE)


def run_breaks(m: MachineState, b: int, end: int, online: bool) -> tuple[IntArray, IntArray]:
    """Which blocks of [b, end) may join a run, as two sorted id arrays: the
    blocks not in the state for the operation (or boot memory, or a driver's),
    which join no run, and those that cannot join a run reaching
    them from below (the former, and blocks whose node / zone or memmap layout
    differs from block x - 1).  A run from block y reaches up to the next break."""
    blk = slice(b, end)
    dev_gids = [g.gid for g in m.groups.values() if g.device is not None]
    ok = ~m.blk_early[blk]
    if dev_gids:
        ok &= ~np.isin(m.blk_group[blk], dev_gids)
    vm = np.where(m.blk_altmap[blk], m.alt_free[blk], 0)
    if online:
        ok &= m.blk_state[blk] == MEM_OFFLINE
        key = m.blk_nid[blk]
    else:
        key = m.blk_zone[blk]
        ok &= (m.blk_state[blk] == MEM_ONLINE) & (key >= 0)
    brk = ~ok
    brk[1:] |= (key[1:] != key[:-1]) | (vm[1:] != vm[:-1])
    return np.flatnonzero(~ok) + b, np.flatnonzero(brk) + b


def online_run(m: MachineState, first: int, n: int, zone: Zone) -> None:
    """Online the run [first, first + n) into ``zone`` (from run_zone)."""
    ppb = m.pages_per_block
    start = first * ppb
    v = int(m.alt_free[first]) if m.blk_altmap[first] else 0
    managed0, present0 = zone.managed_pages, zone.present_pages
    freed = m.pages.online_blocks(start, n, ppb, v, zone.zid, m.online_free_strategy)
    zone.resize_range(start, n * ppb)
    _section_flags(m, start, start + n * ppb, True)
    _group_present(m, first, n, zone, ppb)
    if n == 1:
        zone.managed_pages = managed0 + freed
        zone.present_pages = present0 - v + ppb
        init_per_zone_wmark_min(m)
    else:
        wmark_steps(m, zone, managed0, present0 - v, freed // n, ppb, n)
    zone.present_pages = present0 + n * ppb
    if n == 1:
        m.blk_zone[first] = zone.zid
        m.blk_state[first] = MEM_ONLINE
    else:
        m.blk_zone[first:first + n] = zone.zid
        m.blk_state[first:first + n] = MEM_ONLINE


def splits_vmemmap_leaf(m: MachineState, start: int, end: int) -> bool:
    """arm64 prevent_memory_remove_notifier() (7.3, see Arch): would an offline
    of [start, end) leave struct pages that start or end inside a leaf of the
    vmemmap mapping?  Then the notifier refuses it with EPERM."""
    since = m.arch.rejects_vmemmap_leaf_split_since
    if since is None or not m.kernel.at_least(*since):
        return False
    leaf = m.arch.vmemmap_chunk_pages << m.arch.page_shift
    a = m.arch.struct_page_size
    return bool((start * a) % leaf or (end * a) % leaf)


def offline_run(m: MachineState, first: int, n: int) -> bool:
    """Offline the run [first, first + n) of online blocks of one zone when all
    their pages but the memmap are free and nothing else refuses it; False
    (nothing done: block by block, with its errors) otherwise."""
    ppb = m.pages_per_block
    v = int(m.alt_free[first]) if m.blk_altmap[first] else 0
    start, end = first * ppb, (first + n) * ppb
    if splits_vmemmap_leaf(m, start + v, start + ppb):
        return False  # the arch refuses each block's offline: block by block
    if m.pages.count(P_BUDDY, start, end) != n * (ppb - v):
        return False  # something is allocated: block by block
    zone = m.zones[int(m.blk_zone[first])]
    managed0, present0 = zone.managed_pages, zone.present_pages
    removed = m.pages.offline_blocks(start, n, ppb, v)
    _section_flags(m, start, end, False)
    _group_present(m, first, n, zone, -ppb)
    if n == 1:
        zone.managed_pages = managed0 - removed
        zone.present_pages = present0 - ppb
        init_per_zone_wmark_min(m)
    else:
        wmark_steps(m, zone, managed0, present0, -(removed // n), -ppb, n)
    # the span shrinks to the nearest memory still online in the zone,
    # as n shrink_zone_span() calls would leave it
    zs, ze = zone.zone_start_pfn, zone.zone_end_pfn
    if start <= zs and end >= ze:
        zone.zone_start_pfn = zone.spanned_pages = 0
    elif start <= zs:
        shrink_zone_span(m, zone, zs, end)
    elif end >= ze:
        shrink_zone_span(m, zone, start, ze)
    if n == 1:
        m.blk_zone[first] = -1
        m.blk_state[first] = MEM_OFFLINE
    else:
        m.blk_zone[first:first + n] = -1
        m.blk_state[first:first + n] = MEM_OFFLINE
    return True


# ---------------------------------------------------------------- offline

def _system_ram_pages(m: MachineState, blk: int, start: int, end: int) -> int:
    if not m.blk_early[blk]:
        return end - start
    return sum(max(0, min(e, end) - max(s, start)) for s, e in m.boot_ranges)


def offline_block(m: MachineState, blk: int) -> None:
    """memory_block_offline() through a write of ``offline`` to memoryN/state."""
    ops = m.block_ops
    if ops is not None and ops.offline(m, blk):
        return  # offline_run() of a run of one, compiled, where it applies (_blockops)
    blk = check_block(m, blk)
    m.design.offline_block(m, blk)
    dev = m.device_of_block(blk)
    if dev is not None:
        dev.block_offline(m, blk)  # the driver's MEM_OFFLINE notifier


def offline_precheck(m: MachineState, blk: int, start: int, end: int,
                     skip_vmemmap: bool = False) -> HotplugError | None:
    """Every reason offline_pages() of [start, end) of block ``blk`` would fail,
    checked without changing anything; None when the offline would succeed."""
    if m.blk_state[blk] != MEM_ONLINE:
        return HotplugError("EINVAL", f"memory{blk} is already offline", block=blk)
    zid = int(m.blk_zone[blk])
    if zid < 0:
        return HotplugError("EINVAL", f"memory{blk} spans more than one zone or node "
                            "(valid_zones: none)", block=blk)
    zone = m.zones[zid]
    p = m.pages
    nr = end - start
    rng = f"[mem {m.addr(start):#010x}-{m.addr(end) - 1:#010x}]"
    if _system_ram_pages(m, blk, start, end) != nr:
        return HotplugError("EINVAL", f"memory offlining {rng} failed due to memory holes",
                            block=blk)
    if p.pageblock(start)[2] != zid or p.pageblock(end - 1)[2] != zid:
        return HotplugError("EINVAL", f"memory offlining {rng} failed due to multizone range",
                            block=blk)
    if splits_vmemmap_leaf(m, start, end):
        return HotplugError("EPERM", f"[{m.addr(start):x} {m.addr(end):x}] splits a leaf "
                            "entry in vmemmap: the MEM_GOING_OFFLINE notifier refuses the "
                            f"offline of memory{blk}", block=blk)
    # start_isolate_page_range(): an unmovable page fails the isolation
    bad = unmovable_page(m, zone, start, end, skip_vmemmap)
    if bad >= 0:
        return HotplugError("EBUSY", f"memory offlining {rng} failed due to failure to "
                            f"isolate range: unmovable page at pfn {bad:#x} of memory{blk}",
                            pfn=bad, block=blk)
    off = p.find_set(P_OFFLINE, start, end)
    dev = m.device_of_block(blk)
    if off >= 0 and (dev is None or not dev.drops_offline_refs):
        # scan_movable_pages(): a PageOffline page whose driver keeps its
        # reference cannot be migrated or skipped
        return HotplugError("EBUSY", f"memory offlining {rng} failed due to unmovable page: "
                            f"PageOffline page at pfn {off:#x} of memory{blk} is held by its "
                            "driver", pfn=off, block=blk)
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


def movable_pages(m: MachineState, start: int, end: int, skip_vmemmap: bool) -> IntArray:
    """Allocated movable pages of [start, end) that migration must move."""
    movable = m.pages.allocated_pfns(start, end, False)
    if skip_vmemmap and len(movable):
        keep = [not m.pages.test(P_VMEMMAP, int(pfn)) for pfn in movable]
        movable = movable[np.array(keep, dtype=bool)]
    return movable


def offline_pages(m: MachineState, zone: Zone, blk: int, start: int, end: int, *,
                  nr_vmemmap: int, skip_vmemmap: bool) -> None:
    """offline_pages() once offline_precheck() passed: isolation, migration,
    removal of the free pages from the buddy, accounting."""
    p = m.pages
    nr = end - start
    # memory_block_offline() takes the vmemmap pages out of present first
    adjust_present_page_count(m, zone, blk, -nr_vmemmap)
    isolated = start_isolate_page_range(m, zone, start, end)
    movable = movable_pages(m, start, end, skip_vmemmap)
    if len(movable):
        # do_migrate_range(): new pages elsewhere, the old ones are freed
        migration_targets(m, len(movable), int(m.blk_nid[blk]))
        p.free_pages(movable)
    # PageOffline pages whose driver dropped the reference in
    # MEM_GOING_OFFLINE are skipped (and were never managed)
    left = test_pages_isolated(m, start, end, skip_vmemmap, skip_offline=True)
    assert left < 0, f"test_pages_isolated: pfn {left:#x} still in use"
    # __offline_isolated_pages(): sections go offline, the free pages leave the
    # buddy; managed drops by nr (6.1), or by nr less PageOffline pages (6.12),
    # which are the same here since hotmem has no PageOffline pages
    online_mem_sections(m, start, end, online=False)
    removed = p.remove_free_range(start, end)
    zone.nr_isolate_pageblock -= isolated
    zone.managed_pages -= removed
    adjust_present_page_count(m, zone, blk, -nr)
    init_per_zone_wmark_min(m)
    # remove_pfn_range_from_zone(): the whole block's pageblocks leave the zone
    # (its sections are offline, so the span search skips the vmemmap too)
    m.pages.set_pageblocks(start - nr_vmemmap, end, 0, -1)
    shrink_zone_span(m, zone, start, end)


# ---------------------------------------------------------------- hot-remove

def remove_memory(m: MachineState, start: int | str, size: int | str) -> None:
    """try_remove_memory() of [start, start + size)."""
    start = parse_addr(start, "start")
    size = parse_size(size, "size")
    bs = m.block_size
    if size == 0 or start % bs or size % bs:
        raise HotplugError("EINVAL", f"remove of [mem {start:#x}-{start + size - 1:#x}] is not "
                           f"memory block aligned (block size {bs:#x})")
    check_remove_range(m, start, size)      # before an array over the range's blocks
    a = m.arch
    spfn, epfn = start >> a.page_shift, (start + size) >> a.page_shift
    blocks = np.arange(spfn // m.pages_per_block, epfn // m.pages_per_block)
    absent = blocks[m.blk_state[blocks] == 0]
    if len(absent):
        raise HotplugError("EINVAL", f"no memory was added at memory{int(absent[0])}",
                           block=int(absent[0]))
    if m.blk_early[blocks].any():
        raise HotplugError("EINVAL", "boot memory cannot be hot-removed")
    online = blocks[m.blk_state[blocks] != MEM_OFFLINE]
    if len(online):
        b = int(online[0])
        s, e = m.block_range(b)
        raise HotplugError("EBUSY", f"removing memory fails, because memory [{m.addr(s):#x}-"
                           f"{m.addr(e) - 1:#x}] is onlined (memory{b})", block=b)
    m.design.remove_memory(m, spfn, epfn, blocks)


def unregister_removed_range(m: MachineState, spfn: int, epfn: int, blocks: IntArray,
                             notes: dict[int, list[str]] | None = None) -> None:
    """What every design's remove ends with: memmap pages taken from the buddy
    go back, sections and memory blocks go away, groups shrink, the pages are
    released, the watermarks follow."""
    for blk in blocks.tolist():
        memmap = m.memmap_from_buddy.pop(blk, None)
        if memmap is not None:
            m.pages.free_pages(memmap)
    pps = m.arch.pages_per_section
    m.sec_flags[spfn // pps:epfn // pps] = 0
    m.blk_state[blocks] = 0
    m.blk_zone[blocks] = -1
    for gid in sorted(set(int(g) for g in m.blk_group[blocks])):
        g = m.groups[gid]
        g.nr_pages -= int(np.count_nonzero(m.blk_group[blocks] == gid)) * m.pages_per_block
        if notes:
            g.notes.extend(notes.get(gid, []))
        if g.nr_pages <= 0 and g.device is None:
            # a driver's group lives as long as its device (memory_group_unregister)
            del m.groups[gid]
    m.blk_group[blocks] = -1
    m.pages.release(spfn, epfn)
    init_per_zone_wmark_min(m)



def offline_and_remove_memory(m: MachineState, start: int, size: int) -> None:
    """offline_and_remove_memory() (5.8+, virtio-mem's unplug): offline every
    block of the range in ascending order, then remove it; on the first
    failure re-online what this call offlined, each block into the kind of
    zone it was in (online_movable or online_kernel), and fail with that
    block's errno."""
    bs = m.block_size
    if size <= 0 or start % bs or size % bs or start + size > m.max_phys:
        raise HotplugError("EINVAL", f"offline_and_remove_memory of [mem {start:#x}-"
                           f"{start + size - 1:#x}] is not memory block aligned")
    first, n = start // bs, size // bs
    undo: list[tuple[int, str]] = []
    try:
        for blk in range(first, first + n):
            check_block(m, blk)
            if m.blk_state[blk] != MEM_ONLINE:
                continue
            zid = int(m.blk_zone[blk])
            movable = zid >= 0 and m.zones[zid].ztype == ZONE_MOVABLE
            offline_block(m, blk)
            undo.append((blk, "online_movable" if movable else "online_kernel"))
        remove_memory(m, start, size)
    except HotplugError:
        for blk, online_type in undo:
            try:
                online_block(m, blk, online_type)
            except HotplugError as err:   # the kernel only warns, and so do we
                g = m.group_of_block(blk)
                if g is not None:
                    g.notes.append(f"re-online of memory{blk} failed: {err}")
        raise
