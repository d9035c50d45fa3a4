"""The machine's state: settings, sections, memory blocks, memory groups, zones
and the per-page state, with the queries every operation needs.

No operation lives here (they are in memblock, page_alloc, page_isolation,
sparse, memory_hotplug and memory); the ``Machine`` facade in machine.py puts
them together.  Section and block metadata are numpy arrays indexed by section
/ block number, so a machine of many TiB has no Python object per section or
block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypedDict

import numpy as np
import numpy.typing as npt

from . import _blockops, _core
from .arch import Arch, boot_ram_ranges, get_arch
from .backend import PageBackend
from .constants import (
    FREE_STRATEGIES,
    MAX_NR_ZONES,
    MAX_SIM_PHYS_BITS,
    ONLINE_POLICIES,
    ONLINE_TYPES,
    PLANES,
    SECTION_IS_ONLINE,
    SECTION_MARKED_PRESENT,
    Backend,
    MemmapMode,
    MiB,
    OnlinePolicy,
)
from .errors import ConfigError, HotplugError
from .kernel import Kernel
from .memremap import VmemAltmap
from .mmzone import Zone, ZoneSpanState
from .reference import RefPageState
from .units import parse_size


class Hazard(TypedDict):
    """A block that holds the memmap of other blocks (a design's cross-block
    dependency): see DesignHooks.hazards."""

    holder: int
    holder_state: str
    group: int
    dependents: list[int]
    online_dependents: list[int]
    vmemmap_pfns: list[tuple[int, int]]
    struct_page_pfns: list[tuple[int, int]]
    risk: str


class DeviceReport(TypedDict):
    """A device as reports show it (drivers.base.Device.report); the
    NotRequired keys are those of one driver only."""

    name: str
    driver: str
    attached: bool
    start: int | None
    size_bytes: int
    node: int
    group: int | None
    group_kind: Literal["dynamic", "static"] | None
    plugged_size_bytes: int
    blocks: list[int]
    memmap_on_memory_pages: int
    memmap_in_other_memory_pages: int
    page_offline_pages: int
    notes: list[str]
    # hv-balloon, xen-balloon
    backed_bytes: NotRequired[int]
    ballooned_pages: NotRequired[int]
    held_bytes: NotRequired[int]
    # virtio-mem
    requested_size_bytes: NotRequired[int]
    mode: NotRequired[Literal["sbm", "bbm"]]
    subblock_size_bytes: NotRequired[int]
    big_block_size_bytes: NotRequired[int]
    offline_threshold_bytes: NotRequired[int]
    offline_size_bytes: NotRequired[int]
    block_states: NotRequired[dict[str, str]]
    last_result: NotRequired[str]
    # dax/kmem
    kind: NotRequired[str]
    memmap_on_memory_attribute: NotRequired[bool]
    bound: NotRequired[bool]


class DeviceHooks(Protocol):
    """What the operations ask of a hot-add driver's device (hotmem.drivers)."""

    name: str
    drops_offline_refs: bool

    def online_split(self, m: MachineState, blk: int, start: int,
                     end: int) -> tuple[list[tuple[int, int]], bool] | None:
        """The online-page callback over [start, end): the pfn ranges handed
        to the buddy (the rest stays PageOffline) and whether the kept pages
        get PG_dirty; None for generic_online_page() on everything."""
        ...

    def block_online(self, m: MachineState, blk: int) -> None: ...
    def block_offline(self, m: MachineState, blk: int) -> None: ...
    def report(self, m: MachineState) -> DeviceReport: ...
    def iomem(self, m: MachineState) -> list[tuple[int, int, str, int]]: ...


class DesignHooks(Protocol):
    """What the operations ask of a design (implemented in hotmem.designs)."""

    name: str
    @property
    def batchable(self) -> bool: ...
    has_cross_block_memmap: bool
    memmap_stays_marked_offline: bool
    free_blocks_aligned: bool

    def verdict(self, m: MachineState, size: int | None) -> tuple[bool, str]: ...
    def rejects_unsupported_request(self, m: MachineState) -> bool: ...
    def add_memory(self, m: MachineState, spfn: int, epfn: int, nid: int,
                   supported: bool, group: MemoryGroup) -> None: ...
    def online_block(self, m: MachineState, blk: int, online_type: int) -> Zone: ...
    def offline_check(self, m: MachineState, blk: int) -> HotplugError | None: ...
    def offline_block(self, m: MachineState, blk: int) -> None: ...
    def remove_memory(self, m: MachineState, spfn: int, epfn: int,
                      blocks: npt.NDArray[np.int64]) -> None: ...
    def memmap_kpageflags(self, m: MachineState) -> int: ...
    def vmemmap_pages_by_block(self, m: MachineState) -> dict[int, int]: ...
    def hazards(self, m: MachineState) -> list[Hazard]: ...
    def format_hazard(self, h: Hazard) -> str: ...
    def misaligned_chunks(self, m: MachineState) -> dict[int, list[tuple[int, int]]]: ...


