"""The simulated machine: boot memory, sections, memory blocks, zones and the
per-page state; the operations live in hotplug.py and page_alloc.py.

Section and block metadata are numpy arrays indexed by section / block number,
so that a machine of many TiB has no Python object per section or block.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _core
from .altmap import MEMMAP_MODES, VmemAltmap, memmap_on_memory_verdict
from .arch import GiB, MAX_NR_ZONES, MiB, ZONE_NORMAL, Arch, get_arch
from .errors import ConfigError
from .kernel import DEFAULT_KERNEL, RFC_KERNEL, Kernel
from .units import parse_size
from .zone import (ONLINE_TYPES, Zone, calculate_min_free_kbytes,
                   recommended_min_free_kbytes, setup_per_zone_wmarks)

# struct mem_section flags (low bits of section_mem_map)
SECTION_MARKED_PRESENT = 1 << 0
SECTION_HAS_MEM_MAP = 1 << 1
SECTION_IS_ONLINE = 1 << 2
SECTION_IS_EARLY = 1 << 3

# memory block states, with the bit values of kernels before 6.19
MEM_ONLINE, MEM_GOING_OFFLINE, MEM_OFFLINE = 1, 2, 4
STATE_NAMES = {MEM_ONLINE: "online", MEM_GOING_OFFLINE: "going-offline",
               MEM_OFFLINE: "offline"}

P_VMEMMAP, P_RESERVED, P_BUDDY, P_HEAD, P_UNMOVABLE = (
    _core.PLANES[n] for n in ("vmemmap", "reserved", "buddy", "head", "unmovable"))
MIGRATE_UNMOVABLE, MIGRATE_MOVABLE = 0, 1
MIGRATE_ISOLATE = _core.ISOLATE

DESIGNS = ("mainline", "rfc2018")
# sysctl_lowmem_reserve_ratio per zone type (DMA, DMA32, Normal, Movable, Device)
LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)
# the simulator's physical address space is capped to keep the reserved
# (never touched) address space of the bit-planes reasonable
MAX_SIM_PHYS_BITS = 47


@dataclass
class MemoryGroup:
    """A hot-added device (an ACPI DIMM): struct memory_group, static kind."""

    gid: int
    nid: int
    start_pfn: int
    nr_pages: int
    max_pages: int
    memmap_on_memory: bool
    present_kernel_pages: int = 0
    present_movable_pages: int = 0
    # rfc2018: the one altmap of the whole request (whole-range accounting:
    # alloc = vmemmap pages still mapped), the head (first vmemmap pfn) and its
    # refcount (sections served), nr_sects, the vmemmap pages of the request,
    # where each section's memmap sits (pfn ranges, one row per section of the
    # request), the mark_vmemmap_pages() calls, and per block the chunks the
    # 4.20 online rule freed misaligned and the pfns the PageVmemmap scan read
    rfc_altmap: VmemAltmap | None = None
    rfc_head_refcount: int = 0
    rfc_vmemmap_pages: int = 0
    rfc_head_pfn: int = -1
    rfc_nr_sects: int = 0
    rfc_section_memmap: list[tuple[int, int]] = field(default_factory=list)
    rfc_flush_log: list[tuple[int, int, int]] = field(default_factory=list)
    rfc_sections_removed: list[int] = field(default_factory=list)
    rfc_teardown: list[tuple[int, int]] = field(default_factory=list)
    rfc_misaligned: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    rfc_scan_pfns: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.nr_pages


class Machine:
    """A machine with boot memory online on node 0, ready for memory hotplug.

    >>> m = Machine("x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    >>> m.block_size == 128 << 20
    True
    """

    def __init__(self, arch: str | Arch = "x86_64", kernel=None, boot_memory="4G",
                 memmap_on_memory: str | None = None, online_policy: str = "contig-zones",
                 auto_movable_ratio: int = 301, auto_online_blocks: str = "offline",
                 design: str = "mainline", block_size=None, nr_nodes: int = 1,
                 movable_node: bool = False, hypervisor: bool = True,
                 max_memory=None, thp: bool = True, backend: str = "fast",
                 auto_movable_numa_aware: bool = True, rfc_alignment_fix: bool = False,
                 rfc_refuse_hazard: bool = False):
        self.arch = arch if isinstance(arch, Arch) else get_arch(arch)
        if design not in DESIGNS:
            raise ConfigError(f"design: {design!r} is not one of {', '.join(DESIGNS)}")
        self.design = design
        self.kernel = Kernel.parse(kernel if kernel is not None else
                                   (RFC_KERNEL if design == "rfc2018" else DEFAULT_KERNEL))
        if design == "rfc2018" and self.kernel.has_memmap_on_memory:
            raise ConfigError(f"design rfc2018 is a patch on 4.20; kernel {self.kernel} "
                              "has the merged memmap_on_memory (use design = \"mainline\")")
        if memmap_on_memory is None:
            # the RFC always asked for MHP_MEMMAP_FROM_RANGE; mainline's default is N
            memmap_on_memory = "y" if design == "rfc2018" else "n"
        mode = str(memmap_on_memory).lower()
        mode = {"0": "n", "1": "y", "false": "n", "true": "y", "no": "n", "yes": "y"}.get(mode, mode)
        if mode not in MEMMAP_MODES:
            raise ConfigError(f"memmap_on_memory: {memmap_on_memory!r} is not n, y or force")
        if mode == "force" and design == "mainline" and not self.kernel.has_force_mode:
            raise ConfigError(f"memmap_on_memory=force needs kernel 6.6 or later "
                              f"(kernel {self.kernel} parses the parameter as a bool)")
        self.memmap_on_memory = mode
        if online_policy not in ("contig-zones", "auto-movable"):
            raise ConfigError(f"online_policy: {online_policy!r} is not contig-zones or auto-movable")
        self.online_policy = online_policy
        if not isinstance(auto_movable_ratio, int) or auto_movable_ratio < 0:
            raise ConfigError(f"auto_movable_ratio: {auto_movable_ratio!r} is not a percentage")
        self.auto_movable_ratio = auto_movable_ratio
        self.auto_movable_numa_aware = auto_movable_numa_aware
        if auto_online_blocks not in ONLINE_TYPES:
            raise ConfigError(f"auto_online_blocks: {auto_online_blocks!r} is not one of "
                              f"{', '.join(ONLINE_TYPES)}")
        self.auto_online_blocks = auto_online_blocks
        if not isinstance(nr_nodes, int) or not 1 <= nr_nodes <= 64:
            raise ConfigError(f"nodes: {nr_nodes!r} is not a node count from 1 to 64")
        self.nr_nodes = nr_nodes
        self.movable_node = movable_node
        self.thp = thp
        self.rfc_alignment_fix = rfc_alignment_fix
        self.rfc_refuse_hazard = rfc_refuse_hazard
        self.user_min_free_kbytes = None

        a = self.arch
        self.boot_memory = parse_size(boot_memory, "boot_memory")
        if self.boot_memory < 64 * MiB or self.boot_memory % a.page_size:
            raise ConfigError(f"boot_memory: {boot_memory!r} must be at least 64M and "
                              f"a multiple of the page size")
        self.boot_ranges = boot_ram_ranges(a, self.boot_memory)
        boot_end = max(e for _, e in self.boot_ranges) << a.page_shift
        if block_size is None:
            self.block_size = a.memory_block_size(boot_end, hypervisor)
        else:
            bs = parse_size(block_size, "block_size")
            if bs < a.section_size or bs & (bs - 1):
                raise ConfigError(f"block_size: {block_size!r} must be a power of two and at "
                                  f"least the section size ({a.section_size:#x})")
            self.block_size = bs
        phys_bits = min(a.max_physmem_bits, MAX_SIM_PHYS_BITS)
        self.max_phys = 1 << phys_bits
        if max_memory is not None:
            self.max_phys = parse_size(max_memory, "max_memory")
            if self.max_phys % self.block_size or self.max_phys > 1 << phys_bits:
                raise ConfigError(f"max_memory: {max_memory!r} must be block aligned and at "
                                  f"most {1 << phys_bits:#x}")
        if boot_end > self.max_phys:
            raise ConfigError("boot memory ends beyond max_memory")
        self.nr_pfns = self.max_phys >> a.page_shift
        self.pages_per_block = self.block_size >> a.page_shift
        self.sections_per_block = self.block_size >> a.section_size_bits
        self.nr_sections = self.max_phys >> a.section_size_bits
        self.nr_blocks = self.max_phys // self.block_size

        n_zids = nr_nodes * MAX_NR_ZONES
        if backend == "fast":
            self.pages = _core.PageState(self.nr_pfns, a.pageblock_order, a.max_page_order, n_zids)
        elif backend == "reference":
            from .reference import RefPageState
            self.pages = RefPageState(self.nr_pfns, a.pageblock_order, a.max_page_order, n_zids)
        else:
            raise ConfigError(f"backend: {backend!r} is not 'fast' or 'reference'")
        self.backend = backend

        self.zones = [Zone(nid, zt, zt in a.zones) for nid in range(nr_nodes)
                      for zt in range(MAX_NR_ZONES)]
        self.sec_flags = np.zeros(self.nr_sections, dtype=np.uint8)
        self.sec_nid = np.zeros(self.nr_sections, dtype=np.int16)
        self.blk_state = np.zeros(self.nr_blocks, dtype=np.uint8)
        self.blk_zone = np.full(self.nr_blocks, -1, dtype=np.int16)
        self.blk_nid = np.zeros(self.nr_blocks, dtype=np.int16)
        self.blk_group = np.full(self.nr_blocks, -1, dtype=np.int32)
        self.blk_early = np.zeros(self.nr_blocks, dtype=bool)
        # per-block altmap (mainline 5.13+): free, alloc, align; base_pfn is the block start
        self.blk_altmap = np.zeros(self.nr_blocks, dtype=bool)
        self.alt_free = np.zeros(self.nr_blocks, dtype=np.int64)
        self.alt_alloc = np.zeros(self.nr_blocks, dtype=np.int64)
        self.alt_align = np.zeros(self.nr_blocks, dtype=np.int64)
        # memmap pages taken from the buddy for sections added without an altmap
        self.memmap_from_buddy: dict[int, np.ndarray] = {}
        self.groups: dict[int, MemoryGroup] = {}
        self._next_gid = 0
        self.min_free_kbytes = 0
        self.boot_reserved: list[tuple[int, int, str]] = []
        self._boot()
        self.max_pfn_seen = self.max_pfn()

    # ------------------------------------------------------------------ boot

    def _boot(self) -> None:
        a, p = self.arch, self.pages
        pps = a.pages_per_section
        zone_of_pfn = self._boot_zone_splitter()
        # present pages per zone and zone spans (node 0)
        for s, e in self.boot_ranges:
            for zs, ze, zt in zone_of_pfn(s, e):
                z = self.zone(0, zt)
                z.boot_ranges.append((zs, ze))
                z.present_pages += ze - zs
                z.present_early_pages += ze - zs
                z.resize_range(zs, ze - zs)
        # memmap_init: every pageblock of a zone span gets the zone, MOVABLE
        pb = a.pageblock_nr_pages
        for z in self.zones:
            if z.nid == 0 and not z.is_empty():
                s = z.zone_start_pfn // pb * pb
                e = -(-z.zone_end_pfn // pb) * pb
                p.set_pageblocks(s, e, MIGRATE_MOVABLE, z.zid)
        # sections and blocks of boot memory
        for s, e in self.boot_ranges:
            secs = np.arange(s // pps, -(-e // pps))
            self.sec_flags[secs] = (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
                                    | SECTION_IS_ONLINE | SECTION_IS_EARLY)
        # holes inside online sections are PG_reserved (init_unavailable_range)
        present = self._boot_present_mask_ranges()
        for s, e in present["holes"]:
            p.set(P_RESERVED, s, e)
        # memblock reservations: low memory, the kernel image, the boot memmap
        reserved = self._boot_reservations()
        for s, e, what in reserved:
            p.set(P_RESERVED, s, e)
        self.boot_reserved = reserved
        # memblock_free_all(): the rest goes to the buddy
        for s, e in self.boot_ranges:
            pfn = s
            while pfn < e:
                r = p.find_set(P_RESERVED, pfn, e)
                stop = e if r < 0 else r
                if stop > pfn:
                    self._boot_free(pfn, stop)
                if r < 0:
                    break
                nxt = p.find_clear(P_RESERVED, r, e)
                if nxt < 0:
                    break
                pfn = nxt
        for blk in range(self.nr_blocks):
            bs = blk * self.pages_per_block
            if bs >= max(e for _, e in self.boot_ranges):
                break
            if any(s < bs + self.pages_per_block and e > bs for s, e in self.boot_ranges):
                self.blk_state[blk] = MEM_ONLINE
                self.blk_early[blk] = True
                self.blk_nid[blk] = 0
                self.blk_zone[blk] = self._early_zone_for_block(bs)
        self.init_per_zone_wmark_min()

    def _boot_free(self, s: int, e: int) -> None:
        # __free_pages_memory(): ctz chunks clamped to the end, with merging; the
        # pages become managed by the zone of each chunk
        for zs, ze, zt in self._boot_zone_splitter()(s, e):
            self.pages.free_range(zs, ze)
            self.zone(0, zt).managed_pages += ze - zs

    def _boot_zone_splitter(self):
        a = self.arch
        limits = [(zt, lim >> a.page_shift) for zt, lim in a.zone_limits]

        def split(s: int, e: int):
            out = []
            lo = s
            for zt, lim in limits:
                if lo >= e:
                    break
                if lo < lim:
                    hi = min(e, lim)
                    out.append((lo, hi, zt))
                    lo = hi
            if lo < e:
                out.append((lo, e, ZONE_NORMAL))
            return out
        return split

    def _boot_present_mask_ranges(self) -> dict:
        pps = self.arch.pages_per_section
        holes = []
        secs = sorted({sec for s, e in self.boot_ranges for sec in range(s // pps, -(-e // pps))})
        for sec in secs:
            lo, hi = sec * pps, (sec + 1) * pps
            cur = lo
            for s, e in self.boot_ranges:
                if e <= lo or s >= hi:
                    continue
                if s > cur:
                    holes.append((cur, s))
                cur = max(cur, e)
            if cur < hi:
                holes.append((cur, hi))
        return {"holes": holes}

    def _boot_reservations(self) -> list[tuple[int, int, str]]:
        a = self.arch
        out = []
        first = min(s for s, _ in self.boot_ranges)
        if a.reserve_low:
            out.append((first, (a.ram_base + a.reserve_low) >> a.page_shift, "low memory"))
        ks = (a.ram_base + a.kernel_image[0]) >> a.page_shift
        ke = ks + (a.kernel_image[1] >> a.page_shift)
        out.append((ks, ke, "kernel image"))
        # sparse_init(): the memmap of every present boot section, allocated
        # top-down by memblock from the end of boot memory
        nsec = int(np.count_nonzero(self.sec_flags & SECTION_IS_EARLY))
        need = nsec * a.memmap_pages_per_section
        for s, e in sorted(self.boot_ranges, reverse=True):
            take = min(need, e - s)
            if take:
                out.append((e - take, e, "boot memmap"))
            need -= take
            if not need:
                break
        if need:
            raise ConfigError(f"boot_memory {self.boot_memory:#x} is too small for its own memmap")
        if a.swiotlb:
            # memblock_alloc_low(): top-down below 4 GiB, under what is already taken
            low = [(s, e) for s, e in self.boot_ranges if e <= (4 * GiB) >> a.page_shift]
            s, e = max(low)
            taken = [r for r in out if s <= r[0] < e]
            top = min([r[0] for r in taken if r[1] == e or r[2] == "boot memmap"] + [e])
            n = a.swiotlb >> a.page_shift
            ends = [r[1] for r in out if s <= r[0] < top]
            if top - n >= max(ends + [s]):   # else the kernel boots without it
                out.append((top - n, top, "swiotlb"))
        return out

    def _early_zone_for_block(self, start_pfn: int) -> int:
        """early_node_zone_for_memory_block(): the single zone whose span
        intersects the block, else -1 (valid_zones 'none')."""
        hit = [z for z in self.zones if z.nid == 0
               and z.intersects(start_pfn, self.pages_per_block)]
        return hit[0].zid if len(hit) == 1 else -1

    # ------------------------------------------------------------------ queries

    def zone(self, nid: int, ztype: int) -> Zone:
        return self.zones[nid * MAX_NR_ZONES + ztype]

    def zone_by_name(self, name: str, nid: int = 0) -> Zone:
        for z in self.zones:
            if z.nid == nid and z.name.lower() == str(name).lower() and z.configured:
                return z
        raise ConfigError(f"zone: {name!r} is not a zone of {self.arch.name} "
                          f"({', '.join(z.name for z in self.zones if z.nid == 0 and z.configured)})")

    def block_range(self, blk: int) -> tuple[int, int]:
        s = blk * self.pages_per_block
        return s, s + self.pages_per_block

    def block_of_pfn(self, pfn: int) -> int:
        return pfn // self.pages_per_block

    def present_blocks(self) -> np.ndarray:
        return np.flatnonzero(self.blk_state)

    def blocks_in_state(self, state: int) -> np.ndarray:
        return np.flatnonzero(self.blk_state == state)

    def block_altmap(self, blk: int) -> VmemAltmap | None:
        """The block's own vmem_altmap (mainline), or None."""
        if not self.blk_altmap[blk]:
            return None
        s, e = self.block_range(blk)
        return VmemAltmap(base_pfn=s, end_pfn=e - 1, free=int(self.alt_free[blk]),
                          alloc=int(self.alt_alloc[blk]), align=int(self.alt_align[blk]))

    def nr_vmemmap_pages(self, blk: int) -> int:
        """Pages at the block start holding its own memmap (altmap->free)."""
        return int(self.alt_free[blk]) if self.blk_altmap[blk] else 0

    def section_online(self, pfn: int) -> bool:
        return bool(self.sec_flags[pfn >> (self.arch.section_size_bits - self.arch.page_shift)]
                    & SECTION_IS_ONLINE)

    def max_pfn(self) -> int:
        """End of the highest present section."""
        present = np.flatnonzero(self.sec_flags & SECTION_MARKED_PRESENT)
        return 0 if not len(present) else int(present[-1] + 1) * self.arch.pages_per_section

    def kpageflags_end(self) -> int:
        """get_max_dump_pfn(): round_up(max_pfn, PAGES_PER_SECTION).  Hot-add
        raises max_pfn (x86 update_end_of_memory_vars); nothing lowers it, so a
        removed range still reads as NOPAGE."""
        return max(self.max_pfn_seen, self.max_pfn())

    def group_of_block(self, blk: int) -> MemoryGroup | None:
        gid = int(self.blk_group[blk])
        return self.groups.get(gid) if gid >= 0 else None

    def find_zone_pfn(self, zid: int, s: int, e: int, reverse: bool) -> int:
        """find_smallest/biggest_section_pfn(): the lowest (or highest) pfn of
        [s, e) at subsection granularity whose memory is online in zone zid; -1."""
        if s >= e:
            return -1
        sub = max((2 * MiB) >> self.arch.page_shift, 1)
        pbo = self.arch.pageblock_order
        pfn = self.pages.find_zone_pageblock(zid, s, e, reverse)
        if pfn < 0:
            return -1
        if not reverse:
            return max(s, pfn // sub * sub)
        return min(e, -(-(pfn + (1 << pbo)) // sub) * sub) - 1

    # ------------------------------------------------------------------ accounting

    def init_per_zone_wmark_min(self) -> None:
        """init_per_zone_wmark_min(), with khugepaged's recommendation when THP is on."""
        a = self.arch
        if self.user_min_free_kbytes is None:
            self.min_free_kbytes = calculate_min_free_kbytes(self.zones, a.page_size)
        like_highmem = self.kernel.movable_wmark_like_highmem
        setup_per_zone_wmarks(self.zones, self.min_free_kbytes, a.page_shift, like_highmem)
        if self.thp:
            rec = recommended_min_free_kbytes(self.zones, a.pageblock_nr_pages, a.page_shift)
            if rec > self.min_free_kbytes:
                self.min_free_kbytes = rec
            setup_per_zone_wmarks(self.zones, self.min_free_kbytes, a.page_shift, like_highmem)

    def lowmem_reserve(self, zone: Zone) -> list[int]:
        """zone->lowmem_reserve[] (setup_per_zone_lowmem_reserve): pages this zone
        keeps back from allocations that could have used a higher zone j."""
        ratio = LOWMEM_RESERVE_RATIO[zone.ztype]
        out = [0] * MAX_NR_ZONES
        if not ratio or not zone.managed_pages:
            return out
        managed = 0
        for j in range(zone.ztype + 1, MAX_NR_ZONES):
            managed += self.zone(zone.nid, j).managed_pages
            out[j] = managed // ratio
        return out

    def zone_free_pages(self, zone: Zone) -> int:
        """NR_FREE_PAGES of a zone: the pages on its free lists."""
        nf = self.pages.nr_free[zone.zid]
        return int((nf * (1 << np.arange(nf.shape[1], dtype=np.int64))).sum())

    def totalram_pages(self) -> int:
        return sum(z.managed_pages for z in self.zones)

    def mode_verdict(self, size: int | None = None) -> tuple[bool, str]:
        """Would an add of ``size`` bytes self-host its memmap?"""
        if self.design == "rfc2018":
            if self.memmap_on_memory == "n":
                return False, "memmap_on_memory=n"
            if self.arch.name == "s390x":
                return False, "s390 arch_add_memory clears MHP_MEMMAP_FROM_RANGE"
            return True, "MHP_MEMMAP_FROM_RANGE"
        return memmap_on_memory_verdict(self.arch, self.kernel, self.memmap_on_memory,
                                        self.block_size, size)

    # ------------------------------------------------------------------ state capture

    def snapshot(self) -> dict:
        """Everything an operation may change, for undo and for comparisons.
        Page planes are summarised by the pfn range that holds memory."""
        end = self.max_pfn()
        end64 = -(-end // 64) * 64
        planes = {name: self.pages.words(idx, 0, end64) for name, idx in _core.PLANES.items()}
        mt, zn = self.pages.pageblock_bytes(0, end64) if end64 else (np.zeros(0), np.zeros(0))
        return {
            "planes": planes, "pb_mt": mt, "pb_zone": zn,
            "nr_free": self.pages.nr_free.copy(),
            "zones": [z.span_state() for z in self.zones],
            "sec_flags": self.sec_flags.copy(), "blk_state": self.blk_state.copy(),
            "blk_zone": self.blk_zone.copy(), "blk_altmap": self.blk_altmap.copy(),
            "alt": (self.alt_free.copy(), self.alt_alloc.copy(), self.alt_align.copy()),
            "groups": {g: (v.start_pfn, v.nr_pages, v.present_kernel_pages,
                           v.present_movable_pages, v.rfc_head_refcount)
                       for g, v in self.groups.items()},
            "memmap_from_buddy": {k: v.copy() for k, v in self.memmap_from_buddy.items()},
            "min_free_kbytes": self.min_free_kbytes,
            "max_pfn_seen": self.max_pfn_seen,
        }

    # ------------------------------------------------------------------ operations

    def add(self, start=None, size="128M", nid: int = 0, driver: str = "acpi"):
        """Hot-add one memory device (add_memory); returns the new block ids."""
        from .hotplug import add_memory
        return add_memory(self, start, size, nid=nid, driver=driver)

    def online(self, blk: int, online_type: str = "online"):
        """Write ``online_type`` to memoryN/state."""
        from .hotplug import online_block
        return online_block(self, blk, online_type)

    def offline(self, blk: int):
        """Write ``offline`` to memoryN/state."""
        from .hotplug import offline_block
        return offline_block(self, blk)

    def online_blocks(self, blocks, online_type: str = "online", stop_on_error: bool = True):
        """Online many blocks in order, as one by one; (block, error or None) each."""
        from .hotplug import online_blocks
        return online_blocks(self, blocks, online_type, stop_on_error)

    def offline_blocks(self, blocks, stop_on_error: bool = True):
        """Offline many blocks in order, as one by one; (block, error or None) each."""
        from .hotplug import offline_blocks
        return offline_blocks(self, blocks, stop_on_error)

    def remove(self, start, size):
        """Hot-remove a range (ACPI eject of a DIMM): try_remove_memory."""
        from .hotplug import remove_memory
        return remove_memory(self, start, size)

    def alloc(self, pages: int, kind: str = "movable", zone: str | None = None,
              placement: str = "random", seed: int = 0, nid: int = 0):
        """Allocate pages (movable user pages or unmovable kernel pages)."""
        from .page_alloc import alloc_pages
        return alloc_pages(self, pages, kind=kind, zone=zone, placement=placement,
                           seed=seed, nid=nid)

    def free(self, pages=None, kind: str = "movable", zone: str | None = None,
             seed: int = 0, nid: int = 0):
        """Free allocated pages (``pages`` of them at random, or all)."""
        from .page_alloc import free_allocated
        return free_allocated(self, pages, kind=kind, zone=zone, seed=seed, nid=nid)


def boot_ram_ranges(a: Arch, boot_memory: int) -> list[tuple[int, int]]:
    """Present pfn ranges of boot memory as firmware reports them.

    x86_64 follows a QEMU pc machine: page 0 and [0x9fc00, 1M) are not RAM, RAM
    below 4 GiB ends 140 KiB short of the boot memory size, or of 3 GiB when
    there are 3.5 GiB or more, and the rest starts at 4 GiB.  Other arches: one range at the
    arch's RAM base.
    """
    ps = a.page_shift
    if not a.pc_layout:
        s = a.ram_base >> ps
        return [(s, s + (boot_memory >> ps))]
    lowmem = boot_memory if boot_memory < 0xE0000000 else 0xC0000000
    high = boot_memory - lowmem
    # SeaBIOS (QEMU 7.2) reserves the top 140 KiB of low RAM: a 2 GiB guest's
    # e820 shows 0x100000-0x7ffdcfff usable (every oracle capture)
    ranges = [(1, 0x9FC00 >> ps), (0x100000 >> ps, (lowmem - 0x23000) >> ps)]
    if high:
        ranges.append((4 * GiB >> ps, (4 * GiB + high) >> ps))
    return ranges