@dataclass
class MemoryGroup:
    """struct memory_group: the blocks one device added (static, as an ACPI DIMM
    or a dax device, with max_pages; dynamic with unit_pages, as virtio-mem).
    ``nr_pages`` counts the pages of its present blocks; ``design_state`` is the
    design's own per-device record, ``driver`` who added it and ``device`` the
    driver's device object (its hooks), when there is one."""

    gid: int
    nid: int
    start_pfn: int
    nr_pages: int
    max_pages: int
    memmap_on_memory: bool
    driver: str = "acpi"
    unit_pages: int = 0
    present_kernel_pages: int = 0
    present_movable_pages: int = 0
    design_state: Any = None
    device: DeviceHooks | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_dynamic(self) -> bool:
        return self.unit_pages > 0

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.nr_pages


class Snapshot(TypedDict):
    """Everything an operation may change (MachineState.snapshot)."""

    planes: dict[str, npt.NDArray[np.uint64]]
    pb_mt: npt.NDArray[np.uint8]
    pb_zone: npt.NDArray[np.uint8]
    nr_free: npt.NDArray[np.int64]
    zones: list[ZoneSpanState]
    sec_flags: npt.NDArray[np.uint8]
    blk_state: npt.NDArray[np.uint8]
    blk_zone: npt.NDArray[np.int16]
    blk_altmap: npt.NDArray[np.bool_]
    alt: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
    groups: dict[int, tuple[int, int, int, int, Any]]
    memmap_from_buddy: dict[int, npt.NDArray[np.int64]]
    min_free_kbytes: int
    max_pfn_seen: int


def _memmap_mode(value: object) -> MemmapMode:
    mode = str(value).lower()
    mode = {"0": "n", "1": "y", "false": "n", "true": "y", "no": "n", "yes": "y"}.get(mode, mode)
    if mode == "n":
        return "n"
    if mode == "y":
        return "y"
    if mode == "force":
        return "force"
    raise ConfigError(f"memmap_on_memory: {value!r} is not n, y or force"[:200])


class MachineState:
    """Settings and state of one simulated machine (no boot memory yet: see
    memblock.boot)."""

    def __init__(self, arch: str | Arch, kernel: Kernel, design: DesignHooks,
                 boot_memory: int | str, memmap_on_memory: object,
                 online_policy: str, auto_movable_ratio: int, auto_online_blocks: str,
                 block_size: int | str | None, nr_nodes: int, movable_node: bool,
                 hypervisor: bool, max_memory: int | str | None, thp: bool, backend: str,
                 auto_movable_numa_aware: bool) -> None:
        self.arch = arch if isinstance(arch, Arch) else get_arch(arch)
        self.kernel = kernel
        self.design = design
        self.memmap_on_memory: MemmapMode = _memmap_mode(memmap_on_memory)
        if online_policy not in ONLINE_POLICIES:
            raise ConfigError(f"online_policy: {online_policy!r} is not contig-zones or "
                              "auto-movable"[:200])
        self.online_policy: OnlinePolicy = ("auto-movable" if online_policy == "auto-movable"
                                            else "contig-zones")
        if isinstance(auto_movable_ratio, bool) or not isinstance(auto_movable_ratio, int) \
                or not 0 <= auto_movable_ratio <= 1 << 20:
            raise ConfigError(f"auto_movable_ratio: {auto_movable_ratio!r} is not a percentage")
        self.auto_movable_ratio = auto_movable_ratio
        self.auto_movable_numa_aware = auto_movable_numa_aware
        if auto_online_blocks not in ONLINE_TYPES:
            raise ConfigError(f"auto_online_blocks: {auto_online_blocks!r} is not one of "
                              f"{', '.join(ONLINE_TYPES)}"[:200])
        self.auto_online_blocks = auto_online_blocks
        if isinstance(nr_nodes, bool) or not isinstance(nr_nodes, int) or not 1 <= nr_nodes <= 64:
            raise ConfigError(f"nodes: {nr_nodes!r} is not a node count from 1 to 64"[:200])
        self.nr_nodes = nr_nodes
        self.movable_node = movable_node
        self.hypervisor = hypervisor
        self.thp = thp
        self.user_min_free_kbytes: int | None = None

        a = self.arch
        self.boot_memory = parse_size(boot_memory, "boot_memory")
        if self.boot_memory < 64 * MiB or self.boot_memory % a.page_size:
            raise ConfigError(f"boot_memory: {str(boot_memory)[:40]!r} must be at least 64M "
                              "and a multiple of the page size")
        self.boot_ranges = boot_ram_ranges(a, self.boot_memory)
        boot_end = max(e for _, e in self.boot_ranges) << a.page_shift
        if block_size is None:
            self.block_size = a.memory_block_size(boot_end, hypervisor)
        else:
            bs = parse_size(block_size, "block_size")
            if bs < a.section_size or bs & (bs - 1):
                raise ConfigError(f"block_size: {str(block_size)[:40]!r} must be a power of two "
                                  f"and at least the section size ({a.section_size:#x})")
            self.block_size = bs
        # the default address space stays at MAX_SIM_PHYS_BITS (every machine
        # maps its planes over it); max_memory reaches MAX_PHYSMEM_BITS
        phys_bits = a.max_physmem_bits
        self.max_phys = 1 << min(phys_bits, MAX_SIM_PHYS_BITS)
        if max_memory is not None:
            self.max_phys = parse_size(max_memory, "max_memory")
            if self.max_phys % self.block_size or not 0 < self.max_phys <= 1 << phys_bits:
                raise ConfigError(f"max_memory: {str(max_memory)[:40]!r} must be block aligned "
                                  f"and at most {1 << phys_bits:#x}")
        if boot_end > self.max_phys:
            raise ConfigError("boot memory ends beyond max_memory")
        self.nr_pfns = self.max_phys >> a.page_shift
        self.pages_per_block = self.block_size >> a.page_shift
        self.sections_per_block = self.block_size >> a.section_size_bits
        self.nr_sections = self.max_phys >> a.section_size_bits
        self.nr_blocks = self.max_phys // self.block_size

        n_zids = nr_nodes * MAX_NR_ZONES
        self.pages: PageBackend
        if backend == "fast":
            # one descriptor per memory section (see _core: uniform chunks)
            self.pages = _core.PageState(self.nr_pfns, a.pageblock_order, a.max_page_order, n_zids,
                                         max(a.section_size_bits - a.page_shift,
                                             a.max_page_order, a.pageblock_order, 6))
        elif backend == "reference":
            self.pages = RefPageState(self.nr_pfns, a.pageblock_order, a.max_page_order, n_zids)
        else:
            raise ConfigError(f"backend: {backend!r} is not 'fast' or 'reference'"[:200])
        self.backend: Backend = "fast" if backend == "fast" else "reference"
        # what the hot paths ask of the era and arch on every online / offline
        self.online_free_strategy = FREE_STRATEGIES[kernel.online_free_strategy]
        self.wmark_like_highmem = kernel.movable_wmark_like_highmem
        self.pages_per_section = a.pages_per_section

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
        # one-block onlines and offlines as runs of one (memory_hotplug.online_run /
        # offline_run), compiled (_blockops); the reference backend keeps the
        # step-by-step path, which the tests compare against
        self.fast_paths = self.backend == "fast"
        self.block_ops: _blockops.BlockOps | None = None   # memory_hotplug.setup_block_ops
        # memmap pages taken from the buddy for blocks added without an altmap
        self.memmap_from_buddy: dict[int, npt.NDArray[np.int64]] = {}
        self.groups: dict[int, MemoryGroup] = {}
        self.devices: dict[str, DeviceHooks] = {}
        self.next_gid = 0
        self.min_free_kbytes = 0
        # init_per_zone_wmark_min()'s min_free_kbytes by what it depends on (page_alloc)
        self.wmark_memo: dict[tuple[int | bool | None, ...], int] = {}
        # some zone's lowmem_reserve lags its managed pages (Zone.managed_unreserved)
        self.managed_unreserved = False
        self.boot_reserved: list[tuple[int, int, str]] = []
        self.max_pfn_seen = 0

    # ------------------------------------------------------------------ queries

    def zone(self, nid: int, ztype: int) -> Zone:
        return self.zones[nid * MAX_NR_ZONES + ztype]

    def zone_by_name(self, name: str, nid: int = 0) -> Zone:
        for z in self.zones:
            if z.nid == nid and z.name.lower() == str(name).lower() and z.configured:
                return z
        names = ", ".join(z.name for z in self.zones if z.nid == 0 and z.configured)
        raise ConfigError(f"zone: {str(name)[:40]!r} is not a zone of {self.arch.name} "
                          f"({names})")

    def block_range(self, blk: int) -> tuple[int, int]:
        s = blk * self.pages_per_block
        return s, s + self.pages_per_block

    def block_of_pfn(self, pfn: int) -> int:
        return pfn // self.pages_per_block

    def addr(self, pfn: int) -> int:
        """Physical address of a pfn."""
        return pfn << self.arch.page_shift

    def present_blocks(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.blk_state)

    def blocks_in_state(self, state: int) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.blk_state == state)

    def hot_blocks(self) -> npt.NDArray[np.int64]:
        """Present blocks that were hot-added (not boot memory)."""
        return np.flatnonzero((self.blk_state != 0) & ~self.blk_early)

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
        pps = self.pages_per_section
        # once booted, nothing is present above the highest pfn ever added
        hi = -(-self.max_pfn_seen // pps) if self.max_pfn_seen else len(self.sec_flags)
        present = np.flatnonzero(self.sec_flags[:hi] & SECTION_MARKED_PRESENT)
        return 0 if not len(present) else int(present[-1] + 1) * self.arch.pages_per_section

    def kpageflags_end(self) -> int:
        """get_max_dump_pfn(): round_up(max_pfn, PAGES_PER_SECTION).  Hot-add
        raises max_pfn (x86 update_end_of_memory_vars); nothing lowers it, so a
        removed range still reads as NOPAGE."""
        return max(self.max_pfn_seen, self.max_pfn())

    def group_of_block(self, blk: int) -> MemoryGroup | None:
        gid = int(self.blk_group[blk])
        return self.groups.get(gid) if gid >= 0 else None

    def device_of_block(self, blk: int) -> DeviceHooks | None:
        g = self.group_of_block(blk)
        return g.device if g is not None else None

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

    def totalram_pages(self) -> int:
        return sum(z.managed_pages for z in self.zones)

    def memmap_of_hot_blocks(self) -> tuple[int, int]:
        """(self-hosted memmap pages, memmap pages in other memory) of the
        present hot-added blocks."""
        hot = self.hot_blocks()
        on_memory = sum(self.design.vmemmap_pages_by_block(self).values())
        elsewhere = sum(len(self.memmap_from_buddy.get(int(b), ())) for b in hot)
        return on_memory, elsewhere

    # ------------------------------------------------------------------ state capture

    def snapshot(self) -> Snapshot:
        """Everything an operation may change, for undo and for comparisons.
        Page planes are summarised by the pfn range that holds memory."""
        end = self.max_pfn()
        end64 = -(-end // 64) * 64
        planes = {name: self.pages.words(idx, 0, end64) for name, idx in PLANES.items()}
        if end64:
            mt, zn = self.pages.pageblock_bytes(0, end64)
        else:
            mt, zn = np.zeros(0, np.uint8), np.zeros(0, np.uint8)
        return {
            "planes": planes, "pb_mt": mt, "pb_zone": zn,
            "nr_free": self.pages.nr_free.copy(),
            "zones": [z.span_state() for z in self.zones],
            "sec_flags": self.sec_flags.copy(), "blk_state": self.blk_state.copy(),
            "blk_zone": self.blk_zone.copy(), "blk_altmap": self.blk_altmap.copy(),
            "alt": (self.alt_free.copy(), self.alt_alloc.copy(), self.alt_align.copy()),
            "groups": {g: (v.start_pfn, v.nr_pages, v.present_kernel_pages,
                           v.present_movable_pages, repr(v.design_state))
                       for g, v in self.groups.items()},
            "memmap_from_buddy": {k: v.copy() for k, v in self.memmap_from_buddy.items()},
            "min_free_kbytes": self.min_free_kbytes,
            "max_pfn_seen": self.max_pfn_seen,
        }
